"""Set-based OpenLineage ingestion (lineage.ingestion): constant queries per batch, the same
records and audit trail as the one-at-a-time actions, order inside a batch, and refusal of
the whole batch for one bad event."""

import json
import uuid

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from governance import audit_chain
from governance.models import AuditEvent
from lineage import ingestion
from lineage.ingestion import payload_digest
from lineage.models import CodeVersion, Edge, ReceivedEvent, Run
from lineage.openlineage import dataset_name, ingest
from registry.models import Dataset, DatasetVersion
from tests.lineage.test_openlineage import (
    FEATURES,
    ORDERS,
    event,
    facet,
    lineage_of,
    post,
    with_code,
)

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/lineage/batch"


def dataset(name: str, columns=("x",), *, version: str | None = None, namespace="s3://bench"):
    fields = [{"name": c, "type": "float"} for c in columns]
    facets = {"schema": facet("SchemaDatasetFacet", fields=fields)}
    if version is not None:
        facets["version"] = facet("DatasetVersionDatasetFacet", datasetVersion=version)
    return {"namespace": namespace, "name": name, "facets": facets}


def with_parent(body: dict, parent_id: str, job: str = "nightly_dag") -> dict:
    body["run"]["facets"]["parent"] = facet(
        "ParentRunFacet", run={"runId": parent_id}, job={"namespace": "credit", "name": job}
    )
    return body


def pipeline_batch(runs: int, tag: str, existing: list[str]) -> list[dict]:
    """Every path a batch takes: new runs with code, a parent stub, new and reused data sets,
    and updates of runs that exist from an earlier batch."""
    events = []
    for i in range(runs):
        run_id = str(uuid.uuid4())
        start = with_code(event("START", run_id, inputs=[ORDERS, dataset(f"in-{tag}-{i}")]))
        events.append(with_parent(start, str(uuid.uuid4())))
        events.append(event("COMPLETE", run_id, minute=1, outputs=[dataset(f"out-{tag}-{i}")]))
    for run_id in existing:
        events.append(event("COMPLETE", run_id, minute=2, outputs=[dataset(f"late-{tag}")]))
    return events


def count_queries(client, body) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = post(client, body, BATCH)
    assert response.status_code == 201, response.json()
    return len(queries)


def test_a_batch_costs_the_same_queries_whatever_its_size(
    api, project, member, django_assert_max_num_queries
):
    client = api.as_user(member)
    earlier = [str(uuid.uuid4()) for _ in range(12)]
    assert post(client, [event("START", r) for r in earlier], BATCH).status_code == 201

    small = count_queries(client, pipeline_batch(1, "a", earlier[:1]))
    large = pipeline_batch(12, "b", earlier[1:])
    assert len(large) == 35
    with django_assert_max_num_queries(small):
        response = post(client, large, BATCH)
    assert response.status_code == 201
    assert [r["result"] for r in response.json()].count("created") == 12
    assert Run.objects.count() == 12 + 1 + 1 + 12 + 12  # earlier, batch a (run, parent), b


def test_one_event_costs_a_constant_number_of_queries(
    api, project, member, django_assert_max_num_queries
):
    client = api.as_user(member)
    with django_assert_max_num_queries(32):
        assert post(client, with_code(event("START", inputs=[ORDERS]))).status_code == 201


