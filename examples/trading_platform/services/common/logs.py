"""JSON logs, one object per line, so metric filters can match ``{ $.level = "ERROR" }``."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

# Logs and EMF metric documents share stdout; one lock keeps every line whole.
_OUTPUT_LOCK = threading.Lock()

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def write_line(line: str, stream: TextIO | None = None) -> None:
    """Write one whole line to stdout (or ``stream``); a closed pipe must not crash the service."""
    out = stream if stream is not None else sys.stdout
    with _OUTPUT_LOCK:
        try:
            out.write(line + "\n")
            out.flush()
        except (OSError, ValueError):
            pass


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object with the fields the log pipeline relies on."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, tz=timezone.utc)
        doc: dict[str, Any] = {
            "timestamp": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc.setdefault(key, value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class JsonLineHandler(logging.Handler):
    """Send formatted records through :func:`write_line` so they never interleave with EMF."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Replace the root handlers with one JSON handler on stdout (what awslogs ships)."""
    handler = JsonLineHandler()
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)


class Throttle:
    """Let a repeating event through at most once per interval, counting the ones held back.

    A dead upstream polled every second would otherwise write an ERROR line every second;
    one line per interval still trips the error metric filter and keeps the count honest.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next_allowed = float("-inf")
        self._suppressed = 0

    def allow(self) -> int | None:
        """None to stay quiet; otherwise how many events were suppressed since the last one."""
        with self._lock:
            now = self._clock()
            if now < self._next_allowed:
                self._suppressed += 1
                return None
            self._next_allowed = now + self.interval
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed
