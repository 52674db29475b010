"""PostgreSQL for the services: credentials, verified TLS, a small pool, rotation-proof logins.

Credentials come from the Secrets Manager secret named by ``DB_SECRET_ARN`` (JSON: engine,
host, port, dbname, username, password), the service's own database user, read at run time
with the task role and cached. On AWS the secret rotates with alternating users: each rotation
switches it between ``<user>`` and ``<user>_clone`` and resets the password of the one it
switches to, so the cached login keeps working until the rotation after next. Either way
(a secret rotated in place, single user, works too) a login refused with SQLSTATE 28P01 reads
the secret again and retries once with what it holds now (``AWSCURRENT``, or ``AWSPENDING``
during the seconds in which a single-user rotation has changed the password but not yet
promoted the new version).
For local runs ``DB_HOST``/``DB_PORT``/``DB_NAME``/``DB_USER``/``DB_PASSWORD`` work instead.

Every connection is TLS, its certificate verified against ``DB_CA_FILE`` (the Amazon RDS CA
bundle in the images) and its host name checked: pg8000 alone would fall back to unverified
TLS. A password is never logged or put in a repr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pg8000.native
from pg8000.exceptions import DatabaseError, InterfaceError

from .config import ConfigError, Env
from .http import HttpError

INVALID_PASSWORD = "28P01"
DEFAULT_DB_PORT = 5432
DEFAULT_DB_NAME = "marketdata"
# A connection idle this long is checked before reuse: failovers and idle timeouts drop them.
PING_AFTER_IDLE_SECONDS = 10.0
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:[\w/+=.@-]+")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[?[0-9A-Fa-f:.]+\]?")

logger = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database cannot be reached, refused the login or failed a statement: answer 503,
    retry later. The message never holds a password."""


def unavailable_error() -> HttpError:
    """What an HTTP route answers while the database is unavailable."""
    return HttpError(503, "database unavailable", headers={"Retry-After": "1"})


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, if it is one."""
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        code = exc.args[0].get("C")
        return code if isinstance(code, str) else None
    return None


def describe(exc: BaseException) -> str:
    """A log-safe reason: SQLSTATE and server message, or the exception's type and text."""
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return f"{exc.args[0].get('C', '?')}: {exc.args[0].get('M', '')}"[:300]
    cause = exc.__cause__ or exc.__context__
    because = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return f"{type(exc).__name__}: {exc}{because}"[:300]


@dataclass(frozen=True)
class Credentials:
    """Where the database is and who logs in."""

    host: str
    port: int
    dbname: str
    username: str
    password: str = field(repr=False)


class CredentialSource(Protocol):
    def current(self) -> Credentials: ...

    def refresh(self, rejected: Credentials) -> Credentials: ...


