"""Lineage benchmark on PostgreSQL: a ≥1,000,000-edge provenance graph, queried through the API.

Not part of the test suite. Run from the checkout:

    /work/main/.venv/bin/python bench/bench_lineage.py            # generate (once) and measure
    /work/main/.venv/bin/python bench/bench_lineage.py --regenerate

It uses its own database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/stagegate_lineage_bench), created and migrated if missing;
--regenerate drops that database and makes it again (the lineage tables are append-only,
lineage/append_only.py: the graph is never emptied in place, not even here).

The graph follows /work/shared/reference/lineage_graph_1m_edges.sql, adapted to Stagegate's
tables and inserted with SQL (not the ORM): 1,000 hub dataset versions with skewed reuse, and
20,000 pipelines of 25 alternating dataset-version / run nodes in 10 projects, with chain,
skip, cross-pipeline and hub edges; plus one model version at the end of a 500-hop pipeline
(chain and skip edges).

The queries are answered twice, as a data scientist who can view the 10 projects (so the
rights filter is paid too): in process through Django's test client (a warm process loaded
through config.wsgi, as gunicorn loads it: URL resolution, middleware, token authentication,
DRF, JSON rendering all run; no socket), and through a warm gunicorn server (the README's
production command, one sync worker) over loopback HTTP, which is the figure held against
the target. Each is printed beside the time of the same SQL statement run directly, with the
client's CPU time and the load average (the machine is shared: wall times move with the load).

Ingestion is measured in process (one event per POST, batches of 100), then over HTTP with the
real openlineage-python client against gunicorn (--workers): its HttpTransport one event at a
time, its AsyncHttpTransport with --concurrency POSTs in flight, and batches of 100, with the
server's and PostgreSQL's CPU per event.
--skip-queries / --skip-ingestion run one half; --skip-http the in-process part only.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stagegate_lineage_bench"
)
os.environ["DATABASE_URL"] = BENCH_URL
# Production-like: DEBUG off (Django then keeps no query log), the test client's host allowed.
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

PROJECTS = 10
DEEP_FIRST = 600_001  # node ids of the 500-hop pipeline: 600001 .. 600501
DEEP_HOPS = 500


def ensure_database(fresh: bool) -> None:
    import psycopg

    base, _, name = BENCH_URL.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}"')
        if not exists or fresh:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django():
    # The production entry point, as gunicorn loads it: Django set up, every view imported,
    # and what was loaded frozen out of the garbage collector's sight (see config/wsgi.py).
    from django.core.management import call_command

    import config.wsgi  # noqa: F401

    call_command("migrate", verbosity=0)


GENERATE_SQL = """
SELECT setseed(0.42);
CREATE TEMP TABLE bench_project (p int PRIMARY KEY, project_id bigint, key text);
INSERT INTO bench_project SELECT i, (%(project_ids)s::bigint[])[i + 1], (%(project_keys)s::text[])[i + 1]
FROM generate_series(0, {projects} - 1) i;

-- nodes: hubs 1..1000 (dataset versions), pipeline (p, k, l) = 1000 + (p*20 + k)*25 + l + 1,
-- even l a dataset version, odd l a run, the 500-hop pipeline ends in a model version.
INSERT INTO lineage_node (id, kind, object_id, project_id, label, ref, created_at)
SELECT h, 'dataset_version', h, bp.project_id, 'hub ' || h,
       'dataset:' || bp.key || ':hub-' || h || '#1', now()
FROM generate_series(1, 1000) h JOIN bench_project bp ON bp.p = 0;
INSERT INTO lineage_node (id, kind, object_id, project_id, label, ref, created_at)
SELECT x.id, CASE WHEN x.l % 2 = 0 THEN 'dataset_version' ELSE 'run' END, x.id, bp.project_id,
       'p' || x.p || ' k' || x.k || ' l' || x.l,
       CASE WHEN x.l % 2 = 0 THEN 'dataset:' || bp.key || ':d-' || x.p || '-' || x.k || '#' || (x.l / 2 + 1)
            ELSE 'run:' || x.id END,
       now()
