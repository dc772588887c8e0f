"""OpenLineage ingestion: RunEvents, as openlineage-python's HTTP transport posts them, become runs,
dataset versions, code versions and edges of the provenance graph.

Validation follows the OpenLineage specification's RunEvent (spec 2-0-2), written here from
the public spec rather than vendored: `eventTime` (an RFC 3339 date-time, with its offset),
`producer` and `schemaURL` (URIs), `run.runId` (a UUID in RFC 4122's 8-4-4-4-12 form),
`job.namespace` and `job.name` (strings) are required; `eventType`, when given, is START,
RUNNING, COMPLETE, ABORT, FAIL or OTHER; `inputs` and `outputs` are lists of datasets with
`namespace` and `name`; every facet container (`run.facets`, `job.facets`, a dataset's `facets`,
`inputFacets`, `outputFacets`) is an object, and every facet an object carrying `_producer` and
`_schemaURL` URIs (or `_deleted: true`); of the facets Stagegate reads, `parent` names a run
UUID and a job, `sourceCodeLocation` has a `type` and a `url` (strings), `version` a
`datasetVersion` string, `schema` an array of `fields` with a `name` (and a `type`, a string,
when given), and `outputStatistics` a `rowCount` integer when given. Beyond the spec, what the
databases cannot store is refused too, wherever it is in the event: NUL characters and unpaired
surrogates in any string or key, numbers that are not finite, nesting deeper than
`MAX_NESTING`, and an `eventTime` outside `lineage.time_range`.

How an event maps onto Stagegate:
- the job's **namespace is a project key**: the poster must be able to view that project (404
  otherwise, as for anything invisible) and contribute to it (403);
- the **run** is the Run whose `external_id` is the runId, created on its first event with the
  job's name; START and RUNNING mark it running, COMPLETE completed, FAIL failed, ABORT aborted;
  the `parent` run facet names its parent run (created as a stub if it has not reported yet);
  the job's `sourceCodeLocation` facet is its code when its `version` is a commit SHA (any other
  version string is accepted, but only a commit pins the code: no code version is recorded,
  the run's lineage stays incomplete, and the event's answer carries a warning saying so);
  a runId is one run of one project: naming another project's run is refused;
- each input and output **dataset** is a Dataset of the job's project named from the dataset's
  namespace and name (see `dataset_name`). Which **version** of it (after Marquez):
  - a dataset with the `version` facet names its version by `datasetVersion`, input or output;
  - an output without it is the version its run writes: one per (dataset, run), so that three
    runs rewriting a table make three versions, and START and COMPLETE of one run one;
  - an input without it is the version of that dataset the run already reads, if any; else the
    latest version, or when the run has already written the dataset, the version before its
    first write (a run reading and writing `orders` reads v_n and writes v_n+1); else, when
    there is none, a first version, as first seen.
  A version's `content_sha256` is the SHA-256 of that identity: namespace, name and
  `datasetVersion`; namespace, name and runId; or, for a first version read, namespace, name
  and schema. It is created by the first event naming it, with the `schema` facet as its
  schema and `outputStatistics.rowCount` as its row count; later events do not change it.
  Version facets can still describe a true cycle (a run reading the version it writes, or two
  runs each reading what the other writes): that is refused;
- events are **idempotent** by (runId, eventType, eventTime): a repeated event is acknowledged and
  not applied again;
- a request is **one transaction**: an invalid event, an edge that would close a cycle, or a
  namespace the poster may not write to leaves nothing behind, and the answer names the index
  of the event refused.

The events are validated and read here (`validate`, `parse`); `lineage.ingestion` applies
them as one set-based batch, with the same records, history and audit events as the
one-at-a-time actions and a number of queries that does not grow with the batch.
"""

import hashlib
import json
import math
import re
import uuid
from datetime import datetime
from urllib.parse import urlsplit

from django.db import DatabaseError, IntegrityError, transaction

