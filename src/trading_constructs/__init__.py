"""AWS CDK v2 constructs for a containerized microservice trading analytics platform."""

from .cluster import AZ_COUNT, CapacityStrategy, TradingCluster, VpcOptions
from .compliance import acknowledge_wildcard_resource, ignore_redundant_role_dependency
from .repository import (
    KEEP_LAST_IMAGES,
    PullThroughCache,
    RegistryScanning,
    ScannedRepository,
    ScanType,
)
from .secret import ROTATION_DAYS, ApiKeySecret, DbEngine, DbRotation, RotatingDbSecret

__all__ = [
    "AZ_COUNT",
    "KEEP_LAST_IMAGES",
    "ROTATION_DAYS",
    "ApiKeySecret",
    "CapacityStrategy",
    "DbEngine",
    "DbRotation",
    "PullThroughCache",
    "RegistryScanning",
    "RotatingDbSecret",
    "ScanType",
    "ScannedRepository",
    "TradingCluster",
    "VpcOptions",
    "acknowledge_wildcard_resource",
    "ignore_redundant_role_dependency",
]
