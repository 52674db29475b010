"""JSON-lines logging for the Lambda handlers: one object per line on standard output.

Each line has ``timestamp`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, plus the
fields of the call. CloudWatch Logs Insights reads the fields without a parse pattern, and a
metric filter can match on them (``{ $.level = "ERROR" }``).

The logger does not propagate to the root logger, where the Lambda runtime installs a
plain-text handler that would print every line a second time.

Callers pass identifiers, names, reasons and codes as fields, never a secret value, password,
key or certificate: this module cannot tell them apart.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

__all__ = ["JsonLogger"]


class _JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.Handler):
    """Write each record as one line to the current ``sys.stdout``.

    Looking the stream up at emit time (rather than binding it once, as ``StreamHandler`` does)
    keeps the output capturable in tests.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


class JsonLogger:
    """``log(level, message, **fields)`` writes one JSON line; INFO and above are written."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        if not any(isinstance(handler, _StdoutHandler) for handler in self.logger.handlers):
            handler = _StdoutHandler()
            handler.setFormatter(_JsonLineFormatter())
            self.logger.addHandler(handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def __call__(self, level: int, message: str, **fields: object) -> None:
        """Log ``message`` with ``fields``; the record names the caller, not this method."""
        self.logger.log(level, message, extra={"fields": fields}, stacklevel=2)
