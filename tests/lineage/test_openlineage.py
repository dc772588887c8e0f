"""OpenLineage ingestion: RunEvents in, runs / dataset versions / code / edges out."""

import gzip
import hashlib
import json
import uuid

import pytest

from lineage.models import CodeVersion, Edge, ReceivedEvent, Run
from lineage.openlineage import dataset_name, validate
from lineage.recording import node_kind
from registry.models import Dataset, DatasetVersion

pytestmark = pytest.mark.django_db

PRODUCER = "https://github.com/example/pipeline/v1"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def facet(name: str, **fields) -> dict:
    return {
        "_producer": PRODUCER,
        "_schemaURL": f"https://openlineage.io/spec/facets/1-0-0/{name}.json",
        **fields,
    }


def event(event_type="START", run_id=None, *, minute=0, namespace="credit", **extra) -> dict:
    body = {
        "eventType": event_type,
        "eventTime": f"2026-11-22T10:{minute:02d}:00.000Z",
        "run": {"runId": run_id or str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": "daily_features", "facets": {}},
        "inputs": [],
        "outputs": [],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }
    body.update(extra)
    return body


ORDERS = {
    "namespace": "postgres://db.example.com:5432",
    "name": "shop.public.orders",
    "facets": {
        "schema": facet(
            "SchemaDatasetFacet",
            fields=[{"name": "id", "type": "BIGINT"}, {"name": "amount", "type": "DECIMAL"}],
        ),
        "version": facet("DatasetVersionDatasetFacet", datasetVersion="2026-11-22"),
    },
}
FEATURES = {
    "namespace": "s3://features",
    "name": "daily/orders.parquet",
    "facets": {"schema": facet("SchemaDatasetFacet", fields=[{"name": "x", "type": "float"}])},
    "outputFacets": {"outputStatistics": facet("OutputStatisticsOutputDatasetFacet", rowCount=42)},
}


def table(name: str, version: str | None = None, columns=("id",)) -> dict:
    """A data set of the warehouse, with its schema, and its version facet when `version`."""
    facets = {
        "schema": facet(
            "SchemaDatasetFacet", fields=[{"name": c, "type": "BIGINT"} for c in columns]
        )
    }
    if version is not None:
        facets["version"] = facet("DatasetVersionDatasetFacet", datasetVersion=version)
    return {"namespace": "postgres://db.example.com:5432", "name": name, "facets": facets}


def post(client, body, path="/api/v1/lineage", **headers):
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def send(client, body) -> dict:
    """Post one event that must be accepted; its answer."""
    response = post(client, body)
    assert response.status_code == 201, response.json()
    return response.json()


def with_code(body: dict) -> dict:
    body["job"]["facets"]["sourceCodeLocation"] = facet(
        "SourceCodeLocationJobFacet", type="git", url="https://git.example.com/x", version=COMMIT
    )
    return body


def versions_of(ol_dataset: dict):
    """The versions of an OpenLineage data set in Stagegate, oldest first."""
    name = dataset_name(ol_dataset["namespace"], ol_dataset["name"])
    return list(DatasetVersion.objects.filter(dataset__name=name).order_by("version"))


def has_edge(cause, effect) -> bool:
    return Edge.objects.filter(
        src__kind=node_kind(cause),
        src__object_id=cause.pk,
        dst__kind=node_kind(effect),
        dst__object_id=effect.pk,
    ).exists()


def lineage_of(run_id: str) -> tuple[list[int], list[int]]:
    """The version numbers a run read and wrote."""
    run = Run.objects.get(external_id=run_id)
    return (
        sorted(run.input_datasets.values_list("version", flat=True)),
        sorted(run.output_datasets.values_list("version", flat=True)),
    )


def test_start_then_complete_records_a_run_with_its_data_and_code(api, project, member):
    client = api.as_user(member)
    run_id = str(uuid.uuid4())
    start = event(
        "START",
        run_id,
        inputs=[ORDERS],
        job={
            "namespace": "credit",
            "name": "daily_features",
            "facets": {
                "sourceCodeLocation": facet(
                    "SourceCodeLocationJobFacet",
                    type="git",
                    url="https://git.example.com/team/pipeline",
                    version=COMMIT,
                    branch="main",
                    path="jobs/features.py",
                )
            },
        },
    )
    response = post(client, start)
    assert response.status_code == 201, response.json()
    assert response.json()["result"] == "created"
    run = Run.objects.get(external_id=run_id)
    assert (run.name, run.status, run.project) == ("daily_features", "running", project)
    assert run.started_at.isoformat() == "2026-11-22T10:00:00+00:00"
    assert run.code_version.commit_sha == COMMIT
    orders = DatasetVersion.objects.get(
        dataset__name=dataset_name(ORDERS["namespace"], ORDERS["name"])
    )
    assert orders.schema == [{"name": "id", "type": "integer"}, {"name": "amount", "type": "float"}]

    response = post(client, event("COMPLETE", run_id, minute=5, outputs=[FEATURES]))
    assert response.status_code == 201, response.json()
    run.refresh_from_db()
    assert run.status == "completed"
    assert run.ended_at.isoformat() == "2026-11-22T10:05:00+00:00"
    assert list(run.input_datasets.all()) == [orders]
    written = run.output_datasets.get()
    assert written.row_count == 42
    assert written.uri == "s3://features/daily/orders.parquet"
    assert Edge.objects.filter(dst__ref=f"run:{run.pk}").count() == 2  # orders and the code
    assert Edge.objects.filter(src__ref=f"run:{run.pk}").count() == 1


def test_dataset_names_are_project_dataset_names():
    name = dataset_name("postgres://db:5432", "Shop.Public.Orders")
    assert name.startswith("shop-public-orders-")
    assert name != dataset_name("postgres://other:5432", "Shop.Public.Orders")


def test_fail_and_abort_set_the_run_status(api, project, member):
    client = api.as_user(member)
    failed, aborted = str(uuid.uuid4()), str(uuid.uuid4())
    post(client, event("FAIL", failed))
    post(client, event("ABORT", aborted))
    assert Run.objects.get(external_id=failed).status == "failed"
    assert Run.objects.get(external_id=aborted).status == "aborted"


def test_a_late_start_does_not_reopen_a_completed_run(api, project, member):
    client = api.as_user(member)
    run_id = str(uuid.uuid4())
    post(client, event("COMPLETE", run_id, minute=5))
    post(client, event("START", run_id, minute=0))
    assert Run.objects.get(external_id=run_id).status == "completed"


def test_same_event_twice_is_applied_once(api, project, member):
    client = api.as_user(member)
    body = event("START", inputs=[ORDERS])
    assert post(client, body).json()["result"] == "created"
    again = post(client, body)
    assert again.status_code == 201
    assert again.json()["result"] == "duplicate"
    assert ReceivedEvent.objects.count() == 1
    assert Run.objects.count() == 1


# --- dataset versions ------------------------------------------------------------------------


def test_each_run_rewriting_a_table_writes_a_new_version(api, project, member):
    client = api.as_user(member)
    runs = [str(uuid.uuid4()) for _ in range(3)]
    for minute, run_id in enumerate(runs):
        send(client, event("COMPLETE", run_id, minute=minute, outputs=[FEATURES]))
    versions = versions_of(FEATURES)
    assert [v.version for v in versions] == [1, 2, 3]
    assert [lineage_of(run_id) for run_id in runs] == [([], [1]), ([], [2]), ([], [3])]
    for run_id, version in zip(runs, versions, strict=True):
        identity = f"{FEATURES['namespace']}\n{FEATURES['name']}\nrun\n{run_id}"
        assert version.content_sha256 == hashlib.sha256(identity.encode()).hexdigest()
        assert has_edge(Run.objects.get(external_id=run_id), version)


def test_start_and_complete_of_one_run_write_one_version(api, project, member):
    client = api.as_user(member)
    run_id = str(uuid.uuid4())
    send(client, event("START", run_id, outputs=[FEATURES]))
    send(client, event("COMPLETE", run_id, minute=5, outputs=[FEATURES]))
    assert [v.version for v in versions_of(FEATURES)] == [1]
    assert lineage_of(run_id) == ([], [1])


def test_a_job_reading_and_writing_one_table_reads_one_version_and_writes_the_next(
    api, project, member
):
    client = api.as_user(member)
    orders = table("shop.public.orders")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    send(client, event("COMPLETE", first, inputs=[orders], outputs=[orders]))
    send(client, event("COMPLETE", second, inputs=[orders], outputs=[orders]))
    assert lineage_of(first) == ([1], [2])
    assert lineage_of(second) == ([2], [3])
    v1, v2, _ = versions_of(orders)
    run = Run.objects.get(external_id=first)
    assert has_edge(v1, run)
    assert has_edge(run, v2)


def test_an_input_without_version_facet_is_the_version_its_run_read_first(api, project, member):
    client = api.as_user(member)
    orders = table("shop.public.orders")
    reader = str(uuid.uuid4())
    send(client, event("COMPLETE", outputs=[orders]))
    send(client, event("START", reader, inputs=[orders]))
    send(client, event("COMPLETE", outputs=[orders]))
    send(client, event("COMPLETE", reader, minute=5, inputs=[orders]))
    assert lineage_of(reader) == ([1], [])  # not also version 2, written meanwhile
    assert [v.version for v in versions_of(orders)] == [1, 2]


def test_an_input_is_not_a_version_its_own_run_wrote(api, project, member):
    client = api.as_user(member)
    orders = table("shop.public.orders")
    earlier, run_id = str(uuid.uuid4()), str(uuid.uuid4())
    send(client, event("COMPLETE", earlier, outputs=[orders]))
    # The run reports its output first, and only then what it read.
    send(client, event("START", run_id, outputs=[orders]))
    send(client, event("COMPLETE", run_id, minute=5, inputs=[orders]))
    assert lineage_of(run_id) == ([1], [2])  # not its own version 2: that would be a cycle


def test_the_version_facet_names_the_version(api, project, member):
    client = api.as_user(member)
    runs = [str(uuid.uuid4()) for _ in range(4)]
    named = ["2026-11-22", "2026-11-22", "2026-11-23"]
    for run_id, version in zip(runs, named, strict=False):
        written = event("COMPLETE", run_id, outputs=[table("orders", version)])
        send(client, written)
    send(client, event("COMPLETE", runs[3], inputs=[table("orders", "2026-11-22")]))
    assert [lineage_of(run_id) for run_id in runs] == [
        ([], [1]),
        ([], [1]),  # the same datasetVersion: the same version
        ([], [2]),
        ([1], []),  # read by name, not the latest
    ]
    identity = "postgres://db.example.com:5432\norders\nversion\n2026-11-22"
    assert versions_of(table("orders"))[0].content_sha256 == (
        hashlib.sha256(identity.encode()).hexdigest()
    )


def test_a_table_first_read_gets_a_first_version(api, project, member):
    client = api.as_user(member)
    orders = table("shop.public.orders")
    runs = [str(uuid.uuid4()) for _ in range(2)]
    for run_id in runs:
        send(client, event("START", run_id, inputs=[orders]))
    assert [lineage_of(run_id) for run_id in runs] == [([1], []), ([1], [])]
    (first,) = versions_of(orders)
    assert first.schema == [{"name": "id", "type": "integer"}]
    schema = json.dumps(first.schema, sort_keys=True)
    identity = f"postgres://db.example.com:5432\nshop.public.orders\nschema\n{schema}"
    assert first.content_sha256 == hashlib.sha256(identity.encode()).hexdigest()


def test_parent_facet_links_the_parent_run(api, project, member):
    client = api.as_user(member)
    parent_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
    child = event("START", child_id)
    child["run"]["facets"]["parent"] = facet(
        "ParentRunFacet",
        run={"runId": parent_id},
        job={"namespace": "credit", "name": "nightly_dag"},
    )
    assert post(client, child).status_code == 201
    run = Run.objects.get(external_id=child_id)
    assert run.parent.external_id == uuid.UUID(parent_id)
    assert run.parent.name == "nightly_dag"
    assert Edge.objects.filter(src__ref=f"run:{run.parent.pk}", dst__ref=f"run:{run.pk}").exists()


def test_batch_applies_every_event(api, project, member):
    client = api.as_user(member)
    run_id = str(uuid.uuid4())
    body = [event("START", run_id), event("COMPLETE", run_id, minute=1, outputs=[FEATURES])]
    response = post(client, body, "/api/v1/lineage/batch")
    assert response.status_code == 201
    assert [r["result"] for r in response.json()] == ["created", "updated"]
    assert Run.objects.get(external_id=run_id).status == "completed"


def test_gzip_body_is_accepted(api, project, member):
    client = api.as_user(member)
    body = gzip.compress(json.dumps(event("START")).encode())
    response = client.post(
        "/api/v1/lineage", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("eventTime"), "'eventTime' is a required property"),
        (lambda e: e.update(eventTime="yesterday"), "eventTime: must be an RFC 3339"),
        (lambda e: e.update(eventTime="2026-11-22T10:00:00"), "time zone offset"),
        (lambda e: e.update(eventType="FINISHED"), "eventType: must be one of"),
        (lambda e: e["run"].update(runId="run-1"), "run.runId: must be a UUID"),
        (lambda e: e["run"].pop("runId"), "'runId' is a required property"),
        (lambda e: e["job"].pop("namespace"), "job: 'namespace' is a required property"),
        (lambda e: e["job"].update(name=7), "job.name: must be a non-empty string"),
        (lambda e: e.update(producer="not a uri"), "producer: must be a URI"),
        (lambda e: e.pop("schemaURL"), "'schemaURL' is a required property"),
        (lambda e: e.update(inputs={}), "inputs: must be an array"),
        (lambda e: e.update(outputs=[{"name": "x"}]), "outputs[0]: 'namespace' is a required"),
        (
            lambda e: e["run"]["facets"].update(nominalTime={"nominalStartTime": "x"}),
            "run.facets.nominalTime: '_producer' is a required property",
        ),
        (
            lambda e: e.update(inputs=[{**ORDERS, "facets": {"schema": {"_producer": PRODUCER}}}]),
            "inputs[0].facets.schema: '_schemaURL' is a required property",
        ),
        # Every facet container is an object.
        (lambda e: e["run"].update(facets=[]), "run.facets: must be an object of facets"),
        (lambda e: e["run"].update(facets="parent"), "run.facets: must be an object of facets"),
        (lambda e: e["job"].update(facets=["x"]), "job.facets: must be an object of facets"),
        (
            lambda e: e.update(inputs=[{**ORDERS, "facets": "schema"}]),
            "inputs[0].facets: must be an object of facets",
        ),
        (
            lambda e: e.update(inputs=[{**ORDERS, "inputFacets": []}]),
            "inputs[0].inputFacets: must be an object of facets",
        ),
        (
            lambda e: e.update(outputs=[{**FEATURES, "outputFacets": "rowCount"}]),
            "outputs[0].outputFacets: must be an object of facets",
        ),
        # A UUID in RFC 4122's string form, as the spec's `format: uuid` asks.
        (lambda e: e["run"].update(runId=uuid.uuid4().hex), "run.runId: must be a UUID"),
        (lambda e: e["run"].update(runId=f"{{{uuid.uuid4()}}}"), "run.runId: must be a UUID"),
        (lambda e: e["run"].update(runId=uuid.uuid4().urn), "run.runId: must be a UUID"),
        (
            lambda e: e["run"]["facets"].update(
                parent=facet(
                    "ParentRunFacet",
                    run={"runId": uuid.uuid4().hex},
                    job={"namespace": "credit", "name": "dag"},
                )
            ),
            "run.facets.parent.run.runId: must be a UUID",
        ),
        # An RFC 3339 date-time, not the other ISO 8601 forms.
        (lambda e: e.update(eventTime="20261122T100000Z"), "eventTime: must be an RFC 3339"),
        (lambda e: e.update(eventTime="2026-11-22 10:00:00Z"), "eventTime: must be an RFC 3339"),
        (lambda e: e.update(eventTime="2026-11-22T10:00Z"), "eventTime: must be an RFC 3339"),
        (lambda e: e.update(eventTime="2026-W47-7T10:00:00Z"), "eventTime: must be an RFC 3339"),
        (
            lambda e: e.update(eventTime="2026-11-22T10:00:00+0100"),
            "eventTime: must be an RFC 3339",
        ),
        (lambda e: e.update(eventTime="2026-11-31T10:00:00Z"), "eventTime: must be an RFC 3339"),
        # The two dataset facets Stagegate reads.
        (
            lambda e: e.update(
                inputs=[{**ORDERS, "facets": {"version": facet("DatasetVersionDatasetFacet")}}]
            ),
            "inputs[0].facets.version: 'datasetVersion' is a required property",
        ),
        (
            lambda e: e.update(
                inputs=[{**ORDERS, "facets": {"schema": facet("SchemaDatasetFacet", fields="id")}}]
            ),
            "inputs[0].facets.schema.fields: must be an array",
        ),
        (
            lambda e: e.update(
                inputs=[{**ORDERS, "facets": {"schema": facet("SchemaDatasetFacet", fields=[7])}}]
            ),
            "inputs[0].facets.schema.fields[0]: must be an object with a 'name'",
        ),
    ],
)
def test_invalid_event_is_400_with_the_spec_error_and_stores_nothing(
    api, project, member, change, message
):
    body = event("START", inputs=[ORDERS])
    change(body)
    response = post(api.as_user(member), body)
    assert response.status_code == 400
    assert any(message in error for error in response.json()["errors"]["0"])
    assert Run.objects.count() == 0
    assert Dataset.objects.count() == 0


