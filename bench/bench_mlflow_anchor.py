"""Anchor benchmark: MLflow's model registry server beside Stagegate, both on PostgreSQL.

Measures, on this machine and in the same run, the latency of single registry requests to
an `mlflow server` with ONE worker process (uvicorn, MLflow's default server, `--workers 1`)
and to Stagegate behind gunicorn with ONE sync worker (`gunicorn config.wsgi --workers 1`),
each on its own PostgreSQL database:

    operation            MLflow (REST 2.0)                  Stagegate (REST v1)
    register a version   model-versions/create              POST model-versions/
    stage transition     model-versions/transition-stage    POST model-versions/{id}/transitions/
                         None -> Staging -> Production,     development -> validation on a fresh
                         archive_existing_versions=true     version: the policy's gates evaluated,
                         (an UPDATE of the stage column;    the pending request, its history and
                         deprecated since MLflow 2.9; if    hash-chained audit events written
                         the endpoint is gone,
                         registered-models/alias instead)
    set a tag            model-versions/set-tag             (not measured: no counterpart)
    read one version     model-versions/get                 GET model-versions/{id}/
    list models          registered-models/search           GET models/?page_size=100

For each operation, both servers are warmed up (--warmup requests each), then measured in
alternating blocks (--block requests to one, then to the other, the order flipped from block
to block) until each has answered --repeat: both are measured in the same state of this
shared machine. Each side is called over one http.client connection, kept alive as long as
the server allows: uvicorn keeps it, gunicorn's sync worker closes it after every response
(http.client then reconnects; the connections opened are counted). Median, p90 and best are
printed in ms, with the CPU time per call of the server's process tree and of its PostgreSQL
backends (/proc), and the ratios Stagegate / MLflow.

Stagegate runs with production-like settings: DEBUG=0, SECRET_KEY from the environment (a
random one if unset), ALLOWED_HOSTS=127.0.0.1, no CELERY_BROKER_URL (tasks run eagerly), and
the settings' defaults for the database connection (persistent, server-side binding,
prepared statements). Its database is migrated and filled by a subprocess before the server
starts: a data scientist owning one high-risk project with one registered model, and a DRF
token sent as `Authorization: Token <key>`.

MLflow lives in its own virtualenv outside the repository; install it once with:

    python3.11 -m venv /work/mlflow-venv && \
        /work/mlflow-venv/bin/pip install mlflow==3.17.2 psycopg2-binary

The MLflow server talks to PostgreSQL through psycopg2 (`postgresql+psycopg2://`, MLflow's
default driver): with psycopg 3 (`postgresql+psycopg://`) MLflow 3.17.2 binds model version
numbers as VARCHAR and transition-stage with archive_existing_versions fails ("operator does
not exist: integer <> character varying", mlflow/mlflow issues 24592 and 9151).

Run from the repository root with the project's venv (it DROPS and recreates the databases
mlflow_anchor and stagegate_anchor on 127.0.0.1:5432, user postgres; both servers are always
stopped at the end, the databases are kept):

    .venv/bin/python bench/bench_mlflow_anchor.py [--repeat 200] [--warmup 20] [--block 20] \
        [--mlflow-venv /work/mlflow-venv] [--mlflow-only]

--mlflow-only measures MLflow alone (no Stagegate database, server or columns).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import http_server
import psycopg
from http_server import (
    Api,
    ApiError,
    free_port,
    proc_cpu,
    process_tree,
    server_log_tail,
    server_process,
    server_warnings,
    stagegate_server,
)
from machine_info import load_average, machine, reference_loop_ms

ROOT = Path(__file__).resolve().parents[1]
PG = "postgres@127.0.0.1:5432"
DATABASE = "mlflow_anchor"
STAGEGATE_DATABASE = "stagegate_anchor"
MODEL = "bench-anchor-model"
INSTALL = "python3.11 -m venv {venv} && {venv}/bin/pip install mlflow==3.17.2 psycopg2-binary"
# Run in the MLflow venv: its version, its PostgreSQL driver, the stages API's deprecation note.
PROBE = """
import importlib.util, json
if importlib.util.find_spec("psycopg2") is None:
    raise SystemExit("psycopg2 is not installed")
