"""When the cycle check runs, and that it holds under concurrency: an edge into a node made in
the same transaction needs no check; an edge between two existing nodes is checked, and on
PostgreSQL two transactions each adding half of a cycle cannot both succeed."""

import contextlib
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from lineage import recording
from lineage.models import Edge
from tests import factories

pytestmark = pytest.mark.django_db


def recursive_queries(captured) -> list[str]:
    """The walks of the lineage graph among the statements run (not the audit append's)."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if "RECURSIVE" in q["sql"].upper() and Edge._meta.db_table in q["sql"]
    ]


def test_an_edge_into_a_new_node_is_not_checked_for_cycles(project, member):
    train = factories.run(project, member, inputs=[factories.dataset_version(project, member)])
    model = factories.registered_model(project, member)
    first = factories.model_version(model, member, run=train)
    with CaptureQueriesContext(connection) as captured:
        second = factories.model_version(model, member, run=train, derived_from=first)
    # Two edges into the new version's node, and no walk of the graph for either.
    assert not recursive_queries(captured)
    into = set(Edge.objects.filter(dst=recording.node_of(second)).values_list("src", flat=True))
    assert into == {recording.node_of(train).pk, recording.node_of(first).pk}


def test_an_edge_between_existing_nodes_is_checked_and_a_cycle_refused(
    project, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # made in earlier transactions
        raw = factories.dataset_version(project, member, name="raw")
        clean = factories.dataset_version(project, member, name="clean")
    with CaptureQueriesContext(connection) as captured:
        recording.link(raw, clean)
    assert len(recursive_queries(captured)) == 1
    with pytest.raises(ValidationError, match="is already downstream of"):
        recording.link(clean, raw)
    with pytest.raises(ValidationError, match="would be its own cause"):
        recording.link(raw, raw)
    assert not Edge.objects.filter(src=recording.node_of(clean), dst=recording.node_of(raw))


def test_once_committed_a_new_node_is_checked_like_any_other(
    project, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        fresh = factories.dataset_version(project, member, name="fresh")
    other = factories.dataset_version(project, member, name="other")
    recording.link(fresh, other)
    # A later transaction must look: other now reaches fresh's out-edges' ends.
    with pytest.raises(ValidationError, match="is already downstream of"):
        recording.link(other, fresh)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_transactions_adding_halves_of_a_cycle_at_once_cannot_both_succeed(
    project, member, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: two transactions at once")
    left = factories.dataset_version(project, member, name="left")
    right = factories.dataset_version(project, member, name="right")
    real_reaches = recording.reaches
    both_checked = threading.Barrier(2, timeout=3)

    def reaches_then_wait(src, dst):
        # Each transaction checks, then waits for the other to have checked too: without the
        # lock both find no path (neither sees the other's edge) and both insert.
        found = real_reaches(src, dst)
        # A broken barrier: the other waits for the lock this one holds, so go on.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        return found

    monkeypatch.setattr(recording, "reaches", reaches_then_wait)
    outcomes = []

    def add(cause, effect):
        try:
            with transaction.atomic():
                recording.link(cause, effect)
            outcomes.append("linked")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=add, args=(left, right)),
        threading.Thread(target=add, args=(right, left)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["linked", "refused"]
    assert (
        Edge.objects.filter(src__in=[recording.node_of(left), recording.node_of(right)]).count()
        == 1
    )
