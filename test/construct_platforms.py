"""The small stacks MeshedFargateService and PlatformDashboard are tested on: one per mesh,
each built and synthesized once per test session, whichever module asks first.

Service Connect (the default mesh):
  - ``quotes``: internal, ``Release.rolling()`` by default, scaled on CPU, memory and its own
    metric, with an ECS secret, plain environment, its own alarm thresholds and 14-day logs;
  - ``gateway``: public, ``Release.blue_green(bake_time=15 min, lifecycle_hook=...)`` behind a
    TradingEdge, calls ``quotes``, a fixed count of 2, and a run-time secret granted with
    ``grant_secret_read`` after everything else was built;
  - ``ledger``: the smallest Fargate size, its own capacity strategy, a writable root
    filesystem and ``RemovalPolicy.DESTROY``;
  - a PlatformDashboard over quotes and gateway and the edge.

App Mesh (``Mesh.app_mesh(mtls=None)``; mutual TLS is covered by the example app):
  - ``prices``: ``Release.weighted(blue=90, green=10, green_image=v2)``;
  - ``orders``: rolling, calls ``prices``;
  - ``sweeper``: a worker (``port=None``) that calls ``prices``;
  - a PlatformDashboard over both.

The Envoy mutual-TLS mesh (``Mesh.mutual_tls()``, namespace ``mtls.trading.internal``), every
shape of call: fixture ``mutual_tls_platform``:
  - ``orders`` -> ``prices``: a plain call;
  - ``gateway``: public behind a TradingEdge, nobody in the mesh calls it; it calls ``quotes``
    and ``prices`` (so ``prices`` admits two callers);
  - ``quotes``: its own ResiliencePolicy, every field away from its default;
  - ``alpha`` <-> ``beta``: a mutual pair;
  - ``ring-x`` -> ``ring-y`` -> ``ring-z`` -> ``ring-x``: a ring of three;
  - ``audit``: nobody calls it and it calls nobody;
  - ``sweeper``: a worker (``port=None``, a command health check, a writable ``/tmp``) that
    calls ``quotes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as sm
from conftest import CDK_CONTEXT, ENV, synthesize
from construct_support import logical_id
from inputs_support import cluster_with_image

from trading_constructs import (
    AlarmThresholds,
    CapacityStrategy,
    ConnectionPoolOptions,
    ContainerOptions,
    CustomMetricTarget,
    HealthCheckOptions,
    Mesh,
    MeshedFargateService,
    OutlierOptions,
    PlatformDashboard,
    Release,
    ResiliencePolicy,
    RetryOptions,
    ScalingOptions,
    ScannedRepository,
    ServiceImage,
    ServiceSecret,
    TradingCluster,
    TradingEdge,
)

WORKER_HEALTH = HealthCheckOptions(command=["CMD-SHELL", "test -f /tmp/alive"])
"""A worker's health check: a file its loop touches (it has no port to probe)."""

HOOK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:post-test-traffic"


@dataclass(frozen=True)
class Built:
    """A synthesized construct stack, and how to find a construct's resource in it."""

    stack: Stack
    template: dict[str, Any]

    def id(self, construct: Any) -> str:
        return logical_id(self.stack, construct)

    def resource(self, construct: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][self.id(construct)]
        return resource

    def properties(self, construct: Any) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(construct)["Properties"]
        return properties

    def resolve(self, value: Any) -> Any:
        return self.stack.resolve(value)


@dataclass(frozen=True)
class ServiceConnectPlatform(Built):
    cluster: TradingCluster
    repository: ScannedRepository
    api_key: sm.Secret
    runtime_secret: sm.Secret
    hook: lambda_.IFunction
    quotes: MeshedFargateService
    gateway: MeshedFargateService
    ledger: MeshedFargateService
    edge: TradingEdge
    dashboard: PlatformDashboard


@dataclass(frozen=True)
class AppMeshPlatform(Built):
    cluster: TradingCluster
    repository: ScannedRepository
    prices: MeshedFargateService
    orders: MeshedFargateService
    sweeper: MeshedFargateService
    dashboard: PlatformDashboard


_built: dict[str, Any] = {}