FROM (SELECT p, k, l, 1000 + (p * 20 + k) * 25 + l + 1 AS id
      FROM generate_series(0, 999) p, generate_series(0, 19) k, generate_series(0, 24) l) x
JOIN bench_project bp ON bp.p = x.p % {projects};
INSERT INTO lineage_node (id, kind, object_id, project_id, label, ref, created_at)
SELECT {deep_first} + i,
       CASE WHEN i = {deep_hops} THEN 'model_version' WHEN i % 2 = 0 THEN 'dataset_version' ELSE 'run' END,
       {deep_first} + i, bp.project_id, 'deep ' || i,
       CASE WHEN i = {deep_hops} THEN 'model:' || bp.key || ':deep#1'
            WHEN i % 2 = 0 THEN 'dataset:' || bp.key || ':deep#' || (i / 2 + 1)
            ELSE 'run:' || ({deep_first} + i) END,
       now()
FROM generate_series(0, {deep_hops}) i JOIN bench_project bp ON bp.p = 1;
SELECT setval(pg_get_serial_sequence('lineage_node', 'id'), (SELECT max(id) FROM lineage_node));

CREATE TEMP TABLE edge_raw (src bigint NOT NULL, dst bigint NOT NULL);
-- chain edges l-1 -> l
INSERT INTO edge_raw
SELECT 1000 + ((p*20+k)*25 + l - 1) + 1, 1000 + ((p*20+k)*25 + l) + 1
FROM generate_series(0,999) p, generate_series(0,19) k, generate_series(1,24) l;
-- skip edges (prob 0.5) from l-2 or l-3
INSERT INTO edge_raw
SELECT 1000 + ((p*20+k)*25 + l - s) + 1, 1000 + ((p*20+k)*25 + l) + 1
FROM (SELECT p,k,l, 2 + (random() < 0.5)::int AS s, random() r
      FROM generate_series(0,999) p, generate_series(0,19) k, generate_series(3,24) l) x
WHERE r < 0.5;
-- a pipeline's root consumes the last node of 2 earlier pipelines of its project
INSERT INTO edge_raw
SELECT 1000 + ((p*20+kk)*25 + 24) + 1, 1000 + ((p*20+k)*25 + 0) + 1
FROM (SELECT p,k, floor(random()*k)::int kk
      FROM generate_series(0,999) p, generate_series(1,19) k, generate_series(1,2) j) x;
-- mid-pipeline nodes (prob 0.4) consume a node of an earlier pipeline of their project
INSERT INTO edge_raw
SELECT 1000 + ((p*20+kk)*25 + ll) + 1, 1000 + ((p*20+k)*25 + l) + 1
FROM (SELECT p,k,l, floor(random()*k)::int kk, floor(random()*25)::int ll, random() r
      FROM generate_series(0,999) p, generate_series(1,19) k, generate_series(1,24) l) x
WHERE r < 0.4;
-- hubs: every root consumes 2 (skewed: hub 1 is the most reused), mid nodes (prob 0.12) 1
INSERT INTO edge_raw
SELECT 1 + floor(1000 * power(random(), 3))::int, 1000 + ((p*20+k)*25 + 0) + 1
FROM generate_series(0,999) p, generate_series(0,19) k, generate_series(1,2) j;
INSERT INTO edge_raw
SELECT 1 + floor(1000 * power(random(), 3))::int, 1000 + ((p*20+k)*25 + l) + 1
FROM (SELECT p,k,l, random() r FROM generate_series(0,999) p, generate_series(0,19) k,
      generate_series(1,24) l) x WHERE r < 0.12;
-- the 500-hop pipeline: chain, skip edges (prob 0.3), two hub inputs at its root
INSERT INTO edge_raw SELECT {deep_first} + i - 1, {deep_first} + i FROM generate_series(1, {deep_hops}) i;
INSERT INTO edge_raw SELECT {deep_first} + i - 2, {deep_first} + i
FROM generate_series(2, {deep_hops}) i WHERE random() < 0.3;
INSERT INTO edge_raw VALUES (500, {deep_first}), (900, {deep_first});

