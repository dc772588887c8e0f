"""Keeps the provenance graph in step with the records, written by the actions that create them.

Nodes and edges are only ever added. An edge that would close a cycle is refused: provenance
is a directed acyclic graph (a result cannot have been among its own causes).

Two transactions that each add half of a cycle would each find none, neither seeing the
other's edge before it commits. So on PostgreSQL every check that needs the graph takes one
transaction-scoped advisory lock first (`serialize_cycle_checks`): the second waits for the
first to commit and then sees its edges. (SQLite lets one transaction write at a time.) Most
edges need no check at all: an edge into a node made in the same transaction, which has no
out-edge yet, cannot close a cycle.
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from lineage import node_ids
from lineage.choices import EdgeKind, NodeKind
from lineage.models import Edge, Node

_KIND_OF_MODEL: dict[str, str] = {
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


def new_node(record, *, project, label: str | None = None) -> Node:
    """The (unsaved) node of a record that has none yet, for inserting many at once."""
    kind = node_kind(record)
    return Node(
        kind=kind,
        object_id=record.pk,
        project=project,
        label=(label or str(record))[:500],
        ref=node_ids.ref_for(kind, record, project),
    )


def add_node(record, *, project, label: str | None = None) -> Node:
    """The node of a record the action has just created (one insert: a new record has no node
    yet, and the unique (kind, object_id) constraint refuses a second one loudly)."""
    node = new_node(record, project=project, label=label)
    node.save()
    # Nodes never change: the record keeps its node so that linking it costs no lookup.
    record._lineage_node = node
    # Until this transaction commits nobody else can link from it, and `link` sees every
    # edge it adds from it here: an edge into it cannot close a cycle while it has none.
    node._without_out_edges = True
    transaction.on_commit(lambda: setattr(node, "_without_out_edges", False))
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


# The advisory lock's key: any fixed 64-bit number, Stagegate's alone in the database.
GRAPH_LOCK_KEY = 0x5354_4147_4547_4154 % (2**63)


def serialize_cycle_checks() -> None:
    """On PostgreSQL, wait for any other transaction checking the graph for cycles to end;
    held until this transaction ends (see the module's docstring)."""
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [GRAPH_LOCK_KEY])


def link(cause, effect, kind: str = EdgeKind.USED) -> Edge:
    """Add the edge cause → effect between two records' nodes, refusing cycles."""
    src, dst = node_of(cause), node_of(effect)
    if src.pk == dst.pk:
        raise ValidationError(f"lineage would contain a cycle: {cause} would be its own cause")
    # The lock, the check and the insert in one transaction (the caller's, if it has one);
    # the refusal is raised outside it, so a caller's transaction stays usable.
    with transaction.atomic(savepoint=False):
        closes_a_cycle = not dst._without_out_edges and _checked_reach(dst, src)
        if not closes_a_cycle:
            src._without_out_edges = False
            edge, _ = Edge.objects.get_or_create(
                src=src,
                dst=dst,
                kind=kind,
                defaults={"src_project_id": src.project_id, "dst_project_id": dst.project_id},
            )
    if closes_a_cycle:
        raise ValidationError(
            f"lineage would contain a cycle: {cause} is already downstream of {effect}"
        )
    return edge


def _checked_reach(src: Node, dst: Node) -> bool:
    serialize_cycle_checks()
    return reaches(src, dst)


def find_cycle(added: list[tuple[int, int]], new_nodes=frozenset()) -> set[tuple[int, int]] | None:
    """The edges among `added` (src, dst node ids, already inserted) that lie on a cycle, or
    None when the graph is still acyclic. At most one recursive query for any number of edges.

    The graph was acyclic before, so a cycle passes through an added edge (u, v): its nodes
    are all reachable from v, and all reach u. The query keeps just those nodes, those
    reachable from an added edge's end that reach back to an added edge's start, and returns
    the edges between them (usually none); Python finds the strongly connected components.
    Call it inside a transaction (on PostgreSQL it sets `jit` for the transaction).

    `new_nodes` are nodes created with the edges, which have no other edges. When every added
    edge ends at one of them, a cycle can only leave such a node by an added edge, so it is
    made of added edges alone: the query is not needed (the usual case: new runs, new outputs).
    """
    if not added:
        return None
    if all(dst in new_nodes for _, dst in added):
        component = _components(added)
        on_cycle = {(src, dst) for src, dst in added if component[src] == component[dst]}
        return on_cycle or None
    serialize_cycle_checks()
    ends = sorted({dst for _, dst in added})
    starts = sorted({src for src, _ in added})
    edge, node = Edge._meta.db_table, Node._meta.db_table
    # `back` collects edges, not nodes: walking back from the starts over edges whose cause is
    # in `down` visits exactly the edges between the nodes kept, so no join over the edge
    # table is needed to find them afterwards.
    sql = f"""
        WITH RECURSIVE down(id) AS (
            SELECT n.id FROM {node} n WHERE n.id IN ({", ".join(["%s"] * len(ends))})
            UNION
            SELECT e.dst_id FROM {edge} e JOIN down d ON e.src_id = d.id
        ),
        back(src, dst) AS (
            SELECT e.src_id, e.dst_id FROM {edge} e
            WHERE e.dst_id IN ({", ".join(["%s"] * len(starts))})
              AND e.dst_id IN (SELECT id FROM down) AND e.src_id IN (SELECT id FROM down)
            UNION
            SELECT e.src_id, e.dst_id FROM {edge} e JOIN back b ON e.dst_id = b.src
            WHERE e.src_id IN (SELECT id FROM down)
        )
        SELECT src, dst FROM back
    """  # noqa: S608 - the table names are ours, the values are parameters
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner cannot size a recursive walk: its estimates run to millions of rows,
            # enough to compile the query (JIT) for longer than the walk takes.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [*ends, *starts])
        edges = cursor.fetchall()
    if not edges:
        return None
    component = _components(edges)
    on_cycle = {
        (src, dst)
        for src, dst in added
        if src in component and component[src] == component.get(dst)
    }
    return on_cycle or None


def _components(edges) -> dict[int, int]:
    """Strongly connected components (Kosaraju, iterative): node id -> component number."""
    forward: dict[int, list[int]] = {}
    backward: dict[int, list[int]] = {}
    for src, dst in edges:
        forward.setdefault(src, []).append(dst)
        backward.setdefault(dst, []).append(src)
    nodes = set(forward) | set(backward)
    order, seen = [], set()
    for root in nodes:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(forward.get(root, ())))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(forward.get(child, ()))))
    component: dict[int, int] = {}
    for root in reversed(order):
        if root in component:
            continue
        component[root] = root
        pending = [root]
        while pending:
            node = pending.pop()
            for parent in backward.get(node, ()):
                if parent not in component:
                    component[parent] = root
                    pending.append(parent)
    return component
