"""The lineage SQL: upstream, downstream and both-ways subgraphs, one statement each.

Every query is one `WITH RECURSIVE … UNION` over node ids, the same text on PostgreSQL and
SQLite (but for the name of the string aggregate). How it is bounded, and why:

- **De-duplication.** The recursive row is the node id alone, so `UNION` visits each node once.
  A depth column in that row makes (id, 3) and (id, 5) different rows: a node reachable by paths
  of many lengths is expanded once per length, which is what made the reference query on ~1M
  edges blow up (and `UNION ALL` never finished).
- **max_nodes.** The walk is read through `LIMIT max_nodes + 1`. Both engines evaluate a
  recursive CTE lazily, level by level, so the walk stops as soon as that many nodes are found
  (a hub with 400,000 descendants costs what its first max_nodes cost), the nodes kept are the
  nearest ones (both engines emit a recursive CTE's rows breadth-first: PostgreSQL iterates
  its work table, SQLite its FIFO queue), and finding the extra node sets `truncated`.
- **depth.** No recursive row carries a depth, and no second walk counts hops: a depth
  column in a recursive row makes (id, 3) and (id, 5) different rows, and on a 3,000-node
  "ladder" (node i → i + 1 and i → i + 2) a pass counting depth over the nodes found took
  ~10 s where the walk took 0.02 s. A depth bound is applied in Python to the walk's own
  answer instead, in O(nodes + edges) (`_within_depth`), and only when it can bind (a walk of
  n nodes is at most n - 1 hops deep, so a depth of max_nodes or more never does, and such a
  walk is the plain statement). The walk then keeps max_nodes + 1 nodes per direction,
  which are the nearest ones (breadth-first, see max_nodes), and every node row carries its
  out-edges to the others, so a breadth-first search from the starts over those edges gives
  each node its true distance: a shortest path to a kept node runs through nearer nodes,
  which were all kept. (With direction both, the up and down walks each keep their nearest
  nodes, all of them are returned, and a node's distance is the smaller of its upward and
  downward ones.) The nodes within depth are the answer, and whether it is complete follows
  from their number: more than max_nodes of them is a truncated answer (cut to the nearest
  max_nodes); max_nodes or fewer means the walk reached a node beyond depth before its
  limit, or ended, so every node within depth was found.
  The rights filter below holds for this too: the walk never steps through an invisible
  node, so distances over the returned edges are the distances of the walk itself.
  With a binding depth the node rows are collected and filtered before the caller's
  `prepare` runs on them (the only path that does not stream, see below).
- **asOf.** `as_of` restricts the walk to the nodes and edges created at or before a time
  (nodes and edges are append-only and keep `created_at`): the graph as it was then, e.g.
  when a model version was approved, before its training run gained another input. It adds
  a join to the node table per step (the node's `created_at`), only to the statements that
  ask for it; the statement without `as_of` is unchanged.
- **Rights.** `projects` (the ids of the projects the user may view, None for everyone) is
  applied inside the recursive step, not after it: the walk never steps onto a node of an
  invisible project, so what lies beyond such a node is not reached through it and the answer
  does not reveal that it exists. The edge carries its ends' projects, and the covering
  indexes (src, dst) INCLUDE dst_project and (dst, src) INCLUDE src_project give the walk the
  next node and its project from the index alone (a join to the node table per edge tripled
  the cost of a 9,000-node walk).
- **Answer.** One row per node kept, carrying the node's out-edges to other nodes kept as one
  text value ("dst kind dst kind ..."; a row per edge cost the client more than an aggregate
  costs the server). Each node's edges are found by one probe of the (src, dst) index as its
  row is made, so they arrive with the nodes while the rows stream, not in one value after
  them. The rows come in descending id order (PostgreSQL reads the kept ids in the order
  they were sorted; SQLite may not, which costs only speed): lineage edges point from older
  records to newer ones (in the benchmark graph 99.5% of them go to a larger id), so an
  edge's destination has almost always arrived before its source, and the client can write
  the edge as soon as the source's row arrives (the others wait for the last row).
- **Time.** On PostgreSQL the statement runs under a transaction-local `statement_timeout`
  (`LINEAGE_QUERY_TIMEOUT_MS`); running past it raises `LineageQueryTimeout`, which the API
  answers with 503.
- **Streaming.** On PostgreSQL the rows are read in chunks as the server sends them, and a
  caller's `prepare` runs on each node row as it arrives: the client's work on the nodes and
  their edges (the Marquez document's text) overlaps the server's work on the next rows.
"""

from collections.abc import Iterator
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.utils import DatabaseError

from lineage.models import Edge, Node
from registry.models import Project

