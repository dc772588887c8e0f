"""The registry's actions: the only way records are created or changed.

Each action validates its input (a ValidationError names the field), runs in one transaction,
and adds the record's node and edges to the provenance graph beside it. Access is checked by
the caller (API view, admin, page) before it calls an action.
"""

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from governance import audit_chain
from governance.history_audit import remember_values
from lineage import recording
from lineage.choices import EdgeKind
from registry import accounts, evaluation_metrics
from registry.choices import ProjectRight
from registry.history import tag_change
from registry.models import (
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    Project,
    RegisteredModel,
    RiskItem,
)
from registry.prepared import PreparedQuery
from registry.record_checks import require_same_project, validated_save

PROJECT_EDITABLE = (
    "name",
    "description",
    "business_objective",
    "intended_use",
    "out_of_scope_uses",
    "risk_tier",
    "acceptance_criteria",
    "owner",
)


def grant_project_rights(project, user, rights, *, actor) -> None:
    """Give `user` the listed rights on `project` (guardian object permissions)."""
    accounts.grant_project_rights(project, user, rights, actor=actor)


@transaction.atomic
def create_project(*, actor, reason: str = "", **fields) -> Project:
    """Create a project owned by `actor` (unless another owner is named), who gets every right."""
    fields.setdefault("owner", actor)
    project = Project(**fields)
    validated_save(project, actor=actor, reason=reason or "project created")
    grant_project_rights(project, project.owner, ProjectRight.values, actor=actor)
    return project


@transaction.atomic
def update_project(project: Project, *, actor, reason: str = "", **fields) -> Project:
    """Change a project's descriptive fields and acceptance criteria (its key never changes)."""
    unknown = set(fields) - set(PROJECT_EDITABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "cannot be changed"))
    project = Project.objects.select_for_update().get(pk=project.pk)
    new_owner = fields.get("owner")
    if new_owner is not None and new_owner.pk != project.owner_id:
        # An owner who cannot see their own project would be an owner in name only (rolled
        # back with the rest if the change is refused).
        grant_project_rights(project, new_owner, ProjectRight.values, actor=actor)
    for name, value in fields.items():
        setattr(project, name, value)
    # Criteria stored before a rule was tightened stay as they are until someone edits them:
    # a change to the description is not refused for them.
    unchanged = [] if "acceptance_criteria" in fields else ["acceptance_criteria"]
    validated_save(project, actor=actor, reason=reason, exclude=["key", *unchanged])
    return project


@transaction.atomic
def add_risk(project: Project, *, actor, reason: str = "", **fields) -> RiskItem:
    """Add an entry to the project's risk register."""
    risk = RiskItem(project=project, **fields)
    validated_save(risk, actor=actor, reason=reason or "risk registered")
    return risk


@transaction.atomic
def update_risk(risk: RiskItem, *, actor, reason: str = "", **fields) -> RiskItem:
    """Change a risk (e.g. its status once mitigated); the history keeps the earlier state."""
    fields.pop("project", None)
    for name, value in fields.items():
        setattr(risk, name, value)
    validated_save(risk, actor=actor, reason=reason)
    return risk


@transaction.atomic
def register_model(project: Project, *, actor, reason: str = "", **fields) -> RegisteredModel:
    """Register a model (a name and a task type) in a project."""
    model = RegisteredModel(project=project, **fields)
    if RegisteredModel.objects.filter(project=project, name=model.name).exists():
        raise ValidationError({"name": f"a model named {model.name!r} exists in {project.key}"})
    validated_save(model, actor=actor, reason=reason or "model registered")
    return model


@transaction.atomic
def update_model(model: RegisteredModel, *, actor, reason: str = "", **fields) -> RegisteredModel:
    """Change a registered model's description (its name and task type are fixed)."""
    for name in ("description",):
        if name in fields:
            setattr(model, name, fields.pop(name))
    if fields:
        raise ValidationError(dict.fromkeys(fields, "cannot be changed"))
    validated_save(model, actor=actor, reason=reason)
    return model


# The model whose version counter a registration moves, locked (compiled once: see
# registry.prepared).
_LOCKED_MODEL = PreparedQuery(
    lambda pk: RegisteredModel.objects.select_for_update().filter(pk=pk), RegisteredModel
)


@transaction.atomic
def register_model_version(
    registered_model: RegisteredModel,
    *,
    actor,
    run=None,
    derived_from=None,
    reason: str = "",
    **fields,
) -> ModelVersion:
    """Register a new version: the next number, never reused, issued under a row lock."""
    project = registered_model.project
    require_same_project(project, run, field="run")
    require_same_project(project, derived_from, field="derived_from")
    if derived_from is not None and derived_from.registered_model_id != registered_model.pk:
        raise ValidationError({"derived_from": "must be a version of the same model"})
    # The model's and the version's audit events are appended together, at the end.
    with audit_chain.batched():
        locked = _LOCKED_MODEL.get(pk=registered_model.pk)
        # Locked until the end of the transaction: its audit event diffs against these values
        # instead of reading its previous history row.
        remember_values(locked)
        locked.project = project  # the same row, already read: no second lookup for the labels
        locked.last_version += 1
        tag_change(locked, actor=actor, reason=reason or "model version registered")
        locked.save(update_fields=["last_version", "updated_at"])
        version = ModelVersion(
            registered_model=locked,
            version=locked.last_version,
            run=run,
            derived_from=derived_from,
            created_by=actor,
            **fields,
        )
        # The model (locked above), the actor, the run and the earlier version are records
        # this action has in hand: full_clean need not look each up again. The version number
        # is issued under the lock, with the database's unique constraint behind it.
        validated_save(
            version,
            actor=actor,
            reason=reason or "model version registered",
            exclude=["registered_model", "created_by", "run", "derived_from"],
        )
        recording.add_node(version, project=project)
        if run is not None:
            recording.link(run, version, EdgeKind.GENERATED)
        if derived_from is not None:
            recording.link(derived_from, version, EdgeKind.DERIVED)
    return version


