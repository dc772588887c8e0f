"""Signature rules: approvals come from distinct people, and a signature stays bound to the
exact record it signed — when the record changes afterwards, the signature shows it."""

import pytest
from axes.models import AccessAttempt
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import transitions
from governance.audit_chain import sha256_hex
from governance.choices import AuditAction, RequestStatus
from governance.errors import Conflict, NotAllowed
from governance.models import AuditEvent, Signature, TransitionRequest
from registry import services as registry
from tests.factories import PASSWORD
from tests.governance.builders import (
    bind_changed_policy,
    require_two_approvals,
    version_with_evidence,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_reviewers_policy(project, owner, compliance):
    """The project moves to a policy whose first transition needs two reviewers' approvals."""

    return bind_changed_policy(
        project,
        proposer=owner,
        compliance=compliance,
        name="credit-two-reviewers",
        change=require_two_approvals,
    )


@pytest.fixture
def pending(project, owner, two_reviewers_policy):
    """A request needing two approvals, for a version with complete evidence."""
    version, _ = version_with_evidence(project, owner)
    return transitions.request_transition(
        version, "validation", actor=owner, justification="ready for validation"
    )


def approvals(request) -> dict:
    request.refresh_from_db()
    return next(g for g in request.gate_results if g["name"] == "approvals")


def sign_url(request) -> str:
    return f"/api/v1/transition-requests/{request.pk}/sign/"


# --- approvals come from distinct people -----------------------------------------------------


def test_same_reviewer_signing_twice_counts_once(pending, reviewer):
    transitions.sign(pending, signer=reviewer, meaning="approved", password=PASSWORD)
    assert approvals(pending)["reason"] == "1 of 2 approvals"
    with pytest.raises(Conflict, match="you have already signed this request"):
        transitions.sign(pending, signer=reviewer, meaning="approved", password=PASSWORD)
    assert Signature.objects.filter(request=pending).count() == 1
    assert approvals(pending)["reason"] == "1 of 2 approvals"
    assert pending.status == RequestStatus.PENDING


def test_second_signature_by_the_same_reviewer_is_409_via_the_api(api, pending, reviewer):
    client = api.as_user(reviewer)
    first = client.post(sign_url(pending), {"meaning": "approved", "password": PASSWORD})
    assert first.status_code == 201, first.json()
    events = AuditEvent.objects.count()
    for meaning in ("approved", "reviewed"):
        again = client.post(sign_url(pending), {"meaning": meaning, "password": PASSWORD})
        assert again.status_code == 409
        assert again.json() == {"detail": "you have already signed this request"}
    assert AuditEvent.objects.count() == events  # nothing written for the refusals
    assert not AccessAttempt.objects.exists()  # the right password: no step toward lockout
    body = client.get(f"/api/v1/transition-requests/{pending.pk}/").json()
    assert body["status"] == "pending" and len(body["signatures"]) == 1
    approval = next(g for g in body["gate_results"] if g["name"] == "approvals")
    assert approval["reason"] == "1 of 2 approvals" and approval["passed"] is False


def test_database_refuses_a_second_signature_by_the_same_person(pending, reviewer):
    transitions.sign(pending, signer=reviewer, meaning="approved", password=PASSWORD)
    first = Signature.objects.get(request=pending)
    with pytest.raises(IntegrityError), transaction.atomic():
        Signature.objects.create(
            request=pending,
            signer=reviewer,
            printed_name=first.printed_name,
            role=first.role,
            signed_at=timezone.now(),
            meaning="approved",
            record_sha256=first.record_sha256,
            signed_record=first.signed_record,
        )
    assert Signature.objects.filter(request=pending).count() == 1


def test_the_approvals_gate_counts_a_person_once_whatever_it_is_given(pending, reviewer):
    # The gate itself, not only the table's constraint, keeps one approval per person.
    transitions.sign(pending, signer=reviewer, meaning="approved", password=PASSWORD)
    first = Signature.objects.get(request=pending)
    copy = Signature(**{f.attname: getattr(first, f.attname) for f in Signature._meta.fields})
    copy.pk = None
    gate = transitions.approvals_gate(pending, signatures=[first, copy])
    assert gate.reason == "1 of 2 approvals"
    assert not gate.passed
    assert gate.evidence == {"signatures": [first.pk]}


def test_two_distinct_reviewers_apply_the_transition(pending, reviewer, second_reviewer):
    transitions.sign(pending, signer=reviewer, meaning="approved", password=PASSWORD)
    transitions.sign(pending, signer=second_reviewer, meaning="approved", password=PASSWORD)
    assert approvals(pending)["reason"] == "2 of 2 approvals"
    assert pending.status == RequestStatus.APPLIED
    signers = set(Signature.objects.filter(request=pending).values_list("signer", flat=True))
    assert signers == {reviewer.pk, second_reviewer.pk}


# --- a request signature tracks its record ---------------------------------------------------


def test_request_signature_no_longer_matches_once_the_record_changes(
    api, pending, owner, reviewer, second_reviewer, auditor
):
    transitions.sign(pending, signer=reviewer, meaning="approved", password=PASSWORD)
    url = f"/api/v1/transition-requests/{pending.pk}/"
    before = api.as_user(auditor).get(url).json()
    [signature] = before["signatures"]
    assert signature["record_matches"] is True
    assert signature["record_sha256"] == before["current_record_sha256"]

    # The signed record includes the model card: a change after the signature breaks the bond.
    registry.update_model_version(
        pending.model_version, actor=owner, limitations="Not for applicants under 21."
    )
    after = api.as_user(auditor).get(url).json()
    [signature] = after["signatures"]
    assert signature["record_matches"] is False
    assert after["current_record_sha256"] != signature["record_sha256"]
    # The signature itself is unchanged, and its stored text still hashes to its hash.
    stored = Signature.objects.get(request=pending)
    assert stored.record_sha256 == before["signatures"][0]["record_sha256"]
    assert sha256_hex(stored.signed_record) == stored.record_sha256
    assert "Not for applicants under 21." not in stored.signed_record

    # A stale approval no longer counts: a second reviewer does not complete the request.
    transitions.sign(pending, signer=second_reviewer, meaning="approved", password=PASSWORD)
    gate = approvals(pending)
    assert gate["reason"] == (
        "1 of 2 approvals; 1 approval(s) no longer match the record and must be renewed"
    )
    assert pending.status == RequestStatus.PENDING
    assert TransitionRequest.objects.get(pk=pending.pk).model_version.stage == "development"
    recorded = AuditEvent.objects.filter(action=AuditAction.SIGNATURE_RECORDED)
    assert list(recorded.order_by("sequence").values_list("actor_id", flat=True)) == [
        reviewer.pk,
        second_reviewer.pk,
    ]


# --- a signature's meaning is true of its signer ---------------------------------------------


@pytest.mark.parametrize("meaning", ["authored", "responsibility"])
@pytest.mark.parametrize("who", ["reviewer", "member", "auditor"])
def test_only_the_requester_signs_as_author_or_responsible(api, pending, meaning, who, request):
    # 21 CFR 11.50: a signature's meaning must be true of the person who signs.
    signer = request.getfixturevalue(who)
    events = AuditEvent.objects.count()
    response = api.as_user(signer).post(
        sign_url(pending), {"meaning": meaning, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.json() == {"detail": f"only the requester can sign a request as '{meaning}'"}
    assert not Signature.objects.filter(request=pending).exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("meaning", ["authored", "responsibility"])
def test_the_requester_signs_as_author_or_responsible(api, pending, owner, meaning):
    response = api.as_user(owner).post(
        sign_url(pending), {"meaning": meaning, "password": PASSWORD}
    )
    assert response.status_code == 201, response.json()
    signature = Signature.objects.get(request=pending)
    assert (signature.signer, signature.meaning, signature.role) == (owner, meaning, "requester")
    assert approvals(pending)["reason"] == "0 of 2 approvals"  # authorship approves nothing


def test_a_requester_who_lost_the_contribute_right_cannot_sign_as_author(pending, owner, project):
    from guardian.shortcuts import remove_perm

    remove_perm("contribute_project", owner, project)
    with pytest.raises(NotAllowed, match="'contribute' right"):
        transitions.sign(pending, signer=owner, meaning="authored", password=PASSWORD)
