"""Node ids as Marquez and OpenLineage clients write them: job names with dots and
underscores, a job's run after `#`, OpenLineage datasets by namespace and name; 400 for what
is not a node id, 404 (the same for an invisible project as for nothing) for what names
nothing the user can see."""

import json
import uuid

import pytest

from lineage import node_ids
from lineage.node_ids import JobId, MalformedNodeId, OpenLineageDatasetId, ParsedNodeId
from lineage.openlineage import dataset_name
from registry.choices import ProjectRight
from tests import factories

pytestmark = pytest.mark.django_db

RUN_UUID = "5f0a6b7e-4b1c-4d59-8b8e-2a8f7a7f4c11"
PRODUCER = "https://github.com/example/pipeline/v1"
FACETS = "https://openlineage.io/spec/facets/1-0-0"
ORDERS = ("postgres://db:5432", "shop.public.orders")
FILE = ("s3://bucket", "path/file")


# --- reading the text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (
            "dataset:credit:raw#2",
            ParsedNodeId(
                ref="dataset:credit:raw#2",
                openlineage_dataset=OpenLineageDatasetId("credit", "raw", 2),
            ),
        ),
        (
            "dataset:credit:raw",
            ParsedNodeId(
                latest_dataset=("credit", "raw"),
                openlineage_dataset=OpenLineageDatasetId("credit", "raw"),
            ),
        ),
        ("model:credit:scorer#1", ParsedNodeId(ref="model:credit:scorer#1")),
        ("model:scorer:1", ParsedNodeId(model_short=("scorer", 1))),
        ("run:12", ParsedNodeId(ref="run:12")),
        (f"run:{RUN_UUID}", ParsedNodeId(run_uuid=uuid.UUID(RUN_UUID))),
        ("job:credit:train", ParsedNodeId(job=JobId("credit", "train"))),
        ("job:credit:daily_features", ParsedNodeId(job=JobId("credit", "daily_features"))),
        ("job:credit:etl.orders.load", ParsedNodeId(job=JobId("credit", "etl.orders.load"))),
        ("job:credit:a:b c/d", ParsedNodeId(job=JobId("credit", "a:b c/d"))),
        ("job:credit:train#3", ParsedNodeId(job=JobId("credit", "train", run_id=3))),
        (
            f"job:credit:etl.load#{RUN_UUID}",
            ParsedNodeId(job=JobId("credit", "etl.load", run_uuid=uuid.UUID(RUN_UUID))),
        ),
        (
            "dataset:postgres://db:5432:shop.public.orders",
            ParsedNodeId(openlineage_dataset=OpenLineageDatasetId(*ORDERS)),
        ),
        (
            "dataset:s3://bucket:path/file",
            ParsedNodeId(openlineage_dataset=OpenLineageDatasetId(*FILE)),
        ),
        (
            "dataset:s3://bucket:path/file#3",
            ParsedNodeId(openlineage_dataset=OpenLineageDatasetId(*FILE, 3)),
        ),
        (
            "dataset:food_delivery:public.orders",
            ParsedNodeId(
                openlineage_dataset=OpenLineageDatasetId("food_delivery", "public.orders")
            ),
        ),
        # Split as Marquez splits: not at `scheme://` nor `host:port`; later colons are the name's.
        (
            "dataset:kafka://broker:9092:topic:with:colons",
            ParsedNodeId(
                openlineage_dataset=OpenLineageDatasetId("kafka://broker:9092", "topic:with:colons")
            ),
        ),
    ],
)
def test_each_form_of_node_id_is_read(text, parsed):
    assert node_ids.parse(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "nodeId is required"),
        ("dataset:credit", "dataset id is"),
        ("dataset:postgres://db:5432", "dataset id is"),
        ("dataset:s3://bucket:file#v1", "version number"),
        ("job:credit", "job:<project>:<job name>"),
        ("job:credit:", "job:<project>:<job name>"),
        ("job:credit:#3", "job:<project>:<job name>"),
        ("job:Credit:train", "not a project key"),
        ("job:credit:train#", "not a run id"),
        ("job:credit:train#latest", "not a run id"),
        ("job:credit:" + "x" * 301, "at most 300"),
        ("model:credit:scorer", "is not a node id"),
        ("DATASET:Credit:X#1", "is not a node id"),
        ("run:abc", "is not a node id"),
    ],
)
def test_text_that_is_no_node_id_is_refused_saying_why(text, message):
    with pytest.raises(MalformedNodeId, match=message):
        node_ids.parse(text)