def test_a_batch_records_the_history_and_audit_events_of_the_actions(api, project, member):
    client = api.as_user(member)
    run_id = str(uuid.uuid4())
    start = event("START", run_id, inputs=[ORDERS])
    complete = event("COMPLETE", run_id, minute=5, outputs=[FEATURES])
    first = AuditEvent.objects.count()
    assert post(client, [start, complete], BATCH).status_code == 201

    run = Run.objects.get(external_id=run_id)
    orders, features = (
        DatasetVersion.objects.get(dataset__name=dataset_name(d["namespace"], d["name"]))
        for d in (ORDERS, FEATURES)
    )
    rows = list(run.history.order_by("history_date"))
    assert [(h.history_type, h.status, h.history_change_reason) for h in rows] == [
        ("+", "running", "OpenLineage START event"),
        ("~", "completed", "OpenLineage COMPLETE event"),
    ]
    # Each row lists the links the run had then, as simple-history's rows do.
    assert [list(h.input_datasets.values_list("datasetversion_id", flat=True)) for h in rows] == [
        [orders.pk],
        [orders.pk],
    ]
    assert [list(h.output_datasets.values_list("datasetversion_id", flat=True)) for h in rows] == [
        [],
        [features.pk],
    ]
    assert {h.history_actor_name for h in rows} == {"Mina Tester"}
    assert rows[0].history_request_id and rows[0].history_request_id == rows[1].history_request_id
    assert rows[1].prev_record == rows[0]
    assert orders.dataset.history.count() == 2  # registered, then its version 1 issued

    events = list(AuditEvent.objects.filter(sequence__gt=first).order_by("sequence"))
    assert [(e.action, e.object_type) for e in events] == [
        ("record.created", "registry.dataset"),
        ("record.created", "registry.datasetversion"),
        ("record.updated", "registry.dataset"),
        ("record.created", "lineage.run"),
        ("record.created", "lineage.receivedevent"),
        ("record.created", "registry.dataset"),
        ("record.created", "registry.datasetversion"),
        ("record.updated", "registry.dataset"),
        ("record.updated", "lineage.run"),
        ("record.created", "lineage.receivedevent"),
    ]
    assert {e.actor_id for e in events} == {member.pk}
    assert {e.project_id for e in events} == {project.pk}
    created = json.loads(events[3].payload)
    updated = json.loads(events[8].payload)
    assert created["after"]["input_datasets"] == [orders.pk]
    assert created["reason"] == "OpenLineage START event"
    assert updated["before"] == {"ended_at": None, "output_datasets": [], "status": "running"}
    assert updated["after"]["status"] == "completed"
    assert updated["after"]["output_datasets"] == [features.pk]
    received = ReceivedEvent.objects.get(run_uuid=run_id, event_type="COMPLETE")
    vouched = json.loads(events[9].payload)["after"]
    assert vouched["payload_sha256"] == payload_digest(received.payload)
    assert vouched["run_id"] == run.pk
    assert audit_chain.verify().valid


def test_a_parent_reported_later_in_the_same_batch_is_the_stub(api, project, member):
    client = api.as_user(member)
    parent_id, child_id, grandchild_id = (str(uuid.uuid4()) for _ in range(3))
    body = [
        with_parent(event("START", child_id), parent_id),
        with_parent(event("START", grandchild_id), child_id, job="daily_features"),
        event("START", parent_id),
    ]
    response = post(client, body, BATCH)
    assert response.status_code == 201
    assert [r["result"] for r in response.json()] == ["created", "created", "updated"]
    child = Run.objects.get(external_id=child_id)
    grandchild = Run.objects.get(external_id=grandchild_id)
    assert child.parent.external_id == uuid.UUID(parent_id)
    assert child.parent.name == "nightly_dag"
    assert child.parent.started_at is not None  # its own START arrived after the stub
    assert grandchild.parent == child
    assert Edge.objects.filter(src__ref=f"run:{child.pk}", dst__ref=f"run:{grandchild.pk}").exists()
    assert child.parent.history.filter(history_type="+").get().history_change_reason == (
        "named as the parent of an OpenLineage run"
    )


def test_same_event_twice_in_one_batch_is_applied_once(api, project, member):
    body = event("START", inputs=[ORDERS])
    response = post(api.as_user(member), [body, body], BATCH)
    assert [r["result"] for r in response.json()] == ["created", "duplicate"]
    assert ReceivedEvent.objects.count() == 1


def test_versions_of_a_data_set_in_a_batch_are_numbered_in_order(api, project, member):
    client = api.as_user(member)
    first, second = dataset("features", ("x",)), dataset("features", ("x", "y"))
    body = [event("COMPLETE", outputs=[first]), event("COMPLETE", outputs=[second])]
    assert post(client, body, BATCH).status_code == 201
    features = Dataset.objects.get()
    assert features.last_version == 2
    versions = {v.version: [c["name"] for c in v.schema] for v in features.versions.all()}
    assert versions == {1: ["x"], 2: ["x", "y"]}
    named = dataset("features", version="2026-11-22")
    body = [event("COMPLETE", outputs=[named]), event("COMPLETE", outputs=[named])]
    assert post(client, body, BATCH).status_code == 201
    assert post(client, [event("COMPLETE", outputs=[named])], BATCH).status_code == 201
    features.refresh_from_db()
    assert features.last_version == 3  # one datasetVersion is one version


def test_a_batch_sees_the_versions_its_earlier_events_planned(api, project, member):
    client = api.as_user(member)
    table = dataset("orders")
    runs = [str(uuid.uuid4()) for _ in range(3)]
    body = [
        event("START", runs[0], inputs=[table], outputs=[table]),
        event("COMPLETE", runs[0], minute=1, inputs=[table], outputs=[table]),
        event("COMPLETE", runs[1], minute=2, inputs=[table], outputs=[table]),
        event("START", runs[2], minute=3, inputs=[table]),
    ]
    assert post(client, body, BATCH).status_code == 201
    assert [lineage_of(run_id) for run_id in runs] == [([1], [2]), ([2], [3]), ([3], [])]