def _common(
    app: App, stack: Stack, cluster: TradingCluster, repository: ScannedRepository
) -> dict[str, Any]:
    """What every construct stack holds: the stack, its template (the app synthesized once it
    is complete), its cluster and its repository."""
    result = synthesize(app)
    assert result.synth_error is None, result.synth_error
    return {
        "stack": stack,
        "template": result.templates[stack.stack_name],
        "cluster": cluster,
        "repository": repository,
    }


def _build_service_connect(outdir: Path) -> ServiceConnectPlatform:
    app = App(context=CDK_CONTEXT, outdir=str(outdir))
    stack = Stack(app, "ServiceConnect", env=ENV)
    cluster, repository, image = cluster_with_image(stack)
    api_key = sm.Secret(stack, "ApiKey", encryption_key=cluster.key)
    quotes = MeshedFargateService(
        stack,
        "Quotes",
        cluster=cluster,
        name="quotes",
        port=8080,
        image=image,
        environment={"LOG_LEVEL": "info"},
        secrets={"API_KEY": ServiceSecret(secret=api_key, field="api_key")},
        scaling=ScalingOptions(
            min_capacity=3,
            max_capacity=12,
            cpu_target_percent=55,
            memory_target_percent=65,
            custom_metric=CustomMetricTarget(metric_name="QuotesInFlight", target=40),
        ),
        alarm_thresholds=AlarmThresholds(error_logs=5, proxy_5xx=20, tasks_below_desired=2),
        log_retention_days=14,
    )
    hook = lambda_.Function.from_function_attributes(
        stack, "Hook", function_arn=HOOK_ARN, same_environment=True
    )
    gateway = MeshedFargateService(
        stack,
        "Gateway",
        cluster=cluster,
        name="gateway",
        port=8082,
        image=image,
        public=True,
        backends=[quotes],
        desired_count=2,
        release=Release.blue_green(bake_time=Duration.minutes(15), lifecycle_hook=hook),
    )
    ledger = MeshedFargateService(
        stack,
        "Ledger",
        cluster=cluster,
        name="ledger",
        port=8090,
        image=image,
        cpu=256,
        memory_mib=512,
        capacity=CapacityStrategy(fargate_base=0, fargate_weight=1, spot_base=2, spot_weight=3),
        readonly_root_filesystem=False,
        removal_policy=RemovalPolicy.DESTROY,
    )
    edge = TradingEdge(stack, "Edge", cluster=cluster, service=gateway)
    dashboard = PlatformDashboard(
        stack, "Dashboard", services=[quotes, gateway], edge=edge, dashboard_name="trading-ops"
    )
    # Granted last: the policy it makes must still come before the ECS service
    runtime_secret = sm.Secret(stack, "RuntimeSecret", encryption_key=cluster.key)
    gateway.grant_secret_read(runtime_secret)
    return ServiceConnectPlatform(
        **_common(app, stack, cluster, repository),
        api_key=api_key,
        runtime_secret=runtime_secret,
        hook=hook,
        quotes=quotes,
        gateway=gateway,
        ledger=ledger,
        edge=edge,
        dashboard=dashboard,
    )


def _build_app_mesh(outdir: Path) -> AppMeshPlatform:
    app = App(context=CDK_CONTEXT, outdir=str(outdir))
    stack = Stack(app, "AppMesh", env=ENV)
    cluster, repository, image = cluster_with_image(stack, mesh=Mesh.app_mesh(mtls=None))
    prices = MeshedFargateService(
        stack,
        "Prices",
        cluster=cluster,
        name="prices",
        port=8080,
        image=image,
        release=Release.weighted(
            blue=90, green=10, green_image=ServiceImage(repository=repository, tag="v2")
        ),
    )
    orders = MeshedFargateService(
        stack, "Orders", cluster=cluster, name="orders", port=8081, image=image, backends=[prices]
    )
    sweeper = MeshedFargateService(
        stack,
        "Sweeper",
        cluster=cluster,
        name="sweeper",
        port=None,
        image=image,
        health_check=WORKER_HEALTH,
        backends=[prices],
    )
    dashboard = PlatformDashboard(stack, "Dashboard", services=[prices, orders])
    return AppMeshPlatform(
        **_common(app, stack, cluster, repository),
        prices=prices,
        orders=orders,
        sweeper=sweeper,
        dashboard=dashboard,
    )


@dataclass(frozen=True)
class MutualTlsPlatform(Built):
    """One stack on the Envoy mutual-TLS mesh; ``services`` by service name."""

    cluster: TradingCluster
    repository: ScannedRepository
    services: dict[str, MeshedFargateService]
    edge: TradingEdge
    quotes_policy: ResiliencePolicy

    @property
    def namespace(self) -> str:
        return MUTUAL_TLS_NAMESPACE


