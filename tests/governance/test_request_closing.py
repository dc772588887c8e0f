"""A pending transition request is closed when it can no longer apply (issue 4): superseded as
soon as its version's stage moves by another request, expired once its policy's
`request_expiry_days` pass, each with its audit event, without anyone touching it."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from config.request_context import acting_as
from governance import transitions
from governance.audit_chain import verify
from governance.choices import AuditAction, RequestStatus
from governance.errors import Conflict
from governance.models import AuditEvent, TransitionRequest
from governance.tasks import expire_transition_requests_task
from registry.choices import Stage
from tests import factories
from tests.factories import PASSWORD
from tests.governance.builders import add_fast_track, bind_changed_policy, version_with_evidence

pytestmark = pytest.mark.django_db


def events(action, request):
    return list(
        AuditEvent.objects.filter(
            action=action, object_type="governance.transitionrequest", object_id=str(request.pk)
        )
    )


def status_of(request) -> str:
    return TransitionRequest.objects.values_list("status", flat=True).get(pk=request.pk)


def approve(request, signer):
    transitions.sign(request, signer=signer, meaning="approved", password=PASSWORD)


# --- Superseded when the version moves -----------------------------------------------------


@pytest.fixture
def fast_track(project, owner, compliance):
    """The high-risk policy plus development → production on one reviewer's approval,
    demoting the model's previous production version."""
    return bind_changed_policy(
        project, proposer=owner, compliance=compliance, name="fast-track", change=add_fast_track
    )


def test_a_demoted_versions_pending_request_is_superseded_with_its_audit_event(
    fast_track, project, owner, reviewer, second_reviewer
):
    model = factories.registered_model(project, owner)
    first = factories.model_version(model, owner)
    second = factories.model_version(model, owner)
    approve(
        transitions.request_transition(first, "production", actor=owner, justification="go"),
        reviewer,
    )
    suspension = transitions.request_transition(
        first, "suspended", actor=owner, justification="drift suspected"
    )
    promotion = transitions.request_transition(
        second, "production", actor=owner, justification="better"
    )

    approve(promotion, second_reviewer)

    first.refresh_from_db()
    assert first.stage == Stage.DEPRECATED
    assert status_of(promotion) == RequestStatus.APPLIED
    suspension.refresh_from_db()
    assert suspension.status == RequestStatus.SUPERSEDED
    assert suspension.decided_at is not None
    assert suspension.decision_note == (
        f"the version moved to deprecated meanwhile (transition request {promotion.pk})"
    )
    [event] = events(AuditAction.TRANSITION_SUPERSEDED, suspension)
    assert (event.actor_id, event.actor_name) == (second_reviewer.pk, "Riley Tester")
    assert suspension.history.first().history_change_reason == suspension.decision_note
    # Closed, it can no longer be signed (nor applied to a version that is not in production).
    with pytest.raises(Conflict, match="superseded"):
        approve(suspension, reviewer)
    assert verify().valid


def test_a_demotion_without_a_pending_request_closes_nothing(
    fast_track, project, owner, reviewer, second_reviewer
):
    model = factories.registered_model(project, owner)
    first = factories.model_version(model, owner)
    second = factories.model_version(model, owner)
    for version, signer in ((first, reviewer), (second, second_reviewer)):
        approve(
            transitions.request_transition(version, "production", actor=owner, justification="go"),
            signer,
        )
    assert not AuditEvent.objects.filter(action=AuditAction.TRANSITION_SUPERSEDED).exists()
    assert set(TransitionRequest.objects.values_list("status", flat=True)) == {
        RequestStatus.APPLIED
    }


# --- Expired after the policy's request_expiry_days ---------------------------------------


@pytest.fixture
def pending(project, owner):
    """A request made under the high-risk policy, whose requests expire after 30 days."""
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="ready"
    )
    assert request.policy.definition["settings"]["request_expiry_days"] == 30
    return request


def days_later(days: int):
    return timezone.now() + timedelta(days=days)


