"""The lineage graph is append-only (issue 5: immutable version-level nodes and an append-only
edge table; history is kept, nothing is rewritten).

The database refuses UPDATE and DELETE of nodes and edges, and TRUNCATE on PostgreSQL
(lineage/append_only.py; run this file on both); the ORM's ways to change or delete them are
refused in Python first, with a clearer message; the actions that add to the graph still work.
The application role's missing rights on both tables: tests/governance/test_audit_role.py.
"""

import uuid

import pytest
from django.db import DatabaseError, connection, models, transaction

from lineage import services
from lineage.append_only import REFUSAL
from lineage.choices import EdgeKind, NodeKind
from lineage.models import Edge, LineageRewriteRefused, Node, Run
from lineage.recording import node_of
from registry.insert_only import InsertOnlyWrites
from tests import factories
from tests.governance.builders import version_with_evidence
from tests.lineage.test_graph import build_pipeline
from tests.lineage.test_openlineage import ORDERS, event, post, table

pytestmark = pytest.mark.django_db
NODE, EDGE = Node._meta.db_table, Edge._meta.db_table


@pytest.fixture
def pipeline(project, member):
    return build_pipeline(project, member)


def execute(sql: str) -> None:
    # In a savepoint, so that a refused statement leaves the test's transaction usable.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def graph_rows() -> tuple[list[dict], list[dict]]:
    """Every node and every edge, column by column, in the order they were added."""
    return (
        list(Node.objects.order_by("pk").values()),
        list(Edge.objects.order_by("pk").values()),
    )


def added_since(before) -> tuple[list[dict], list[dict]]:
    """The nodes and edges added since `before`, after checking the earlier ones are intact."""
    nodes, edges = graph_rows()
    assert nodes[: len(before[0])] == before[0]
    assert edges[: len(before[1])] == before[1]
    return nodes[len(before[0]) :], edges[len(before[1]) :]


# --- The database refuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {NODE} SET label = 'rewritten'",
        f"UPDATE {NODE} SET created_at = created_at",  # even a write that changes nothing
        f"DELETE FROM {NODE}",
        f"UPDATE {EDGE} SET kind = '{EdgeKind.DERIVED}'",
        f"DELETE FROM {EDGE}",
    ],
)
def test_raw_sql_update_and_delete_of_nodes_and_edges_are_refused(pipeline, statement):
    before = graph_rows()
    with pytest.raises(DatabaseError, match=REFUSAL):
        execute(statement)
    assert graph_rows() == before


def test_a_node_without_edges_cannot_be_deleted_either(project, member):
    lone = node_of(factories.dataset_version(project, member))
    with pytest.raises(DatabaseError, match=REFUSAL):
        execute(f"DELETE FROM {NODE} WHERE id = {lone.pk}")
    assert Node.objects.filter(pk=lone.pk).exists()


@pytest.mark.postgres
@pytest.mark.parametrize("table_name", [NODE, EDGE])
def test_postgresql_refuses_truncate(pipeline, table_name):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL; SQLite has no TRUNCATE statement")
    before = graph_rows()
    # Checked now, so that TRUNCATE meets the trigger, not the pending foreign-key checks.
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match=REFUSAL):
        execute(f"TRUNCATE {table_name} CASCADE")
    assert graph_rows() == before


def test_raw_sql_inserts_are_allowed(project, member):
    node = node_of(factories.dataset_version(project, member))
    execute(
        f"INSERT INTO {NODE} (kind, object_id, project_id, label, ref, created_at) "
        f"VALUES ('{NodeKind.RUN}', 999999, {project.pk}, 'bulk', 'run:999999', "
        "CURRENT_TIMESTAMP)"
    )
    added = Node.objects.get(ref="run:999999")
    execute(
        f"INSERT INTO {EDGE} (src_id, dst_id, src_project_id, dst_project_id, kind, created_at) "
        f"VALUES ({node.pk}, {added.pk}, {project.pk}, {project.pk}, '{EdgeKind.USED}', "
        "CURRENT_TIMESTAMP)"
    )
    assert Edge.objects.filter(src=node, dst=added).exists()


def test_an_orm_update_around_the_managers_check_is_refused(pipeline):
    before = graph_rows()
    with pytest.raises(DatabaseError, match=REFUSAL), transaction.atomic():
        models.QuerySet.update(Node.objects.all(), label="rewritten")
    with pytest.raises(DatabaseError, match=REFUSAL), transaction.atomic():
        models.QuerySet.delete(Edge.objects.all())
    assert graph_rows() == before


