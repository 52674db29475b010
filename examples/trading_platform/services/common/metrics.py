"""Custom metrics as CloudWatch Embedded Metric Format (EMF) lines on stdout.

CloudWatch Logs extracts metrics from EMF log events itself, so the awslogs driver is
enough: no agent, no PutMetricData permission, no extra network path from the task.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .logs import write_line

NAMESPACE = "TradingPlatform"
DIMENSION = "Service"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """One metric value for one flush."""

    name: str
    value: float
    unit: str = "Count"


MetricSource = Callable[[], Iterable[Metric]]


def emf_document(
    metrics: Iterable[Metric], *, service: str, namespace: str = NAMESPACE, timestamp_ms: int
) -> dict[str, Any]:
    """Build one EMF document: all metrics share the single ``Service`` dimension."""
    metrics = list(metrics)
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": m.name, "Unit": m.unit} for m in metrics],
                }
            ],
        },
        DIMENSION: service,
    }
    for metric in metrics:
        doc[metric.name] = metric.value
    return doc


class Counter:
    """A thread-safe count that is read and reset once per flush."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, amount: int = 1) -> None:
        with self._lock:
            self._value += amount

    def take(self) -> int:
        """Return the count since the last take and start again at zero."""
        with self._lock:
            value, self._value = self._value, 0
            return value


class PeakGauge:
    """The largest value observed since the last flush, so short spikes are not lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._peak: float | None = None

    def observe(self, value: float) -> None:
        with self._lock:
            self._peak = value if self._peak is None else max(self._peak, value)

    def take(self) -> float | None:
        """Return the peak since the last take, or None when nothing was observed."""
        with self._lock:
            peak, self._peak = self._peak, None
            return peak


class MetricsPublisher:
    """Flush metric sources as one EMF line every interval, and once more on shutdown."""

    def __init__(
        self,
        *,
        service: str,
        interval: float,
        sources: Iterable[MetricSource],
        namespace: str = NAMESPACE,
        writer: Callable[[str], None] = write_line,
    ) -> None:
        self.service = service
        self.interval = interval
        self.namespace = namespace
        self._sources = list(sources)
        self._writer = writer
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the timer and flush what accumulated since the last interval."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.flush()

    def flush(self) -> dict[str, Any] | None:
        """Collect every source and write one EMF line; returns the document (None if empty)."""
        with self._flush_lock:
            metrics: list[Metric] = []
            for source in self._sources:
                try:
                    metrics.extend(source())
                except Exception:
                    logger.exception("metric source failed")
            if not metrics:
                return None
            doc = emf_document(
                metrics,
                service=self.service,
                namespace=self.namespace,
                timestamp_ms=int(time.time() * 1000),
            )
            self._writer(json.dumps(doc, separators=(",", ":")))
            return doc

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
