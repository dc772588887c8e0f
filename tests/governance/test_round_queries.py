"""Query budget of a transition round (issue 4): request, approve, approve + apply.

The round validation → approved under the shipped high-risk policy, every evidence check
passing, is the hot path of governance; its query count is held here so that a change that
adds an N+1 or a redundant read fails the suite (the timing is measured in bench/).
"""

import json

import pytest

from governance import transitions
from governance.audit_chain import verify
from governance.choices import AuditAction, RequestStatus
from governance.models import AuditChainHead, AuditEvent
from tests.factories import PASSWORD
from tests.governance.builders import version_with_evidence
from tests.governance.test_fairness_audits import (  # noqa: F401 - fixtures used implicitly
    _run_tasks_on_commit,
    audit_csv,
    upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def validated(api, project, owner, reviewer):
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="candidate"
    )
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    upload(api.as_user(owner), version, audit_csv())
    version.refresh_from_db()
    assert version.stage == "validation"
    return version


def test_a_round_stays_within_its_query_budget(
    validated, owner, reviewer, compliance, monkeypatch, django_assert_max_num_queries
):
    """request 10, first approval 13, completing approval + apply 15 queries at most (SQLite;
    PostgreSQL takes 8, 11 and 14). The apply includes, on PostgreSQL only, the statement that
    authorises the stage write for the database's guard (registry/stage_guard.py: 13 → 14);
    SQLite's guard reads a flag in Python and adds none. Before the evidence reads were
    shared, the audit events batched and the history diffs taken from the locked rows, the
    round took 117; 48 before the request and its version were locked together, the signer's
    right and roles read together and the fairness gate read the policy with the version.
    (Signing reads the signer's right and roles twice: before the password is asked, and
    after it is checked, the second time in the statement that locks the request.)"""
    monkeypatch.setattr(transitions, "confirm_password", lambda *a, **k: None)
    head = AuditChainHead.objects.get(pk=1).sequence
    with django_assert_max_num_queries(10):
        request = transitions.request_transition(
            validated, "approved", actor=owner, justification="validated"
        )
    with django_assert_max_num_queries(13):
        transitions.sign(request, signer=reviewer, meaning="approved", password="x")
    with django_assert_max_num_queries(15):
        transitions.sign(request, signer=compliance, meaning="approved", password="x")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPLIED
    assert {g["name"]: g["passed"] for g in request.gate_results} == {
        "evaluation_meets_acceptance": True,
        "beats_baseline": True,
        "lineage_complete": True,
        "model_card_complete": True,
        "no_open_high_risk": True,
        "fairness_audit_passed": True,
        "approvals": True,
    }
    actions = list(
        AuditEvent.objects.filter(sequence__gt=head)
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    # Every step still leaves its trail: the request written once with its gates, each
    # signature, the stage change, the fairness audit used and the request closed.
    assert actions.count(AuditAction.TRANSITION_REQUESTED) == 1
    assert actions.count(AuditAction.SIGNATURE_RECORDED) == 2
    assert actions.count(AuditAction.STAGE_CHANGED) == 1
    assert actions.count(AuditAction.FAIRNESS_AUDIT_USED) == 1
    assert actions.count(AuditAction.TRANSITION_APPLIED) == 1
    # The history diffs taken from the rows as locked say exactly what changed.
    updates = [
        json.loads(payload)
        for payload in AuditEvent.objects.filter(
            sequence__gt=head, action=AuditAction.RECORD_UPDATED
        ).values_list("payload", flat=True)
    ]
    version_update = next(u for u in updates if u["object_type"] == "registry.modelversion")
    assert version_update["before"] == {"stage": "validation"}
    assert version_update["after"] == {"stage": "approved"}
    request_updates = [u for u in updates if u["object_type"] == "governance.transitionrequest"]
    assert request_updates[-1]["before"]["status"] == "pending"
    assert request_updates[-1]["after"]["status"] == "applied"
    assert "gate_results" in request_updates[0]["after"]  # the first approval counted
    assert verify().valid
