"""OpenLineage ingestion: RunEvents, as openlineage-python's HTTP transport posts them, become runs,
dataset versions, code versions and edges of the provenance graph.

Validation follows the OpenLineage specification's RunEvent (spec 2-0-2), written here from
the public spec rather than vendored: `eventTime` (RFC 3339 date-time with an offset),
`producer` and `schemaURL` (URIs), `run.runId` (a UUID), `job.namespace` and `job.name`
(strings) are required; `eventType`, when given, is START, RUNNING, COMPLETE, ABORT, FAIL or
OTHER; `inputs` and `outputs` are lists of datasets with `namespace` and `name`; every facet is
an object carrying `_producer` and `_schemaURL` URIs (or `_deleted: true`).

How an event maps onto Stagegate:
- the job's **namespace is a project key**: the poster must be able to view that project (404
  otherwise, as for anything invisible) and contribute to it (403);
- the **run** is the Run whose `external_id` is the runId, created on its first event with the
  job's name; START and RUNNING mark it running, COMPLETE completed, FAIL failed, ABORT aborted;
  the `parent` run facet names its parent run (created as a stub if it has not reported yet);
  the job's `sourceCodeLocation` facet, whose `version` must then be a commit SHA, is its code;
- each input and output **dataset** is a Dataset of the job's project named from the dataset's
  namespace and name (see `dataset_name`); its **version** is identified by the dataset `version`
  facet when present, else by a hash of the dataset's identity and schema; the `schema` facet is
  its schema and `outputStatistics.rowCount` its row count;
- events are **idempotent** by (runId, eventType, eventTime): a repeated event is acknowledged and
  not applied again;
- a request is **one transaction**: an invalid event, an edge that would close a cycle, or a
  namespace the poster may not write to leaves nothing behind.
"""

import hashlib
import json
import re
import uuid
from datetime import datetime
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction

from lineage import services
from lineage.choices import RunKind, RunStatus
from lineage.models import ReceivedEvent, Run
from registry import services as registry_services
from registry.access import has_project_right
from registry.choices import ProjectRight, Split
from registry.models import Dataset, Project

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
STATUS_OF_EVENT = {
    "START": RunStatus.RUNNING,
    "RUNNING": RunStatus.RUNNING,
    "COMPLETE": RunStatus.COMPLETED,
    "FAIL": RunStatus.FAILED,
    "ABORT": RunStatus.ABORTED,
}
TERMINAL = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABORTED}
MAX_EVENTS_PER_BATCH = 1000
_COMMIT = re.compile(r"^[0-9a-fA-F]{40}$")
_NOT_NAME = re.compile(r"[^a-z0-9]+")


class IngestionError(Exception):
    """An event that cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, detail, status: int = 400):
        super().__init__(detail)
        self.detail = detail
        self.status = status


# --- validation (the specification's rules) ---------------------------------------------------


def _is_uri(value) -> bool:
    return isinstance(value, str) and bool(urlsplit(value).scheme)


def _is_uuid(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def parse_time(value) -> datetime | None:
    """An RFC 3339 date-time with an offset, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _check_facets(facets, where: str, errors: list[str]) -> None:
    if facets is None:
        return
    if not isinstance(facets, dict):
        errors.append(f"{where}: must be an object of facets")
        return
    for name, facet in facets.items():
        if not isinstance(facet, dict):
            errors.append(f"{where}.{name}: a facet must be an object")
            continue
        if facet.get("_deleted") is True:
            continue
        for key in ("_producer", "_schemaURL"):
            if key not in facet:
                errors.append(f"{where}.{name}: '{key}' is a required property")
            elif not _is_uri(facet[key]):
                errors.append(f"{where}.{name}.{key}: must be a URI")


def _check_string(container: dict, key: str, where: str, errors: list[str]) -> None:
    if key not in container:
        errors.append(f"{where}: '{key}' is a required property")
    elif not isinstance(container[key], str) or not container[key]:
        errors.append(f"{where}.{key}: must be a non-empty string")


