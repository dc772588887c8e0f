"""The governance endpoints' permission matrix: transition requests and signatures, the audit
trail, lifecycle policies and fairness audits, each × every role × (assigned project /
unassigned project / anonymous), with the exact status expected, and no leak of the
unassigned project in lists, counts or filters.

The expected outcomes are written out by hand from the governance rules: requesting a
transition needs the data scientist's role and the project's `contribute` right; signing
needs a reviewer's or compliance officer's role and the `review` right, and never the
requester; withdrawing needs the requester or the `manage` right; re-evaluating needs
`contribute` or `review`; the audit trail needs the auditor's or compliance officer's role
and shows only projects with the `export` right; policies belong to no project and are read
by everyone signed in, proposed by compliance officers and approved by another one; binding a
policy needs the project's `manage` right; fairness audits are requested like any other
record (role + `contribute`). An invisible record is 404, a reference to one is a 400.
`test_permission_matrix.test_every_api_endpoint_is_in_the_matrix` reads `EXPECTED` here.
"""

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from governance import policies, transitions
from governance.choices import SignatureMeaning
from governance.fairness import audits
from governance.models import Signature, TransitionRequest
from governance.policy_rules import default_definition
from registry.choices import ProjectRight, RiskTier
from registry.roles import Role
from tests import factories
from tests.access.world import ASSIGNED, RIGHTS_ON_ASSIGNED, UNASSIGNED

ROLES = list(RIGHTS_ON_ASSIGNED)
A, U = ASSIGNED, UNASSIGNED


def both(status):
    """The same status in both columns: the record belongs to no project."""
    return {A: status, U: status}


# Expected status per URL name, role and project. The request, policy or audit acted on is
# the one of that project (policies: the same global one in both columns; `bind` binds it
# to that project).
# fmt: off
EXPECTED = {
    "transitionrequest-list": {
        role: both(200) for role in ROLES  # scoped: see test_lists_show_only_visible_projects
    },
    "transitionrequest-detail": {
        "data scientist":     {A: 200, U: 404},
        "reviewer":           {A: 200, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 200, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 200, U: 200},
    },
    # An approval with the right password. Superusers hold every right but no signing role:
    # a signature manifests a reviewer's or compliance officer's role (21 CFR 11.50).
    "transitionrequest-sign": {
        "data scientist":     {A: 403, U: 404},
        "reviewer":           {A: 201, U: 404},
        "compliance officer": {A: 201, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 403, U: 403},
    },
    # Nobody in the matrix requested it: only a manager may withdraw it.
    "transitionrequest-withdraw": {
        "data scientist":     {A: 403, U: 404},
        "reviewer":           {A: 403, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 200, U: 200},
    },
    "transitionrequest-evaluate": {
        "data scientist":     {A: 200, U: 404},
        "reviewer":           {A: 200, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 200, U: 200},
    },
    "modelversion-transitions-get": {
        "data scientist":     {A: 200, U: 404},
        "reviewer":           {A: 200, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 200, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 200, U: 200},
    },
    "modelversion-transitions-post": {
        "data scientist":     {A: 201, U: 404},
        "reviewer":           {A: 403, U: 404},
        "compliance officer": {A: 403, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 201, U: 201},
    },
    # The column is the `?project=` filter; what each role sees is checked below.
    "auditevent-list": {
        "data scientist":     both(403),
        "reviewer":           both(403),
        "compliance officer": both(200),
        "auditor":            both(200),
        "admin":              both(403),
        "superuser":          both(200),
    },
    "auditevent-verify": {
        "data scientist":     both(403),
        "reviewer":           both(403),
        "compliance officer": both(200),
        "auditor":            both(200),
        "admin":              both(403),
        "superuser":          both(200),
    },
    "policy-list": {role: both(200) for role in ROLES},
    "policy-detail": {role: both(200) for role in ROLES},
    "policy-create": {
        "data scientist":     both(403),
        "reviewer":           both(403),
        "compliance officer": both(201),
        "auditor":            both(403),
        "admin":              both(403),
        "superuser":          both(201),
    },
    # A draft proposed by another compliance officer, approved with the right password.
    "policy-approve": {
        "data scientist":     both(403),
        "reviewer":           both(403),
        "compliance officer": both(200),
        "auditor":            both(403),
        "admin":              both(403),
        "superuser":          both(403),  # not a compliance officer
    },
    # The approved high-risk default bound to the project (manage right).
    "policy-bind": {
        "data scientist":     {A: 403, U: 404},
        "reviewer":           {A: 403, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 200, U: 200},
    },
    "fairnessaudit-list": {role: both(200) for role in ROLES},
    "fairnessaudit-detail": {
        "data scientist":     {A: 200, U: 404},
        "reviewer":           {A: 200, U: 404},
        "compliance officer": {A: 200, U: 404},
        "auditor":            {A: 200, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 200, U: 200},
    },
    # New predictions for the project's model version; an invisible version is a 400 like a
    # missing one. 202: the audit is queued and runs when the request commits.
    "fairnessaudit-create": {
        "data scientist":     {A: 202, U: 400},
        "reviewer":           {A: 403, U: 400},
        "compliance officer": {A: 403, U: 400},
        "auditor":            {A: 403, U: 400},
        "admin":              {A: 400, U: 400},
        "superuser":          {A: 202, U: 202},
    },
}
# fmt: on

