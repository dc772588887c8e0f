"""The real openlineage-python client (HTTP transport, Bearer token) posting to a live server."""

import uuid

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset, source_code_location_job
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from rest_framework.authtoken.models import Token

from lineage.models import ReceivedEvent
from lineage.models import Run as StagegateRun

# The live server runs in a thread with a real transaction per request: the test database is
# flushed afterwards, and the role groups the migrations made are restored by serialization.
pytestmark = pytest.mark.django_db(transaction=True)

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def client_for(live_server, user, *, compression=None) -> OpenLineageClient:
    token, _ = Token.objects.get_or_create(user=user)
    config = HttpConfig(
        url=live_server.url,
        auth=ApiKeyTokenProvider({"apiKey": token.key}),
        compression=compression,
        retry={"total": 0},
    )
    return OpenLineageClient(transport=HttpTransport(config))


def events(run_id: str):
    job = Job(
        namespace="credit",
        name="train_scorer",
        facets={
            "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(
                type="git", url="https://git.example.com/team/model", version=COMMIT
            )
        },
    )
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="income", type="DOUBLE")]
    )
    inputs = [InputDataset(namespace="s3://raw", name="applications", facets={"schema": schema})]
    outputs = [OutputDataset(namespace="s3://features", name="applications_clean")]
    for state, time in ((RunState.START, "10:00"), (RunState.COMPLETE, "10:07")):
        yield RunEvent(
            eventType=state,
            eventTime=f"2026-11-22T{time}:00.000Z",
            run=Run(runId=run_id),
            job=job,
            inputs=inputs,
            outputs=outputs if state == RunState.COMPLETE else [],
            producer="https://github.com/example/pipeline",
        )


@pytest.mark.parametrize("compression", [None, HttpCompression.GZIP])
def test_openlineage_python_client_posts_run_events(live_server, project, member, compression):
    client = client_for(live_server, member, compression=compression)
    run_id = str(uuid.uuid4())
    for run_event in events(run_id):
        client.emit(run_event)
    run = StagegateRun.objects.get(external_id=run_id)
    assert run.status == "completed"
    assert run.code_version.commit_sha == COMMIT
    assert run.input_datasets.get().schema == [{"name": "income", "type": "float"}]
    assert run.output_datasets.count() == 1
    assert ReceivedEvent.objects.filter(run=run).count() == 2


def test_openlineage_python_client_sees_http_error_for_a_foreign_namespace(
    live_server, project, outsider
):
    client = client_for(live_server, outsider)
    with pytest.raises(Exception, match="404"):
        client.emit(next(events(str(uuid.uuid4()))))
    assert not StagegateRun.objects.exists()
