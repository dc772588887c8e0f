"""The people and records the access matrices run against, built once per test module.

Two projects: "credit", to which each role is assigned with the rights the demo gives that
role, and "secret", to which none of them is; one record of each kind in each.
"""

import uuid

import pytest
from django.db import transaction
from rest_framework.authtoken.models import Token

from lineage import openlineage
from registry import services
from registry.choices import ProjectRight
from registry.roles import Role
from tests import factories

V, C, R, E, M = (
    ProjectRight.VIEW,
    ProjectRight.CONTRIBUTE,
    ProjectRight.REVIEW,
    ProjectRight.EXPORT,
    ProjectRight.MANAGE,
)

# The people of the matrix, and the rights each holds on the assigned project ("credit").
# These are the rights the demo gives each role (test_permission_matrix checks they agree).
# Everyone is staff, so the admin matrix can open the admin site as each of them.
RIGHTS_ON_ASSIGNED = {
    "data scientist": {V, C},
    "reviewer": {V, R},
    "compliance officer": {V, R, E, M},
    "auditor": {V, E},
    "admin": set(),
    "superuser": set(),  # needs none
}
ASSIGNED, UNASSIGNED = "credit", "secret"


def _complete_event(namespace: str, run) -> dict:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-22T10:00:00.000Z",
        "run": {"runId": str(run.external_id), "facets": {}},
        "job": {"namespace": namespace, "name": run.name, "facets": {}},
        "producer": "https://github.com/example/pipeline/v1",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
    }


class World:
    """The data of the matrix: two projects with one record of each kind, and the people."""

    def __init__(self):
        owner = factories.user("olga", role=Role.DATA_SCIENTIST)
        stranger = factories.user("sten", role=Role.DATA_SCIENTIST)
        self.people = {
            "data scientist": factories.user("dana", role=Role.DATA_SCIENTIST, is_staff=True),
            "reviewer": factories.user("rory", role=Role.REVIEWER, is_staff=True),
            "compliance officer": factories.user(
                "casey", role=Role.COMPLIANCE_OFFICER, is_staff=True
            ),
            "auditor": factories.user("avery", role=Role.AUDITOR, is_staff=True),
            "admin": factories.user("ada", role=Role.ADMIN, is_staff=True),
            "superuser": factories.user("sue", is_staff=True, is_superuser=True),
        }
        self.tokens = {
            role: Token.objects.create(user=person).key for role, person in self.people.items()
        }
        self.projects = {
            ASSIGNED: factories.project(owner, key=ASSIGNED),
            UNASSIGNED: factories.project(stranger, key=UNASSIGNED),
        }
        for role, rights in RIGHTS_ON_ASSIGNED.items():
            if rights:
                factories.grant(self.projects[ASSIGNED], self.people[role], *rights)
        self.records = {
            ASSIGNED: self._records(self.projects[ASSIGNED], owner),
            UNASSIGNED: self._records(self.projects[UNASSIGNED], stranger),
        }

    @staticmethod
    def _records(project, actor):
        data = factories.dataset_version(project, actor, name="data", rows=10)
        code = factories.code_version(project, actor)
        run = factories.run(project, actor, inputs=[data], code=code, external_id=uuid.uuid4())
        # The run reports its end through OpenLineage: the event is kept as received.
        openlineage.ingest([_complete_event(project.key, run)], actor=actor)
        run.refresh_from_db()
        model = factories.registered_model(project, actor, name="scorer")
        version = factories.model_version(model, actor, run=run)
        evaluation = services.record_evaluation(
            version, data, actor=actor, metrics={"accuracy": 0.9}
        )
        risk = services.add_risk(
            project, actor=actor, description="bias", likelihood="low", impact="high"
        )
        return {
            "project": project,
            "risk": risk,
            "registeredmodel": model,
            "modelversion": version,
            "dataset": data.dataset,
            "datasetversion": data,
            "evaluation": evaluation,
            "codeversion": code,
            "run": run,
            "receivedevent": run.openlineage_events.get(),
        }

    def lookup(self, endpoint, project_key):
        record = self.records[project_key][endpoint]
        return record.key if endpoint == "project" else record.pk

    def new_record(self, endpoint, project_key):
        """A valid body creating a new record of `endpoint` in the project."""
        records = self.records[project_key]
        sha = factories.sha(f"new-{endpoint}-{project_key}")
        return {
            "project": {"key": f"new-{project_key}", "name": "New", "risk_tier": "high"},
            "risk": {
                "project": project_key,
                "description": "new risk",
                "likelihood": "low",
                "impact": "low",
            },
            "registeredmodel": {
                "project": project_key,
                "name": "new-model",
                "task_type": "binary_classification",
            },
            "modelversion": {
                "registered_model": records["registeredmodel"].pk,
                "artifact_uri": "s3://bucket/new",
                "artifact_sha256": sha,
            },
            "dataset": {"project": project_key, "name": "new-data"},
            "datasetversion": {
                "dataset": records["dataset"].pk,
                "uri": "s3://bucket/new.parquet",
                "content_sha256": sha,
                "row_count": 5,
                "split": "test",
            },
            "evaluation": {
                "model_version": records["modelversion"].pk,
                "dataset_version": records["datasetversion"].pk,
                "metrics": {"accuracy": 0.8},
            },
            "codeversion": {
                "project": project_key,
                "repository_url": "https://git.example.com/new",
                "commit_sha": sha[:40],
            },
            "run": {"project": project_key, "name": "new-run", "kind": "training"},
        }[endpoint]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module inside a transaction that is rolled back at its end; each
    test runs in a savepoint of it, so what one test creates is gone for the next."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield World()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