# --- finding the node through the API ---------------------------------------------------------


def lineage(client, node_id, **params):
    return client.get("/api/v1/lineage", {"nodeId": node_id, "depth": 0, **params})


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {node["id"] for node in response.json()["graph"]}


def not_found(response, node_id: str) -> bool:
    """The 404 of a node id that names nothing the user can see (the same whatever the
    reason: it does not exist, or it is in a project the user has no right on)."""
    return response.status_code == 404 and response.json() == {
        "detail": f"No lineage node {node_id!r} (or it is not visible to you)."
    }


def test_a_job_name_with_dots_and_underscores_names_its_latest_run(api, project, member):
    factories.run(project, member, name="etl.orders.load")
    latest = factories.run(project, member, name="etl.orders.load")
    features = factories.run(project, member, name="daily_features")
    client = api.as_user(member)
    assert ids(lineage(client, "job:credit:etl.orders.load")) == {f"run:{latest.pk}"}
    assert ids(lineage(client, "job:credit:daily_features")) == {f"run:{features.pk}"}


def test_a_run_of_a_job_is_named_after_the_hash_by_id_or_openlineage_run_id(api, project, member):
    first = factories.run(project, member, name="daily_features", external_id=RUN_UUID)
    factories.run(project, member, name="daily_features")
    client = api.as_user(member)
    assert ids(lineage(client, f"job:credit:daily_features#{first.pk}")) == {f"run:{first.pk}"}
    assert ids(lineage(client, f"job:credit:daily_features#{RUN_UUID}")) == {f"run:{first.pk}"}


def test_a_run_of_another_job_is_not_found(api, project, other_project, member, outsider):
    other_job = factories.run(project, member, name="train")
    factories.run(project, member, name="daily_features")
    same_name_elsewhere = factories.run(other_project, outsider, name="daily_features")
    client = api.as_user(member)
    for run in (other_job, same_name_elsewhere):
        node_id = f"job:credit:daily_features#{run.pk}"
        assert not_found(lineage(client, node_id), node_id)
    node_id = f"job:credit:daily_features#{uuid.uuid4()}"
    assert not_found(lineage(client, node_id), node_id)


def test_a_job_of_an_invisible_project_is_the_same_404_as_a_missing_one(
    api, project, member, outsider
):
    run = factories.run(project, member, name="etl.orders.load")
    client = api.as_user(outsider)
    for node_id in (
        "job:credit:etl.orders.load",
        f"job:credit:etl.orders.load#{run.pk}",
        "job:credit:no.such.job",
        "job:nowhere:etl.orders.load",
    ):
        assert not_found(lineage(client, node_id), node_id)


def post_event(client, namespace: str, job: str, inputs, outputs=(), version=None):
    def dataset(pair):
        facets = {}
        if version is not None:
            facets["version"] = {
                "_producer": PRODUCER,
                "_schemaURL": f"{FACETS}/DatasetVersionDatasetFacet.json",
                "datasetVersion": version,
            }
        return {"namespace": pair[0], "name": pair[1], "facets": facets}

    body = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-22T10:00:00.000Z",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": [dataset(d) for d in inputs],
        "outputs": [dataset(d) for d in outputs],
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
    }
    response = client.post("/api/v1/lineage", json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 201), response.content


def ol_ref(project_key: str, pair, version: int = 1) -> str:
    """The stored id of an OpenLineage dataset's version as Stagegate records it."""
    return f"dataset:{project_key}:{dataset_name(*pair)}#{version}"


