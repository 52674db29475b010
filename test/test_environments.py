"""Every public construct in an environment-agnostic stack (``Stack(app, "S")``: one template for
any account and region), and on a VPC from ``Vpc.from_lookup`` in both of the passes the CDK CLI
makes: first with CDK's placeholder VPC (the lookup has not run, CDK records it as missing
context), then with the VPC the lookup found (what ``cdk.context.json`` stores)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
import pytest
from aws_cdk import App, Duration, Environment, Stack, region_info
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as sm
from conftest import CDK_CONTEXT
from constructs import Construct
from inputs_support import cluster_with_image

import trading_constructs
import trading_constructs.appmesh
from trading_constructs import (
    AlarmNotifications,
    AlarmSubscription,
    ApiKeySecret,
    DbSchema,
    DbUser,
    Mesh,
    MeshedFargateService,
    PlatformDashboard,
    RegistryScanning,
    Release,
    RotatingDbSecret,
    ServiceImage,
    TableGrant,
    TradingEdge,
)

TLS_AUTHORITY = (
    "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"
    "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
)
LOOKUP_ENV = Environment(account="123456789012", region="us-east-1")
LOOKED_UP_VPC_ID = "vpc-0a1b2c3d4e5f60718"
# As the CDK CLI runs an app (a process, not in memory): template validation findings are
# reported, and missing context is looked up first, so the placeholder pass can complete.
CLI_APP_PROCESS = {"@aws-cdk/core:appMode": "process"}


def _public_constructs() -> set[str]:
    """The names of every construct class the library exports, App Mesh plug-in included."""
    names = set()
    for module in (trading_constructs, trading_constructs.appmesh):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, Construct):
                names.add(name)
    return names


def _edge_platform(
    stack: Stack, mesh: Mesh, vpc: ec2.IVpc | None = None
) -> tuple[TradingEdge, ServiceImage]:
    """A cluster on ``vpc`` and a public service, blue/green behind an edge with WAF."""
    cluster, _, image = cluster_with_image(
        stack,
        vpc=vpc,
        mesh=mesh,
        interface_endpoints=[ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
        alarm_subscriptions=[AlarmSubscription.email("ops@example.com")],
    )
    gateway = MeshedFargateService(
        stack,
        "Gateway",
        cluster=cluster,
        name="gateway",
        port=8082,
        image=image,
        public=True,
        release=Release.blue_green(bake_time=Duration.minutes(5)),
    )
    edge = TradingEdge(
        stack, "Edge", cluster=cluster, service=gateway, waf=True, test_cidrs=["10.0.0.0/16"]
    )
    return edge, image


@jsii.implements(sm.ISecretAttachmentTarget)
class _ExistingCluster:
    """A database cluster of the account, by its identifier."""

    def as_secret_attachment_target(self) -> sm.SecretAttachmentTargetProps:
        return sm.SecretAttachmentTargetProps(
            target_id="orders", target_type=sm.AttachmentTargetType.RDS_DB_CLUSTER
        )


def _whole_platform(stack: Stack) -> None:
    """Everything else besides: a service the gateway calls, secrets, the account's registry
    scanning, more alarm notifications and a dashboard."""
    edge, image = _edge_platform(stack, Mesh.service_connect(tls_authority_arn=TLS_AUTHORITY))
    cluster, gateway = edge.service.cluster, edge.service
    quotes = MeshedFargateService(
        stack, "Quotes", cluster=cluster, name="quotes", port=8080, image=image
    )
    gateway.add_backend(quotes)
    master = RotatingDbSecret(stack, "DbSecret", key=cluster.key, vpc=cluster.vpc)
    master.attach(_ExistingCluster())
    schema = DbSchema(
        stack, "Schema", master=master, statements=["CREATE TABLE IF NOT EXISTS t (x int)"]
    )
    grants = [TableGrant(table="t", privileges=["SELECT"])]
    DbUser(stack, "AppUser", master=master, schema=schema, username="app", grants=grants)
    ApiKeySecret(stack, "ApiKey", key=cluster.key, vpc=cluster.vpc)
    RegistryScanning(stack, "Scanning")
    AlarmNotifications(stack, "MoreAlarms", key=cluster.key)
    PlatformDashboard(stack, "Dashboard", services=[quotes, gateway], edge=edge)


def _app_mesh_platform(stack: Stack) -> None:
    """The App Mesh plug-in with mutual TLS, and a service in weighted blue/green slots."""
    cluster, repository, image = cluster_with_image(stack, mesh=Mesh.app_mesh())
    MeshedFargateService(
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


@dataclass(frozen=True)
class Agnostic:
    app: App
    templates: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def agnostic(tmp_path_factory: pytest.TempPathFactory) -> Agnostic:
    """Both meshes, each in a stack without an environment, synthesized once."""
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("agnostic")))
    _whole_platform(Stack(app, "ServiceConnect"))
    _app_mesh_platform(Stack(app, "AppMesh"))
    assembly = app.synth()
    return Agnostic(app, {stack.stack_name: stack.template for stack in assembly.stacks})


def test_every_public_construct_synthesizes_in_an_environment_agnostic_stack(
    agnostic: Agnostic,
) -> None:
    # GIVEN both platforms in stacks without env  WHEN synthesized (above, without an error)
    built = {type(node).__name__ for node in agnostic.app.node.find_all()}
    # THEN every construct the library exports is among what was built
    assert _public_constructs() - built == set()
    # AND the templates name no account or region of their own
    for name, template in agnostic.templates.items():
        text = str([template["Resources"], template.get("Outputs")]).replace(TLS_AUTHORITY, "")
        assert "123456789012" not in text, name
        assert "us-east-1" not in text, name


def _elb_write_statement(template: dict[str, Any]) -> dict[str, Any]:
    (policy,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy")
    (statement,) = (
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:PutObject" and "Condition" not in s
    )
    return statement


def test_access_logs_name_the_regions_elb_account_or_the_log_delivery_service_at_deploy(
    agnostic: Agnostic,
) -> None:
    # GIVEN the edge's access-log bucket policy in a stack without a region
    template = agnostic.templates["ServiceConnect"]
    principal = _elb_write_statement(template)["Principal"]
    # THEN a condition chooses: the Region's Elastic Load Balancing account where it has one
    condition, account_arn, no_value = principal["AWS"]["Fn::If"]
    assert no_value == {"Ref": "AWS::NoValue"}
    mapping, region_ref, key = account_arn["Fn::Join"][1][3]["Fn::FindInMap"]
    assert region_ref == {"Ref": "AWS::Region"}
    accounts = region_info.RegionInfo.region_map(region_info.FactName.ELBV2_ACCOUNT)
    assert {r: v[key] for r, v in template["Mappings"][mapping].items()} == accounts
    # AND the log delivery service principal in the Regions that came later
    assert principal["Service"]["Fn::If"] == [
        condition,
        {"Ref": "AWS::NoValue"},
        "logdelivery.elasticloadbalancing.amazonaws.com",
    ]
    regions = str(template["Conditions"][condition])
    assert "'us-east-1'" in regions and "'eu-central-2'" not in regions
    assert all(f"'{region}'" in regions for region in accounts)


# -- Vpc.from_lookup ---------------------------------------------------------------------------


def _looked_up_vpc(azs: int) -> dict[str, Any]:
    """What the CDK CLI stores for a VPC lookup: public, private and isolated subnets per AZ."""
    groups = []
    for index, (name, kind) in enumerate(
        (("Public", "Public"), ("Private", "Private"), ("Isolated", "Isolated"))
    ):
        subnets = [
            {
                "subnetId": f"subnet-0{index}{az}0000000000000a",
                "cidr": f"10.0.{index * 16 + az}.0/24",
                "availabilityZone": f"us-east-1{'abc'[az]}",
                "routeTableId": f"rtb-0{index}{az}0000000000000a",
            }
            for az in range(azs)
        ]
        groups.append({"name": name, "type": kind, "subnets": subnets})
    return {
        "vpcId": LOOKED_UP_VPC_ID,
        "vpcCidrBlock": "10.0.0.0/16",
        "ownerAccountId": LOOKUP_ENV.account,
        "availabilityZones": [],
        "subnetGroups": groups,
    }


def _lookup_app(outdir: Path, context: dict[str, Any]) -> tuple[App, Stack]:
    app = App(context=CDK_CONTEXT | context, outdir=str(outdir))
    stack = Stack(app, "LookedUp", env=LOOKUP_ENV)
    vpc = ec2.Vpc.from_lookup(stack, "Vpc", vpc_id=LOOKED_UP_VPC_ID)
    _edge_platform(stack, Mesh.service_connect(), vpc=vpc)
    return app, stack


@dataclass(frozen=True)
class Lookup:
    missing_key: str
    template: dict[str, Any]


@pytest.fixture(scope="module")
def lookup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lookup]:
    """The two passes of ``cdk synth`` over a platform on a looked-up VPC."""
    # First pass: no context yet, so CDK hands out its placeholder and records the lookup
    first = _lookup_app(tmp_path_factory.mktemp("lookup-1"), CLI_APP_PROCESS)[0].synth()
    manifest = json.loads((Path(first.directory) / "manifest.json").read_text())
    (missing,) = manifest["missing"]
    # Second pass: the CLI looked the VPC up and put it in the context
    app, stack = _lookup_app(
        tmp_path_factory.mktemp("lookup-2"), {missing["key"]: _looked_up_vpc(azs=3)}
    )
    second = app.synth()
    yield Lookup(missing["key"], second.get_stack_by_name(stack.stack_name).template)


def test_the_placeholder_vpc_of_a_lookup_passes_so_the_lookup_can_run(lookup: Lookup) -> None:
    # GIVEN a platform on Vpc.from_lookup before the lookup ran (CDK's 2-AZ placeholder)
    # WHEN synthesized  THEN nothing of ours refuses it, and the VPC lookup is what is missing
    assert lookup.missing_key.startswith("vpc-provider:account=123456789012:")
    assert f"filter.vpc-id={LOOKED_UP_VPC_ID}" in lookup.missing_key


def test_the_looked_up_vpc_is_checked_and_used(lookup: Lookup) -> None:
    # GIVEN the second pass, with the VPC the lookup found (three AZs)
    services = [
        r["Properties"]
        for r in lookup.template["Resources"].values()
        if r["Type"] == "AWS::ECS::Service"
    ]
    # THEN the services run in its private subnets
    subnets = {
        s for p in services for s in p["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    }
    assert subnets == {f"subnet-01{az}0000000000000a" for az in range(3)}


def test_a_looked_up_vpc_in_two_azs_fails_with_our_message(lookup: Lookup, tmp_path: Path) -> None:
    # GIVEN a lookup that found a VPC in two AZs  WHEN the platform is built on it
    context = {lookup.missing_key: _looked_up_vpc(azs=2)}
    # THEN TradingCluster says what it needs
    with pytest.raises(ValueError, match=r"TradingCluster 'LookedUp/Platform': vpc=.* in 2 AZs"):
        _lookup_app(tmp_path, context)