# The URL name each row exercises (a row may name a method of a view with two).
URL_NAMES = {row: row.removesuffix("-get").removesuffix("-post") for row in EXPECTED}
URL_NAMES["policy-create"] = "policy-list"
URL_NAMES["fairnessaudit-create"] = "fairnessaudit-list"


def predictions_csv(rows: int, *, flip_every: int) -> bytes:
    """Predictions for the world's evaluated data (10 rows): y_true alternates, sex in pairs;
    every `flip_every`-th prediction is wrong, so two values give two different files."""
    lines = ["y_true,y_pred,sex"]
    for i in range(rows):
        truth = i % 2
        pred = 1 - truth if i % flip_every == 0 else truth
        lines.append(f"{truth},{pred},{'f' if (i // 2) % 2 else 'm'}")
    return ("\n".join(lines) + "\n").encode()


class Governance:
    """The governance records of the matrix, added to the world: per project a second model
    version with a pending transition request (so the first can be asked for one) and a
    fairness audit; a draft policy proposed by a compliance officer outside the matrix."""

    def __init__(self, world):
        self.world = world
        self.requests, self.audits = {}, {}
        for key in (A, U):
            records = world.records[key]
            owner = records["project"].owner
            second = factories.model_version(records["registeredmodel"], owner, run=records["run"])
            self.requests[key] = transitions.request_transition(
                second, "validation", actor=owner, justification="ready for validation"
            )
            upload = SimpleUploadedFile("p.csv", predictions_csv(10, flip_every=5))
            self.audits[key], _ = audits.request_audit(
                records["modelversion"], actor=owner, upload=upload, sensitive_features=["sex"]
            )
        author = factories.user("cora", role=Role.COMPLIANCE_OFFICER)
        self.draft = policies.propose_policy_version(
            actor=author,
            name="matrix-high-risk",
            risk_tier=RiskTier.HIGH,
            definition=default_definition(RiskTier.HIGH),
        )
        self.default_high = policies.default_policy(RiskTier.HIGH)

    def call(self, client, row, key):
        """Send the row's request about project `key`'s record; return the response."""
        records = self.world.records[key]
        version = records["modelversion"].pk
        name = URL_NAMES[row]
        by_request = {"args": [self.requests[key].pk]}
        args = {
            "transitionrequest-detail": by_request,
            "transitionrequest-sign": by_request,
            "transitionrequest-withdraw": by_request,
            "transitionrequest-evaluate": by_request,
            "modelversion-transitions": {"args": [version]},
            "policy-detail": {"args": [self.draft.pk]},
            "policy-approve": {"args": [self.draft.pk]},
            "policy-bind": {"args": [self.default_high.pk]},
            "fairnessaudit-detail": {"args": [self.audits[key].pk]},
        }.get(name, {})
        url = reverse(name, **args)
        if row == "transitionrequest-sign":
            body = {"meaning": SignatureMeaning.APPROVED, "password": factories.PASSWORD}
            return client.post(url, body, format="json")
        if row == "transitionrequest-withdraw":
            return client.post(url, {"reason": "not needed"}, format="json")
        if row == "transitionrequest-evaluate":
            return client.post(url, {}, format="json")
        if row == "modelversion-transitions-post":
            body = {"to_stage": "validation", "justification": "validated offline"}
            return client.post(url, body, format="json")
        if row == "policy-create":
            body = {
                "name": "matrix-new",
                "risk_tier": RiskTier.HIGH,
                "definition": default_definition(RiskTier.HIGH),
            }
            return client.post(url, body, format="json")
        if row == "policy-approve":
            return client.post(url, {"password": factories.PASSWORD}, format="json")
        if row == "policy-bind":
            return client.post(url, {"project": key}, format="json")
        if row == "fairnessaudit-create":
            body = {
                "model_version": version,
                "file": SimpleUploadedFile("p.csv", predictions_csv(10, flip_every=3)),
                "sensitive_features": "sex",
            }
            return client.post(url, body, format="multipart")
        if row in ("auditevent-list", "transitionrequest-list", "fairnessaudit-list"):
            return client.get(url, {"project": key} if row == "auditevent-list" else {})
        return client.get(url)