@pytest.mark.parametrize(
    "event_time",
    [
        "2026-11-22T10:00:00Z",
        "2026-11-22t10:00:00z",
        "2026-11-22T10:00:00.123456789Z",  # Java clients send nanoseconds
        "2026-11-22T15:30:00.5+05:30",
    ],
)
def test_rfc_3339_event_times_are_accepted(api, project, member, event_time):
    run_id = str(uuid.uuid4()).upper()
    body = event("START", run_id)
    body["eventTime"] = event_time
    send(api.as_user(member), body)
    run = Run.objects.get(external_id=run_id)
    assert run.started_at.isoformat().startswith("2026-11-22T10:00:00")


def test_events_as_the_openlineage_python_client_writes_them_are_valid():
    from datetime import UTC, datetime

    from openlineage.client.event_v2 import Job, RunEvent, RunState
    from openlineage.client.event_v2 import Run as ClientRun
    from openlineage.client.serde import Serde
    from openlineage.client.uuid import generate_new_uuid

    body = RunEvent(
        eventType=RunState.START,
        eventTime=datetime.now(UTC).isoformat(),
        run=ClientRun(runId=str(generate_new_uuid())),
        job=Job(namespace="credit", name="train"),
        producer=PRODUCER,
    )
    assert validate(json.loads(Serde.to_json(body))) == []


