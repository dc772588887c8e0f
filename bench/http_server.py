"""Servers for the benchmarks that go over HTTP: start one, wait for it, call it, stop it.

Shared by bench_mlflow_anchor.py (MLflow's registry server beside Stagegate) and
bench_lineage.py (the lineage API through gunicorn, as the README runs it in production).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlencode

TICK = os.sysconf("SC_CLK_TCK")


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

    def fetch(self, method: str, path: str, payload=None) -> bytes:
        """The answer's body, unparsed (ApiError unless the status is 2xx); a GET's payload
        goes in the query string, any other's as a JSON body."""
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
        data = response.read()
        if not 200 <= response.status < 300:
            request = f"{method} {path} {(body or '')[:500]}".strip()
            raise ApiError(request, response.status, data.decode(errors="replace"))
        return data

    def call(self, method: str, endpoint: str, payload: dict | None = None) -> dict:
        data = self.fetch(method, self.prefix + endpoint, payload)
        return json.loads(data) if data else {}

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


def stagegate_server(port: int, workers: int = 1) -> list[str]:
    """The README's production command: gunicorn's sync workers serving config.wsgi."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        raise SystemExit(f"error: no gunicorn beside {sys.executable} ({gunicorn} is missing)")
    return [
        str(gunicorn),
        "config.wsgi",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
    ]


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


def stagegate_env(database_url: str, workdir: Path) -> dict[str, str]:
    """A Stagegate server's environment, production-like: DEBUG off, no broker (tasks run in
    process), its own var/ and media folders, plain HTTP on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        # Not "production": that mode redirects plain HTTP to HTTPS (a TLS proxy's job).
        STAGEGATE_ENV="development",
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url,
        STAGEGATE_VAR_DIR=str(workdir / "var"),
        MEDIA_ROOT=str(workdir / "media"),
    )
    return env


class ServerCpu:
    """CPU seconds of a server's process tree and of the PostgreSQL backends connected to its
    database, between start() and stop()."""

    def __init__(self, server_pid: int, database: str, admin):
        self.server_pid, self.database, self.admin = server_pid, database, admin

    def _read(self) -> tuple[float, dict[int, float]]:
        rows = self.admin.execute(
            "select pid from pg_stat_activity where datname = %s", [self.database]
        ).fetchall()
        server = sum(proc_cpu(pid) for pid in process_tree(self.server_pid))
        return server, {pid: proc_cpu(pid) for (pid,) in rows}

    def start(self) -> None:
        self.begin = self._read()

    def stop(self) -> tuple[float, float]:
        """(server, database) CPU seconds since start()."""
        server, backends = self._read()
        database = sum(cpu - self.begin[1].get(pid, 0.0) for pid, cpu in backends.items())
        return server - self.begin[0], database
