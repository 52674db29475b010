"""Helpers to run the example services as real processes and talk to them over HTTP.

Services run exactly as in their images: ``python -m services.<name>.app`` from the folder
holding ``services/``. They bind port 0 and the tests read the real port from the
``listening`` log line, so parallel runs never race for a port.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pg8000.native
from postgres_server import PostgresServer

from examples.trading_platform.services.common.schema import GRANTS, SCHEMA
from trading_constructs.handlers.postgres_rotation import users as provisioning

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_PARENT = REPO_ROOT / "examples" / "trading_platform"  # cwd, as /app in the images
SERVICES_DIR = SERVICES_PARENT / "services"
MODULES = {
    "data-ingestion": "services.data_ingestion.app",
    "analytics-engine": "services.analytics_engine.app",
    "api-gateway": "services.api_gateway.app",
}
# The interpreter the services run on; set SERVICES_PYTHON to check another version (3.10+).
SERVICES_PYTHON = os.environ.get("SERVICES_PYTHON") or sys.executable
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something other than None; bounded in time and count."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")


class HttpResult:
    """Status, headers and decoded JSON body (None for an empty body) of one request."""

    def __init__(self, status: int, headers: Mapping[str, str], raw: bytes, elapsed: float):
        self.status = status
        self.headers = dict(headers)
        self.raw = raw
        self.elapsed = elapsed
        self.json: Any = json.loads(raw) if raw else None

    def __repr__(self) -> str:
        return f"HttpResult({self.status}, {self.raw[:200]!r})"


def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> HttpResult:
    """One HTTP request to 127.0.0.1; any method, path sent verbatim."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        raw = response.read()
        return HttpResult(
            response.status, dict(response.getheaders()), raw, time.monotonic() - started
        )
    finally:
        conn.close()


