"""End-to-end: the three services as real processes on 127.0.0.1, driven through api-gateway."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import pytest

from .conftest import Degraded, Stack
from .support import (
    MODULES,
    FakeFeed,
    HttpResult,
    ServiceProcess,
    TestDatabase,
    blackhole,
    raw_exchange,
    refused_port,
    request,
    service_env,
    start,
    url_of,
    wait_until,
)

METRICS = {
    "data-ingestion": "TicksIngested",
    "analytics-engine": "AnalysisBacklog",
    "api-gateway": "RequestsInFlight",
}


def assert_json_error(result: HttpResult, status: int) -> None:
    """Every error is JSON ``{"error": str, "status": N}`` with a matching HTTP status."""
    assert result.status == status, result
    assert result.headers.get("Content-Type") == "application/json"
    assert result.json == {"error": result.json["error"], "status": status}
    assert isinstance(result.json["error"], str) and result.json["error"]


def analytics_with(stack: Stack, symbol: str, min_ticks: int) -> dict[str, Any]:
    """Poll the gateway until the analysis covers ``min_ticks`` ticks (bounded)."""

    def probe() -> dict[str, Any] | None:
        result = request(stack.api_gateway.port, f"/api/v1/analytics/{symbol}")
        if result.status == 200 and result.json["ticks"] >= min_ticks:
            return dict(result.json)
        return None

    return wait_until(probe, timeout=8.0, interval=0.1, what=f"analytics of {symbol}")


# --- the healthy platform -------------------------------------------------------------------


@pytest.mark.parametrize("service", list(MODULES))
def test_health_is_ok(stack: Stack, service: str) -> None:
    result = request(stack.by_name(service).port, "/health")
    assert result.status == 200
    assert result.json == {"status": "ok"}


def test_head_health_has_no_body(stack: Stack) -> None:
    result = request(stack.api_gateway.port, "/health", method="HEAD")
    assert result.status == 200
    assert result.raw == b""


@pytest.mark.parametrize(
    ("path", "symbol"), [("AAPL", "AAPL"), ("aapl", "AAPL"), ("brk.b", "BRK.B")]
)
def test_quote_for_known_symbol(stack: Stack, path: str, symbol: str) -> None:
    result = request(stack.api_gateway.port, f"/api/v1/quotes/{path}")
    assert result.status == 200, result
    quote = result.json
    assert quote["symbol"] == symbol
    assert quote["price"] > 0
    assert isinstance(quote["size"], int) and quote["size"] > 0
    assert abs(time.time() - quote["ts"]) < 60
    assert 0 <= quote["age_seconds"] < 60


def test_quote_is_the_latest_ingested_tick(stack: Stack) -> None:
    ticks = request(stack.data_ingestion.port, "/api/v1/ticks/MSFT?limit=200").json["ticks"]
    quote = request(stack.api_gateway.port, "/api/v1/quotes/MSFT").json
    assert quote["ts"] >= ticks[-1]["ts"]  # the feed only moves forward


def test_analytics_for_known_symbol_are_plausible(stack: Stack) -> None:
    body = analytics_with(stack, "AAPL", min_ticks=20)
    low, high = body["min_price"], body["max_price"]
    assert 0 < low <= high
    assert body["symbol"] == "AAPL"
    assert 20 <= body["ticks"] <= 200  # bounded by WINDOW_SIZE / ANALYSIS_WINDOW
    for key in ("vwap", "last_price", "sma_5", "sma_20", "ema_10"):
        assert low <= body[key] <= high, key
    assert body["volume"] > 0
    assert body["volatility"] >= 0
    # The feed's sigma is 0.25 a year; a few dozen ticks estimate it roughly.
    assert 0.02 < body["volatility_annualized"] < 2.5
    assert body["first_ts"] <= body["last_ts"]
    assert body["ticks_total"] >= body["ticks"]


def test_analytics_cover_ticks_from_data_ingestion(stack: Stack) -> None:
    body = analytics_with(stack, "MSFT", min_ticks=20)
    ticks = request(stack.data_ingestion.port, "/api/v1/ticks/MSFT?limit=200").json["ticks"]
    prices = {t["price"] for t in ticks}
    assert body["last_price"] in prices or body["last_ts"] < ticks[0]["ts"]


@pytest.mark.parametrize("route", ["quotes", "analytics"])
def test_unknown_symbol_is_404(stack: Stack, route: str) -> None:
    result = request(stack.api_gateway.port, f"/api/v1/{route}/ZZZZ")
    assert_json_error(result, 404)
    assert "ZZZZ" in result.json["error"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/quotes/A$B", 400),
        ("/api/v1/quotes/%00", 400),
        ("/api/v1/quotes/%ZZ", 400),
        ("/api/v1/quotes/TOOLONGSYMBOL", 400),
        ("/api/v1/analytics/..", 400),
        ("/api/v1/quotes/" + "A" * 5000, 400),
        ("/api/v1/quotes/AAPL?limit=1", 400),
        ("/api/v1/quotes/AAPL?x", 400),
        ("/api/v1/analytics/AAPL?a=1&a=2", 400),
        ("no-leading-slash", 400),
        ("/api/v1/quotes/", 404),
        ("/api/v1/quotes/AAPL/extra", 404),
        ("/api/v2/quotes/AAPL", 404),
        ("/", 404),
    ],
)
def test_malformed_request_is_json_4xx(stack: Stack, path: str, status: int) -> None:
    assert_json_error(request(stack.api_gateway.port, path), status)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_wrong_method_is_405(stack: Stack, method: str) -> None:
    result = request(stack.api_gateway.port, "/api/v1/quotes/AAPL", method=method, body=b"{}")
    assert_json_error(result, 405)
    assert result.headers.get("Allow") == "GET, HEAD"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / NOTHTTP\r\n\r\n", 400),
        (b"GET /" + b"A" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
    ],
)
def test_requests_http_server_rejects_get_json(stack: Stack, payload: bytes, status: int) -> None:
    response = raw_exchange(stack.api_gateway.port, payload)
    # Without a parseable version, http.server answers HTTP/0.9 style: a body, no head.
    if response.startswith(b"HTTP/"):
        head, _, response = response.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.0 {status}".encode())
        assert b"Content-Type: application/json" in head
    body = json.loads(response)
    assert body["status"] == status and isinstance(body["error"], str)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 200),
        ("?limit=1", 200),
        ("?limit=200", 200),
        ("?limit=0", 400),
        ("?limit=201", 400),
        ("?limit=-1", 400),
        ("?limit=1.5", 400),
        ("?limit=abc", 400),
        ("?limit=", 400),
        ("?since=1", 400),
    ],
)
def test_data_ingestion_validates_limit(stack: Stack, query: str, status: int) -> None:
    result = request(stack.data_ingestion.port, f"/api/v1/ticks/AAPL{query}")
    if status != 200:
        assert_json_error(result, status)
        return
    assert result.status == 200
    ticks = result.json["ticks"]
    assert 1 <= len(ticks) <= 200
    assert [t["ts"] for t in ticks] == sorted(t["ts"] for t in ticks)


def test_data_ingestion_limit_returns_the_newest_ticks(stack: Stack) -> None:
    three = request(stack.data_ingestion.port, "/api/v1/ticks/AAPL?limit=3").json
    assert len(three["ticks"]) == 3
    assert three["ticks_total"] >= 3
    symbols = request(stack.data_ingestion.port, "/api/v1/symbols").json
    assert {s["symbol"] for s in symbols["symbols"]} == {"AAPL", "MSFT", "BRK.B"}
    assert symbols["window_size"] == 200


def test_request_id_is_echoed(stack: Stack) -> None:
    result = request(
        stack.api_gateway.port, "/api/v1/quotes/AAPL", headers={"X-Request-Id": "test-abc.123"}
    )
    assert result.headers.get("X-Request-Id") == "test-abc.123"
    hostile = request(
        stack.api_gateway.port, "/api/v1/quotes/AAPL", headers={"X-Request-Id": "a b\tc"}
    )
    assert hostile.headers.get("X-Request-Id") != "a b\tc"


@pytest.mark.parametrize("service", list(MODULES))
def test_emits_valid_emf(stack: Stack, service: str) -> None:
    metric = METRICS[service]
    process = stack.by_name(service)
    doc = process.wait_for(lambda r: metric in r and "_aws" in r, timeout=8.0)
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int) and abs(aws["Timestamp"] / 1000 - time.time()) < 60
    (directive,) = aws["CloudWatchMetrics"]
    assert directive["Namespace"] == "TradingPlatform"
    assert directive["Dimensions"] == [["Service"]]
    assert directive["Metrics"] == [{"Name": metric, "Unit": "Count"}]
    assert doc["Service"] == service
    assert isinstance(doc[metric], (int, float)) and doc[metric] >= 0
    assert "level" not in doc  # an EMF line must never match the ERROR metric filter


def test_ticks_ingested_counts_ticks(stack: Stack) -> None:
    doc = stack.data_ingestion.wait_for(lambda r: r.get("TicksIngested", 0) > 0, timeout=8.0)
    assert doc["TicksIngested"] % 3 == 0  # three symbols tick together


def test_requests_in_flight_sees_requests(stack: Stack) -> None:
    gateway = stack.api_gateway
    before = len(gateway.lines())  # only flushes after these requests count
    threads = [
        threading.Thread(target=request, args=(gateway.port, "/api/v1/quotes/AAPL"))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    def peak_after() -> float | None:
        peaks = [r["RequestsInFlight"] for r in gateway.records()[before:] if "_aws" in r]
        return max(peaks) if peaks and max(peaks) >= 1 else None

    assert wait_until(peak_after, timeout=8.0, what="a RequestsInFlight flush") >= 1


@pytest.mark.parametrize("service", list(MODULES))
def test_logs_are_json_lines(stack: Stack, service: str) -> None:
    process = stack.by_name(service)
    records = process.records()  # raises if any stdout line is not JSON
    logs = [r for r in records if "_aws" not in r]
    assert any(r["message"] == "listening" for r in logs)
    for record in logs:
        assert {"timestamp", "level", "service", "message"} <= record.keys()
        assert record["service"] == service
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert record["timestamp"].endswith("Z")


def test_gateway_access_log_has_request_fields(stack: Stack) -> None:
    request(stack.api_gateway.port, "/api/v1/quotes/ZZZZ", headers={"X-Request-Id": "acc-1"})
    record = stack.api_gateway.wait_for(lambda r: r.get("request_id") == "acc-1", timeout=5.0)
    assert record["message"] == "request"
    assert record["status"] == 404
    assert record["path"] == "/api/v1/quotes/ZZZZ"
    assert record["duration_ms"] >= 0


# --- backends down ---------------------------------------------------------------------------


def test_quote_with_data_ingestion_down_is_503_fast(degraded: Degraded) -> None:
    result = request(degraded.api_gateway.port, "/api/v1/quotes/AAPL", timeout=10)
    assert_json_error(result, 503)
    assert result.elapsed < 3.0
    assert result.headers.get("Retry-After") == "1"


def test_analytics_with_hung_database_is_503_fast(degraded: Degraded) -> None:
    direct = request(degraded.analytics_engine.port, "/api/v1/analytics/AAPL", timeout=10)
    assert_json_error(direct, 503)
    assert direct.elapsed < 3.0  # DB_TIMEOUT_SECONDS=0.5, not a hang
    through = request(degraded.api_gateway.port, "/api/v1/analytics/AAPL", timeout=10)
    assert_json_error(through, 503)
    assert through.elapsed < 3.0


@pytest.mark.parametrize("path", ["/api/v1/ticks/AAPL", "/api/v1/symbols"])
def test_data_ingestion_with_database_down_is_503_fast(degraded: Degraded, path: str) -> None:
    result = request(degraded.data_ingestion.port, path, timeout=10)
    assert_json_error(result, 503)
    assert result.headers.get("Retry-After") == "1"
    assert result.elapsed < 3.0


def test_database_outage_is_logged_at_error_throttled(degraded: Degraded) -> None:
    record = degraded.data_ingestion.wait_for(
        lambda r: r.get("level") == "ERROR" and r.get("message") == "database unavailable"
    )
    assert "ConnectionRefusedError" in record["reason"]
    time.sleep(0.5)  # ten feed cycles at TICK_INTERVAL_SECONDS=0.05: still one line
    errors = [r for r in degraded.data_ingestion.records() if r.get("level") == "ERROR"]
    assert len(errors) == 1, errors
    # The backlog is unknown while the database is unreachable: no AnalysisBacklog at all.
    assert not any("AnalysisBacklog" in r for r in degraded.analytics_engine.records())


def test_bad_input_is_still_4xx_with_backends_down(degraded: Degraded) -> None:
    assert_json_error(request(degraded.api_gateway.port, "/api/v1/quotes/A$B"), 400)
    assert_json_error(request(degraded.api_gateway.port, "/nope"), 404)


def test_health_does_not_depend_on_backends(degraded: Degraded) -> None:
    for process in (degraded.api_gateway, degraded.analytics_engine):
        assert request(process.port, "/health").json == {"status": "ok"}


def test_backend_failure_is_logged_at_error(degraded: Degraded) -> None:
    request(degraded.api_gateway.port, "/api/v1/quotes/AAPL", timeout=10)
    record = degraded.api_gateway.wait_for(
        lambda r: r.get("level") == "ERROR" and r.get("message") == "upstream request failed"
    )
    assert record["upstream"] == "data-ingestion"
    assert record["status"] == 503


# --- lifecycle -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", list(MODULES))
def test_sigterm_exits_zero_and_flushes(service: str, database: TestDatabase) -> None:
    with refused_port() as dead:
        process = start(
            service,
            **(database.env(service) if service in database.users else {}),
            DATA_INGESTION_URL=url_of(dead),
            ANALYTICS_ENGINE_URL=url_of(dead),
            TICK_INTERVAL_SECONDS="0.05",
            METRICS_INTERVAL_SECONDS="60",  # so any EMF line below is the shutdown flush
        )
        with process:
            if service == "data-ingestion":  # let ticks arrive, so the last flush counts some
                wait_until(
                    lambda: request(process.port, "/api/v1/symbols").json["symbols"] or None,
                    timeout=5,
                    what="first ticks",
                )
            started = time.monotonic()
            process.proc.send_signal(signal.SIGTERM)
            assert process.proc.wait(5) == 0
            assert time.monotonic() - started < 5
            process.wait_for(lambda r: r.get("message") == "shutdown complete", timeout=5)
            shutdown = process.wait_for(lambda r: r.get("message") == "shutdown started")
            assert shutdown["reason"] == "SIGTERM"
            doc = process.wait_for(lambda r: METRICS[service] in r, timeout=5)
            assert doc["Service"] == service


def test_sigterm_lets_in_flight_request_finish() -> None:
    with blackhole() as hung:
        process = start(
            "api-gateway",
            DATA_INGESTION_URL=url_of(hung),
            ANALYTICS_ENGINE_URL=url_of(hung),
            UPSTREAM_TIMEOUT_SECONDS="1.5",
            METRICS_INTERVAL_SECONDS="60",
            SHUTDOWN_GRACE_SECONDS="10",
        )
        with process:
            results: list[HttpResult] = []
            client = threading.Thread(
                target=lambda: results.append(
                    request(process.port, "/api/v1/analytics/AAPL", timeout=10)
                )
            )
            client.start()
            hung.settimeout(5)
            upstream_conn, _ = hung.accept()  # the gateway is now waiting on its backend
            with upstream_conn:
                signalled = time.monotonic()
                process.proc.send_signal(signal.SIGTERM)
                assert process.proc.wait(8) == 0
                took = time.monotonic() - signalled
            client.join(5)
            assert results, "the in-flight request got no response"
            assert_json_error(results[0], 503)  # answered, not reset by the shutdown
            assert 0.5 < took < 5  # waited for the request, well within the grace
            done = process.wait_for(lambda r: r.get("message") == "shutdown complete")
            assert done["drained"] is True
            flush = process.wait_for(lambda r: "RequestsInFlight" in r)
            assert flush["RequestsInFlight"] >= 1


def test_invalid_config_fails_fast_with_error_log() -> None:
    process = ServiceProcess("data-ingestion", service_env(WINDOW_SIZE="0"))
    with process:
        assert process.proc.wait(10) == 2
        record = process.wait_for(lambda r: r.get("message") == "invalid configuration")
        assert record["level"] == "ERROR"
        assert "WINDOW_SIZE" in record["reason"]


def test_data_ingestion_polls_a_real_feed_with_the_api_key(
    fresh_database: TestDatabase,
) -> None:
    secret = "sk-test-9f3b1c7e-never-log-me"
    now = time.time()
    with FakeFeed() as feed:
        feed.payload = {
            "ticks": [
                {"symbol": "fake", "price": 10.5, "size": 100, "ts": now - 1},
                {"symbol": "FAKE", "price": 10.6, "volume": 200, "ts": now},
                {"symbol": "BAD$", "price": 1.0, "size": 1, "ts": now},
                {"symbol": "NEG", "price": -1.0, "size": 1, "ts": now},
                "not an object",
            ]
        }
        process = start(
            "data-ingestion",
            **fresh_database.env("data-ingestion"),
            FEED_URL=feed.url,
            MARKET_DATA_API_KEY=secret,
            TICK_INTERVAL_SECONDS="0.05",
        )
        with process:
            wait_until(lambda: len(feed.seen_headers) >= 4 or None, timeout=5, what="polls")
            result = request(process.port, "/api/v1/ticks/FAKE?limit=10")
            assert result.status == 200
            assert [t["price"] for t in result.json["ticks"]] == [10.5, 10.6]
            assert result.json["ticks_total"] == 2  # later polls of the same rows add nothing
            symbols = request(process.port, "/api/v1/symbols").json["symbols"]
            assert [s["symbol"] for s in symbols] == ["FAKE"]
            assert all(h.get("x-api-key") == secret for h in feed.seen_headers)
            assert all(secret not in path for path in feed.seen_paths)

            feed.status = 401
            error = process.wait_for(
                lambda r: r.get("message") == "market data feed poll failed", timeout=5
            )
            assert error["level"] == "ERROR"
            assert error["upstream_status"] == 401
        assert secret not in "\n".join(process.lines())