class StaticCredentials:
    """Credentials from the environment (local runs and tests): nothing to re-read."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def current(self) -> Credentials:
        return self._credentials

    def refresh(self, rejected: Credentials) -> Credentials:
        return self._credentials


def parse_secret(raw: str) -> Credentials:
    """Credentials from the secret's JSON; a malformed secret names the field, never a value."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise DatabaseUnavailable("database secret is not JSON") from None
    if not isinstance(doc, dict):
        raise DatabaseUnavailable("database secret is not a JSON object")
    for name in ("host", "username", "password"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise DatabaseUnavailable(f"database secret has no {name}")
    port = doc.get("port", DEFAULT_DB_PORT)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise DatabaseUnavailable("database secret has an invalid port")
    dbname = doc.get("dbname") or DEFAULT_DB_NAME
    if not isinstance(dbname, str):
        raise DatabaseUnavailable("database secret has an invalid dbname")
    return Credentials(doc["host"], port, dbname, doc["username"], doc["password"])


class SecretsManagerCredentials:
    """The rotating secret, read with the task role, cached, re-read when a login fails."""

    def __init__(
        self,
        secret_arn: str,
        *,
        region: str | None,
        timeout: float = 5.0,
        min_refresh_interval: float = 1.0,
        client: Any = None,
    ) -> None:
        self.secret_arn = secret_arn
        self._region = region
        self._timeout = timeout
        self._client = client
        self._min_refresh_interval = min_refresh_interval
        self._lock = threading.Lock()
        self._cached: Credentials | None = None
        self._last_refresh = float("-inf")
        self.reads = 0

    def _secrets_manager(self) -> Any:
        if self._client is None:
            import boto3  # imported here: only tasks that use the secret pay for boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "secretsmanager",
                region_name=self._region,
                config=Config(
                    connect_timeout=self._timeout,
                    read_timeout=self._timeout,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
        return self._client

    def _read(self, stage: str) -> Credentials | None:
        """The secret at ``stage``; None when no version has that stage (AWSPENDING)."""
        from botocore.exceptions import BotoCoreError, ClientError

        self.reads += 1
        try:
            value = self._secrets_manager().get_secret_value(
                SecretId=self.secret_arn, VersionStage=stage
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if stage != "AWSCURRENT" and code == "ResourceNotFoundException":
                return None
            raise DatabaseUnavailable(f"cannot read the database secret: {code}") from None
        except BotoCoreError as exc:
            raise DatabaseUnavailable(f"cannot read the database secret: {exc}") from None
        return parse_secret(value.get("SecretString") or "")

    def current(self) -> Credentials:
        with self._lock:
            if self._cached is None:
                self._cached = self._read("AWSCURRENT")
            return self._cached

    def refresh(self, rejected: Credentials) -> Credentials:
        """Credentials newer than ``rejected``, if the secret holds any; else ``rejected``."""
        with self._lock:
            cached = self._cached
            if cached is not None and cached.password != rejected.password:
                return cached  # another thread already re-read it
            if time.monotonic() - self._last_refresh < self._min_refresh_interval:
                return cached or rejected  # a wrong password must not hammer Secrets Manager
            self._last_refresh = time.monotonic()
            fresh = self._read("AWSCURRENT")
            if fresh is not None and fresh.password == rejected.password:
                # Single-user rotation sets the new password in the database before it moves
                # AWSCURRENT to it; in between, the new one is only in AWSPENDING.
                pending = self._read("AWSPENDING")
                fresh = pending or fresh
            self._cached = fresh
            return fresh or rejected


@dataclass(frozen=True)
class DbSettings:
    """How to reach PostgreSQL: ``DB_SECRET_ARN`` or ``DB_HOST`` and friends, plus TLS."""

    secret_arn: str | None
    static: Credentials | None = field(repr=False)
    read_host: str | None
    ca_file: str | None
    timeout: float
    pool_size: int

    @classmethod
    def from_env(cls, env: Env) -> DbSettings:
        secret_arn = env.get_optional("DB_SECRET_ARN")
        static = None
        if secret_arn is not None:
            if not _SECRET_ARN.fullmatch(secret_arn):
                raise ConfigError("DB_SECRET_ARN must be a Secrets Manager secret ARN")
        elif env.get_optional("DB_HOST") is not None:
            static = Credentials(
                host=_host(env, "DB_HOST"),
                port=env.get_int("DB_PORT", DEFAULT_DB_PORT, minimum=1, maximum=65535),
                dbname=env.get_str("DB_NAME", DEFAULT_DB_NAME),
                username=_required(env, "DB_USER"),
                password=_required(env, "DB_PASSWORD"),
            )
        else:
            raise ConfigError(
                "DB_SECRET_ARN (or DB_HOST, DB_USER and DB_PASSWORD) must say where the database is"
            )
        ca_file = env.get_optional("DB_CA_FILE")
        if ca_file is not None:
            try:
                ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError, ValueError):
                raise ConfigError(
                    "DB_CA_FILE must be a readable PEM file of CA certificates"
                ) from None
        read_host = _host(env, "DB_READ_HOST") if env.get_optional("DB_READ_HOST") else None
        return cls(
            secret_arn=secret_arn,
            static=static,
            read_host=read_host,
            ca_file=ca_file,
            timeout=env.get_float("DB_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=60.0),
            pool_size=env.get_int("DB_POOL_SIZE", 4, minimum=1, maximum=64),
        )

    @property
    def region(self) -> str | None:
        """The secret's region, from its ARN (the task's AWS_REGION is the same)."""
        match = _SECRET_ARN.fullmatch(self.secret_arn or "")
        return match.group(1) if match else None

    def credentials(self) -> CredentialSource:
        if self.static is not None:
            return StaticCredentials(self.static)
        assert self.secret_arn is not None
        return SecretsManagerCredentials(self.secret_arn, region=self.region, timeout=self.timeout)

    def ssl_context(self) -> ssl.SSLContext:
        """Verify the server's certificate and host name; no TLS before 1.2."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def _required(env: Env, name: str) -> str:
    value = env.get_optional(name)
    if value is None:
        raise ConfigError(f"{name} must be set when DB_HOST is")
    return value


def _host(env: Env, name: str) -> str:
    value = env.get_str(name, "")
    if not _HOST.fullmatch(value):
        raise ConfigError(f"{name} must be a host name or IP address")
    return value


@dataclass
class _Idle:
    connection: pg8000.native.Connection
    since: float


class ConnectionPool:
    """At most ``size`` verified-TLS connections to one host; each borrower gets its own
    (pg8000 connections are not thread-safe). A failed borrower's connection is closed."""

    def __init__(
        self,
        credentials: CredentialSource,
        *,
        ssl_context: ssl.SSLContext,
        timeout: float,
        size: int,
        application_name: str,
        host: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.host = host
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._application_name = application_name
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []
        self.logins = 0

    def _open(self, credentials: Credentials) -> pg8000.native.Connection:
        self.logins += 1
        return pg8000.native.Connection(
            credentials.username,
            password=credentials.password,
            host=self.host or credentials.host,
            port=credentials.port,
            database=credentials.dbname,
            ssl_context=self._ssl_context,
            timeout=self._timeout,
            application_name=self._application_name,
            startup_params={
                "statement_timeout": str(int(self._timeout * 1000)),
                # A task that stalls holding row locks must not hold them for long.
                "idle_in_transaction_session_timeout": "60000",
            },
        )

    def _connect(self) -> pg8000.native.Connection:
        credentials = self.credentials.current()
        try:
            return self._open(credentials)
        except DatabaseError as exc:
            if sqlstate(exc) != INVALID_PASSWORD:
                raise
        fresh = self.credentials.refresh(credentials)
        if fresh.password == credentials.password:
            raise DatabaseUnavailable(
                f"{INVALID_PASSWORD}: password rejected and the secret holds no other one"
            )
        logger.info("database password rejected; using the re-read secret")
        return self._open(fresh)

    def _take_idle(self) -> pg8000.native.Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                idle = self._idle.pop()
            if time.monotonic() - idle.since < PING_AFTER_IDLE_SECONDS:
                return idle.connection
            try:
                idle.connection.run("SELECT 1")
                return idle.connection
            except (InterfaceError, DatabaseError, OSError):
                _close(idle.connection)

    @contextlib.contextmanager
    def connection(self) -> Iterator[pg8000.native.Connection]:
        """Borrow a connection; any failure becomes :class:`DatabaseUnavailable`."""
        if not self._slots.acquire(timeout=self._timeout):
            raise DatabaseUnavailable("every database connection is busy")
        try:
            conn = None
            try:
                conn = self._take_idle() or self._connect()
                yield conn
            except (InterfaceError, DatabaseError, OSError) as exc:
                if conn is not None:
                    _close(conn)
                raise DatabaseUnavailable(describe(exc)) from exc
            except BaseException:
                if conn is not None:
                    _close(conn)
                raise
            else:
                with self._lock:
                    self._idle.append(_Idle(conn, time.monotonic()))
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[pg8000.native.Connection]:
        """A connection inside BEGIN ... COMMIT; on an error the connection is closed, which
        rolls the transaction back."""
        with self.connection() as conn:
            conn.run("BEGIN")
            yield conn
            conn.run("COMMIT")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for item in idle:
            _close(item.connection)


def _close(conn: pg8000.native.Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()


class Database:
    """The writer (the cluster endpoint) and the reader (``DB_READ_HOST``, else the writer);
    the schema is checked (or, where the user may, created) on first use."""

    def __init__(
        self,
        settings: DbSettings,
        *,
        application_name: str,
        schema: Callable[[pg8000.native.Connection], None],
        credentials: CredentialSource | None = None,
    ) -> None:
        self.credentials = credentials or settings.credentials()
        context = settings.ssl_context()
        common: dict[str, Any] = {
            "ssl_context": context,
            "timeout": settings.timeout,
            "size": settings.pool_size,
            "application_name": application_name,
        }
        self.writer = ConnectionPool(self.credentials, **common)
        self.reader = (
            ConnectionPool(self.credentials, host=settings.read_host, **common)
            if settings.read_host
            else self.writer
        )
        self._schema = schema
        self._schema_lock = threading.Lock()
        self.schema_ready = False

    @property
    def has_reader(self) -> bool:
        return self.reader is not self.writer

    def ensure_schema(self) -> None:
        """Create the tables if this process has not yet seen them; raises
        DatabaseUnavailable while the database cannot be reached."""
        if self.schema_ready:
            return
        with self._schema_lock:
            if self.schema_ready:
                return
            with self.writer.transaction() as conn:
                self._schema(conn)
            self.schema_ready = True
            logger.info("database schema ready")

    @contextlib.contextmanager
    def write(self) -> Iterator[pg8000.native.Connection]:
        """A writer transaction."""
        self.ensure_schema()
        with self.writer.transaction() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[pg8000.native.Connection]:
        """A reader connection in autocommit: each statement sees its own snapshot."""
        self.ensure_schema()
        with self.reader.connection() as conn:
            yield conn

    def close(self) -> None:
        self.writer.close()
        if self.has_reader:
            self.reader.close()