DEFAULT_MAX_NODES = 10_000
DEFAULT_TIMEOUT_MS = 10_000
# Rows per chunk read from PostgreSQL. Chunks need libpq 17 (psycopg-binary bundles it);
# an older libpq reads row by row, which overlaps as well, a little slower.
STREAM_CHUNK = 50 if psycopg.pq.version() >= 170000 else 1

NODE_TABLE = Node._meta.db_table
EDGE_TABLE = Edge._meta.db_table
PROJECT_TABLE = Project._meta.db_table


class LineageQueryTimeout(Exception):
    """The statement ran past the lineage statement timeout (PostgreSQL only)."""


class GraphNode(NamedTuple):
    """One node of an answer (a tuple: thousands are built per answer)."""

    id: int
    kind: str
    object_id: int
    ref: str
    label: str
    namespace: str


class Subgraph:
    """Nodes found, the edges between them (src, dst, kind), and whether max_nodes cut it.

    Kept as the statement returned them: `node_rows`, tuples in GraphNode's order followed by
    the node's out-edges as text ("dst kind dst kind ...", or None), newest node first on
    PostgreSQL (in no promised order on SQLite).
    `nodes` and `edges` are made from them on first use; the Marquez document of 10,000 nodes
    is written from the raw rows, without the 30,000 tuples (and the garbage collections they
    cause). `prepared` holds what the walk's `prepare` made of each node row, in the same order.
    """

    def __init__(self, node_rows=(), truncated: bool = False):
        self.node_rows: list[tuple] = list(node_rows)
        self.truncated = truncated
        self.prepared: list = []

    @cached_property
    def nodes(self) -> list[GraphNode]:
        return [GraphNode._make(row[:6]) for row in self.node_rows]

    @cached_property
    def edges(self) -> list[tuple[int, int, str]]:
        edges: list[tuple[int, int, str]] = []
        for row in self.node_rows:
            if row[6]:
                words = row[6].split(" ")
                edges.extend(
                    (row[0], int(dst), kind)
                    for dst, kind in zip(words[0::2], words[1::2], strict=True)
                )
        return edges


def upstream(
    node_ids,
    depth=None,
    max_nodes=DEFAULT_MAX_NODES,
    *,
    projects=None,
    prepare=None,
    as_of: datetime | None = None,
) -> Subgraph:
    """The nodes `node_ids` came from, within `depth` hops (None: any), at most `max_nodes`,
    as the graph was at `as_of` (None: now)."""
    return _run(("up",), node_ids, depth, max_nodes, projects, prepare, as_of)


def downstream(
    node_ids,
    depth=None,
    max_nodes=DEFAULT_MAX_NODES,
    *,
    projects=None,
    prepare=None,
    as_of: datetime | None = None,
) -> Subgraph:
    """The nodes that came from `node_ids`, within `depth` hops, at most `max_nodes`."""
    return _run(("down",), node_ids, depth, max_nodes, projects, prepare, as_of)


def both(
    node_ids,
    depth=None,
    max_nodes=DEFAULT_MAX_NODES,
    *,
    projects=None,
    prepare=None,
    as_of: datetime | None = None,
) -> Subgraph:
    """Upstream and downstream together, at most `max_nodes` in all."""
    return _run(("up", "down"), node_ids, depth, max_nodes, projects, prepare, as_of)


def visible_project_ids(user) -> list[int] | None:
    """The ids of the projects `user` may view; None when the user sees every project."""
    if user.is_superuser and user.is_active:
        return None
    return list(Project.objects.visible_to(user, "view").values_list("pk", flat=True))


# direction: (the next node's column, its project's column, the current node's column)
_STEP = {
    "up": ("src_id", "src_project_id", "dst_id"),
    "down": ("dst_id", "dst_project_id", "src_id"),
}

# A node's out-edges to the other nodes kept, as one text value "dst kind dst kind ...": one
# probe of the (src, dst) index per node row. The membership test is written so that it stays
# a hashed subplan (the set of kept ids hashed once): as a plain IN, PostgreSQL turns it into a
# semi-join that hashes the kept ids again for every node.
_OUT_EDGES = """(
        SELECT {aggregate}(e.dst_id || ' ' || e.kind, ' ') FROM {edges} e
        WHERE e.src_id = n.id AND (e.dst_id IN (SELECT id FROM picked)) IS TRUE{as_of}
    )"""
_AGGREGATE = {"postgresql": "string_agg", "sqlite": "group_concat"}


