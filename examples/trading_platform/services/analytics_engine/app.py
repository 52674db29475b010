"""analytics-engine: keep per-symbol analytics current with the ticks in data-ingestion.

A background loop polls ``/api/v1/symbols`` on data-ingestion, compares each symbol's
``ticks_total`` with the count its last analysis covered, and re-analyzes the symbols that
moved. That difference, summed over symbols, is the ``AnalysisBacklog`` metric: ticks already
ingested that no analysis reflects yet. Requests are answered from analyses at most
``CACHE_TTL_SECONDS`` old, else computed on demand; a dead or slow data-ingestion gives a
503 within about ``UPSTREAM_TIMEOUT_SECONDS``.

Run: ``python -m services.analytics_engine.app`` from the folder holding ``services/``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..common.config import CommonSettings, ConfigError, Env
from ..common.http import REQUEST_ID_HEADER, Request, Response, Router, check_query, require_symbol
from ..common.httpclient import UpstreamError, get_json, to_http_error
from ..common.logs import Throttle
from ..common.market import is_number
from ..common.metrics import Metric, PeakGauge
from ..common.runtime import BackgroundLoop, ServiceRuntime, main
from .analytics import Trade, summarize

SERVICE = "analytics-engine"
DEFAULT_PORT = 8081
DEFAULT_DATA_INGESTION_URL = "http://data-ingestion.trading.local:8080"
UPSTREAM = "data-ingestion"
ERROR_LOG_INTERVAL_SECONDS = 30.0

# Not __name__: run with -m, that is "__main__", which says nothing in a log line.
logger = logging.getLogger("services.analytics_engine")


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
    data_ingestion_url: str
    upstream_timeout: float
    refresh_interval: float
    cache_ttl: float
    analysis_window: int
    sma_periods: tuple[int, ...]
    ema_periods: tuple[int, ...]

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        return cls(
            common=CommonSettings.from_env(env, service=SERVICE, default_port=DEFAULT_PORT),
            data_ingestion_url=env.get_url("DATA_INGESTION_URL", DEFAULT_DATA_INGESTION_URL),
            upstream_timeout=env.get_float(
                "UPSTREAM_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30.0
            ),
            refresh_interval=env.get_float(
                "REFRESH_INTERVAL_SECONDS", 1.0, minimum=0.05, maximum=3600.0
            ),
            cache_ttl=env.get_float("CACHE_TTL_SECONDS", 5.0, minimum=0.0, maximum=3600.0),
            # Capped at data-ingestion's WINDOW_SIZE once /api/v1/symbols reports it.
            analysis_window=env.get_int("ANALYSIS_WINDOW", 1000, minimum=2, maximum=100_000),
            sma_periods=_periods(env, "SMA_PERIODS", "20,50"),
            ema_periods=_periods(env, "EMA_PERIODS", "20"),
        )


@dataclass(frozen=True)
class Analysis:
    """A computed result and how many upstream ticks it covered."""

    result: dict[str, Any]
    ticks_total: int
    computed_at: float  # time.monotonic()


def parse_ticks_payload(payload: Any) -> tuple[list[Trade], int]:
    """Trades and ``ticks_total`` from data-ingestion's answer; bad rows are skipped."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("ticks"), list):
        raise UpstreamError("data-ingestion answered without a ticks list", status=200)
    trades = []
    for item in payload["ticks"]:
        if not isinstance(item, Mapping):
            continue
        price, size, ts = item.get("price"), item.get("size"), item.get("ts")
        if is_number(price) and is_number(size) and is_number(ts) and price > 0 and size >= 0:
            trades.append(Trade(float(price), float(size), float(ts)))
    total = payload.get("ticks_total")
    return trades, total if isinstance(total, int) and total >= 0 else len(trades)


