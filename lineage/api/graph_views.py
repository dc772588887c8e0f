"""Lineage graph endpoints: the Marquez-shaped graph, a model version's full upstream, a dataset
version's downstream models, and the PROV-JSON export. Each is a few constant queries: the
visible projects, the start nodes (lineage.node_lookup), one graph statement (lineage.graph),
and one per record kind. The graph and a model version's upstream can be asked for as they
were at a time (`asOf`): nodes and edges are only ever added, each with its creation time.
"""

import re
from collections import defaultdict
from functools import lru_cache
from json.encoder import encode_basestring_ascii as quote

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.choices import RequestStatus
from governance.models import TransitionRequest
from lineage import graph, node_ids, node_lookup, prov, time_range
from lineage.api.openlineage_views import OpenLineageParser, post_events
from lineage.choices import NodeKind
from lineage.models import CodeVersion, Node, Run
from registry.choices import ProjectRight, Stage
from registry.models import DatasetVersion, ModelVersion

# No depth bound unless asked: the whole provenance, up to maxNodes. (Marquez defaults to 20;
# a bound that can bind is applied to the walk's answer before the document is written, which
# then cannot be written while the rows arrive, see lineage.graph.)
DEFAULT_DEPTH = None
MAX_DEPTH = 100_000
MAX_NODES_LIMIT = 50_000
DIRECTIONS = {"upstream": graph.upstream, "downstream": graph.downstream, "both": graph.both}
# asOf=approved on a model version's upstream: as it was when the version was approved.
APPROVED = "approved"
# ASCII digits only: int() would also take other scripts' digits, spaces and underscores.
_WHOLE_NUMBER = re.compile(r"-?[0-9]+\Z")


def _int_param(request, name: str, default, *, minimum: int, maximum: int):
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _WHOLE_NUMBER.match(raw):
        raise ParseError({name: f"must be a whole number, not {raw!r}"})
    # More digits than any bound has is out of range (and int() refuses over 4,300 of them).
    value = int(raw) if len(raw) <= 18 else None
    if value is None or not minimum <= value <= maximum:
        raise ParseError({name: f"must be between {minimum} and {maximum}"})
    return value


def _as_of_param(request, *, also: tuple[str, ...] = ()):
    """The `asOf` parameter: an ISO 8601 date-time with its zone, or one of the words in
    `also` (returned as it is), or None when absent."""
    raw = request.query_params.get("asOf")
    if raw is None or raw == "":
        return None
    if raw in also:
        return raw
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        words = "".join(f" or {word!r}" for word in also)
        raise ParseError(
            {
                "asOf": f"must be an ISO 8601 date-time with a time zone{words}, "
                f"e.g. 2026-03-01T12:00:00Z, not {raw!r}"
            }
        )
    if not time_range.storable(value):
        raise ParseError({"asOf": f"must be {time_range.RANGE}, not {raw!r}"})
    return value


def start_nodes(text: str, projects, as_of=None) -> list[Node]:
    """The nodes a public node id names, among the given projects' nodes (404 otherwise)."""
    try:
        return node_lookup.start_nodes(text, projects, as_of=as_of)
    except node_ids.MalformedNodeId as exc:
        raise ParseError({"nodeId": str(exc)}) from None
    except node_lookup.NodeNotFound as exc:
        raise NotFound(str(exc)) from None


def _query(
    function, starts: list[Node], depth, max_nodes, projects, prepare=None, as_of=None
) -> graph.Subgraph:
    try:
        return function(
            [start.pk for start in starts],
            depth,
            max_nodes,
            projects=projects,
            prepare=prepare,
            as_of=as_of,
        )
    except graph.LineageQueryTimeout:
        raise ServiceUnavailable() from None


# These views answer in shapes fixed by outside standards (Marquez's lineage graph, OpenLineage
# events, W3C PROV-JSON), described in their docstrings rather than by a serializer.
def _free_form(*methods: str) -> dict:
    return {
        m: extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
        for m in methods
    }