def test_an_openlineage_dataset_is_named_by_its_namespace_and_name(api, project, member):
    client = api.as_user(member)
    post_event(client, "credit", "etl.orders.load", inputs=[ORDERS], outputs=[FILE])
    assert ids(lineage(client, "dataset:postgres://db:5432:shop.public.orders")) == {
        ol_ref("credit", ORDERS)
    }
    assert ids(lineage(client, "dataset:s3://bucket:path/file")) == {ol_ref("credit", FILE)}
    assert ids(lineage(client, "dataset:s3://bucket:path/file#1")) == {ol_ref("credit", FILE)}
    # The returned ids are the stored ones; the job is found by its OpenLineage name too.
    body = lineage(client, "job:credit:etl.orders.load", depth=1).json()
    assert {ol_ref("credit", ORDERS), ol_ref("credit", FILE)} <= {n["id"] for n in body["graph"]}


def test_an_openlineage_dataset_names_its_latest_version_in_every_project_one_can_see(
    api, project, other_project, member, outsider
):
    post_event(api.as_user(member), "credit", "load", inputs=[FILE], version="2026-11-01")
    post_event(api.as_user(member), "credit", "load", inputs=[FILE], version="2026-11-02")
    post_event(api.as_user(outsider), "secret", "load", inputs=[FILE])
    factories.grant(other_project, member, ProjectRight.VIEW)
    client = api.as_user(member)
    assert ids(lineage(client, "dataset:s3://bucket:path/file")) == {
        ol_ref("credit", FILE, version=2),
        ol_ref("secret", FILE),
    }
    assert ids(lineage(client, "dataset:s3://bucket:path/file#1")) == {
        ol_ref("credit", FILE),
        ol_ref("secret", FILE),
    }
    assert ids(lineage(api.as_user(outsider), "dataset:s3://bucket:path/file")) == {
        ol_ref("secret", FILE)
    }


def test_an_openlineage_dataset_of_an_invisible_project_is_the_same_404_as_a_missing_one(
    api, project, member, outsider
):
    post_event(api.as_user(member), "credit", "load", inputs=[ORDERS])
    client = api.as_user(outsider)
    for node_id in (
        "dataset:postgres://db:5432:shop.public.orders",
        "dataset:postgres://db:5432:shop.public.orders#1",
        "dataset:postgres://db:5432:shop.public.missing",
        f"dataset:credit:{dataset_name(*ORDERS)}",
    ):
        assert not_found(lineage(client, node_id), node_id)


def test_stagegate_dataset_ids_are_read_first_then_as_openlineage(api, project, member):
    # Stagegate's dataset `orders` and the OpenLineage dataset `orders` of namespace `credit`
    # share the text dataset:credit:orders; Stagegate's is meant.
    mine = factories.dataset_version(project, member, name="orders")
    client = api.as_user(member)
    post_event(client, "credit", "load", inputs=[("credit", "orders"), ("warehouse", "sales")])
    assert ids(lineage(client, "dataset:credit:orders")) == {
        f"dataset:credit:orders#{mine.version}"
    }
    assert ids(lineage(client, "dataset:credit:orders#1")) == {"dataset:credit:orders#1"}
    # No Stagegate dataset `sales` in a project `warehouse`: the OpenLineage one.
    assert ids(lineage(client, "dataset:warehouse:sales")) == {
        ol_ref("credit", ("warehouse", "sales"))
    }


@pytest.mark.parametrize(
    "node_id",
    [
        "dataset:credit",
        "dataset:postgres://db:5432",
        "dataset:s3://bucket:path/file#latest",
        "job:credit:",
        "job:Credit:train",
        "job:credit:train#x",
    ],
)
def test_malformed_ids_are_400_naming_the_parameter(api, project, member, node_id):
    response = lineage(api.as_user(member), node_id)
    assert response.status_code == 400
    assert set(response.json()) == {"nodeId"}
