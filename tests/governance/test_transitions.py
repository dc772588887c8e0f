"""Transition requests, gates and Part 11 signatures under the shipped policies."""

import json

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from governance import transitions
from governance.audit_chain import verify
from governance.choices import AuditAction, RequestStatus
from governance.errors import Conflict, NotAllowed, PasswordRequired
from governance.models import AuditEvent, Signature, TransitionRequest
from lineage import services as lineage
from registry import accounts
from registry import services as registry
from registry.choices import ProjectRight
from registry.models import ModelVersion, StageWriteRefused
from tests import factories
from tests.factories import PASSWORD, Role
from tests.governance.builders import version_with_evidence

pytestmark = pytest.mark.django_db


def gate(request, name):
    return next(g for g in request.gate_results if g["name"] == name)


def events(action, target):
    return AuditEvent.objects.filter(
        action=action, object_id=str(target.pk), object_type=target._meta.label_lower
    )


def test_stage_cannot_be_written_directly(project, owner):
    version, _ = version_with_evidence(project, owner)
    version.stage = "production"
    with pytest.raises(StageWriteRefused):
        version.save()
    assert ModelVersion.objects.get(pk=version.pk).stage == "development"


def test_request_stores_gate_results_with_reasons(project, owner):
    version, _ = version_with_evidence(project, owner, card=False)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="ready for validation"
    )
    assert gate(request, "lineage_complete")["passed"] is True
    card = gate(request, "model_card_complete")
    assert card["passed"] is False and "intended use" in card["reason"]
    assert gate(request, "approvals")["passed"] is False
    assert events(AuditAction.TRANSITION_REQUESTED, request).count() == 1


def test_transition_not_in_policy_is_refused(project, owner):
    version, _ = version_with_evidence(project, owner)
    with pytest.raises(Conflict, match="does not allow development → production"):
        transitions.request_transition(version, "production", actor=owner, justification="x")


def test_second_pending_request_for_a_version_is_refused(project, owner):
    version, _ = version_with_evidence(project, owner)
    transitions.request_transition(version, "validation", actor=owner, justification="a")
    with pytest.raises(Conflict, match="already has a pending"):
        transitions.request_transition(version, "rejected", actor=owner, justification="b")


