"""The lineage graph queries (lineage.graph): direction, depth, max_nodes, and rights."""

from dataclasses import dataclass

import pytest

from lineage import graph
from lineage.choices import EdgeKind
from lineage.models import Edge, Node
from lineage.recording import node_of
from tests import factories

pytestmark = pytest.mark.django_db


@dataclass
class Pipeline:
    """raw → prepare (code) → features → train (code) → scorer v1 → scorer v2; v1 evaluated
    on holdout."""

    raw: object
    prepare: object
    features: object
    train: object
    holdout: object
    code: object
    v1: object
    v2: object
    evaluation: object


def build_pipeline(project, actor) -> Pipeline:
    code = factories.code_version(project, actor, commit="a" * 40)
    raw = factories.dataset_version(project, actor, name="raw", split="train")
    prepare = factories.run(project, actor, inputs=[raw], code=code, name="prepare")
    features = factories.dataset_version(project, actor, name="features", split="train")
    from lineage import services

    services.update_run(prepare, actor=actor, output_datasets=[features], status="completed")
    train = factories.run(project, actor, inputs=[features], code=code, parameters={"max_depth": 6})
    model = factories.registered_model(project, actor, name="scorer")
    v1 = factories.model_version(model, actor, run=train)
    v2 = factories.model_version(model, actor, derived_from=v1)
    holdout = factories.dataset_version(project, actor, name="holdout", split="test")
    from registry import services as registry_services

    evaluation = registry_services.record_evaluation(
        v1, holdout, actor=actor, metrics={"accuracy": 0.9}
    )
    return Pipeline(raw, prepare, features, train, holdout, code, v1, v2, evaluation)


@pytest.fixture
def pipeline(project, member):
    return build_pipeline(project, member)


def refs(subgraph) -> set[str]:
    return {node.ref for node in subgraph.nodes}


def node_ids(*records) -> list[int]:
    return [node_of(record).pk for record in records]


def test_upstream_of_model_version_reaches_data_code_and_runs(pipeline):
    found = graph.upstream(node_ids(pipeline.v1))
    assert refs(found) == {
        "model:credit:scorer#1",
        f"run:{pipeline.train.pk}",
        "dataset:credit:features#1",
        f"run:{pipeline.prepare.pk}",
        "dataset:credit:raw#1",
        f"code:{pipeline.code.pk}",
    }
    assert not found.truncated


def test_upstream_returns_the_edges_between_the_nodes_found(pipeline):
    found = graph.upstream(node_ids(pipeline.v1))
    by_id = {node.id: node.ref for node in found.nodes}
    edges = {(by_id[src], by_id[dst], kind) for src, dst, kind in found.edges}
    assert (f"run:{pipeline.train.pk}", "model:credit:scorer#1", EdgeKind.GENERATED) in edges
    assert (f"code:{pipeline.code.pk}", f"run:{pipeline.prepare.pk}", EdgeKind.CODE) in edges
    assert len(edges) == 6


def test_downstream_of_raw_data_reaches_every_model_version(pipeline):
    found = graph.downstream(node_ids(pipeline.raw))
    assert {"model:credit:scorer#1", "model:credit:scorer#2"} <= refs(found)
    assert f"evaluation:{pipeline.evaluation.pk}" in refs(found)
    assert "dataset:credit:holdout#1" not in refs(found)


def test_depth_bounds_the_number_of_hops(pipeline):
    assert refs(graph.upstream(node_ids(pipeline.v1), depth=0)) == {"model:credit:scorer#1"}
    assert refs(graph.upstream(node_ids(pipeline.v1), depth=2)) == {
        "model:credit:scorer#1",
        f"run:{pipeline.train.pk}",
        "dataset:credit:features#1",
        f"code:{pipeline.code.pk}",
    }


def test_depth_counts_the_shortest_path(project, member):
    # a → b → c → d and a → d: a is one hop upstream of d (as c is), b is two.
    a, b, c, d = (factories.dataset_version(project, member, name=n * 2) for n in "abcd")
    from lineage.recording import link

    link(a, b, EdgeKind.DERIVED)
    link(b, c, EdgeKind.DERIVED)
    link(c, d, EdgeKind.DERIVED)
    link(a, d, EdgeKind.DERIVED)
    assert refs(graph.upstream(node_ids(d), depth=1)) == {
        "dataset:credit:dd#1",
        "dataset:credit:cc#1",
        "dataset:credit:aa#1",
    }


