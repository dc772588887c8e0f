"""The drawn lineage of a model version page: its neighbourhood two steps up and down.

Two scoped queries fetch the edges (one step, then the next); the layout puts each node in a
column by its distance from the version (causes to the left, effects to the right) so the
template can draw it as inline SVG. The full lineage graph and its API live in `lineage/`.
"""

from dataclasses import dataclass, field

from django.db.models import Q

from lineage.choices import NodeKind
from lineage.models import Edge
from registry.models import Project

DEPTH = 2
MAX_EDGES_PER_STEP = 40
BOX_WIDTH, BOX_HEIGHT = 180, 38
COLUMN_GAP, ROW_GAP, MARGIN = 60, 14, 10


@dataclass
class DrawnNode:
    id: int
    kind: str
    kind_label: str
    label: str
    object_id: int
    level: int
    x: int = 0
    y: int = 0
    is_center: bool = False

    @property
    def short_label(self) -> str:
        return self.label if len(self.label) <= 26 else self.label[:25] + "…"


@dataclass
class DrawnEdge:
    kind: str
    kind_label: str
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass
class Drawing:
    nodes: list[DrawnNode] = field(default_factory=list)
    edges: list[DrawnEdge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    truncated: bool = False

    @property
    def upstream(self) -> list[DrawnNode]:
        return [n for n in self.nodes if n.level < 0]

    @property
    def downstream(self) -> list[DrawnNode]:
        return [n for n in self.nodes if n.level > 0]


def _scoped_edges(user):
    visible = Project.objects.visible_to(user).values("pk")
    return Edge.objects.filter(src__project__in=visible, dst__project__in=visible).select_related(
        "src", "dst"
    )


def neighbourhood(version, user) -> Drawing:
    """The version's lineage two steps upstream and downstream, laid out for drawing."""
    edges = _scoped_edges(user)
    first = list(
        edges.filter(
            Q(dst__kind=NodeKind.MODEL_VERSION, dst__object_id=version.pk)
            | Q(src__kind=NodeKind.MODEL_VERSION, src__object_id=version.pk)
        ).order_by("id")[:MAX_EDGES_PER_STEP]
    )
    levels: dict[int, int] = {}
    nodes = {}
    center = None
    for edge in first:
        for node in (edge.src, edge.dst):
            nodes[node.pk] = node
            if node.kind == NodeKind.MODEL_VERSION and node.object_id == version.pk:
                center = node
    if center is None:
        return Drawing()
    levels[center.pk] = 0
    for edge in first:
        if edge.dst_id == center.pk:
            levels.setdefault(edge.src_id, -1)
        else:
            levels.setdefault(edge.dst_id, 1)
    up = [pk for pk, level in levels.items() if level == -1]
    down = [pk for pk, level in levels.items() if level == 1]
    second = []
    if up or down:
        second = list(
            edges.filter(Q(dst_id__in=up) | Q(src_id__in=down))
            .exclude(Q(src_id=center.pk) | Q(dst_id=center.pk))
            .order_by("id")[: MAX_EDGES_PER_STEP + 1]
        )
    truncated = len(first) >= MAX_EDGES_PER_STEP or len(second) > MAX_EDGES_PER_STEP
    second = second[:MAX_EDGES_PER_STEP]
    for edge in second:
        nodes[edge.src_id], nodes[edge.dst_id] = edge.src, edge.dst
        if edge.dst_id in up:
            levels.setdefault(edge.src_id, -DEPTH)
        if edge.src_id in down:
            levels.setdefault(edge.dst_id, DEPTH)
    return _layout(nodes, levels, [*first, *second], center.pk, truncated)


def _layout(nodes, levels, edges, center_id, truncated) -> Drawing:
    columns: dict[int, list] = {}
    for pk in sorted(levels, key=lambda pk: (nodes[pk].kind, nodes[pk].label, pk)):
        columns.setdefault(levels[pk], []).append(pk)
    tallest = max(len(members) for members in columns.values())
    height = 2 * MARGIN + tallest * BOX_HEIGHT + (tallest - 1) * ROW_GAP
    used = sorted(columns)
    drawn = {}
    for index, level in enumerate(used):
        members = columns[level]
        column_height = len(members) * BOX_HEIGHT + (len(members) - 1) * ROW_GAP
        top = (height - column_height) // 2
        for row, pk in enumerate(members):
            node = nodes[pk]
            drawn[pk] = DrawnNode(
                id=pk,
                kind=node.kind,
                kind_label=NodeKind(node.kind).label,
                label=node.label,
                object_id=node.object_id,
                level=level,
                x=MARGIN + index * (BOX_WIDTH + COLUMN_GAP),
                y=top + row * (BOX_HEIGHT + ROW_GAP),
                is_center=pk == center_id,
            )
    lines = []
    for edge in edges:
        src, dst = drawn.get(edge.src_id), drawn.get(edge.dst_id)
        if src is None or dst is None:
            continue
        lines.append(
            DrawnEdge(
                kind=edge.kind,
                kind_label=edge.get_kind_display(),
                x1=src.x + BOX_WIDTH,
                y1=src.y + BOX_HEIGHT // 2,
                x2=dst.x,
                y2=dst.y + BOX_HEIGHT // 2,
            )
        )
    width = 2 * MARGIN + len(used) * BOX_WIDTH + (len(used) - 1) * COLUMN_GAP
    return Drawing(
        nodes=sorted(drawn.values(), key=lambda n: (n.level, n.y)),
        edges=lines,
        width=width,
        height=height,
        truncated=truncated,
    )