def test_dataset_event_is_refused(api, project, member):
    body = {
        "eventTime": "2026-11-22T10:00:00Z",
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "dataset": {"namespace": "s3://x", "name": "y"},
    }
    response = post(api.as_user(member), body)
    assert response.status_code == 400
    assert "only RunEvents" in response.json()["errors"]["0"][0]


def test_one_invalid_event_in_a_batch_stores_nothing(api, project, member):
    good = event("START", inputs=[ORDERS])
    bad = event("START")
    bad["run"]["runId"] = "nope"
    response = post(api.as_user(member), [good, bad], "/api/v1/lineage/batch")
    assert response.status_code == 400
    assert "1" in response.json()["errors"]
    assert Run.objects.count() == 0


def test_a_cycle_is_refused_and_nothing_is_stored(api, project, member):
    # ORDERS carries a version facet: the run reads and writes the very same dataset version,
    # which would be its own cause.
    body = event("COMPLETE", inputs=[ORDERS], outputs=[ORDERS])
    response = post(api.as_user(member), body)
    assert response.status_code == 400
    assert "cycle" in json.dumps(response.json())
    assert Run.objects.count() == 0
    assert DatasetVersion.objects.count() == 0


def test_a_source_code_version_that_is_not_a_commit_is_accepted_with_a_warning(
    api, project, member
):
    run_id = str(uuid.uuid4())
    body = event("START", run_id)
    body["job"]["facets"]["sourceCodeLocation"] = facet(
        "SourceCodeLocationJobFacet", type="git", url="https://git.example.com/x", version="v1.2"
    )
    response = post(api.as_user(member), body)
    assert response.status_code == 201
    assert response.json()["warnings"] == [
        "job.facets.sourceCodeLocation.version is not a commit SHA; no code version recorded"
    ]
    assert Run.objects.get(external_id=run_id).code_version is None
    assert CodeVersion.objects.count() == 0


