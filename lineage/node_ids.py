"""Public node ids of the provenance graph, in the form Marquez clients read.

Marquez names nodes `dataset:<namespace>:<name>`, `job:<namespace>:<name>` and `run:<id>`, with
a version after `#`. Stagegate's namespace is the project key (a project is the unit of rights,
and names are unique only inside a project), and its graph is version-level, so:

- `dataset:<project>:<dataset name>#<version number>` — one dataset version;
  `dataset:<project>:<dataset name>` (no version) means its latest version;
- `model:<project>:<model name>#<version number>` — one model version; the short form
  `model:<model name>:<version number>` is accepted when that name is unique among the
  projects the user can see;
- `run:<id>` — one run (its OpenLineage UUID is accepted in place of the id);
  `job:<project>:<job name>` means the latest run of that job;
- `code:<id>`, `evaluation:<id>`, and `<kind>:<id>` for the other kinds of nodes.
"""

import re
import uuid
from dataclasses import dataclass

from lineage.choices import NodeKind

NODE_TYPES: dict[str, str] = {
    NodeKind.DATASET_VERSION: "DATASET",
    NodeKind.MODEL_VERSION: "MODEL",
    NodeKind.RUN: "RUN",
    NodeKind.CODE_VERSION: "CODE",
}

_PREFIX: dict[str, str] = {NodeKind.CODE_VERSION: "code"}
_NAME = r"[a-z0-9][a-z0-9-]{1,62}"
_NAMED = re.compile(rf"^(dataset|model|job):({_NAME}):({_NAME})(?:#([1-9][0-9]{{0,9}}))?$")
_SHORT_MODEL = re.compile(rf"^model:({_NAME}):([1-9][0-9]{{0,9}})$")
_BY_ID = re.compile(r"^([a-z_]+):([0-9]{1,18}|[0-9a-fA-F-]{36})$")


class MalformedNodeId(ValueError):
    """The text is not a node id of any form above."""


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


@dataclass(frozen=True)
class ParsedNodeId:
    """What a node id names. Exactly one way of finding the node is filled in."""

    ref: str | None = None  # an exact stored ref
    latest_dataset: tuple[str, str] | None = None  # (project key, dataset name)
    latest_job: tuple[str, str] | None = None  # (project key, job name)
    model_short: tuple[str, int] | None = None  # (model name, version)
    run_uuid: uuid.UUID | None = None


def parse(text: str) -> ParsedNodeId:
    """Parse a node id; MalformedNodeId says what is wrong."""
    if not isinstance(text, str) or not text or len(text) > 600:
        raise MalformedNodeId("nodeId is required, e.g. dataset:<project>:<name>#<version>")
    named = _NAMED.match(text)
    if named:
        prefix, namespace, name, version = named.groups()
        if version is not None:
            if prefix == "job":
                raise MalformedNodeId("job ids have no version; use run:<id> for one run")
            return ParsedNodeId(ref=text)
        if prefix == "dataset":
            return ParsedNodeId(latest_dataset=(namespace, name))
        if prefix == "job":
            return ParsedNodeId(latest_job=(namespace, name))
    short = _SHORT_MODEL.match(text)
    if short:
        return ParsedNodeId(model_short=(short.group(1), int(short.group(2))))
    by_id = _BY_ID.match(text)
    if by_id:
        prefix, value = by_id.groups()
        if prefix == "run" and "-" in value:
            try:
                return ParsedNodeId(run_uuid=uuid.UUID(value))
            except ValueError:
                raise MalformedNodeId(f"{value!r} is not a run id or UUID") from None
        known = {_PREFIX.get(kind, kind) for kind in NodeKind.values}
        if prefix in known and value.isdigit():
            return ParsedNodeId(ref=f"{prefix}:{int(value)}")
    raise MalformedNodeId(
        f"{text!r} is not a node id: use dataset:<project>:<name>[#<version>], "
        "model:<project>:<name>#<version>, job:<project>:<name>, run:<id>, code:<id> "
        "or evaluation:<id>"
    )