@pytest.mark.parametrize("who", ["direct", "via_group", "view_only", "deactivated"])
def test_requesting_needs_the_contribute_right_as_the_database_holds_it(project, owner, who):
    version, _ = version_with_evidence(project, owner)
    person = factories.user(who, role=Role.DATA_SCIENTIST)
    if who == "direct":
        factories.grant(project, person, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
    elif who == "via_group":
        team = Group.objects.create(name="modellers")
        person.groups.add(team)
        factories.grant(project, team, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
    elif who == "view_only":
        factories.grant(project, person, ProjectRight.VIEW)
    else:
        factories.grant(project, person, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
        # Deactivated in the database; the user object in hand still says active.
        type(person).objects.filter(pk=person.pk).update(is_active=False)
    if who in ("direct", "via_group"):
        request = transitions.request_transition(
            version, "validation", actor=person, justification="x"
        )
        assert request.requested_by == person
    else:
        with pytest.raises(NotAllowed, match="'contribute' right"):
            transitions.request_transition(version, "validation", actor=person, justification="x")
        assert not TransitionRequest.objects.filter(model_version=version).exists()


def test_the_database_holds_one_pending_request_per_version(project, owner):
    version, _ = version_with_evidence(project, owner)
    first = transitions.request_transition(version, "validation", actor=owner, justification="a")
    second = TransitionRequest(
        model_version=version,
        from_stage=first.from_stage,
        to_stage="rejected",
        justification="written around the action",
        requested_by=owner,
        requested_by_name="Olive Tester",
        policy=first.policy,
        rule=first.rule,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
    # Once the first is decided, a new request may be pending again.
    transitions.withdraw(first, actor=owner)
    transitions.request_transition(version, "rejected", actor=owner, justification="b")


@pytest.mark.parametrize("revoked", ["role", "review right", "account"])
def test_a_role_or_right_revoked_while_the_password_is_checked_refuses_the_signature(
    project, owner, reviewer, monkeypatch, revoked
):
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    confirm = transitions.confirm_password

    def confirm_then_revoke(user, password, http_request=None):
        confirm(user, password, http_request)
        # An administrator's change, committed while the password hash was being computed.
        if revoked == "role":
            user.groups.remove(Group.objects.get(name=Role.REVIEWER))
        elif revoked == "account":
            # Deactivated in the database; the user object the caller holds still says active.
            type(user).objects.filter(pk=user.pk).update(is_active=False)
        else:
            accounts.revoke_project_rights(project, user, [ProjectRight.REVIEW], actor=None)

    monkeypatch.setattr(transitions, "confirm_password", confirm_then_revoke)
    with pytest.raises(NotAllowed):
        transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    assert not Signature.objects.filter(request=request).exists()
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_requester_cannot_approve_own_request(project, owner):
    owner.groups.add(Group.objects.get(name=Role.REVIEWER))
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    with pytest.raises(NotAllowed, match="your own request"):
        transitions.sign(request, signer=owner, meaning="approved", password=PASSWORD)
    assert not Signature.objects.exists()


def test_requester_may_sign_as_author(project, owner):
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    signature = transitions.sign(request, signer=owner, meaning="authored", password=PASSWORD)
    assert signature.role == "requester"
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_data_scientist_with_review_right_still_cannot_approve(project, owner, member):
    factories.grant(project, member, ProjectRight.REVIEW)
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    with pytest.raises(NotAllowed, match="your role may not sign"):
        transitions.sign(request, signer=member, meaning="approved", password=PASSWORD)


def test_reviewer_without_review_right_on_project_cannot_sign(project, owner, reviewer):
    registry_project = factories.project(owner, key="elsewhere")
    factories.grant(registry_project, reviewer, ProjectRight.VIEW)
    version, _ = version_with_evidence(registry_project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    with pytest.raises(NotAllowed, match="'review' right"):
        transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)


def test_who_may_not_sign_is_refused_before_the_password_is_checked(project, owner, member, rf):
    """A refusal, not a password prompt, and no failed attempt toward lockout."""
    from axes.models import AccessAttempt

    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    http_request = rf.post("/api/v1/transition-requests/1/sign/")
    for signer, refusal in ((member, "'review' right"), (owner, "your own request")):
        with pytest.raises(NotAllowed, match=refusal):
            transitions.sign(
                request,
                signer=signer,
                meaning="approved",
                password="wrong",
                http_request=http_request,
            )
    assert not AccessAttempt.objects.exists()
    assert not Signature.objects.exists()


def test_who_may_not_sign_a_decided_request_is_refused_not_told_it_is_decided(
    project, owner, reviewer, member
):
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    transitions.withdraw(request, actor=owner)
    with pytest.raises(NotAllowed):
        transitions.sign(request, signer=member, meaning="approved", password=PASSWORD)
    with pytest.raises(Conflict, match="withdrawn"):
        transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)


def test_wrong_password_refuses_signature_and_counts_toward_lockout(project, owner, reviewer, rf):
    from axes.models import AccessAttempt

    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    http_request = rf.post("/api/v1/transition-requests/1/sign/")
    with pytest.raises(PasswordRequired, match="not correct"):
        transitions.sign(
            request,
            signer=reviewer,
            meaning="approved",
            password="wrong",
            http_request=http_request,
        )
    assert not Signature.objects.exists()
    assert AccessAttempt.objects.get(username="rory").failures_since_start == 1


def test_approval_applies_transition_and_records_the_signature_manifestation(
    project, owner, reviewer
):
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="evidence complete"
    )
    signature = transitions.sign(
        request, signer=reviewer, meaning="approved", password=PASSWORD, comment="looks right"
    )
    request.refresh_from_db()
    version.refresh_from_db()
    assert (request.status, version.stage) == (RequestStatus.APPLIED, "validation")
    assert signature.printed_name == "Rory Tester" and signature.meaning == "approved"
    assert signature.signed_at.utcoffset().total_seconds() == 0
    signed = json.loads(signature.signed_record)
    assert signed["model_version"]["id"] == version.pk
    assert signed["transition_request"]["justification"] == "evidence complete"
    stage_events = events(AuditAction.STAGE_CHANGED, version)
    assert json.loads(stage_events.get().payload)["after"]["stage"] == "validation"
    assert events(AuditAction.TRANSITION_APPLIED, request).count() == 1
    assert events(AuditAction.SIGNATURE_RECORDED, signature).count() == 1
    assert verify().valid


def test_rejection_closes_the_request_and_keeps_the_stage(
    project, owner, reviewer, second_reviewer
):
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    transitions.sign(
        request,
        signer=reviewer,
        meaning="rejected",
        password=PASSWORD,
        comment="model card is vague",
    )
    request.refresh_from_db()
    version.refresh_from_db()
    assert (request.status, version.stage) == (RequestStatus.REJECTED, "development")
    assert "model card is vague" in request.decision_note
    with pytest.raises(Conflict, match="rejected"):
        transitions.sign(request, signer=second_reviewer, meaning="approved", password=PASSWORD)
    assert events(AuditAction.TRANSITION_REJECTED, request).count() == 1


def test_approval_while_evidence_fails_does_not_apply(project, owner, reviewer):
    version, _ = version_with_evidence(project, owner, card=False)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert gate(request, "model_card_complete")["passed"] is False


def test_an_approval_no_longer_matches_when_the_record_changes(
    project, owner, reviewer, second_reviewer
):
    version, _ = version_with_evidence(project, owner, card=False)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    registry.update_model_version(
        version, actor=owner, **dict.fromkeys(ModelVersion.MODEL_CARD_FIELDS, "filled")
    )
    transitions.reevaluate(request, actor=owner)
    request.refresh_from_db()
    approvals = gate(request, "approvals")
    assert request.status == RequestStatus.PENDING
    assert "no longer match the record" in approvals["reason"]
    transitions.sign(request, signer=second_reviewer, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    assert request.status == RequestStatus.APPLIED


def test_withdrawn_request_cannot_be_signed(project, owner, reviewer, member):
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    with pytest.raises(NotAllowed):
        transitions.withdraw(request, actor=member)
    transitions.withdraw(request, actor=owner, reason="wrong version")
    with pytest.raises(Conflict, match="withdrawn"):
        transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    assert events(AuditAction.TRANSITION_WITHDRAWN, request).count() == 1


def test_lineage_gate_fails_then_passes_when_the_run_gains_its_inputs(project, owner, reviewer):
    code = factories.code_version(project, owner)
    run = factories.run(project, owner, code=code)
    model = factories.registered_model(project, owner)
    version = factories.model_version(
        model, owner, run=run, **dict.fromkeys(ModelVersion.MODEL_CARD_FIELDS, "filled")
    )
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    assert "input dataset versions" in gate(request, "lineage_complete")["reason"]
    lineage.update_run(
        run, actor=owner, input_datasets=[factories.dataset_version(project, owner, split="train")]
    )
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    assert request.status == RequestStatus.APPLIED
