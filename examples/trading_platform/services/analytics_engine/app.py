"""analytics-engine: keep per-symbol analytics current with the ticks in PostgreSQL.

The tasks share the work through the ``analyses`` table, a queue with a row per symbol: each
refresh, a task claims a batch of symbols whose ``ticks_total`` moved past what their last
analysis covered (``FOR UPDATE SKIP LOCKED``: two tasks never claim the same symbol), reads
their newest ticks (from the reader endpoint when ``DB_READ_HOST`` is set), and stores the
results. Requests are answered from stored results at most ``CACHE_TTL_SECONDS`` old, else
computed on demand; an unreachable database gives a 503 within about ``DB_TIMEOUT_SECONDS``.

``AnalysisBacklog`` is each task's share of the backlog: ticks ingested but not yet covered
by an analysis, summed over symbols, divided by the analytics-engine tasks that heartbeat in
the database. Adding a task divides it at once, and drains it faster.

Run: ``python -m services.analytics_engine.app`` from the folder holding ``services/``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import pg8000.native

from ..common.config import CommonSettings, ConfigError, Env
from ..common.db import Database, DatabaseUnavailable, DbSettings, unavailable_error
from ..common.http import HttpError, Request, Response, Router, check_query, require_symbol
from ..common.logs import Throttle
from ..common.metrics import Counter, Metric, PeakGauge
from ..common.runtime import BackgroundLoop, ServiceRuntime, main
from ..common.schema import create_schema, deregister, heartbeat, new_worker_id
from .analytics import Trade, summarize

SERVICE = "analytics-engine"
DEFAULT_PORT = 8081
ERROR_LOG_INTERVAL_SECONDS = 30.0

# Not __name__: run with -m, that is "__main__", which says nothing in a log line.
logger = logging.getLogger("services.analytics_engine")

_TICKS = (
    "SELECT s.ticks_total, t.price, t.size, t.ts FROM symbols s "
    "LEFT JOIN LATERAL (SELECT id, price, size, ts FROM ticks "
    "  WHERE symbol = s.symbol ORDER BY id DESC LIMIT :limit) t ON true "
    "WHERE s.symbol = :symbol ORDER BY t.id"
)
_NEW_SYMBOLS = (
    "INSERT INTO analyses (symbol) SELECT s.symbol FROM symbols s "
    "WHERE NOT EXISTS (SELECT 1 FROM analyses a WHERE a.symbol = s.symbol) "
    "ON CONFLICT DO NOTHING"
)
_BACKLOG = (
    "SELECT COALESCE(sum(s.ticks_total - COALESCE(a.ticks_total, 0)), 0) FROM symbols s "
    "LEFT JOIN analyses a USING (symbol) WHERE s.ticks_total > COALESCE(a.ticks_total, 0)"
)
_CLAIM = (
    "SELECT a.symbol FROM analyses a JOIN symbols s USING (symbol) "
    "WHERE s.ticks_total > a.ticks_total "
    "ORDER BY s.ticks_total - a.ticks_total DESC, a.symbol LIMIT :batch "
    "FOR UPDATE OF a SKIP LOCKED"
)
_STORE = (
    "UPDATE analyses SET result = :result, ticks_total = GREATEST(ticks_total, :total), "
    "computed_at = now() WHERE symbol = :symbol"
)
# The same, on demand: skipped while a refresh holds the row, or if it already covers more.
_STORE_IF_FREE = (
    "UPDATE analyses SET result = :result, ticks_total = :total, computed_at = now() "
    "WHERE symbol = (SELECT symbol FROM analyses WHERE symbol = :symbol "
    "AND ticks_total <= :total FOR UPDATE SKIP LOCKED)"
)


def _periods(env: Env, name: str, default: str) -> tuple[int, ...]:
    periods = []
    for raw in env.get_list(name, default):
        if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
            raise ConfigError(f"{name} must be comma-separated integers from 1 to 10000")
        periods.append(int(raw))
    return tuple(sorted(set(periods)))


@dataclass(frozen=True)
class Settings:
    """analytics-engine settings."""

    common: CommonSettings
    db: DbSettings
    refresh_interval: float
    cache_ttl: float
    analysis_window: int
    batch_size: int
    worker_timeout: float
    sma_periods: tuple[int, ...]
    ema_periods: tuple[int, ...]

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        return cls(
            common=CommonSettings.from_env(env, service=SERVICE, default_port=DEFAULT_PORT),
            db=DbSettings.from_env(env),
            refresh_interval=env.get_float(
                "REFRESH_INTERVAL_SECONDS", 1.0, minimum=0.05, maximum=3600.0
            ),
            cache_ttl=env.get_float("CACHE_TTL_SECONDS", 5.0, minimum=0.0, maximum=3600.0),
            # At most data-ingestion's WINDOW_SIZE ticks are kept per symbol.
            analysis_window=env.get_int("ANALYSIS_WINDOW", 1000, minimum=2, maximum=100_000),
            batch_size=env.get_int("ANALYSIS_BATCH_SIZE", 20, minimum=1, maximum=1000),
            worker_timeout=env.get_float(
                "WORKER_TIMEOUT_SECONDS", 15.0, minimum=0.5, maximum=300.0
            ),
            sma_periods=_periods(env, "SMA_PERIODS", "20,50"),
            ema_periods=_periods(env, "EMA_PERIODS", "20"),
        )


class AnalyticsEngine:
    """The shared analysis queue, the refresh loop that works it, and the HTTP route."""

    def __init__(self, settings: Settings, db: Database, *, worker_id: str) -> None:
        self.settings = settings
        self.db = db
        self.worker_id = worker_id
        self.backlog = PeakGauge()
        self.analyzed = Counter()
        self.live_workers = 1
        self._errors = Throttle(ERROR_LOG_INTERVAL_SECONDS)

    def _log_db_error(self, message: str, exc: DatabaseUnavailable, **fields: Any) -> None:
        suppressed = self._errors.allow()
        if suppressed is not None:
            logger.error(message, extra={"reason": str(exc), "suppressed": suppressed, **fields})

    def _compute(self, conn: pg8000.native.Connection, symbol: str) -> tuple[str, int] | None:
        """The analysis (JSON) of the symbol's newest ticks and the ``ticks_total`` it covers;
        None for a symbol without ticks. One statement: one snapshot of ticks and total."""
        rows = conn.run(_TICKS, symbol=symbol, limit=self.settings.analysis_window)
        if not rows or rows[0][1] is None:
            return None
        trades = [Trade(float(r[1]), float(r[2]), float(r[3])) for r in rows]
        result = summarize(
            symbol,
            trades,
            sma_periods=self.settings.sma_periods,
            ema_periods=self.settings.ema_periods,
        )
        self.analyzed.add()
        return json.dumps(result, allow_nan=False), int(rows[0][0])

    def measure(self) -> float:
        """Heartbeat, queue new symbols, and return this task's share of the backlog."""
        with self.db.write() as conn:
            live = heartbeat(conn, SERVICE, self.worker_id, self.settings.worker_timeout)
            conn.run(_NEW_SYMBOLS)
            backlog = int(conn.run(_BACKLOG)[0][0])
        self.live_workers = live
        share = backlog / live
        self.backlog.observe(share)
        return share

    def work_batch(self) -> int:
        """Claim up to ``ANALYSIS_BATCH_SIZE`` stale symbols, analyze and store them; returns
        how many were claimed. The claim is a row lock held until commit."""
        with self.db.write() as conn:
            claimed = [row[0] for row in conn.run(_CLAIM, batch=self.settings.batch_size)]
            for symbol in claimed:
                if self.db.has_reader:
                    with self.db.read() as reader:
                        computed = self._compute(reader, symbol)
                else:
                    computed = self._compute(conn, symbol)
                if computed is not None:
                    conn.run(_STORE, result=computed[0], total=computed[1], symbol=symbol)
        return len(claimed)

    def refresh(self, stopping: threading.Event) -> None:
        """One background pass: measure, then work batches for about one refresh interval
        (so the heartbeat stays current however long the queue is)."""
        deadline = time.monotonic() + max(self.settings.refresh_interval, 1.0)
        try:
            self.measure()
            while not stopping.is_set() and time.monotonic() < deadline:
                if self.work_batch() < self.settings.batch_size:
                    return
        except DatabaseUnavailable as exc:
            self._log_db_error("database unavailable", exc)

    def stop(self) -> None:
        """At shutdown: leave the registry, so the others' share of the backlog is right."""
        try:
            with self.db.write() as conn:
                deregister(conn, SERVICE, self.worker_id)
        except DatabaseUnavailable as exc:
            logger.warning("could not deregister", extra={"reason": str(exc)})
        self.db.close()

    def _stored(self, symbol: str) -> tuple[dict[str, Any], int, float] | None:
        with self.db.read() as conn:
            rows = conn.run(
                "SELECT result, ticks_total, "
                "CAST(extract(epoch FROM now() - computed_at) AS float8) "
                "FROM analyses WHERE symbol = :symbol AND result IS NOT NULL",
                symbol=symbol,
            )
        if not rows:
            return None
        return json.loads(rows[0][0]), int(rows[0][1]), max(float(rows[0][2]), 0.0)

    def analyze(self, symbol: str) -> tuple[dict[str, Any], int] | None:
        """Compute on demand (a request found no fresh result) and store it unless another
        task is storing one right now; None for an unknown symbol."""
        with self.db.read() as conn:
            computed = self._compute(conn, symbol)
        if computed is None:
            return None
        result, total = computed
        with self.db.write() as conn:
            conn.run(
                "INSERT INTO analyses (symbol) VALUES (:symbol) ON CONFLICT DO NOTHING",
                symbol=symbol,
            )
            conn.run(_STORE_IF_FREE, result=result, total=total, symbol=symbol)
        return json.loads(result), total

    def get_analytics(self, request: Request, params: dict[str, str]) -> Response:
        symbol = require_symbol(params["symbol"])
        check_query(request.query)
        try:
            stored = self._stored(symbol)
            if stored is not None and stored[2] <= self.settings.cache_ttl:
                body, total, age = stored
            else:
                fresh = self.analyze(symbol)
                if fresh is None:
                    raise HttpError(404, f"unknown symbol: {symbol}")
                (body, total), age = fresh, 0.0
        except DatabaseUnavailable as exc:
            self._log_db_error("analysis failed", exc, symbol=symbol)
            raise unavailable_error() from None
        body["age_seconds"] = round(age, 3)
        body["ticks_total"] = total
        return Response(200, body)

    def metrics(self) -> list[Metric]:
        """``AnalysisBacklog``: the interval's peak of this task's share of the backlog;
        nothing while the database is unreachable (the backlog is unknown then)."""
        peak = self.backlog.take()
        return [] if peak is None else [Metric("AnalysisBacklog", peak, "Count")]


def build(env: Env) -> ServiceRuntime:
    """Wire settings, the database, the engine, its route, refresh loop and metric."""
    settings = Settings.from_env(env)
    db = Database(settings.db, application_name=SERVICE, schema=create_schema)
    engine = AnalyticsEngine(settings, db, worker_id=new_worker_id())
    router = Router()
    router.get(r"/api/v1/analytics/(?P<symbol>[^/]+)", engine.get_analytics)
    runtime = ServiceRuntime(settings.common, router)
    runtime.add_loop(
        BackgroundLoop("refresh", settings.refresh_interval, engine.refresh, on_stop=engine.stop)
    )
    runtime.add_metric_source(engine.metrics)
    logger.info(
        "configured",
        extra={
            "database": "secret" if settings.db.secret_arn else "environment",
            "read_host": settings.db.read_host,
            "worker_id": engine.worker_id,
            "analysis_window": settings.analysis_window,
            "batch_size": settings.batch_size,
            "sma_periods": list(settings.sma_periods),
            "ema_periods": list(settings.ema_periods),
        },
    )
    return runtime


if __name__ == "__main__":
    sys.exit(main(SERVICE, build))
