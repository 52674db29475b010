"""Service lifecycle: serve, run background loops, and stop cleanly on SIGTERM.

ECS sends SIGTERM, waits ``stopTimeout`` and then sends SIGKILL. On SIGTERM a service stops
accepting connections, lets in-flight requests finish within ``SHUTDOWN_GRACE_SECONDS``,
flushes its metrics and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from .config import LOG_LEVELS, CommonSettings, ConfigError, Env
from .http import InFlightTracker, JsonHttpServer, Router
from .logs import configure_logging
from .metrics import MetricSource, MetricsPublisher

logger = logging.getLogger(__name__)


class BackgroundLoop:
    """Call ``step`` every ``interval`` seconds on a daemon thread until stopped.

    A failing step is logged and retried next interval: a background loop must not die
    silently while the HTTP side keeps reporting healthy.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        step: Callable[[threading.Event], object],
        *,
        on_stop: Callable[[], object] | None = None,
    ) -> None:
        """``on_stop`` runs once on the loop's thread after its last step (hand work back)."""
        self.name = name
        self.interval = interval
        self._step = step
        self._on_stop = on_stop
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(max(timeout, 0.0))

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._step(self.stopping)
            except Exception:
                logger.exception("background step failed", extra={"loop": self.name})
            if self.stopping.wait(self.interval):
                break
        if self._on_stop is not None:
            try:
                self._on_stop()
            except Exception:
                logger.exception("background stop failed", extra={"loop": self.name})


class ServiceRuntime:
    """Own the HTTP server, background loops and metrics of one service process."""

    def __init__(
        self, settings: CommonSettings, router: Router, *, access_log_level: int = logging.DEBUG
    ) -> None:
        """``access_log_level`` applies to successful requests; failures always log at INFO+.

        Internal services default to DEBUG: the analytics refresh loop alone would otherwise
        write several INFO lines a second per task.
        """
        self.settings = settings
        self.router = router
        self.access_log_level = access_log_level
        self.in_flight = InFlightTracker()
        self._loops: list[BackgroundLoop] = []
        self._metric_sources: list[MetricSource] = []
        self._stop = threading.Event()
        self._stop_reason = "requested"

    def add_loop(self, loop: BackgroundLoop) -> None:
        self._loops.append(loop)

    def add_metric_source(self, source: MetricSource) -> None:
        self._metric_sources.append(source)

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason
        self._stop.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request_stop(signal.Signals(signum).name)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the process exit code."""
        settings = self.settings
        try:
            server = JsonHttpServer(
                (settings.host, settings.port),
                self.router,
                in_flight=self.in_flight,
                max_concurrent_requests=settings.max_concurrent_requests,
                success_log_level=self.access_log_level,
            )
        except OSError as exc:
            logger.error(
                "cannot listen",
                extra={"host": settings.host, "port": settings.port, "reason": str(exc)},
            )
            return 1
        metrics = MetricsPublisher(
            service=settings.service,
            interval=settings.metrics_interval,
            sources=self._metric_sources,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

        serving = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
        )
        serving.start()
        for loop in self._loops:
            loop.start()
        metrics.start()
        logger.info(
            "listening",
            extra={"host": settings.host, "port": server.server_address[1]},
        )

        exit_code = 0
        while not self._stop.wait(0.2):
            if not serving.is_alive():
                logger.error("http server stopped unexpectedly")
                exit_code = 1
                break
        self._shutdown(server, metrics)
        return exit_code

    def _shutdown(self, server: JsonHttpServer, metrics: MetricsPublisher) -> None:
        started = time.monotonic()
        grace = self.settings.shutdown_grace
        deadline = started + grace
        logger.info("shutdown started", extra={"reason": self._stop_reason, "grace_seconds": grace})
        server.shutdown()  # stop the accept loop...
        server.server_close()  # ...and close the listener: new connections are refused
        for loop in self._loops:
            loop.stop(deadline - time.monotonic())
        drained = self.in_flight.wait_idle(deadline - time.monotonic())
        if not drained:
            logger.warning(
                "grace period over with requests in flight",
                extra={"in_flight": self.in_flight.current},
            )
        metrics.stop(timeout=1.0)
        logger.info(
            "shutdown complete",
            extra={
                "drained": drained,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )


def main(service: str, build: Callable[[Env], ServiceRuntime]) -> int:
    """Entry point shared by the services: JSON logging first, then config, then serve.

    A configuration error is logged at ERROR and exits 2, so a bad task definition fails
    fast and visibly instead of serving with surprising defaults.
    """
    level = os.environ.get("LOG_LEVEL", "INFO").strip().upper()
    configure_logging(service, level if level in LOG_LEVELS else "INFO")
    try:
        runtime = build(Env(os.environ))
    except ConfigError as exc:
        logger.error("invalid configuration", extra={"reason": str(exc)})
        return 2
    return runtime.run()
