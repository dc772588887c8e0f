"""Builders for test data. They call the real actions, so state is set up as users make it."""

import hashlib
import itertools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from lineage import services as lineage
from registry import services as registry
from registry.choices import ProjectRight, RiskTier, Split, TaskType
from registry.roles import Role  # noqa: F401 - re-exported for tests

_sequence = itertools.count(1)
PASSWORD = "correct horse battery staple"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def user(username: str | None = None, *, role: str | None = None, **extra):
    """A user with a password, optionally in a role group."""
    n = next(_sequence)
    username = username or f"user{n}"
    person = get_user_model().objects.create_user(
        username=username,
        password=PASSWORD,
        first_name=username.title(),
        last_name="Tester",
        email=f"{username}@example.com",
        **extra,
    )
    if role:
        person.groups.add(Group.objects.get(name=role))
    return person


def project(owner, *, key: str | None = None, **fields):
    """A high-risk project owned by `owner` (who gets every right)."""
    n = next(_sequence)
    defaults: dict[str, Any] = {
        "key": key or f"project-{n}",
        "name": f"Project {n}",
        "risk_tier": RiskTier.HIGH,
        "acceptance_criteria": [
            {"metric": "accuracy", "threshold": 0.7, "direction": "higher", "split": "test"}
        ],
    }
    defaults.update(fields)
    return registry.create_project(actor=owner, owner=owner, **defaults)


def grant(project, person, *rights):
    registry.grant_project_rights(project, person, rights or [ProjectRight.VIEW], actor=None)


def dataset_version(
    project,
    actor,
    *,
    name: str = "data",
    split: str = Split.TEST,
    content: str | None = None,
    rows: int = 100,
    **fields,
):
    from registry.models import Dataset

    dataset = Dataset.objects.filter(project=project, name=name).first()
    if dataset is None:
        dataset = registry.register_dataset(project, actor=actor, name=name)
    version, _ = registry.register_dataset_version(
        dataset,
        actor=actor,
        content_sha256=sha(content or f"{name}-{next(_sequence)}"),
        uri=f"s3://bucket/{name}.parquet",
        row_count=rows,
        split=split,
        schema=[{"name": "x", "type": "float"}, {"name": "sex", "type": "category"}],
        **fields,
    )
    return version


def code_version(project, actor, commit: str | None = None):
    return lineage.register_code_version(
        project,
        actor=actor,
        repository_url="https://git.example.com/team/model",
        commit_sha=commit or sha(str(next(_sequence)))[:40],
        branch="main",
    )


def run(project, actor, *, inputs=(), code=None, **fields):
    fields.setdefault("name", "train")
    fields.setdefault("kind", "training")
    fields.setdefault("parameters", {"max_depth": 4})
    fields.setdefault("environment", {"python": "3.11.7"})
    return lineage.create_run(
        project, actor=actor, code_version=code, input_datasets=list(inputs), **fields
    )


def registered_model(project, actor, *, name: str | None = None, task_type=TaskType.BINARY):
    return registry.register_model(
        project, actor=actor, name=name or f"model-{next(_sequence)}", task_type=task_type
    )


def model_version(model, actor, *, run=None, derived_from=None, **fields):
    n = next(_sequence)
    fields.setdefault("artifact_uri", f"s3://bucket/models/{n}")
    fields.setdefault("artifact_sha256", sha(f"artifact-{n}"))
    return registry.register_model_version(
        model, actor=actor, run=run, derived_from=derived_from, **fields
    )