def test_an_event_without_warnings_answers_none(api, project, member):
    assert "warnings" not in post(api.as_user(member), with_code(event("START"))).json()


def test_namespace_must_be_a_visible_project(api, project, other_project, member):
    client = api.as_user(member)
    assert post(client, event("START", namespace="secret")).status_code == 404
    assert post(client, event("START", namespace="nowhere")).status_code == 404
    assert Run.objects.count() == 0


def _with_parent(body: dict, parent_id: str) -> dict:
    body["run"]["facets"]["parent"] = facet(
        "ParentRunFacet", run={"runId": parent_id}, job={"namespace": "credit", "name": "dag"}
    )
    return body


@pytest.mark.parametrize(
    "naming",
    [
        pytest.param(lambda run_id: event("COMPLETE", run_id, minute=5), id="as-its-run"),
        pytest.param(lambda run_id: event("START", run_id), id="repeating-its-event"),
        pytest.param(lambda run_id: _with_parent(event("START"), run_id), id="as-its-parent"),
    ],
)
def test_a_run_of_another_project_is_refused_alike_whether_that_project_is_visible_or_not(
    api, project, other_project, member, outsider, naming
):
    from registry.choices import ProjectRight
    from tests import factories

    run_id = str(uuid.uuid4())
    hidden = event("START", run_id, namespace="secret")
    hidden["job"]["name"] = "hidden_job"
    send(api.as_user(outsider), hidden)
    client = api.as_user(member)

    unseen = post(client, naming(run_id))
    factories.grant(other_project, member, ProjectRight.VIEW)
    seen = post(client, naming(run_id))

    assert unseen.status_code == seen.status_code == 400
    assert unseen.json() == seen.json()
    message = unseen.json()["errors"]["0"][0]
    assert f"{run_id} cannot be used in namespace 'credit'" in message
    for hint in ("secret", "hidden_job", "another", "belongs"):
        assert hint not in unseen.content.decode()
    assert Run.objects.filter(project=project).count() == 0
    assert ReceivedEvent.objects.count() == 1


def test_viewer_without_contribute_right_gets_403(api, project, member, outsider):
    from registry.choices import ProjectRight
    from tests import factories

    factories.grant(project, outsider, ProjectRight.VIEW)
    response = post(api.as_user(outsider), event("START"))
    assert response.status_code == 403
    assert Run.objects.count() == 0


def test_reviewer_role_cannot_post_lineage(api, project, reviewer):
    assert post(api.as_user(reviewer), event("START")).status_code == 403


def test_anonymous_gets_401(api, project):
    assert post(api, event("START")).status_code == 401


def test_body_that_is_not_json_is_400(api, project, member):
    response = api.as_user(member).post(
        "/api/v1/lineage", b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
