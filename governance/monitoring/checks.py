"""Monitoring actions: register a version's reference data, accept a production batch, and
check it (in a Celery task, never in the web request).

Reference data: the registry keeps an evaluation's metrics, not the rows it was computed on, so
the feature values of the dataset version the model was validated on (its latest test-split
evaluation) are uploaded once per model version (`register_reference`). Every batch of that
version is then compared with them.

A batch (CSV or Parquet) holds the feature columns of the reference, and optionally the model's
outputs `y_pred` / `y_score` (prediction drift) and the labels `y_true` (performance decay and,
with the sensitive features, fairness drift). Files are stored by content hash.
"""

import hashlib
import io
import json
import logging
from datetime import UTC, datetime
from typing import Literal

import pandas as pd
import pyarrow.parquet as pq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from config.request_context import current
from governance import audit_chain
from governance.choices import AuditAction, RequestStatus
from governance.fairness.audits import ENGINE_TASK, build_config, fairness_settings, read_table
from governance.fairness.engine import Task
from governance.fairness.rules import decisions_from_scores, run_audit
from governance.models import (
    AuditStatus,
    BatchSource,
    CheckStatus,
    FairnessAudit,
    MonitoringKind,
    MonitoringReference,
    MonitoringReport,
    TransitionRequest,
)
from governance.monitoring import drift, fairness_drift, summary
from governance.policies import policy_for
from governance.policy_rules import monitoring_settings
from registry.choices import Stage, TaskType
from registry.models import Evaluation

OUTPUT_COLUMNS = ("y_true", "y_pred", "y_score")
MONITORED_STAGES = (Stage.PRODUCTION, Stage.STAGING)
MAX_CATEGORIES = 50
logger = logging.getLogger(__name__)


def _error(field: str, message: str) -> ValidationError:
    return ValidationError({field: message})


def _read_upload(upload, field: str = "file") -> bytes:
    data = upload.read()
    limit = settings.STAGEGATE_MAX_UPLOAD_MB * 1024 * 1024
    if not data:
        raise _error(field, "the file is empty")
    if len(data) > limit:
        raise _error(
            field,
            f"the file is {len(data) / 1e6:.1f} MB; the limit is "
            f"{settings.STAGEGATE_MAX_UPLOAD_MB} MB",
        )
    return data


def _columns(data: bytes, field: str = "file") -> list[str]:
    """The column names of a CSV or Parquet file, read without loading its rows."""
    try:
        if data[:4] == b"PAR1":
            return [str(c) for c in pq.read_schema(io.BytesIO(data)).names]
        return [str(c) for c in pd.read_csv(io.BytesIO(data), nrows=0).columns]
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's bad file
        raise _error(
            field, f"not a readable CSV or Parquet file ({type(exc).__name__}: {exc})"
        ) from None


def _store(model_version, data: bytes) -> tuple[str, str]:
    digest = hashlib.sha256(data).hexdigest()
    name = f"monitoring/{model_version.pk}/{digest}.bin"
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(data))
    return name, digest


def validated_on(model_version) -> Evaluation:
    """The evaluation the version was validated on: its latest on a test-split version."""
    evaluation = (
        Evaluation.objects.filter(model_version=model_version, dataset_version__split="test")
        .select_related("dataset_version")
        .order_by("-created_at", "-id")
        .first()
    )
    if evaluation is None:
        raise _error(
            "model_version", f"{model_version} has no evaluation on a test-split dataset version"
        )
    return evaluation


