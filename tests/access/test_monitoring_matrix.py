"""The monitoring endpoints' permission matrix: reference data, production batches, retraining
tickets, re-check schedules and change-control plans, each × every role × (assigned project /
unassigned project / anonymous), with the exact status expected, and no leak of the unassigned
project in lists or counts.

The expected outcomes are written out by hand from the access rules: everything is read with
the `view` right on its project (an invisible record is 404). Roles say what, rights say
where, and every write needs both: uploads and plan proposals need a data scientist's role
and the `contribute` right; schedules a data scientist's or compliance officer's role and the
`manage` right (a reference to an invisible version, model or project is a 400, like one to
nothing); a plan is approved by a compliance officer with the `review` right and their
password.
`test_permission_matrix.test_every_api_endpoint_is_in_the_matrix` reads `URL_NAMES` here.
"""

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from governance.models import AuditEvent, MonitoringSchedule, RetrainingTicket
from governance.monitoring import checks, plans
from governance.tasks import run_monitoring_check_task
from registry import services as registry
from registry.accounts import revoke_project_rights
from registry.choices import ProjectRight
from registry.roles import Role
from tests import factories
from tests.access.world import ASSIGNED, RIGHTS_ON_ASSIGNED, UNASSIGNED
from tests.governance.test_monitoring import csv_file, frame, to_production, validated_version
from tests.governance.test_summary_statistics import summarise

ROLES = list(RIGHTS_ON_ASSIGNED)
A, U = ASSIGNED, UNASSIGNED

LIST = {role: {A: 200, U: 200} for role in ROLES}  # scoped: see test_lists_show_only_...
READ_ONE = {
    "data scientist":     {A: 200, U: 404},
    "reviewer":           {A: 200, U: 404},
    "compliance officer": {A: 200, U: 404},
    "auditor":            {A: 200, U: 404},
    "admin":              {A: 404, U: 404},
    "superuser":          {A: 200, U: 200},
}  # fmt: skip


def written(status_ok):
    """A write that needs the `contribute` right on the project it references."""
    return {
        "data scientist":     {A: status_ok, U: 400},
        "reviewer":           {A: 403, U: 400},
        "compliance officer": {A: 403, U: 400},
        "auditor":            {A: 403, U: 400},
        "admin":              {A: 400, U: 400},
        "superuser":          {A: status_ok, U: status_ok},
    }  # fmt: skip


# Expected status per row, role and project.
# fmt: off
EXPECTED = {
    "monitoringreference-list": LIST,
    "monitoringreference-detail": READ_ONE,
    "monitoringreference-create": written(201),  # a validated version's reference data
    "monitoringreference-bins": READ_ONE,  # the bins summary statistics are counted on
    "monitoringreport-list": LIST,
    "monitoringreport-detail": READ_ONE,
    "monitoringreport-create": written(202),  # a production batch, checked in a task
    "monitoringreport-summary": written(202),  # the same, as summary statistics
    "retrainingticket-list": LIST,
    "retrainingticket-detail": READ_ONE,
    "monitoringschedule-list": LIST,
    "monitoringschedule-detail": READ_ONE,
    # A schedule for the project's model: the data scientist's or compliance officer's role and
    # the `manage` right (a reference to an invisible model is a 400).
    "monitoringschedule-create": {
        "data scientist":     {A: 403, U: 400},
        "reviewer":           {A: 403, U: 400},
        "compliance officer": {A: 201, U: 400},
        "auditor":            {A: 403, U: 400},
        "admin":              {A: 400, U: 400},
        "superuser":          {A: 201, U: 201},
    },
    "monitoringschedule-update": {
        "data scientist":     {A: 403, U: 404},
        "reviewer":           {A: 403, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 200, U: 200},
    },
    "changecontrolplan-list": LIST,
    "changecontrolplan-detail": READ_ONE,
    "changecontrolplan-create": written(201),
    # A plan proposed by the project's owner, approved with the right password.
    "changecontrolplan-approve": {
        "data scientist":     {A: 403, U: 404},
        "reviewer":           {A: 403, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 403, U: 403},  # not a compliance officer
    },
}
# fmt: on

# The URL name each row exercises.
URL_NAMES = {row: row.replace("-create", "-list").replace("-update", "-detail") for row in EXPECTED}