MODEL_VERSION_EDITABLE = ("description", *ModelVersion.MODEL_CARD_FIELDS, "framework")


@transaction.atomic
def update_model_version(version: ModelVersion, *, actor, reason: str = "", **fields):
    """Edit a version's description and model card. Its artifact and provenance are fixed."""
    unknown = set(fields) - set(MODEL_VERSION_EDITABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "cannot be changed after registration"))
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    for name, value in fields.items():
        setattr(version, name, value)
    validated_save(version, actor=actor, reason=reason)
    return version


@transaction.atomic
def register_dataset(project: Project, *, actor, reason: str = "", **fields) -> Dataset:
    """Register a named data set in a project."""
    dataset = Dataset(project=project, **fields)
    if Dataset.objects.filter(project=project, name=dataset.name).exists():
        raise ValidationError({"name": f"a dataset named {dataset.name!r} exists in {project.key}"})
    validated_save(dataset, actor=actor, reason=reason or "dataset registered")
    return dataset


@transaction.atomic
def update_dataset(dataset: Dataset, *, actor, reason: str = "", **fields) -> Dataset:
    if set(fields) - {"description"}:
        raise ValidationError(dict.fromkeys(set(fields) - {"description"}, "cannot be changed"))
    for name, value in fields.items():
        setattr(dataset, name, value)
    validated_save(dataset, actor=actor, reason=reason)
    return dataset


def register_dataset_version(
    dataset: Dataset, *, actor, content_sha256: str, reason: str = "", **fields
) -> tuple[DatasetVersion, bool]:
    """Register a content version; the same content hash returns the existing version.

    Returns (version, created). Idempotent under concurrency: the dataset row is locked while
    the next number is issued, and the (dataset, hash) unique constraint is the last word.
    """
    try:
        with transaction.atomic():
            return _register_dataset_version(dataset, actor, content_sha256, reason, fields)
    except IntegrityError:
        existing = DatasetVersion.objects.filter(dataset=dataset, content_sha256=content_sha256)
        if existing.exists():
            return existing.get(), False
        raise


def _register_dataset_version(dataset, actor, content_sha256, reason, fields):
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    existing = DatasetVersion.objects.filter(dataset=locked, content_sha256=content_sha256).first()
    if existing is not None:
        return existing, False
    version = DatasetVersion(
        dataset=locked, content_sha256=content_sha256, created_by=actor, **fields
    )
    version.version = locked.last_version + 1
    validated_save(version, actor=actor, reason=reason or "dataset version registered")
    locked.last_version = version.version
    locked._history_user = actor
    locked.save(update_fields=["last_version", "updated_at"])
    recording.add_node(version, project=locked.project)
    return version, True


@transaction.atomic
def record_evaluation(
    model_version: ModelVersion,
    dataset_version: DatasetVersion,
    *,
    actor,
    metrics: dict | None = None,
    baselines: dict | None = None,
    predictions=None,
    notes: str = "",
    reason: str = "",
) -> Evaluation:
    """Record how a version performed on one exact dataset version.

    With a predictions file (CSV: y_true, y_pred, optional y_score) the metrics and the
    majority-class and random baselines are computed here; any baselines given (e.g. a
    simple model's) are kept beside them. The file is stored only once everything else is
    valid, and removed again if the record cannot be written: no orphan uploads.
    """
    require_same_project(model_version.project, dataset_version, field="dataset_version")
    for name, value in (("metrics", metrics), ("baselines", baselines)):
        if value is not None and not isinstance(value, dict):
            raise ValidationError({name: "must be a JSON object"})
    evaluation = Evaluation(
        model_version=model_version,
        dataset_version=dataset_version,
        created_by=actor,
        metrics=dict(metrics or {}),
        baselines=dict(baselines or {}),
        notes=notes,
    )
    if predictions is not None:
        data = predictions.read()
        frame, digest = evaluation_metrics.read_predictions(data)
        if len(frame) != dataset_version.row_count:
            raise ValidationError(
                {
                    "predictions": f"{len(frame)} rows, but {dataset_version} has "
                    f"{dataset_version.row_count}: predictions must cover the whole dataset version"
                }
            )
        computed, computed_baselines = evaluation_metrics.compute(
            frame, model_version.registered_model.task_type
        )
        evaluation.metrics = {**computed, **evaluation.metrics}
        evaluation.baselines = {**computed_baselines, **evaluation.baselines}
        evaluation.predictions_sha256 = digest
    elif not evaluation.metrics:
        raise ValidationError({"metrics": "give the metrics or upload the predictions"})
    evaluation.full_clean(exclude=["predictions"])
    if predictions is not None:
        evaluation.predictions.save(f"{digest}.csv", ContentFile(data), save=False)
    try:
        validated_save(
            evaluation, actor=actor, reason=reason or "evaluation recorded", exclude=["predictions"]
        )
        recording.add_node(evaluation, project=model_version.project)
        recording.link(model_version, evaluation, EdgeKind.EVALUATED)
        recording.link(dataset_version, evaluation, EdgeKind.USED)
    except BaseException:
        if evaluation.predictions:
            evaluation.predictions.delete(save=False)
        raise
    return evaluation