def test_a_pending_request_past_its_policys_expiry_is_expired_by_the_system(pending, owner):
    # Even when run inside someone's request, the expiry is the system's act.
    with acting_as(owner):
        expired = transitions.expire_stale_requests(now=days_later(31))
    assert [r.pk for r in expired] == [pending.pk]
    pending.refresh_from_db()
    assert pending.status == RequestStatus.EXPIRED
    assert pending.decision_note == "not decided within 30 days"
    [event] = events(AuditAction.TRANSITION_EXPIRED, pending)
    assert (event.actor_id, event.actor_name) == (None, "system")
    assert pending.history.first().history_actor_name == "system"
    with pytest.raises(Conflict, match="expired"):
        transitions.withdraw(pending, actor=owner)
    assert verify().valid


def test_a_request_within_its_expiry_stays_pending(pending):
    assert transitions.expire_stale_requests(now=days_later(29)) == []
    assert status_of(pending) == RequestStatus.PENDING
    assert not events(AuditAction.TRANSITION_EXPIRED, pending)


def test_expiring_twice_expires_once(pending):
    assert len(transitions.expire_stale_requests(now=days_later(31))) == 1
    assert transitions.expire_stale_requests(now=days_later(32)) == []
    assert len(events(AuditAction.TRANSITION_EXPIRED, pending)) == 1


def test_a_decided_request_is_not_expired(pending, owner):
    transitions.withdraw(pending, actor=owner, reason="not yet")
    assert transitions.expire_stale_requests(now=days_later(31)) == []
    assert status_of(pending) == RequestStatus.WITHDRAWN
    assert not events(AuditAction.TRANSITION_EXPIRED, pending)


def test_a_named_actor_is_recorded_as_the_one_who_expired(pending, compliance):
    transitions.expire_stale_requests(actor=compliance, now=days_later(31))
    [event] = events(AuditAction.TRANSITION_EXPIRED, pending)
    assert (event.actor_id, event.actor_name) == (compliance.pk, "Casey Tester")


@pytest.fixture
def made_31_days_ago(pending):
    # Time passes: the request's creation is moved back rather than the clock forward.
    TransitionRequest.objects.filter(pk=pending.pk).update(created_at=days_later(-31))
    return pending


def test_the_management_command_expires_stale_requests(made_31_days_ago, capsys):
    call_command("expire_transition_requests")
    assert status_of(made_31_days_ago) == RequestStatus.EXPIRED
    assert "1 transition request(s) expired" in capsys.readouterr().out
    call_command("expire_transition_requests")
    assert "0 transition request(s) expired" in capsys.readouterr().out
    assert len(events(AuditAction.TRANSITION_EXPIRED, made_31_days_ago)) == 1


def test_the_celery_task_expires_stale_requests_and_beat_runs_it(made_31_days_ago):
    result = expire_transition_requests_task.delay().get()
    assert result == {"expired": [made_31_days_ago.pk]}
    assert status_of(made_31_days_ago) == RequestStatus.EXPIRED
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert expire_transition_requests_task.name in scheduled


# --- Superseded when the project moves to another policy version ---------------------------


def test_a_policy_change_supersedes_the_requests_made_under_the_old_version(
    pending, project, owner, reviewer, compliance
):
    # The new version needs two approvals where the old rule needed one: the old request
    # must not be applied on the old rule's one approval.
    def two_approvals(definition):
        for rule in definition["transitions"]:
            if (rule["from"], rule["to"]) == ("development", "validation"):
                rule["approvals"]["count"] = 2

    policy = bind_changed_policy(
        project, proposer=owner, compliance=compliance, name="credit-v2", change=two_approvals
    )
    assert status_of(pending) == RequestStatus.SUPERSEDED
    [event] = events(AuditAction.TRANSITION_SUPERSEDED, pending)
    assert event.actor_id == compliance.pk
    assert f"moved to policy {policy}" in event.payload
    with pytest.raises(Conflict):
        approve(pending, reviewer)
    pending.model_version.refresh_from_db()
    assert pending.model_version.stage == Stage.DEVELOPMENT
    again = transitions.request_transition(
        pending.model_version, "validation", actor=owner, justification="under credit-v2"
    )
    assert again.policy == policy
    approve(again, reviewer)
    assert status_of(again) == RequestStatus.PENDING  # one of the two approvals it now needs
    assert verify().valid


def test_binding_the_same_policy_again_leaves_its_requests_pending(pending, project, compliance):
    from governance.policies import bind_policy

    bind_policy(project, pending.policy, actor=compliance)
    assert status_of(pending) == RequestStatus.PENDING
    assert not events(AuditAction.TRANSITION_SUPERSEDED, pending)