NODE_ID = OpenApiParameter(
    "nodeId",
    str,
    required=True,
    description=(
        "The node to start from. Returned ids: `dataset:<project>:<name>#<version>`, "
        "`model:<project>:<name>#<version>`, `run:<id>`, `code:<id>`, `evaluation:<id>`. "
        "Also accepted: `dataset:<project>:<name>` (its latest version); "
        "`model:<name>:<version>` (a model name unique among the projects you can see); "
        "`run:<OpenLineage runId>`; `job:<project>:<job name>` (the job's latest run; the "
        "job name is everything after the second colon, e.g. `job:credit:etl.orders.load`) "
        "and `job:<project>:<job name>#<run id or runId>` (that run of the job); and an "
        "OpenLineage dataset as Marquez names it, `dataset:<namespace>:<name>[#<version>]` "
        "(e.g. `dataset:postgres://db:5432:shop.public.orders`): its latest version in every "
        "project you can see. A malformed id is 400; an id naming nothing you can see, 404."
    ),
)
AS_OF_DESCRIPTION = (
    "The graph as it was at this ISO 8601 date-time with a time zone "
    "(e.g. `2026-03-01T12:00:00Z`): only the nodes and edges created by then, and a "
    "nodeId naming a latest version or run means the latest at that time."
)
DEPTH = OpenApiParameter("depth", int, description="At most this many hops (default: any).")
MAX_NODES = OpenApiParameter(
    "maxNodes", int, description=f"At most this many nodes (default {graph.DEFAULT_MAX_NODES})."
)
LINEAGE_PARAMETERS = [
    NODE_ID,
    OpenApiParameter("direction", str, enum=list(DIRECTIONS), description="Default: both."),
    DEPTH,
    MAX_NODES,
    OpenApiParameter("asOf", OpenApiTypes.DATETIME, description=AS_OF_DESCRIPTION),
]
UPSTREAM_PARAMETERS = [
    MAX_NODES,
    OpenApiParameter(
        "asOf",
        str,
        description=f"{AS_OF_DESCRIPTION} `approved`: as it was when the version's transition "
        "into the approved stage was applied (400 if it never was).",
    ),
]


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The lineage query took too long; ask for a smaller depth or maxNodes."
    default_code = "lineage_timeout"


@lru_cache(maxsize=1024)
def _node_head(kind: str, namespace: str) -> str:
    return (
        f'"type":{quote(node_ids.node_type(kind))},'
        f'"data":{{"kind":{quote(kind)},"namespace":{quote(namespace)},"objectId":'
    )


class MarquezDocument:
    """The Marquez document of a walk, `{"graph": [{"id", "type", "data", "inEdges",
    "outEdges"}], "truncated"}` as JSON text, written as the walk's rows arrive: pass `add` as
    the walk's `prepare`, then call `text` with the walk's answer.

    Written as text from the statement's raw rows: for 10,000 nodes, building dicts (or even
    a tuple per node and per edge) and encoding them took longer than the graph query itself
    (rendering in PostgreSQL with string_agg/json_agg was no faster). Every string is still
    escaped by the json module's C encoder, the very function json.dumps calls, once each.
    A row carries its node's out-edges; the rows come newest first, so an edge's destination
    has nearly always arrived already and the edge is written at once, while the database
    is still making the next rows. The few others are written at the end.
    """

    def __init__(self) -> None:
        quoted: dict[str, str] = {}  # node id (as the edge lists write it) -> public id
        ins: defaultdict[str, list[str]] = defaultdict(list)
        outs: dict[str, list[str]] = {}
        waiting: list[tuple[str, str]] = []  # (src, dst) whose dst had not arrived
        self.quoted, self.ins, self.outs, self.waiting = quoted, ins, outs, waiting

        # A closure over the four collections, not a method: it runs once per row, while the
        # database waits for the client to take the next ones.
        def add(row: tuple) -> tuple[str, str]:
            """A node row's share: (its id as text, its JSON object up to its in-edges)."""
            node_id, kind, object_id, ref, label, namespace, out_edges = row
            key = str(node_id)
            public_id = quoted[key] = quote(ref)
            if out_edges:
                mine = outs[key] = []
                for dst in out_edges.split(" ")[0::2]:
                    other = quoted.get(dst)
                    if other is None:
                        waiting.append((key, dst))
                        continue
                    edge = f'{{"origin":{public_id},"destination":{other}}}'
                    mine.append(edge)
                    ins[dst].append(edge)
            return key, (
                f'{{"id":{public_id},{_node_head(kind, namespace)}{object_id},'
                f'"label":{quote(label)}}},"inEdges":['
            )

        self.add = add

    def text(self, subgraph: graph.Subgraph) -> str:
        # The rows' shares: made during the walk by `add`, or here for a walk made without it.
        if self.quoted:
            prepared = subgraph.prepared
        else:
            prepared = [self.add(row) for row in subgraph.node_rows]
        quoted, ins, outs = self.quoted, self.ins, self.outs
        for src, dst in self.waiting:
            edge = f'{{"origin":{quoted[src]},"destination":{quoted[dst]}}}'
            outs.setdefault(src, []).append(edge)
            ins[dst].append(edge)
        no_edges: list[str] = []
        # Reversed: on PostgreSQL the rows come newest first; the document lists oldest first.
        parts = [
            f"{start}{','.join(ins.get(key, no_edges))}],"
            f'"outEdges":[{",".join(outs.get(key, no_edges))}]}}'
            for key, start in reversed(prepared)
        ]
        truncated = "true" if subgraph.truncated else "false"
        return f'{{"graph":[{",".join(parts)}],"truncated":{truncated}}}'


