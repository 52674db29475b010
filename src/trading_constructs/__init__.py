"""AWS CDK v2 constructs for a containerized microservice trading analytics platform."""

from .cluster import AZ_COUNT, CapacityStrategy, TradingCluster, VpcOptions

__all__ = ["AZ_COUNT", "CapacityStrategy", "TradingCluster", "VpcOptions"]
