"""The lineage graph API: Marquez's shape, node ids, bad input, rights, convenience endpoints."""

import pytest
from django.db import transaction

from registry.choices import Stage
from registry.stage_guard import moving_stage
from tests import factories
from tests.lineage.test_graph import build_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(project, member):
    return build_pipeline(project, member)


def lineage(client, node_id, **params):
    return client.get("/api/v1/lineage", {"nodeId": node_id, **params})


def by_id(body):
    return {node["id"]: node for node in body["graph"]}


def test_upstream_graph_has_marquez_shape(api, pipeline, member):
    response = lineage(api.as_user(member), "model:credit:scorer#1", direction="upstream")
    assert response.status_code == 200
    nodes = by_id(response.json())
    model = nodes["model:credit:scorer#1"]
    assert model["type"] == "MODEL"
    assert model["data"]["namespace"] == "credit"
    assert model["inEdges"] == [
        {
            "origin": f"run:{pipeline.train.pk}",
            "destination": "model:credit:scorer#1",
        }
    ]
    assert model["outEdges"] == []
    assert nodes["dataset:credit:raw#1"]["type"] == "DATASET"
    assert nodes[f"run:{pipeline.train.pk}"]["type"] == "RUN"
    assert nodes[f"code:{pipeline.code.pk}"]["type"] == "CODE"
    assert set(nodes) == {
        "model:credit:scorer#1",
        f"run:{pipeline.train.pk}",
        "dataset:credit:features#1",
        f"run:{pipeline.prepare.pk}",
        "dataset:credit:raw#1",
        f"code:{pipeline.code.pk}",
    }
    assert response.json()["truncated"] is False


def test_downstream_graph_and_depth(api, pipeline, member):
    client = api.as_user(member)
    body = lineage(client, "dataset:credit:features#1", direction="downstream").json()
    assert "model:credit:scorer#2" in by_id(body)
    body = lineage(client, "dataset:credit:features#1", direction="downstream", depth=1).json()
    assert set(by_id(body)) == {"dataset:credit:features#1", f"run:{pipeline.train.pk}"}


def test_both_is_the_default_direction(api, pipeline, member):
    nodes = by_id(lineage(api.as_user(member), "dataset:credit:features#1").json())
    assert {"dataset:credit:raw#1", "model:credit:scorer#2"} <= set(nodes)


@pytest.mark.parametrize(
    "node_id",
    [
        "dataset:credit:features",  # latest version
        "model:scorer:1",  # short model form
        "job:credit:train",  # latest run of the job
        "job:credit:train#{train}",  # that run of the job
    ],
)
def test_other_forms_of_node_id_are_resolved(api, pipeline, member, node_id):
    node_id = node_id.format(train=pipeline.train.pk)
    response = lineage(api.as_user(member), node_id, direction="upstream", depth=0)
    assert response.status_code == 200
    assert len(response.json()["graph"]) == 1


def test_a_run_of_another_job_is_404(api, pipeline, member):
    node_id = f"job:credit:train#{pipeline.prepare.pk}"
    assert lineage(api.as_user(member), node_id).status_code == 404


def test_run_can_be_named_by_its_openlineage_uuid(api, project, member):
    run = factories.run(project, member, external_id="5f0a6b7e-4b1c-4d59-8b8e-2a8f7a7f4c11")
    body = lineage(api.as_user(member), "run:5f0a6b7e-4b1c-4d59-8b8e-2a8f7a7f4c11", depth=0).json()
    assert [node["id"] for node in body["graph"]] == [f"run:{run.pk}"]


def test_max_nodes_truncates(api, pipeline, member):
    body = lineage(api.as_user(member), "model:credit:scorer#1", maxNodes=2).json()
    assert body["truncated"] is True
    assert len(body["graph"]) == 2


def test_unknown_node_is_404(api, pipeline, member):
    assert lineage(api.as_user(member), "dataset:credit:nothing#1").status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"nodeId": "dataset:credit"},
        {"nodeId": "DATASET:Credit:X#1"},
        {"nodeId": "job:credit:train#three"},
        {"nodeId": ""},
        {"nodeId": "dataset:credit:raw#1", "depth": "deep"},
        {"nodeId": "dataset:credit:raw#1", "depth": "-1"},
        {"nodeId": "dataset:credit:raw#1", "direction": "sideways"},
        {"nodeId": "dataset:credit:raw#1", "maxNodes": "0"},
    ],
)
def test_malformed_input_is_400_with_a_message(api, pipeline, member, params):
    response = api.as_user(member).get("/api/v1/lineage", params)
    assert response.status_code == 400
    assert response.json()


def test_outsider_gets_404_for_a_node_of_an_invisible_project(api, pipeline, outsider):
    assert lineage(api.as_user(outsider), "dataset:credit:raw#1").status_code == 404
    assert lineage(api.as_user(outsider), "model:scorer:1").status_code == 404


def test_anonymous_gets_401(api, pipeline):
    assert lineage(api, "dataset:credit:raw#1").status_code == 401


def test_graph_costs_a_constant_number_of_queries(
    api, pipeline, project, member, django_assert_max_num_queries
):
    client = api.as_user(member)
    for _ in range(5):
        factories.run(project, member, inputs=[pipeline.raw])
    with django_assert_max_num_queries(8):
        response = lineage(client, "dataset:credit:raw#1")
    assert len(response.json()["graph"]) > 10