def marquez_document(subgraph: graph.Subgraph) -> str:
    """The Marquez document of a walk made without `MarquezDocument.add` as its `prepare`."""
    return MarquezDocument().text(subgraph)


def lineage_graph(request) -> HttpResponse:
    """GET /api/v1/lineage?nodeId=…&depth=…&direction=upstream|downstream|both&maxNodes=…
    &asOf=…"""
    direction = request.query_params.get("direction", "both")
    if direction not in DIRECTIONS:
        raise ParseError({"direction": "must be upstream, downstream or both"})
    depth = _int_param(request, "depth", DEFAULT_DEPTH, minimum=0, maximum=MAX_DEPTH)
    max_nodes = _int_param(
        request, "maxNodes", graph.DEFAULT_MAX_NODES, minimum=1, maximum=MAX_NODES_LIMIT
    )
    as_of = _as_of_param(request)
    projects = graph.visible_project_ids(request.user)
    starts = start_nodes(request.query_params.get("nodeId", ""), projects, as_of)
    document = MarquezDocument()
    subgraph = _query(
        DIRECTIONS[direction], starts, depth, max_nodes, projects, document.add, as_of
    )
    return HttpResponse(document.text(subgraph), content_type="application/json")


def _by_kind(subgraph: graph.Subgraph) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for node in subgraph.nodes:
        found.setdefault(node.kind, []).append(node.object_id)
    return found


def approved_at(version: ModelVersion):
    """When the version's transition into the approved stage was applied (the latest such
    transition, should it have been approved more than once); 400 if it never was."""
    applied = (
        TransitionRequest.objects.filter(
            model_version=version, status=RequestStatus.APPLIED, to_stage=Stage.APPROVED
        )
        .order_by("-decided_at")
        .values_list("decided_at", flat=True)
        .first()
    )
    if applied is None:
        raise ParseError({"asOf": f"{version} has never been approved"})
    return applied


def _start_node(record, kind: str) -> Node:
    node = Node.objects.filter(kind=kind, object_id=record.pk).first()
    if node is None:
        raise NotFound(f"{record} has no lineage node.")
    return node


@extend_schema_view(
    get=extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        parameters=UPSTREAM_PARAMETERS,
    )
)
class ModelVersionUpstreamView(APIView):
    """Everything a model version came from: the dataset versions, code versions, runs (with
    their parameters and environments) and earlier model versions upstream of it."""

    def get(self, request, pk: int):
        version = (
            ModelVersion.objects.visible_to(request.user, ProjectRight.VIEW)
            .select_related("registered_model__project")
            .filter(pk=pk)
            .first()
        )
        if version is None:
            raise NotFound("No such model version (or it is not visible to you).")
        max_nodes = _int_param(
            request, "maxNodes", graph.DEFAULT_MAX_NODES, minimum=1, maximum=MAX_NODES_LIMIT
        )
        as_of = _as_of_param(request, also=(APPROVED,))
        if as_of == APPROVED:
            as_of = approved_at(version)
        projects = graph.visible_project_ids(request.user)
        start = _start_node(version, NodeKind.MODEL_VERSION)
        if as_of is not None and start.created_at > as_of:
            raise ParseError({"asOf": f"{version} was registered after {as_of.isoformat()}"})
        subgraph = _query(graph.upstream, [start], None, max_nodes, projects, as_of=as_of)
        ids = _by_kind(subgraph)
        datasets = DatasetVersion.objects.filter(
            pk__in=ids.get(NodeKind.DATASET_VERSION, [])
        ).select_related("dataset__project")
        runs = Run.objects.filter(pk__in=ids.get(NodeKind.RUN, [])).order_by("id")
        codes = CodeVersion.objects.filter(pk__in=ids.get(NodeKind.CODE_VERSION, []))
        models = (
            ModelVersion.objects.filter(pk__in=ids.get(NodeKind.MODEL_VERSION, []))
            .exclude(pk=version.pk)
            .select_related("registered_model__project")
        )
        return Response(
            {
                "modelVersion": _model_version(version),
                "datasetVersions": [_dataset_version(d) for d in datasets],
                "codeVersions": [
                    {
                        "id": c.pk,
                        "repositoryUrl": c.repository_url,
                        "commitSha": c.commit_sha,
                        "branch": c.branch,
                        "path": c.path,
                        "dirty": c.dirty,
                    }
                    for c in codes
                ],
                "runs": [
                    {
                        "id": r.pk,
                        "name": r.name,
                        "kind": r.kind,
                        "status": r.status,
                        "codeVersion": r.code_version_id,
                        "parameters": r.parameters,
                        "environment": r.environment,
                    }
                    for r in runs
                ],
                "parameterSets": [{"run": r.pk, "parameters": r.parameters} for r in runs],
                "environments": [{"run": r.pk, "environment": r.environment} for r in runs],
                "modelVersions": [_model_version(m) for m in models],
                "truncated": subgraph.truncated,
            }
        )


