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
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import psycopg
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
TICK = os.sysconf("SC_CLK_TCK")


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        # Not "production": that mode redirects plain HTTP to HTTPS (a TLS proxy's job).
        STAGEGATE_ENV="development",
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"postgres://{PG}/{STAGEGATE_DATABASE}",
        STAGEGATE_VAR_DIR=str(workdir / "var"),
        MEDIA_ROOT=str(workdir / "media"),
    )
    return env


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """utime + stime of one process in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


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


class ApiError(Exception):
    def __init__(self, request: str, status: int, body: str):
        super().__init__(f"{request}\n-> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


class Api:
    """One server's REST API over one http.client connection, reopened when the server
    closes it (gunicorn's sync worker does after each response); `connections` opened."""

    def __init__(self, port: int, prefix: str, headers: dict[str, str] | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.prefix = prefix
        self.headers = headers or {}
        self.connections = 0

    def call(self, method: str, endpoint: str, payload: dict | None = None) -> dict:
        path = self.prefix + endpoint
        body, headers = None, dict(self.headers)
        if method == "GET" and payload:
            path += "?" + urlencode(payload)
        elif payload is not None:
            body = json.dumps(payload)
            headers["Content-Type"] = "application/json"
        if self.conn.sock is None:
            self.connections += 1
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode()
        if not 200 <= response.status < 300:
            raise ApiError(f"{method} {path} {body or ''}".strip(), response.status, text)
        return json.loads(text) if text else {}

    def get(self, endpoint: str, **params) -> dict:
        return self.call("GET", endpoint, params)

    def post(self, endpoint: str, **payload) -> dict:
        return self.call("POST", endpoint, payload)

    def close(self) -> None:
        self.conn.close()


@contextmanager
def server_process(
    name: str, command: list[str], cwd: Path, env: dict, port: int, health: str, log_path: Path
) -> Iterator[subprocess.Popen]:
    """A server in its own session, logging to `log_path`; stopped on the way out."""
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_up(name, server, port, health, log_path)
        yield server
    finally:
        stop(server)


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


def stagegate_server(port: int) -> list[str]:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        raise SystemExit(f"error: no gunicorn beside {sys.executable} ({gunicorn} is missing)")
    return [str(gunicorn), "config.wsgi", "--workers", "1", "--bind", f"127.0.0.1:{port}"]


LOG_MARKERS = ("Warning", "[WARNING]", "[ERROR]", "[CRITICAL]", "Traceback")


def server_warnings(log_path: Path) -> list[str]:
    """Distinct warnings (deprecations included) and errors that a server logged."""
    lines = log_path.read_text(errors="replace").splitlines()
    found = (line.strip() for line in lines if any(m in line for m in LOG_MARKERS))
    return list(dict.fromkeys(found))


def server_log_tail(log_path: Path, lines: int = 25) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_until_up(
    name: str,
    server: subprocess.Popen,
    port: int,
    path: str,
    log_path: Path,
    timeout: float = 180,
) -> None:
    """Until `path` answers (any status below 500: Stagegate's answers 401 to no token)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = server_log_tail(log_path)
            raise SystemExit(f"{name} server exited ({server.returncode}):\n{tail}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.5)
    tail = server_log_tail(log_path)
    raise SystemExit(f"{name} server did not answer in {timeout:.0f} s:\n{tail}")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (mlflow and its uvicorn, or gunicorn's master
    and worker); after 15 s, SIGKILL to whatever is left of it (normally nothing)."""
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        server.wait(timeout=15)
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


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
