"""Monitoring of deployed versions: a production batch is checked against the validation data in
a task, data drift / prediction drift / performance decay / fairness drift are reported
separately, and a breach acts by policy exactly once."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from scipy import stats

from governance import policies, transitions
from governance.audit_chain import verify
from governance.choices import AuditAction, RequestStatus
from governance.models import (
    AuditEvent,
    MonitoringBreach,
    MonitoringReport,
    RetrainingTicket,
    TransitionRequest,
)
from governance.monitoring import checks
from governance.monitoring.drift import DEFAULT_DRIFT_THRESHOLDS
from governance.policy_rules import (
    default_definition,
    monitoring_settings,
    validate_definition,
)
from governance.tasks import run_monitoring_check_task
from registry import services as registry
from registry.choices import ProjectRight
from registry.models import ModelVersion
from tests import factories
from tests.factories import PASSWORD
from tests.governance.builders import predictions_csv

pytestmark = pytest.mark.django_db
ROWS = 1000
CARD = {f: f"{f} described" for f in ModelVersion.MODEL_CARD_FIELDS}


def frame(
    seed: int,
    *,
    rows: int = ROWS,
    shift: float = 0.0,
    new_category: bool = False,
    flip: float = 0.0,
) -> pd.DataFrame:
    """Features x1 ~ N(0, 1), x2 ~ N(5, 2), colour and sex; predictions 90 % accurate."""
    rng = np.random.default_rng(seed)
    colours = ["red", "green", "blue", "purple"] if new_category else ["red", "green", "blue"]
    weights = [0.2, 0.2, 0.2, 0.4] if new_category else [1 / 3] * 3
    y_true = np.arange(rows) % 2
    right = rng.random(rows) >= 0.1
    y_pred = np.where(right, y_true, 1 - y_true)
    flipped = rng.random(rows) < flip
    y_pred = np.where(flipped, 1 - y_pred, y_pred)
    return pd.DataFrame(
        {
            "x1": rng.normal(0.0 + shift, 1.0, rows),
            "x2": rng.normal(5.0, 2.0, rows),
            "colour": rng.choice(colours, rows, p=weights),
            "sex": np.where((np.arange(rows) // 2) % 2, "f", "m"),
            "y_true": y_true,
            "y_pred": y_pred,
        }
    )


def csv_file(data: pd.DataFrame, name: str = "batch.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data.to_csv(index=False).encode())


def parquet_file(data: pd.DataFrame, name: str = "batch.parquet") -> SimpleUploadedFile:
    body = io.BytesIO()
    data.to_parquet(body, index=False)
    return SimpleUploadedFile(name, body.getvalue())


def minimal_project(owner, member, reviewer, compliance, auditor, *, key="shop"):
    """A minimal-risk project: one approval per transition, so a version reaches production
    through the real gates in a few lines."""
    project = factories.project(owner, key=key, risk_tier="minimal")
    factories.grant(project, member, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
    factories.grant(project, reviewer, ProjectRight.VIEW, ProjectRight.REVIEW)
    factories.grant(project, compliance, ProjectRight.VIEW, ProjectRight.REVIEW)
    factories.grant(project, auditor, ProjectRight.VIEW)
    return project


@pytest.fixture
def shop(owner, member, reviewer, compliance, auditor):
    return minimal_project(owner, member, reviewer, compliance, auditor)


def validated_version(project, owner, *, model=None, derived_from=None, train=None):
    """A version with complete evidence, validated on a 1,000-row test set."""
    holdout = factories.dataset_version(
        project, owner, name="holdout", rows=ROWS, sensitive_attributes=["sex"]
    )
    train = train or factories.dataset_version(project, owner, name="training", split="train")
    run = factories.run(project, owner, inputs=[train], code=factories.code_version(project, owner))
    model = model or factories.registered_model(project, owner)
    version = factories.model_version(model, owner, run=run, derived_from=derived_from, **CARD)
    reference = frame(0)
    rows = list(zip(reference.y_true, reference.y_pred, reference.y_pred * 0.8 + 0.1, strict=True))
    registry.record_evaluation(version, holdout, actor=owner, predictions=predictions_csv(rows))
    return version


def move(version, stage, *, owner, reviewer):
    request = transitions.request_transition(
        version, stage, actor=owner, justification=f"to {stage}"
    )
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    assert request.status == RequestStatus.APPLIED, request.gate_results
    version.refresh_from_db()
    return version


def to_production(version, *, owner, reviewer):
    for stage in ("validation", "approved", "production"):
        move(version, stage, owner=owner, reviewer=reviewer)
    return version


def deploy(project, owner, reviewer):
    """A production version of `project` with its reference data registered."""
    version = to_production(validated_version(project, owner), owner=owner, reviewer=reviewer)
    checks.register_reference(version, csv_file(frame(0), "reference.csv"), actor=owner)
    return version


@pytest.fixture
def deployed(shop, owner, reviewer):
    return deploy(shop, owner, reviewer)


def check(version, data: pd.DataFrame, *, actor, capture) -> MonitoringReport:
    with capture(execute=True):
        report = checks.submit_batch(version, parquet_file(data), actor=actor)
    report.refresh_from_db()
    return report


# --- Drift detection ------------------------------------------------------------------------


def test_clean_batch_raises_no_drift(deployed, owner, django_capture_on_commit_callbacks):
    report = check(deployed, frame(1), actor=owner, capture=django_capture_on_commit_callbacks)
    assert report.status == "done", report.error
    assert report.levels == {
        "data_drift": "ok",
        "prediction_drift": "ok",
        "performance": "ok",
        "fairness": report.fairness_drift["level"],
    }
    assert report.breached == []
    assert not MonitoringBreach.objects.exists()


def test_shifted_mean_is_a_data_drift_breach_with_scipy_ks(
    deployed, owner, django_capture_on_commit_callbacks
):
    batch = frame(2, shift=1.0)
    report = check(deployed, batch, actor=owner, capture=django_capture_on_commit_callbacks)
    x1 = report.data_drift["features"]["x1"]
    assert x1["level"] == "breach"
    assert x1["psi"]["value"] > 0.25
    expected = stats.ks_2samp(frame(0).x1, batch.x1)
    assert x1["ks"]["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert report.data_drift["features"]["x2"]["level"] == "ok"
    # Data drift and concept drift are separate: the labels still agree with the predictions.
    assert report.levels["performance"] == "ok"
    assert "data_drift" in report.breached


def test_new_category_is_a_data_drift_breach(deployed, owner, django_capture_on_commit_callbacks):
    report = check(
        deployed,
        frame(3, new_category=True),
        actor=owner,
        capture=django_capture_on_commit_callbacks,
    )
    colour = report.data_drift["features"]["colour"]
    assert colour["level"] == "breach"
    assert colour["psi"]["new_categories"] == ["purple"]
    assert colour["test"] == "chi2"


def test_label_flips_are_performance_decay_not_data_drift(
    deployed, owner, django_capture_on_commit_callbacks
):
    report = check(
        deployed, frame(4, flip=0.4), actor=owner, capture=django_capture_on_commit_callbacks
    )
    assert report.levels["data_drift"] == "ok"
    accuracy = report.performance["metrics"][0]
    assert accuracy["metric"] == "accuracy"
    assert accuracy["value"] < 0.7
    assert accuracy["level"] == "breach"
    assert report.breached.count("performance") == 1
    assert "prediction_drift" in report.levels


def test_fairness_drift_reports_subgroup_metrics(
    deployed, owner, django_capture_on_commit_callbacks
):
    batch = frame(5)
    # Women's predictions become wrong: accuracy and selection rates diverge between groups.
    women = batch.sex == "f"
    batch.loc[women, "y_pred"] = 1 - batch.loc[women, "y_true"]
    report = check(deployed, batch, actor=owner, capture=django_capture_on_commit_callbacks)
    fairness = report.fairness_drift
    assert fairness["level"] == "breach"
    # No fairness audit was made of this version: only the policy's rules can be applied.
    assert (fairness["basis"], fairness["compared_with"]) == ("rules", None)
    groups = fairness["feature_sets"][0]
    assert "sex" in str(groups["features"])
    assert report.levels["fairness"] == "breach"


def test_batch_without_labels_reports_only_drift(
    deployed, owner, django_capture_on_commit_callbacks
):
    batch = frame(6).drop(columns=["y_true"])
    report = check(deployed, batch, actor=owner, capture=django_capture_on_commit_callbacks)
    assert set(report.levels) == {"data_drift", "prediction_drift"}
    assert report.performance is None and report.fairness_drift is None


def test_reference_is_the_validated_dataset_version(deployed):
    reference = deployed.monitoring_reference
    assert reference.dataset_version.split == "test"
    assert reference.row_count == ROWS
    assert reference.dataset_version == deployed.evaluations.get().dataset_version


def test_reference_with_the_wrong_row_count_is_refused(shop, owner, reviewer):
    version = validated_version(shop, owner)
    with pytest.raises(ValidationError, match="rows, but"):
        checks.register_reference(version, csv_file(frame(0, rows=10)), actor=owner)


# --- Breach actions --------------------------------------------------------------------------


def test_breach_actions_fire_exactly_once(
    deployed, owner, reviewer, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    report = check(
        deployed,
        frame(7, shift=1.0, flip=0.4),
        actor=owner,
        capture=django_capture_on_commit_callbacks,
    )
    assert set(report.breached) == {"data_drift", "performance"}
    with django_capture_on_commit_callbacks(execute=True):
        run_monitoring_check_task(report.pk, owner.pk, "again")
    with django_capture_on_commit_callbacks(execute=True):
        run_monitoring_check_task.delay(report.pk, owner.pk, "and again")

    assert MonitoringBreach.objects.filter(report=report).count() == 2
    assert RetrainingTicket.objects.filter(report=report).count() == 2
    assert len(mail.outbox) == 2
    assert mail.outbox[0].to == ["olive@example.com"]
    assert f"report {report.pk}" in mail.outbox[0].body
    events = AuditEvent.objects.filter(action=AuditAction.MONITORING_BREACH)
    assert sorted(json.loads(e.payload)["after"]["kind"] for e in events) == [
        "data_drift",
        "performance",
    ]
    assert {e.object_id for e in events} == {str(report.pk)}
    assert verify().valid


def bind_custom_policy(project, *, author, compliance, **monitoring):
    """A new policy version for `project` with other monitoring settings, approved by a
    compliance officer and bound, as a compliance team would change it."""
    definition = default_definition(project.risk_tier)
    definition["settings"]["monitoring"].update(monitoring)
    policy = policies.propose_policy_version(
        actor=author, name="shop-policy", risk_tier=project.risk_tier, definition=definition
    )
    policies.approve_policy_version(policy, signer=compliance, password=PASSWORD)
    policies.bind_policy(project, policy, actor=compliance)
    return policy


def test_breach_requests_suspension_in_the_owners_name_needing_a_reviewer(
    shop, deployed, owner, reviewer, compliance, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    bind_custom_policy(shop, author=owner, compliance=compliance, on_breach=["notify", "suspend"])
    report = check(
        deployed, frame(8, shift=1.0), actor=owner, capture=django_capture_on_commit_callbacks
    )
    assert report.breached == ["data_drift"]
    request = TransitionRequest.objects.get(model_version=deployed, to_stage="suspended")
    assert request.requested_by == shop.owner
    assert f"Monitoring report {report.pk}" in request.justification
    assert request.status == RequestStatus.PENDING
    assert not RetrainingTicket.objects.exists()
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    deployed.refresh_from_db()
    assert deployed.stage == "suspended"
    breach = MonitoringBreach.objects.get(report=report)
    assert [a["action"] for a in breach.actions] == ["notify", "suspend"]
    assert all(a["done"] for a in breach.actions)


def test_shipped_high_risk_policy_suspends_on_breach_and_minimal_does_not():
    assert "suspend" in default_definition("high")["settings"]["monitoring"]["on_breach"]
    assert "suspend" not in default_definition("minimal")["settings"]["monitoring"]["on_breach"]


def test_policy_without_monitoring_settings_gets_the_defaults():
    assert monitoring_settings({"settings": {}})["data_drift"] == DEFAULT_DRIFT_THRESHOLDS
    partial = {"settings": {"monitoring": {"data_drift": {"psi": {"warn": 0.2, "breach": 0.3}}}}}
    merged = monitoring_settings(partial)["data_drift"]
    assert merged["psi"] == {"warn": 0.2, "breach": 0.3}
    assert merged["p_value"] == DEFAULT_DRIFT_THRESHOLDS["p_value"]


def test_policy_with_an_unknown_breach_action_is_invalid():
    definition = default_definition("minimal")
    definition["settings"]["monitoring"]["on_breach"] = ["page the CEO"]
    with pytest.raises(ValueError, match="unknown breach action"):
        validate_definition(definition)


def test_upload_for_a_development_version_is_refused(shop, owner):
    version = validated_version(shop, owner)
    with pytest.raises(ValidationError, match="only production and staging"):
        checks.submit_batch(version, csv_file(frame(1)), actor=owner)
    assert not MonitoringReport.objects.exists()


# --- A check that crashes -------------------------------------------------------------------


def test_a_check_that_raises_ends_failed_with_its_error_and_an_audit_event(
    deployed, owner, django_capture_on_commit_callbacks, monkeypatch
):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(checks.drift, "feature_drift", explode)
    report = check(deployed, frame(1), actor=owner, capture=django_capture_on_commit_callbacks)
    assert report.status == "failed"
    assert "RuntimeError: disk on fire" in report.error
    assert report.completed_at is not None
    assert report.breached == [] and not MonitoringBreach.objects.exists()
    event = AuditEvent.objects.get(action=AuditAction.MONITORING_CHECK_FAILED)
    assert event.object_id == str(report.pk)
    assert "disk on fire" in json.loads(event.payload)["after"]["error"]
    assert verify().valid
