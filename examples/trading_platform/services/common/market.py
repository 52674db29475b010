"""Market conventions shared by the feed and the analytics, so their numbers agree."""

from __future__ import annotations

import math
from typing import TypeGuard

# A trading year: 252 sessions of 6.5 hours. The synthetic feed steps in this unit and the
# analytics engine annualizes with it, so annualized volatility estimates the feed's sigma.
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number; bools are ints in Python but never prices."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
