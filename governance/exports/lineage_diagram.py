"""The lineage drawn in a dossier: everything upstream of a model version, as inline SVG.

The upstream subgraph is read with one recursive SQL query (DESIGN: never by walking the
graph in Python); the drawing puts each node in the column of its longest path from the
sources, so causes stand left of their effects.
"""

from collections import defaultdict
from xml.sax.saxutils import escape

from django.db import connection

from lineage.choices import NodeKind
from lineage.models import Edge, Node

# Fill colour of each kind of node, so a reader tells data, code, runs and models apart.
COLOURS = {
    NodeKind.DATASET_VERSION: "#dbeafe",
    NodeKind.CODE_VERSION: "#fef3c7",
    NodeKind.RUN: "#e5e7eb",
    NodeKind.MODEL_VERSION: "#dcfce7",
    NodeKind.EVALUATION: "#fce7f3",
}
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 34, 40, 14, 10
MAX_LABEL = 26


def upstream(node: Node) -> dict:
    """{"nodes": [...], "edges": [...]} of `node` and every node it came from."""
    edges = Edge._meta.db_table
    sql = f"""
        WITH RECURSIVE up(id) AS (
            SELECT CAST(%s AS BIGINT)
            UNION
            SELECT e.src_id FROM {edges} e JOIN up ON e.dst_id = up.id
        )
        SELECT e.src_id, e.dst_id, e.kind FROM {edges} e
        WHERE e.dst_id IN (SELECT id FROM up) AND e.src_id IN (SELECT id FROM up)
        ORDER BY e.src_id, e.dst_id, e.kind
    """  # noqa: S608 - the table name is ours, the value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [node.pk])
        rows = cursor.fetchall()
    ids = {node.pk} | {src for src, _, _ in rows} | {dst for _, dst, _ in rows}
    nodes = (
        Node.objects.filter(pk__in=ids).order_by("pk").values("pk", "kind", "object_id", "label")
    )
    return {
        "nodes": [
            {"id": n["pk"], "kind": n["kind"], "object_id": n["object_id"], "label": n["label"]}
            for n in nodes
        ],
        "edges": [{"src": src, "dst": dst, "kind": kind} for src, dst, kind in rows],
    }


def _columns(graph: dict) -> dict[int, int]:
    """Each node's column: the length of the longest path reaching it."""
    parents = defaultdict(list)
    for edge in graph["edges"]:
        parents[edge["dst"]].append(edge["src"])
    column: dict[int, int] = {}

    def depth(node_id: int, trail: frozenset) -> int:
        if node_id not in column:
            sources = [p for p in parents[node_id] if p not in trail]
            column[node_id] = 1 + max((depth(p, trail | {node_id}) for p in sources), default=-1)
        return column[node_id]

    for node in graph["nodes"]:
        depth(node["id"], frozenset())
    return column


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def svg(graph: dict) -> str:
    """The graph as an SVG drawing (escaped text; safe to inline in the HTML)."""
    if not graph["nodes"]:
        return ""
    column = _columns(graph)
    by_column = defaultdict(list)
    for node in graph["nodes"]:
        by_column[column[node["id"]]].append(node)
    place = {}
    for col, members in by_column.items():
        for row, node in enumerate(members):
            place[node["id"]] = (
                MARGIN + col * (BOX_W + GAP_X),
                MARGIN + row * (BOX_H + GAP_Y),
            )
    width = MARGIN * 2 + (max(by_column) + 1) * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max(len(m) for m in by_column.values()) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="Stagegate Sans">',
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="3" '
        'orient="auto"><path d="M0,0 L7,3 L0,6 z" fill="#374151"/></marker></defs>',
    ]
    for edge in graph["edges"]:
        (x1, y1), (x2, y2) = place[edge["src"]], place[edge["dst"]]
        parts.append(
            f'<line x1="{x1 + BOX_W}" y1="{y1 + BOX_H / 2}" x2="{x2 - 2}" y2="{y2 + BOX_H / 2}" '
            'stroke="#374151" stroke-width="1" marker-end="url(#arrow)"/>'
        )
    for node in graph["nodes"]:
        x, y = place[node["id"]]
        fill = COLOURS.get(node["kind"], "#ffffff")
        kind = NodeKind(node["kind"]).label if node["kind"] in NodeKind.values else node["kind"]
        parts.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{fill}" '
            'stroke="#374151" stroke-width="0.8"/>'
            f'<text x="{x + 6}" y="{y + 13}" font-size="8" font-weight="bold">'
            f"{escape(kind)}</text>"
            f'<text x="{x + 6}" y="{y + 26}" font-size="8">{escape(_short(node["label"]))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
