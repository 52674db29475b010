"""The services against the real PostgreSQL server: schema, leases, the shared analysis queue,
per-task scaling metrics, TLS, and surviving a password rotation through Secrets Manager."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from postgres_server import PostgresServer

from examples.trading_platform.services.analytics_engine.app import (
    AnalyticsEngine,
)
from examples.trading_platform.services.analytics_engine.app import (
    Settings as AnalyticsSettings,
)
from examples.trading_platform.services.common.config import Env
from examples.trading_platform.services.common.db import (
    Database,
    DatabaseUnavailable,
    DbSettings,
    SecretsManagerCredentials,
)
from examples.trading_platform.services.common.schema import create_schema
from examples.trading_platform.services.data_ingestion.app import DataIngestion, Settings
from examples.trading_platform.services.data_ingestion.feed import Tick
from examples.trading_platform.services.data_ingestion.store import TickStore

from .support import TestDatabase, create_database, request, start, wait_until

REGION = "eu-west-1"


def db_of(env: dict[str, str], name: str = "test") -> Database:
    return Database(DbSettings.from_env(Env(env)), application_name=name, schema=create_schema)


def ingestion(
    database: TestDatabase, worker: str, symbols: str = "AAA,BBB", **env: str
) -> DataIngestion:
    """A data-ingestion service object (no HTTP server) with a seeded synthetic feed."""
    settings = Settings.from_env(
        Env(
            {
                **database.env("data-ingestion"),
                "SYMBOLS": symbols,
                "FEED_SEED": "3",
                "WINDOW_SIZE": "3",
                **env,
            }
        )
    )
    db = Database(settings.db, application_name="data-ingestion", schema=create_schema)
    store = TickStore(
        db,
        worker_id=worker,
        window=settings.window_size,
        max_symbols=settings.max_symbols,
        lease_seconds=settings.worker_timeout,
    )
    return DataIngestion(settings, settings.make_source(), store)


def engine(database: TestDatabase, worker: str, **env: str) -> AnalyticsEngine:
    settings = AnalyticsSettings.from_env(
        Env({**database.env("analytics-engine"), "SMA_PERIODS": "2", **env})
    )
    db = Database(settings.db, application_name="analytics-engine", schema=create_schema)
    return AnalyticsEngine(settings, db, worker_id=worker)


# --- schema ----------------------------------------------------------------------------------


def test_schema_is_created_once_by_tasks_starting_together(postgres: PostgresServer) -> None:
    with create_database(postgres) as empty:
        _schema_is_created_once_by_tasks_starting_together(empty)


def _schema_is_created_once_by_tasks_starting_together(fresh_database: TestDatabase) -> None:
    # GIVEN eight tasks of a local run (as the database's owner) starting at once against an
    # empty database
    dbs = [db_of(fresh_database.env()) for _ in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(dbs))

    def start_task(db: Database) -> None:
        barrier.wait()
        try:
            db.ensure_schema()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start_task, args=(db,)) for db in dbs]
    # WHEN each creates the schema
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    # THEN none failed, the tables exist once, and a later start changes nothing
    assert errors == []
    tables = fresh_database.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    )
    assert [t[0] for t in tables] == ["analyses", "symbols", "ticks", "workers"]
    owner = fresh_database.query("SELECT tableowner FROM pg_tables WHERE tablename = 'ticks'")
    assert owner == [[fresh_database.user]]  # created by the service's own login
    db_of(fresh_database.env()).ensure_schema()
    for db in dbs:
        db.close()


# --- data-ingestion's store ------------------------------------------------------------------


def test_ticks_are_stored_windowed_counted_and_never_double_counted(
    fresh_database: TestDatabase,
) -> None:
    service = ingestion(fresh_database, "w1", symbols="AAA", MAX_SYMBOLS="2")
    store = service.store
    assert service.poll_once() == 1  # schema, symbols, leases, one tick
    base = time.time() + 1000  # after the synthetic tick the first poll stored
    rows = [Tick("AAA", float(i), 10, base + i) for i in range(1, 6)]
    assert store.add(rows) == 5
    assert store.add(rows) == 0  # a feed polled twice: nothing newer than last_ts
    same_second = [Tick("AAA", 7.0, 1, base + 9), Tick("AAA", 7.5, 2, base + 9)]
    assert store.add(same_second) == 2  # trades sharing a timestamp in one batch all count
    ticks, total = store.recent("AAA", 10) or ([], 0)
    assert [t.price for t in ticks] == [5.0, 7.0, 7.5]  # WINDOW_SIZE=3, oldest first
    assert total == 8
    assert fresh_database.query("SELECT count(*) FROM ticks") == [[3]]
    assert store.recent("ZZZ", 1) is None
    (summary,) = store.symbols()
    assert summary == {
        "symbol": "AAA",
        "ticks_total": 8,
        "window": 3,
        "last_price": 7.5,
        "last_ts": base + 9,
    }
    # MAX_SYMBOLS=2: one more symbol fits, the next is refused (once)
    assert store.register(["BBB", "CCC"]) == 1
    assert store.register(["CCC"]) == 0
    assert store.rejected_new_symbols == 1
    assert store.ingested.take() == 8
    store.db.close()


def test_only_the_lease_holder_writes_a_symbol(fresh_database: TestDatabase) -> None:
    first = ingestion(fresh_database, "first", symbols="AAA")
    second = ingestion(fresh_database, "second", symbols="AAA")
    first.poll_once()
    second.poll_once()
    assert set(first.store.leases) == {"AAA"} and second.store.leases == {}
    tick = [Tick("AAA", 1.0, 1, 2e9)]
    assert second.store.add(tick) == 0  # fenced: not its lease
    assert first.store.add(tick) == 1
    first.store.release()  # at shutdown: the other task takes over at its next rebalance
    second.rebalance()
    assert set(second.store.leases) == {"AAA"}
    assert second.store.add([Tick("AAA", 1.1, 1, 2e9 + 1)]) == 1
    for service in (first, second):
        service.store.db.close()


def test_symbols_are_shared_out_and_rebalanced(fresh_database: TestDatabase) -> None:
    symbols = "AAA,BBB,CCC,DDD,EEE"
    one = ingestion(fresh_database, "one", symbols=symbols)
    one.poll_once()
    assert len(one.store.leases) == 5  # alone, it feeds everything
    two = ingestion(fresh_database, "two", symbols=symbols)
    two.poll_once()
    assert two.store.leases == {}  # nothing free yet
    one.rebalance()  # fair share is now ceil(5 / 2) = 3: two are given back
    two.rebalance()
    assert (len(one.store.leases), len(two.store.leases)) == (3, 2)
    assert set(one.store.leases).isdisjoint(two.store.leases)
    # The newcomer's feed continues each symbol from its stored price: no jump on hand-over.
    stored = dict(fresh_database.query("SELECT symbol, last_price FROM symbols"))
    (tick, *_) = [t for t in two.source.next_ticks() if t.symbol in two.store.leases]
    assert abs(tick.price / stored[tick.symbol] - 1) < 0.01
    for service in (one, two):
        service.store.db.close()


# --- scaling metrics -------------------------------------------------------------------------


def _ticks_per_flush(process: Any, since: int, flushes: int) -> float:
    def enough() -> list[float] | None:
        values = [r["TicksIngested"] for r in process.records()[since:] if "_aws" in r]
        return values[1 : flushes + 1] if len(values) > flushes else None  # skip a partial one

    values = wait_until(enough, timeout=15, what="TicksIngested flushes")
    return sum(values) / len(values)


def test_ticks_ingested_per_task_falls_when_a_task_is_added(
    fresh_database: TestDatabase,
) -> None:
    env = {
        **fresh_database.env("data-ingestion"),
        "SYMBOLS": "AAA,BBB,CCC,DDD",
        "TICK_INTERVAL_SECONDS": "0.05",
        "METRICS_INTERVAL_SECONDS": "0.5",
        "WORKER_TIMEOUT_SECONDS": "1.5",  # leases renewed every 0.5 s
    }
    with start("data-ingestion", **env) as first:
        alone = _ticks_per_flush(first, 0, 3)
        with start("data-ingestion", **env) as second:

            def split() -> bool | None:
                owners = fresh_database.query(
                    "SELECT owner, count(*) FROM symbols GROUP BY owner ORDER BY 2"
                )
                return True if [n for _, n in owners] == [2, 2] else None

            wait_until(split, timeout=10, what="two leases each")
            mark = (len(first.lines()), len(second.lines()))
            shared = (
                _ticks_per_flush(first, mark[0], 3),
                _ticks_per_flush(second, mark[1], 3),
            )
        # The second task gave its symbols back on SIGTERM: the first feeds all again.
        wait_until(
            lambda: (
                fresh_database.query("SELECT count(DISTINCT owner) FROM symbols") == [[1]] or None
            ),
            timeout=5,
            what="leases back with one task",
        )
    # Alone: 4 symbols x 10 ticks per 0.5 s. Two tasks: about half each, so the average the
    # target tracking policy reads halves when a task is added.
    assert alone > 25
    assert all(value < 0.75 * alone for value in shared), (alone, shared)
    assert sum(shared) == pytest.approx(alone, rel=0.35)


def test_analysis_backlog_is_each_tasks_share_and_work_is_claimed_once(
    fresh_database: TestDatabase,
) -> None:
    # GIVEN six symbols with ingested ticks that no analysis covers yet
    feeder = ingestion(fresh_database, "feeder", symbols="A1,A2,A3,B1,B2,B3")
    for _ in range(3):
        feeder.poll_once()
        time.sleep(0.01)
    backlog = 6 * 3
    a = engine(fresh_database, "engine-a", ANALYSIS_BATCH_SIZE="3")
    b = engine(fresh_database, "engine-b", ANALYSIS_BATCH_SIZE="3")
    # WHEN one engine task measures, then a second registers
    assert a.measure() == backlog
    assert [m.value for m in a.metrics()] == [backlog]  # the interval's peak share
    assert b.measure() == backlog / 2
    assert a.measure() == backlog / 2
    # THEN adding a task halved every task's figure
    assert [m.value for m in a.metrics()] == [backlog / 2]
    assert [m.value for m in b.metrics()] == [backlog / 2]
    # AND a symbol another task is working on is skipped, not waited for
    holder = fresh_database.connect()
    holder.run("BEGIN")
    locked = holder.run("SELECT symbol FROM analyses WHERE symbol LIKE 'A%' FOR UPDATE")
    assert len(locked) == 3
    assert b.work_batch() == 3
    done = fresh_database.query("SELECT symbol FROM analyses WHERE result IS NOT NULL")
    assert sorted(r[0] for r in done) == ["B1", "B2", "B3"]
    holder.run("ROLLBACK")
    holder.close()
    assert a.work_batch() == 3
    assert a.measure() == 0 and a.work_batch() == 0
    result = json.loads(
        fresh_database.query("SELECT result FROM analyses WHERE symbol = 'A1'")[0][0]
    )
    assert result["ticks"] == 3 and result["symbol"] == "A1"
    # A task that stops leaves the registry: the other's share is the whole backlog again.
    feeder.poll_once()
    b.stop()
    assert a.measure() == 6
    assert [m.value for m in a.metrics()] == [6]  # the peak since the last flush
    assert [m.name for m in a.metrics()] == []  # nothing measured since the last flush
    a.stop()
    feeder.store.db.close()


def test_analytics_reads_ticks_from_the_reader_endpoint(fresh_database: TestDatabase) -> None:
    feeder = ingestion(fresh_database, "feeder", symbols="RDR")
    feeder.poll_once()
    # The test server's certificate names both 127.0.0.1 (the writer here) and localhost.
    reader = engine(fresh_database, "reader", DB_READ_HOST="localhost")
    assert reader.db.has_reader
    reader.measure()
    assert reader.work_batch() == 1
    assert reader.db.reader.logins == 1  # the ticks came through the reader endpoint
    reader.stop()
    feeder.store.db.close()


# --- TLS -------------------------------------------------------------------------------------


def test_the_server_certificate_is_verified(fresh_database: TestDatabase) -> None:
    # The system trust store does not hold the test CA: no connection, never a fallback.
    env = {k: v for k, v in fresh_database.env("data-ingestion").items() if k != "DB_CA_FILE"}
    db = db_of(env)
    with pytest.raises(DatabaseUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        db.ensure_schema()


def test_service_connections_are_tls(fresh_database: TestDatabase) -> None:
    env = fresh_database.env("data-ingestion")
    with start("data-ingestion", **env, TICK_INTERVAL_SECONDS="0.05") as di:
        wait_until(
            lambda: request(di.port, "/api/v1/symbols").json["symbols"] or None,
            timeout=5,
            what="ticks",
        )
        rows = fresh_database.query(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            "WHERE a.application_name = 'data-ingestion'"
        )
    assert rows and all(ssl and version in ("TLSv1.2", "TLSv1.3") for ssl, version in rows)


# --- credentials from Secrets Manager, through a rotation ------------------------------------


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def test_service_keeps_working_through_a_password_rotation(
    fresh_database: TestDatabase, secrets_manager: Any
) -> None:
    # GIVEN the secret the stack creates, and data-ingestion configured with its ARN only
    arn = secrets_manager.create_secret(
        Name="market-data-db", SecretString=json.dumps(fresh_database.secret())
    )["ARN"]
    env = {"DB_SECRET_ARN": arn, "DB_CA_FILE": fresh_database.env()["DB_CA_FILE"]}
    settings = Settings.from_env(Env({**env, "SYMBOLS": "ROT", "FEED_SEED": "1"}))
    assert isinstance(settings.db.credentials(), SecretsManagerCredentials)
    # As settings.db.credentials() builds it, with a shorter re-read throttle (default 1 s).
    credentials = SecretsManagerCredentials(arn, region=REGION, min_refresh_interval=0.2)
    db = Database(
        settings.db,
        application_name="data-ingestion",
        schema=create_schema,
        credentials=credentials,
    )
    service = DataIngestion(
        settings, settings.make_source(), TickStore(db, worker_id="rotation", window=100)
    )
    assert service.poll_once() == 1
    assert credentials.reads == 1  # read once, then cached

    # WHEN the rotation changes the password in place (setSecret) and promotes the new
    # version (finishSecret)
    fresh_database.set_password("rotated-password-1")
    secrets_manager.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(fresh_database.secret(password="rotated-password-1")),
    )
    # THEN open connections keep working, and new logins re-read the secret after a 28P01
    assert service.poll_once() == 1
    service.store.db.writer.close()  # drop idle connections: the next one logs in again
    assert service.poll_once() == 1
    assert credentials.reads == 2

    # AND in the seconds in which rotation set the new password but AWSCURRENT is still the
    # old one, the new one is read from AWSPENDING
    fresh_database.set_password("rotated-password-2")
    secrets_manager.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(fresh_database.secret(password="rotated-password-2")),
        VersionStages=["AWSPENDING"],
    )
    service.store.db.writer.close()
    time.sleep(0.25)  # past the re-read throttle
    assert service.poll_once() == 1
    assert credentials.reads == 4  # AWSCURRENT (still old), then AWSPENDING

    # AND a password the secret does not hold fails as unavailable, naming no password
    fresh_database.set_password("not-in-the-secret")
    service.store.db.writer.close()
    time.sleep(0.25)
    with pytest.raises(DatabaseUnavailable) as info:
        service.store.rebalance()
    assert "28P01" in str(info.value)
    for password in ("rotated-password-2", "not-in-the-secret", fresh_database.password):
        assert password not in str(info.value)
    ticks = fresh_database.query("SELECT count(*) FROM ticks WHERE symbol = 'ROT'")
    assert ticks == [[4]]  # one per successful poll
    service.store.db.close()


def test_ticks_outlive_the_task_that_stored_them(fresh_database: TestDatabase) -> None:
    env = {
        **fresh_database.env("data-ingestion"),
        "SYMBOLS": "KEEP",
        "TICK_INTERVAL_SECONDS": "0.05",
    }
    with start("data-ingestion", **env, FEED_SEED="1") as first:
        wait_until(
            lambda: (
                (request(first.port, "/api/v1/symbols").json["symbols"] or [{}])[0].get(
                    "ticks_total", 0
                )
                >= 5
                or None
            ),
            timeout=5,
            what="five ticks",
        )
    before = fresh_database.query("SELECT ticks_total, last_price FROM symbols")[0]
    # A new task (another seed: another random start price) serves the stored ticks at once
    # and carries the series on from the stored price.
    with start(
        "data-ingestion", **{**env, "TICK_INTERVAL_SECONDS": "3600"}, FEED_SEED="2"
    ) as second:
        stored = request(second.port, "/api/v1/ticks/KEEP?limit=1000").json
        assert stored["ticks_total"] >= before[0] and len(stored["ticks"]) >= before[0]
        assert stored["ticks"][before[0] - 1]["price"] == before[1]
        wait_until(
            lambda: (
                request(second.port, "/api/v1/ticks/KEEP?limit=1").json["ticks_total"] > before[0]
                or None
            ),
            timeout=5,
            what="a tick from the new task",
        )
        latest = request(second.port, "/api/v1/ticks/KEEP?limit=1").json["ticks"][-1]
    assert abs(latest["price"] / before[1] - 1) < 0.01


def test_a_services_own_user_waits_for_the_platforms_schema(postgres: PostgresServer) -> None:
    # GIVEN a database whose tables the platform has not created yet, and a service user that
    # may not create in public
    with create_database(postgres) as empty:
        user, password = f"{empty.user}_app", "app-password-1234"
        admin = postgres.connect()
        try:
            admin.run(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
            db = db_of({**empty.env(), "DB_USER": user, "DB_PASSWORD": password})
            # WHEN the service first uses the database  THEN it is unavailable (503, retried),
            # saying why, and creates nothing
            with pytest.raises(DatabaseUnavailable, match="tables are missing"):
                db.ensure_schema()
            assert empty.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [
                [0]
            ]
            db.close()
        finally:
            admin.run(f"DROP ROLE IF EXISTS {user}")
            admin.close()
