"""The market-data tables both database services share, and their worker registry.

``symbols`` is the work list of data-ingestion: a row per symbol with its lease (which task
ingests it, until when) and its running totals. ``ticks`` holds the newest ``WINDOW_SIZE``
ticks per symbol. ``analyses`` is the work list of analytics-engine: a row per symbol with the
last result and how many of the symbol's ticks it covered. ``workers`` is a heartbeat per
running task, so each task knows how many share the work.

The platform creates the tables, not the services: on AWS the stack runs ``SCHEMA`` as the
NOLOGIN role ``OWNER`` (``trading_constructs.DbSchema``), and gives each service a database
user of its own holding exactly ``GRANTS[service]`` (``trading_constructs.DbUser``): what the
service's statements need, and no more. A service only checks that the tables are there
(``create_schema``); a local run whose user may create in ``public`` creates them itself.
Creation is idempotent and serialized by a transaction-scoped advisory lock, so any number
of tasks may start at once (concurrent ``CREATE TABLE IF NOT EXISTS`` can otherwise fail).
"""

from __future__ import annotations

import os
import socket
import uuid

import pg8000.native

from .db import DatabaseUnavailable

# Any fixed 64-bit key; only the services take it.
SCHEMA_LOCK_KEY = 7_215_532_019_448_201

OWNER = "marketdata_owner"
"""The NOLOGIN role that owns the tables on AWS: no service logs in as it."""

TABLES = ("symbols", "ticks", "analyses", "workers")

GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    # registers symbols, leases them (UPDATE ... FOR UPDATE), stores and trims ticks, and
    # heartbeats; it never touches analyses
    "data-ingestion": {
        "symbols": ("SELECT", "INSERT", "UPDATE"),
        "ticks": ("SELECT", "INSERT", "DELETE"),
        "workers": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    },
    # reads symbols and ticks, keeps its results in analyses, and heartbeats
    "analytics-engine": {
        "symbols": ("SELECT",),
        "ticks": ("SELECT",),
        "analyses": ("SELECT", "INSERT", "UPDATE"),
        "workers": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    },
}
"""The table privileges of each service's database user, derived from its statements."""

USERNAMES = {service: service.replace("-", "_") for service in GRANTS}
"""Each service's database user (its alternate during rotation is ``<user>_clone``)."""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS symbols (
        symbol text PRIMARY KEY,
        owner text,
        lease_expires_at timestamptz,
        ticks_total bigint NOT NULL DEFAULT 0,
        last_price double precision,
        last_ts double precision,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS ticks (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        symbol text NOT NULL REFERENCES symbols (symbol),
        price double precision NOT NULL CHECK (price > 0),
        size bigint NOT NULL CHECK (size >= 0),
        ts double precision NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ticks_symbol_id ON ticks (symbol, id)",
    """CREATE TABLE IF NOT EXISTS analyses (
        symbol text PRIMARY KEY REFERENCES symbols (symbol),
        ticks_total bigint NOT NULL DEFAULT 0,
        result text,
        computed_at timestamptz
    )""",
    """CREATE TABLE IF NOT EXISTS workers (
        service text NOT NULL,
        worker_id text NOT NULL,
        heartbeat_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (service, worker_id)
    )""",
)


class SchemaMissing(DatabaseUnavailable):
    """The tables are not there and this user may not create them: the platform has not run
    the schema yet (or ran it in another database). Answered 503 and retried, as any other
    database outage."""


def create_schema(conn: pg8000.native.Connection) -> None:
    """Check every table is there; create what is missing if this user may create in
    ``public`` (local runs), else raise ``SchemaMissing``. Call inside a transaction."""
    rows = conn.run(
        "SELECT count(to_regclass(t)) FROM unnest(CAST(:tables AS text[])) AS t",
        tables=list(TABLES),
    )
    if int(rows[0][0]) == len(TABLES):
        return
    if not conn.run("SELECT has_schema_privilege('public', 'CREATE')")[0][0]:
        raise SchemaMissing(
            "the market-data tables are missing and this user may not create them: "
            "the platform creates them (the stack's schema resource)"
        )
    conn.run("SELECT pg_advisory_xact_lock(:key)", key=SCHEMA_LOCK_KEY)
    for statement in SCHEMA:
        conn.run(statement)


def heartbeat(conn: pg8000.native.Connection, service: str, worker_id: str, timeout: float) -> int:
    """Record that ``worker_id`` is alive, forget workers silent for long, and return how many
    of ``service``'s workers heartbeated within ``timeout`` seconds (this one included)."""
    conn.run(
        "INSERT INTO workers (service, worker_id) VALUES (:service, :worker) "
        "ON CONFLICT (service, worker_id) DO UPDATE SET heartbeat_at = now()",
        service=service,
        worker=worker_id,
    )
    conn.run(
        "DELETE FROM workers WHERE service = :service "
        "AND heartbeat_at < now() - make_interval(secs => CAST(:gone AS float8))",
        service=service,
        gone=timeout * 10,
    )
    rows = conn.run(
        "SELECT count(*) FROM workers WHERE service = :service "
        "AND heartbeat_at > now() - make_interval(secs => CAST(:timeout AS float8))",
        service=service,
        timeout=timeout,
    )
    return max(int(rows[0][0]), 1)


def deregister(conn: pg8000.native.Connection, service: str, worker_id: str) -> None:
    """Leave the registry at shutdown, so the others count one fewer at once."""
    conn.run(
        "DELETE FROM workers WHERE service = :service AND worker_id = :worker",
        service=service,
        worker=worker_id,
    )


def new_worker_id() -> str:
    """A name for this task in the registry: host (the task's ENI name on Fargate), pid and a
    random suffix, so a restarted process never inherits a dead one's leases."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
