"""Fairness audit actions: accept predictions, configure from the policy, run, store.

Bad input is refused before anything is stored: the upload is parsed and checked in the
request, and only a clean file is saved, registered and queued for the task.
"""

import hashlib
import io
from datetime import UTC, datetime

import fairlearn
import numpy as np
import pandas as pd
import sklearn
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from config.request_context import current
from governance import audit_chain
from governance.choices import AuditAction
from governance.fairness.engine import Task
from governance.fairness.rules import decisions_from_scores, run_audit
from governance.models import AuditStatus, FairnessAudit
from governance.policies import policy_for
from lineage import recording
from lineage.choices import EdgeKind, NodeKind
from registry import services as registry
from registry.choices import TaskType
from registry.models import Dataset, DatasetVersion, Evaluation
from registry.record_checks import require_same_project

MAX_CATEGORIES = 50
# The engine's name for each task type of a registered model.
ENGINE_TASK: dict[str, Task] = {
    TaskType.BINARY: "binary",
    TaskType.MULTICLASS: "multiclass",
    TaskType.REGRESSION: "regression",
}
MEDIA_URI_PREFIX = "media:"
recording.register_node_kind("governance.fairnessaudit", NodeKind.FAIRNESS_AUDIT)


def _error(message: str) -> ValidationError:
    return ValidationError({"file": message})


def read_table(data: bytes, name: str = "") -> pd.DataFrame:
    """Parse a CSV or Parquet file (Parquet is recognised by its magic bytes)."""
    if not data:
        raise _error("the file is empty")
    try:
        if data[:4] == b"PAR1":
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's bad file
        raise _error(f"not a readable CSV or Parquet file ({type(exc).__name__}: {exc})") from None


def _labels(task_type: str, frame: pd.DataFrame, column: str) -> None:
    if task_type == TaskType.BINARY:
        values = set(pd.unique(frame[column].dropna()))
        outside = sorted(map(str, values - {0, 1}))
        if outside:
            raise _error(
                f"{column} has labels outside the binary classes 0 and 1: {', '.join(outside[:5])}"
            )
    elif task_type == TaskType.REGRESSION and not pd.api.types.is_numeric_dtype(frame[column]):
        raise _error(f"{column} must be numeric for a regression model")


def validate_predictions(frame: pd.DataFrame, task_type: str, features: list[str]) -> None:
    """Refuse a predictions table that cannot be audited, naming the problem."""
    if frame.empty:
        raise _error("the file has no rows")
    columns = set(frame.columns)
    missing = [c for c in ("y_true",) if c not in columns]
    if "y_pred" not in columns and "y_score" not in columns:
        missing.append("y_pred (or y_score)")
    missing += [f for f in features if f not in columns]
    if missing:
        raise _error(
            f"missing column(s): {', '.join(missing)}; found {', '.join(map(str, frame.columns))}"
        )
    for column in ("y_true", "y_pred", "y_score"):
        if column in columns and frame[column].isna().any():
            raise _error(f"{column} has empty values")
    _labels(task_type, frame, "y_true")
    if "y_pred" in columns:
        _labels(task_type, frame, "y_pred")
    if task_type == TaskType.MULTICLASS and "y_pred" in columns:
        unknown = set(pd.unique(frame["y_pred"])) - set(pd.unique(frame["y_true"]))
        if unknown:
            raise _error(
                f"y_pred has classes never seen in y_true: "
                f"{', '.join(sorted(map(str, unknown))[:5])}"
            )
    for feature in features:
        count = frame[feature].nunique(dropna=True)
        if count > MAX_CATEGORIES:
            raise _error(
                f"sensitive feature {feature!r} has {count} distinct values (at most "
                f"{MAX_CATEGORIES}); bin it into groups first"
            )


def fairness_settings(policy) -> dict:
    return policy.definition.get("settings", {}).get("fairness", {})


# Regression models are audited on error parity; a policy may set its own metrics and rules.
REGRESSION_METRICS = ["count", "mean_absolute_error", "mean_prediction"]
REGRESSION_RULES = [
    {
        "name": "error parity (MAE ratio)",
        "metric": "mean_absolute_error",
        "kind": "ratio",
        "against": "between_groups",
        "min": 0.8,
        "max": None,
    },
]


def _per_class(rules: list[dict], metrics: list[str], classes) -> tuple[list[str], list[dict]]:
    """Multiclass: each rate is audited one-vs-rest, so each rule applies to every class."""
    overall = {"count", "accuracy"}
    metrics = [m for m in metrics if m in overall] + [
        f"{m}[class={label}]" for m in metrics if m not in overall for label in classes
    ]
    expanded = []
    for rule in rules:
        for label in classes:
            expanded.append(
                {
                    **rule,
                    "metric": f"{rule['metric']}[class={label}]",
                    "name": f"{rule['name']} (class {label})",
                }
            )
    return metrics, expanded