@pytest.fixture(scope="module")
def gov(world, django_db_blocker, tmp_path_factory):
    """The governance records, in the world's transaction (rolled back with it)."""
    media = tmp_path_factory.mktemp("media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media):
        yield Governance(world)


def _client(world, role):
    client = APIClient()
    if role is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
    return client


# --- every endpoint × role × project -----------------------------------------------------


CASES = [
    pytest.param(row, role, key, id=f"{row}-{role}-{key}")
    for row in EXPECTED
    for role in ROLES
    for key in (A, U)
]


@pytest.mark.django_db
@pytest.mark.parametrize(("row", "role", "key"), CASES)
def test_status(world, gov, row, role, key):
    response = gov.call(_client(world, role), row, key)
    assert response.status_code == EXPECTED[row][role][key], response.content[:300]
    if response.status_code == 400:
        # A reference to an invisible project's version reads exactly like one to nothing.
        assert "exists (or it is not visible to you)" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("row", list(EXPECTED))
@pytest.mark.parametrize("key", [A, U])
def test_anonymous_gets_401(world, gov, row, key):
    assert gov.call(_client(world, None), row, key).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["transitionrequest-detail", "policy-detail", "fairnessaudit-detail"]
)
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_governance_records_change_only_through_their_actions(world, gov, name, method):
    pk = {
        "transitionrequest-detail": gov.requests[A].pk,
        "policy-detail": gov.draft.pk,
        "fairnessaudit-detail": gov.audits[A].pk,
    }[name]
    client = _client(world, "superuser")
    response = getattr(client, method)(reverse(name, args=[pk]), {"status": "x"}, format="json")
    assert response.status_code == 405


# --- the rules behind the rows, each at its edge -------------------------------------------


def _grant_role(world, role_name, person, *rights):
    person.groups.add(Group.objects.get(name=role_name))
    factories.grant(world.projects[A], person, *rights)


