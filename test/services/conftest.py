"""Fixtures that start the example services once per module and always stop them, against
databases of their own on the session's real PostgreSQL server (TLS only, SCRAM)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from postgres_server import PostgresServer

from .support import (
    ServiceProcess,
    TestDatabase,
    blackhole,
    create_database,
    refused_port,
    start,
    url_of,
)

METRICS_INTERVAL = "0.3"


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> Iterator[TestDatabase]:
    """A database of the module's own, provisioned as the platform does (the tables owned by
    a NOLOGIN role, a user per database service), dropped at the end."""
    with create_database(postgres, provision=True) as db:
        yield db


@pytest.fixture
def fresh_database(postgres: PostgresServer) -> Iterator[TestDatabase]:
    """A database of the test's own, provisioned as the platform does, for tests that count
    rows or workers."""
    with create_database(postgres, provision=True) as db:
        yield db


@dataclass(frozen=True)
class Stack:
    """The three services wired together as in the mesh, on 127.0.0.1."""

    data_ingestion: ServiceProcess
    analytics_engine: ServiceProcess
    api_gateway: ServiceProcess

    def by_name(self, service: str) -> ServiceProcess:
        return {
            "data-ingestion": self.data_ingestion,
            "analytics-engine": self.analytics_engine,
            "api-gateway": self.api_gateway,
        }[service]


@pytest.fixture(scope="module")
def stack(database: TestDatabase) -> Iterator[Stack]:
    """A healthy platform: seeded synthetic feed, fast ticks, short metric intervals."""
    with contextlib.ExitStack() as cleanup:
        data_ingestion = cleanup.enter_context(
            start(
                "data-ingestion",
                **database.env("data-ingestion"),
                SYMBOLS="AAPL,MSFT,BRK.B",
                FEED_SEED="7",
                TICK_INTERVAL_SECONDS="0.02",
                WINDOW_SIZE="200",
                METRICS_INTERVAL_SECONDS=METRICS_INTERVAL,
            )
        )
        analytics_engine = cleanup.enter_context(
            start(
                "analytics-engine",
                **database.env("analytics-engine"),
                REFRESH_INTERVAL_SECONDS="0.1",
                # ANALYSIS_WINDOW stays 1000: data-ingestion keeps 200 ticks per symbol.
                SMA_PERIODS="5,20",
                EMA_PERIODS="10",
                METRICS_INTERVAL_SECONDS=METRICS_INTERVAL,
            )
        )
        api_gateway = cleanup.enter_context(
            start(
                "api-gateway",
                DATA_INGESTION_URL=data_ingestion.base_url,
                ANALYTICS_ENGINE_URL=analytics_engine.base_url,
                METRICS_INTERVAL_SECONDS=METRICS_INTERVAL,
            )
        )
        yield Stack(data_ingestion, analytics_engine, api_gateway)


@dataclass(frozen=True)
class Degraded:
    """A gateway whose data-ingestion refuses connections, an analytics-engine whose database
    accepts connections but never answers, and a data-ingestion whose database refuses them."""

    analytics_engine: ServiceProcess
    data_ingestion: ServiceProcess
    api_gateway: ServiceProcess


@pytest.fixture(scope="module")
def degraded(database: TestDatabase) -> Iterator[Degraded]:
    with contextlib.ExitStack() as cleanup:
        refused = cleanup.enter_context(refused_port())
        hung = cleanup.enter_context(blackhole())
        analytics_engine = cleanup.enter_context(
            start(
                "analytics-engine",
                **database.env("analytics-engine", DB_PORT=str(hung.getsockname()[1])),
                DB_TIMEOUT_SECONDS="0.5",
                REFRESH_INTERVAL_SECONDS="5",
            )
        )
        data_ingestion = cleanup.enter_context(
            start(
                "data-ingestion",
                **database.env("data-ingestion", DB_PORT=str(refused)),
                DB_TIMEOUT_SECONDS="0.5",
                TICK_INTERVAL_SECONDS="0.05",
            )
        )
        api_gateway = cleanup.enter_context(
            start(
                "api-gateway",
                DATA_INGESTION_URL=url_of(refused),
                ANALYTICS_ENGINE_URL=analytics_engine.base_url,
                UPSTREAM_TIMEOUT_SECONDS="2",
            )
        )
        yield Degraded(analytics_engine, data_ingestion, api_gateway)