def _reach(name: str, starts: str, visible: str, as_of: bool) -> str:
    """The walk itself: every node reachable from the starts, each once (UNION over ids)."""
    nxt, nxt_project, cur = _STEP[name]
    step_visible = f"AND e.{nxt_project} IN ({visible})" if visible else ""
    start_visible = f"AND n.project_id IN ({visible})" if visible else ""
    if as_of:
        # A node's created_at is on the node table: joined only by the walks that ask.
        start_visible += " AND n.created_at <= %(as_of)s"
        step_visible += (
            f" AND e.created_at <= %(as_of)s"
            f" JOIN {NODE_TABLE} m ON m.id = e.{nxt} AND m.created_at <= %(as_of)s"
        )
    return f"""
    {name}_reach(id) AS (
        SELECT n.id FROM {NODE_TABLE} n WHERE n.id IN ({starts}) {start_visible}
        UNION
        SELECT e.{nxt} FROM {EDGE_TABLE} e JOIN {name}_reach r ON e.{cur} = r.id {step_visible}
    ),
    {name}_found(id) AS (SELECT id FROM {name}_reach LIMIT %(limit)s),
    {name}_kept(id) AS (SELECT id FROM {name}_found LIMIT %(max)s),
    {name}_cut(flag) AS (
        SELECT CASE WHEN count(*) > %(max)s THEN 1 ELSE 0 END FROM {name}_found
    )"""  # noqa: S608 - ours


def statement(
    directions,
    n_starts: int,
    n_visible: int | None,
    *,
    depth_bound: bool,
    vendor: str,
    as_of: bool = False,
) -> str:
    """The SQL text for a walk in `directions` from n_starts nodes (named parameters).

    Its rows: one per node kept, in descending id order, (id, kind, object_id, ref, label,
    project key, out-edges); then, with a NULL id, ('t', 1 if max_nodes cut the walk).
    With `depth_bound`, the nodes both directions keep are all returned (`_within_depth`
    makes the answer of them); without, a walk both ways is cut to max_nodes in all.
    """
    starts = ", ".join(f"%(s{i})s" for i in range(n_starts))
    visible = ", ".join(f"%(p{i})s" for i in range(n_visible)) if n_visible is not None else ""
    # Only fixed names are interpolated (our tables, "up"/"down", placeholders).
    ctes = [_reach(d, starts, visible, as_of) for d in directions]
    if len(directions) == 1:
        (d,) = directions
        ctes.append(f"picked(id) AS (SELECT id FROM {d}_kept ORDER BY id DESC)")  # noqa: S608
        cut = f"(SELECT flag FROM {d}_cut)"  # noqa: S608
    else:
        # Each direction's nodes come nearest first (the walk is breadth-first); a node's rank
        # is its place in its walk, so cutting the union at max_nodes keeps the nearest nodes
        # of both walks, the starts first, instead of whichever the UNION's hash gave first.
        ranked = " UNION ALL ".join(
            f"SELECT id, row_number() OVER () AS rank FROM {d}_kept"  # noqa: S608
            for d in directions
        )
        ranks = f"SELECT id, min(rank) FROM ({ranked}) r GROUP BY id"  # noqa: S608
        ctes.append(f"joined(id, rank) AS ({ranks})")
        limit = "" if depth_bound else " ORDER BY rank, id LIMIT %(max)s"
        some = f"(SELECT id FROM joined{limit}) j"  # noqa: S608
        ctes.append(f"picked(id) AS (SELECT id FROM {some} ORDER BY id DESC)")  # noqa: S608
        cut = " + ".join(f"(SELECT flag FROM {d}_cut)" for d in directions)  # noqa: S608
        cut += " + (SELECT count(*) FROM joined) / (%(max)s + 1)"
    with_clause = ",".join(ctes)
    out_edges = _OUT_EDGES.format(
        aggregate=_AGGREGATE[vendor],
        edges=EDGE_TABLE,
        as_of=" AND e.created_at <= %(as_of)s" if as_of else "",
    )
    return f"""
    WITH RECURSIVE {with_clause}
    SELECT n.id, n.kind, n.object_id, n.ref, n.label, p.key, {out_edges}
    FROM picked k
    JOIN {NODE_TABLE} n ON n.id = k.id
    JOIN {PROJECT_TABLE} p ON p.id = n.project_id
    UNION ALL
    SELECT NULL, 't', {cut}, NULL, NULL, NULL, NULL
    """  # noqa: S608 - table names are ours; every value is a parameter


def binds(depth: int | None, max_nodes: int) -> bool:
    """Whether a depth bound can change a walk's answer: a walk of n nodes is at most n - 1
    hops deep, so a depth of max_nodes or more (or none) cannot."""
    return depth is not None and depth < max_nodes


