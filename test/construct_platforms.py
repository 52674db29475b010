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
  - a PlatformDashboard over both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as sm
from conftest import CDK_CONTEXT, ENV, synthesize

from trading_constructs import (
    AlarmThresholds,
    CapacityStrategy,
    CustomMetricTarget,
    Mesh,
    MeshedFargateService,
    PlatformDashboard,
    Release,
    ScalingOptions,
    ScannedRepository,
    ServiceImage,
    ServiceSecret,
    TradingCluster,
    TradingEdge,
)

HOOK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:post-test-traffic"


@dataclass(frozen=True)
class Built:
    """A synthesized construct stack, and how to find a construct's resource in it."""

    stack: Stack
    template: dict[str, Any]

    def id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

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
    dashboard: PlatformDashboard


_built: dict[str, Any] = {}


def _synthesized(app: App, stack: Stack) -> dict[str, Any]:
    result = synthesize(app)
    assert result.synth_error is None, result.synth_error
    return result.templates[stack.stack_name]


def _build_service_connect(outdir: Path) -> ServiceConnectPlatform:
    app = App(context=CDK_CONTEXT, outdir=str(outdir))
    stack = Stack(app, "ServiceConnect", env=ENV)
    cluster = TradingCluster(stack, "Platform")
    repository = ScannedRepository(stack, "Repo", key=cluster.key)
    image = ServiceImage(repository=repository, tag="v1")
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
        stack=stack,
        template=_synthesized(app, stack),
        cluster=cluster,
        repository=repository,
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
    cluster = TradingCluster(stack, "Platform", mesh=Mesh.app_mesh(mtls=None))
    repository = ScannedRepository(stack, "Repo", key=cluster.key)
    image = ServiceImage(repository=repository, tag="v1")
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
    dashboard = PlatformDashboard(stack, "Dashboard", services=[prices, orders])
    return AppMeshPlatform(
        stack=stack,
        template=_synthesized(app, stack),
        cluster=cluster,
        repository=repository,
        prices=prices,
        orders=orders,
        dashboard=dashboard,
    )


def service_connect(tmp_path_factory: pytest.TempPathFactory) -> ServiceConnectPlatform:
    if "service-connect" not in _built:
        _built["service-connect"] = _build_service_connect(
            tmp_path_factory.mktemp("construct-service-connect")
        )
    platform: ServiceConnectPlatform = _built["service-connect"]
    return platform


def app_mesh(tmp_path_factory: pytest.TempPathFactory) -> AppMeshPlatform:
    if "app-mesh" not in _built:
        _built["app-mesh"] = _build_app_mesh(tmp_path_factory.mktemp("construct-app-mesh"))
    platform: AppMeshPlatform = _built["app-mesh"]
    return platform
