"""api-gateway: the public REST API behind the ALB.

``GET /api/v1/quotes/{symbol}`` is the latest tick from data-ingestion and
``GET /api/v1/analytics/{symbol}`` the analysis from analytics-engine. Symbols are validated
here, so malformed input never reaches the backends; backend failures become a JSON 503
within about ``UPSTREAM_TIMEOUT_SECONDS``.

Run: ``python -m services.api_gateway.app`` from the folder holding ``services/``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..common.config import CommonSettings, Env
from ..common.http import (
    REQUEST_ID_HEADER,
    HttpError,
    Request,
    Response,
    Router,
    check_query,
    require_symbol,
)
from ..common.httpclient import UpstreamError, get_json, to_http_error
from ..common.market import is_number
from ..common.metrics import Metric
from ..common.runtime import ServiceRuntime, main

SERVICE = "api-gateway"
DEFAULT_PORT = 8082
DEFAULT_DATA_INGESTION_URL = "http://data-ingestion.trading.local:8080"
DEFAULT_ANALYTICS_ENGINE_URL = "http://analytics-engine.trading.local:8081"

# Not __name__: run with -m, that is "__main__", which says nothing in a log line.
logger = logging.getLogger("services.api_gateway")


@dataclass(frozen=True)
class Settings:
    """api-gateway settings."""

    common: CommonSettings
    data_ingestion_url: str
    analytics_engine_url: str
    upstream_timeout: float

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        return cls(
            common=CommonSettings.from_env(env, service=SERVICE, default_port=DEFAULT_PORT),
            data_ingestion_url=env.get_url("DATA_INGESTION_URL", DEFAULT_DATA_INGESTION_URL),
            analytics_engine_url=env.get_url("ANALYTICS_ENGINE_URL", DEFAULT_ANALYTICS_ENGINE_URL),
            upstream_timeout=env.get_float(
                "UPSTREAM_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30.0
            ),
        )


class Gateway:
    """Route handlers that validate, call one backend and reshape its answer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _call(self, upstream: str, url: str, symbol: str, request: Request) -> Any:
        try:
            return get_json(
                url,
                timeout=self.settings.upstream_timeout,
                headers={REQUEST_ID_HEADER: request.request_id},
            )
        except UpstreamError as exc:
            error = to_http_error(exc, upstream=upstream, symbol=symbol)
            if error.status >= 500:
                logger.error(
                    "upstream request failed",
                    extra={
                        "upstream": upstream,
                        "reason": str(exc),
                        "upstream_status": exc.status,
                        "status": error.status,
                        "request_id": request.request_id,
                    },
                )
            raise error from None

    def get_quote(self, request: Request, params: dict[str, str]) -> Response:
        symbol = require_symbol(params["symbol"])
        check_query(request.query)
        url = f"{self.settings.data_ingestion_url}/api/v1/ticks/{quote(symbol, safe='')}?limit=1"
        payload = self._call("data-ingestion", url, symbol, request)
        ticks = payload.get("ticks") if isinstance(payload, Mapping) else None
        last = ticks[-1] if isinstance(ticks, list) and ticks else None
        if not isinstance(last, Mapping) or not all(
            is_number(last.get(key)) for key in ("price", "size", "ts")
        ):
            raise HttpError(502, "bad response from data-ingestion")
        return Response(
            200,
            {
                "symbol": symbol,
                "price": last["price"],
                "size": last["size"],
                "ts": last["ts"],
                "age_seconds": round(max(time.time() - last["ts"], 0.0), 3),
            },
        )

    def get_analytics(self, request: Request, params: dict[str, str]) -> Response:
        symbol = require_symbol(params["symbol"])
        check_query(request.query)
        url = f"{self.settings.analytics_engine_url}/api/v1/analytics/{quote(symbol, safe='')}"
        payload = self._call("analytics-engine", url, symbol, request)
        if not isinstance(payload, Mapping) or payload.get("symbol") != symbol:
            raise HttpError(502, "bad response from analytics-engine")
        return Response(200, dict(payload))


def build(env: Env) -> ServiceRuntime:
    """Wire settings, routes and the ``RequestsInFlight`` metric."""
    settings = Settings.from_env(env)
    gateway = Gateway(settings)
    router = Router()
    router.get(r"/api/v1/quotes/(?P<symbol>[^/]+)", gateway.get_quote)
    router.get(r"/api/v1/analytics/(?P<symbol>[^/]+)", gateway.get_analytics)
    # The public edge keeps an INFO access log line per request.
    runtime = ServiceRuntime(settings.common, router, access_log_level=logging.INFO)
    # Peak concurrent requests in the interval: a per-task load signal that, unlike a sample
    # taken at flush time, does not miss bursts between flushes.
    runtime.add_metric_source(
        lambda: [Metric("RequestsInFlight", runtime.in_flight.take_peak(), "Count")]
    )
    logger.info(
        "configured",
        extra={
            "data_ingestion_url": settings.data_ingestion_url,
            "analytics_engine_url": settings.analytics_engine_url,
            "upstream_timeout_seconds": settings.upstream_timeout,
        },
    )
    return runtime


if __name__ == "__main__":
    sys.exit(main(SERVICE, build))
