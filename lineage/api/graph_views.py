"""Lineage graph endpoints: the Marquez-shaped graph, a model version's full upstream, a dataset
version's downstream models, and the PROV-JSON export. Each is a few constant queries: the
visible projects, the start node, one graph statement (lineage.graph), and one per record kind.
"""

from collections import defaultdict
from functools import lru_cache
from json.encoder import encode_basestring_ascii as quote

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.response import Response
from rest_framework.views import APIView

from lineage import graph, node_ids, prov
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


def _int_param(request, name: str, default, *, minimum: int, maximum: int):
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParseError({name: f"must be a whole number, not {raw!r}"}) from None
    if not minimum <= value <= maximum:
        raise ParseError({name: f"must be between {minimum} and {maximum}"})
    return value


def resolve_node(text: str, projects) -> Node:
    """The node a public node id names, among the given projects' nodes (404 otherwise)."""
    try:
        parsed = node_ids.parse(text)
    except node_ids.MalformedNodeId as exc:
        raise ParseError({"nodeId": str(exc)}) from None
    nodes = Node.objects.all()
    if projects is not None:
        nodes = nodes.filter(project_id__in=projects)
    if parsed.ref is not None:
        node = nodes.filter(ref=parsed.ref).first()
    elif parsed.run_uuid is not None:
        node = nodes.filter(
            kind=NodeKind.RUN,
            object_id__in=Run.objects.filter(external_id=parsed.run_uuid).values("pk"),
        ).first()
    elif parsed.latest_dataset is not None:
        project_key, name = parsed.latest_dataset
        latest = DatasetVersion.objects.filter(
            dataset__project__key=project_key, dataset__name=name
        ).order_by("-version")
        node = nodes.filter(
            kind=NodeKind.DATASET_VERSION, object_id__in=latest.values("pk")[:1]
        ).first()
    elif parsed.latest_job is not None:
        project_key, name = parsed.latest_job
        latest = Run.objects.filter(project__key=project_key, name=name).order_by("-id")
        node = nodes.filter(kind=NodeKind.RUN, object_id__in=latest.values("pk")[:1]).first()
    else:
        assert parsed.model_short is not None  # parse() fills exactly one way of finding it
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
            raise ParseError(
                {"nodeId": f"model {name!r} exists in several projects; use model:<project>:"}
            )
        node = found[0] if found else None
    if node is None:
        raise NotFound(f"No lineage node {text!r} (or it is not visible to you).")
    return node


def _query(function, start: Node, depth, max_nodes, projects, prepare=None) -> graph.Subgraph:
    try:
        return function([start.pk], depth, max_nodes, projects=projects, prepare=prepare)
    except graph.LineageQueryTimeout:
        raise ServiceUnavailable() from None


# These views answer in shapes fixed by outside standards (Marquez's lineage graph, OpenLineage
# events, W3C PROV-JSON), described in their docstrings rather than by a serializer.
def _free_form(*methods: str) -> dict:
    return {
        m: extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
        for m in methods
    }


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
    """GET /api/v1/lineage?nodeId=…&depth=…&direction=upstream|downstream|both&maxNodes=…"""
    direction = request.query_params.get("direction", "both")
    if direction not in DIRECTIONS:
        raise ParseError({"direction": "must be upstream, downstream or both"})
    depth = _int_param(request, "depth", DEFAULT_DEPTH, minimum=0, maximum=MAX_DEPTH)
    max_nodes = _int_param(
        request, "maxNodes", graph.DEFAULT_MAX_NODES, minimum=1, maximum=MAX_NODES_LIMIT
    )
    projects = graph.visible_project_ids(request.user)
    start = resolve_node(request.query_params.get("nodeId", ""), projects)
    document = MarquezDocument()
    subgraph = _query(DIRECTIONS[direction], start, depth, max_nodes, projects, document.add)
    return HttpResponse(document.text(subgraph), content_type="application/json")


def _by_kind(subgraph: graph.Subgraph) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for node in subgraph.nodes:
        found.setdefault(node.kind, []).append(node.object_id)
    return found


def _start_node(record, kind: str) -> Node:
    node = Node.objects.filter(kind=kind, object_id=record.pk).first()
    if node is None:
        raise NotFound(f"{record} has no lineage node.")
    return node


@extend_schema_view(**_free_form("get"))
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
        projects = graph.visible_project_ids(request.user)
        start = _start_node(version, NodeKind.MODEL_VERSION)
        subgraph = _query(graph.upstream, start, None, max_nodes, projects)
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
        subgraph = _query(graph.downstream, start, None, max_nodes, projects)
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


@extend_schema_view(**_free_form("get"))
class ProvExportView(APIView):
    """GET /api/v1/lineage/prov?nodeId=… — the node's provenance (its upstream) as PROV-JSON."""

    def get(self, request):
        max_nodes = _int_param(
            request, "maxNodes", graph.DEFAULT_MAX_NODES, minimum=1, maximum=MAX_NODES_LIMIT
        )
        depth = _int_param(request, "depth", None, minimum=0, maximum=MAX_DEPTH)
        projects = graph.visible_project_ids(request.user)
        start = resolve_node(request.query_params.get("nodeId", ""), projects)
        subgraph = _query(graph.upstream, start, depth, max_nodes, projects)
        document = prov.document(subgraph)
        response = HttpResponse(document, content_type="application/json")
        response["X-Lineage-Truncated"] = "true" if subgraph.truncated else "false"
        return response


@extend_schema_view(**_free_form("get", "post"))
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