class Monitoring:
    """Per project (made minimal-risk, so a version reaches production with one approval): a
    validated version without reference data, a deployed version with its reference, a
    drifted batch's report and the retraining ticket it opened, a re-check schedule of the
    deployed model, and a proposed plan."""

    def __init__(self, world):
        self.validated, self.deployed, self.references = {}, {}, {}
        self.reports, self.tickets, self.plans, self.schedules = {}, {}, {}, {}
        sue = world.people["superuser"]
        self.models = {key: world.records[key]["registeredmodel"] for key in (A, U)}
        for key in (A, U):
            project = world.projects[key]
            owner = project.owner
            registry.update_project(project, actor=sue, risk_tier="minimal")
            # The world's open high-impact risk would hold every version out of production.
            registry.update_risk(world.records[key]["risk"], actor=sue, status="mitigated")
            reviewer = factories.user(f"rev-{key}", role=Role.REVIEWER)
            factories.grant(project, reviewer, ProjectRight.VIEW, ProjectRight.REVIEW)
            self.validated[key] = validated_version(project, owner)
            deployed = to_production(
                validated_version(project, owner), owner=owner, reviewer=reviewer
            )
            self.deployed[key] = deployed
            self.references[key] = checks.register_reference(
                deployed, csv_file(frame(0), "reference.csv"), actor=owner
            )
            report = checks.submit_batch(deployed, csv_file(frame(1, shift=1.0)), actor=owner)
            run_monitoring_check_task(report.pk, actor_id=owner.pk)
            self.reports[key] = report
            self.tickets[key] = RetrainingTicket.objects.get(report=report)
            # Schedules are saved by their view as they are: there is no action to call.
            self.schedules[key] = MonitoringSchedule.objects.create(
                registered_model=deployed.registered_model, interval_hours=24
            )
            self.plans[key] = plans.propose_plan(
                project,
                actor=owner,
                description="retrain monthly",
                allowed_modifications={},
                protocol={},
                impact_assessment="none expected",
            )

    def call(self, client, row, key):
        """Send the row's request about project `key`'s records; return the response."""
        name = URL_NAMES[row]
        if row.endswith("-list"):
            return client.get(reverse(name))
        if row == "monitoringreference-create":
            body = {
                "model_version": self.validated[key].pk,
                "file": csv_file(frame(0), "reference.csv"),
            }
            return client.post(reverse(name), body, format="multipart")
        if row == "monitoringreport-create":
            body = {"model_version": self.deployed[key].pk, "file": csv_file(frame(2))}
            return client.post(reverse(name), body, format="multipart")
        if row == "monitoringreport-summary":
            body = summarise(frame(2), self.references[key].profile)
            body["model_version"] = self.deployed[key].pk
            return client.post(reverse(name), body, format="json")
        if row == "monitoringreference-bins":
            return client.get(reverse(name, args=[self.references[key].pk]))
        if row == "monitoringschedule-create":
            body = {"registered_model": self.models[key].pk, "interval_hours": 6}
            return client.post(reverse(name), body, format="json")
        if row == "monitoringschedule-update":
            url = reverse(name, args=[self.schedules[key].pk])
            return client.patch(url, {"interval_hours": 12}, format="json")
        if row == "changecontrolplan-create":
            body = {"project": key, "description": "new plan", "impact_assessment": "low"}
            return client.post(reverse(name), body, format="json")
        if row == "changecontrolplan-approve":
            body = {"password": factories.PASSWORD}
            return client.post(reverse(name, args=[self.plans[key].pk]), body, format="json")
        record = {
            "monitoringreference-detail": self.references,
            "monitoringreport-detail": self.reports,
            "retrainingticket-detail": self.tickets,
            "changecontrolplan-detail": self.plans,
            "monitoringschedule-detail": self.schedules,
        }[row][key]
        return client.get(reverse(name, args=[record.pk]))