INSERT INTO lineage_edge (src_id, dst_id, src_project_id, dst_project_id, kind, created_at)
SELECT d.src, d.dst, s.project_id, t.project_id,
       CASE WHEN d.src % 2 = 0 THEN 'generated' ELSE 'used' END, now()
FROM (SELECT DISTINCT src, dst FROM edge_raw WHERE src <> dst) d
JOIN lineage_node s ON s.id = d.src JOIN lineage_node t ON t.id = d.dst;
DROP TABLE edge_raw;
"""


def generate() -> None:
    from django.db import connection

    from lineage.models import Edge
    from registry import services
    from registry.choices import ProjectRight, RiskTier
    from registry.models import Project
    from tests import factories

    if Edge.objects.exists():
        return
    started = time.perf_counter()
    owner = _user("bench-owner")
    viewer = _user("bench-viewer")
    projects = []
    for i in range(PROJECTS):
        project = Project.objects.filter(key=f"bench-{i}").first() or factories.project(
            owner, key=f"bench-{i}", risk_tier=RiskTier.LIMITED
        )
        services.grant_project_rights(
            project, viewer, [ProjectRight.VIEW, ProjectRight.CONTRIBUTE], actor=owner
        )
        projects.append(project)
    if not Project.objects.filter(key="bench-hidden").exists():
        factories.project(owner, key="bench-hidden")
    sql = GENERATE_SQL.format(projects=PROJECTS, deep_first=DEEP_FIRST, deep_hops=DEEP_HOPS)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.split(";", 1)[0]
        )  # setseed alone: psycopg runs one statement with parameters at a time
        for chunk in sql.split(";")[1:]:
            if chunk.strip():
                cursor.execute(
                    chunk,
                    {
                        "project_ids": [p.pk for p in projects],
                        "project_keys": [p.key for p in projects],
                    }
                    if "%(" in chunk
                    else None,
                )
        # Records created later (by the ingestion measurement) must not take the object ids
        # of the synthetic nodes, or their nodes would be those nodes.
        for table in (
            "lineage_run",
            "lineage_codeversion",
            "registry_datasetversion",
            "registry_modelversion",
            "registry_evaluation",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"greatest(10000000, (SELECT coalesce(max(id), 1) FROM {table})))"
            )
        cursor.execute("VACUUM ANALYZE lineage_node")
        cursor.execute("VACUUM ANALYZE lineage_edge")
        cursor.execute("SELECT count(*) FROM lineage_node")
        nodes = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM lineage_edge")
        edges = cursor.fetchone()[0]
    print(f"generated {nodes:,} nodes and {edges:,} edges in {time.perf_counter() - started:.0f} s")


def _user(username):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from registry.roles import Role

    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_password("bench password not used")
        user.save()
        user.groups.add(Group.objects.get(name=Role.DATA_SCIENTIST))
    return user


def timed(fn, repeat):
    """Median wall and median CPU time of this process (ms) over `repeat` warm calls."""
    fn()  # warm
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def load_average() -> str:
    """The load average, and the time of a fixed pure-Python loop: this shared machine's
    speed moves by up to 1.7× from hour to hour, and this shows which state a run saw."""
    started = time.perf_counter()
    sum(range(10_000_000))
    reference = (time.perf_counter() - started) * 1e3
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f"; reference loop {reference:.0f} ms"


def measure_queries(repeat: int, http: bool) -> None:
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from lineage import graph
    from lineage.models import Node

    viewer = _user("bench-viewer")
    token, _ = Token.objects.get_or_create(user=viewer)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    projects = graph.visible_project_ids(viewer)

    def raw(directions, start, depth, max_nodes):
        sql, params = graph.compile_walk(
            directions, [start], depth, max_nodes, projects, connection.vendor
        )

        def run():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        return run

    def url(node_ref, direction, depth, max_nodes):
        return (
            f"/api/v1/lineage?nodeId={node_ref.replace('#', '%23')}&direction={direction}"
            f"&maxNodes={max_nodes}" + (f"&depth={depth}" if depth is not None else "")
        )

    def api(node_ref, direction, depth, max_nodes):
        path = url(node_ref, direction, depth, max_nodes)

        def run():
            response = client.get(path)
            assert response.status_code == 200, response.content[:500]
            return response

        return run

    deep = Node.objects.get(pk=DEEP_FIRST + DEEP_HOPS)
    hub = Node.objects.get(pk=1)
    mid = _node_with_about(10_000, projects)

    cases = [
        ("upstream of a model 500 hops deep", deep, ("up",), "upstream", None, 10_000, 25),
        ("downstream of ~10,000 nodes", mid, ("down",), "downstream", None, 20_000, 150),
        ("hub with 400,000+ descendants", hub, ("down",), "downstream", None, 10_000, 200),
        ("same hub, depth=3", hub, ("down",), "downstream", 3, 10_000, 200),
    ]
    print(f"\nload average before: {load_average()}")
    rows = []
    for title, node, directions, direction, depth, max_nodes, target in cases:
        sql_ms, _ = timed(raw(directions, node.pk, depth, max_nodes), repeat)
        api_ms, api_cpu = timed(api(node.ref, direction, depth, max_nodes), repeat)
        body = api(node.ref, direction, depth, max_nodes)().json()
        nodes = len(body["graph"])
        edges = sum(len(n["outEdges"]) for n in body["graph"])
        rows.append((title, nodes, edges, body["truncated"], sql_ms, api_ms, api_cpu, target))
    http_ms = {}
    if http:
        urls = [(c[0], url(c[1].ref, c[3], c[4], c[5])) for c in cases]
        http_ms = measure_queries_http(urls, token.key, repeat)
    print(
        f"{'query':36} {'nodes':>7} {'edges':>7} {'trunc':>5} {'SQL ms':>7} "
        f"{'API ms':>7} {'API CPU':>7} {'HTTP ms':>7} target"
    )
    for title, nodes, edges, truncated, sql_ms, api_ms, api_cpu, target in rows:
        over_http = f"{http_ms[title]:>7.1f}" if title in http_ms else f"{'-':>7}"
        verdict = "PASS" if http_ms.get(title, api_ms) <= target else "FAIL"
        print(
            f"{title:36} {nodes:>7,} {edges:>7,} {str(truncated):>5} "
            f"{sql_ms:>7.1f} {api_ms:>7.1f} {api_cpu:>7.1f} {over_http} ≤ {target} ms median "
            f"{verdict}"
        )
    print(
        f"load average after: {load_average()}  (SQL: wall of the statement alone, fetch "
        "included; API: in process through Django's test client, wall and client CPU; HTTP: "
        "through gunicorn (1 sync worker) over loopback, request sent to last byte read; "
        "medians)"
    )
    hub_total = _count_descendants(hub.pk)
    print(f"(the hub has {hub_total:,} descendants in all)")


def _node_with_about(target: int, projects):
    """A hub whose downstream is closest to `target` nodes (hubs are ordered by reuse)."""
    from lineage import graph
    from lineage.models import Node

    low, high = 1, 1000
    best = None
    while low <= high:
        middle = (low + high) // 2
        size = len(graph.downstream([middle], max_nodes=50_000, projects=projects).nodes)
        if best is None or abs(size - target) < abs(best[1] - target):
            best = (middle, size)
        if size > target:
            low = middle + 1
        else:
            high = middle - 1
    return Node.objects.get(pk=best[0])


def _count_descendants(node_id: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE down(id) AS (
                SELECT %s::bigint UNION SELECT e.dst_id FROM lineage_edge e JOIN down d ON e.src_id = d.id
            ) SELECT count(*) - 1 FROM down
            """,
            [node_id],
        )
        return cursor.fetchone()[0]