class AnalyticsEngine:
    """The analysis cache, its refresh loop and the HTTP route."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backlog = PeakGauge()
        self._lock = threading.Lock()
        self._cache: dict[str, Analysis] = {}
        self._errors = Throttle(ERROR_LOG_INTERVAL_SECONDS)
        # data-ingestion rejects a ``limit`` above its WINDOW_SIZE; learn it from /symbols.
        self._upstream_window: int | None = None

    def _get(self, path: str, request_id: str | None = None) -> Any:
        headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
        return get_json(
            f"{self.settings.data_ingestion_url}{path}",
            timeout=self.settings.upstream_timeout,
            headers=headers,
        )

    def _log_upstream_error(self, message: str, exc: UpstreamError, **fields: Any) -> None:
        suppressed = self._errors.allow()
        if suppressed is not None:
            logger.error(
                message,
                extra={
                    "upstream": UPSTREAM,
                    "reason": str(exc),
                    "upstream_status": exc.status,
                    "suppressed": suppressed,
                    **fields,
                },
            )

    def analyze(self, symbol: str, request_id: str | None = None) -> Analysis:
        """Fetch the symbol's window, compute, cache; raises UpstreamError (404 if unknown)."""
        limit = min(self.settings.analysis_window, self._upstream_window or sys.maxsize)
        payload = self._get(f"/api/v1/ticks/{quote(symbol, safe='')}?limit={limit}", request_id)
        trades, total = parse_ticks_payload(payload)
        if not trades:
            raise UpstreamError("no usable ticks for symbol", status=404)
        analysis = Analysis(
            summarize(
                symbol,
                trades,
                sma_periods=self.settings.sma_periods,
                ema_periods=self.settings.ema_periods,
            ),
            total,
            time.monotonic(),
        )
        with self._lock:
            self._cache[symbol] = analysis
        return analysis

    def refresh(self, stopping: threading.Event) -> None:
        """One background pass: measure the backlog, then re-analyze symbols with new ticks."""
        try:
            payload = self._get("/api/v1/symbols")
        except UpstreamError as exc:
            self._log_upstream_error("cannot list symbols", exc)
            return
        entries = payload.get("symbols") if isinstance(payload, Mapping) else None
        if not isinstance(entries, list):
            self._log_upstream_error("cannot list symbols", UpstreamError("bad payload", 200))
            return
        window = payload.get("window_size")
        if isinstance(window, int) and window >= 1:
            self._upstream_window = window
        pending: dict[str, int] = {}
        with self._lock:
            for entry in entries:
                if not isinstance(entry, Mapping):
                    continue
                symbol, total = entry.get("symbol"), entry.get("ticks_total")
                if not isinstance(symbol, str) or not isinstance(total, int):
                    continue
                seen = self._cache[symbol].ticks_total if symbol in self._cache else 0
                if total > seen:
                    pending[symbol] = total - seen
        self.backlog.observe(sum(pending.values()))
        for symbol in pending:
            if stopping.is_set():
                return
            try:
                self.analyze(symbol)
            except UpstreamError as exc:
                self._log_upstream_error("analysis refresh failed", exc, symbol=symbol)

    def get_analytics(self, request: Request, params: dict[str, str]) -> Response:
        symbol = require_symbol(params["symbol"])
        check_query(request.query)
        with self._lock:
            analysis = self._cache.get(symbol)
        if analysis is None or time.monotonic() - analysis.computed_at > self.settings.cache_ttl:
            try:
                analysis = self.analyze(symbol, request.request_id)
            except UpstreamError as exc:
                if exc.status != 404:
                    self._log_upstream_error("analysis failed", exc, symbol=symbol)
                raise to_http_error(exc, upstream=UPSTREAM, symbol=symbol) from None
        body = dict(analysis.result)
        body["age_seconds"] = round(time.monotonic() - analysis.computed_at, 3)
        body["ticks_total"] = analysis.ticks_total
        return Response(200, body)

    def metrics(self) -> list[Metric]:
        """``AnalysisBacklog``: the peak backlog this interval; nothing if never measured."""
        peak = self.backlog.take()
        return [] if peak is None else [Metric("AnalysisBacklog", peak, "Count")]


def build(env: Env) -> ServiceRuntime:
    """Wire settings, the engine, its route, refresh loop and metric."""
    settings = Settings.from_env(env)
    engine = AnalyticsEngine(settings)
    router = Router()
    router.get(r"/api/v1/analytics/(?P<symbol>[^/]+)", engine.get_analytics)
    runtime = ServiceRuntime(settings.common, router)
    runtime.add_loop(BackgroundLoop("refresh", settings.refresh_interval, engine.refresh))
    runtime.add_metric_source(engine.metrics)
    logger.info(
        "configured",
        extra={
            "data_ingestion_url": settings.data_ingestion_url,
            "upstream_timeout_seconds": settings.upstream_timeout,
            "analysis_window": settings.analysis_window,
            "sma_periods": list(settings.sma_periods),
            "ema_periods": list(settings.ema_periods),
        },
    )
    return runtime


if __name__ == "__main__":
    sys.exit(main(SERVICE, build))
