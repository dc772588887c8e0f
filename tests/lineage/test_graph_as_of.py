"""The lineage graph as it was (`asOf`): nodes and edges are only ever added, so the graph at a
past time is the nodes and edges created by then; a model version's upstream as it was
approved stays answerable after its training run gains inputs."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from governance import transitions
from governance.choices import AuditAction, RequestStatus
from governance.models import AuditEvent, TransitionRequest
from lineage import graph, services
from lineage.choices import EdgeKind
from lineage.models import Edge
from lineage.recording import node_of
from tests import factories
from tests.factories import PASSWORD
from tests.governance.test_monitoring import minimal_project, move, validated_version
from tests.lineage.test_graph import build_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(project, member):
    return build_pipeline(project, member)


def lineage(client, node_id, **params):
    return client.get("/api/v1/lineage", {"nodeId": node_id, **params})


def graph_of(response) -> tuple[set, set]:
    """The node ids and the edges of a Marquez document."""
    assert response.status_code == 200, response.content
    nodes = response.json()["graph"]
    edges = {(e["origin"], e["destination"]) for n in nodes for e in n["outEdges"]}
    return {n["id"] for n in nodes}, edges


def grow(pipeline, project, member):
    """After the fact: the training run gains inputs (new dataset versions, one of them a new
    version of features, and the raw data that was already upstream of it)."""
    extra = factories.dataset_version(project, member, name="extra", split="train")
    features_v2 = factories.dataset_version(project, member, name="features", split="train")
    services.update_run(
        pipeline.train, actor=member, input_datasets=[extra, features_v2, pipeline.raw]
    )


@pytest.mark.parametrize(
    "params",
    [
        {"direction": "upstream"},
        {"direction": "both"},
        {"direction": "both", "depth": 2},
        {"direction": "upstream", "maxNodes": 5},
    ],
)
def test_as_of_answers_the_graph_as_it_was_then(api, pipeline, project, member, params):
    client = api.as_user(member)
    before = graph_of(lineage(client, "model:credit:scorer#1", **params))
    then = timezone.now()
    grow(pipeline, project, member)
    now = graph_of(lineage(client, "model:credit:scorer#1", **params))
    assert now != before
    as_of = graph_of(lineage(client, "model:credit:scorer#1", asOf=then.isoformat(), **params))
    assert as_of == before


def test_the_walk_keeps_to_nodes_and_edges_made_by_then(project, member):
    # Old nodes, a newer one, and edges stamped before and after; even an edge stamped
    # before its newer end (which the actions never make) does not lead to it.
    then = timezone.now() - timedelta(minutes=5)

    def version_node():
        return node_of(factories.dataset_version(project, member))

    with clock_at(then - timedelta(minutes=1)):
        old = version_node()
    new = version_node()
    with clock_at(then - timedelta(minutes=1)):
        later, spare = version_node(), version_node()
    for dst in (new, later):
        link_at(old, dst, then - timedelta(seconds=30))
    link_at(later, new, then + timedelta(seconds=30))
    link_at(old, later, then + timedelta(seconds=30), kind=EdgeKind.USED)
    link_at(old, spare, then + timedelta(seconds=30))
    found = graph.downstream([old.pk], as_of=then)
    assert {node.id for node in found.nodes} == {old.pk, later.pk}
    assert found.edges == [(old.pk, later.pk, EdgeKind.DERIVED)]
    assert graph.upstream([new.pk], as_of=then).nodes == []
    assert len(graph.downstream([old.pk]).edges) == 5


def clock_at(when):
    """Records made in the block are stamped `when`: nodes and edges are never re-stamped
    (lineage/append_only.py), so a test makes them at the time it needs."""
    return mock.patch("django.utils.timezone.now", return_value=when)


def link_at(src, dst, when, kind=EdgeKind.DERIVED):
    with clock_at(when):
        Edge.objects.create(
            src=src,
            dst=dst,
            kind=kind,
            src_project_id=src.project_id,
            dst_project_id=dst.project_id,
        )


def test_as_of_reads_a_latest_version_or_run_as_the_latest_then(api, pipeline, project, member):
    client = api.as_user(member)
    then = timezone.now()
    grow(pipeline, project, member)
    later_run = factories.run(project, member, name="train")
    upstream = {"direction": "upstream", "depth": 0}
    assert graph_of(lineage(client, "dataset:credit:features", **upstream))[0] == {
        "dataset:credit:features#2"
    }
    assert graph_of(lineage(client, "dataset:credit:features", asOf=then.isoformat(), **upstream))[
        0
    ] == {"dataset:credit:features#1"}
    assert graph_of(lineage(client, "job:credit:train", **upstream))[0] == {f"run:{later_run.pk}"}
    assert graph_of(lineage(client, "job:credit:train", asOf=then.isoformat(), **upstream))[0] == {
        f"run:{pipeline.train.pk}"
    }


def test_a_node_made_after_as_of_is_not_found_then(api, pipeline, project, member):
    then = timezone.now()
    factories.dataset_version(project, member, name="late")
    response = lineage(api.as_user(member), "dataset:credit:late#1", asOf=then.isoformat())
    assert response.status_code == 404


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-03-01", "2026-03-01T12:00:00", "2026-13-01T00:00:00Z", "approved"],
)
def test_a_bad_as_of_is_400_saying_what_is_expected(api, pipeline, member, value):
    response = lineage(api.as_user(member), "model:credit:scorer#1", asOf=value)
    assert response.status_code == 400
    assert "ISO 8601 date-time with a time zone" in response.json()["asOf"]


# --- a model version's upstream as it was approved --------------------------------------------


@pytest.fixture
def shop(owner, member, reviewer, compliance, auditor):
    return minimal_project(owner, member, reviewer, compliance, auditor)


def upstream(client, version, **params):
    response = client.get(f"/api/v1/model-versions/{version.pk}/upstream", params)
    assert response.status_code == 200, response.content
    return response.json()


def lineage_of(body) -> dict:
    """The upstream answer without the version itself (whose stage is today's)."""
    return {key: value for key, value in body.items() if key != "modelVersion"}


def datasets(body) -> set[tuple[str, int]]:
    return {(d["dataset"], d["version"]) for d in body["datasetVersions"]}


def test_upstream_as_approved_is_the_lineage_the_approval_saw(
    api, shop, owner, reviewer, member, django_assert_max_num_queries
):
    version = validated_version(shop, owner)
    move(version, "validation", owner=owner, reviewer=reviewer)
    # Between validation and approval the run gains an input: the approval saw it.
    lookup = factories.dataset_version(shop, owner, name="lookup", split="train")
    services.update_run(version.run, actor=owner, input_datasets=[lookup])
    move(version, "approved", owner=owner, reviewer=reviewer)
    approval = TransitionRequest.objects.get(model_version=version, to_stage="approved")
    assert approval.status == RequestStatus.APPLIED
    assert AuditEvent.objects.filter(
        action=AuditAction.TRANSITION_APPLIED, object_id=str(approval.pk)
    ).exists()
    client = api.as_user(member)
    at_approval = upstream(client, version)
    assert datasets(at_approval) == {("training", 1), ("lookup", 1)}

    # After the approval its training run gains an input: a new version of its training data.
    newer = factories.dataset_version(shop, owner, name="training", split="train")
    services.update_run(version.run, actor=owner, input_datasets=[newer])
    move(version, "production", owner=owner, reviewer=reviewer)  # a later transition

    assert datasets(upstream(client, version)) == {
        ("training", 1),
        ("lookup", 1),
        ("training", 2),
    }
    with django_assert_max_num_queries(13):
        as_approved = upstream(client, version, asOf="approved")
    assert lineage_of(as_approved) == lineage_of(at_approval)
    when = approval.decided_at.isoformat()
    assert lineage_of(upstream(client, version, asOf=when)) == lineage_of(at_approval)


def test_upstream_as_approved_of_a_version_never_approved_is_400(
    api, shop, owner, reviewer, member
):
    # Validated (a transition applied), refused approval once (a request decided, not
    # applied), and asked again (a request pending).
    version = validated_version(shop, owner)
    move(version, "validation", owner=owner, reviewer=reviewer)
    refused = transitions.request_transition(
        version, "approved", actor=owner, justification="ready"
    )
    transitions.sign(
        refused, signer=reviewer, meaning="rejected", password=PASSWORD, comment="not yet"
    )
    transitions.request_transition(version, "approved", actor=owner, justification="now ready")
    response = api.as_user(member).get(
        f"/api/v1/model-versions/{version.pk}/upstream", {"asOf": "approved"}
    )
    assert response.status_code == 400
    assert response.json() == {"asOf": f"{version} has never been approved"}


def test_upstream_as_of_before_the_version_was_registered_is_400(api, pipeline, member):
    response = api.as_user(member).get(
        f"/api/v1/model-versions/{pipeline.v1.pk}/upstream", {"asOf": "2020-01-01T00:00:00Z"}
    )
    assert response.status_code == 400
    assert "was registered after" in response.json()["asOf"]


@pytest.mark.parametrize("value", ["approval", "2026-03-01T12:00:00"])
def test_upstream_with_a_bad_as_of_is_400(api, pipeline, member, value):
    response = api.as_user(member).get(
        f"/api/v1/model-versions/{pipeline.v1.pk}/upstream", {"asOf": value}
    )
    assert response.status_code == 400
    assert "or 'approved'" in response.json()["asOf"]


def test_prov_export_as_of_is_the_provenance_as_it_was_then(api, pipeline, project, member):
    client = api.as_user(member)

    def entities(**params) -> set[str]:
        response = client.get("/api/v1/lineage/prov", {"nodeId": "model:credit:scorer#1", **params})
        assert response.status_code == 200, response.content
        return set(response.json()["entity"])

    before = entities()
    then = timezone.now()
    grow(pipeline, project, member)
    assert entities() != before
    assert entities(asOf=then.isoformat()) == before
    bad = client.get("/api/v1/lineage/prov", {"nodeId": "model:credit:scorer#1", "asOf": "soon"})
    assert bad.status_code == 400 and "asOf" in bad.json()
