"""Lineage benchmark on PostgreSQL: a ≥1,000,000-edge provenance graph, queried through the API.

Not part of the test suite. Run from the checkout:

    /work/main/.venv/bin/python bench/bench_lineage.py            # generate (once) and measure
    /work/main/.venv/bin/python bench/bench_lineage.py --regenerate

It uses its own database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/stagegate_lineage_bench), created and migrated if missing.

The graph follows /work/shared/reference/lineage_graph_1m_edges.sql, adapted to Stagegate's
tables and inserted with SQL (not the ORM): 1,000 hub dataset versions with skewed reuse, and
20,000 pipelines of 25 alternating dataset-version / run nodes in 10 projects, with chain,
skip, cross-pipeline and hub edges; plus one model version at the end of a 500-hop pipeline
(chain and skip edges). The API is called in process with Django's test client (a warm
process loaded through config.wsgi, as gunicorn loads it: URL resolution, middleware, token authentication, DRF, JSON rendering all run; no
socket), as a data scientist who can view the 10 projects, so the rights filter is paid too.
Each figure is printed beside the time of the same SQL statement run directly, with the
client's CPU time and the load average (the machine is shared: wall times move with the load).
--skip-queries / --skip-ingestion run one half.
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
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


def ensure_database() -> None:
    import psycopg

    base, _, name = BENCH_URL.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
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


def generate(regenerate: bool) -> None:
    from django.db import connection

    from lineage.models import Edge
    from registry import services
    from registry.choices import ProjectRight, RiskTier
    from registry.models import Project
    from tests import factories

    if Edge.objects.exists() and not regenerate:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE lineage_edge, lineage_node CASCADE")
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


def measure_queries(repeat: int) -> None:
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

    def api(node_ref, direction, depth, max_nodes):
        url = (
            f"/api/v1/lineage?nodeId={node_ref.replace('#', '%23')}&direction={direction}"
            f"&maxNodes={max_nodes}" + (f"&depth={depth}" if depth is not None else "")
        )

        def run():
            response = client.get(url)
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
    print(
        f"{'query':36} {'nodes':>7} {'edges':>7} {'trunc':>5} {'SQL ms':>7} "
        f"{'API ms':>7} {'API CPU':>7} target"
    )
    for title, node, directions, direction, depth, max_nodes, target in cases:
        sql_ms, _ = timed(raw(directions, node.pk, depth, max_nodes), repeat)
        api_ms, api_cpu = timed(api(node.ref, direction, depth, max_nodes), repeat)
        body = api(node.ref, direction, depth, max_nodes)().json()
        nodes = len(body["graph"])
        edges = sum(len(n["outEdges"]) for n in body["graph"])
        print(
            f"{title:36} {nodes:>7,} {edges:>7,} {str(body['truncated']):>5} "
            f"{sql_ms:>7.1f} {api_ms:>7.1f} {api_cpu:>7.1f} ≤ {target} ms median"
        )
    print(
        f"load average after: {load_average()}  (SQL: wall of the statement alone, fetch "
        "included; API: wall and client CPU, medians)"
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


def openlineage_events(n_runs: int, namespace: str):
    """START + COMPLETE pairs of runs that read one dataset and write the next."""
    producer = "https://example.com/bench"
    schema = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
    facet = {
        "_producer": producer,
        "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
    }
    prefix = uuid.uuid4().hex[:8]
    for i in range(n_runs):
        run_id = str(uuid.uuid4())
        job = {"namespace": namespace, "name": f"bench-job-{prefix}-{i % 50}"}
        inputs = [{"namespace": "s3://bench", "name": f"in-{prefix}-{i}"}]
        outputs = [
            {
                "namespace": "s3://bench",
                "name": f"out-{prefix}-{i}",
                "facets": {"schema": {**facet, "fields": [{"name": "x", "type": "float"}]}},
            }
        ]
        for event_type, minute in (("START", 0), ("COMPLETE", 1)):
            yield {
                "eventType": event_type,
                "eventTime": f"2026-11-22T10:{minute:02d}:00.000Z",
                "run": {"runId": run_id, "facets": {}},
                "job": {**job, "facets": {}},
                "inputs": inputs,
                "outputs": outputs if event_type == "COMPLETE" else [],
                "producer": producer,
                "schemaURL": schema,
            }


def measure_ingestion(n_runs: int) -> None:
    from django.test import Client
    from rest_framework.authtoken.models import Token

    viewer = _user("bench-viewer")
    token, _ = Token.objects.get_or_create(user=viewer)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")

    events = list(openlineage_events(n_runs, "bench-2"))
    started = time.perf_counter()
    for event in events:
        response = client.post("/api/v1/lineage", json.dumps(event), "application/json")
        assert response.status_code in (200, 201), response.content[:500]
    single = len(events) / (time.perf_counter() - started)

    events = list(openlineage_events(n_runs, "bench-3"))
    started = time.perf_counter()
    for chunk in range(0, len(events), 100):
        response = client.post(
            "/api/v1/lineage/batch", json.dumps(events[chunk : chunk + 100]), "application/json"
        )
        assert response.status_code in (200, 201), response.content[:500]
    batched = len(events) / (time.perf_counter() - started)
    print(
        f"\nOpenLineage ingestion ({len(events)} events, runs reading and writing datasets): "
        f"{single:,.0f} events/s one per POST, {batched:,.0f} events/s in batches of 100 "
        "(target ≥ 300 events/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--runs", type=int, default=500, help="runs posted (2 events each)")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--skip-ingestion", action="store_true")
    args = parser.parse_args()
    ensure_database()
    setup_django()
    generate(args.regenerate)
    if args.generate_only:
        return
    if not args.skip_queries:
        measure_queries(args.repeat)
    if not args.skip_ingestion:
        measure_ingestion(args.runs)


if __name__ == "__main__":
    main()
