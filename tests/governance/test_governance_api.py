"""The governance API: requesting, signing, withdrawing, reading requests and the trail."""

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections

from governance.audit_chain import verify
from governance.choices import RequestStatus
from governance.models import AuditEvent, LifecyclePolicy, Signature, TransitionRequest
from registry.choices import ProjectRight
from tests import factories
from tests.factories import PASSWORD, Role
from tests.governance.builders import bind_changed_policy, version_with_evidence

pytestmark = pytest.mark.django_db


def test_data_scientist_requests_a_transition(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    response = api.as_user(owner).post(
        f"/api/v1/model-versions/{version.pk}/transitions/",
        {"to_stage": "validation", "justification": "ready"},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["from_stage"] == "development"
    assert {g["name"] for g in body["gate_results"]} == {
        "lineage_complete",
        "model_card_complete",
        "approvals",
    }


def test_outsider_gets_404_when_requesting_on_an_invisible_version(api, project, owner, outsider):
    version, _ = version_with_evidence(project, owner)
    response = api.as_user(outsider).post(
        f"/api/v1/model-versions/{version.pk}/transitions/",
        {"to_stage": "validation", "justification": "x"},
    )
    assert response.status_code == 404


def test_reviewer_role_cannot_request_transitions(api, project, owner, reviewer):
    version, _ = version_with_evidence(project, owner)
    response = api.as_user(reviewer).post(
        f"/api/v1/model-versions/{version.pk}/transitions/",
        {"to_stage": "validation", "justification": "x"},
    )
    assert response.status_code == 403


def test_bad_stage_is_400_and_disallowed_transition_is_409(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    client = api.as_user(owner)
    url = f"/api/v1/model-versions/{version.pk}/transitions/"
    bad = client.post(url, {"to_stage": "heaven", "justification": "x"})
    assert bad.status_code == 400 and "to_stage" in bad.json()
    skip = client.post(url, {"to_stage": "production", "justification": "x"})
    assert skip.status_code == 409 and "does not allow" in skip.json()["detail"]
    assert not TransitionRequest.objects.exists()


def test_sign_endpoint_applies_the_transition(api, project, owner, reviewer):
    version, _ = version_with_evidence(project, owner)
    created = (
        api.as_user(owner)
        .post(
            f"/api/v1/model-versions/{version.pk}/transitions/",
            {"to_stage": "validation", "justification": "ready"},
        )
        .json()
    )
    response = api.as_user(reviewer).post(
        f"/api/v1/transition-requests/{created['id']}/sign/",
        {"meaning": "approved", "password": PASSWORD, "comment": "ok"},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == RequestStatus.APPLIED
    [signature] = body["signatures"]
    assert signature["printed_name"] == "Rory Tester" and signature["meaning"] == "approved"
    assert signature["record_matches"] is True and len(signature["record_sha256"]) == 64
    version.refresh_from_db()
    assert version.stage == "validation"


def test_sign_with_wrong_password_is_403_and_writes_nothing(api, project, owner, reviewer):
    version, _ = version_with_evidence(project, owner)
    created = (
        api.as_user(owner)
        .post(
            f"/api/v1/model-versions/{version.pk}/transitions/",
            {"to_stage": "validation", "justification": "ready"},
        )
        .json()
    )
    events_before = AuditEvent.objects.count()
    response = api.as_user(reviewer).post(
        f"/api/v1/transition-requests/{created['id']}/sign/",
        {"meaning": "approved", "password": "nope"},
    )
    assert response.status_code == 403 and "password" in response.json()["detail"]
    assert AuditEvent.objects.count() == events_before


def test_requester_signing_own_request_is_403(api, project, owner):
    owner.groups.add(Group.objects.get(name=Role.REVIEWER))
    version, _ = version_with_evidence(project, owner)
    created = (
        api.as_user(owner)
        .post(
            f"/api/v1/model-versions/{version.pk}/transitions/",
            {"to_stage": "validation", "justification": "ready"},
        )
        .json()
    )
    response = api.as_user(owner).post(
        f"/api/v1/transition-requests/{created['id']}/sign/",
        {"meaning": "approved", "password": PASSWORD},
    )
    assert response.status_code == 403


def test_withdraw_endpoint(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    created = (
        api.as_user(owner)
        .post(
            f"/api/v1/model-versions/{version.pk}/transitions/",
            {"to_stage": "validation", "justification": "ready"},
        )
        .json()
    )
    response = api.as_user(owner).post(
        f"/api/v1/transition-requests/{created['id']}/withdraw/", {"reason": "oops"}
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    again = api.as_user(owner).post(f"/api/v1/transition-requests/{created['id']}/withdraw/")
    assert again.status_code == 409


def _pending_requests(project, owner, n):
    for _ in range(n):
        version, _ = version_with_evidence(project, owner, evaluate=False)
        from governance import transitions

        transitions.request_transition(version, "validation", actor=owner, justification="x")


def test_pending_list_is_scoped_and_constant_in_queries(
    api, project, owner, outsider, other_project, reviewer, django_assert_max_num_queries
):
    _pending_requests(project, owner, 1)
    hidden, _ = version_with_evidence(other_project, outsider, evaluate=False)
    from governance import transitions

    transitions.request_transition(hidden, "validation", actor=outsider, justification="x")
    client = api.as_user(reviewer)
    with django_assert_max_num_queries(12):
        one = client.get("/api/v1/transition-requests/?status=pending")
    assert one.json()["count"] == 1
    _pending_requests(project, owner, 15)
    with django_assert_max_num_queries(12):
        many = client.get("/api/v1/transition-requests/?status=pending&signable=true")
    assert many.json()["count"] == 16
    assert all(r["project"] == "credit" for r in many.json()["results"])


def test_outsider_gets_404_for_a_request(api, project, owner, outsider):
    _pending_requests(project, owner, 1)
    request = TransitionRequest.objects.get()
    assert (
        api.as_user(outsider).get(f"/api/v1/transition-requests/{request.pk}/").status_code == 404
    )


def test_audit_list_filters_and_query_count(
    api, project, owner, auditor, django_assert_max_num_queries
):
    _pending_requests(project, owner, 3)
    client = api.as_user(auditor)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/audit-events/?action=transition.requested&page_size=100")
    results = response.json()["results"]
    assert len(results) == 3 and {r["action"] for r in results} == {"transition.requested"}
    assert results[0]["sequence"] > results[-1]["sequence"]  # newest first
    by_actor = client.get("/api/v1/audit-events/", {"actor": owner.pk, "page_size": 500}).json()
    assert by_actor["count"] > 3  # the requests and the records the owner made for them
    assert {r["actor_id"] for r in by_actor["results"]} == {owner.pk}
    assert client.get("/api/v1/audit-events/", {"actor": auditor.pk}).json()["count"] == 0


def test_data_scientist_cannot_read_the_audit_trail(api, project, member):
    assert api.as_user(member).get("/api/v1/audit-events/").status_code == 403


def test_policy_version_needs_a_compliance_officers_signature(api, project, compliance, owner):
    from governance.policy_rules import default_definition

    other_officer = factories.user("cora", role=Role.COMPLIANCE_OFFICER)
    factories.grant(project, other_officer, ProjectRight.VIEW, ProjectRight.MANAGE)
    draft = api.as_user(compliance).post(
        "/api/v1/policies/",
        {
            "name": "credit-strict",
            "risk_tier": "high",
            "definition": default_definition("high"),
        },
        format="json",
    )
    assert draft.status_code == 201, draft.json()
    policy_id = draft.json()["id"]
    refused = api.as_user(other_officer).post(
        f"/api/v1/policies/{policy_id}/bind/", {"project": "credit"}
    )
    assert refused.status_code == 409 and "not approved" in refused.json()["detail"]
    own = api.as_user(compliance).post(
        f"/api/v1/policies/{policy_id}/approve/", {"password": PASSWORD}
    )
    assert own.status_code == 403  # the author cannot approve their own policy
    approved = api.as_user(other_officer).post(
        f"/api/v1/policies/{policy_id}/approve/", {"password": PASSWORD}
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    bound = api.as_user(other_officer).post(
        f"/api/v1/policies/{policy_id}/bind/", {"project": "credit"}
    )
    assert bound.status_code == 200
    assert project.policy_binding.policy_id == policy_id


def test_invalid_policy_definition_is_400(api, compliance):
    response = api.as_user(compliance).post(
        "/api/v1/policies/",
        {
            "name": "broken",
            "risk_tier": "high",
            "definition": {"stages": ["nowhere"]},
        },
        format="json",
    )
    assert response.status_code == 400 and "definition" in response.json()


def test_policy_refusals_come_before_the_body_and_the_password(api, compliance, member, reviewer):
    """A role that may not propose gets 403 even for an invalid body; one that may not approve
    gets 403 even with a wrong password, and no failed attempt toward lockout."""
    from axes.models import AccessAttempt

    broken = {"name": "broken", "risk_tier": "high", "definition": {"stages": ["nowhere"]}}
    response = api.as_user(member).post("/api/v1/policies/", broken, format="json")
    assert response.status_code == 403, response.content
    draft = LifecyclePolicy.objects.filter(status="approved").first()
    proposed = api.as_user(compliance).post(
        "/api/v1/policies/",
        {"name": "stricter", "risk_tier": "high", "definition": draft.definition},
        format="json",
    )
    assert proposed.status_code == 201, proposed.content
    for person in (reviewer, compliance):  # not a compliance officer; the author
        response = api.as_user(person).post(
            f"/api/v1/policies/{proposed.json()['id']}/approve/", {"password": "wrong"}
        )
        assert response.status_code == 403, response.content
    assert not AccessAttempt.objects.exists()


def sign_at_once(request, signers) -> list[str]:
    """Every signer approves `request` at the same moment, each in a thread of their own;
    the outcome of each ("signed" or the exception's name)."""
    from governance import transitions

    barrier = threading.Barrier(len(signers))
    outcomes = []

    def sign(person):
        try:
            barrier.wait()
            transitions.sign(request, signer=person, meaning="approved", password=PASSWORD)
            outcomes.append("signed")
        except Exception as exc:  # noqa: BLE001 - every outcome is asserted by the callers
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sign, args=(person,)) for person in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def assert_applied_once_with_a_whole_chain(request, version) -> None:
    request.refresh_from_db()
    version.refresh_from_db()
    assert request.status == RequestStatus.APPLIED and version.stage == "validation"
    assert AuditEvent.objects.filter(action="transition.applied").count() == 1
    assert AuditEvent.objects.filter(action="stage.changed").count() == 1
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert verify().valid


def people(project, role, prefix, count):
    found = []
    for i in range(count):
        person = factories.user(f"{prefix}{i}", role=role)
        factories.grant(project, person, ProjectRight.VIEW, ProjectRight.REVIEW)
        found.append(person)
    return found


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_reviewers_signing_at_once_apply_the_transition_exactly_once():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: row locks under real concurrency")
    from governance import transitions

    owner = factories.user("olive", role=Role.DATA_SCIENTIST)
    project = factories.project(owner, key="race")
    reviewers = people(project, Role.REVIEWER, "reviewer", 20)
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="race"
    )
    outcomes = sign_at_once(request, reviewers)
    # The rule needs one approval: one signature applies it, the other 19 find it decided.
    assert outcomes.count("signed") == 1 and outcomes.count("Conflict") == 19
    assert_applied_once_with_a_whole_chain(request, version)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_signers_racing_for_two_approvals_with_a_compliance_officer_apply_it_once():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: row locks under real concurrency")
    from governance import transitions

    owner = factories.user("olive", role=Role.DATA_SCIENTIST)
    project = factories.project(owner, key="race")
    reviewers = people(project, Role.REVIEWER, "reviewer", 10)
    officers = people(project, Role.COMPLIANCE_OFFICER, "officer", 10)

    def two_with_compliance(definition):
        for rule in definition["transitions"]:
            if (rule["from"], rule["to"]) == ("development", "validation"):
                rule["approvals"]["count"] = 2
                rule["approvals"]["compliance_officer_required"] = True

    bind_changed_policy(
        project,
        proposer=owner,
        compliance=officers[0],
        name="race-strict",
        change=two_with_compliance,
    )
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="race"
    )
    signers = [p for pair in zip(reviewers, officers, strict=True) for p in pair]
    outcomes = sign_at_once(request, signers)
    assert set(outcomes) <= {"signed", "Conflict"}
    stored = list(Signature.objects.filter(request=request).select_related("signer"))
    # Every signature made before the transition applied is stored, and counted: the one
    # that applied it was the first to complete two approvals with a compliance officer's.
    assert len(stored) == outcomes.count("signed") >= 2
    assert any(s.role == Role.COMPLIANCE_OFFICER for s in stored)
    assert len({s.signer_id for s in stored}) == len(stored)
    assert_applied_once_with_a_whole_chain(request, version)
    request.refresh_from_db()
    [gate] = [g for g in request.gate_results if g["name"] == "approvals"]
    assert gate["passed"] and "compliance officer signed" in gate["reason"]
