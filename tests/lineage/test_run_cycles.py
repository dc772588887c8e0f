"""Provenance is acyclic: a run cannot output a dataset version that is among its own causes.

A run's inputs and outputs change through lineage.services.update_run (and PATCH
/api/v1/runs/<id>/); each new link is checked with lineage.recording.reaches before its edge is
added, and a refused change leaves nothing behind: no edge, no link, no history row, no audit
event.
"""

import pytest
from django.core.exceptions import ValidationError

from governance.models import AuditEvent
from lineage import services
from lineage.models import Edge
from tests.lineage.test_graph import build_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(project, member):
    """raw → prepare → features → train → scorer v1 (see tests/lineage/test_graph.py)."""
    return build_pipeline(project, member)


def trail(run) -> tuple[int, int, int, list[int]]:
    """What a change of `run` would leave: edges, the run's history rows, audit events, and
    the run's outputs."""
    return (
        Edge.objects.count(),
        run.history.count(),
        AuditEvent.objects.count(),
        sorted(run.output_datasets.values_list("pk", flat=True)),
    )


def patch_run(client, run, **fields):
    return client.patch(f"/api/v1/runs/{run.pk}/", fields, format="json")


def test_a_run_cannot_output_a_dataset_version_it_reads(api, pipeline, member):
    train, features = pipeline.train, pipeline.features
    before = trail(train)
    response = patch_run(
        api.as_user(member), train, output_datasets=[features.pk], status="completed"
    )
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [
            f"lineage would contain a cycle: {train} is already downstream of {features}"
        ]
    }
    assert trail(train) == before
    train.refresh_from_db()
    assert train.status == "running"


def test_a_run_cannot_output_a_dataset_version_upstream_of_its_input(api, pipeline, member):
    # raw was read by prepare, which wrote features, which train reads.
    train, raw = pipeline.train, pipeline.raw
    before = trail(train)
    response = patch_run(api.as_user(member), train, output_datasets=[raw.pk])
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [
            f"lineage would contain a cycle: {train} is already downstream of {raw}"
        ]
    }
    assert trail(train) == before


def test_the_service_refuses_a_cycle_and_writes_nothing(pipeline, member):
    train = pipeline.train
    before = trail(train)
    with pytest.raises(ValidationError, match="lineage would contain a cycle"):
        services.update_run(
            train,
            actor=member,
            output_datasets=[pipeline.raw],
            status="completed",
            reason="finished",
        )
    assert trail(train) == before
    train.refresh_from_db()
    assert train.status == "running"


def test_an_output_downstream_of_nothing_the_run_read_is_accepted(api, pipeline, member):
    """The check refuses cycles only: a new dataset version, or one on another branch of the
    graph, may be written."""
    train = pipeline.train
    edges = Edge.objects.count()
    response = patch_run(api.as_user(member), train, output_datasets=[pipeline.holdout.pk])
    assert response.status_code == 200, response.json()
    assert response.json()["output_datasets"] == [pipeline.holdout.pk]
    assert Edge.objects.count() == edges + 1