def build_config(policy, features: list[str], task_type: str = TaskType.BINARY, classes=()) -> dict:
    """The audit configuration: the policy's settings for the model's task, plus the
    sensitive feature sets (each feature alone, and all of them intersected)."""
    settings_ = fairness_settings(policy)
    sets: list = list(features)
    if len(features) > 1:
        sets.append(list(features))
    n_boot = settings_.get("n_boot") or None
    metrics = settings_.get("metrics", ["count", "selection_rate"])
    rules = settings_.get("rules", [])
    if task_type == TaskType.REGRESSION:
        metrics = settings_.get("regression_metrics", REGRESSION_METRICS)
        rules = settings_.get("regression_rules", REGRESSION_RULES)
    elif task_type == TaskType.MULTICLASS:
        metrics, rules = _per_class(rules, metrics, classes)
    return {
        "sensitive_features": sets,
        "metrics": metrics,
        "reference_group": settings_.get("reference_group", "largest"),
        "min_group_size": settings_.get("min_group_size", 30),
        "rules": rules,
        "n_boot": n_boot,
        "ci_quantiles": settings_.get("ci_quantiles") if n_boot else None,
        "seed": settings_.get("seed", 0),
        "decision_threshold": settings_.get("decision_threshold", 0.5),
    }


def policy_config_sha256(policy) -> str:
    return audit_chain.sha256_hex(audit_chain.canonical_json(fairness_settings(policy)))


def _evaluated_dataset_version(model_version, split: str) -> DatasetVersion:
    evaluation = (
        Evaluation.objects.filter(model_version=model_version, dataset_version__split=split)
        .select_related("dataset_version")
        .order_by("-created_at", "-id")
        .first()
    )
    if evaluation is None:
        raise ValidationError(
            {
                "dataset_version": f"name the evaluated dataset version: "
                f"{model_version} has no evaluation on a {split}-split version"
            }
        )
    return evaluation.dataset_version


def _register_predictions(model_version, dataset_version, frame, data, digest, *, actor):
    project = model_version.project
    name = f"{model_version.registered_model.name}-predictions"[:200]
    dataset = Dataset.objects.filter(project=project, name=name).first()
    if dataset is None:
        dataset = registry.register_dataset(
            project, actor=actor, name=name, description="Predictions uploaded for audits."
        )
    storage_name = f"fairness/{model_version.pk}/{digest}.bin"
    if not default_storage.exists(storage_name):
        default_storage.save(storage_name, ContentFile(data))
    schema = [
        {
            "name": str(c),
            "type": "float"
            if pd.api.types.is_float_dtype(t)
            else "integer"
            if pd.api.types.is_integer_dtype(t)
            else "string",
        }
        for c, t in frame.dtypes.items()
    ]
    version, _ = registry.register_dataset_version(
        dataset,
        actor=actor,
        content_sha256=digest,
        uri=MEDIA_URI_PREFIX + storage_name,
        row_count=len(frame),
        schema=schema,
        split=dataset_version.split,
        composition=f"Predictions of {model_version} on {dataset_version}.",
    )
    return version, storage_name