def register_reference(model_version, upload, *, actor) -> MonitoringReference:
    """Store the validation data's feature values for `model_version` (once per version)."""
    if MonitoringReference.objects.filter(model_version=model_version).exists():
        raise _error("model_version", f"{model_version} already has its reference data")
    evaluation = validated_on(model_version)
    data = _read_upload(upload)
    # Parsed here, once per version: the row count must match the validated dataset version.
    frame = read_table(data)
    columns = [str(c) for c in frame.columns]
    if not [c for c in columns if c not in OUTPUT_COLUMNS]:
        raise _error("file", "the reference has no feature columns")
    rows = len(frame)
    expected = evaluation.dataset_version.row_count
    if expected and rows != expected:
        raise _error("file", f"{rows} rows, but {evaluation.dataset_version} has {expected}")
    try:
        profile = summary.reference_profile(frame, OUTPUT_COLUMNS)
    except ValueError as exc:  # a column no drift test applies to
        raise _error("file", str(exc)) from None
    with transaction.atomic():
        name, digest = _store(model_version, data)
        reference = MonitoringReference.objects.create(
            model_version=model_version,
            dataset_version=evaluation.dataset_version,
            file=name,
            sha256=digest,
            row_count=rows,
            columns=columns,
            profile=profile,
            created_by=actor,
        )
        audit_chain.record(
            AuditAction.RECORD_CREATED,
            target=reference,
            actor=actor,
            after={"dataset_version": evaluation.dataset_version_id, "sha256": digest},
        )
    return reference


def profile_of(reference: MonitoringReference) -> dict:
    """The reference's kinds and bins; computed once and kept for a reference registered
    before profiles were."""
    if not reference.profile:
        frame = _read_stored(reference.file)
        reference.profile = summary.reference_profile(frame, OUTPUT_COLUMNS)
        MonitoringReference.objects.filter(pk=reference.pk).update(profile=reference.profile)
    return reference.profile


def _monitored_reference(model_version) -> MonitoringReference:
    if model_version.stage not in MONITORED_STAGES:
        raise _error(
            "model_version",
            f"{model_version} is in {model_version.stage}; only production and staging "
            "versions are monitored",
        )
    reference = MonitoringReference.objects.filter(model_version=model_version).first()
    if reference is None:
        raise _error(
            "model_version",
            f"{model_version} has no reference data; upload it to /api/v1/monitoring/references/",
        )
    return reference


def submit_summary(model_version, body, *, actor) -> MonitoringReport:
    """Check and store a batch given as summary statistics (see governance/monitoring/
    summary.py) and queue its check; returns the queued report. Nothing is stored unless every
    part of the summary is valid."""
    reference = _monitored_reference(model_version)
    try:
        checked = summary.validate(body, profile_of(reference), task=_task(model_version))
    except summary.SummaryError as exc:
        raise _error(exc.field, str(exc)) from None
    data = audit_chain.canonical_json(checked).encode()
    with transaction.atomic():
        name, digest = _store(model_version, data)
        report = _queue(
            model_version,
            reference,
            name,
            digest,
            actor=actor,
            scheduled=False,
            source=BatchSource.SUMMARY,
        )
    return report


def submit_batch(model_version, upload, *, actor) -> MonitoringReport:
    """Check and store a production batch and queue its check; returns the queued report."""
    reference = _monitored_reference(model_version)
    data = _read_upload(upload)
    columns = set(_columns(data))
    missing = [c for c in reference.columns if c not in OUTPUT_COLUMNS and c not in columns]
    if missing:
        raise _error("file", f"missing feature column(s) of the reference: {', '.join(missing)}")
    with transaction.atomic():
        name, digest = _store(model_version, data)
        report = _queue(model_version, reference, name, digest, actor=actor, scheduled=False)
    return report


def _queue(
    model_version, reference, name, digest, *, actor, scheduled, source=BatchSource.ROWS
) -> MonitoringReport:
    report = MonitoringReport.objects.create(
        model_version=model_version,
        reference=reference,
        reference_dataset_version_id=reference.dataset_version_id,
        batch=name,
        batch_sha256=digest,
        source=source,
        thresholds=monitoring_settings(policy_for(model_version.project).definition),
        scheduled=scheduled,
        requested_by=actor,
    )
    from governance.tasks import run_monitoring_check_task

    request_id = current().request_id
    transaction.on_commit(lambda: run_monitoring_check_task.delay(report.pk, actor.pk, request_id))
    return report


