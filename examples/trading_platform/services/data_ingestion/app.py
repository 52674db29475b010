"""data-ingestion: ingest market ticks into PostgreSQL and serve recent windows per symbol.

The tasks share the symbols through leases in the database (see ``store.py``): each task
feeds only the symbols it leases, so adding a task lowers every task's ``TicksIngested``.
Any task answers for any symbol, from the database.

Run: ``python -m services.data_ingestion.app`` from the folder holding ``services/``.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..common.config import CommonSettings, ConfigError, Env
from ..common.db import Database, DatabaseUnavailable, DbSettings, unavailable_error
from ..common.http import (
    HttpError,
    Request,
    Response,
    Router,
    check_query,
    int_param,
    normalize_symbol,
    require_symbol,
)
from ..common.httpclient import UpstreamError, redact_url
from ..common.logs import Throttle
from ..common.metrics import Metric
from ..common.runtime import BackgroundLoop, ServiceRuntime, main
from ..common.schema import create_schema, new_worker_id
from .feed import FeedPoller, GbmFeed, Tick
from .store import TickStore

SERVICE = "data-ingestion"
DEFAULT_PORT = 8080
DEFAULT_SYMBOLS = "AAPL,MSFT,GOOG,AMZN,JPM"
DEFAULT_TICKS_LIMIT = 100
ERROR_LOG_INTERVAL_SECONDS = 30.0
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")

# Not __name__: run with -m, that is "__main__", which says nothing in a log line.
logger = logging.getLogger("services.data_ingestion")


class TickSource(Protocol):
    """Anything that yields the next batch of ticks."""

    def next_ticks(self) -> list[Tick]: ...

    def follow(self, prices: Mapping[str, float | None]) -> None: ...


@dataclass(frozen=True)
class Settings:
    """data-ingestion settings; ``feed_url`` and ``api_key`` stay out of reprs and logs."""

    common: CommonSettings
    symbols: tuple[str, ...]
    feed_seed: int | None
    tick_interval: float
    window_size: int
    max_symbols: int
    drift: float
    volatility: float
    api_key_header: str
    feed_timeout: float
    db: DbSettings
    worker_timeout: float
    feed_url: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        symbols = []
        for raw in env.get_list("SYMBOLS", DEFAULT_SYMBOLS):
            symbol = normalize_symbol(raw)
            if symbol is None:
                raise ConfigError(f"SYMBOLS holds an invalid symbol: {raw[:20]!r}")
            if symbol not in symbols:
                symbols.append(symbol)
        feed_url = env.get_url("FEED_URL", "") if env.get_optional("FEED_URL") else None
        if not symbols and feed_url is None:
            raise ConfigError("SYMBOLS must name at least one symbol for the synthetic feed")
        header = env.get_str("FEED_API_KEY_HEADER", "X-API-Key")
        if not _HEADER_NAME.fullmatch(header):
            raise ConfigError("FEED_API_KEY_HEADER must be a header name (A-Z, 0-9, '-')")
        return cls(
            common=CommonSettings.from_env(env, service=SERVICE, default_port=DEFAULT_PORT),
            symbols=tuple(symbols),
            feed_seed=env.get_optional_int("FEED_SEED"),
            tick_interval=env.get_float("TICK_INTERVAL_SECONDS", 1.0, minimum=0.01, maximum=3600),
            window_size=env.get_int("WINDOW_SIZE", 1000, minimum=1, maximum=100_000),
            max_symbols=env.get_int("MAX_SYMBOLS", 500, minimum=1, maximum=10_000),
            drift=env.get_float("FEED_DRIFT", 0.05, minimum=-1.0, maximum=1.0),
            volatility=env.get_float("FEED_VOLATILITY", 0.25, minimum=0.0, maximum=5.0),
            api_key_header=header,
            feed_timeout=env.get_float("FEED_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30.0),
            db=DbSettings.from_env(env),
            worker_timeout=env.get_float(
                "WORKER_TIMEOUT_SECONDS", 15.0, minimum=0.5, maximum=300.0
            ),
            feed_url=feed_url,
            api_key=env.get_optional("MARKET_DATA_API_KEY"),
        )

    def make_source(self) -> TickSource:
        """The polled feed when ``FEED_URL`` is set, else the synthetic GBM feed."""
        if self.feed_url:
            return FeedPoller(
                self.feed_url,
                api_key=self.api_key,
                api_key_header=self.api_key_header,
                timeout=self.feed_timeout,
            )
        return GbmFeed(
            self.symbols,
            seed=self.feed_seed,
            drift=self.drift,
            volatility=self.volatility,
            step_seconds=self.tick_interval,
        )


class DataIngestion:
    """Glue between a tick source, the database store and the HTTP routes."""

    def __init__(self, settings: Settings, source: TickSource, store: TickStore) -> None:
        self.settings = settings
        self.source = source
        self.store = store
        self._feed_errors = Throttle(ERROR_LOG_INTERVAL_SECONDS)
        self._db_errors = Throttle(ERROR_LOG_INTERVAL_SECONDS)
        self._registered = False
        self._next_rebalance = float("-inf")

    def _log_db_error(self, message: str, exc: DatabaseUnavailable) -> None:
        suppressed = self._db_errors.allow()
        if suppressed is not None:
            logger.error(message, extra={"reason": str(exc), "suppressed": suppressed})

    def rebalance(self) -> None:
        """Renew, give back and claim symbol leases; feed only the symbols held."""
        before = set(self.store.leases)
        leases = self.store.rebalance()
        self.source.follow({s: lease.last_price for s, lease in leases.items()})
        self._next_rebalance = time.monotonic() + self.store.lease_seconds / 3
        if set(leases) != before:
            logger.info(
                "symbol leases changed",
                extra={"symbols": sorted(leases), "live_workers": self.store.live_workers},
            )

    def poll_once(self, _stopping: threading.Event | None = None) -> int:
        """One feed cycle: (first) the schema and the configured symbols, the leases when due,
        one batch from the feed into the database. Failures are logged (throttled), not
        raised: the next cycle retries."""
        try:
            if not self._registered:
                self.store.db.ensure_schema()
                if not self.settings.feed_url:
                    self.store.register(self.settings.symbols)
                self._registered = True
            if time.monotonic() >= self._next_rebalance:
                self.rebalance()
            ticks = self._fetch()
            rejected = self.store.rejected_new_symbols
            if self.store.register(t.symbol for t in ticks):
                self.rebalance()  # symbols nobody holds yet: claim a fair share now
            if self.store.rejected_new_symbols > rejected:
                logger.warning(
                    "symbols over MAX_SYMBOLS dropped",
                    extra={"rejected_total": self.store.rejected_new_symbols},
                )
            return self.store.add(ticks)
        except DatabaseUnavailable as exc:
            self._log_db_error("database unavailable", exc)
            return 0

    def _fetch(self) -> list[Tick]:
        try:
            return self.source.next_ticks()
        except UpstreamError as exc:
            suppressed = self._feed_errors.allow()
            if suppressed is not None:
                logger.error(
                    "market data feed poll failed",
                    extra={
                        "feed": redact_url(self.settings.feed_url or ""),
                        "reason": str(exc),
                        "upstream_status": exc.status,
                        "suppressed": suppressed,
                    },
                )
            return []

    def stop(self) -> None:
        """At shutdown: hand the leases back so the other tasks take over at once."""
        try:
            self.store.release()
        except DatabaseUnavailable as exc:
            logger.warning("could not release symbol leases", extra={"reason": str(exc)})
        self.store.db.close()

    def list_symbols(self, request: Request, _params: dict[str, str]) -> Response:
        check_query(request.query)
        try:
            symbols = self.store.symbols()
        except DatabaseUnavailable as exc:
            self._log_db_error("database unavailable", exc)
            raise unavailable_error() from None
        return Response(200, {"symbols": symbols, "window_size": self.store.window})

    def recent_ticks(self, request: Request, params: dict[str, str]) -> Response:
        symbol = require_symbol(params["symbol"])
        check_query(request.query, frozenset({"limit"}))
        window = self.store.window
        limit = int_param(
            request.query, "limit", min(DEFAULT_TICKS_LIMIT, window), minimum=1, maximum=window
        )
        try:
            found = self.store.recent(symbol, limit)
        except DatabaseUnavailable as exc:
            self._log_db_error("database unavailable", exc)
            raise unavailable_error() from None
        if found is None:
            raise HttpError(404, f"unknown symbol: {symbol}")
        ticks, total = found
        return Response(
            200,
            {"symbol": symbol, "ticks": [t.to_json() for t in ticks], "ticks_total": total},
        )

    def metrics(self) -> list[Metric]:
        """``TicksIngested``: ticks this task stored in the interval. The symbols are split
        between the tasks, so each added task lowers every task's figure."""
        return [Metric("TicksIngested", self.store.ingested.take(), "Count")]