# --- The ORM refuses first, with a clearer message ---------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda: Node.objects.update(label="rewritten"),
        lambda: Node.objects.bulk_update(list(Node.objects.all()), ["label"]),
        lambda: Node.objects.all().delete(),
        lambda: Edge.objects.filter(kind=EdgeKind.USED).update(kind=EdgeKind.DERIVED),
        lambda: Edge.objects.bulk_update(list(Edge.objects.all()), ["kind"]),
        lambda: Edge.objects.all().delete(),
        lambda: Node.objects.update_or_create(ref="model:credit:scorer#1", defaults={"label": "x"}),
    ],
    ids=[
        "node-update",
        "node-bulk-update",
        "node-delete",
        "edge-update",
        "edge-bulk-update",
        "edge-delete",
        "node-update-or-create",
    ],
)
def test_orm_updates_and_deletes_are_refused(pipeline, write):
    before = graph_rows()
    with pytest.raises(LineageRewriteRefused, match=REFUSAL):
        write()
    assert graph_rows() == before


def test_a_saved_node_or_edge_is_never_saved_again_or_deleted(pipeline):
    before = graph_rows()
    node = Node.objects.get(ref="model:credit:scorer#1")
    edge = node.in_edges.get()
    node.label = "rewritten"
    for write in (node.save, node.delete, edge.save, edge.delete):
        with pytest.raises(LineageRewriteRefused, match=REFUSAL):
            write()
    assert graph_rows() == before


def test_related_managers_and_the_base_manager_are_the_guarded_ones(pipeline, project):
    node = node_of(pipeline.raw)
    assert isinstance(Node._base_manager.all(), InsertOnlyWrites)
    assert isinstance(Edge._base_manager.all(), InsertOnlyWrites)
    before = graph_rows()
    for write in (
        lambda: Node._base_manager.filter(pk=node.pk).update(label="rewritten"),
        lambda: Edge._base_manager.all().delete(),
        lambda: node.out_edges.all().delete(),
        lambda: project.lineage_nodes.update(label="rewritten"),
    ):
        with pytest.raises(LineageRewriteRefused):
            write()
    assert graph_rows() == before


# --- The actions that add to the graph still work -----------------------------------------


def test_registering_versions_adds_nodes_and_edges_and_keeps_the_earlier_ones(
    pipeline, project, member
):
    before = graph_rows()
    features_v2 = factories.dataset_version(project, member, name="features", split="train")
    retrain = factories.run(project, member, inputs=[features_v2], code=pipeline.code)
    v3 = factories.model_version(pipeline.v1.registered_model, member, run=retrain)
    services.update_run(pipeline.prepare, actor=member, input_datasets=[features_v2])
    nodes, edges = added_since(before)
    assert [n["ref"] for n in nodes] == [
        "dataset:credit:features#2",
        f"run:{retrain.pk}",
        "model:credit:scorer#3",
    ]
    refs = dict(Node.objects.values_list("pk", "ref"))
    assert {(refs[e["src_id"]], refs[e["dst_id"]], e["kind"]) for e in edges} == {
        (f"code:{pipeline.code.pk}", f"run:{retrain.pk}", EdgeKind.CODE),
        ("dataset:credit:features#2", f"run:{retrain.pk}", EdgeKind.USED),
        (f"run:{retrain.pk}", f"model:credit:scorer#{v3.version}", EdgeKind.GENERATED),
        ("dataset:credit:features#2", f"run:{pipeline.prepare.pk}", EdgeKind.USED),
    }


def test_openlineage_batches_add_to_the_graph_and_keep_the_earlier_nodes(api, project, member):
    client = api.as_user(member)
    run_id = str(uuid.uuid4())
    first = [
        event("START", run_id, inputs=[ORDERS]),
        event("COMPLETE", run_id, minute=1, outputs=[table("shop.public.totals", "1")]),
    ]
    assert post(client, first, "/api/v1/lineage/batch").status_code == 201
    before = graph_rows()
    # The same run again (retried and completed later): new outputs, nothing rewritten.
    later = [
        *first,
        event("COMPLETE", run_id, minute=2, outputs=[table("shop.public.totals", "2")]),
    ]
    assert post(client, later, "/api/v1/lineage/batch").status_code == 201
    nodes, edges = added_since(before)
    assert [n["kind"] for n in nodes] == [NodeKind.DATASET_VERSION]
    assert [(e["src_id"], e["dst_id"], e["kind"]) for e in edges] == [
        (node_of(Run.objects.get(external_id=run_id)).pk, nodes[0]["id"], "generated")
    ]


def test_a_finished_export_adds_its_node_and_edge(
    api, project, owner, compliance, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    version, _ = version_with_evidence(project, owner)
    before = graph_rows()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(compliance).post(
            "/api/v1/exports/", {"kind": "dossier", "subject": version.pk}
        )
    assert response.status_code == 202, response.content
    nodes, edges = added_since(before)
    assert [n["ref"] for n in nodes] == [f"export:{response.json()['id']}"]
    assert [(e["src_id"], e["dst_id"], e["kind"]) for e in edges] == [
        (node_of(version).pk, nodes[0]["id"], EdgeKind.DERIVED)
    ]