@pytest.fixture(scope="module")
def mon(world, django_db_blocker, tmp_path_factory):
    """The monitoring records, in the world's transaction (rolled back with it)."""
    media = tmp_path_factory.mktemp("media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media):
        yield Monitoring(world)


def _client(world, role):
    client = APIClient()
    if role is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
    return client


CASES = [
    pytest.param(row, role, key, id=f"{row}-{role}-{key}")
    for row in EXPECTED
    for role in ROLES
    for key in (A, U)
]


@pytest.mark.django_db
@pytest.mark.parametrize(("row", "role", "key"), CASES)
def test_status(world, mon, row, role, key):
    response = mon.call(_client(world, role), row, key)
    assert response.status_code == EXPECTED[row][role][key], response.content[:300]
    if response.status_code == 400:
        # A reference to an invisible project's record reads exactly like one to nothing.
        text = response.content.decode()
        assert "not visible to you" in text or "does not exist" in text, text


@pytest.mark.django_db
@pytest.mark.parametrize("row", list(EXPECTED))
@pytest.mark.parametrize("key", [A, U])
def test_anonymous_gets_401(world, mon, row, key):
    assert mon.call(_client(world, None), row, key).status_code == 401


SEES = {role: ({A} if rights else set()) for role, rights in RIGHTS_ON_ASSIGNED.items()}
SEES["superuser"] = {A, U}


@pytest.mark.django_db
@pytest.mark.parametrize("row", [row for row in EXPECTED if row.endswith("-list")])
@pytest.mark.parametrize("role", ROLES)
def test_lists_show_only_visible_projects(world, mon, row, role, django_assert_max_num_queries):
    records = {
        "monitoringreference-list": mon.references,
        "monitoringreport-list": mon.reports,
        "retrainingticket-list": mon.tickets,
        "changecontrolplan-list": mon.plans,
        "monitoringschedule-list": mon.schedules,
    }[row]
    with django_assert_max_num_queries(12):
        body = _client(world, role).get(reverse(row)).json()
    assert {item["id"] for item in body["results"]} == {records[key].pk for key in SEES[role]}
    assert body["count"] == len(SEES[role])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "row", ["monitoringreference-list", "monitoringreport-list", "retrainingticket-list"]
)
@pytest.mark.parametrize("role", [r for r in ROLES if r != "superuser"])
def test_filter_by_invisible_version_answers_like_a_missing_one(world, mon, row, role):
    client = _client(world, role)
    by_invisible = client.get(reverse(row), {"model_version": mon.deployed[U].pk})
    by_missing = client.get(reverse(row), {"model_version": 10**9})
    assert by_invisible.status_code == by_missing.status_code
    assert by_invisible.json() == by_missing.json()


@pytest.mark.django_db
def test_uploading_a_batch_needs_the_role_as_well_as_the_right(world, mon):
    factories.grant(world.projects[A], world.people["reviewer"], ProjectRight.CONTRIBUTE)
    response = mon.call(_client(world, "reviewer"), "monitoringreport-create", A)
    assert response.status_code == 403, response.status_code


@pytest.mark.django_db
def test_changing_a_schedule_is_in_the_audit_trail(world, mon):
    response = mon.call(_client(world, "compliance officer"), "monitoringschedule-update", A)
    assert response.status_code == 200
    assert AuditEvent.objects.filter(
        object_type="governance.monitoringschedule", object_id=str(mon.schedules[A].pk)
    ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["reviewer", "auditor"])
def test_setting_a_schedule_needs_the_role_as_well_as_the_right(world, mon, role):
    factories.grant(world.projects[A], world.people[role], ProjectRight.MANAGE)
    for row in ("monitoringschedule-create", "monitoringschedule-update"):
        response = mon.call(_client(world, role), row, A)
        assert response.status_code == 403, (row, response.content[:200])
        assert "role does not allow" in response.json()["detail"]
    assert MonitoringSchedule.objects.get(pk=mon.schedules[A].pk).interval_hours == 24


@pytest.mark.django_db
def test_data_scientist_with_the_manage_right_sets_a_schedule(world, mon):
    factories.grant(world.projects[A], world.people["data scientist"], ProjectRight.MANAGE)
    response = mon.call(_client(world, "data scientist"), "monitoringschedule-update", A)
    assert response.status_code == 200, response.content[:200]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["reviewer", "compliance officer", "auditor"])
def test_proposing_a_plan_needs_the_role_as_well_as_the_right(world, mon, role):
    factories.grant(world.projects[A], world.people[role], ProjectRight.CONTRIBUTE)
    response = mon.call(_client(world, role), "changecontrolplan-create", A)
    assert response.status_code == 403, response.content[:200]
    assert "role does not allow" in response.json()["detail"]


@pytest.mark.django_db
def test_approving_a_plan_needs_the_review_right_as_well_as_the_role(world, mon):
    casey = world.people["compliance officer"]
    project = world.projects[A]
    revoke_project_rights(project, casey, [ProjectRight.REVIEW], actor=None)
    response = mon.call(_client(world, "compliance officer"), "changecontrolplan-approve", A)
    assert response.status_code == 403, response.content[:200]
    assert "review" in response.json()["detail"]