@pytest.mark.django_db
def test_requester_cannot_approve_own_request(world, gov):
    # Dana also reviews here, so only the separation of duties stands in her way.
    dana = world.people["data scientist"]
    _grant_role(world, Role.REVIEWER, dana, ProjectRight.REVIEW)
    client = _client(world, "data scientist")
    version = world.records[A]["modelversion"]
    created = client.post(
        reverse("modelversion-transitions", args=[version.pk]),
        {"to_stage": "validation", "justification": "mine"},
        format="json",
    )
    assert created.status_code == 201, created.content
    signed = client.post(
        reverse("transitionrequest-sign", args=[created.json()["id"]]),
        {"meaning": SignatureMeaning.APPROVED, "password": factories.PASSWORD},
        format="json",
    )
    assert signed.status_code == 403
    assert "own request" in signed.json()["detail"]
    assert not Signature.objects.filter(request_id=created.json()["id"]).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["reviewer", "compliance officer"])
def test_signing_with_a_wrong_password_is_403_and_records_nothing(world, gov, role):
    request = gov.requests[A]
    response = _client(world, role).post(
        reverse("transitionrequest-sign", args=[request.pk]),
        {"meaning": SignatureMeaning.APPROVED, "password": "wrong"},
        format="json",
    )
    assert response.status_code == 403
    assert "password" in response.json()["detail"]
    assert not request.signatures.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "row", ["transitionrequest-sign", "transitionrequest-withdraw", "transitionrequest-evaluate"]
)
def test_a_decided_request_is_409(world, gov, row):
    request = gov.requests[A]
    transitions.withdraw(request, actor=world.people["superuser"], reason="decided")
    # The compliance officer may do all three to a pending request (see EXPECTED).
    response = gov.call(_client(world, "compliance officer"), row, A)
    assert response.status_code == 409
    assert "withdrawn" in response.json()["detail"]


@pytest.mark.django_db
def test_a_second_pending_request_for_a_version_is_409(world, gov):
    version = gov.requests[A].model_version
    response = _client(world, "data scientist").post(
        reverse("modelversion-transitions", args=[version.pk]),
        {"to_stage": "validation", "justification": "again"},
        format="json",
    )
    assert response.status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"to_stage": "nowhere", "justification": "x"}, 400),
        ({"to_stage": "validation"}, 400),
        ({"to_stage": "production", "justification": "skip the gates"}, 409),
    ],
)
def test_a_bad_transition_request_is_refused(world, gov, body, expected):
    version = world.records[A]["modelversion"]
    response = _client(world, "data scientist").post(
        reverse("modelversion-transitions", args=[version.pk]), body, format="json"
    )
    assert response.status_code == expected
    assert not TransitionRequest.objects.filter(model_version=version).exists()


@pytest.mark.django_db
def test_the_author_of_a_policy_cannot_approve_it(world, gov):
    client = _client(world, "compliance officer")
    body = {
        "name": "mine",
        "risk_tier": RiskTier.HIGH,
        "definition": default_definition(RiskTier.HIGH),
    }
    created = client.post(reverse("policy-list"), body, format="json")
    assert created.status_code == 201, created.content
    approved = client.post(
        reverse("policy-approve", args=[created.json()["id"]]),
        {"password": factories.PASSWORD},
        format="json",
    )
    assert approved.status_code == 403
    assert "author" in approved.json()["detail"]


@pytest.mark.django_db
def test_approving_with_a_wrong_password_is_403(world, gov):
    response = _client(world, "compliance officer").post(
        reverse("policy-approve", args=[gov.draft.pk]), {"password": "wrong"}, format="json"
    )
    assert response.status_code == 403
    gov.draft.refresh_from_db()
    assert gov.draft.status == "draft"


@pytest.mark.django_db
def test_binding_a_draft_policy_is_409(world, gov):
    response = _client(world, "compliance officer").post(
        reverse("policy-bind", args=[gov.draft.pk]), {"project": A}, format="json"
    )
    assert response.status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["data scientist", "compliance officer", "admin"])
def test_binding_to_an_invisible_project_answers_like_a_missing_one(world, gov, role):
    client = _client(world, role)
    url = reverse("policy-bind", args=[gov.default_high.pk])
    invisible = client.post(url, {"project": U}, format="json")
    missing = client.post(url, {"project": "nowhere"}, format="json")
    assert invisible.status_code == missing.status_code == 404
    assert invisible.json() == missing.json()


