"""api-gateway: the public REST API in front of data-ingestion and analytics-engine."""
