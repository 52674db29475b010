"""data-ingestion: market ticks from a synthetic GBM feed or a polled JSON feed."""
