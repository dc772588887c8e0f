"""Fairness drift: each subgroup's metric values on a production batch against the values of
the passed fairness audit the version was validated with, with the policy's thresholds."""

import json

import numpy as np
import pytest
from django.core.files.base import ContentFile

from governance.choices import AuditAction
from governance.fairness import audits
from governance.models import AuditEvent, MonitoringBreach
from governance.monitoring import checks, fairness_drift
from governance.policy_rules import default_definition, monitoring_settings, validate_definition
from registry.choices import ProjectRight
from tests import factories
from tests.governance.test_monitoring import (
    check,
    csv_file,
    frame,
    minimal_project,
    move,
    validated_version,
)

pytestmark = pytest.mark.django_db


def audit_validation_data(version, owner, capture):
    """The fairness audit of the validation predictions (frame 0), run in its task."""
    body = frame(0)[["sex", "y_true", "y_pred"]].to_csv(index=False).encode()
    with capture(execute=True):
        audit, _ = audits.request_audit(
            version, actor=owner, upload=ContentFile(body, name="predictions.csv")
        )
    audit.refresh_from_db()
    assert audit.passed, audit.result["summary"]
    return audit


@pytest.fixture
def fair(owner, member, reviewer, compliance, auditor):
    """A limited-risk project: its policy's fairness gate must pass on the way to production."""
    project = factories.project(owner, key="fair", risk_tier="limited")
    factories.grant(project, reviewer, ProjectRight.VIEW, ProjectRight.REVIEW)
    return project


@pytest.fixture
def deployed(fair, owner, reviewer, django_capture_on_commit_callbacks):
    version = validated_version(fair, owner)
    audit = audit_validation_data(version, owner, django_capture_on_commit_callbacks)
    for stage in ("validation", "approved", "production"):
        move(version, stage, owner=owner, reviewer=reviewer)
    checks.register_reference(version, csv_file(frame(0), "reference.csv"), actor=owner)
    version.validated_audit = audit
    return version


def accuracy(data, sex):
    rows = data[data.sex == sex]
    return float(np.mean(rows.y_true == rows.y_pred))


def entry(report, group, metric):
    [found] = [
        s
        for s in report.fairness_drift["subgroups"]
        if (s["feature_set"], s["group"], s["metric"]) == ("sex", group, metric)
    ]
    return found


def test_label_flip_in_one_subgroup_is_fairness_drift_in_that_subgroup(
    deployed, owner, django_capture_on_commit_callbacks
):
    batch = frame(5)
    women = batch.sex == "f"
    batch.loc[women, "y_true"] = 1 - batch.loc[women, "y_true"]
    report = check(deployed, batch, actor=owner, capture=django_capture_on_commit_callbacks)
    assert report.status == "done", report.error
    fairness = report.fairness_drift
    assert fairness["basis"] == "validated_audit"
    assert fairness["compared_with"]["fairness_audit"] == deployed.validated_audit.pk
    assert "fairness gate of transition request" in fairness["compared_with"]["source"]

    validation = frame(0)
    flipped = entry(report, "f", "accuracy")
    expected = accuracy(batch, "f") - accuracy(validation, "f")
    assert flipped["difference"] == pytest.approx(expected, abs=1e-12)
    assert flipped["validated"] == pytest.approx(accuracy(validation, "f"), abs=1e-12)
    assert flipped["difference"] < -0.7
    assert flipped["level"] == "breach"
    men = entry(report, "m", "accuracy")
    assert men["difference"] == pytest.approx(
        accuracy(batch, "m") - accuracy(validation, "m"), abs=1e-12
    )
    assert men["level"] == "ok"
    # The decisions did not change, so neither did the women's selection rate.
    assert entry(report, "f", "selection_rate")["level"] == "ok"
    assert {s["group"] for s in fairness["subgroups"] if s["level"] == "breach"} == {"f"}
    assert fairness["level"] == "breach"
    assert "fairness" in report.breached

    events = AuditEvent.objects.filter(
        action=AuditAction.MONITORING_BREACH, object_id=str(report.pk)
    )
    [payload] = [
        p for p in (json.loads(e.payload) for e in events) if p["after"]["kind"] == "fairness"
    ]
    assert "accuracy for sex=f" in payload["reason"]


def test_clean_batch_has_no_fairness_drift(deployed, owner, django_capture_on_commit_callbacks):
    report = check(deployed, frame(1), actor=owner, capture=django_capture_on_commit_callbacks)
    fairness = report.fairness_drift
    assert fairness["basis"] == "validated_audit"
    assert len(fairness["subgroups"]) == 2 * 5  # two groups x five rates
    assert all(s["level"] == "ok" for s in fairness["subgroups"]), [
        fairness_drift.describe(s) for s in fairness["subgroups"] if s["level"] != "ok"
    ]
    assert fairness["rules_level"] == "ok"
    assert report.levels["fairness"] == "ok"
    assert not MonitoringBreach.objects.filter(report=report, kind="fairness").exists()


