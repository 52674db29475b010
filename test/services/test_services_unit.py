"""Unit tests of the services' pieces: analytics math, GBM feed, poller, metrics, config, images."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import shutil
import ssl
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from examples.trading_platform.services.analytics_engine.analytics import (
    Trade,
    annualize,
    ema,
    log_returns,
    realized_volatility,
    sma,
    summarize,
    vwap,
)
from examples.trading_platform.services.analytics_engine.app import (
    Settings as AnalyticsSettings,
)
from examples.trading_platform.services.common.config import ConfigError, Env
from examples.trading_platform.services.common.db import Database, DbSettings
from examples.trading_platform.services.common.http import InFlightTracker, normalize_symbol
from examples.trading_platform.services.common.httpclient import (
    UpstreamError,
    redact_url,
    to_http_error,
)
from examples.trading_platform.services.common.logs import JsonFormatter, Throttle
from examples.trading_platform.services.common.market import TRADING_SECONDS_PER_YEAR
from examples.trading_platform.services.common.metrics import (
    Counter,
    Metric,
    MetricsPublisher,
    PeakGauge,
    emf_document,
)
from examples.trading_platform.services.common.schema import create_schema
from examples.trading_platform.services.data_ingestion.app import DataIngestion, Settings
from examples.trading_platform.services.data_ingestion.feed import (
    FeedPoller,
    GbmFeed,
    Tick,
    parse_tick,
)
from examples.trading_platform.services.data_ingestion.store import TickStore

from .support import REPO_ROOT, SERVICES_DIR, SERVICES_PYTHON, FakeFeed, TestDatabase

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:market-data-db-AbCdEf"
DB_ENV = {"DB_SECRET_ARN": SECRET_ARN}

# --- analytics math on hand-computed data ----------------------------------------------------


def test_vwap_weights_by_size() -> None:
    # (10*100 + 11*200 + 12*100) / 400 = 4400 / 400
    assert vwap([10.0, 11.0, 12.0], [100, 200, 100]) == pytest.approx(11.0)


def test_vwap_without_volume_is_none() -> None:
    assert vwap([10.0, 11.0], [0, 0]) is None


def test_sma_averages_the_last_period() -> None:
    assert sma([1.0, 2.0, 3.0, 4.0, 5.0], 3) == pytest.approx(4.0)  # (3+4+5)/3
    assert sma([1.0, 2.0, 3.0, 4.0, 5.0], 5) == pytest.approx(3.0)
    assert sma([1.0, 2.0], 3) is None


def test_ema_is_seeded_with_the_sma() -> None:
    # alpha = 2/(3+1) = 0.5; seed = mean(1,2,3) = 2; then 0.5*4+0.5*2 = 3; 0.5*5+0.5*3 = 4
    assert ema([1.0, 2.0, 3.0, 4.0, 5.0], 3) == pytest.approx(4.0)
    assert ema([1.0, 2.0, 3.0], 3) == pytest.approx(2.0)
    assert ema([1.0], 3) is None


def test_realized_volatility_of_two_returns() -> None:
    # Returns ln(1.1) and ln(0.9); the sample stdev of two values is |a - b| / sqrt(2).
    expected = abs(math.log(1.1) - math.log(0.9)) / math.sqrt(2)
    assert realized_volatility([100.0, 110.0, 99.0]) == pytest.approx(expected)
    assert expected == pytest.approx(0.1418956, abs=1e-7)  # 0.2006707 / 1.4142136


def test_realized_volatility_needs_two_returns() -> None:
    assert realized_volatility([100.0, 101.0]) is None
    assert realized_volatility([100.0, 100.0, 100.0]) == 0.0
    assert log_returns([100.0, 100.0]) == [0.0]


def test_annualize_uses_mean_tick_spacing() -> None:
    # Ticks one second apart: one trading year holds TRADING_SECONDS_PER_YEAR periods.
    assert annualize(0.001, [0.0, 1.0, 2.0]) == pytest.approx(
        0.001 * math.sqrt(TRADING_SECONDS_PER_YEAR)
    )
    assert annualize(0.001, [5.0, 5.0]) is None  # no elapsed time: nothing to scale by
    assert annualize(None, [0.0, 1.0]) is None


def test_summarize_on_hand_made_trades() -> None:
    trades = [
        Trade(10.0, 100, 1.0),
        Trade(11.0, 200, 2.0),
        Trade(12.0, 100, 3.0),
        Trade(11.0, 100, 4.0),
    ]
    result = summarize("ABC", trades, sma_periods=(2, 10), ema_periods=(2,))
    assert result["symbol"] == "ABC"
    assert result["ticks"] == 4
    assert result["last_price"] == 11.0
    assert (result["min_price"], result["max_price"]) == (10.0, 12.0)
    assert result["vwap"] == pytest.approx((1000 + 2200 + 1200 + 1100) / 500)
    assert result["volume"] == 500
    assert result["sma_2"] == pytest.approx(11.5)
    assert result["sma_10"] is None
    # alpha = 2/3, seed (10+11)/2 = 10.5; 12 -> 8 + 3.5 = 11.5; 11 -> 22/3 + 11.5/3
    assert result["ema_2"] == pytest.approx(33.5 / 3)
    assert result["volatility"] == pytest.approx(
        statistics.stdev([math.log(11 / 10), math.log(12 / 11), math.log(11 / 12)])
    )
    assert result["volatility_annualized"] == pytest.approx(
        result["volatility"] * math.sqrt(TRADING_SECONDS_PER_YEAR)
    )
    assert (result["first_ts"], result["last_ts"]) == (1.0, 4.0)
    json.dumps(result, allow_nan=False)  # serializable as the API returns it


def test_summarize_rejects_no_trades() -> None:
    with pytest.raises(ValueError):
        summarize("ABC", [])


# --- the synthetic GBM feed ------------------------------------------------------------------


def _run_feed(seed: int, steps: int, **kwargs: float) -> list[Tick]:
    clock = iter(range(1, steps + 1))
    feed = GbmFeed(["AAA", "BBB"], seed=seed, clock=lambda: float(next(clock)), **kwargs)
    return [tick for _ in range(steps) for tick in feed.next_ticks()]


def test_gbm_feed_is_deterministic_with_a_seed() -> None:
    assert _run_feed(42, 200) == _run_feed(42, 200)
    assert _run_feed(42, 200) != _run_feed(43, 200)


def test_gbm_feed_ticks_are_well_formed_and_positive() -> None:
    # A wild sigma and a year-long step still never produce a non-positive price.
    ticks = _run_feed(7, 2000, volatility=3.0, step_seconds=TRADING_SECONDS_PER_YEAR / 50)
    assert {t.symbol for t in ticks} == {"AAA", "BBB"}
    assert all(t.price > 0 and math.isfinite(t.price) for t in ticks)
    assert all(t.size > 0 and t.size % 100 == 0 for t in ticks)
    assert [t.ts for t in ticks[::2]] == sorted(t.ts for t in ticks[::2])


def test_gbm_volatility_is_recovered_by_the_analytics() -> None:
    # The feed's dt and the analytics' annualization share TRADING_SECONDS_PER_YEAR.
    ticks = [t for t in _run_feed(11, 5000, volatility=0.3, step_seconds=1.0) if t.symbol == "AAA"]
    trades = [Trade(t.price, t.size, t.ts) for t in ticks]
    result = summarize("AAA", trades)
    assert result["volatility_annualized"] == pytest.approx(0.3, rel=0.1)


# --- the polled market-data feed -------------------------------------------------------------


def test_parse_tick_validates_untrusted_rows() -> None:
    assert parse_tick({"symbol": "aapl", "price": 1.25, "volume": 5, "ts": 9.0}, now=1.0) == Tick(
        "AAPL", 1.25, 5, 9.0
    )
    assert parse_tick({"symbol": "AAPL", "price": 1.25}, now=3.0) == Tick("AAPL", 1.25, 0, 3.0)
    for bad in (
        {"symbol": "AA PL", "price": 1.0},
        {"symbol": 5, "price": 1.0},
        {"symbol": "AAPL", "price": "1.0"},
        {"symbol": "AAPL", "price": -1.0},
        {"symbol": "AAPL", "price": 1.0, "size": -5},
        {"symbol": "AAPL", "price": float("inf")},
        ["AAPL", 1.0],
    ):
        assert parse_tick(bad, now=1.0) is None, bad


def test_poller_sends_the_key_in_a_header_and_returns_every_valid_row() -> None:
    with FakeFeed() as feed:
        feed.payload = [
            {"symbol": "AAA", "price": 1.0, "size": 1, "ts": 100.0},
            {"symbol": "AAA", "price": 1.1, "size": 1, "ts": 100.0},
            {"symbol": "BBB", "price": 2.0, "size": 1, "ts": 101.0},
            {"symbol": "BAD SYMBOL", "price": 2.0},
        ]
        poller = FeedPoller(feed.url, api_key="k-123", api_key_header="X-Feed-Key", timeout=2)
        assert [t.price for t in poller.next_ticks()] == [1.0, 1.1, 2.0]
        assert poller.rejected == 1
        # Repeats are the store's to skip (against the stored last_ts, whichever task polled).
        assert [t.price for t in poller.next_ticks()] == [1.0, 1.1, 2.0]
        feed.payload = {"ticks": [{"symbol": "AAA", "price": 1.2, "size": 3, "ts": 102.0}]}
        assert poller.next_ticks() == [Tick("AAA", 1.2, 3, 102.0)]
        assert [h["x-feed-key"] for h in feed.seen_headers] == ["k-123"] * 3


def test_poller_without_key_sends_no_key_header() -> None:
    with FakeFeed() as feed:
        FeedPoller(feed.url, api_key=None).next_ticks()
        assert "x-api-key" not in feed.seen_headers[0]


def test_poller_failure_is_logged_without_the_key(
    caplog: pytest.LogCaptureFixture, database: TestDatabase
) -> None:
    secret = "s3cr3t-key-do-not-log"
    with FakeFeed() as feed:
        feed.status = 403
        settings = Settings.from_env(
            Env(
                {
                    **database.env("data-ingestion"),
                    "FEED_URL": f"{feed.url}?token=query-secret",
                    "MARKET_DATA_API_KEY": secret,
                }
            )
        )
        db = Database(settings.db, application_name="unit", schema=create_schema)
        store = TickStore(db, worker_id="unit-poller", window=10)
        service = DataIngestion(settings, settings.make_source(), store)
        with caplog.at_level(logging.DEBUG):
            assert service.poll_once() == 0
            assert service.poll_once() == 0  # throttled: one ERROR line per interval
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].__dict__["upstream_status"] == 403
    formatted = JsonFormatter("data-ingestion").format(errors[0])
    assert secret not in formatted and "query-secret" not in formatted
    assert secret not in caplog.text and "query-secret" not in caplog.text
    assert secret not in repr(settings)
    assert database.password not in repr(settings) and database.password not in caplog.text
    db.close()


def test_poller_rejects_a_payload_without_ticks() -> None:
    with FakeFeed() as feed:
        feed.payload = {"data": []}
        with pytest.raises(UpstreamError):
            FeedPoller(feed.url, api_key=None).next_ticks()


# --- metrics, logs and plumbing --------------------------------------------------------------


def test_emf_document_shape() -> None:
    doc = emf_document([Metric("TicksIngested", 12)], service="data-ingestion", timestamp_ms=5)
    assert doc == {
        "_aws": {
            "Timestamp": 5,
            "CloudWatchMetrics": [
                {
                    "Namespace": "TradingPlatform",
                    "Dimensions": [["Service"]],
                    "Metrics": [{"Name": "TicksIngested", "Unit": "Count"}],
                }
            ],
        },
        "Service": "data-ingestion",
        "TicksIngested": 12,
    }


def test_publisher_flushes_one_line_and_skips_empty_flushes() -> None:
    lines: list[str] = []
    counter = Counter()
    gauge = PeakGauge()
    publisher = MetricsPublisher(
        service="svc",
        interval=3600,
        sources=[
            lambda: [Metric("A", counter.take())],
            lambda: [] if (v := gauge.take()) is None else [Metric("B", v)],
        ],
        writer=lines.append,
    )
    counter.add(2)
    counter.add()
    gauge.observe(4)
    gauge.observe(1)
    publisher.start()
    publisher.stop()  # the shutdown flush
    (line,) = lines
    doc = json.loads(line)
    assert (doc["A"], doc["B"]) == (3, 4)
    assert [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["A", "B"]
    empty = MetricsPublisher(service="svc", interval=1, sources=[list], writer=lines.append)
    assert empty.flush() is None and len(lines) == 1


def test_in_flight_tracker_reports_the_peak_of_each_interval() -> None:
    tracker = InFlightTracker()
    tracker.enter()
    tracker.enter()
    tracker.leave()
    assert tracker.take_peak() == 2
    assert tracker.take_peak() == 1  # one is still in flight
    assert not tracker.wait_idle(0.01)
    tracker.leave()
    assert tracker.wait_idle(0.01)
    assert tracker.take_peak() == 1 and tracker.take_peak() == 0


def test_json_formatter_fields_extras_and_exceptions() -> None:
    logger = logging.getLogger("unit.json")
    record = logger.makeRecord(
        "unit.json", logging.ERROR, __file__, 1, "boom %s", ("x",), None, extra={"symbol": "AAA"}
    )
    try:
        raise RuntimeError("kaput")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    doc = json.loads(JsonFormatter("svc").format(record))
    assert doc["level"] == "ERROR"
    assert doc["service"] == "svc"
    assert doc["message"] == "boom x"
    assert doc["symbol"] == "AAA"
    assert "RuntimeError: kaput" in doc["exception"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["timestamp"])


def test_throttle_counts_suppressed_events() -> None:
    now = [0.0]
    throttle = Throttle(10, clock=lambda: now[0])
    assert throttle.allow() == 0
    assert throttle.allow() is None
    assert throttle.allow() is None
    now[0] = 10.0
    assert throttle.allow() == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("aapl", "AAPL"),
        (" MSFT ", "MSFT"),
        ("brk.b", "BRK.B"),
        ("A1", "A1"),
        ("1A", None),
        ("", None),
        ("A$", None),
        ("ABCDEFGHIJK", None),
        ("..", None),
        ("ÄBC", None),
    ],
)
def test_normalize_symbol(raw: str, expected: str | None) -> None:
    assert normalize_symbol(raw) == expected


def test_upstream_errors_map_to_client_statuses() -> None:
    assert to_http_error(UpstreamError("x", 404), upstream="u", symbol="S").status == 404
    for status in (None, 502, 503, 504):
        error = to_http_error(UpstreamError("x", status), upstream="u", symbol="S")
        assert (error.status, error.headers) == (503, {"Retry-After": "1"})
    assert to_http_error(UpstreamError("x", 500), upstream="u", symbol="S").status == 502
    assert to_http_error(UpstreamError("x", 400), upstream="u", symbol="S").status == 502


def test_redact_url_drops_credentials() -> None:
    assert redact_url("https://user:pw@feed.example:8443/v1/t?apikey=abc#f") == (
        "https://feed.example:8443/v1/t"
    )


# --- configuration ---------------------------------------------------------------------------


def test_defaults_match_the_documented_contract() -> None:
    settings = Settings.from_env(Env(DB_ENV))
    assert settings.common.port == 8080
    assert settings.common.host == "0.0.0.0"
    assert settings.common.metrics_interval == 60.0
    assert settings.window_size == 1000
    assert settings.symbols == ("AAPL", "MSFT", "GOOG", "AMZN", "JPM")
    assert settings.feed_url is None
    assert settings.worker_timeout == 15.0
    db = settings.db
    assert (db.secret_arn, db.region, db.static, db.read_host) == (
        SECRET_ARN,
        "eu-west-1",
        None,
        None,
    )
    assert (db.ca_file, db.timeout, db.pool_size) == (None, 5.0, 4)
    context = db.ssl_context()  # never unverified, whatever the CA
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    analytics = AnalyticsSettings.from_env(Env(DB_ENV))
    assert (analytics.common.port, analytics.batch_size, analytics.worker_timeout) == (
        8081,
        20,
        15.0,
    )


def test_database_from_the_environment_for_local_runs() -> None:
    db = DbSettings.from_env(
        Env({"DB_HOST": "db.local", "DB_USER": "me", "DB_PASSWORD": "pw-never-shown"})
    )
    assert db.secret_arn is None
    assert db.static is not None
    assert (db.static.host, db.static.port, db.static.dbname, db.static.username) == (
        "db.local",
        5432,
        "marketdata",
        "me",
    )
    assert "pw-never-shown" not in repr(db) and "pw-never-shown" not in repr(db.static)


@pytest.mark.parametrize(
    "env",
    [
        {"WINDOW_SIZE": "0"},
        {"WINDOW_SIZE": "ten"},
        {"PORT": "70000"},
        {"SHUTDOWN_GRACE_SECONDS": "120"},
        {"METRICS_INTERVAL_SECONDS": "nan"},
        {"LOG_LEVEL": "LOUD"},
        {"SYMBOLS": "AAPL,NOT A SYMBOL"},
        {"FEED_URL": "ftp://feed.example/x"},
        {"FEED_URL": "http://feed.example:99999/x"},
        {"FEED_API_KEY_HEADER": "X Bad: header"},
    ],
)
def test_bad_configuration_is_rejected(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(Env({**DB_ENV, **env}))
    assert next(iter(env)) in str(info.value)
    assert "feed.example" not in str(info.value)  # URLs may hold credentials: never echoed


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "DB_SECRET_ARN"),
        ({"DB_SECRET_ARN": "market-data-db"}, "DB_SECRET_ARN"),
        ({"DB_SECRET_ARN": "arn:aws:s3:::bucket"}, "DB_SECRET_ARN"),
        ({"DB_HOST": "db.local", "DB_PASSWORD": "pw-secret-x"}, "DB_USER"),
        ({"DB_HOST": "db.local", "DB_USER": "u"}, "DB_PASSWORD"),
        ({"DB_HOST": "db local", "DB_USER": "u", "DB_PASSWORD": "pw-secret-x"}, "DB_HOST"),
        ({**DB_ENV, "DB_PORT": "0"}, None),  # DB_PORT only counts with DB_HOST
        ({"DB_HOST": "h", "DB_USER": "u", "DB_PASSWORD": "p", "DB_PORT": "70000"}, "DB_PORT"),
        ({**DB_ENV, "DB_CA_FILE": "/nonexistent/ca.pem"}, "DB_CA_FILE"),
        ({**DB_ENV, "DB_READ_HOST": "reader/endpoint"}, "DB_READ_HOST"),
        ({**DB_ENV, "DB_TIMEOUT_SECONDS": "0"}, "DB_TIMEOUT_SECONDS"),
        ({**DB_ENV, "DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({**DB_ENV, "WORKER_TIMEOUT_SECONDS": "0.1"}, "WORKER_TIMEOUT_SECONDS"),
    ],
)
def test_bad_database_configuration_is_rejected(env: dict[str, str], named: str | None) -> None:
    for settings in (Settings, AnalyticsSettings):
        if named is None:
            settings.from_env(Env(env))
            continue
        with pytest.raises(ConfigError) as info:
            settings.from_env(Env(env))
        assert named in str(info.value)
        assert str(info.value) != "p" and str(info.value) != "u"


def test_ca_file_that_is_not_pem_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "bundle.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError, match="DB_CA_FILE"):
        DbSettings.from_env(Env({**DB_ENV, "DB_CA_FILE": str(bogus)}))


# --- container images ------------------------------------------------------------------------

IMAGES = {
    "data_ingestion": 8080,
    "analytics_engine": 8081,
    "api_gateway": 8082,
}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


DB_SERVICES = {"data_ingestion", "analytics_engine"}
RDS_BUNDLE = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
DB_CA_FILE = "/app/certs/rds-global-bundle.pem"


@pytest.mark.parametrize(("folder", "port"), IMAGES.items())
def test_dockerfile_follows_the_image_contract(folder: str, port: int) -> None:
    steps = _instructions(SERVICES_DIR / folder / "Dockerfile")
    values: dict[str, list[str]] = {}
    for keyword, argument in steps:
        values.setdefault(keyword, []).append(argument)
    (base,) = values["FROM"]
    assert re.fullmatch(r"python:3\.12\.\d+-slim-\w+", base)  # pinned, never :latest
    assert values["USER"] == ["10001:10001"]
    assert values["EXPOSE"] == [str(port)]
    env = " ".join(values["ENV"])
    for setting in ("PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", f"PORT={port}"):
        assert setting in env
    assert "services.common.healthcheck" in values["HEALTHCHECK"][0]
    assert values["CMD"] == [f'["python", "-m", "services.{folder}.app"]']
    assert [k for k, _ in steps].index("USER") > max(
        i for i, (k, _) in enumerate(steps) if k in ("RUN", "COPY", "ADD")
    )  # nothing runs as root after the switch, and the service never runs as root
    assert not re.search(r"(?i)(api_key|secret|password|token)\s*=", env)
    runs = " ".join(values["RUN"])
    if folder in DB_SERVICES:
        # The pinned, hash-checked wheels, and the RDS CA bundle where DB_CA_FILE says.
        assert "pip install --no-cache-dir --require-hashes --only-binary :all: -r" in runs
        assert values["ADD"] == [f"{RDS_BUNDLE} {DB_CA_FILE}"]
        assert f"DB_CA_FILE={DB_CA_FILE}" in env
        assert f"chmod 0644 {DB_CA_FILE}" in runs  # ADD from a URL makes it root-only
    else:
        assert "pip" not in runs and "ADD" not in values  # the gateway installs nothing


@pytest.mark.parametrize("folder", IMAGES)
def test_image_layout_imports_without_sibling_services(folder: str, tmp_path: Path) -> None:
    """Rebuild the image's /app from the COPY lines and import the entry module there."""
    app = tmp_path / "app"
    app.mkdir()
    for keyword, argument in _instructions(SERVICES_DIR / folder / "Dockerfile"):
        if keyword != "COPY":
            continue
        source, destination = argument.split()
        if not destination.startswith("./services/"):
            continue  # requirements.txt, installed and removed at build time
        target = app / destination.removeprefix("./")
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(SERVICES_DIR.glob(source)):
            shutil.copy(path, target / path.name)
    module = f"services.{folder}.app"
    done = subprocess.run(
        [SERVICES_PYTHON, "-c", f"import {module}"],
        cwd=app,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    copied = {p.name for p in (app / "services").iterdir()}
    assert copied == {"__init__.py", "common", folder}  # no other service's code in the image


def test_dockerignore_keeps_caches_out_of_the_context() -> None:
    patterns = (SERVICES_DIR / ".dockerignore").read_text().split()
    assert "**/__pycache__" in patterns
    assert not any("Dockerfile" in p for p in patterns)  # the CDK asset needs them staged
    assert not any("requirements" in p for p in patterns)


def _imports(path: Path) -> set[str]:
    """Top-level modules a file imports (relative imports excluded)."""
    found = set()
    for line in io.StringIO(path.read_text()):
        match = re.match(r"\s*(?:from|import)\s+([A-Za-z_][\w]*)", line)
        if match and not line.lstrip().startswith("from ."):
            found.add(match.group(1))
    return found


def _requirements() -> dict[str, tuple[str, list[str]]]:
    text = re.sub(r"\\\n\s*", " ", (SERVICES_DIR / "requirements.txt").read_text())
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, rest = line.partition("==")
            version, *hashes = rest.split()
            pins[name.strip()] = (version, [h.removeprefix("--hash=") for h in hashes])
    return pins


def test_services_import_only_the_standard_library_and_pinned_packages() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    pinned = {"pg8000", "boto3", "botocore"}
    for path in SERVICES_DIR.rglob("*.py"):
        outside = _imports(path) - stdlib
        assert outside <= pinned, f"{path}: {outside}"
        if outside:  # only the database modules and the services that use them
            assert path.parent.name in DB_SERVICES | {"common"}, path
    assert {"pg8000", "boto3", "botocore"} <= set(_requirements())
    # The gateway's image installs nothing: nothing it imports may need a package.
    gateway = (SERVICES_DIR / "api_gateway" / "app.py").read_text()
    assert "common.db" not in gateway and "common.schema" not in gateway


def _section(block: str, key: str) -> str:
    match = re.search(rf"^{key} = \[\n(.*?)^\]", block, re.S | re.M)
    return match.group(1) if match else ""


def _locked(name: str, version: str) -> dict[str, Any]:
    """One ``[[package]]`` of uv.lock: its resolution markers, dependencies and wheel hashes
    (read with regular expressions: tomllib is not in Python 3.10)."""
    text = (REPO_ROOT / "uv.lock").read_text()
    for block in text.split("\n[[package]]\n"):
        if f'name = "{name}"\nversion = "{version}"\n' not in block:
            continue

        return {
            "markers": _section(block, "resolution-markers"),
            "dependencies": re.findall(r'\{ name = "([^"]+)"', _section(block, "dependencies")),
            "hashes": re.findall(r'hash = "(sha256:[0-9a-f]{64})"', _section(block, "wheels")),
        }
    raise AssertionError(f"{name}=={version} is not in uv.lock")


def test_requirements_are_the_locked_wheels_and_closed() -> None:
    """Exactly the versions and wheel hashes uv.lock resolves for the images' Python 3.12,
    with every dependency listed (pip --require-hashes refuses anything unpinned)."""
    pins = _requirements()
    assert len(pins) == 10
    for name, (version, hashes) in pins.items():
        entry = _locked(name, version)
        assert "< '3.11'" not in entry["markers"], f"{name}=={version} is for Python 3.10"
        assert hashes and hashes == entry["hashes"], name
        for dependency in entry["dependencies"]:
            assert dependency in pins, f"{name} needs {dependency}"
