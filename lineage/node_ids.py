"""Public node ids of the provenance graph, in the form Marquez clients read and write.

Marquez names nodes `dataset:<namespace>:<name>`, `job:<namespace>:<name>` and `run:<id>`, with
a version after `#`. Stagegate's namespace is the project key (a project is the unit of rights,
and names are unique only inside a project), and its graph is version-level, so the ids it
stores and returns are:

- `dataset:<project>:<dataset name>#<version number>` — one dataset version;
- `model:<project>:<model name>#<version number>` — one model version;
- `run:<id>` — one run; `code:<id>`, `evaluation:<id>`, and `<kind>:<id>` for the other kinds.

Stored ids never change. As a start node, these are accepted as well:

- `dataset:<project>:<dataset name>` (no version) — its latest version;
- `model:<model name>:<version number>` — when that model name is unique among the projects
  the user can see;
- `run:<OpenLineage runId>` — the run with that OpenLineage UUID;
- `job:<project>:<job name>` — the latest run of the job (a run's job name is `Run.name`, the
  OpenLineage job name for runs that arrived as events). The job name is everything after the
  second colon up to an optional `#`: OpenLineage job names hold dots, underscores and more
  (`daily_features`, `etl.orders.load`). `job:<project>:<job name>#<run id or runId>` is
  that run of the job (Marquez puts a job's version after `#`); a run of another job is not
  found;
- `dataset:<OpenLineage namespace>:<OpenLineage name>[#<version number>]`, e.g.
  `dataset:postgres://db:5432:shop.public.orders` or `dataset:s3://bucket:path/file` — the
  dataset an OpenLineage event named, which Stagegate records in the job's project under
  `lineage.openlineage.dataset_name(namespace, name)`: its latest version (or that version)
  in every project the user can see. The id is split as Marquez splits it: at the colons
  not followed by `//` or a digit, so the colons of `scheme://host:port` stay in the
  namespace. An id of Stagegate's own dataset form is read as Stagegate's first, and as an
  OpenLineage dataset only when it names no dataset version.
"""

import re
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from lineage.choices import NodeKind

NODE_TYPES: dict[str, str] = {
    NodeKind.DATASET_VERSION: "DATASET",
    NodeKind.MODEL_VERSION: "MODEL",
    NodeKind.RUN: "RUN",
    NodeKind.CODE_VERSION: "CODE",
}

MAX_LENGTH = 600
MAX_JOB_NAME = 300  # Run.name's length
_PREFIX: dict[str, str] = {NodeKind.CODE_VERSION: "code"}
_KEY = r"[a-z0-9][a-z0-9-]{1,62}"  # a project key, a dataset's or a model's name
_VERSION = r"[1-9][0-9]{0,9}"
# Matched from the start (re.match) to `\Z`: `$` would also match before a final newline.
_STAGEGATE = re.compile(rf"(dataset|model):({_KEY}):({_KEY})(?:#({_VERSION}))?\Z")
_SHORT_MODEL = re.compile(rf"model:({_KEY}):({_VERSION})\Z")
_BY_ID = re.compile(r"([a-z_]+):([0-9]{1,18}|[0-9a-fA-F-]{36})\Z")
_PROJECT_KEY = re.compile(rf"{_KEY}\Z")
_RUN_NUMBER = re.compile(r"[1-9][0-9]{0,17}\Z")
_VERSION_NUMBER = re.compile(rf"{_VERSION}\Z")
# No stored name holds them (see lineage.openlineage), and the databases refuse them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Marquez's NodeId.parts: a colon that is not the one of `scheme://` or of `host:port`.
_MARQUEZ_DELIMITER = re.compile(r":(?!//|\d)")


class MalformedNodeId(ValueError):
    """The text is not a node id of any form above."""


class JobId(NamedTuple):
    """A job (a project and a run name) and, optionally, one of its runs."""

    project: str
    name: str
    run_id: int | None = None
    run_uuid: uuid.UUID | None = None


class OpenLineageDatasetId(NamedTuple):
    """An OpenLineage dataset's namespace and name, and optionally a version number."""

    namespace: str
    name: str
    version: int | None = None


@dataclass(frozen=True)
class ParsedNodeId:
    """What a node id names. Exactly one way of finding the node is filled in; a dataset id
    may also fill in `openlineage_dataset`: what it names read as an OpenLineage dataset,
    tried when the first way finds nothing (alone, when it can only be read that way)."""

    ref: str | None = None  # an exact stored ref
    latest_dataset: tuple[str, str] | None = None  # (project key, dataset name)
    job: JobId | None = None
    model_short: tuple[str, int] | None = None  # (model name, version)
    run_uuid: uuid.UUID | None = None
    openlineage_dataset: OpenLineageDatasetId | None = None