def test_a_cycle_across_two_events_refuses_the_batch(api, project, member):
    raw, clean = dataset("raw", version="1"), dataset("clean", version="1")
    body = [
        event("COMPLETE", inputs=[raw], outputs=[clean]),
        event("COMPLETE", inputs=[clean], outputs=[raw]),
    ]
    audit_before = AuditEvent.objects.count()
    response = post(api.as_user(member), body, BATCH)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["1"]
    assert "cycle" in response.json()["errors"]["1"][0]
    assert (Run.objects.count(), Dataset.objects.count(), Edge.objects.count()) == (0, 0, 0)
    assert ReceivedEvent.objects.count() == 0
    assert AuditEvent.objects.count() == audit_before


def test_a_cycle_with_the_stored_graph_is_refused(api, project, member):
    client = api.as_user(member)
    raw, clean = dataset("raw", version="1"), dataset("clean", version="1")
    assert (
        post(client, [event("COMPLETE", inputs=[raw], outputs=[clean])], BATCH).status_code == 201
    )
    runs, edges = Run.objects.count(), Edge.objects.count()
    body = [event("START"), event("COMPLETE", inputs=[clean], outputs=[raw])]
    response = post(client, body, BATCH)
    assert response.status_code == 400
    assert "already downstream" in response.json()["errors"]["1"][0]
    assert (Run.objects.count(), Edge.objects.count()) == (runs, edges)


def test_a_bad_namespace_late_in_a_batch_refuses_all_of_it(api, project, other_project, member):
    body = [event("START", inputs=[ORDERS]), event("START"), event("START", namespace="secret")]
    response = post(api.as_user(member), body, BATCH)
    assert response.status_code == 404
    assert list(response.json()["errors"]) == ["2"]
    assert (Run.objects.count(), Dataset.objects.count()) == (0, 0)


def test_a_run_cannot_end_before_it_starts(api, project, member):
    run_id = str(uuid.uuid4())
    body = [event("COMPLETE", run_id, minute=0), event("START", run_id, minute=5)]
    response = post(api.as_user(member), body, BATCH)
    assert response.status_code == 400
    assert "cannot end before it starts" in response.json()["errors"]["1"][0]
    assert Run.objects.count() == 0


def test_reading_back_what_an_earlier_run_wrote_is_no_cycle(api, project, member):
    client = api.as_user(member)
    raw, clean = dataset("raw"), dataset("clean")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    body = [
        event("COMPLETE", first, inputs=[raw], outputs=[clean]),
        event("COMPLETE", second, minute=1, inputs=[clean], outputs=[raw]),
    ]
    assert post(client, body, BATCH).status_code == 201
    # raw v1 -> first -> clean v1 -> second -> raw v2
    assert (lineage_of(first), lineage_of(second)) == (([1], [1]), ([1], [2]))


TABLES = ["orders", "customers", "payments"]


def rewrites(runs: int, existing: dict[str, str]) -> list:
    """New runs reading and writing the same tables (no version facets), then the COMPLETE of
    runs that reported writing theirs earlier (`existing`: run id to table), reading them."""
    events = []
    for i in range(runs):
        run_id = str(uuid.uuid4())
        table = dataset(TABLES[i % len(TABLES)])
        events.append(event("START", run_id, inputs=[table]))
        events.append(event("COMPLETE", run_id, minute=1, inputs=[table], outputs=[table]))
    for run_id, name in existing.items():
        table = dataset(name)
        events.append(event("COMPLETE", run_id, minute=2, inputs=[table], outputs=[table]))
    return events


def test_rewriting_tables_costs_the_same_queries_whatever_the_batch_size(
    api, project, member, django_assert_max_num_queries
):
    client = api.as_user(member)
    seed = [event("COMPLETE", outputs=[dataset(name)]) for name in TABLES]
    started = {str(uuid.uuid4()): TABLES[i % 3] for i in range(12)}
    seed += [event("START", run_id, outputs=[dataset(t)]) for run_id, t in started.items()]
    assert post(client, seed, BATCH).status_code == 201
    earlier = list(started.items())

    small = count_queries(client, rewrites(1, dict(earlier[:1])))
    with django_assert_max_num_queries(small):
        response = post(client, rewrites(12, dict(earlier[1:])), BATCH)
    assert response.status_code == 201, response.json()

    for result in response.json()[:24]:  # the new runs read one version and wrote the next
        read, written = lineage_of(result["runId"])
        assert len(read) == len(written) == 1 and written[0] == read[0] + 1
    for run_id in started:  # the earlier runs read the version before the one they wrote
        read, written = lineage_of(run_id)
        assert len(read) == len(written) == 1 and read[0] == written[0] - 1
    orders = DatasetVersion.objects.filter(dataset__name=dataset_name("s3://bench", "orders"))
    assert orders.count() == 1 + 4 + 1 + 4  # seed, earlier runs, small and large batches


