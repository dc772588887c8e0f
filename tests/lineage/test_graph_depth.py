"""Depth bounds on lineage walks: no recursive row carries a depth, the answer is the nodes
within depth (checked against a breadth-first search in Python on random graphs), and a walk
whose depth pass used to repeat each node once per path length answers at once."""

import random
import re
import time
from collections import deque

import pytest
from django.db import connection

from lineage import graph
from lineage.choices import EdgeKind, NodeKind
from lineage.models import Edge, Node

pytestmark = pytest.mark.django_db

WALKS = {"up": graph.upstream, "down": graph.downstream, "both": graph.both}
_object_ids = iter(range(800_000_000, 900_000_000))


def add_graph(edges: list[tuple[int, int]], projects: list) -> list[Node]:
    """Nodes 0..n-1 (node i in projects[i]) and the edges i → j, inserted in bulk. The nodes
    are inserted in a shuffled order, so that edges point to older nodes as well as newer."""
    order = list(range(len(projects)))
    random.Random(len(edges)).shuffle(order)
    nodes: list = [None] * len(projects)
    made = Node.objects.bulk_create(
        Node(
            kind=NodeKind.DATASET_VERSION,
            object_id=(object_id := next(_object_ids)),
            project=projects[i],
            label=f"node {i}",
            ref=f"dataset:{projects[i].key}:n{object_id}#1",
        )
        for i in order
    )
    for i, node in zip(order, made, strict=True):
        nodes[i] = node
    Edge.objects.bulk_create(
        Edge(
            src=nodes[a],
            dst=nodes[b],
            kind=EdgeKind.DERIVED,
            src_project_id=nodes[a].project_id,
            dst_project_id=nodes[b].project_id,
        )
        for a, b in edges
    )
    return nodes


def distances(edges, starts, direction: str, visible) -> dict[int, int]:
    """Hops from the starts to every node reachable through visible nodes (the reference)."""
    step: dict[int, list[int]] = {}
    for a, b in edges:
        if direction == "down":
            step.setdefault(a, []).append(b)
        else:
            step.setdefault(b, []).append(a)
    found = {s: 0 for s in starts if s in visible}
    queue = deque(found)
    while queue:
        node = queue.popleft()
        for other in step.get(node, ()):
            if other in visible and other not in found:
                found[other] = found[node] + 1
                queue.append(other)
    return found


def reference(edges, starts, direction: str, depth, visible) -> dict[int, int]:
    """Each node within `depth` of the starts, with its distance (the smaller of up and
    down for both)."""
    within: dict[int, int] = {}
    for way in ("up", "down") if direction == "both" else (direction,):
        for node, hops in distances(edges, starts, way, visible).items():
            if depth is None or hops <= depth:
                within[node] = min(hops, within.get(node, hops))
    return within


def ctes(sql: str) -> dict[str, tuple[list[str], str]]:
    """The statement's common table expressions: name -> (columns, body)."""
    found = {}
    at = sql.index("WITH RECURSIVE") + len("WITH RECURSIVE")
    head = re.compile(r"\s*,?\s*(\w+)\(([^()]*)\) AS \(")
    while match := head.match(sql, at):
        depth, at = 1, match.end()
        body_start = at
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[at], 0)
            at += 1
        columns = [c.strip() for c in match.group(2).split(",")]
        found[match.group(1)] = (columns, sql[body_start : at - 1])
    return found


def recursive_ctes(sql: str) -> dict[str, list[str]]:
    """The CTEs that read themselves, with their columns."""
    return {
        name: columns
        for name, (columns, body) in ctes(sql).items()
        if re.search(rf"\b{name}\b", body)
    }


@pytest.mark.parametrize("direction", [("up",), ("down",), ("up", "down")])
@pytest.mark.parametrize("depth", [None, 0, 3, 9, 10, 50])
@pytest.mark.parametrize("visible", [None, 2])
@pytest.mark.parametrize("as_of", [False, True])
def test_no_recursive_row_carries_more_than_the_node_id(direction, depth, visible, as_of):
    import datetime

    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) if as_of else None
    projects = None if visible is None else list(range(1, visible + 1))
    sql, params = graph.compile_walk(
        direction, [1, 2], depth, 10, projects, connection.vendor, as_of=when
    )
    ctes = recursive_ctes(sql)
    assert set(ctes) == {f"{d}_reach" for d in direction}
    assert all(columns == ["id"] for columns in ctes.values())
    assert "depth" not in sql and "depth" not in params
    # Without as_of the statement is the plain walk (benchmarked): no created_at, no join.
    assert ("created_at" in sql) is as_of


def ladder(n: int) -> list[tuple[int, int]]:
    """Node i → i + 1 and i → i + 2: node i is ceil(i / 2) hops below node 0, by 2^(i/2)
    paths of every length from i / 2 to i."""
    return [(i, j) for i in range(n) for j in (i + 1, i + 2) if j < n]


@pytest.mark.parametrize(
    ("direction", "start", "depth"),
    [("down", 0, 1_500), ("up", -1, 600), ("both", 1_000, 300)],
)
def test_a_depth_bound_on_a_ladder_answers_at_once(project, direction, start, depth):
    # A pass carrying (id, depth) repeats node i once per path length: ~10 s on SQLite for
    # a 3,000-node ladder, where the walk alone takes 0.02 s.
    n = 2_000
    edges = ladder(n)
    nodes = add_graph(edges, [project] * n)
    start = start % n
    started = time.perf_counter()
    found = WALKS[direction]([nodes[start].pk], depth=depth)
    elapsed = time.perf_counter() - started
    expected = reference(edges, [start], direction, depth, set(range(n)))
    position = {node.pk: i for i, node in enumerate(nodes)}
    assert {position[node.id] for node in found.nodes} == set(expected)
    assert not found.truncated
    assert elapsed < 2, f"{elapsed:.2f} s"


