"""Session fixtures: each app is synthesized once per test session, never once per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template
from postgres_server import PostgresServer, running_postgres

from examples.trading_platform.app import create_app
from trading_constructs import TradingCluster

ENV = Environment(region="us-east-1")
CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
)
ROOT = Path(__file__).resolve().parents[1]
# The feature flags `cdk synth` runs with: tests synthesize what the CLI synthesizes.
CDK_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]


def team_vpc(stack: Stack) -> ec2.Vpc:
    """A VPC as a team brings it to TradingCluster: three zones of us-east-1, one NAT gateway,
    its default security group left as it is."""
    return ec2.Vpc(
        stack,
        "Network",
        availability_zones=["us-east-1a", "us-east-1b", "us-east-1c"],
        nat_gateways=1,
        restrict_default_security_group=False,
    )


@dataclass(frozen=True)
class SynthesizedApp:
    """One synthesized app: its stacks' templates and the cdk-nag validation report."""

    app: App
    outdir: Path
    templates: dict[str, dict[str, Any]]
    validation_report: dict[str, Any] | None
    synth_error: Exception | None

    def template(self, stack_name: str) -> Template:
        return Template.from_json(self.templates[stack_name])


def synthesize(app: App) -> SynthesizedApp:
    """Synthesize, keeping a validation failure as data so tests can show what it was."""
    error: Exception | None = None
    try:
        app.synth()
    except Exception as exc:  # a cdk-nag violation stops synthesis; the report says why
        error = exc
    outdir = Path(app.outdir)
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return SynthesizedApp(app, outdir, templates, report, error)


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The App Mesh design: ``cdk synth -c mesh=appmesh`` (App Mesh with mutual TLS, weighted
    blue/green slots), cdk-nag packs included. It synthesizes and is gated like the default,
    though App Mesh resources can no longer be created."""
    outdir = tmp_path_factory.mktemp("example")
    context = CDK_CONTEXT | {"mesh": "appmesh"}
    return synthesize(create_app(context=context, outdir=str(outdir)))


@pytest.fixture(scope="session")
def example_template(example: SynthesizedApp) -> Template:
    return example.template("TradingPlatform")


@pytest.fixture(scope="session")
def service_connect(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The example on ECS Service Connect: ``cdk synth -c mesh=service-connect`` with a
    certificate, so the load balancer serves HTTPS."""
    outdir = tmp_path_factory.mktemp("service-connect")
    context = CDK_CONTEXT | {"mesh": "service-connect", "certificate_arn": CERTIFICATE_ARN}
    return synthesize(create_app(context=context, outdir=str(outdir)))


@pytest.fixture(scope="session")
def mutual_tls(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The example as ``cdk synth`` builds it with no context: the Envoy mutual-TLS mesh."""
    outdir = tmp_path_factory.mktemp("mutual-tls")
    return synthesize(create_app(context=CDK_CONTEXT, outdir=str(outdir)))


@dataclass(frozen=True)
class ClusterStacks:
    """Stacks of the cluster alone, in the shapes users build it."""

    default: Template
    custom: Template
    existing_vpc: Template
    app: SynthesizedApp


@pytest.fixture(scope="session")
def cluster_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStacks]:
    from aws_cdk import RemovalPolicy
    from aws_cdk import aws_ecs as ecs
    from aws_cdk import aws_logs as logs

    from trading_constructs import CapacityStrategy, VpcOptions

    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("cluster")))
    TradingCluster(Stack(app, "Default", env=ENV), "Platform")
    TradingCluster(
        Stack(app, "Custom", env=ENV),
        "Platform",
        vpc_options=VpcOptions(
            cidr="10.20.0.0/18",
            nat_gateways=1,
            availability_zones=["us-east-1a", "us-east-1b", "us-east-1c"],
            private_subnet_mask=22,
            flow_log_retention=logs.RetentionDays.TWO_YEARS,
        ),
        cluster_name="trading-dev",
        namespace_name="dev.trading.internal",
        capacity=CapacityStrategy(fargate_base=0, fargate_weight=0, spot_base=2, spot_weight=1),
        container_insights=ecs.ContainerInsights.ENABLED,
        removal_policy=RemovalPolicy.DESTROY,
    )
    shared = Stack(app, "Existing", env=ENV)
    TradingCluster(shared, "Platform", vpc=team_vpc(shared))
    synthesized = synthesize(app)
    yield ClusterStacks(
        default=synthesized.template("Default"),
        custom=synthesized.template("Custom"),
        existing_vpc=synthesized.template("Existing"),
        app=synthesized,
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server per test session (TLS only, SCRAM), stopped at the end."""
    with running_postgres() as server:
        yield server


# The files that take longest, longest first: pytest-xdist (``--dist loadfile``) hands whole
# files to its workers in collection order, so a long file collected last keeps one worker busy
# while the other waits. Only the order changes; every test still runs.
LONGEST_FIRST = (
    "test_control_tower.py",
    "test_deploy_readiness.py",
    "test_quality_gates.py",
    "test_envoy_config.py",
    "services/test_services_db.py",
    "test_calls.py",
    "services/test_services_e2e.py",
    "test_readme.py",
    "test_pipeline.py",
    "test_rotation_postgres.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0].removeprefix("test/")
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and among the rest, the order is kept