def raw_exchange(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes that are not valid HTTP and return whatever comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def service_env(**overrides: str) -> dict[str, str]:
    """A minimal environment: nothing from the caller's shell (proxies, AWS vars) leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BIND_HOST": "127.0.0.1",
        "PORT": "0",
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


class ServiceProcess:
    """One service process with its stdout collected line by line on a reader thread."""

    def __init__(self, service: str, env: Mapping[str, str]) -> None:
        self.service = service
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self.proc = subprocess.Popen(
            [SERVICES_PYTHON, "-m", MODULES[service]],
            cwd=SERVICES_PARENT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name=f"{service}-stdout", daemon=True)
        self._reader.start()
        self._port: int | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def records(self) -> list[dict[str, Any]]:
        """Every stdout line parsed as JSON (the services write nothing else)."""
        return [json.loads(line) for line in self.lines() if line.strip()]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = START_TIMEOUT
    ) -> dict[str, Any]:
        """The first JSON line matching ``predicate``, waiting at most ``timeout``."""

        def probe() -> dict[str, Any] | None:
            # Read "finished" first: once the reader is done, the lines below are all there is.
            finished = self.proc.poll() is not None and not self._reader.is_alive()
            for line in self.lines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and predicate(record):
                    return record
            if finished:
                raise AssertionError(
                    f"{self.service} exited with {self.proc.returncode}:\n"
                    + "\n".join(self.lines()[-20:])
                )
            return None

        return wait_until(probe, timeout=timeout, what=f"{self.service} log line")

    @property
    def port(self) -> int:
        if self._port is None:
            record = self.wait_for(lambda r: r.get("message") == "listening")
            self._port = int(record["port"])
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        port = self.port

        def probe() -> bool | None:
            try:
                return True if request(port, "/health", timeout=1.0).status == 200 else None
            except OSError:
                return None

        try:
            wait_until(probe, timeout=timeout, what=f"{self.service} /health")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; output:\n" + "\n".join(self.lines()[-20:])) from None

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, SIGKILL as a last resort; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._reader.join(timeout)
        return self.proc.returncode

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.terminate()


def start(service: str, **env: str) -> ServiceProcess:
    """Start a service and wait until its /health answers 200."""
    process = ServiceProcess(service, service_env(**env))
    try:
        process.wait_healthy()
    except BaseException:
        process.terminate()
        raise
    return process


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def blackhole() -> Iterator[socket.socket]:
    """A listening socket that never answers: a hung upstream (the kernel completes connects)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock
    finally:
        sock.close()


def url_of(port_or_socket: int | socket.socket) -> str:
    port = port_or_socket if isinstance(port_or_socket, int) else port_or_socket.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeFeed:
    """A local market-data endpoint that records request headers and serves set payloads."""

    def __init__(self) -> None:
        self.status = 200
        self.payload: Any = {"ticks": []}
        self.seen_headers: list[dict[str, str]] = []  # names lower-cased
        self.seen_paths: list[str] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feed.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
                feed.seen_paths.append(self.path)
                body = json.dumps(feed.payload).encode()
                self.send_response(feed.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/trades"

    def __enter__(self) -> FakeFeed:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(STOP_TIMEOUT)


@dataclass(frozen=True)
class TestDatabase:
    """A database on the test server, owned by a login role of its own (as the secret's user
    owns the example's ``marketdata`` database): what the services are given."""

    __test__ = False  # not a test class, despite the name

    server: PostgresServer
    name: str
    user: str
    password: str
    users: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Each service's own user and password, when the platform provisioned the database."""

    def env(self, service: str | None = None, **overrides: str) -> dict[str, str]:
        """The variables for a local run: DB_HOST and friends, and the test CA; as
        ``service``'s own user when given (provisioned databases), else as the owner."""
        user, password = self.users[service] if service else (self.user, self.password)
        env = {
            "DB_HOST": self.server.host,
            "DB_PORT": str(self.server.port),
            "DB_NAME": self.name,
            "DB_USER": user,
            "DB_PASSWORD": password,
            "DB_CA_FILE": str(self.server.ca_file),
        }
        env.update(overrides)
        return env

    def secret(self, **overrides: Any) -> dict[str, Any]:
        """The JSON of the example's rotating secret for this database."""
        doc: dict[str, Any] = {
            "engine": "postgres",
            "host": self.server.host,
            "port": self.server.port,
            "dbname": self.name,
            "username": self.user,
            "password": self.password,
        }
        doc.update(overrides)
        return doc

    def connect(self) -> pg8000.native.Connection:
        """A connection as the superuser, to look at what the services wrote."""
        return self.server.connect(database=self.name)

    def query(self, sql: str, **params: Any) -> list[list[Any]]:
        conn = self.connect()
        try:
            return list(conn.run(sql, **params) or [])
        finally:
            conn.close()

    def set_password(self, password: str) -> None:
        """Change the role's password in place, as a single-user rotation does."""
        admin = self.server.connect()
        try:
            admin.run(f"ALTER ROLE {self.user} PASSWORD {pg8000.native.literal(password)}")
        finally:
            admin.close()


@contextlib.contextmanager
def create_database(server: PostgresServer, *, provision: bool = False) -> Iterator[TestDatabase]:
    """A new role and a database it owns (as an RDS master user owns its database: CREATEROLE,
    no superuser); all dropped on exit. With ``provision``, the platform's part too, by the
    handler the stack runs: the tables owned by a NOLOGIN role, and each database service's
    own user with exactly its grants."""
    suffix = secrets.token_hex(4)
    db = TestDatabase(server, f"market_{suffix}", f"svc_{suffix}", secrets.token_urlsafe(18))
    admin = server.connect()
    try:
        admin.run(
            f"CREATE ROLE {db.user} LOGIN CREATEROLE PASSWORD {pg8000.native.literal(db.password)}"
        )
        admin.run(f"CREATE DATABASE {db.name} OWNER {db.user}")
    finally:
        admin.close()
    roles = [f"owner_{suffix}"]
    try:
        if provision:
            _provision(db, roles[0], suffix)
            roles[:0] = [user for user, _ in db.users.values()]
        yield db
    finally:
        admin = server.connect()
        try:
            admin.run(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
            for role in [*roles, db.user]:
                admin.run(f"DROP ROLE IF EXISTS {role}")
        finally:
            admin.close()


def _provision(db: TestDatabase, owner: str, suffix: str) -> None:
    master = db.server.connect(user=db.user, password=db.password, database=db.name)
    try:
        provisioning.ensure_schema(master, owner=owner, statements=list(SCHEMA))
        for service, grants in GRANTS.items():
            user = f"{service.replace('-', '_')}_{suffix}"
            password = secrets.token_urlsafe(18)
            provisioning.ensure_user(
                master,
                username=user,
                password=password,
                owner=owner,
                grants={table: list(privileges) for table, privileges in grants.items()},
            )
            db.users[service] = (user, password)
    finally:
        master.close()