def openlineage_run_events(n_runs: int, namespace: str):
    """START + COMPLETE pairs of runs that read one dataset and write the next, as the
    openlineage-python client's RunEvent objects (Serde.to_dict gives what it sends)."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import schema_dataset

    schema = schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="x", type="float")]
    )
    prefix = uuid.uuid4().hex[:8]
    for i in range(n_runs):
        run = Run(runId=str(uuid.uuid4()))
        job = Job(namespace=namespace, name=f"bench-job-{prefix}-{i % 50}")
        inputs = [InputDataset(namespace="s3://bench", name=f"in-{prefix}-{i}")]
        outputs = [
            OutputDataset(
                namespace="s3://bench", name=f"out-{prefix}-{i}", facets={"schema": schema}
            )
        ]
        for state, minute in ((RunState.START, 0), (RunState.COMPLETE, 1)):
            yield RunEvent(
                eventType=state,
                eventTime=f"2026-11-22T10:{minute:02d}:00.000Z",
                run=run,
                job=job,
                inputs=inputs,
                outputs=outputs if state == RunState.COMPLETE else [],
                producer="https://example.com/bench",
            )


def openlineage_events(n_runs: int, namespace: str) -> list[dict]:
    """The same events as the JSON documents the client posts."""
    from openlineage.client.serde import Serde

    return [Serde.to_dict(e) for e in openlineage_run_events(n_runs, namespace)]


def measure_ingestion(n_runs: int) -> None:
    """In process (Django's test client): one event per POST, and batches of 100."""
    from django.test import Client
    from rest_framework.authtoken.models import Token

    viewer = _user("bench-viewer")
    token, _ = Token.objects.get_or_create(user=viewer)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")

    events = openlineage_events(n_runs, "bench-2")
    started = time.perf_counter()
    for event in events:
        response = client.post("/api/v1/lineage", json.dumps(event), "application/json")
        assert response.status_code in (200, 201), response.content[:500]
    single = len(events) / (time.perf_counter() - started)

    events = openlineage_events(n_runs, "bench-3")
    started = time.perf_counter()
    for chunk in range(0, len(events), 100):
        response = client.post(
            "/api/v1/lineage/batch", json.dumps(events[chunk : chunk + 100]), "application/json"
        )
        assert response.status_code in (200, 201), response.content[:500]
    batched = len(events) / (time.perf_counter() - started)
    print(
        f"\nOpenLineage ingestion in process ({len(events)} events, runs reading and writing "
        f"datasets): {single:,.0f} events/s one per POST, {batched:,.0f} events/s in batches "
        "of 100 (target ≥ 300 events/s)"
    )


@contextmanager
def gunicorn(workers: int):
    """Stagegate under gunicorn (the README's production command) on the bench database,
    warm; yields (port, ServerCpu)."""
    import psycopg
    from http_server import (
        ServerCpu,
        free_port,
        server_process,
        stagegate_env,
        stagegate_server,
    )

    database = BENCH_URL.rpartition("/")[2]
    with tempfile.TemporaryDirectory(prefix="stagegate-lineage-bench-") as tmp:
        port = free_port()
        env = stagegate_env(BENCH_URL, Path(tmp))
        log = Path(tmp) / "gunicorn.log"
        command = stagegate_server(port, workers)
        with (
            server_process("stagegate", command, ROOT, env, port, "/api/v1/models/", log) as server,
            psycopg.connect(BENCH_URL.rpartition("/")[0] + "/postgres", autocommit=True) as admin,
        ):
            yield port, ServerCpu(server.pid, database, admin)


def _http_get(port: int, path: str, token: str) -> bytes:
    from http_server import Api

    api = Api(port, "", {"Authorization": f"Bearer {token}"})
    try:
        return api.fetch("GET", path)
    finally:
        api.close()


def measure_queries_http(cases, token: str, repeat: int) -> dict[str, float]:
    """The same requests through gunicorn (one sync worker) over loopback HTTP: median wall
    from sending the request to the last byte of the answer (not parsed)."""
    found = {}
    with gunicorn(1) as (port, _):
        for title, url in cases:
            _http_get(port, url, token)  # warm
            walls = []
            for _ in range(repeat):
                started = time.perf_counter()
                _http_get(port, url, token)
                walls.append((time.perf_counter() - started) * 1000)
            found[title] = statistics.median(walls)
    return found


def measure_ingestion_http(n_runs: int, workers: int, concurrency: int) -> None:
    """The real openlineage-python client against gunicorn: its HttpTransport (one event per
    POST, one after the other, as a pipeline emits them), its AsyncHttpTransport (one event per
    POST, `concurrency` in flight: the client's high-throughput mode), and plain batches of 100
    to /api/v1/lineage/batch."""
    from http_server import Api
    from openlineage.client import OpenLineageClient
    from openlineage.client.serde import Serde
    from openlineage.client.transport.async_http import AsyncHttpConfig, AsyncHttpTransport
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
    from rest_framework.authtoken.models import Token

    from lineage.models import ReceivedEvent

    viewer = _user("bench-viewer")
    token, _ = Token.objects.get_or_create(user=viewer)
    auth = ApiKeyTokenProvider({"apiKey": token.key})
    print(
        f"\nOpenLineage ingestion over HTTP: gunicorn, {workers} sync workers, "
        f"{2 * n_runs} events each (START + COMPLETE of {n_runs} runs)"
    )
    with gunicorn(workers) as (port, cpu):
        url = f"http://127.0.0.1:{port}"

        def run(label: str, send) -> None:
            events = list(openlineage_run_events(n_runs, "bench-2"))
            before = ReceivedEvent.objects.count()
            cpu.start()
            started = time.perf_counter()
            send(events)
            wall = time.perf_counter() - started
            server, database = cpu.stop()
            stored = ReceivedEvent.objects.count() - before
            assert stored == len(events), f"{label}: {stored} of {len(events)} events stored"
            print(
                f"  {label:58} {len(events) / wall:7,.0f} events/s   CPU per event: server "
                f"{server / len(events) * 1e3:.1f} ms + PostgreSQL "
                f"{database / len(events) * 1e3:.1f} ms"
            )

        def sequential(events) -> None:
            client = OpenLineageClient(
                transport=HttpTransport(HttpConfig(url=url, auth=auth, retry={"total": 0}))
            )
            for event in events:
                client.emit(event)

        def concurrent(events) -> None:
            config = AsyncHttpConfig(
                url=url, auth=auth, max_concurrent_requests=concurrency, retry={"total": 0}
            )
            transport = AsyncHttpTransport(config)
            client = OpenLineageClient(transport=transport)
            for event in events:
                client.emit(event)
            transport.wait_for_completion(timeout=300)
            stats = transport.get_stats()
            transport.close()
            assert not stats.get("failed"), stats

        def batches(events) -> None:
            api = Api(port, "", {"Authorization": f"Bearer {token.key}"})
            for chunk in range(0, len(events), 100):
                body = [Serde.to_dict(e) for e in events[chunk : chunk + 100]]
                api.fetch("POST", "/api/v1/lineage/batch", body)
            api.close()

        run("openlineage-python HttpTransport, one event per POST", sequential)
        run(f"openlineage-python AsyncHttpTransport, {concurrency} POSTs in flight", concurrent)
        run("batches of 100 events per POST (http.client)", batches)
    print("  (target ≥ 300 events/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--runs", type=int, default=500, help="runs posted (2 events each)")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--skip-ingestion", action="store_true")
    parser.add_argument("--skip-http", action="store_true", help="in process only")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers, ingestion")
    parser.add_argument("--concurrency", type=int, default=8, help="client POSTs in flight")
    args = parser.parse_args()
    ensure_database(fresh=args.regenerate)
    setup_django()
    generate()
    if args.generate_only:
        return
    if not args.skip_queries:
        measure_queries(args.repeat, http=not args.skip_http)
    if not args.skip_ingestion:
        measure_ingestion(args.runs)
        if not args.skip_http:
            measure_ingestion_http(args.runs, args.workers, args.concurrency)


if __name__ == "__main__":
    main()