from lineage import time_range
from lineage.ingestion import Batch, DatasetRef, IngestionError, ParsedEvent, refuse

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
MAX_EVENTS_PER_BATCH = 1000
CONFLICT_RETRIES = 3
_COMMIT = re.compile(r"[0-9a-fA-F]{40}\Z")
# The spec's `format: uuid` is RFC 4122's string form; `uuid.UUID` alone would also take bare hex,
# braces and a `urn:uuid:` prefix.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# RFC 3339's date-time (section 5.6): `datetime.fromisoformat` alone would also take ISO 8601's
# compact and week forms, a space for the T, and offsets without a colon. (ASCII digits only,
# and `\Z`: `\d` matches any script's digits, and `$` a final newline.)
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
_NOT_NAME = re.compile(r"[^a-z0-9]+")
# What no column holds: PostgreSQL refuses NUL in text and in JSONB, and an unpaired surrogate
# (which a JSON \u escape can spell) has no UTF-8 form. json.loads pairs the surrogates that
# make a character, so any left in a string are unpaired.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The JSON encoders that store and hash a payload recurse once per level, within Python's stack.
MAX_NESTING = 100
MAX_UNSTORABLE_ERRORS = 10
MAX_ROW_COUNT = 2**63 - 1  # a PositiveBigIntegerField


# --- validation (the specification's rules) ---------------------------------------------------


def _is_uri(value) -> bool:
    try:
        return isinstance(value, str) and bool(urlsplit(value).scheme)
    except ValueError:  # e.g. an unclosed IPv6 bracket, "http://[x"
        return False


def _is_uuid(value) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def parse_time(value) -> datetime | None:
    """An RFC 3339 date-time with an offset, or None."""
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        return None
    try:
        # fromisoformat wants the T and Z uppercase; it refuses a leap second (:60), and so do we.
        return datetime.fromisoformat(value.upper())
    except ValueError:
        return None


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


