"""Tick sources: a seedable geometric Brownian motion feed, and a poller for a JSON feed."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..common.http import normalize_symbol
from ..common.httpclient import UpstreamError, get_json
from ..common.market import TRADING_SECONDS_PER_YEAR, is_number


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade: price per share, size in shares, ts in epoch seconds."""

    symbol: str
    price: float
    size: int
    ts: float

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "price": self.price, "size": self.size, "ts": self.ts}


class GbmFeed:
    """Synthetic ticks: ``S' = S * exp((mu - sigma^2/2) dt + sigma sqrt(dt) Z)``.

    The exponential keeps prices strictly positive; the same seed gives the same prices, so
    tests can pin them. ``mu`` and ``sigma`` are annual; ``dt`` is one step in trading years.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int | None = None,
        drift: float = 0.05,
        volatility: float = 0.25,
        step_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rng = random.Random(seed)
        self._clock = clock
        self.symbols = list(symbols)
        dt = step_seconds / TRADING_SECONDS_PER_YEAR
        self._drift_term = (drift - volatility**2 / 2) * dt
        self._shock_scale = volatility * math.sqrt(dt)
        self._prices = {symbol: self._rng.uniform(20.0, 500.0) for symbol in self.symbols}
        self._followed: set[str] = set()

    def follow(self, prices: Mapping[str, float | None]) -> None:
        """Generate ticks for these symbols only (the ones this task leases). A symbol new to
        this feed continues from its last stored price, so a lease moving between tasks does
        not make the price jump; without one it starts at a random price."""
        for symbol, price in sorted(prices.items()):
            if symbol in self._followed:
                continue  # still ours: our own path is what was stored
            if price is not None and price > 0:
                self._prices[symbol] = price
            elif symbol not in self._prices:
                self._prices[symbol] = self._rng.uniform(20.0, 500.0)
        self._followed = set(prices)
        self.symbols = sorted(prices)

    def next_ticks(self) -> list[Tick]:
        """Advance every followed symbol one step and return its trade."""
        now = round(self._clock(), 6)
        ticks = []
        for symbol in self.symbols:
            shock = self._rng.gauss(0.0, 1.0)
            price = self._prices[symbol] * math.exp(self._drift_term + self._shock_scale * shock)
            self._prices[symbol] = price
            size = 100 * self._rng.randint(1, 50)  # round lots
            ticks.append(Tick(symbol, round(price, 4) or 0.0001, size, now))
        return ticks


def parse_tick(item: Any, *, now: float) -> Tick | None:
    """One tick from untrusted JSON, or None: a bad row is dropped, not ingested as garbage."""
    if not isinstance(item, Mapping):
        return None
    raw_symbol = item.get("symbol")
    symbol = normalize_symbol(raw_symbol) if isinstance(raw_symbol, str) else None
    price = item.get("price")
    size = item.get("size", item.get("volume", 0))
    ts = item.get("ts", now)
    if symbol is None or not (is_number(price) and is_number(size) and is_number(ts)):
        return None
    if price <= 0 or size < 0 or ts <= 0:
        return None
    return Tick(symbol, float(price), int(size), float(ts))


class FeedPoller:
    """Poll a market-data HTTP endpoint answering ``{"ticks": [...]}`` or a bare list.

    The API key is sent only in a request header; it is never logged or put in a URL.
    Every valid row is returned: the store skips rows no newer than the symbol's stored
    ``last_ts``, so an endpoint polled faster than it updates, or by several tasks, does not
    double-count trades (rows without ``ts`` get "now").
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        api_key_header: str = "X-API-Key",
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._headers = {api_key_header: api_key} if api_key else {}
        self._timeout = timeout
        self._clock = clock
        self.rejected = 0

    def follow(self, prices: Mapping[str, float | None]) -> None:
        """The endpoint serves every symbol; the store keeps the leased ones."""

    def next_ticks(self) -> list[Tick]:
        """Fetch and parse one batch; raises UpstreamError when the feed fails."""
        payload = get_json(self.url, timeout=self._timeout, headers=self._headers)
        items = payload.get("ticks") if isinstance(payload, Mapping) else payload
        if not isinstance(items, list):
            raise UpstreamError("feed answered JSON without a ticks list", status=200)
        now = self._clock()
        ticks: list[Tick] = []
        for item in items:
            tick = parse_tick(item, now=now)
            if tick is None:
                self.rejected += 1
            else:
                ticks.append(tick)
        return ticks
