"""Fairness audits through the API and as evidence in the gate."""

import io
import os

import pandas as pd
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import override_settings

from governance.choices import AuditAction
from governance.fairness_gate import check_fairness
from governance.models import AuditEvent, FairnessAudit
from registry.models import DatasetVersion
from tests.governance.builders import version_with_evidence

pytestmark = pytest.mark.django_db


def audit_csv(rows: int = 100, *, fair: bool = True, extra: dict | None = None) -> bytes:
    """y_true alternates; sex alternates in pairs so each group has both classes. Unfair:
    group f is never predicted positive."""
    data: dict[str, list] = {"y_true": [], "y_pred": [], "sex": []}
    for i in range(rows):
        truth, sex = i % 2, "f" if (i // 2) % 2 else "m"
        pred = truth if i % 10 else 1 - truth
        if not fair and sex == "f":
            pred = 0
        data["y_true"].append(truth)
        data["y_pred"].append(pred)
        data["sex"].append(sex)
    data.update(extra or {})
    out = io.StringIO()
    pd.DataFrame(data).to_csv(out, index=False)
    return out.getvalue().encode()


_capture = None


@pytest.fixture(autouse=True)
def _run_tasks_on_commit(django_capture_on_commit_callbacks):
    """The task is queued when the request's transaction commits; run it then."""
    global _capture
    _capture = django_capture_on_commit_callbacks
    yield
    _capture = None


def upload(client, version, body: bytes, name="predictions.csv", **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    payload = {
        "model_version": version.pk,
        "file": SimpleUploadedFile(name, body),
        "sensitive_features": "sex",
        **fields,
    }
    if _capture is None:
        return client.post("/api/v1/fairness-audits/", payload, format="multipart")
    with _capture(execute=True):
        return client.post("/api/v1/fairness-audits/", payload, format="multipart")


def nothing_stored(version):
    return (
        not FairnessAudit.objects.exists()
        and not DatasetVersion.objects.filter(dataset__name__endswith="-predictions").exists()
        and not default_storage.exists(f"fairness/{version.pk}")
    )


def test_audit_runs_and_reports_groups_and_verdicts(api, project, owner):
    version, holdout = version_with_evidence(project, owner)
    response = upload(api.as_user(owner), version, audit_csv())
    assert response.status_code == 202, response.json()
    audit = api.get(f"/api/v1/fairness-audits/{response.json()['id']}/").json()
    assert response.json()["status"] == "queued"  # 202 answers before the task has run
    assert audit["status"] == "done" and audit["progress"] == 100 and audit["passed"] is True
    assert audit["dataset_version"] == holdout.pk
    [report] = audit["result"]["feature_sets"]
    groups = {g["group"]: g for g in report["groups"]}
    assert set(groups) == {"f", "m"}
    assert {v["verdict"] for v in report["verdicts"]} == {"pass"}
    assert audit["library_versions"]["fairlearn"] == "0.15.0"
    assert AuditEvent.objects.filter(action=AuditAction.FAIRNESS_AUDIT_COMPLETED).count() == 1


def test_unfair_model_fails_with_a_readable_sentence(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    response = upload(api.as_user(owner), version, audit_csv(fair=False))
    audit = FairnessAudit.objects.get(pk=response.json()["id"])
    assert audit.passed is False
    four_fifths = next(
        v for v in audit.result["feature_sets"][0]["verdicts"] if v["name"] == "four-fifths rule"
    )
    assert four_fifths["verdict"] == "fail"
    assert "Selection rate for f" in four_fifths["sentence"]
    assert "fails the four-fifths rule" in four_fifths["sentence"]


def test_same_inputs_return_the_same_audit(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    client = api.as_user(owner)
    first = upload(client, version, audit_csv())
    second = upload(client, version, audit_csv())
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert FairnessAudit.objects.count() == 1


def test_audit_by_reference_to_an_uploaded_predictions_version(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    client = api.as_user(owner)
    first = upload(client, version, audit_csv()).json()
    again = client.post(
        "/api/v1/fairness-audits/",
        {
            "model_version": version.pk,
            "dataset_version": first["predictions_dataset_version"],
            "sensitive_features": "sex",
        },
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"y_true,sex\n1,f\n", "missing column(s): y_pred"),
        (b"\x00\x01garbage\xff", "not a readable"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(api, project, owner, body, message):
    version, _ = version_with_evidence(project, owner)
    response = upload(api.as_user(owner), version, body)
    assert response.status_code == 400
    assert message in str(response.json())
    assert nothing_stored(version)


def test_labels_outside_binary_classes_are_refused(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    body = audit_csv().replace(b"\n1,", b"\n7,", 1)
    response = upload(api.as_user(owner), version, body)
    assert response.status_code == 400 and "outside the binary classes" in str(response.json())
    assert nothing_stored(version)


def test_sensitive_feature_with_hundreds_of_values_is_refused(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    body = audit_csv(extra={"zip": [f"{i:05d}" for i in range(100)]})
    response = upload(api.as_user(owner), version, body, sensitive_features="zip")
    assert response.status_code == 400 and "'zip' has 100 distinct values" in str(response.json())
    assert nothing_stored(version)


def test_row_count_must_match_the_evaluated_dataset_version(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    response = upload(api.as_user(owner), version, audit_csv(rows=60))
    assert response.status_code == 400 and "60 rows" in str(response.json())
    assert nothing_stored(version)


@override_settings(STAGEGATE_MAX_UPLOAD_MB=0)
def test_file_over_the_size_limit_is_refused(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    response = upload(api.as_user(owner), version, audit_csv())
    assert response.status_code == 400 and "the limit is 0 MB" in str(response.json())
    assert nothing_stored(version)


def test_parquet_upload_is_accepted(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    frame = pd.read_csv(io.BytesIO(audit_csv()))
    out = io.BytesIO()
    frame.to_parquet(out)
    response = upload(api.as_user(owner), version, out.getvalue(), name="p.parquet")
    assert response.status_code == 202
    assert FairnessAudit.objects.get(pk=response.json()["id"]).passed is True


def test_outsider_cannot_audit_or_see_audits(api, project, owner, outsider):
    version, _ = version_with_evidence(project, owner)
    refused = upload(api.as_user(outsider), version, audit_csv())
    assert refused.status_code == 400 and "not visible" in str(refused.json())
    audit_id = upload(api.as_user(owner), version, audit_csv()).json()["id"]
    assert api.as_user(outsider).get(f"/api/v1/fairness-audits/{audit_id}/").status_code == 404


def test_gate_needs_a_passed_audit_on_the_evaluated_dataset_version(api, project, owner):
    version, _ = version_with_evidence(project, owner)
    settings = {"fairness": {"required_split": "test"}}
    assert check_fairness(version, settings).reason.startswith("no fairness audit")
    upload(api.as_user(owner), version, audit_csv(fair=False))
    failing = check_fairness(version, settings)
    assert not failing.passed and "did not pass" in failing.reason
    upload(api.as_user(owner), version, audit_csv())
    assert check_fairness(version, settings).passed


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_audit_runs_on_a_real_worker(settings, owner_factory=None):
    broker = os.environ.get("CELERY_BROKER_URL")
    if not broker:
        pytest.skip("needs a real Celery broker: set CELERY_BROKER_URL (CI uses Redis)")
    if connection.vendor == "sqlite":
        pytest.skip("a worker thread needs a database it can share: run on PostgreSQL")
    from celery.contrib.testing.worker import start_worker
    from rest_framework.test import APIClient

    from config.celery import app
    from registry.choices import ProjectRight
    from tests import factories
    from tests.factories import Role

    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    owner = factories.user("olive", role=Role.DATA_SCIENTIST)
    project = factories.project(owner, key="worker")
    factories.grant(project, owner, ProjectRight.CONTRIBUTE)
    version, _ = version_with_evidence(project, owner)
    client = APIClient()
    client.force_authenticate(owner)
    try:
        with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1):
            response = upload(client, version, audit_csv())
            assert response.status_code == 202
            audit = FairnessAudit.objects.get(pk=response.json()["id"])
            import time

            for _ in range(100):
                audit.refresh_from_db()
                if audit.status == "done":
                    break
                time.sleep(0.1)
    finally:
        app.conf.task_always_eager = True
    assert audit.status == "done" and audit.passed is True


def _version_of_task(project, owner, task_type, rows):
    from registry import services as registry
    from tests import factories

    holdout = factories.dataset_version(project, owner, name=f"holdout-{task_type[:5]}", rows=rows)
    model = factories.registered_model(project, owner, task_type=task_type)
    version = factories.model_version(model, owner)
    registry.record_evaluation(version, holdout, actor=owner, metrics={"accuracy": 0.9})
    return version


def _csv(frame: pd.DataFrame) -> bytes:
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()


def test_multiclass_audit_applies_each_rule_to_every_class(api, project, owner):
    import numpy as np

    version = _version_of_task(project, owner, "multiclass_classification", 300)
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 300)
    frame = pd.DataFrame({"y_true": y_true, "y_pred": y_true, "sex": rng.choice(["f", "m"], 300)})
    response = upload(api.as_user(owner), version, _csv(frame))
    assert response.status_code == 202, response.json()
    audit = FairnessAudit.objects.get(pk=response.json()["id"])
    assert audit.status == "done", audit.error
    names = {v["name"] for v in audit.result["feature_sets"][0]["verdicts"]}
    assert {"four-fifths rule (class 0)", "four-fifths rule (class 2)"} <= names
    tpr = next(
        v
        for v in audit.result["feature_sets"][0]["verdicts"]
        if v["name"] == "equalized odds (TPR) (class 1)"
    )
    assert tpr["verdict"] == "pass" and tpr["value"] == 0.0  # perfect predictions: no gap


def test_regression_audit_checks_error_parity(api, project, owner):
    import numpy as np

    version = _version_of_task(project, owner, "regression", 200)
    rng = np.random.default_rng(1)
    sex = np.array(["f", "m"] * 100)
    y_true = rng.normal(size=200)
    noise = np.where(sex == "f", 0.1, 1.0)  # errors ten times larger for m
    frame = pd.DataFrame({"y_true": y_true, "y_pred": y_true + noise, "sex": sex})
    response = upload(api.as_user(owner), version, _csv(frame))
    audit = FairnessAudit.objects.get(pk=response.json()["id"])
    assert audit.status == "done", audit.error
    [verdict] = audit.result["feature_sets"][0]["verdicts"]
    assert verdict["name"] == "error parity (MAE ratio)" and verdict["verdict"] == "fail"
    assert abs(verdict["value"] - 0.1) < 1e-9  # MAE 0.1 for f against 1.0 for m
    assert audit.passed is False


def test_a_finished_audit_is_never_changed_or_deleted(api, project, owner):
    from governance.models.fairness import FairnessAuditImmutable

    version, _ = version_with_evidence(project, owner)
    audit = FairnessAudit.objects.get(
        pk=upload(api.as_user(owner), version, audit_csv()).json()["id"]
    )
    audit.passed = False
    with pytest.raises(FairnessAuditImmutable):
        audit.save()
    with pytest.raises(FairnessAuditImmutable):
        audit.delete()
    assert FairnessAudit.objects.get(pk=audit.pk).passed is True


def test_scores_without_decisions_use_the_policy_threshold(api, project, owner):
    frame = pd.read_csv(io.BytesIO(audit_csv(fair=False)))
    # Scores above the policy's 0.5 threshold exactly where the unfair predictions said 1.
    frame["y_score"] = frame["y_pred"].map({1: 0.8, 0: 0.3})
    body = frame.drop(columns=["y_pred"]).to_csv(index=False).encode()
    version, _ = version_with_evidence(project, owner)
    audit = FairnessAudit.objects.get(pk=upload(api.as_user(owner), version, body).json()["id"])
    assert audit.status == "done" and audit.config["decision_threshold"] == 0.5
    groups = {g["group"]: g for g in audit.result["feature_sets"][0]["groups"]}
    assert groups["f"]["metrics"]["selection_rate"]["value"] == 0.0
    assert groups["m"]["metrics"]["selection_rate"]["value"] == 0.6
    assert audit.passed is False


def test_the_audit_is_in_the_lineage_downstream_of_its_model_version_and_data(api, project, owner):
    """An audit's node has in-edges from exactly the model version it judged, the dataset
    version it was run on, and the predictions file it read (its own dataset version)."""
    from lineage.recording import node_of

    version, holdout = version_with_evidence(project, owner)
    audit = FairnessAudit.objects.get(
        pk=upload(api.as_user(owner), version, audit_csv()).json()["id"]
    )
    assert audit.dataset_version == holdout
    audit_ref = f"fairness_audit:{audit.pk}"
    response = api.as_user(owner).get(
        "/api/v1/lineage", {"nodeId": audit_ref, "direction": "upstream", "depth": 1}
    )
    assert response.status_code == 200, response.content
    nodes = {node["id"]: node for node in response.json()["graph"]}
    causes = {node_of(record).ref for record in (version, holdout, audit.predictions_version)}
    assert set(nodes) == {audit_ref, *causes}
    assert sorted(edge["origin"] for edge in nodes[audit_ref]["inEdges"]) == sorted(causes)
    assert all(edge["destination"] == audit_ref for edge in nodes[audit_ref]["inEdges"])
