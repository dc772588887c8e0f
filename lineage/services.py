"""Lineage actions: code versions and runs, each adding its nodes and edges to the graph."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from lineage import recording
from lineage.choices import EdgeKind
from lineage.models import CodeVersion, Run
from registry.record_checks import require_same_project, validated_save

RUN_UPDATABLE = ("status", "ended_at", "metrics", "started_at")


def register_code_version(project, *, actor, reason: str = "", **fields) -> CodeVersion:
    """Register an exact code state; the same repository, commit, path and dirty flag is reused."""
    fields.setdefault("path", "")
    fields.setdefault("dirty", False)
    identity = {
        k: fields[k] for k in ("repository_url", "commit_sha", "path", "dirty") if k in fields
    }
    existing = CodeVersion.objects.filter(project=project, **identity).first()
    if existing is not None and len(identity) == 4:
        return existing
    try:
        with transaction.atomic():
            code = CodeVersion(project=project, **fields)
            validated_save(code, actor=actor, reason=reason or "code version registered")
            recording.add_node(code, project=project)
            return code
    except IntegrityError:
        return CodeVersion.objects.get(project=project, **identity)


@transaction.atomic
def create_run(
    project,
    *,
    actor,
    code_version=None,
    parent=None,
    input_datasets=(),
    output_datasets=(),
    input_models=(),
    reason: str = "",
    **fields,
) -> Run:
    """Record a run with its code, parameters, environment, inputs and outputs."""
    require_same_project(project, code_version, field="code_version")
    require_same_project(project, parent, field="parent")
    require_same_project(project, *input_datasets, field="input_datasets")
    require_same_project(project, *output_datasets, field="output_datasets")
    require_same_project(project, *input_models, field="input_models")
    run = Run(project=project, code_version=code_version, parent=parent, created_by=actor, **fields)
    validated_save(run, actor=actor, reason=reason or "run recorded")
    recording.add_node(run, project=project)
    if code_version is not None:
        recording.link(code_version, run, EdgeKind.CODE)
    if parent is not None:
        recording.link(parent, run, EdgeKind.PARENT)
    _attach(
        run,
        input_datasets=input_datasets,
        output_datasets=output_datasets,
        input_models=input_models,
    )
    return run


def _attach(run: Run, *, input_datasets=(), output_datasets=(), input_models=()) -> None:
    for dataset_version in input_datasets:
        recording.link(dataset_version, run, EdgeKind.USED)
    for model_version in input_models:
        recording.link(model_version, run, EdgeKind.USED)
    for dataset_version in output_datasets:
        recording.link(run, dataset_version, EdgeKind.GENERATED)
    if input_datasets:
        run.input_datasets.add(*input_datasets)
    if input_models:
        run.input_models.add(*input_models)
    if output_datasets:
        run.output_datasets.add(*output_datasets)


@transaction.atomic
def update_run(
    run: Run,
    *,
    actor,
    output_datasets=(),
    input_datasets=(),
    input_models=(),
    reason: str = "",
    **fields,
) -> Run:
    """Complete or fail a run, add its metrics, and add inputs or outputs (never remove them)."""
    unknown = set(fields) - set(RUN_UPDATABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "cannot be changed after the run is recorded"))
    require_same_project(
        run.project, *input_datasets, *output_datasets, *input_models, field="outputs"
    )
    run = Run.objects.select_for_update().get(pk=run.pk)
    for name, value in fields.items():
        setattr(run, name, value)
    validated_save(run, actor=actor, reason=reason)
    _attach(
        run,
        input_datasets=input_datasets,
        output_datasets=output_datasets,
        input_models=input_models,
    )
    return run