@extend_schema_view(**_free_form("get"))
class DatasetVersionDownstreamView(APIView):
    """Every model version downstream of a dataset version, and whether any is in production."""

    def get(self, request, pk: int):
        dataset_version = (
            DatasetVersion.objects.visible_to(request.user, ProjectRight.VIEW)
            .select_related("dataset__project")
            .filter(pk=pk)
            .first()
        )
        if dataset_version is None:
            raise NotFound("No such dataset version (or it is not visible to you).")
        max_nodes = _int_param(
            request, "maxNodes", graph.DEFAULT_MAX_NODES, minimum=1, maximum=MAX_NODES_LIMIT
        )
        projects = graph.visible_project_ids(request.user)
        start = _start_node(dataset_version, NodeKind.DATASET_VERSION)
        subgraph = _query(graph.downstream, [start], None, max_nodes, projects)
        models = ModelVersion.objects.filter(
            pk__in=_by_kind(subgraph).get(NodeKind.MODEL_VERSION, [])
        ).select_related("registered_model__project")
        listed = [_model_version(m) for m in models]
        return Response(
            {
                "datasetVersion": _dataset_version(dataset_version),
                "modelVersions": listed,
                "anyInProduction": any(m["inProduction"] for m in listed),
                "truncated": subgraph.truncated,
            }
        )


def _model_version(version: ModelVersion) -> dict:
    model = version.registered_model
    return {
        "id": version.pk,
        "nodeId": f"model:{model.project.key}:{model.name}#{version.version}",
        "project": model.project.key,
        "model": model.name,
        "version": version.version,
        "stage": version.stage,
        "inProduction": version.stage == Stage.PRODUCTION,
    }


def _dataset_version(version: DatasetVersion) -> dict:
    dataset = version.dataset
    return {
        "id": version.pk,
        "nodeId": f"dataset:{dataset.project.key}:{dataset.name}#{version.version}",
        "project": dataset.project.key,
        "dataset": dataset.name,
        "version": version.version,
        "contentSha256": version.content_sha256,
        "uri": version.uri,
    }


@extend_schema_view(
    get=extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        parameters=[
            NODE_ID,
            DEPTH,
            MAX_NODES,
            OpenApiParameter("asOf", OpenApiTypes.DATETIME, description=AS_OF_DESCRIPTION),
        ],
    )
)
class ProvExportView(APIView):
    """GET /api/v1/lineage/prov?nodeId=…&asOf=… — the node's provenance (its upstream) as
    PROV-JSON, as it is or as it was at `asOf`."""

    def get(self, request):
        max_nodes = _int_param(
            request, "maxNodes", graph.DEFAULT_MAX_NODES, minimum=1, maximum=MAX_NODES_LIMIT
        )
        depth = _int_param(request, "depth", None, minimum=0, maximum=MAX_DEPTH)
        as_of = _as_of_param(request)
        projects = graph.visible_project_ids(request.user)
        starts = start_nodes(request.query_params.get("nodeId", ""), projects, as_of)
        subgraph = _query(graph.upstream, starts, depth, max_nodes, projects, as_of=as_of)
        document = prov.document(subgraph)
        response = HttpResponse(document, content_type="application/json")
        response["X-Lineage-Truncated"] = "true" if subgraph.truncated else "false"
        return response


@extend_schema_view(
    get=extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        parameters=LINEAGE_PARAMETERS,
    ),
    **_free_form("post"),
)
class LineageView(APIView):
    """GET: the lineage graph around a node (Marquez's shape). POST: OpenLineage RunEvents."""

    parser_classes = [OpenLineageParser]

    def get(self, request):
        return lineage_graph(request)

    def post(self, request):
        return post_events(request, batch=False)


@extend_schema_view(**_free_form("post"))
class LineageBatchView(APIView):
    """POST a JSON array of OpenLineage RunEvents, applied in one transaction."""

    parser_classes = [OpenLineageParser]

    def post(self, request):
        return post_events(request, batch=True)