def recheck(report: MonitoringReport, *, actor) -> MonitoringReport:
    """Queue a new check of an earlier report's batch (the scheduled re-check)."""
    with transaction.atomic():
        return _queue(
            report.model_version,
            report.reference,
            report.batch.name,
            report.batch_sha256,
            actor=actor,
            scheduled=True,
            source=report.source,
        )


def _read_stored(field_file) -> pd.DataFrame:
    """A stored table; Parquet on local storage is read from its path, without a bytes copy."""
    with field_file.open("rb") as handle:
        head = handle.read(4)
        if head == b"PAR1" and hasattr(handle, "name") and default_storage.exists(field_file.name):
            try:
                return pd.read_parquet(default_storage.path(field_file.name))
            except NotImplementedError:  # remote storage without a local path
                pass
        handle.seek(0)
        return read_table(handle.read())


def _progress(report, **fields) -> None:
    MonitoringReport.objects.filter(pk=report.pk).update(**fields)


def _task(model_version) -> Task:
    return ENGINE_TASK[model_version.registered_model.task_type]


def _performance_task(model_version) -> Literal["classification", "regression"]:
    return "regression" if _task(model_version) == "regression" else "classification"


def _prediction_column(reference: pd.DataFrame, batch: pd.DataFrame) -> str | None:
    for column in ("y_score", "y_pred"):
        if column in reference.columns and column in batch.columns:
            return column
    return None


def _test_criteria(project) -> list[dict]:
    return [
        {k: v for k, v in c.items() if k != "split"}
        for c in project.acceptance_criteria
        if c.get("split", "test") == "test"
    ]


def _performance(report, batch: pd.DataFrame, thresholds: dict) -> dict | None:
    if "y_true" not in batch.columns or "y_pred" not in batch.columns:
        return None
    criteria = _test_criteria(report.model_version.project)
    if not criteria:
        return None
    evaluation = validated_on(report.model_version)
    result = drift.performance_decay(
        evaluation.metrics,
        batch["y_true"].to_numpy(),
        batch["y_pred"].to_numpy(),
        criteria=criteria,
        task=_performance_task(report.model_version),
        y_score=batch["y_score"].to_numpy() if "y_score" in batch.columns else None,
        thresholds=thresholds,
    )
    return result.to_dict()


def validated_audit(report) -> tuple[FairnessAudit | None, dict | None]:
    """The passed fairness audit the version was validated with, and where it was found.

    That is the audit the fairness gate relied on in the latest applied transition of the
    version (what its current stage rests on); for a policy without a fairness gate, the
    latest passed audit of the version on the validated dataset version. None when neither
    exists.
    """
    version = report.model_version
    applied = (
        TransitionRequest.objects.filter(model_version=version, status=RequestStatus.APPLIED)
        .order_by("-decided_at", "-id")
        .values_list("pk", "to_stage", "gate_results")
    )
    for request_id, to_stage, gates in applied:
        for gate in gates:
            audit_id = (gate.get("evidence") or {}).get("fairness_audit")
            passed = gate.get("name") == "fairness_audit_passed" and gate.get("passed")
            if not passed or audit_id is None:
                continue
            audit = FairnessAudit.objects.filter(pk=audit_id, status=AuditStatus.DONE).first()
            if audit is not None:
                return audit, {
                    "fairness_audit": audit.pk,
                    "dataset_version": audit.dataset_version_id,
                    "source": f"the fairness gate of transition request {request_id} "
                    f"(to {to_stage})",
                }
    audit = (
        FairnessAudit.objects.filter(
            model_version=version,
            dataset_version_id=report.reference_dataset_version_id,
            status=AuditStatus.DONE,
            passed=True,
        )
        .order_by("-completed_at", "-id")
        .first()
    )
    if audit is None:
        return None, None
    return audit, {
        "fairness_audit": audit.pk,
        "dataset_version": audit.dataset_version_id,
        "source": "the latest passed audit on the validated dataset version (no gate used one)",
    }


