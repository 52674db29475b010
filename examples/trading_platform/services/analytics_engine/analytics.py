"""Per-symbol analytics over a window of trades; pure functions so they test on hand-made data.

Volatility is the sample standard deviation of log returns between consecutive ticks
(``volatility``). ``volatility_annualized`` scales it by ``sqrt(periods per year)``, where a
period is the mean spacing of the window's timestamps and a year is 252 sessions of 6.5 h.
Ticks are not evenly spaced in real markets, so treat it as an estimate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..common.market import TRADING_SECONDS_PER_YEAR


@dataclass(frozen=True, slots=True)
class Trade:
    """The part of a tick the analytics use."""

    price: float
    size: float
    ts: float


def vwap(prices: Sequence[float], sizes: Sequence[float]) -> float | None:
    """Volume-weighted average price; None when no volume traded."""
    volume = math.fsum(sizes)
    if volume <= 0:
        return None
    return math.fsum(p * s for p, s in zip(prices, sizes, strict=True)) / volume


def sma(prices: Sequence[float], period: int) -> float | None:
    """Mean of the last ``period`` prices; None until there are that many."""
    if period < 1 or len(prices) < period:
        return None
    return math.fsum(prices[-period:]) / period


def ema(prices: Sequence[float], period: int) -> float | None:
    """Exponential moving average, ``alpha = 2 / (period + 1)``, seeded with the first SMA."""
    if period < 1 or len(prices) < period:
        return None
    alpha = 2.0 / (period + 1)
    value = math.fsum(prices[:period]) / period
    for price in prices[period:]:
        value = alpha * price + (1 - alpha) * value
    return value


def log_returns(prices: Sequence[float]) -> list[float]:
    """``ln(p[i] / p[i-1])``; prices must be positive."""
    return [math.log(b / a) for a, b in pairwise(prices)]


def realized_volatility(prices: Sequence[float]) -> float | None:
    """Sample standard deviation of per-tick log returns; None below two returns."""
    returns = log_returns(prices)
    if len(returns) < 2:
        return None
    return statistics.stdev(returns)


def annualize(volatility: float | None, timestamps: Sequence[float]) -> float | None:
    """Scale per-tick volatility to a trading year using the mean tick spacing."""
    if volatility is None or len(timestamps) < 2:
        return None
    spacing = (timestamps[-1] - timestamps[0]) / (len(timestamps) - 1)
    if spacing <= 0:
        return None
    return volatility * math.sqrt(TRADING_SECONDS_PER_YEAR / spacing)


def summarize(
    symbol: str,
    trades: Sequence[Trade],
    *,
    sma_periods: Iterable[int] = (20, 50),
    ema_periods: Iterable[int] = (20,),
) -> dict[str, Any]:
    """All analytics for one symbol, oldest trade first; ``trades`` must not be empty."""
    if not trades:
        raise ValueError("no trades to summarize")
    prices = [t.price for t in trades]
    sizes = [t.size for t in trades]
    timestamps = [t.ts for t in trades]
    volatility = realized_volatility(prices)
    result: dict[str, Any] = {
        "symbol": symbol,
        "ticks": len(trades),
        "last_price": prices[-1],
        "min_price": min(prices),
        "max_price": max(prices),
        "vwap": vwap(prices, sizes),
        "volume": math.fsum(sizes),
        "volatility": volatility,
        "volatility_annualized": annualize(volatility, timestamps),
        "first_ts": timestamps[0],
        "last_ts": timestamps[-1],
    }
    for period in sma_periods:
        result[f"sma_{period}"] = sma(prices, period)
    for period in ema_periods:
        result[f"ema_{period}"] = ema(prices, period)
    return result