def request_audit(
    model_version,
    *,
    actor,
    upload=None,
    predictions_version=None,
    dataset_version=None,
    sensitive_features=None,
) -> tuple[FairnessAudit, bool]:
    """Check, store and queue an audit; the same inputs and configuration return the stored
    audit instead of a new one. Returns (audit, created)."""
    project = model_version.project
    policy = policy_for(project)
    split = fairness_settings(policy).get("required_split", "test")
    dataset_version = dataset_version or _evaluated_dataset_version(model_version, split)
    require_same_project(project, dataset_version, predictions_version, field="dataset_version")
    if upload is not None:
        data = upload.read()
        limit = settings.STAGEGATE_MAX_UPLOAD_MB * 1024 * 1024
        if len(data) > limit:
            raise _error(
                f"the file is {len(data) / 1e6:.1f} MB; the limit is "
                f"{settings.STAGEGATE_MAX_UPLOAD_MB} MB"
            )
    elif predictions_version is not None:
        if not predictions_version.uri.startswith(MEDIA_URI_PREFIX):
            raise ValidationError(
                {
                    "predictions_version": "only predictions uploaded to "
                    "Stagegate can be audited by reference"
                }
            )
        with default_storage.open(predictions_version.uri[len(MEDIA_URI_PREFIX) :]) as handle:
            data = handle.read()
    else:
        raise _error("upload a predictions file or name an uploaded predictions version")
    features = list(
        sensitive_features
        or fairness_settings(policy).get("sensitive_features")
        or dataset_version.sensitive_attributes
    )
    if not features:
        raise ValidationError(
            {
                "sensitive_features": "name at least one sensitive feature "
                "(none are set by the policy or the dataset's datasheet)"
            }
        )
    frame = read_table(data)
    validate_predictions(frame, model_version.registered_model.task_type, features)
    if len(frame) != dataset_version.row_count:
        raise _error(f"{len(frame)} rows, but {dataset_version} has {dataset_version.row_count}")
    digest = hashlib.sha256(data).hexdigest()
    task_type = model_version.registered_model.task_type
    classes = (
        sorted(map(str, pd.unique(frame["y_true"]))) if task_type == TaskType.MULTICLASS else ()
    )
    config = build_config(policy, features, task_type, classes)
    config_sha = audit_chain.sha256_hex(audit_chain.canonical_json(config))
    with transaction.atomic():
        existing = FairnessAudit.objects.filter(
            model_version=model_version,
            dataset_version=dataset_version,
            predictions_sha256=digest,
            config_sha256=config_sha,
        ).first()
        if existing is not None:
            return existing, False
        stored_version, storage_name = _register_predictions(
            model_version, dataset_version, frame, data, digest, actor=actor
        )
        audit = FairnessAudit.objects.create(
            model_version=model_version,
            dataset_version=dataset_version,
            predictions_version=stored_version,
            predictions=storage_name,
            predictions_sha256=digest,
            policy=policy,
            config=config,
            config_sha256=config_sha,
            policy_config_sha256=policy_config_sha256(policy),
            requested_by=actor,
            library_versions={
                "fairlearn": fairlearn.__version__,
                "scikit-learn": sklearn.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
            },
        )
        recording.add_node(audit, project=project)
        recording.link(model_version, audit, EdgeKind.EVALUATED)
        recording.link(dataset_version, audit, EdgeKind.USED)
        recording.link(stored_version, audit, EdgeKind.USED)
        audit_chain.record(
            AuditAction.FAIRNESS_AUDIT_REQUESTED,
            target=audit,
            actor=actor,
            after={
                "model_version": model_version.pk,
                "dataset_version": dataset_version.pk,
                "predictions_sha256": digest,
                "config_sha256": config_sha,
            },
        )
        from governance.tasks import run_fairness_audit_task

        request_id = current().request_id
        transaction.on_commit(lambda: run_fairness_audit_task.delay(audit.pk, actor.pk, request_id))
    return audit, True


def _set_progress(audit, **fields):
    FairnessAudit.objects.filter(pk=audit.pk).update(**fields)


def run(audit_id: int) -> FairnessAudit:
    """Compute a queued audit (idempotent: a finished audit is returned as it is)."""
    audit = FairnessAudit.objects.select_related("model_version__registered_model").get(pk=audit_id)
    if audit.status == AuditStatus.DONE:
        return audit
    _set_progress(audit, status=AuditStatus.RUNNING, progress=10)
    try:
        with audit.predictions.open("rb") as handle:
            frame = read_table(handle.read())
        _set_progress(audit, progress=40)
        task = ENGINE_TASK[audit.model_version.registered_model.task_type]
        y_score = frame["y_score"].to_numpy() if "y_score" in frame.columns else None
        if "y_pred" in frame.columns:
            y_pred = frame["y_pred"].to_numpy()
        else:
            y_pred = decisions_from_scores(y_score, audit.config["decision_threshold"])
        config = {k: v for k, v in audit.config.items() if k != "decision_threshold"}
        result = run_audit(
            frame,
            frame["y_true"].to_numpy(),
            y_pred,
            config,
            task=task,
            y_score=y_score,
            max_categories=MAX_CATEGORIES,
        )
    except (ValueError, ValidationError, KeyError) as exc:
        _set_progress(audit, status=AuditStatus.FAILED, progress=100, error=str(exc))
        audit.refresh_from_db()
        return audit
    summary = result["summary"]
    passed = sum(summary.values()) > 0 and summary.get("pass", 0) == sum(summary.values())
    with transaction.atomic():
        _set_progress(
            audit,
            status=AuditStatus.DONE,
            progress=100,
            result=result,
            passed=passed,
            completed_at=datetime.now(UTC),
        )
        audit.refresh_from_db()
        audit_chain.record(
            AuditAction.FAIRNESS_AUDIT_COMPLETED,
            target=audit,
            actor=audit.requested_by,
            after={"passed": passed, "summary": summary},
        )
    return audit
