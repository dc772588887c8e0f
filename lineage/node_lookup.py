"""Finds the start nodes a public node id names (see lineage.node_ids for its forms), among the
nodes of the projects a user may view, as the graph was at a time when one is given."""

from datetime import datetime
from typing import TypeVar

from django.db.models import OuterRef, QuerySet, Subquery

from lineage import node_ids
from lineage.choices import NodeKind
from lineage.models import Node, Run
from lineage.openlineage import dataset_name
from registry.models import DatasetVersion, ModelVersion

_Records = TypeVar("_Records", bound=QuerySet)


class NodeNotFound(LookupError):
    """No node the user may see has that id (or had it at the time asked for)."""


def start_nodes(text: str, projects, *, as_of: datetime | None = None) -> list[Node]:
    """The nodes `text` names among the projects' nodes (None: every project's), created at
    or before `as_of` when given ("latest" then means the latest at that time).

    Several only for an OpenLineage dataset recorded in several projects. Raises
    MalformedNodeId (a 400) or NodeNotFound (a 404, the same for a node of a project the user
    cannot see as for a missing one).
    """
    parsed = node_ids.parse(text)
    nodes = Node.objects.all()
    if projects is not None:
        nodes = nodes.filter(project_id__in=projects)
    if as_of is not None:
        nodes = nodes.filter(created_at__lte=as_of)
    found = _named(parsed, nodes, as_of)
    if not found and parsed.openlineage_dataset is not None:
        found = _openlineage_dataset(parsed.openlineage_dataset, nodes, projects, as_of)
    if not found:
        when = f" at {as_of.isoformat()}" if as_of is not None else ""
        raise NodeNotFound(f"No lineage node {text!r}{when} (or it is not visible to you).")
    return found


def _named(parsed: node_ids.ParsedNodeId, nodes: QuerySet, as_of) -> list[Node]:
    """The node found by the id's Stagegate reading (none for an OpenLineage-only id)."""
    if parsed.ref is not None:
        return list(nodes.filter(ref=parsed.ref)[:1])
    if parsed.run_uuid is not None:
        runs = Run.objects.filter(external_id=parsed.run_uuid)
        return list(nodes.filter(kind=NodeKind.RUN, object_id__in=runs.values("pk"))[:1])
    if parsed.latest_dataset is not None:
        project_key, name = parsed.latest_dataset
        versions = _until(
            DatasetVersion.objects.filter(dataset__project__key=project_key, dataset__name=name),
            as_of,
        )
        latest = versions.order_by("-version").values("pk")[:1]
        return list(nodes.filter(kind=NodeKind.DATASET_VERSION, object_id__in=latest)[:1])
    if parsed.job is not None:
        job = parsed.job
        runs = Run.objects.filter(project__key=job.project, name=job.name)
        if job.run_id is not None:
            runs = runs.filter(pk=job.run_id)
        elif job.run_uuid is not None:
            runs = runs.filter(external_id=job.run_uuid)
        else:
            runs = _until(runs, as_of).order_by("-id")
        return list(nodes.filter(kind=NodeKind.RUN, object_id__in=runs.values("pk")[:1])[:1])
    if parsed.model_short is not None:
        name, version = parsed.model_short
        found = list(
            nodes.filter(
                kind=NodeKind.MODEL_VERSION,
                object_id__in=ModelVersion.objects.filter(
                    registered_model__name=name, version=version
                ).values("pk"),
            )[:2]
        )
        if len(found) > 1:
            raise node_ids.MalformedNodeId(
                f"model {name!r} exists in several projects; use model:<project>:<name>#<version>"
            )
        return found
    return []


def _openlineage_dataset(
    dataset: node_ids.OpenLineageDatasetId, nodes: QuerySet, projects, as_of
) -> list[Node]:
    """The latest version (or the version asked for) of the dataset an OpenLineage event
    named, in each project it was recorded in (lineage.openlineage names it so)."""
    versions = DatasetVersion.objects.filter(
        dataset__name=dataset_name(dataset.namespace, dataset.name)
    )
    if projects is not None:
        versions = versions.filter(dataset__project_id__in=projects)
    versions = _until(versions, as_of)
    if dataset.version is not None:
        versions = versions.filter(version=dataset.version)
    else:
        newest = _until(DatasetVersion.objects.filter(dataset=OuterRef("dataset")), as_of)
        versions = versions.filter(
            version=Subquery(newest.order_by("-version").values("version")[:1])
        )
    return list(
        nodes.filter(kind=NodeKind.DATASET_VERSION, object_id__in=versions.values("pk")).order_by(
            "id"
        )
    )


def _until(records: _Records, as_of) -> _Records:
    """The records created at or before `as_of` (all of them without it)."""
    return records if as_of is None else records.filter(created_at__lte=as_of)