def test_without_a_fairness_gate_the_latest_passed_audit_is_the_baseline(
    owner, member, reviewer, compliance, auditor, django_capture_on_commit_callbacks
):
    shop = minimal_project(owner, member, reviewer, compliance, auditor)
    version = validated_version(shop, owner)
    audit = audit_validation_data(version, owner, django_capture_on_commit_callbacks)
    for stage in ("validation", "approved", "production"):
        move(version, stage, owner=owner, reviewer=reviewer)
    checks.register_reference(version, csv_file(frame(0), "reference.csv"), actor=owner)
    report = check(version, frame(1), actor=owner, capture=django_capture_on_commit_callbacks)
    assert report.fairness_drift["compared_with"]["fairness_audit"] == audit.pk
    assert "latest passed audit" in report.fairness_drift["compared_with"]["source"]


# --- The comparison itself --------------------------------------------------------------------


def result(groups: dict[str, dict], key="sex"):
    """An audit result with one feature set; groups maps label -> {"count": n, metric: value}."""
    feature_set = {"key": key, "groups": []}
    for label, values in groups.items():
        metrics = {
            m: {"value": v, "undefined": v is None, "undefined_reason": None if v else "no rows"}
            for m, v in values.items()
            if m != "count"
        }
        feature_set["groups"].append({"group": label, "count": values["count"], "metrics": metrics})
    return {"feature_sets": [feature_set]}


def test_differences_are_levelled_by_the_policy_thresholds():
    validated = result(
        {"a": {"count": 500, "accuracy": 0.90}, "b": {"count": 500, "accuracy": 0.90}}
    )
    batch = result({"a": {"count": 400, "accuracy": 0.84}, "b": {"count": 400, "accuracy": 0.79}})
    compared = fairness_drift.compare(validated, batch, {})
    by_group = {s["group"]: s for s in compared["subgroups"]}
    assert by_group["a"]["difference"] == pytest.approx(-0.06)
    assert (by_group["a"]["level"], by_group["b"]["level"]) == ("warn", "breach")
    assert compared["level"] == "breach"
    strict = fairness_drift.compare(
        validated, batch, {"metrics": {"accuracy": {"warn": 0.2, "breach": 0.3}}}
    )
    assert strict["level"] == "ok"


def test_small_new_and_undefined_groups_are_listed_not_compared():
    validated = result(
        {
            "a": {"count": 500, "accuracy": 0.9},
            "b": {"count": 50, "accuracy": 0.9},
            "c": {"count": 500, "accuracy": 0.9},
        }
    )
    batch = result(
        {
            "a": {"count": 500, "accuracy": None},
            "b": {"count": 500, "accuracy": 0.1},
            "c": {"count": 500, "accuracy": 0.9},
            "d": {"count": 500, "accuracy": 0.1},
        }
    )
    compared = fairness_drift.compare(validated, batch, {})
    assert [s["group"] for s in compared["subgroups"]] == ["c"]
    reasons = {n["group"]: n["reason"] for n in compared["not_compared"]}
    assert "at least 100" in reasons["b"]
    assert "not present in the validated audit" in reasons["d"]
    assert reasons["a"] == "no rows"
    assert compared["level"] == "ok"


def test_a_metric_in_the_models_units_needs_its_own_limits():
    validated = result({"a": {"count": 500, "mean_absolute_error": 3.0}})
    batch = result({"a": {"count": 500, "mean_absolute_error": 9.0}})
    assert fairness_drift.compare(validated, batch, {})["metrics_without_limits"] == [
        "mean_absolute_error"
    ]
    limited = {"metrics": {"mean_absolute_error": {"warn": 1.0, "breach": 5.0}}}
    [compared] = fairness_drift.compare(validated, batch, limited)["subgroups"]
    assert (compared["difference"], compared["level"]) == (6.0, "breach")


@pytest.mark.parametrize(
    ("fairness", "message"),
    [
        ({"difference": {"warn": 0.2, "breach": 0.1}}, "warn <= breach"),
        ({"difference": {"warn": -1, "breach": 0.1}}, "warn <= breach"),
        ({"difference": {"warn": 0.1}}, "must be"),
        ({"min_group_size": 0}, "positive integer"),
        ({"metrics": {"accuracy": {"warn": "a", "breach": 1}}}, "numbers"),
        ({"bins": 3}, "unknown key"),
        ([], "must be an object"),
    ],
)
def test_policy_with_bad_fairness_drift_thresholds_is_invalid(fairness, message):
    definition = default_definition("minimal")
    definition["settings"]["monitoring"]["fairness"] = fairness
    with pytest.raises(ValueError, match=message):
        validate_definition(definition)


def test_policy_fairness_thresholds_merge_with_the_defaults():
    definition = {"settings": {"monitoring": {"fairness": {"min_group_size": 40}}}}
    merged = monitoring_settings(definition)["fairness"]
    assert merged["min_group_size"] == 40
    assert merged["difference"] == {"warn": 0.05, "breach": 0.10}
    assert monitoring_settings({"settings": {}})["fairness"]["min_group_size"] == 100