def _batch_audit_config(report, batch: pd.DataFrame, audit) -> dict | None:
    """The validated audit's configuration (so both sides are computed alike), or without one
    the policy's; restricted to the feature sets whose columns the batch holds."""
    if audit is not None:
        config = dict(audit.config)
    else:
        policy = policy_for(report.model_version.project)
        features = list(
            fairness_settings(policy).get("sensitive_features")
            or report.reference_dataset_version.sensitive_attributes
            or []
        )
        task_type = report.model_version.registered_model.task_type
        classes = (
            sorted(map(str, pd.unique(batch["y_true"]))) if task_type == TaskType.MULTICLASS else ()
        )
        config = build_config(
            policy, [f for f in features if f in batch.columns], task_type, classes
        )
    sets = [
        entry
        for entry in config["sensitive_features"]
        if all(f in batch.columns for f in ([entry] if isinstance(entry, str) else entry))
    ]
    return {**config, "sensitive_features": sets} if sets else None


def _fairness(report, batch: pd.DataFrame, thresholds: dict) -> dict | None:
    """Fairness drift: the audit's metrics per subgroup on the batch against the validated
    audit's values (governance/monitoring/fairness_drift.py), plus the policy's rules on the
    batch. Without a validated audit, only the rules can be judged."""
    if "y_true" not in batch.columns or not {"y_pred", "y_score"} & set(batch.columns):
        return None
    audit, source = validated_audit(report)
    config = _batch_audit_config(report, batch, audit)
    if config is None:
        return None
    y_score = batch["y_score"].to_numpy() if "y_score" in batch.columns else None
    if "y_pred" in batch.columns:
        y_pred = batch["y_pred"].to_numpy()
    else:
        y_pred = decisions_from_scores(y_score, config.get("decision_threshold", 0.5))
    result = run_audit(
        batch,
        batch["y_true"].to_numpy(),
        y_pred,
        {k: v for k, v in config.items() if k != "decision_threshold"},
        task=_task(report.model_version),
        y_score=y_score,
        max_categories=MAX_CATEGORIES,
    )
    summary = result["summary"]
    if audit is None:
        # No values to compare with: the rules alone, where anything short of a pass warns.
        if summary.get("fail"):
            level = "breach"
        elif sum(summary.values()) and summary.get("pass", 0) == sum(summary.values()):
            level = "ok"
        else:
            level = "warn"
        return {
            "level": level,
            "basis": "rules",
            "compared_with": None,
            "note": "no passed fairness audit of this version to compare with; "
            "the policy's rules were applied to the batch",
            **result,
        }
    assert audit.result is not None  # validated_audit finds done audits only
    compared = fairness_drift.compare(audit.result, result, thresholds.get("fairness"))
    # The validated audit passed every rule, so a rule failing on the batch is a change too.
    rules_level = "breach" if summary.get("fail") else "ok"
    return {
        **result,
        **compared,
        "level": drift.overall_level([compared["level"], rules_level]),
        "basis": "validated_audit",
        "compared_with": source,
        "rules_level": rules_level,
    }


def _summary_performance(report, checked: dict, thresholds: dict) -> dict | None:
    given = summary.performance_values(checked)
    criteria = _test_criteria(report.model_version.project)
    if given is None or not criteria:
        return None
    values, n = given
    if "confusion" in checked["performance"]:
        # The matrix is of class 1; a criterion about another class or average is not in it.
        for criterion in criteria:
            if criterion.get("pos_label", 1) != 1 or criterion.get("average") not in (
                None,
                "binary",
            ):
                values.pop(criterion["metric"], None)
    return drift.performance_from_values(
        validated_on(report.model_version).metrics,
        values,
        n=n,
        criteria=criteria,
        task=_performance_task(report.model_version),
        thresholds=thresholds,
    ).to_dict()


