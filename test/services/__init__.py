"""Tests of the example microservices under examples/trading_platform/services."""
