"""In-memory tick windows: bounded per symbol so memory stays flat however long the feed runs."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .feed import Tick


@dataclass
class _Series:
    window: deque[Tick]
    total: int = 0


class TickStore:
    """Recent ticks per symbol (``deque(maxlen=window)``) plus lifetime counts."""

    def __init__(self, window: int, *, max_symbols: int = 500) -> None:
        self.window = window
        self.max_symbols = max_symbols
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}
        self._ingested_since_flush = 0
        self.rejected_new_symbols = 0

    def add(self, ticks: Iterable[Tick]) -> int:
        """Store ticks; returns how many were kept (new symbols past the cap are refused)."""
        kept = 0
        with self._lock:
            for tick in ticks:
                series = self._series.get(tick.symbol)
                if series is None:
                    if len(self._series) >= self.max_symbols:
                        self.rejected_new_symbols += 1
                        continue
                    series = self._series[tick.symbol] = _Series(deque(maxlen=self.window))
                series.window.append(tick)
                series.total += 1
                kept += 1
            self._ingested_since_flush += kept
        return kept

    def recent(self, symbol: str, limit: int) -> tuple[list[Tick], int] | None:
        """The newest ``limit`` ticks, oldest first, and the lifetime count; None if unknown."""
        with self._lock:
            series = self._series.get(symbol)
            if series is None:
                return None
            window = series.window
            start = max(len(window) - limit, 0)
            return list(islice(window, start, None)), series.total

    def symbols(self) -> list[dict[str, Any]]:
        """A summary per symbol; ``ticks_total`` lets consumers measure what they have not seen."""
        with self._lock:
            return [
                {
                    "symbol": symbol,
                    "ticks_total": series.total,
                    "window": len(series.window),
                    "last_price": series.window[-1].price,
                    "last_ts": series.window[-1].ts,
                }
                for symbol, series in sorted(self._series.items())
            ]

    def take_ingested(self) -> int:
        """Ticks stored since the last call: the ``TicksIngested`` metric."""
        with self._lock:
            count, self._ingested_since_flush = self._ingested_since_flush, 0
            return count
