"""analytics-engine: per-symbol VWAP, moving averages and volatility over ingested ticks."""
