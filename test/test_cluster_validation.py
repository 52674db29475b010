"""Bad input to TradingCluster fails at synth time, naming the prop, value and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Fn, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from validation_support import assert_refused, options_refused

from trading_constructs import CapacityStrategy, TradingCluster, VpcOptions


@pytest.fixture
def stack() -> Stack:
    # Construct-time validation only: nothing here is synthesized.
    return Stack(App(), "Test")


OPTIONS_REFUSED: dict[Any, list[Any]] = {
    VpcOptions: [
        ({"cidr": "10.0.0.0/33"}, r"cidr='10.0.0.0/33'.*IPv4 CIDR block"),
        ({"cidr": "not-a-cidr"}, r"cidr='not-a-cidr'.*IPv4 CIDR block"),
        ({"cidr": "10.0.0.1/16"}, r"cidr='10.0.0.1/16'.*IPv4 CIDR block"),
        ({"cidr": "10.0.0.0/8"}, r"cidr='10.0.0.0/8'.*prefix length from /16 to /24"),
        ({"cidr": Fn.import_value("Cidr")}, r"cidr='\$\{Token.*concrete CIDR"),
        ({"nat_gateways": 0}, r"nat_gateways=0.*from 1 to 3"),
        ({"nat_gateways": 4}, r"nat_gateways=4.*from 1 to 3"),
        ({"nat_gateways": True}, r"nat_gateways=True.*integer from 1 to 3"),
        ({"public_subnet_mask": 29}, r"public_subnet_mask=29.*from 16 to 28"),
        ({"private_subnet_mask": 15}, r"private_subnet_mask=15.*from 16 to 28"),
        ({"isolated_subnet_mask": 24.5}, r"isolated_subnet_mask=24.5.*integer"),
        ({"availability_zones": ["us-east-1a", "us-east-1b"]}, r"availability_zones=.*exactly 3"),
        (
            {"availability_zones": ["us-east-1a", "us-east-1a", "us-east-1b"]},
            r"availability_zones=.*distinct",
        ),
        ({"flow_log_retention": 30}, r"flow_log_retention=30.*RetentionDays"),
        (
            {"cidr": "10.0.0.0/24", "private_subnet_mask": 24},
            r"cidr='10.0.0.0/24' is too small for 3 AZs",
        ),
        (
            {"cidr": "10.0.0.0/20", "private_subnet_mask": 16},
            r"subnet masks \[24, 16, 24\] must each be at least the VPC's prefix /20",
        ),
    ],
    CapacityStrategy: [
        ({"fargate_base": -1}, r"fargate_base=-1.*from 0 to 100000"),
        ({"spot_base": 100_001}, r"spot_base=100001.*from 0 to 100000"),
        ({"fargate_weight": 1001}, r"fargate_weight=1001.*from 0 to 1000"),
        ({"spot_weight": -4}, r"spot_weight=-4.*from 0 to 1000"),
        (
            {"fargate_base": 1, "spot_base": 1},
            r"fargate_base=1 and spot_base=1: ECS allows a base on only one capacity provider",
        ),
        (
            {"fargate_weight": 0, "spot_weight": 0},
            r"fargate_weight=0 and spot_weight=0: .*at least one weight above 0",
        ),
    ],
}
"""What each options class refuses: a row's props over valid ones, and the words of the
message (after ``<Class>: ``)."""


@options_refused(OPTIONS_REFUSED)
def test_bad_options(options_class: Any, options: dict[str, Any], message: str) -> None:
    # GIVEN an options class and props that break one of its rules
    # WHEN it is built  THEN it refuses them, naming the class, the prop, the value and
    # what is allowed
    assert_refused(options_class, options, message)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"cluster_name": "trading cluster"}, r"cluster_name='trading cluster'.*letters, digits"),
        ({"cluster_name": "x" * 256}, r"cluster_name='x+'.*1 to 255"),
        ({"namespace_name": "Trading.Local"}, r"namespace_name='Trading.Local'.*lower-case DNS"),
        ({"namespace_name": "trading..local"}, r"namespace_name='trading..local'"),
        ({"namespace_name": "-trading.local"}, r"namespace_name='-trading.local'"),
        ({"namespace_name": ""}, r"namespace_name=''"),
        ({"namespace_name": "a" * 64 + ".local"}, r"namespace_name='a+.local'"),
    ],
)
def test_bad_cluster_props(stack: Stack, props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^TradingCluster 'Test/Platform': {message}"):
        TradingCluster(stack, "Platform", **props)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"vpc_options": {"nat_gateways": 1}}, r"vpc_options=.*VpcOptions"),
        ({"capacity": {"spot_weight": 4}}, r"capacity=.*CapacityStrategy"),
        ({"removal_policy": "retain"}, r"removal_policy='retain'.*RemovalPolicy"),
        ({"container_insights": True}, r"container_insights=True.*ContainerInsights"),
    ],
)
def test_wrong_types_are_type_errors(stack: Stack, props: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=f"^TradingCluster 'Test/Platform': {message}"):
        TradingCluster(stack, "Platform", **props)


def test_vpc_and_vpc_options_together_is_an_error(stack: Stack) -> None:
    vpc = ec2.Vpc(stack, "Network", max_azs=3)
    with pytest.raises(ValueError, match="vpc and vpc_options were both given"):
        TradingCluster(stack, "Platform", vpc=vpc, vpc_options=VpcOptions())


def test_existing_vpc_with_two_azs_is_an_error(stack: Stack) -> None:
    # GIVEN an environment-agnostic stack, whose VPCs get two AZs
    vpc = ec2.Vpc(stack, "Network")
    with pytest.raises(ValueError, match=r"vpc='Test/Network in 2 AZs'.*at least 3 AZs"):
        TradingCluster(stack, "Platform", vpc=vpc)


def test_existing_vpc_without_private_subnets_is_an_error(stack: Stack) -> None:
    vpc = ec2.Vpc(
        stack,
        "Network",
        availability_zones=["us-east-1a", "us-east-1b", "us-east-1c"],
        subnet_configuration=[
            ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC)
        ],
    )
    with pytest.raises(ValueError, match=r"without private subnets.*private subnets with egress"):
        TradingCluster(stack, "Platform", vpc=vpc)


def test_not_a_vpc_is_an_error(stack: Stack) -> None:
    with pytest.raises(ValueError, match=r"vpc='vpc-123'.*IVpc"):
        TradingCluster(stack, "Platform", vpc="vpc-123")  # type: ignore[arg-type]


def test_all_problems_of_one_call_are_reported_together() -> None:
    with pytest.raises(ValueError) as raised:
        VpcOptions(cidr="bad", nat_gateways=9, public_subnet_mask=40)
    message = str(raised.value)
    assert message.startswith("VpcOptions: 3 invalid props:")
    for prop in ("cidr='bad'", "nat_gateways=9", "public_subnet_mask=40"):
        assert prop in message


def test_unresolved_tokens_are_left_to_cloudformation(stack: Stack) -> None:
    # GIVEN values only known at deploy time (CDK itself needs the CIDR and NAT count concrete)
    name = Token.as_string(Fn.import_value("ClusterName"))
    namespace = Token.as_string(Fn.import_value("Namespace"))
    azs = [Fn.select(i, Fn.split(",", Fn.import_value("AZs"))) for i in range(3)]
    # WHEN they reach the props  THEN nothing is rejected at synth time
    options = VpcOptions(availability_zones=azs)
    cluster = TradingCluster(
        stack, "Platform", vpc_options=options, cluster_name=name, namespace_name=namespace
    )
    assert cluster.cluster.cluster_name is not None


def test_the_retention_enum_is_accepted() -> None:
    assert VpcOptions(flow_log_retention=logs.RetentionDays.INFINITE).flow_log_retention
