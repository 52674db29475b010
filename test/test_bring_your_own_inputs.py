"""Bad input to an adopted platform, a worker and the app's container options fails at synth
time, naming the prop, the value and what is allowed. Construct-time only: nothing here is
synthesized."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template
from conftest import ENV, ClusterStacks, team_vpc
from test_bring_your_own import TEAM_CLUSTER, TEAM_KEY_ARN, TEAM_TOPIC_ARN, team_platform
from validation_support import bad

from trading_constructs import (
    ContainerOptions,
    HealthCheckOptions,
    Mesh,
    MeshedFargateService,
    PullThroughCache,
    ServiceImage,
    TradingCluster,
    TradingClusterProps,
    TradingEdge,
)

HEALTH = HealthCheckOptions(command=["CMD-SHELL", "test -f /tmp/alive"])


@pytest.fixture
def stack() -> Stack:
    return Stack(App(), "Test", env=ENV)


def _vpc(stack: Stack) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0a1b2c3d4e5f6a7b8",
        availability_zones=["us-east-1a", "us-east-1b", "us-east-1c"],
        private_subnet_ids=["subnet-1", "subnet-2", "subnet-3"],
        private_subnet_route_table_ids=["rtb-1", "rtb-2", "rtb-3"],
    )


@pytest.fixture
def platform(stack: Stack) -> TradingCluster:
    return team_platform(stack)


@pytest.fixture
def image(platform: TradingCluster) -> ServiceImage:
    cache = PullThroughCache(Stack.of(platform), "Cache", key=platform.key)
    return ServiceImage.from_pull_through_cache(
        cache, upstream_image="docker/library/python", tag="3.13-slim"
    )


def _owner(id: str) -> str:
    return re.escape(f"MeshedFargateService 'Test/{id}': ")


def _worker(
    stack: Stack, platform: TradingCluster, image: ServiceImage, **props: Any
) -> MeshedFargateService:
    """The service ``worker``: no port, so no listener and no callers; ``props`` besides."""
    return MeshedFargateService(
        stack, "Worker", cluster=platform, name="worker", port=None, image=image, **props
    )


# -- workers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({}, bad("health_check", None, "with port=None (a worker), HealthCheckOptions(command=")),
        (
            {"health_check": HealthCheckOptions()},
            r"health_check=HealthCheckOptions\(.*\) is not allowed \(allowed: with port=None",
        ),
        (
            {"health_check": HEALTH, "public": True},
            bad("public", True, "False with port=None: a worker has no listener"),
        ),
    ],
)
def test_a_worker_needs_a_command_health_check_and_cannot_be_public(
    stack: Stack,
    platform: TradingCluster,
    image: ServiceImage,
    props: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=_owner("Worker") + message):
        _worker(stack, platform, image, **props)


def test_a_worker_cannot_be_a_backend(
    stack: Stack, platform: TradingCluster, image: ServiceImage
) -> None:
    worker = _worker(stack, platform, image, health_check=HEALTH)
    # WHEN a service declares the worker a backend  THEN it is refused, naming the worker
    why = "services with a port; 'Test/Worker' is a worker (port=None)"
    with pytest.raises(ValueError, match=_owner("Caller") + bad("backends", "worker", why)):
        MeshedFargateService(
            stack,
            "Caller",
            cluster=platform,
            name="caller",
            port=8080,
            image=image,
            backends=[worker],
        )
    caller = MeshedFargateService(
        stack, "Other", cluster=platform, name="other", port=8080, image=image
    )
    with pytest.raises(ValueError, match=_owner("Other") + bad("backend", "worker", why)):
        caller.add_backend(worker)
    # AND nothing is behind an edge that could not reach it
    with pytest.raises(ValueError, match=bad("service", "worker", "a service with a port")):
        TradingEdge(stack, "Edge", cluster=platform, service=worker)
    with pytest.raises(ValueError, match="a worker \\(port=None\\) listens on nothing"):
        worker.attach_to_target_group(ecs_target_group(stack), load_balancer=caller.security_group)


def ecs_target_group(stack: Stack) -> Any:
    from aws_cdk import aws_elasticloadbalancingv2 as elb

    return elb.ApplicationTargetGroup.from_target_group_attributes(
        stack,
        "TargetGroup",
        target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:"
        "targetgroup/web/0123456789abcdef",
    )


# -- the app container ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"user": "nginx user"}, bad("user", "nginx user", "a user name or id")),
        ({"user": ""}, bad("user", "", "a user name or id")),
        ({"scratch_paths": "/tmp"}, r"scratch_paths='/tmp' is not allowed"),
        ({"scratch_paths": ["tmp"]}, bad("scratch_paths", "tmp", "absolute paths other than '/'")),
        ({"scratch_paths": ["/"]}, bad("scratch_paths", "/", "absolute paths other than '/'")),
        ({"scratch_paths": ["/tmp", "/tmp"]}, r"scratch_paths=\['/tmp', '/tmp'\].*each path once"),
        (
            {"scratch_paths": [f"/d{i}" for i in range(17)]},
            r"scratch_paths=\[.*\] is not allowed \(allowed: at most 16 paths\)",
        ),
    ],
)
def test_bad_container_options(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^ContainerOptions: {message}"):
        ContainerOptions(**props)


def test_the_user_and_scratch_paths_reach_help() -> None:
    # the options' docs are where a user looks: the nginx directories are named there
    assert "/var/cache/nginx" in (ContainerOptions.__doc__ or "")


# -- an adopted platform ---------------------------------------------------------------------


def _cluster(stack: Stack, vpc: ec2.IVpc) -> ecs.ICluster:
    return ecs.Cluster.from_cluster_attributes(
        stack, "TeamCluster", cluster_name=TEAM_CLUSTER, vpc=vpc
    )


def _namespace(stack: Stack, kind: str = "private") -> servicediscovery.INamespace:
    arn = "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-0a1b2c3d4e5f6a7b"
    if kind == "http":
        return servicediscovery.HttpNamespace.from_http_namespace_attributes(
            stack, "Http", namespace_name="team", namespace_id="ns-1", namespace_arn=arn
        )
    return servicediscovery.PrivateDnsNamespace.from_private_dns_namespace_attributes(
        stack, "Private", namespace_name="team.internal", namespace_id="ns-1", namespace_arn=arn
    )


OWNER = re.escape("TradingCluster 'Test/Platform': ")


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            lambda s, v: {"cluster": _cluster(s, v), "namespace": _namespace(s)},
            bad("vpc", None, "with an existing cluster, the cluster's VPC"),
        ),
        (
            lambda s, v: {"vpc": v, "cluster": _cluster(s, v)},
            bad("namespace", None, "with an existing cluster that has no default namespace"),
        ),
        (
            lambda s, v: {
                "vpc": v,
                "cluster": _cluster(s, v),
                "namespace": _namespace(s),
                "cluster_name": "mine",
            },
            bad("cluster_name", "mine", "None with an existing cluster"),
        ),
        (
            lambda s, v: {
                "vpc": v,
                "cluster": _cluster(s, v),
                "namespace": _namespace(s),
                "container_insights": ecs.ContainerInsights.ENABLED,
            },
            r"container_insights=.* is not allowed \(allowed: None with an existing cluster",
        ),
        (
            lambda s, v: {"vpc": v, "namespace": _namespace(s), "namespace_name": "x.internal"},
            bad("namespace_name", "x.internal", "None with an existing namespace"),
        ),
        (
            lambda s, v: {"vpc": v, "namespace": _namespace(s, "http"), "mesh": Mesh.mutual_tls()},
            r"namespace='Test/Http' is not allowed \(allowed: a private DNS namespace with this",
        ),
        (
            lambda s, v: {"vpc": v, "cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/x"},
            r"cluster='arn:aws:ecs:.*' is not allowed \(allowed: an aws_ecs.ICluster; from a "
            r"string: ecs.Cluster.from_cluster_attributes",
        ),
        (
            lambda s, v: {"vpc": v, "namespace": "ns-0a1b2c3d4e5f6a7b"},
            r"namespace='ns-0a1b2c3d4e5f6a7b' is not allowed \(allowed: an "
            r"aws_servicediscovery.INamespace; from a string: .*PrivateDnsNamespace",
        ),
        (
            lambda s, v: {"vpc": v, "alarm_topic": "arn:aws:sns:us-east-1:123456789012:t"},
            r"alarm_topic='arn:aws:sns:.*' is not allowed \(allowed: an aws_sns.ITopic; from a "
            r"string: sns.Topic.from_topic_arn",
        ),
    ],
    ids=[
        "cluster-without-vpc",
        "cluster-without-namespace",
        "cluster-and-cluster-name",
        "cluster-and-container-insights",
        "namespace-and-namespace-name",
        "http-namespace-on-mutual-tls",
        "cluster-as-string",
        "namespace-as-string",
        "topic-as-string",
    ],
)
def test_bad_adopted_parts(stack: Stack, props: Any, message: str) -> None:
    with pytest.raises(ValueError, match=OWNER + message):
        TradingCluster(stack, "Platform", **props(stack, _vpc(stack)))


def test_an_http_namespace_suits_service_connect(stack: Stack) -> None:
    # GIVEN Service Connect, which finds services by name, not DNS records
    cluster = TradingCluster(
        stack, "Platform", vpc=_vpc(stack), namespace=_namespace(stack, "http")
    )
    # THEN the namespace is the team's: the cluster built none
    assert cluster.namespace.namespace_name == "team"
    assert cluster.cluster.default_cloud_map_namespace is None


def test_props_built_alone_name_themselves() -> None:
    # GIVEN the props outside a construct  THEN their errors name the props class
    with pytest.raises(
        ValueError, match="^TradingClusterProps: " + bad("cluster_name", "a b", "1")
    ):
        TradingClusterProps(cluster_name="a b")


def test_an_adopted_ecs_cluster_of_the_app_gets_the_fargate_capacity_providers() -> None:
    # GIVEN a team's VPC (with its flow log) and ecs.Cluster of this app, built without
    # capacity providers, and a worker on them
    stack = Stack(App(), "Team", env=ENV)
    vpc = team_vpc(stack)
    vpc.add_flow_log("FlowLog")
    team = ecs.Cluster(stack, "TeamCluster", vpc=vpc)
    TradingCluster(
        stack,
        "Platform",
        vpc=vpc,
        cluster=team,
        namespace=_namespace(stack),
        key=kms.Key.from_key_arn(stack, "Key", TEAM_KEY_ARN),
        alarm_topic=sns.Topic.from_topic_arn(stack, "Topic", TEAM_TOPIC_ARN),
    )
    template = Template.from_stack(stack)
    # THEN the cluster gets FARGATE and FARGATE_SPOT, which the services ask for
    template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {
            "CapacityProviders": Match.array_with(["FARGATE", "FARGATE_SPOT"]),
            "Cluster": {"Ref": stack.get_logical_id(team.node.default_child)},
        },
    )
    # AND a VPC that logs its flows draws no warning
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def test_an_adopted_vpc_of_the_app_without_flow_logs_draws_a_warning(
    cluster_stacks: ClusterStacks,
) -> None:
    # GIVEN the cluster tests' stack on a VPC of the app that logs no flows
    report = cluster_stacks.app.validation_report
    assert report is not None
    found = [
        (violation["ruleName"], construct["constructPath"], violation["description"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
        if "flow" in violation["description"]
    ]
    # THEN the platform says so, naming the VPC and the way to add one
    assert found == [
        (
            "Annotation::trading-constructs:vpc-without-flow-logs",
            "Existing/Platform",
            "The VPC 'Existing/Network' has no flow log: add one (vpc.add_flow_log(...)) so "
            "that its traffic is recorded, as the VPC a TradingCluster builds does.",
        )
    ]
