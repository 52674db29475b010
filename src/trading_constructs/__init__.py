"""AWS CDK v2 constructs for a containerized microservice trading analytics platform."""

from ._signatures import show_signatures
from .cluster import AZ_COUNT, CapacityStrategy, TradingCluster, TradingClusterProps, VpcOptions
from .compliance import (
    acknowledge_wildcard_resource,
    ignore_redundant_depends_on,
    vpc_lambda_network_statement,
)
from .dashboard import PlatformDashboard
from .db_users import DbSchema, DbUser, TableGrant
from .edge import DomainOptions, TargetHealthOptions, TradingEdge
from .images import ServiceImage
from .mesh import (
    ConnectionPoolOptions,
    Mesh,
    MeshTlsOptions,
    OutlierOptions,
    ResiliencePolicy,
    RetryOptions,
)
from .notifications import AlarmNotifications, AlarmSubscription
from .observability import LOG_RETENTION_DAYS, AlarmThresholds
from .readiness import (
    DeployReadiness,
    EmittedMetrics,
    ReadinessFinding,
    ReadinessOptions,
    ReadinessReport,
    ReadinessRule,
)
from .release import BlueGreenRelease, Release, RollingRelease
from .repository import (
    KEEP_LAST_IMAGES,
    PullThroughCache,
    RegistryScanning,
    ScannedRepository,
    ScanType,
)
from .scaling import METRIC_NAMESPACE, CustomMetricTarget, ScalingOptions
from .secret import ROTATION_DAYS, ApiKeySecret, DbEngine, DbRotation, RotatingDbSecret
from .service import ContainerOptions, HealthCheckOptions, MeshedFargateService, ServiceSecret

__all__ = [
    "AZ_COUNT",
    "KEEP_LAST_IMAGES",
    "LOG_RETENTION_DAYS",
    "METRIC_NAMESPACE",
    "ROTATION_DAYS",
    "AlarmNotifications",
    "AlarmSubscription",
    "AlarmThresholds",
    "ApiKeySecret",
    "BlueGreenRelease",
    "CapacityStrategy",
    "ConnectionPoolOptions",
    "ContainerOptions",
    "CustomMetricTarget",
    "DbEngine",
    "DbRotation",
    "DbSchema",
    "DbUser",
    "DeployReadiness",
    "DomainOptions",
    "EmittedMetrics",
    "HealthCheckOptions",
    "Mesh",
    "MeshTlsOptions",
    "MeshedFargateService",
    "OutlierOptions",
    "PlatformDashboard",
    "PullThroughCache",
    "ReadinessFinding",
    "ReadinessOptions",
    "ReadinessReport",
    "ReadinessRule",
    "RegistryScanning",
    "Release",
    "ResiliencePolicy",
    "RetryOptions",
    "RollingRelease",
    "RotatingDbSecret",
    "ScalingOptions",
    "ScanType",
    "ScannedRepository",
    "ServiceImage",
    "ServiceSecret",
    "TableGrant",
    "TargetHealthOptions",
    "TradingCluster",
    "TradingClusterProps",
    "TradingEdge",
    "VpcOptions",
    "acknowledge_wildcard_resource",
    "ignore_redundant_depends_on",
    "vpc_lambda_network_statement",
]

show_signatures(*(v for v in map(globals().get, __all__) if isinstance(v, type)))