# --- lists, counts and filters never leak ----------------------------------------------


# Which projects' records each role sees in the scoped lists (superusers see every project).
SEES = {role: ({A} if rights else set()) for role, rights in RIGHTS_ON_ASSIGNED.items()}
SEES["superuser"] = {A, U}


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["transitionrequest-list", "fairnessaudit-list"])
@pytest.mark.parametrize("role", ROLES)
def test_lists_show_only_visible_projects(world, gov, name, role, django_assert_max_num_queries):
    client = _client(world, role)
    with django_assert_max_num_queries(12):
        body = client.get(reverse(name)).json()
    assert {item["project"] for item in body["results"]} == SEES[role]
    assert body["count"] == len(SEES[role])  # one of each per project


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_transition_requests_filtered_by_unassigned_project_find_nothing(world, gov, role):
    body = _client(world, role).get(reverse("transitionrequest-list"), {"project": U}).json()
    assert body["count"] == (1 if U in SEES[role] else 0)


# Filters by a related record's id: (list, filter, the record kind it names).
RELATED_FILTERS = [
    ("transitionrequest-list", "model_version", "modelversion"),
    ("fairnessaudit-list", "model_version", "modelversion"),
    ("fairnessaudit-list", "dataset_version", "datasetversion"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "filter_name", "kind"), RELATED_FILTERS)
@pytest.mark.parametrize("role", [r for r in ROLES if r != "superuser"])
def test_filter_by_invisible_record_answers_like_a_missing_one(
    world, gov, name, filter_name, kind, role
):
    client = _client(world, role)
    invisible = world.records[U][kind].pk
    by_invisible = client.get(reverse(name), {filter_name: invisible})
    by_missing = client.get(reverse(name), {filter_name: 10**9})
    assert by_invisible.status_code == by_missing.status_code
    assert by_invisible.json() == by_missing.json()


# The kinds of record that belong to no project.
# Account administration (users, roles, lockouts) belongs to no project; the trail shows it to
# those who read the trail, without naming any project they cannot see.
PROJECTLESS = {"governance.lifecyclepolicy", "auth.user", "auth.group", "registry.accesschange"}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["compliance officer", "auditor", "superuser"])
def test_audit_trail_shows_only_projects_with_the_export_right(
    world, gov, role, django_assert_max_num_queries
):
    client = _client(world, role)
    with django_assert_max_num_queries(12):
        body = client.get(reverse("auditevent-list"), {"page_size": 500}).json()
    assert body["count"] == len(body["results"])  # all on one page
    keys = {None: None, **{p.pk: key for key, p in world.projects.items()}}
    seen = {keys[event["project_id"]] for event in body["results"]}
    assert seen == ({None, A, U} if role == "superuser" else {None, A})
    if role != "superuser":
        # Events of no project are about records of no project, and never name the
        # unassigned project or its people.
        secret = world.records[U]
        for event in body["results"]:
            if event["project_id"] is None:
                assert event["object_type"] in PROJECTLESS, event
            assert UNASSIGNED not in str(event["after"]) + str(event["before"]), event
            assert event["actor_id"] != secret["project"].owner_id, event


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["compliance officer", "auditor", "superuser"])
def test_audit_trail_filtered_by_unassigned_project_finds_nothing(world, gov, role):
    body = _client(world, role).get(reverse("auditevent-list"), {"project": U}).json()
    assert (body["count"] > 0) == (role == "superuser")
    assert len(body["results"]) == min(body["count"], 50)


@pytest.mark.django_db
def test_audit_trail_needs_the_export_right_not_just_view(world, gov):
    auditor = world.people["auditor"]
    factories.grant(world.projects[U], auditor, ProjectRight.VIEW)
    client = _client(world, "auditor")
    assert client.get(reverse("transitionrequest-list"), {"project": U}).json()["count"] == 1
    assert client.get(reverse("auditevent-list"), {"project": U}).json()["count"] == 0