def _compute_summary(report, thresholds: dict) -> dict:
    """A summary-statistics batch: drift from counts against the reference rows binned the
    same way; performance from the given confusion matrix or values; no fairness drift."""
    reference = _read_stored(report.reference.file)
    with report.batch.open("rb") as handle:
        checked = json.loads(handle.read())
    _progress(report, progress=30)
    limits = thresholds["data_drift"]
    results: dict[str, dict | None] = {
        MonitoringKind.DATA_DRIFT.value: summary.data_drift(reference, checked, limits).to_dict()
    }
    prediction = summary.prediction_drift(reference, checked, limits)
    if prediction is not None:
        results[MonitoringKind.PREDICTION_DRIFT.value] = prediction.to_dict()
    _progress(report, progress=70)
    results[MonitoringKind.PERFORMANCE.value] = _summary_performance(
        report, checked, thresholds["performance"]
    )
    results[MonitoringKind.FAIRNESS.value] = None
    return _finished(results, row_count=checked["row_count"])


def _compute(report, thresholds: dict) -> dict:
    """The report's results as model fields; raises on anything it cannot check."""
    if report.source == BatchSource.SUMMARY:
        return _compute_summary(report, thresholds)
    reference = _read_stored(report.reference.file)
    batch = _read_stored(report.batch)
    _progress(report, progress=30)
    features = [c for c in reference.columns if c not in OUTPUT_COLUMNS]
    data = drift.feature_drift(
        reference, batch, features=features, thresholds=thresholds["data_drift"]
    )
    results: dict[str, dict | None] = {MonitoringKind.DATA_DRIFT.value: data.to_dict()}
    column = _prediction_column(reference, batch)
    if column is not None:
        results[MonitoringKind.PREDICTION_DRIFT.value] = drift.prediction_drift(
            reference[column], batch[column], thresholds["data_drift"]
        ).to_dict()
    _progress(report, progress=70)
    results[MonitoringKind.PERFORMANCE.value] = _performance(
        report, batch, thresholds["performance"]
    )
    results[MonitoringKind.FAIRNESS.value] = _fairness(report, batch, thresholds)
    return _finished(results, row_count=len(batch))


def _finished(results: dict, *, row_count: int) -> dict:
    levels = {kind: r["level"] for kind, r in results.items() if r is not None}
    return {
        "status": CheckStatus.DONE,
        "progress": 100,
        "row_count": row_count,
        "data_drift": results[MonitoringKind.DATA_DRIFT.value],
        "prediction_drift": results.get(MonitoringKind.PREDICTION_DRIFT.value),
        "performance": results.get(MonitoringKind.PERFORMANCE.value),
        "fairness_drift": results.get(MonitoringKind.FAIRNESS.value),
        "levels": levels,
        "breached": [kind for kind, level in levels.items() if level == "breach"],
        "completed_at": datetime.now(UTC),
    }


def _fail(report, message: str) -> None:
    """End a check as failed, with its error, in the audit trail: never left "running"."""
    with transaction.atomic():
        _progress(
            report,
            status=CheckStatus.FAILED,
            progress=100,
            error=message,
            completed_at=datetime.now(UTC),
        )
        audit_chain.record(
            AuditAction.MONITORING_CHECK_FAILED,
            target=report,
            reason="monitoring check failed",
            after={"status": CheckStatus.FAILED.value, "error": message},
        )


def run(report_id: int) -> MonitoringReport:
    """Compute a queued check (idempotent: a finished report is returned as it is).

    Whatever goes wrong ends the report as failed with the error and an audit event: bad data
    with its message, anything unexpected with the exception's type and message (and the
    traceback in the worker's log). The task does not re-raise: the report carries the error.
    """
    report = MonitoringReport.objects.select_related(
        "model_version__registered_model__project", "reference", "reference_dataset_version"
    ).get(pk=report_id)
    if report.status == CheckStatus.DONE:
        return report
    _progress(report, status=CheckStatus.RUNNING, progress=5, error="")
    try:
        # A savepoint: a database error while storing must not poison the failure record.
        with transaction.atomic():
            _progress(report, **_compute(report, report.thresholds))
    except (ValueError, ValidationError, KeyError) as exc:
        _fail(report, "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded on the report, never left "running"
        logger.exception("monitoring check %s failed", report.pk)
        _fail(report, f"unexpected error: {type(exc).__name__}: {exc}")
    report.refresh_from_db()
    return report
