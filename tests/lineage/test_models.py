"""Lineage records: commit SHAs, run times, links that stay inside one project, history."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from lineage import services
from lineage.models import CodeVersion, Edge, Run
from tests import factories

pytestmark = pytest.mark.django_db

COMMIT = "3f6c2a9d1e8b7c4a5f0e9d8c7b6a5f4e3d2c1b0a"


def error_of(excinfo, field):
    return " ".join(excinfo.value.message_dict[field])


@pytest.mark.parametrize("commit", [COMMIT[:39], COMMIT + "0", COMMIT.upper(), "z" * 40, ""])
def test_code_version_commit_must_be_40_lowercase_hex(project, owner, commit):
    with pytest.raises(ValidationError) as excinfo:
        services.register_code_version(
            project, actor=owner, repository_url="https://git.example.com/m", commit_sha=commit
        )
    assert "commit_sha" in excinfo.value.message_dict
    assert not CodeVersion.objects.exists()


def test_code_version_commit_error_names_the_rule(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        services.register_code_version(
            project, actor=owner, repository_url="https://git.example.com/m", commit_sha="abc"
        )
    assert "40 lowercase hexadecimal" in error_of(excinfo, "commit_sha")


def test_identical_code_version_is_reused(project, owner):
    fields = {"repository_url": "https://git.example.com/m", "commit_sha": COMMIT}
    first = services.register_code_version(project, actor=owner, **fields)
    again = services.register_code_version(project, actor=owner, **fields)
    dirty = services.register_code_version(project, actor=owner, dirty=True, **fields)
    assert again.pk == first.pk
    assert dirty.pk != first.pk
    assert CodeVersion.objects.count() == 2


def test_run_cannot_end_before_it_starts(project, owner):
    start = timezone.now()
    with pytest.raises(ValidationError) as excinfo:
        factories.run(project, owner, started_at=start, ended_at=start - timedelta(seconds=1))
    assert "cannot end before it starts" in error_of(excinfo, "ended_at")
    assert not Run.objects.exists()


def test_run_update_cannot_end_before_it_starts(project, owner):
    run = factories.run(project, owner, started_at=timezone.now())
    with pytest.raises(ValidationError) as excinfo:
        services.update_run(run, actor=owner, ended_at=run.started_at - timedelta(hours=1))
    assert "ended_at" in excinfo.value.message_dict


@pytest.mark.parametrize("field", ["parameters", "environment"])
def test_run_parameters_and_environment_must_be_objects(project, owner, field):
    with pytest.raises(ValidationError) as excinfo:
        factories.run(project, owner, **{field: ["not", "an", "object"]})
    assert "must be a JSON object" in error_of(excinfo, field)


def test_run_metrics_must_be_numbers(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        factories.run(project, owner, metrics={"loss": "low"})
    assert "metric 'loss' must be a number" in error_of(excinfo, "metrics")


def test_run_kind_must_be_known(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        factories.run(project, owner, kind="deployment")
    assert "kind" in excinfo.value.message_dict


def test_run_refuses_code_of_another_project(project, owner, other_project, outsider):
    foreign = factories.code_version(other_project, outsider)
    with pytest.raises(ValidationError) as excinfo:
        factories.run(project, owner, code=foreign)
    assert "belongs to project secret, not credit" in error_of(excinfo, "code_version")
    assert not Run.objects.filter(project=project).exists()


def test_run_refuses_input_data_of_another_project(project, owner, other_project, outsider):
    foreign = factories.dataset_version(other_project, outsider)
    with pytest.raises(ValidationError) as excinfo:
        factories.run(project, owner, inputs=[foreign])
    assert "belongs to project secret" in error_of(excinfo, "input_datasets")


def test_run_refuses_a_parent_of_another_project(project, owner, other_project, outsider):
    foreign = factories.run(other_project, outsider)
    with pytest.raises(ValidationError) as excinfo:
        factories.run(project, owner, parent=foreign)
    assert "parent" in excinfo.value.message_dict


def test_run_update_refuses_outputs_of_another_project(project, owner, other_project, outsider):
    run = factories.run(project, owner)
    foreign = factories.dataset_version(other_project, outsider)
    with pytest.raises(ValidationError):
        services.update_run(run, actor=owner, output_datasets=[foreign])
    assert not run.output_datasets.exists()


def test_run_identity_cannot_be_changed_after_recording(project, owner):
    run = factories.run(project, owner)
    with pytest.raises(ValidationError) as excinfo:
        services.update_run(run, actor=owner, parameters={"max_depth": 9})
    assert "cannot be changed after the run is recorded" in error_of(excinfo, "parameters")


def test_run_links_are_kept_in_the_provenance_graph(project, owner):
    code = factories.code_version(project, owner)
    data = factories.dataset_version(project, owner)
    run = factories.run(project, owner, code=code, inputs=[data])
    kinds = set(Edge.objects.filter(dst__object_id=run.pk).values_list("kind", flat=True))
    assert kinds == {"code", "used"}


def test_run_history_names_actor_and_reason(project, owner):
    run = factories.run(project, owner)
    services.update_run(run, actor=owner, status="completed", reason="job finished")
    created, updated = run.history.order_by("history_id")
    assert (created.history_type, created.status) == ("+", "running")
    assert (updated.history_type, updated.status) == ("~", "completed")
    assert updated.history_user == owner
    assert updated.history_actor_name == "Olive Tester"
    assert updated.history_change_reason == "job finished"


def test_code_version_history_names_actor(project, owner):
    code = factories.code_version(project, owner)
    row = code.history.get()
    assert row.history_user == owner
    assert row.history_change_reason == "code version registered"