import mlflow
method = getattr(mlflow.MlflowClient, "transition_model_version_stage", None)
doc = (method.__doc__ or "").strip().splitlines() if method else []
note = doc[0].split("::", 1)[-1].strip() if doc and "deprecated" in doc[0] else ""
print(json.dumps({"version": mlflow.__version__, "note": note}))
"""
# Run with the project's Python in the repository, with the server's environment: migrate the
# fresh database and make the user, project, model and token the requests use.
STAGEGATE_SETUP = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from rest_framework.authtoken.models import Token
from governance.policies import policy_for
from tests import factories
from tests.factories import Role
owner = factories.user("bench-anchor", role=Role.DATA_SCIENTIST)
project = factories.project(owner, key="bench-anchor")
model = factories.registered_model(project, owner, name=sys.argv[1])
policy = policy_for(project)
token = Token.objects.create(user=owner)
print(json.dumps({"token": token.key, "model": model.pk, "project": project.key,
                  "tier": project.risk_tier, "policy": str(policy), "django": django.__version__}))
"""


def recreate_database(name: str) -> None:
    with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def probe_mlflow(venv: Path) -> dict:
    out = subprocess.run([venv / "bin" / "python", "-c", PROBE], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(
            f"error: the MLflow venv {venv} does not work ({out.stderr.strip()[-300:]}). "
            f"Install it with:\n\n    {INSTALL.format(venv=venv)}\n"
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def stagegate_env(workdir: Path) -> dict[str, str]:
    """The Stagegate server's environment (also that of its set-up subprocess)."""
    return http_server.stagegate_env(f"postgres://{PG}/{STAGEGATE_DATABASE}", workdir)


def setup_stagegate(env: dict[str, str]) -> dict:
    """Migrate the fresh database and make the fixtures; their ids and the token."""
    out = subprocess.run(
        [sys.executable, "-c", STAGEGATE_SETUP, MODEL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"error: the Stagegate set-up failed:\n{out.stderr.strip()[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class CpuMeter:
    """CPU seconds of this client, of one server's process tree and of the PostgreSQL backends
    connected to its database, summed over the `with` blocks since the last reset()."""

    def __init__(self, server_pid: int, database: str, admin: psycopg.Connection):
        self.server_pid = server_pid
        self.database_name = database
        self.admin = admin
        self.reset()

    def reset(self) -> None:
        """Zero the sums; the server's processes are listed here, once per operation."""
        self.client = self.server = self.database = 0.0
        self.pids = process_tree(self.server_pid)

    def servers(self) -> tuple[dict[int, float], dict[int, float]]:
        rows = self.admin.execute(
            "select pid from pg_stat_activity where datname = %s", [self.database_name]
        ).fetchall()
        return {pid: proc_cpu(pid) for pid in self.pids}, {pid: proc_cpu(pid) for (pid,) in rows}

    def __enter__(self) -> CpuMeter:
        # The client's clock starts after, and stops before, the reading of /proc.
        self.start = self.servers()
        self.start_client = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.client += time.process_time() - self.start_client
        end = self.servers()
        for total, start, now in zip(("server", "database"), self.start, end, strict=True):
            delta = sum(cpu - start.get(pid, 0.0) for pid, cpu in now.items())
            setattr(self, total, getattr(self, total) + delta)


def mlflow_server(venv: Path, workdir: Path, port: int) -> tuple[list[str], dict, str]:
    """The MLflow server's command, environment and the command line as printed."""
    command = [
        str(venv / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"postgresql+psycopg2://{PG}/{DATABASE}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # The job runner (huey consumers for GenAI jobs) is a side service, not the registry.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return command, env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false " + " ".join(command)


class Registry:
    """MLflow's measured requests, on one registered model; `versions` are those created."""

    def __init__(self, api: Api):
        self.api = api
        self.versions: list[str] = []
        api.post("registered-models/create", name=MODEL)

    def create(self, i: int) -> None:
        response = self.api.post(
            "model-versions/create",
            name=MODEL,
            source=f"s3://stagegate-bench/models/{MODEL}/{i}",
            description=f"benchmark version {i}",
        )
        self.versions.append(response["model_version"]["version"])

    def transition(self, i: int) -> None:
        # Calls 2k and 2k+1 take version k from None to Staging, then to Production.
        self.api.post(
            "model-versions/transition-stage",
            name=MODEL,
            version=self.versions[i // 2],
            stage=("Staging", "Production")[i % 2],
            archive_existing_versions=True,
        )

    def set_alias(self, i: int) -> None:
        self.api.post(
            "registered-models/alias", name=MODEL, alias="champion", version=self.versions[i]
        )

    def set_tag(self, i: int) -> None:
        version = self.versions[i % len(self.versions)]
        self.api.post(
            "model-versions/set-tag", name=MODEL, version=version, key="reviewed", value=str(i)
        )

    def get(self, i: int) -> None:
        self.api.get(
            "model-versions/get", name=MODEL, version=self.versions[i % len(self.versions)]
        )

    def search(self, i: int) -> None:
        self.api.get("registered-models/search", max_results=100)


class Stagegate:
    """Stagegate's measured requests, on one registered model; `versions` are the ids of
    those created, each moved development -> validation once, in order, by transition()."""

    def __init__(self, api: Api, model: int):
        self.api = api
        self.model = model
        self.versions: list[int] = []
        self.first_stage = ""
        self.first_request: dict = {}

    def create(self, i: int) -> None:
        response = self.api.post(
            "model-versions/",
            registered_model=self.model,
            artifact_uri=f"s3://stagegate-bench/models/{MODEL}/{i}",
            artifact_sha256=hashlib.sha256(f"{MODEL}/{i}".encode()).hexdigest(),
            description=f"benchmark version {i}",
        )
        self.versions.append(response["id"])
        self.first_stage = self.first_stage or response["stage"]

    def transition(self, i: int) -> None:
        response = self.api.post(
            f"model-versions/{self.versions[i]}/transitions/",
            to_stage="validation",
            justification=f"benchmark: version id {self.versions[i]} is ready for validation",
        )
        self.first_request = self.first_request or response

    def get(self, i: int) -> None:
        self.api.get(f"model-versions/{self.versions[i % len(self.versions)]}/")

    def search(self, i: int) -> None:
        self.api.get("models/", page_size=100)

    def transition_note(self) -> str:
        request = self.first_request
        gates = ", ".join(
            f"{g['name']} {'passed' if g['passed'] else 'failed'}"
            for g in request.get("gate_results", [])
        )
        return (
            f"Stagegate: a new version starts in {self.first_stage!r}; "
            f"{request.get('from_stage')} -> {request.get('to_stage')} answered 201 with a "
            f"{request.get('status')} request under {request.get('policy')!r} (gates: {gates})"
        )


def stage_operation(registry: Registry, deprecation: str) -> tuple[str, Callable, str]:
    """transition-stage while the endpoint answers, else setting an alias; and a note on it."""
    registry.create(-1)
    try:
        registry.transition(0)
    except ApiError as error:
        if error.status != 404 and "ENDPOINT_NOT_FOUND" not in error.body:
            raise
        note = f"transition-stage is gone ({error}): setting an alias is measured instead"
        return "registered-models/alias (set)", registry.set_alias, note
    finally:
        registry.versions.clear()
    note = f"MLflow: transition-stage still works but is deprecated: {deprecation}"
    if not deprecation:
        note = "MLflow: transition-stage works and carries no deprecation note in this release"
    return "model-versions/transition-stage", registry.transition, note


@dataclass
class Result:
    """One server's timings of one operation, and the CPU seconds they cost."""

    times: list[float]
    client: float
    server: float
    database: float

    def cpu_ms(self, seconds: float) -> float:
        return seconds / len(self.times) * 1e3

    def stats_ms(self) -> tuple[float, float, float]:
        """median, p90, best."""
        ordered = sorted(self.times)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        return statistics.median(ordered) * 1e3, p90 * 1e3, ordered[0] * 1e3


@dataclass
class Operation:
    label: str
    calls: dict[str, tuple[str, Callable[[int], object]]]  # server -> (endpoint, function)


def measure(
    operation: Operation, meters: dict[str, CpuMeter], warmup: int, repeat: int, block: int
) -> dict[str, Result]:
    """Warm-up on each server, then blocks of `block` requests, alternating between them (and
    flipping which goes first) until each has answered `repeat` timed requests."""
    names = list(operation.calls)
    for name in names:
        function = operation.calls[name][1]
        for i in range(warmup):
            function(i)
        meters[name].reset()
    times: dict[str, list[float]] = {name: [] for name in names}
    for start in range(warmup, warmup + repeat, block):
        indices = range(start, min(start + block, warmup + repeat))
        for name in names:
            function = operation.calls[name][1]
            with meters[name]:
                for i in indices:
                    started = time.perf_counter()
                    function(i)
                    times[name].append(time.perf_counter() - started)
        names.reverse()
    return {
        name: Result(times[name], meters[name].client, meters[name].server, meters[name].database)
        for name in operation.calls
    }


def single_table(operations: list[Operation], results: list[dict[str, Result]]) -> None:
    """MLflow alone: a row per endpoint, with the client's CPU too."""
    print(f"  {'operation':<34} {'median':>7} {'p90':>7} {'best':>7}   client server    pg")
    for operation, result in zip(operations, results, strict=True):
        endpoint, _ = operation.calls["MLflow"]
        r = result["MLflow"]
        cpu = "  ".join(f"{r.cpu_ms(s):5.2f}" for s in (r.client, r.server, r.database))
        median, p90, best = r.stats_ms()
        print(f"  {endpoint:<34} {median:7.2f} {p90:7.2f} {best:7.2f}   {cpu}")


def side_by_side_table(operations: list[Operation], results: list[dict[str, Result]]) -> None:
    """A row per operation: MLflow's figures, Stagegate's, and Stagegate / MLflow."""

    def cells(r: Result | None) -> str:
        if r is None:
            return f"{'-':>7}{'':30}"
        median, p90, best = r.stats_ms()
        return f"{median:7.2f}{p90:7.2f}{best:7.2f}{r.cpu_ms(r.server):8.2f}{r.cpu_ms(r.database):8.2f}"

    head = f"{'median':>7}{'p90':>7}{'best':>7}{'server':>8}{'pg':>8}"
    print(
        f"  {'':<20} {'MLflow (uvicorn)':<37}   {'Stagegate (gunicorn sync)':<37}   Stagegate/MLflow"
    )
    print(f"  {'operation':<20} {head}   {head}   {'median':>7}{'CPU':>8}")
    for operation, result in zip(operations, results, strict=True):
        ours, theirs = result.get("Stagegate"), result.get("MLflow")
        ratio = ""
        if ours and theirs:
            cpu_ours = ours.cpu_ms(ours.server + ours.database)
            cpu_theirs = theirs.cpu_ms(theirs.server + theirs.database)
            ratio = f"{ours.stats_ms()[0] / theirs.stats_ms()[0]:6.2f}x"
            ratio += f"{cpu_ours / cpu_theirs:7.2f}x" if cpu_theirs else f"{'-':>8}"
        print(f"  {operation.label:<20} {cells(theirs)}   {cells(ours)}   {ratio}".rstrip())
    print("  (times: wall clock at the client; server: CPU of its process tree per call; pg: of")
    print("   its PostgreSQL backends; CPU ratio: (server + pg) / (server + pg))")
    for operation in operations:
        endpoints = " | ".join(f"{name} {ep}" for name, (ep, _) in operation.calls.items())
        print(f"  {operation.label:<20} {endpoints}")


@dataclass
class Servers:
    """What run() needs of the servers started: ports, process ids, Stagegate's fixtures."""

    mlflow_port: int
    mlflow_pid: int
    stagegate_port: int | None = None
    stagegate_pid: int | None = None
    stagegate: dict | None = None


def run(args: argparse.Namespace, deprecation: str, servers: Servers, admin) -> None:
    apis = {"MLflow": Api(servers.mlflow_port, "/api/2.0/mlflow/")}
    meters = {"MLflow": CpuMeter(servers.mlflow_pid, DATABASE, admin)}
    registry = Registry(apis["MLflow"])
    stage_label, stage_fn, note = stage_operation(registry, deprecation)
    operations = [
        Operation("register a version", {"MLflow": ("model-versions/create", registry.create)}),
        Operation("stage transition", {"MLflow": (stage_label, stage_fn)}),
        Operation("set a tag", {"MLflow": ("model-versions/set-tag", registry.set_tag)}),
        Operation("read one version", {"MLflow": ("model-versions/get", registry.get)}),
        Operation("list models", {"MLflow": ("registered-models/search", registry.search)}),
    ]
    sg = None
    if servers.stagegate is not None:
        token = {"Authorization": f"Token {servers.stagegate['token']}"}
        apis["Stagegate"] = Api(servers.stagegate_port, "/api/v1/", token)
        meters["Stagegate"] = CpuMeter(servers.stagegate_pid, STAGEGATE_DATABASE, admin)
        sg = Stagegate(apis["Stagegate"], servers.stagegate["model"])
        ours = {
            "register a version": ("POST model-versions/", sg.create),
            "stage transition": ("POST model-versions/{id}/transitions/", sg.transition),
            "read one version": ("GET model-versions/{id}/", sg.get),
            "list models": ("GET models/?page_size=100", sg.search),
        }
        for operation in operations:
            if operation.label in ours:
                operation.calls["Stagegate"] = ours[operation.label]
    print(
        f"\n{args.repeat} requests each after {args.warmup} warm-up"
        + (f", in alternating blocks of {args.block}" if sg else "")
        + "; one http.client connection per server; times in ms, CPU in ms per call"
    )
    results = []
    for operation in operations:
        results.append(measure(operation, meters, args.warmup, args.repeat, args.block))
        if sg and operation.label == "register a version":
            # Each transition takes a fresh version out of development: one per call.
            assert len(sg.versions) >= args.warmup + args.repeat, len(sg.versions)
    if sg:
        side_by_side_table(operations, results)
    else:
        single_table(operations, results)

    found = apis["MLflow"].get("registered-models/search", max_results=100)["registered_models"]
    cpu_legend = "; CPU: client = this process, server = mlflow + uvicorn, pg = their backends"
    print(
        f"  (MLflow: {len(registry.versions)} versions created; the search returns {len(found)} "
        f"registered model(s) with {len(found[0].get('latest_versions', []))} latest versions"
        f"{'' if sg else cpu_legend})"
    )
    if sg:
        listed = apis["Stagegate"].get("models/", page_size=100)
        print(
            f"  (Stagegate: {len(sg.versions)} versions created; the list returns "
            f"{listed['count']} registered model(s))"
        )
        client = {
            name: sum(r[name].client for r in results if name in r)
            / sum(len(r[name].times) for r in results if name in r)
            * 1e3
            for name in apis
        }
        print(
            f"  connections opened: MLflow {apis['MLflow'].connections}, Stagegate "
            f"{apis['Stagegate'].connections} (gunicorn's sync worker closes each connection "
            f"after its response); client CPU per call: MLflow {client['MLflow']:.2f} ms, "
            f"Stagegate {client['Stagegate']:.2f} ms"
        )
    for api in apis.values():
        api.close()
    print(f"note: {note}")
    if sg:
        print(f"note: {sg.transition_note()}")


def start_servers(
    stack: ExitStack,
    venv: Path,
    tmp: Path,
    logs: dict[str, Path],
    env: dict[str, str],
    fixtures: dict | None,
    started: float,
) -> Servers:
    """Start MLflow, and Stagegate unless `fixtures` is None, their stops pushed on `stack`."""
    port = free_port()
    command, mlflow_env, shown = mlflow_server(venv, tmp, port)
    mlflow = stack.enter_context(
        server_process("mlflow", command, tmp, mlflow_env, port, "/health", logs["MLflow"])
    )
    print(f"server: {shown}")
    print(f"        (answering {time.perf_counter() - started:.1f} s after the start)")
    servers = Servers(port, mlflow.pid)
    if fixtures is None:
        return servers
    port = free_port()
    command = stagegate_server(port)
    logs["Stagegate"] = tmp / "stagegate.log"
    stagegate = stack.enter_context(
        server_process("stagegate", command, ROOT, env, port, "/api/v1/models/", logs["Stagegate"])
    )
    servers.stagegate_port, servers.stagegate_pid = port, stagegate.pid
    servers.stagegate = fixtures
    print(
        f"Stagegate: Django {fixtures['django']}, 127.0.0.1:5432/{STAGEGATE_DATABASE}; project "
        f"{fixtures['project']} ({fixtures['tier']} risk, policy {fixtures['policy']})"
    )
    print(
        "server: DEBUG=0 ALLOWED_HOSTS=127.0.0.1 SECRET_KEY=... (no CELERY_BROKER_URL) "
        + " ".join(command)
    )
    print(f"        (answering {time.perf_counter() - started:.1f} s after the start)")
    return servers


def _exit_on_sigterm(signum, frame) -> None:
    # So that the `finally` clauses stop the servers when this run is terminated.
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--block", type=int, default=20, help="requests to one server before the other's turn"
    )
    parser.add_argument("--mlflow-venv", type=Path, default=Path("/work/mlflow-venv"))
    parser.add_argument("--mlflow-only", action="store_true", help="no Stagegate server")
    args = parser.parse_args()
    if min(args.repeat, args.block) < 1 or args.warmup < 0:
        parser.error("--repeat and --block must be at least 1, --warmup at least 0")

    venv = args.mlflow_venv.absolute()
    if not (venv / "bin" / "mlflow").exists():
        print(
            f"error: no MLflow in {venv} ({venv / 'bin' / 'mlflow'} is missing). Install it with:"
            f"\n\n    {INSTALL.format(venv=venv)}\n",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    started = time.perf_counter()
    print("MLflow model registry anchor (bench/bench_mlflow_anchor.py)")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    print(f"machine: {machine()}")
    info = probe_mlflow(venv)
    recreate_database(DATABASE)
    with tempfile.TemporaryDirectory(prefix="stagegate-mlflow-anchor-") as tmp_name:
        tmp = Path(tmp_name)
        logs = {"MLflow": tmp / "mlflow.log"}
        env, fixtures = {}, None
        if not args.mlflow_only:
            recreate_database(STAGEGATE_DATABASE)
            env = stagegate_env(tmp)
            fixtures = setup_stagegate(env)
        with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True) as admin:
            pg_version = admin.execute("select version()").fetchone()[0].split(",")[0]
            print(f"MLflow {info['version']} ({venv}); {pg_version}, 127.0.0.1:5432/{DATABASE}")
            print("note: this machine's speed varies up to 2.5x over minutes (reference loop)")
            try:
                with ExitStack() as stack:  # each server started is stopped on the way out
                    servers = start_servers(stack, venv, tmp, logs, env, fixtures, started)
                    try:
                        run(args, info["note"], servers, admin)
                    except ApiError:
                        for name, log in logs.items():
                            print(f"--- {name} server log, last lines ---")
                            print(server_log_tail(log))
                        raise
            finally:
                for name, log in logs.items():
                    for warning in server_warnings(log) if log.exists() else []:
                        print(f"{name} server log: {warning}")
    print(
        f"after: load average {load_average()}; reference loop {reference_loop_ms():.0f} ms; "
        f"whole run {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