def check_walk(nodes, edges, visible, starts, direction, depth, max_nodes, projects):
    """One walk against the reference: the nodes within depth, cut to the nearest max_nodes
    when there are more (and then flagged truncated), with the edges between them."""
    position = {node.pk: i for i, node in enumerate(nodes)}
    found = WALKS[direction](
        [nodes[s].pk for s in starts], depth=depth, max_nodes=max_nodes, projects=projects
    )
    got = [position[node.id] for node in found.nodes]
    expected = reference(edges, starts, direction, depth, visible)
    case = f"{direction} from {starts}, depth {depth}, max {max_nodes}, edges {edges}"
    assert len(got) == len(set(got)), case
    if len(expected) <= max_nodes:
        assert set(got) == set(expected), case
        assert not found.truncated, case
    else:
        assert found.truncated, case
        assert len(got) == max_nodes and set(got) <= set(expected), case
        if direction != "both" or (depth is not None and depth < max_nodes):
            # The nearest ones. (A walk both ways with no depth, or one that cannot bind, is
            # cut to max_nodes in no particular order.)
            left_out = set(expected) - set(got)
            assert max(expected[i] for i in got) <= min(expected[i] for i in left_out), case
    kept = set(got)
    between = {(a, b) for a, b in edges if a in kept and b in kept}
    assert {(position[a], position[b]) for a, b, _ in found.edges} == between, case


def test_depth_and_max_nodes_agree_with_a_breadth_first_search_on_random_graphs(
    project, other_project
):
    rng = random.Random(20260501)
    for _ in range(40):
        n = rng.randint(2, 18)
        density = rng.choice([0.1, 0.25, 0.5])
        edges = [(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < density]
        # About one node in five is in a project the walker cannot see.
        homes = [other_project if rng.random() < 0.2 else project for _ in range(n)]
        nodes = add_graph(edges, homes)
        everyone = set(range(n))
        seen_by_member = {i for i in range(n) if homes[i] == project}
        for direction in WALKS:
            for projects, visible in ((None, everyone), ([project.pk], seen_by_member)):
                starts = rng.sample(range(n), rng.choice([1, 1, 2, 3][: n + 1]))
                for depth, max_nodes in rng.sample(
                    [(d, m) for d in (None, 0, 1, 2, 3) for m in (1, 2, 3, 5, 50)], 4
                ):
                    check_walk(nodes, edges, visible, starts, direction, depth, max_nodes, projects)


@pytest.mark.parametrize("direction", ["up", "down", "both"])
def test_depth_bound_cut_at_max_nodes_is_complete_when_a_node_beyond_depth_was_reached(
    project, direction
):
    # A chain 0 → 1 → ... → 9, walked from its middle: depth 2 holds 3 nodes each way (5
    # both ways); max_nodes exactly that is complete, one fewer is truncated.
    edges = [(i, i + 1) for i in range(9)]
    nodes = add_graph(edges, [project] * 10)
    within = 5 if direction == "both" else 3
    walk = WALKS[direction]
    assert not walk([nodes[5].pk], depth=2, max_nodes=within).truncated
    assert len(walk([nodes[5].pk], depth=2, max_nodes=within).nodes) == within
    cut = walk([nodes[5].pk], depth=2, max_nodes=within - 1)
    assert cut.truncated and len(cut.nodes) == within - 1


def test_with_a_binding_depth_prepare_sees_only_the_rows_kept(project):
    edges = [(i, i + 1) for i in range(9)]
    nodes = add_graph(edges, [project] * 10)
    seen = []
    found = graph.downstream([nodes[0].pk], depth=3, prepare=lambda row: seen.append(row) or 1)
    assert seen == found.node_rows and len(seen) == 4
    assert found.prepared == [1, 1, 1, 1]
    # The last node kept lists no out-edge to the node beyond depth.
    last = next(row for row in seen if row[0] == nodes[3].pk)
    assert last[6] is None


@pytest.mark.parametrize("max_nodes", [3, 10, 25])
def test_a_walk_both_ways_cut_at_max_nodes_keeps_the_start_and_the_nearest_nodes(
    project, max_nodes
):
    # Node 0 is the start; 1..30 its ancestors in a chain (i + 1 → i); 31..70 its children.
    chain = [(i + 1, i) for i in range(30)]
    fan = [(0, child) for child in range(31, 71)]
    nodes = add_graph(chain + fan, [project] * 71)
    found = graph.both([nodes[0].pk], max_nodes=max_nodes)
    kept = {node.id for node in found.nodes}
    position = {node.pk: i for i, node in enumerate(nodes)}
    ancestors = sorted(position[pk] for pk in kept if 1 <= position[pk] <= 30)
    assert found.truncated
    assert len(kept) == max_nodes
    assert nodes[0].pk in kept
    # The ancestors kept are the nearest ones, and the two walks share the answer.
    assert ancestors == list(range(1, len(ancestors) + 1))
    assert abs(len(ancestors) - (max_nodes - 1 - len(ancestors))) <= 1