def build(env: Env) -> ServiceRuntime:
    """Wire settings, feed, store, routes, background polling and metrics."""
    settings = Settings.from_env(env)
    db = Database(settings.db, application_name=SERVICE, schema=create_schema)
    store = TickStore(
        db,
        worker_id=new_worker_id(),
        window=settings.window_size,
        max_symbols=settings.max_symbols,
        lease_seconds=settings.worker_timeout,
    )
    service = DataIngestion(settings, settings.make_source(), store)
    router = Router()
    router.get(r"/api/v1/symbols", service.list_symbols)
    router.get(r"/api/v1/ticks/(?P<symbol>[^/]+)", service.recent_ticks)
    runtime = ServiceRuntime(settings.common, router)
    runtime.add_loop(
        BackgroundLoop("feed", settings.tick_interval, service.poll_once, on_stop=service.stop)
    )
    runtime.add_metric_source(service.metrics)
    logger.info(
        "configured",
        extra={
            "feed": "http" if settings.feed_url else "synthetic",
            "feed_endpoint": redact_url(settings.feed_url) if settings.feed_url else None,
            "api_key_configured": settings.api_key is not None,
            "symbols": list(settings.symbols),
            "tick_interval_seconds": settings.tick_interval,
            "window_size": settings.window_size,
            "database": "secret" if settings.db.secret_arn else "environment",
            "read_host": settings.db.read_host,
            "worker_id": store.worker_id,
        },
    )
    return runtime


if __name__ == "__main__":
    sys.exit(main(SERVICE, build))