def compile_walk(
    directions, node_ids, depth, max_nodes, projects, vendor: str, *, as_of=None
) -> tuple[str, dict]:
    """(sql, params) of a walk: see `statement`."""
    depth_bound = binds(depth, max_nodes)
    sql = statement(
        directions,
        len(node_ids),
        None if projects is None else len(projects or [0]),
        depth_bound=depth_bound,
        vendor=vendor,
        as_of=as_of is not None,
    )
    # With a binding depth each direction keeps one node more than the answer may hold: see
    # `_within_depth`, which tells a complete answer from a cut one by the count within depth.
    kept = max_nodes + 1 if depth_bound else max_nodes
    params: dict = {"max": kept, "limit": kept + 1}
    params.update({f"s{i}": node_id for i, node_id in enumerate(node_ids)})
    if projects is not None:
        # An empty IN () is not SQL; no project id is 0.
        params.update({f"p{i}": pk for i, pk in enumerate(projects or [0])})
    if as_of is not None:
        params["as_of"] = connection.ops.adapt_datetimefield_value(as_of)
    return sql, params


def _run(directions, node_ids, depth, max_nodes, projects, prepare=None, as_of=None) -> Subgraph:
    node_ids = list(node_ids)
    if not node_ids:
        return Subgraph()
    if projects is not None:
        projects = list(projects)
    sql, params = compile_walk(
        directions, node_ids, depth, max_nodes, projects, connection.vendor, as_of=as_of
    )
    graph = Subgraph()
    nodes, prepared = graph.node_rows, graph.prepared
    depth_bound = binds(depth, max_nodes)
    try:
        if depth_bound:
            rows = [row for row in _rows(sql, params) if row[0] is not None]
        else:
            for row in _rows(sql, params):
                if row[0] is not None:
                    nodes.append(row)
                    if prepare is not None:
                        prepared.append(prepare(row))
                elif row[1] == "t":
                    graph.truncated = bool(row[2])
    except DatabaseError as exc:
        if _is_timeout(exc):
            raise LineageQueryTimeout(str(exc)) from None
        raise
    if depth_bound:
        nodes[:], graph.truncated = _within_depth(rows, directions, node_ids, depth, max_nodes)
        if prepare is not None:
            prepared.extend(prepare(row) for row in nodes)
    return graph


def _within_depth(
    rows: list[tuple], directions, starts, depth: int, max_nodes: int
) -> tuple[list[tuple], bool]:
    """The node rows within `depth` hops of the starts, at most max_nodes of them (the
    nearest), and whether that cut the answer; see the module's docstring for why the
    distances found over the rows' edges are the walk's own and why the count tells.

    The rows keep their order, and a row whose out-edges lead to a node left out is given
    the out-edges to the nodes kept.
    """
    forward: dict[int, list[int]] = {}
    for row in rows:
        if row[6]:
            forward[row[0]] = [int(dst) for dst in row[6].split(" ")[0::2]]
    present = {row[0] for row in rows}
    roots = [start for start in dict.fromkeys(starts) if start in present]
    distance: dict[int, int] = {}
    for direction in directions:
        if direction == "down":
            step = forward
        else:
            step = {}
            for src, dsts in forward.items():
                for dst in dsts:
                    step.setdefault(dst, []).append(src)
        seen = dict.fromkeys(roots, 0)
        frontier = roots
        for hops in range(1, depth + 1):
            reached = []
            for node in frontier:
                for other in step.get(node, ()):
                    if other not in seen:
                        seen[other] = hops
                        reached.append(other)
            if not reached:
                break
            frontier = reached
        for node, hops in seen.items():
            if hops < distance.get(node, hops + 1):
                distance[node] = hops
    truncated = len(distance) > max_nodes
    if truncated:
        nearest = sorted(distance, key=distance.__getitem__)[:max_nodes]
        distance = dict.fromkeys(nearest, 0)
    if len(distance) == len(rows):
        return rows, truncated
    within = []
    for row in rows:
        if row[0] not in distance:
            continue
        if row[6]:
            words = row[6].split(" ")
            out = [
                f"{dst} {kind}"
                for dst, kind in zip(words[0::2], words[1::2], strict=True)
                if int(dst) in distance
            ]
            row = (*row[:6], " ".join(out) or None)
        within.append(row)
    return within, truncated


def _rows(sql: str, params: dict) -> Iterator[tuple]:
    """The statement's rows, as they arrive on PostgreSQL (see `STREAM_CHUNK`)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            yield from cursor.fetchall()
        return
    timeout = str(int(getattr(settings, "LINEAGE_QUERY_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)))
    # The timeout is SET LOCAL: in autocommit mode the walk gets a transaction of its own,
    # whose end ends the setting; in a caller's transaction a savepoint keeps the transaction
    # usable after a timeout, and the caller's own setting is put back after the walk.
    in_callers_transaction = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            "SELECT current_setting('statement_timeout'), "
            "set_config('statement_timeout', %s, true)",
            [timeout],
        )
        (before, _) = cursor.fetchone()
        yield from cursor.cursor.stream(sql, params, size=STREAM_CHUNK)
        if in_callers_transaction:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [before])


def _is_timeout(exc: Exception) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == "57014" or "statement timeout" in str(exc)