MUTUAL_TLS_NAMESPACE = "mtls.trading.internal"

QUOTES_POLICY = ResiliencePolicy(
    retry=RetryOptions(
        max_retries=2,
        per_retry_timeout=Duration.millis(1500),
        http_retry_events=("server-error", "gateway-error", "client-error", "stream-error"),
        tcp_retry_events=(),
        backoff_base_interval=Duration.millis(40),
        backoff_max_interval=Duration.seconds(2),
    ),
    outlier=OutlierOptions(
        max_server_errors=3,
        interval=Duration.seconds(7),
        base_ejection_duration=Duration.seconds(45),
        max_ejection_percent=30,
    ),
    connection_pool=ConnectionPoolOptions(
        max_connections=64, max_pending_requests=32, max_requests=200, max_retries=5
    ),
    per_request_timeout=Duration.millis(6250),
    idle_timeout=Duration.seconds(90),
)
"""``quotes``' policy: every field of every group differs from its default."""


def _build_mutual_tls(outdir: Path) -> MutualTlsPlatform:
    app = App(context=CDK_CONTEXT, outdir=str(outdir))
    stack = Stack(app, "MutualTls", env=ENV)
    cluster, repository, image = cluster_with_image(
        stack, mesh=Mesh.mutual_tls(), namespace_name=MUTUAL_TLS_NAMESPACE
    )
    services: dict[str, MeshedFargateService] = {}

    def service(name: str, port: int | None, **props: Any) -> MeshedFargateService:
        construct_id = "".join(part.title() for part in name.split("-"))
        services[name] = MeshedFargateService(
            stack,
            construct_id,
            cluster=cluster,
            name=name,
            port=port,
            image=image,
            desired_count=1,
            **props,
        )
        return services[name]

    prices = service("prices", 8080)
    service("orders", 8081, backends=[prices])
    quotes = service("quotes", 8082, resilience=QUOTES_POLICY)
    gateway = service("gateway", 8083, public=True, backends=[quotes, prices])
    beta = service("beta", 8084)
    alpha = service("alpha", 8085, backends=[beta])
    beta.add_backend(alpha)
    ring_z = service("ring-z", 8086)
    ring_y = service("ring-y", 8087, backends=[ring_z])
    ring_x = service("ring-x", 8088, backends=[ring_y])
    ring_z.add_backend(ring_x)
    service("audit", 8089)
    service(
        "sweeper",
        None,
        backends=[quotes],
        health_check=WORKER_HEALTH,
        container=ContainerOptions(scratch_paths=["/tmp"]),
    )
    edge = TradingEdge(stack, "Edge", cluster=cluster, service=gateway)
    return MutualTlsPlatform(
        **_common(app, stack, cluster, repository),
        services=services,
        edge=edge,
        quotes_policy=QUOTES_POLICY,
    )


_BUILDS: dict[str, Callable[[Path], Built]] = {
    "service-connect": _build_service_connect,
    "app-mesh": _build_app_mesh,
    "mutual-tls": _build_mutual_tls,
}


def built(name: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The construct stack ``name`` (a key of ``_BUILDS``), built once a session by whichever
    test module asks first."""
    if name not in _built:
        _built[name] = _BUILDS[name](tmp_path_factory.mktemp(f"construct-{name}"))
    return _built[name]


def platforms(tmp_path_factory: pytest.TempPathFactory) -> list[Built]:
    """Every construct stack: Service Connect, App Mesh and the mutual-TLS mesh."""
    return [built(name, tmp_path_factory) for name in _BUILDS]


def platform_fixture(name: str, fixture: str) -> Any:
    """A session fixture ``fixture`` of the construct stack ``name``; a test module uses it with
    ``from construct_platforms import <fixture>``."""

    @pytest.fixture(scope="session", name=fixture)
    def platform(tmp_path_factory: pytest.TempPathFactory) -> Built:
        built_platform: Built = built(name, tmp_path_factory)
        return built_platform

    return platform


sc = platform_fixture("service-connect", "sc")
am = platform_fixture("app-mesh", "am")
mutual_tls_platform = platform_fixture("mutual-tls", "mutual_tls_platform")