def test_model_version_upstream_lists_data_code_parameters_environment(
    api, pipeline, member, django_assert_max_num_queries
):
    client = api.as_user(member)
    with django_assert_max_num_queries(12):
        response = client.get(f"/api/v1/model-versions/{pipeline.v2.pk}/upstream")
    assert response.status_code == 200
    body = response.json()
    assert {(d["dataset"], d["version"]) for d in body["datasetVersions"]} == {
        ("raw", 1),
        ("features", 1),
    }
    assert [c["commitSha"] for c in body["codeVersions"]] == ["a" * 40]
    assert {r["id"] for r in body["runs"]} == {pipeline.prepare.pk, pipeline.train.pk}
    assert {"run": pipeline.train.pk, "parameters": {"max_depth": 6}} in body["parameterSets"]
    assert {"run": pipeline.train.pk, "environment": {"python": "3.11.7"}} in body["environments"]
    assert [m["nodeId"] for m in body["modelVersions"]] == ["model:credit:scorer#1"]
    assert body["modelVersion"]["nodeId"] == "model:credit:scorer#2"


def test_dataset_version_downstream_says_whether_a_model_is_in_production(
    api, pipeline, member, django_assert_max_num_queries
):
    client = api.as_user(member)
    url = f"/api/v1/dataset-versions/{pipeline.raw.pk}/downstream"
    body = client.get(url).json()
    assert {m["nodeId"] for m in body["modelVersions"]} == {
        "model:credit:scorer#1",
        "model:credit:scorer#2",
    }
    assert body["anyInProduction"] is False
    # Stand-in for the governance transition that alone may move a stage.
    pipeline.v2.stage = Stage.PRODUCTION
    with transaction.atomic(), moving_stage(pipeline.v2):
        pipeline.v2.save()
    with django_assert_max_num_queries(10):
        body = client.get(url).json()
    assert body["anyInProduction"] is True
    assert {m["nodeId"]: m["inProduction"] for m in body["modelVersions"]} == {
        "model:credit:scorer#1": False,
        "model:credit:scorer#2": True,
    }


def test_outsider_gets_404_for_convenience_endpoints(api, pipeline, outsider):
    client = api.as_user(outsider)
    assert client.get(f"/api/v1/model-versions/{pipeline.v1.pk}/upstream").status_code == 404
    url = f"/api/v1/dataset-versions/{pipeline.raw.pk}/downstream"
    assert client.get(url).status_code == 404


def test_labels_with_quotes_and_unicode_stay_valid_json(api, project, member):
    run = factories.run(project, member, name='daily "features" ✓ \\ back')
    body = lineage(api.as_user(member), f"run:{run.pk}").json()
    assert body["graph"][0]["data"]["label"] == f'daily "features" ✓ \\ back #{run.pk}'


def test_every_edge_is_listed_on_both_its_nodes_whichever_is_older(api, pipeline, member):
    """The rows come newest first and an edge is written when its source's row arrives; an
    edge into an older node (here a dataset version registered after the run that used it)
    waits for the last row, and is listed on both nodes all the same."""
    from lineage import graph
    from lineage.recording import link, node_of

    late = factories.dataset_version(pipeline.train.project, member, name="late", split="train")
    link(late, pipeline.train)
    assert node_of(late).pk > node_of(pipeline.train).pk
    start = node_of(pipeline.train)
    body = lineage(api.as_user(member), start.ref, direction="both", depth=20).json()
    nodes = by_id(body)
    edge = {"origin": node_of(late).ref, "destination": f"run:{pipeline.train.pk}"}
    assert edge in nodes[node_of(late).ref]["outEdges"]
    assert edge in nodes[f"run:{pipeline.train.pk}"]["inEdges"]
    # The document's edges, from either end, are exactly the walk's.
    walk = graph.both([start.pk], depth=20)
    refs = {node.id: node.ref for node in walk.nodes}
    expected = sorted((refs[src], refs[dst]) for src, dst, _ in walk.edges)
    outs = sorted((e["origin"], e["destination"]) for n in body["graph"] for e in n["outEdges"])
    ins = sorted((e["origin"], e["destination"]) for n in body["graph"] for e in n["inEdges"])
    assert outs == ins == expected


def test_the_document_is_the_same_whether_nodes_are_prepared_during_the_walk_or_after(pipeline):
    import json

    from lineage import graph
    from lineage.api.graph_views import MarquezDocument, marquez_document
    from lineage.models import Node

    start = Node.objects.get(ref="dataset:credit:raw#1").pk
    seen = []
    writer = MarquezDocument()

    def prepare(row):
        seen.append(row)
        return writer.add(row)

    streamed = graph.both([start], prepare=prepare)
    plain = graph.both([start])
    assert streamed.prepared and seen == streamed.node_rows == plain.node_rows
    assert plain.prepared == []
    document = writer.text(streamed)
    assert document == marquez_document(plain)
    graph_nodes = json.loads(document)["graph"]
    assert len(graph_nodes) == len(plain.node_rows)
    assert sum(len(node["outEdges"]) for node in graph_nodes) == len(plain.edges)