def test_both_directions_join_ancestors_and_descendants(pipeline):
    found = graph.both(node_ids(pipeline.features))
    assert {"dataset:credit:raw#1", "model:credit:scorer#2"} <= refs(found)
    assert "dataset:credit:holdout#1" not in refs(found)


def test_max_nodes_truncates_keeping_the_nearest_nodes(project, member):
    hub = factories.dataset_version(project, member, name="hub")
    for _ in range(6):
        factories.run(project, member, inputs=[hub])
    found = graph.downstream(node_ids(hub), max_nodes=4)
    assert found.truncated
    assert len(found.nodes) == 4
    assert "dataset:credit:hub#1" in refs(found)


def test_a_depth_bound_walk_that_fits_is_not_truncated(project, member):
    # 3 runs read the hub; each writes a dataset: depth 1 is 4 nodes, depth 2 is 7.
    hub = factories.dataset_version(project, member, name="hub")
    from lineage import services

    for i in range(3):
        out = factories.dataset_version(project, member, name=f"out-{i}")
        services.create_run(
            project, actor=member, name="r", input_datasets=[hub], output_datasets=[out]
        )
    assert not graph.downstream(node_ids(hub), depth=1, max_nodes=5).truncated
    assert graph.downstream(node_ids(hub), depth=2, max_nodes=5).truncated


def test_nodes_of_invisible_projects_are_absent(pipeline, project, other_project, outsider):
    assert graph.upstream(node_ids(pipeline.v1), projects=[other_project.pk]).nodes == []


def test_walk_does_not_pass_through_an_invisible_project(project, other_project, member, outsider):
    # visible a → secret x → visible b: seen from b, neither x nor a (reached only via x) exists.
    a = node_of(factories.dataset_version(project, member, name="aa"))
    x = node_of(factories.dataset_version(other_project, outsider, name="xx"))
    b = node_of(factories.dataset_version(project, member, name="bb"))
    for src, dst in ((a, x), (x, b)):
        Edge.objects.create(
            src=src,
            dst=dst,
            kind=EdgeKind.DERIVED,
            src_project_id=src.project_id,
            dst_project_id=dst.project_id,
        )
    visible = graph.visible_project_ids(member)
    assert refs(graph.upstream([b.pk], projects=visible)) == {"dataset:credit:bb#1"}
    assert refs(graph.downstream([a.pk], projects=visible)) == {"dataset:credit:aa#1"}
    assert len(graph.upstream([b.pk]).nodes) == 3  # the walk for everyone goes through


def test_visible_project_ids_of_member_are_the_projects_they_may_view(
    project, other_project, member
):
    assert graph.visible_project_ids(member) == [project.pk]


def test_every_node_has_its_public_id(pipeline):
    assert Node.objects.get(ref="dataset:credit:raw#1").object_id == pipeline.raw.pk
    assert Node.objects.get(ref=f"run:{pipeline.train.pk}").object_id == pipeline.train.pk


@pytest.mark.parametrize("walk", [graph.upstream, graph.downstream, graph.both])
@pytest.mark.parametrize("max_nodes", [3, 100])
def test_a_depth_that_cannot_bind_answers_like_no_depth(pipeline, walk, max_nodes):
    # No depth, or one of max_nodes or more, is the plain walk; a depth smaller than
    # max_nodes that still reaches everything is the walk filtered by distance.
    start = node_ids(pipeline.features)
    answers = [walk(start, depth, max_nodes) for depth in (None, max_nodes, 2 * max_nodes)]
    if max_nodes == 100:
        answers.append(walk(start, 50, max_nodes))
    first = answers[0]
    for answer in answers[1:]:
        assert refs(answer) == refs(first)
        assert sorted(answer.edges) == sorted(first.edges)
        assert answer.truncated == first.truncated
    assert first.truncated is (max_nodes == 3)
    assert len(first.nodes) <= max_nodes