def test_a_batch_and_single_posts_record_the_same_versions(api, project, member):
    client = api.as_user(member)

    def scenario(namespace: str) -> list[dict]:
        runs = [str(uuid.uuid4()) for _ in range(4)]
        orders = dataset("orders", namespace=namespace)
        named = dataset("orders", version="2026-11-22", namespace=namespace)
        features = dataset("features", namespace=namespace)
        return [
            event("START", runs[0], inputs=[orders], outputs=[features]),
            event("COMPLETE", runs[1], inputs=[orders], outputs=[orders]),
            event("COMPLETE", runs[0], minute=1, inputs=[orders], outputs=[features]),
            event("START", runs[2], minute=2, outputs=[orders]),
            event("COMPLETE", runs[3], minute=3, inputs=[features], outputs=[named]),
            event("COMPLETE", runs[2], minute=4, inputs=[orders, named], outputs=[orders]),
        ]

    def recorded(events: list[dict]) -> list:
        namespace = events[0]["inputs"][0]["namespace"]
        local = {dataset_name(namespace, n): n for n in ("orders", "features")}
        runs = dict.fromkeys(e["run"]["runId"] for e in events)
        return [
            {
                side: sorted(
                    (local[v.dataset.name], v.version)
                    for v in getattr(Run.objects.get(external_id=run_id), side).all()
                )
                for side in ("input_datasets", "output_datasets")
            }
            for run_id in runs
        ]

    one_by_one = scenario("s3://one")
    for body in one_by_one:
        assert post(client, body).status_code == 201
    batched = scenario("s3://batch")
    assert post(client, batched, BATCH).status_code == 201
    assert recorded(batched) == recorded(one_by_one)
    assert recorded(batched) == [
        {"input_datasets": [("orders", 1)], "output_datasets": [("features", 1)]},
        {"input_datasets": [("orders", 1)], "output_datasets": [("orders", 2)]},
        {"input_datasets": [("orders", 2), ("orders", 4)], "output_datasets": [("orders", 3)]},
        {"input_datasets": [("features", 1)], "output_datasets": [("orders", 4)]},
    ]


def test_a_code_version_is_registered_once_per_batch(api, project, member):
    body = [with_code(event("START")), with_code(event("START"))]
    assert post(api.as_user(member), body, BATCH).status_code == 201
    code = CodeVersion.objects.get()
    assert Run.objects.filter(code_version=code).count() == 2
    assert Edge.objects.filter(src__ref=f"code:{code.pk}").count() == 2


def test_a_batch_that_collides_with_another_request_is_run_again(project, member, monkeypatch):
    calls = []
    apply = ingestion.Batch.apply

    def collide_once(self):
        calls.append(1)
        if len(calls) == 1:
            apply(self)  # writes everything, then loses the race
            raise IntegrityError("duplicate key value violates unique constraint")
        return apply(self)

    monkeypatch.setattr(ingestion.Batch, "apply", collide_once)
    run_id = str(uuid.uuid4())
    results = ingest([event("START", run_id, inputs=[ORDERS])], actor=member)
    assert len(calls) == 2
    assert results[0]["result"] == "created"
    assert Run.objects.filter(external_id=run_id).count() == 1
    assert DatasetVersion.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_creating_the_same_data_sets_both_succeed():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so there is no race to test")
    import threading

    from django.db import connections

    from registry.choices import ProjectRight
    from tests import factories

    actor = factories.user("conc", role=factories.Role.DATA_SCIENTIST)
    project = factories.project(actor, key="credit")
    factories.grant(project, actor, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
    shared = [dataset(f"shared-{i}") for i in range(5)]
    barrier = threading.Barrier(3)
    results, errors = [], []

    def worker():
        try:
            body = [with_code(event("COMPLETE", inputs=shared[::-1], outputs=[dataset("o")]))]
            barrier.wait(timeout=10)
            results.append(ingest(body, actor=actor))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == 3
    assert Run.objects.count() == 3
    assert Dataset.objects.count() == 6
    assert DatasetVersion.objects.count() == 5 + 3  # the inputs, once; an output per run
    assert CodeVersion.objects.count() == 1
    assert audit_chain.verify().valid


def test_a_parent_run_of_another_project_is_refused_without_naming_it(
    api, project, other_project, member, outsider
):
    parent_id = str(uuid.uuid4())
    assert post(api.as_user(outsider), event("START", parent_id, namespace="secret")).status_code
    response = post(api.as_user(member), with_parent(event("START"), parent_id))
    assert response.status_code == 400
    assert f"{parent_id} cannot be used in namespace 'credit'" in response.json()["errors"]["0"][0]
    assert "secret" not in response.content.decode()
    assert Run.objects.filter(project=project).count() == 0
