"""Keeps the provenance graph in step with the records, written by the actions that create them.

Nodes and edges are only ever added. An edge that would close a cycle is refused: provenance
is a directed acyclic graph (a result cannot have been among its own causes).
"""

from django.core.exceptions import ValidationError
from django.db import connection

from lineage import node_ids
from lineage.choices import EdgeKind, NodeKind
from lineage.models import Edge, Node

_KIND_OF_MODEL = {
    "registry.datasetversion": NodeKind.DATASET_VERSION,
    "registry.modelversion": NodeKind.MODEL_VERSION,
    "registry.evaluation": NodeKind.EVALUATION,
    "lineage.run": NodeKind.RUN,
    "lineage.codeversion": NodeKind.CODE_VERSION,
}


def node_kind(record) -> str:
    """The node kind that represents a record of this model."""
    label = record._meta.label_lower
    try:
        return _KIND_OF_MODEL[label]
    except KeyError:
        raise ValueError(f"{label} records are not lineage nodes") from None


def register_node_kind(model_label: str, kind: str) -> None:
    """Lets another app (governance) declare which of its records are lineage nodes."""
    _KIND_OF_MODEL[model_label.lower()] = kind


def add_node(record, *, project, label: str | None = None) -> Node:
    """The node of `record`, created on first use."""
    kind = node_kind(record)
    node, _ = Node.objects.get_or_create(
        kind=kind,
        object_id=record.pk,
        defaults={
            "project": project,
            "label": (label or str(record))[:500],
            "ref": node_ids.ref_for(kind, record, project),
        },
    )
    # Nodes never change: the record keeps its node so that linking it costs no lookup.
    record._lineage_node = node
    return node


def node_of(record) -> Node:
    """The node of a record (remembered on the record instance once looked up)."""
    node = getattr(record, "_lineage_node", None)
    if node is None or node.object_id != record.pk:
        node = Node.objects.get(kind=node_kind(record), object_id=record.pk)
        record._lineage_node = node
    return node


def reaches(src: Node, dst: Node) -> bool:
    """Whether a path src → … → dst already exists (one recursive query)."""
    sql = f"""
        WITH RECURSIVE reach(id) AS (
            SELECT CAST(%s AS BIGINT)
            UNION
            SELECT e.dst_id FROM {Edge._meta.db_table} e JOIN reach r ON e.src_id = r.id
        )
        SELECT 1 FROM reach WHERE id = %s LIMIT 1
    """  # noqa: S608 - the table name is ours, the values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [src.pk, dst.pk])
        return cursor.fetchone() is not None


def link(cause, effect, kind: str = EdgeKind.USED) -> Edge:
    """Add the edge cause → effect between two records' nodes, refusing cycles."""
    src, dst = node_of(cause), node_of(effect)
    if src.pk == dst.pk or reaches(dst, src):
        raise ValidationError(
            f"lineage would contain a cycle: {cause} is already downstream of {effect}"
        )
    edge, _ = Edge.objects.get_or_create(
        src=src,
        dst=dst,
        kind=kind,
        defaults={"src_project_id": src.project_id, "dst_project_id": dst.project_id},
    )
    return edge
