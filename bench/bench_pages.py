"""Benchmark the review inbox with 1,000 pending requests and a version page with 500 history rows.

Target: each renders in <= 200 ms median server time, with a number of SQL queries that does
not grow with the rows. Measured in process with Django's test client (no network, no browser),
DEBUG off so templates are cached as in production. Run from the repository root:

    python bench/bench_pages.py [--requests 1000] [--history 500] [--repeat 30]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stagegate python bench/bench_pages.py

A throwaway test database is created (in memory for SQLite, `test_<name>` for PostgreSQL) and
dropped afterwards. The pending requests are written with bulk inserts copying the row one real
`request_transition` made (its gate results, rule and policy), so setting up a thousand takes
seconds; the history rows come from the real `update_model_version` action.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

TARGET_MS = 200.0
BACKEND = "registry.access.ModelBackend"


def build(requests: int, history: int):
    from governance import transitions
    from governance.models import TransitionRequest
    from registry import services as registry
    from registry.choices import ProjectRight
    from registry.models import ModelVersion
    from tests import factories
    from tests.factories import Role
    from tests.governance.builders import version_with_evidence

    owner = factories.user("olive", role=Role.DATA_SCIENTIST)
    reviewer = factories.user("rory", role=Role.REVIEWER)
    project = factories.project(owner, key="bench")
    factories.grant(project, reviewer, ProjectRight.VIEW, ProjectRight.REVIEW)

    version, _ = version_with_evidence(project, owner)
    first = transitions.request_transition(
        version, "validation", actor=owner, justification="candidate 0"
    )
    model = version.registered_model
    others = ModelVersion.objects.bulk_create(
        ModelVersion(
            registered_model=model,
            version=n + 2,
            artifact_uri=f"s3://bench/{n}",
            artifact_sha256=f"{n:064x}",
            run=version.run,
            created_by=owner,
            intended_use="scoring",
        )
        for n in range(requests - 1)
    )
    TransitionRequest.objects.bulk_create(
        TransitionRequest(
            model_version=v,
            from_stage="development",
            to_stage="validation",
            justification=f"candidate {n + 1}",
            requested_by=owner,
            requested_by_name=first.requested_by_name,
            policy=first.policy,
            rule=first.rule,
            gate_results=first.gate_results,
            gates_evaluated_at=first.gates_evaluated_at,
        )
        for n, v in enumerate(others)
    )
    for n in range(history - version.history.count()):
        registry.update_model_version(
            version, actor=owner, description=f"edit {n}", reason=f"edit {n}"
        )
    return reviewer, version


def measure(client: Client, url: str, repeat: int) -> tuple[float, float, int, int]:
    """(median wall ms, median CPU ms, query count, response bytes) of GET url, after one
    warm-up request. CPU time is reported too: on a shared machine it varies less."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return (
        statistics.median(wall),
        statistics.median(cpu),
        len(captured.captured_queries),
        len(response.content),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    # Not setup_test_environment(): its template instrumentation (a signal and a context copy
    # per rendered template, for test assertions) is test-client cost, not server time.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        started = time.perf_counter()
        reviewer, version = build(args.requests, args.history)
        print(
            f"database {connection.vendor}, load average {os.getloadavg()[0]:.1f}; set up {args.requests} pending requests and "
            f"{version.history.count()} history rows in {time.perf_counter() - started:.1f} s"
        )
        client = Client()
        client.force_login(reviewer, backend=BACKEND)
        ok = True
        for name, url in (
            (f"inbox, {args.requests} pending (first page of 50)", "/inbox/"),
            (f"version page, {version.history.count()} history rows", f"/versions/{version.pk}/"),
        ):
            median, cpu, queries, size = measure(client, url, args.repeat)
            verdict = "ok" if median <= TARGET_MS else "SLOWER THAN TARGET"
            ok &= median <= TARGET_MS
            print(
                f"{name}: median {median:.1f} ms (CPU {cpu:.1f} ms) over {args.repeat} "
                f"(target <= {TARGET_MS:.0f}), "
                f"{queries} SQL queries, {size / 1024:.0f} KiB — {verdict}"
            )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