def validate(event) -> list[str]:
    """The specification errors of one RunEvent (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["event: must be a JSON object"]
    errors: list[str] = []
    if "run" not in event and ("dataset" in event or "job" in event):
        return ["only RunEvents are accepted (this event has no 'run')"]
    for key in ("eventTime", "producer", "schemaURL", "run", "job"):
        if key not in event:
            errors.append(f"'{key}' is a required property")
    if "eventTime" in event and parse_time(event["eventTime"]) is None:
        errors.append("eventTime: must be an RFC 3339 date-time with a time zone offset")
    for key in ("producer", "schemaURL"):
        if key in event and not _is_uri(event[key]):
            errors.append(f"{key}: must be a URI")
    if "eventType" in event and event["eventType"] not in EVENT_TYPES:
        errors.append(f"eventType: must be one of {', '.join(EVENT_TYPES)}")
    run = event.get("run")
    if "run" in event:
        if not isinstance(run, dict):
            errors.append("run: must be an object")
        else:
            if "runId" not in run:
                errors.append("run: 'runId' is a required property")
            elif not _is_uuid(run["runId"]):
                errors.append("run.runId: must be a UUID")
            _check_facets(run.get("facets"), "run.facets", errors)
            parent = (run.get("facets") or {}).get("parent")
            if isinstance(parent, dict) and not parent.get("_deleted"):
                _check_parent(parent, errors)
    job = event.get("job")
    if "job" in event:
        if not isinstance(job, dict):
            errors.append("job: must be an object")
        else:
            _check_string(job, "namespace", "job", errors)
            _check_string(job, "name", "job", errors)
            _check_facets(job.get("facets"), "job.facets", errors)
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        datasets = event.get(side, [])
        if not isinstance(datasets, list):
            errors.append(f"{side}: must be an array")
            continue
        for index, dataset in enumerate(datasets):
            where = f"{side}[{index}]"
            if not isinstance(dataset, dict):
                errors.append(f"{where}: must be an object")
                continue
            _check_string(dataset, "namespace", where, errors)
            _check_string(dataset, "name", where, errors)
            _check_facets(dataset.get("facets"), f"{where}.facets", errors)
            _check_facets(dataset.get(extra), f"{where}.{extra}", errors)
    return errors


def _check_parent(parent: dict, errors: list[str]) -> None:
    run, job = parent.get("run"), parent.get("job")
    if not isinstance(run, dict) or not _is_uuid(run.get("runId")):
        errors.append("run.facets.parent.run.runId: must be a UUID")
    if not isinstance(job, dict):
        errors.append("run.facets.parent: 'job' is a required property")
    else:
        _check_string(job, "namespace", "run.facets.parent.job", errors)
        _check_string(job, "name", "run.facets.parent.job", errors)


# --- mapping -----------------------------------------------------------------------------------


def dataset_name(namespace: str, name: str) -> str:
    """A Stagegate dataset name (2-63 lowercase letters, digits, hyphens) for an OpenLineage
    dataset: a readable slug of its name, with a digest of namespace and name so that two
    datasets never share one."""
    digest = hashlib.sha256(f"{namespace}\n{name}".encode()).hexdigest()[:10]
    slug = _NOT_NAME.sub("-", name.lower()).strip("-")[:50].strip("-")
    return f"{slug}-{digest}" if slug else f"ol-{digest}"


_COLUMN_TYPES = (
    (("bool",), "boolean"),
    (("int", "long", "short", "byte", "serial"), "integer"),
    (("float", "double", "decimal", "numeric", "real", "number"), "float"),
    (("timestamp", "date", "time"), "datetime"),
    (("category", "enum"), "category"),
)


def _column_type(ol_type) -> str:
    lowered = str(ol_type or "").lower()
    for needles, column_type in _COLUMN_TYPES:
        if any(needle in lowered for needle in needles):
            return column_type
    return "string"


def _schema(facets: dict) -> list[dict]:
    fields = (facets.get("schema") or {}).get("fields") or []
    columns, seen = [], set()
    for field in fields:
        name = field.get("name") if isinstance(field, dict) else None
        if isinstance(name, str) and name and name not in seen:
            seen.add(name)
            columns.append({"name": name, "type": _column_type(field.get("type"))})
    return columns


class _Ingestion:
    """One request's events, applied in order inside one transaction."""

    def __init__(self, actor):
        self.actor = actor
        self.projects: dict[str, Project] = {}
        self.datasets: dict[tuple[int, str], Dataset] = {}

    def project(self, namespace: str) -> Project:
        if namespace in self.projects:
            return self.projects[namespace]
        project = Project.objects.visible_to(self.actor, ProjectRight.VIEW).filter(key=namespace)
        project = project.first()
        if project is None:
            raise IngestionError(
                f"namespace {namespace!r}: no project with that key (or it is not visible to "
                "you); the job namespace must be a Stagegate project key",
                status=404,
            )
        if not has_project_right(self.actor, project, ProjectRight.CONTRIBUTE):
            raise IngestionError(
                f"You need the 'contribute' right on project {project.key} to post its lineage.",
                status=403,
            )
        self.projects[namespace] = project
        return project

    def apply(self, event: dict) -> dict:
        run_uuid = uuid.UUID(event["run"]["runId"])
        event_type = event.get("eventType", "OTHER")
        event_time = parse_time(event["eventTime"])
        answer = {"runId": str(run_uuid), "eventType": event_type}
        if ReceivedEvent.objects.filter(
            run_uuid=run_uuid, event_type=event_type, event_time=event_time
        ).exists():
            return {**answer, "result": "duplicate"}
        project = self.project(event["job"]["namespace"])
        run = Run.objects.select_for_update().filter(external_id=run_uuid).first()
        if run is not None and run.project_id != project.pk:
            raise IngestionError(f"run {run_uuid} belongs to another namespace")
        inputs = [self.dataset_version(project, d) for d in event.get("inputs", [])]
        outputs = [self.dataset_version(project, d) for d in event.get("outputs", [])]
        times = {}
        status = STATUS_OF_EVENT.get(event_type)
        if event_type == "START":
            times["started_at"] = event_time
        elif status in TERMINAL:
            times["ended_at"] = event_time
        if run is None:
            run = services.create_run(
                project,
                actor=self.actor,
                name=event["job"]["name"][:300],
                kind=RunKind.OTHER,
                status=status or RunStatus.RUNNING,
                external_id=run_uuid,
                parent=self.parent(project, event),
                code_version=self.code_version(project, event),
                environment=self.environment(event),
                input_datasets=inputs,
                output_datasets=outputs,
                reason=f"OpenLineage {event_type} event",
                **times,
            )
            result = "created"
        else:
            # Events repeat their datasets (START and COMPLETE both list the inputs): only
            # new links are made, each costing a cycle check and history rows.
            inputs = _not_yet(inputs, run.input_datasets)
            outputs = _not_yet(outputs, run.output_datasets)
            fields = dict(times)
            # A START or RUNNING that arrives after the run ended does not reopen it.
            if status and not (status == RunStatus.RUNNING and run.status in TERMINAL):
                fields["status"] = status
            run = services.update_run(
                run,
                actor=self.actor,
                input_datasets=inputs,
                output_datasets=outputs,
                reason=f"OpenLineage {event_type} event",
                **fields,
            )
            result = "updated"
        ReceivedEvent.objects.create(
            run_uuid=run_uuid,
            event_type=event_type,
            event_time=event_time,
            run=run,
            payload=event,
            received_by=self.actor,
        )
        return {**answer, "result": result, "run": run.pk}

    def parent(self, project: Project, event: dict) -> Run | None:
        facet = (event["run"].get("facets") or {}).get("parent")
        if not isinstance(facet, dict) or facet.get("_deleted"):
            return None
        if self.project(facet["job"]["namespace"]).pk != project.pk:
            raise IngestionError("run.facets.parent: the parent job must be in the same namespace")
        parent_uuid = uuid.UUID(facet["run"]["runId"])
        if parent_uuid == uuid.UUID(event["run"]["runId"]):
            raise IngestionError("run.facets.parent: a run cannot be its own parent (a cycle)")
        parent = Run.objects.filter(external_id=parent_uuid).first()
        if parent is None:
            parent = services.create_run(
                project,
                actor=self.actor,
                name=facet["job"]["name"][:300],
                external_id=parent_uuid,
                reason="named as the parent of an OpenLineage run",
            )
        return parent

    def code_version(self, project: Project, event: dict):
        facet = (event["job"].get("facets") or {}).get("sourceCodeLocation")
        if not isinstance(facet, dict) or facet.get("_deleted"):
            return None
        commit = facet.get("version")
        if not isinstance(commit, str) or not _COMMIT.match(commit):
            raise IngestionError(
                "job.facets.sourceCodeLocation.version: must be the 40-character commit SHA "
                "of the code that ran"
            )
        repository = facet.get("repoUrl") or facet.get("url")
        if not isinstance(repository, str) or not repository:
            raise IngestionError("job.facets.sourceCodeLocation: 'url' is a required property")
        return services.register_code_version(
            project,
            actor=self.actor,
            repository_url=repository[:1000],
            commit_sha=commit.lower(),
            path=str(facet.get("path") or "")[:1000],
            branch=str(facet.get("branch") or "")[:255],
            reason="from an OpenLineage sourceCodeLocation facet",
        )

    @staticmethod
    def environment(event: dict) -> dict:
        engine = (event["run"].get("facets") or {}).get("processing_engine")
        if not isinstance(engine, dict):
            return {}
        return {k: v for k, v in engine.items() if not k.startswith("_")}

    def dataset_version(self, project: Project, ol_dataset: dict):
        namespace, name = ol_dataset["namespace"], ol_dataset["name"]
        facets = ol_dataset.get("facets") or {}
        schema = _schema(facets)
        version = (facets.get("version") or {}).get("datasetVersion")
        if version is not None:
            identity = f"{namespace}\n{name}\nversion\n{version}"
        else:
            identity = f"{namespace}\n{name}\nschema\n{json.dumps(schema, sort_keys=True)}"
        stats = (ol_dataset.get("outputFacets") or {}).get("outputStatistics") or {}
        row_count = stats.get("rowCount")
        key = (project.pk, dataset_name(namespace, name))
        dataset = self.datasets.get(key)
        if dataset is None:
            dataset = Dataset.objects.filter(project=project, name=key[1]).first()
            if dataset is None:
                dataset = registry_services.register_dataset(
                    project,
                    actor=self.actor,
                    name=key[1],
                    description=f"OpenLineage dataset {name} in {namespace}",
                )
            self.datasets[key] = dataset
        dataset_version, _ = registry_services.register_dataset_version(
            dataset,
            actor=self.actor,
            content_sha256=hashlib.sha256(identity.encode()).hexdigest(),
            uri=f"{namespace.rstrip('/')}/{name.lstrip('/')}"[:1000],
            row_count=row_count if isinstance(row_count, int) and row_count >= 0 else 0,
            schema=schema,
            # OpenLineage does not say what a data set is for; pipelines feed training.
            split=Split.TRAIN,
            reason="from an OpenLineage event",
        )
        return dataset_version


def _not_yet(dataset_versions, attached) -> list:
    if not dataset_versions:
        return []
    known = set(
        attached.filter(pk__in=[d.pk for d in dataset_versions]).values_list("pk", flat=True)
    )
    return [d for d in dataset_versions if d.pk not in known]


def ingest(events: list, *, actor) -> list[dict]:
    """Validate every event, then apply them all in one transaction (or none of them)."""
    if not events:
        raise IngestionError("no events were sent")
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise IngestionError(f"at most {MAX_EVENTS_PER_BATCH} events per request")
    errors = {}
    for index, event in enumerate(events):
        problems = validate(event)
        if problems:
            errors[str(index)] = problems
    if errors:
        raise IngestionError({"errors": errors})
    with transaction.atomic():
        ingestion = _Ingestion(actor)
        results = []
        for index, event in enumerate(events):
            try:
                results.append(ingestion.apply(event))
            except ValidationError as exc:
                raise IngestionError({"errors": {str(index): exc.messages}}) from None
            except IngestionError as exc:
                if isinstance(exc.detail, str):
                    exc.detail = {"errors": {str(index): [exc.detail]}}
                raise
        return results
