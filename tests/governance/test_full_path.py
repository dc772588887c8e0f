"""A model version's whole path to production under the shipped high-risk policy.

Every gate is seen failing first, with its reason, and then passing once the evidence it asks
for exists; the transition applies only when all gates pass and the approvals are in.
"""

import pytest

from governance import transitions
from governance.audit_chain import verify
from governance.choices import AuditAction, RequestStatus
from governance.models import AuditEvent
from lineage import services as lineage
from registry import services as registry
from registry.choices import ProjectRight
from registry.models import ModelVersion
from tests import factories
from tests.factories import PASSWORD, Role
from tests.governance.builders import (
    add_fast_track,
    bind_changed_policy,
    good_predictions,
    predictions_csv,
)
from tests.governance.test_fairness_audits import (  # noqa: F401 - fixture used implicitly
    _run_tasks_on_commit,
    audit_csv,
    upload,
)

pytestmark = pytest.mark.django_db
CARD = {f: f"{f} described" for f in ModelVersion.MODEL_CARD_FIELDS}


def gates(request) -> dict:
    request.refresh_from_db()
    return {g["name"]: g for g in request.gate_results}


def failing(request) -> set:
    return {name for name, g in gates(request).items() if not g["passed"]}


@pytest.fixture
def reviewers(project):
    people = [factories.user(f"rev{i}", role=Role.REVIEWER) for i in range(3)]
    for person in people:
        factories.grant(project, person, ProjectRight.VIEW, ProjectRight.REVIEW)
    return people


def approve(request, signer):
    transitions.sign(request, signer=signer, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    return request.status


def test_development_to_production_under_the_high_risk_policy(
    api, project, owner, reviewers, compliance
):
    risk = registry.add_risk(
        project,
        actor=owner,
        description="Proxy bias via postcode",
        likelihood="medium",
        impact="high",
    )
    train = factories.dataset_version(project, owner, name="train", split="train")
    holdout = factories.dataset_version(project, owner, name="holdout", rows=100)
    code = factories.code_version(project, owner)
    run = factories.run(project, owner, code=code)  # its input data is not recorded yet
    version = factories.model_version(factories.registered_model(project, owner), owner, run=run)

    # development → validation: lineage and model card fail first.
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="first candidate"
    )
    assert failing(request) == {"lineage_complete", "model_card_complete", "approvals"}
    assert "input dataset versions" in gates(request)["lineage_complete"]["reason"]
    assert approve(request, reviewers[0]) == RequestStatus.PENDING  # evidence still fails
    lineage.update_run(run, actor=owner, input_datasets=[train])
    registry.update_model_version(version, actor=owner, **CARD)
    transitions.reevaluate(request, actor=owner)
    # The first approval was of a record that has since changed: it no longer counts.
    assert failing(request) == {"approvals"}
    assert approve(request, reviewers[1]) == RequestStatus.APPLIED
    version.refresh_from_db()
    assert version.stage == "validation"

    # validation → approved: every evidence check, two approvals including compliance.
    request = transitions.request_transition(
        version, "approved", actor=owner, justification="validated"
    )
    assert failing(request) == {
        "evaluation_meets_acceptance",
        "beats_baseline",
        "no_open_high_risk",
        "fairness_audit_passed",
        "approvals",
    }
    weak = predictions_csv([(i % 2, 0, 0.2) for i in range(100)])  # always predicts 0
    registry.record_evaluation(version, holdout, actor=owner, predictions=weak)
    transitions.reevaluate(request, actor=owner)
    assert "accuracy 0.5000" in gates(request)["evaluation_meets_acceptance"]["reason"]
    assert "not beaten" in gates(request)["beats_baseline"]["reason"]
    registry.record_evaluation(version, holdout, actor=owner, predictions=good_predictions())
    registry.update_risk(risk, actor=owner, status="mitigated", reason="postcode removed")
    transitions.reevaluate(request, actor=owner)
    assert failing(request) == {"fairness_audit_passed", "approvals"}
    assert "no fairness audit" in gates(request)["fairness_audit_passed"]["reason"]
    upload(api.as_user(owner), version, audit_csv())
    transitions.reevaluate(request, actor=owner)
    assert failing(request) == {"approvals"}
    assert approve(request, reviewers[0]) == RequestStatus.PENDING
    assert "compliance officer" in gates(request)["approvals"]["reason"]
    assert approve(request, compliance) == RequestStatus.APPLIED

    # approved → staging → production.
    request = transitions.request_transition(
        version, "staging", actor=owner, justification="shadow deployment"
    )
    assert approve(request, reviewers[2]) == RequestStatus.APPLIED
    request = transitions.request_transition(
        version, "production", actor=owner, justification="canary went well"
    )
    assert failing(request) == {"approvals"}
    assert approve(request, reviewers[1]) == RequestStatus.PENDING
    assert approve(request, compliance) == RequestStatus.APPLIED
    version.refresh_from_db()
    assert version.stage == "production"

    stage_changes = AuditEvent.objects.filter(
        action=AuditAction.STAGE_CHANGED, object_id=str(version.pk)
    )
    assert stage_changes.count() == 4
    assert AuditEvent.objects.filter(action=AuditAction.FAIRNESS_AUDIT_USED).count() == 2
    assert verify().valid


def test_promotion_to_production_deprecates_the_previous_production_version(
    project, owner, reviewers, compliance
):
    # A quick policy: development → production with one approval and no evidence checks.
    bind_changed_policy(
        project, proposer=owner, compliance=compliance, name="fast-track", change=add_fast_track
    )
    model = factories.registered_model(project, owner)
    first = factories.model_version(model, owner)
    second = factories.model_version(model, owner)
    for version, signer in ((first, reviewers[0]), (second, reviewers[1])):
        request = transitions.request_transition(
            version, "production", actor=owner, justification="go"
        )
        assert approve(request, signer) == RequestStatus.APPLIED
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.stage, second.stage) == ("deprecated", "production")