def node_type(kind: str) -> str:
    """The Marquez-style `type` of a node kind (DATASET, MODEL, RUN, CODE, EVALUATION...)."""
    return NODE_TYPES.get(kind, kind.upper())


def ref_for(kind: str, record, project) -> str:
    """The public id a new node of `record` is stored with."""
    if kind == NodeKind.DATASET_VERSION:
        return f"dataset:{project.key}:{record.dataset.name}#{record.version}"
    if kind == NodeKind.MODEL_VERSION:
        return f"model:{project.key}:{record.registered_model.name}#{record.version}"
    return f"{_PREFIX.get(kind, kind)}:{record.pk}"


def parse(text: str) -> ParsedNodeId:
    """Parse a node id; MalformedNodeId says what is wrong."""
    if not isinstance(text, str) or not text or len(text) > MAX_LENGTH:
        raise MalformedNodeId(
            f"nodeId is required (at most {MAX_LENGTH} characters), "
            "e.g. dataset:<project>:<name>#<version>"
        )
    if _UNSTORABLE.search(text):
        raise MalformedNodeId(
            "nodeId must not contain NUL characters or unpaired surrogates (not Unicode text)"
        )
    stagegate = _STAGEGATE.match(text)
    if stagegate:
        prefix, namespace, name, version = stagegate.groups()
        if prefix == "dataset":
            also = OpenLineageDatasetId(namespace, name, int(version) if version else None)
            if version is not None:
                return ParsedNodeId(ref=text, openlineage_dataset=also)
            return ParsedNodeId(latest_dataset=(namespace, name), openlineage_dataset=also)
        if version is not None:
            return ParsedNodeId(ref=text)
    if text.startswith("job:"):
        return ParsedNodeId(job=_job(text))
    if text.startswith("dataset:"):
        return ParsedNodeId(openlineage_dataset=_openlineage_dataset(text))
    short = _SHORT_MODEL.match(text)
    if short:
        return ParsedNodeId(model_short=(short.group(1), int(short.group(2))))
    by_id = _BY_ID.match(text)
    if by_id:
        prefix, value = by_id.groups()
        if prefix == "run" and "-" in value:
            return ParsedNodeId(run_uuid=_uuid(value))
        known = {_PREFIX.get(kind, kind) for kind in NodeKind.values}
        if prefix in known and value.isdigit():
            return ParsedNodeId(ref=f"{prefix}:{int(value)}")
    raise MalformedNodeId(
        f"{text!r} is not a node id: use dataset:<project>:<name>[#<version>], "
        "dataset:<OpenLineage namespace>:<name>, model:<project>:<name>#<version>, "
        "job:<project>:<job name>[#<run>], run:<id or runId>, code:<id> or evaluation:<id>"
    )


def _job(text: str) -> JobId:
    """`job:<project>:<job name>[#<run id or OpenLineage runId>]`."""
    project, colon, rest = text.removeprefix("job:").partition(":")
    name, hash_sign, run = rest.partition("#")
    if not colon or not name:
        raise MalformedNodeId("a job id is job:<project>:<job name>[#<run id or runId>]")
    if not _PROJECT_KEY.match(project):
        raise MalformedNodeId(
            f"{project!r} is not a project key: a job's namespace is the key of its project"
        )
    if len(name) > MAX_JOB_NAME:
        raise MalformedNodeId(f"a job name has at most {MAX_JOB_NAME} characters")
    if not hash_sign:
        return JobId(project, name)
    if _RUN_NUMBER.match(run):
        return JobId(project, name, run_id=int(run))
    return JobId(project, name, run_uuid=_uuid(run))


def _openlineage_dataset(text: str) -> OpenLineageDatasetId:
    """`dataset:<namespace>:<name>[#<version number>]`, split as Marquez splits it."""
    rest, hash_sign, version = text.removeprefix("dataset:").partition("#")
    parts = rest.split(":")
    if len(parts) != 2:
        delimiter = _MARQUEZ_DELIMITER.search(rest)
        parts = [rest[: delimiter.start()], rest[delimiter.end() :]] if delimiter else []
    if len(parts) != 2 or not all(parts):
        raise MalformedNodeId(
            "a dataset id is dataset:<project>:<name>[#<version>] or "
            "dataset:<OpenLineage namespace>:<name>[#<version>]"
        )
    if not hash_sign:
        return OpenLineageDatasetId(parts[0], parts[1])
    if not _VERSION_NUMBER.match(version):
        raise MalformedNodeId(f"the version after # is a version number, not {version!r}")
    return OpenLineageDatasetId(parts[0], parts[1], int(version))


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise MalformedNodeId(f"{value!r} is not a run id or an OpenLineage runId") from None