def _member(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _UNSTORABLE.search(key):
        key = json.dumps(key)  # escaped: the answer must not carry what it refuses
    return f"{path}.{key}" if path else key


def _unstorable(text: str) -> str:
    return "NUL characters" if "\x00" in text else "unpaired surrogates (not Unicode text)"


def _check_storable(container, path: str, level: int, errors: list[str]) -> None:
    """The strings, keys, numbers and nesting of a JSON container (at `level`, the event being
    1) that no database stores, found in one walk. A string's path is made only for an error."""
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in items:
        if isinstance(key, str) and _UNSTORABLE.search(key):
            errors.append(
                f"{path or 'event'}: the key {json.dumps(key)[:80]} must not contain "
                f"{_unstorable(key)}"
            )
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                errors.append(f"{_member(path, key)}: must not contain {_unstorable(value)}")
        elif isinstance(value, (dict, list)):
            if level == MAX_NESTING:
                errors.append(f"{_member(path, key)}: nested more than {MAX_NESTING} levels deep")
            else:
                _check_storable(value, _member(path, key), level + 1, errors)
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{_member(path, key)}: must be a finite number")
        if len(errors) > MAX_UNSTORABLE_ERRORS:
            return


def validate(event) -> list[str]:
    """The specification errors of one RunEvent, and what in it no database stores (empty
    when it is valid)."""
    if not isinstance(event, dict):
        return ["event: must be a JSON object"]
    errors: list[str] = []
    _check_storable(event, "", 1, errors)
    if errors:
        # Alone: the other messages name keys as they are, which the answer cannot carry.
        if len(errors) > MAX_UNSTORABLE_ERRORS:
            errors[MAX_UNSTORABLE_ERRORS:] = ["(further errors of this kind are not listed)"]
        return errors
    if "run" not in event and ("dataset" in event or "job" in event):
        return ["only RunEvents are accepted (this event has no 'run')"]
    for key in ("eventTime", "producer", "schemaURL", "run", "job"):
        if key not in event:
            errors.append(f"'{key}' is a required property")
    if "eventTime" in event:
        event_time = parse_time(event["eventTime"])
        if event_time is None:
            errors.append("eventTime: must be an RFC 3339 date-time with a time zone offset")
        elif not time_range.storable(event_time):
            errors.append(f"eventTime: must be {time_range.RANGE}")
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
            facets = run.get("facets")
            _check_facets(facets, "run.facets", errors)
            parent = facets.get("parent") if isinstance(facets, dict) else None
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
            if isinstance(job.get("facets"), dict):
                _check_source_code_location(job["facets"], errors)
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
            if isinstance(dataset.get("facets"), dict):
                _check_dataset_facets(dataset["facets"], f"{where}.facets", errors)
            if side == "outputs" and isinstance(dataset.get(extra), dict):
                _check_output_statistics(dataset[extra], f"{where}.{extra}", errors)
    return errors


def _live_facet(facets: dict, name: str) -> dict | None:
    """The facet of that name, unless it is absent, not an object, or deleted."""
    facet = facets.get(name)
    return facet if isinstance(facet, dict) and not facet.get("_deleted") else None


def _check_source_code_location(facets: dict, errors: list[str]) -> None:
    """The spec's required `type` and `url` (openlineage-python always sends both)."""
    facet = _live_facet(facets, "sourceCodeLocation")
    if facet is None:
        return
    where = "job.facets.sourceCodeLocation"
    if "type" not in facet:
        errors.append(f"{where}: 'type' is a required property")
    elif not isinstance(facet["type"], str):
        errors.append(f"{where}.type: must be a string")
    _check_string(facet, "url", where, errors)


def _check_output_statistics(facets: dict, where: str, errors: list[str]) -> None:
    facet = _live_facet(facets, "outputStatistics")
    if facet is None or "rowCount" not in facet:
        return
    row_count = facet["rowCount"]
    if not isinstance(row_count, int) or isinstance(row_count, bool):
        errors.append(f"{where}.outputStatistics.rowCount: must be an integer")
    elif row_count > MAX_ROW_COUNT:
        errors.append(f"{where}.outputStatistics.rowCount: must be at most {MAX_ROW_COUNT}")


def _check_dataset_facets(facets: dict, where: str, errors: list[str]) -> None:
    """The two dataset facets Stagegate reads: the version that names a dataset version, and
    the schema it records."""
    version = _live_facet(facets, "version")
    if version is not None:
        if "datasetVersion" not in version:
            errors.append(f"{where}.version: 'datasetVersion' is a required property")
        elif not isinstance(version["datasetVersion"], str):
            errors.append(f"{where}.version.datasetVersion: must be a string")
    schema = _live_facet(facets, "schema")
    if schema is not None and "fields" in schema:
        fields = schema["fields"]
        if not isinstance(fields, list):
            errors.append(f"{where}.schema.fields: must be an array")
            return
        for index, column in enumerate(fields):
            if not isinstance(column, dict) or not isinstance(column.get("name"), str):
                errors.append(f"{where}.schema.fields[{index}]: must be an object with a 'name'")
            elif "type" in column and not isinstance(column["type"], str):
                errors.append(f"{where}.schema.fields[{index}].type: must be a string")


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


def _code(event: dict, warnings: list[str]) -> dict | None:
    facet = _live_facet(event["job"].get("facets") or {}, "sourceCodeLocation")
    if facet is None:
        return None
    # The repository, if given, else the file's URL (validate() made sure of that one).
    repository = facet.get("repoUrl")
    if not isinstance(repository, str) or not repository:
        repository = facet["url"]
    commit = facet.get("version")
    if not isinstance(commit, str) or not _COMMIT.match(commit):
        # The spec allows any version string (a tag, an SVN revision); only a commit SHA pins
        # the code, so the run keeps no code version and its lineage stays incomplete.
        warnings.append(
            "job.facets.sourceCodeLocation.version is not a commit SHA; no code version recorded"
        )
        return None
    return {
        "repository_url": repository[:1000],
        "commit_sha": commit.lower(),
        "path": str(facet.get("path") or "")[:1000],
        "branch": str(facet.get("branch") or "")[:255],
    }


def _parent(event: dict) -> tuple[uuid.UUID, str, str] | None:
    facet = (event["run"].get("facets") or {}).get("parent")
    if not isinstance(facet, dict) or facet.get("_deleted"):
        return None
    parent_uuid = uuid.UUID(facet["run"]["runId"])
    if parent_uuid == uuid.UUID(event["run"]["runId"]):
        raise IngestionError("run.facets.parent: a run cannot be its own parent (a cycle)")
    return parent_uuid, facet["job"]["namespace"], facet["job"]["name"]


def _environment(event: dict) -> dict:
    engine = (event["run"].get("facets") or {}).get("processing_engine")
    if not isinstance(engine, dict):
        return {}
    return {k: v for k, v in engine.items() if not k.startswith("_")}


def _dataset(ol_dataset: dict, run_id: uuid.UUID, *, output: bool) -> DatasetRef:
    namespace, name = ol_dataset["namespace"], ol_dataset["name"]
    facets = ol_dataset.get("facets") or {}
    schema = _schema(facets)
    version_facet = facets.get("version")
    latest = False
    if isinstance(version_facet, dict) and not version_facet.get("_deleted"):
        identity = f"{namespace}\n{name}\nversion\n{version_facet['datasetVersion']}"
    elif output:
        identity = f"{namespace}\n{name}\nrun\n{run_id}"
    else:
        latest = True
        identity = f"{namespace}\n{name}\nschema\n{json.dumps(schema, sort_keys=True)}"
    stats = (ol_dataset.get("outputFacets") or {}).get("outputStatistics") or {}
    row_count = stats.get("rowCount")
    return DatasetRef(
        name=dataset_name(namespace, name),
        description=f"OpenLineage dataset {name} in {namespace}",
        content_sha256=hashlib.sha256(identity.encode()).hexdigest(),
        uri=f"{namespace.rstrip('/')}/{name.lstrip('/')}"[:1000],
        row_count=row_count if isinstance(row_count, int) and row_count >= 0 else 0,
        schema=schema,
        latest=latest,
    )


def parse(event: dict, index: int) -> ParsedEvent:
    """What a valid event says, in Stagegate's terms (IngestionError for facets we need
    more of than the specification asks)."""
    event_time = parse_time(event["eventTime"])
    assert event_time is not None  # validate() refuses an event without a valid eventTime
    run_uuid = uuid.UUID(event["run"]["runId"])
    warnings: list[str] = []
    try:
        return ParsedEvent(
            index=index,
            payload=event,
            run_uuid=run_uuid,
            event_type=event.get("eventType", "OTHER"),
            event_time=event_time,
            namespace=event["job"]["namespace"],
            job_name=event["job"]["name"],
            parent=_parent(event),
            code=_code(event, warnings),
            environment=_environment(event),
            inputs=[_dataset(d, run_uuid, output=False) for d in event.get("inputs", [])],
            outputs=[_dataset(d, run_uuid, output=True) for d in event.get("outputs", [])],
            warnings=warnings,
        )
    except IngestionError as exc:
        raise refuse(index, exc.detail) from None


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
    parsed = [parse(event, index) for index, event in enumerate(events)]
    for attempt in range(1, CONFLICT_RETRIES + 1):
        try:
            with transaction.atomic():
                return Batch(actor, parsed).apply()
        except DatabaseError as exc:
            # Another request created one of the same records (a data set, a run, the same
            # event) between our look-ups and our inserts, or the two waited on each other:
            # run the batch again, now seeing its rows.
            if attempt == CONFLICT_RETRIES or not _is_conflict(exc):
                raise
    raise AssertionError("unreachable")


def _is_conflict(exc: Exception) -> bool:
    # unique_violation, deadlock_detected, serialization_failure (PostgreSQL's SQLSTATEs)
    return isinstance(exc, IntegrityError) or getattr(exc.__cause__, "sqlstate", None) in {
        "40P01",
        "40001",
    }
