"""A lineage walk that runs past LINEAGE_QUERY_TIMEOUT_MS (PostgreSQL's statement_timeout)
answers 503 with a message saying what to do, and leaves the connection usable."""

import pytest
from django.db import connection, transaction

from lineage import graph
from lineage.models import Edge, Node

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CHAIN = 60_000


@pytest.fixture
def long_chain(project):
    """A chain of CHAIN dataset-version nodes in `project`, inserted with SQL: walking it
    takes far longer than a millisecond."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no statement timeout")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Node._meta.db_table} (kind, object_id, project_id, label, ref, created_at)
            SELECT 'dataset_version', 900000000 + i, %s, 'link ' || i,
                   'dataset:credit:chain#' || (i + 1), now()
            FROM generate_series(0, %s - 1) i
            """,  # noqa: S608 - our table name
            [project.pk, CHAIN],
        )
        cursor.execute(
            f"""
            INSERT INTO {Edge._meta.db_table}
                (src_id, dst_id, src_project_id, dst_project_id, kind, created_at)
            SELECT a.id, b.id, %s, %s, 'derived', now()
            FROM {Node._meta.db_table} a
            JOIN {Node._meta.db_table} b ON b.object_id = a.object_id + 1
            WHERE a.object_id >= 900000000 AND b.object_id >= 900000000
            """,  # noqa: S608 - our table names
            [project.pk, project.pk],
        )
    return Node.objects.get(ref="dataset:credit:chain#1")


def test_a_walk_past_the_timeout_raises_lineage_query_timeout(long_chain, settings):
    settings.LINEAGE_QUERY_TIMEOUT_MS = 1
    with pytest.raises(graph.LineageQueryTimeout):
        graph.downstream([long_chain.pk], max_nodes=50_000)


def test_the_api_answers_503_and_the_connection_stays_usable(api, member, long_chain, settings):
    client = api.as_user(member)
    settings.LINEAGE_QUERY_TIMEOUT_MS = 1
    params = {"nodeId": "dataset:credit:chain#1", "direction": "downstream", "maxNodes": 50_000}
    response = client.get("/api/v1/lineage", params)
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The lineage query took too long; ask for a smaller depth or maxNodes."
    }
    settings.LINEAGE_QUERY_TIMEOUT_MS = 10_000
    response = client.get("/api/v1/lineage", {**params, "maxNodes": 10})
    assert response.status_code == 200
    assert response.json()["truncated"] is True
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"  # the walk's timeout did not outlive it


def test_the_convenience_endpoints_answer_503_too(api, member, long_chain, settings):
    from tests import factories

    model = factories.registered_model(long_chain.project, member, name="scorer")
    version = factories.model_version(model, member)
    Edge.objects.create(
        src=Node.objects.get(ref=f"dataset:credit:chain#{CHAIN}"),
        dst=Node.objects.get(ref="model:credit:scorer#1"),
        kind="derived",
        src_project_id=long_chain.project_id,
        dst_project_id=long_chain.project_id,
    )
    settings.LINEAGE_QUERY_TIMEOUT_MS = 1
    client = api.as_user(member)
    response = client.get(f"/api/v1/model-versions/{version.pk}/upstream", {"maxNodes": 50_000})
    assert response.status_code == 503
    assert "took too long" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_mode_the_walk_runs_alone_and_times_out_alone(
    api, member, long_chain, settings
):
    # As in production (no transaction around the request): the walk runs in a transaction
    # of its own, the timeout is local to it, and the session keeps no timeout afterwards.
    assert connection.get_autocommit()
    client = api.as_user(member)
    settings.LINEAGE_QUERY_TIMEOUT_MS = 1
    params = {"nodeId": "dataset:credit:chain#1", "direction": "downstream", "maxNodes": 50_000}
    assert client.get("/api/v1/lineage", params).status_code == 503
    settings.LINEAGE_QUERY_TIMEOUT_MS = 10_000
    assert client.get("/api/v1/lineage", {**params, "maxNodes": 10}).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


@pytest.mark.parametrize("outcome", ["answers", "times out"])
def test_a_callers_own_timeout_is_put_back_after_the_walk(long_chain, settings, outcome):
    # Answered, the walk puts the caller's setting back; timed out, the savepoint undoes it
    # and the caller's transaction stays usable.
    settings.LINEAGE_QUERY_TIMEOUT_MS = 10_000 if outcome == "answers" else 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '7s'")
        if outcome == "answers":
            found = graph.downstream([long_chain.pk], max_nodes=5)
            assert len(found.nodes) == 5 and found.truncated
        else:
            with pytest.raises(graph.LineageQueryTimeout):
                graph.downstream([long_chain.pk], max_nodes=50_000)
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "7s"
