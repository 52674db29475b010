"""Bad input, by class of mistake: each row builds one wrong value the way a user would write
it, and the error names the prop (or argument) and says what is allowed, where before it
came from jsii, the constructs library, CloudFormation or the running platform, or did not
come at all. A second table holds values that are right and must pass.

Nothing here synthesizes: every check runs before ``Construct.__init__`` or in the method
called. The rows share the session's small platform (``inputs_support``) and one App Mesh
cluster of this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import CfnParameter, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_route53 as route53
from inputs_support import ACCOUNT, REGION, Platform, shared_platform, tidy_after, unique_name

from trading_constructs import (
    AlarmSubscription,
    AlarmThresholds,
    DbEngine,
    DomainOptions,
    Mesh,
    MeshedFargateService,
    Release,
    ResiliencePolicy,
    RetryOptions,
    RotatingDbSecret,
    ScalingOptions,
    ScannedRepository,
    ServiceImage,
    TradingCluster,
    TradingEdge,
)

OTHER_REGION = "eu-west-1"
GROUP_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/group/0123456789abcdef"
CHINA_KEY_ARN = f"arn:aws-cn:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CA_ARN = (
    f"arn:aws:acm-pca:{OTHER_REGION}:{ACCOUNT}:certificate-authority/"
    "12345678-1234-1234-1234-123456789012"
)


@dataclass
class Context:
    """What the rows build on: the shared platform, and an App Mesh cluster (mutual TLS on)
    built on first use."""

    platform: Platform
    _app_mesh: TradingCluster | None = None

    @property
    def stack(self) -> Stack:
        return self.platform.stack

    @property
    def app_mesh(self) -> TradingCluster:
        if self._app_mesh is None:
            self._app_mesh = TradingCluster(
                self.platform.stack_in("Classes"),
                "Platform",
                namespace_name="classes.local",
                vpc_options=None,
                mesh=Mesh.app_mesh(mesh_name="classes-mesh"),
            )
        return self._app_mesh

    def app_mesh_service(self, id: str, **props: Any) -> MeshedFargateService:
        cluster = self.app_mesh
        defaults = {"cluster": cluster, "image": self.platform.image, "port": 8080}
        return MeshedFargateService(
            Stack.of(cluster), id, **{**defaults, "name": unique_name(), **props}
        )

    def public(self, **props: Any) -> MeshedFargateService:
        """A public service of the row's own (the gateway keeps its one edge)."""
        return self.platform.service("Public", public=True, port=8085, **props)


@pytest.fixture(scope="module")
def context() -> Iterator[Context]:
    platform = shared_platform()
    yield Context(platform)
    # the App Mesh cluster's names (its mesh, its cache prefix) are freed for other suites
    platform.app.node.try_remove_child("Classes")


@pytest.fixture(autouse=True)
def tidy(context: Context) -> Iterator[None]:
    yield from tidy_after(context.platform)


# -- makers that need a few lines ------------------------------------------------------------


def _target_group(c: Context, **props: Any) -> elb.ApplicationTargetGroup:
    values = {
        "vpc": c.platform.cluster.vpc,
        "port": 8080,
        "protocol": elb.ApplicationProtocol.HTTP,
        "target_type": elb.TargetType.IP,
        **props,
    }
    return elb.ApplicationTargetGroup(c.stack, "Group", **values)


def _listened(c: Context, group: elb.ApplicationTargetGroup) -> elb.ApplicationTargetGroup:
    """The group behind a listener of a load balancer of its own."""
    balancer = elb.ApplicationLoadBalancer(c.stack, "Balancer", vpc=c.platform.cluster.vpc)
    balancer.add_listener("Listener", port=80, default_target_groups=[group])
    return group


def _balancer_group(c: Context) -> ec2.SecurityGroup:
    return ec2.SecurityGroup(c.stack, "BalancerGroup", vpc=c.platform.cluster.vpc)


def _attach(c: Context, group: Any, **props: Any) -> MeshedFargateService:
    service = c.platform.service("Target")
    service.attach_to_target_group(group, **{"load_balancer": _balancer_group(c), **props})
    return service


def _imported_vpc(c: Context, **props: Any) -> ec2.IVpc:
    attributes = {
        "vpc_id": "vpc-0a1b2c3d",
        "availability_zones": [f"{REGION}a", f"{REGION}b", f"{REGION}c"],
        "private_subnet_ids": ["subnet-1", "subnet-2", "subnet-3"],
        **props,
    }
    return ec2.Vpc.from_vpc_attributes(c.platform.stack_in("Imported"), "Vpc", **attributes)


def _edge_without_public_subnets(c: Context) -> None:
    stack = c.platform.stack_in("Imported")
    cluster = TradingCluster(stack, "Platform", vpc=_imported_vpc(c), namespace_name="imp.local")
    service = MeshedFargateService(
        stack, "Api", cluster=cluster, name="api", image=c.platform.image, port=8080, public=True
    )
    TradingEdge(stack, "Edge", cluster=cluster, service=service)


def _zone(c: Context, id: str = "Zone", name: str = "example.com") -> route53.IHostedZone:
    return route53.HostedZone.from_hosted_zone_attributes(
        c.stack, id, hosted_zone_id="Z0123456789ABCDEFGHIJ", zone_name=name
    )


def _two_edges_on_one_name(c: Context) -> None:
    for index, zone_id in enumerate(("ZoneA", "ZoneB")):
        service = c.platform.service(f"Api{index}", public=True, port=8085)
        domain = DomainOptions(domain_name="api.example.com", hosted_zone=_zone(c, zone_id))
        TradingEdge(
            c.stack, f"Edge{index}", cluster=c.platform.cluster, service=service, domain=domain
        )


def _rotation(c: Context, subnet_type: ec2.SubnetType) -> RotatingDbSecret:
    return RotatingDbSecret(
        c.stack,
        "Db",
        key=c.platform.key,
        vpc=c.platform.cluster.vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=subnet_type),
    )


def _asset_twice(c: Context, tmp: Path) -> None:
    (tmp / "Dockerfile").write_text("FROM scratch\n")
    repository = ScannedRepository(
        c.stack, "Assets", key=c.platform.key, content_addressed_tag_prefix="build-"
    )
    for _ in range(2):
        ServiceImage.from_asset(
            c.stack,
            "Image",
            directory=tmp,
            repository=repository,
            vpc=c.platform.cluster.vpc,
            key=c.platform.key,
        )


def _hook(c: Context, region: str) -> lambda_.IFunction:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:hook"
    return lambda_.Function.from_function_arn(c.stack, "Hook", arn)


def _alarm(c: Context) -> cloudwatch.Alarm:
    return c.platform.gateway.metric_error_logs().create_alarm(
        c.stack, "Alarm", threshold=1, evaluation_periods=1
    )


# -- the table ---------------------------------------------------------------------------------

Maker = Callable[[Context, Path], Any]


def row(id: str, make: Maker, prop: str, *words: str, error: type = ValueError) -> Any:
    """One bad input: what builds it, the prop the message names, words it holds, and the
    exception (a wrong kind is also a ``TypeError``)."""
    return pytest.param(make, prop, words, error, id=id)


BAD = [
    # 1. durations a resource cannot take
    row(
        "duration-fraction-of-a-millisecond-per-retry",
        lambda c, t: RetryOptions(per_retry_timeout=Duration.millis(1.5)),
        "per_retry_timeout",
        "whole milliseconds",
    ),
    row(
        "duration-fraction-of-a-millisecond-per-request",
        lambda c, t: ResiliencePolicy(per_request_timeout=Duration.millis(1500.5)),
        "per_request_timeout",
        "whole milliseconds",
    ),
    row(
        "duration-metric-period-cloudwatch-refuses",
        lambda c, t: c.platform.gateway.metric_cpu_utilization(period=Duration.seconds(7)),
        "period",
        "1, 5, 10 or 30 seconds, or a multiple of 60",
    ),
    # 2. wrong kinds given to methods and option fields
    row(
        "method-target-group-as-string",
        lambda c, t: _attach(c, "arn:aws:elasticloadbalancing:tg"),
        "target_group",
        "IApplicationTargetGroup",
        error=TypeError,
    ),
    row(
        "method-load-balancer-as-string",
        lambda c, t: _attach(c, _listened(c, _target_group(c)), load_balancer="alb"),
        "load_balancer",
        "IConnectable",
        error=TypeError,
    ),
    row(
        "method-notify-a-string",
        lambda c, t: c.platform.cluster.alarms.notify("HighErrors"),
        "alarm",
        "aws_cloudwatch.Alarm",
        error=TypeError,
    ),
    row(
        "method-wait-for-a-name",
        lambda c, t: c.platform.gateway.wait_for("quotes"),
        "other",
        "a MeshedFargateService",
        error=TypeError,
    ),
    row(
        "method-secret-attached-to-a-string",
        lambda c, t: _rotation(c, ec2.SubnetType.PRIVATE_WITH_EGRESS).attach("database"),
        "target",
        "ISecretAttachmentTarget",
        error=TypeError,
    ),
    row(
        "option-dependable-as-string",
        lambda c, t: ServiceImage.from_repository(
            c.platform.repository, tag="v2", ready_after="ImageCopy"
        ),
        "ready_after",
        "IDependable",
    ),
    # 3. network shapes
    row(
        "network-rotation-in-public-subnets",
        lambda c, t: _rotation(c, ec2.SubnetType.PUBLIC),
        "vpc_subnets",
        "PRIVATE_WITH_EGRESS",
        "public subnet",
    ),
    row(
        "network-rotation-in-isolated-subnets-without-endpoint",
        lambda c, t: _rotation(c, ec2.SubnetType.PRIVATE_ISOLATED),
        "vpc_subnets",
        "secretsmanager interface endpoint",
    ),
    row(
        "network-edge-on-a-vpc-without-public-subnets",
        lambda c, t: _edge_without_public_subnets(c),
        "cluster",
        "public subnets",
    ),
    row(
        "network-endpoints-in-a-vpc-imported-without-cidr",
        lambda c, t: TradingCluster(
            c.platform.stack_in("Imported"),
            "Platform",
            vpc=_imported_vpc(c),
            namespace_name="imp.local",
            interface_endpoints=[ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
        ),
        "vpc",
        "vpc_cidr_block",
    ),
    row(
        "network-cidr-without-mask",
        lambda c, t: TradingEdge(
            c.stack,
            "Edge",
            cluster=c.platform.cluster,
            service=c.public(),
            ingress_cidrs=["10.0.0.1"],
        ),
        "ingress_cidrs",
        "'10.0.0.1/32'",
    ),
    # 4. names and ids
    row(
        "name-factory-id-used-twice",
        lambda c, t: _asset_twice(c, t),
        "id",
        "no other construct under 'Test'",
    ),
    # 5. a message names the prop given
    row(
        "message-mesh-name-named-as-given",
        lambda c, t: (
            c.app_mesh,
            TradingCluster(
                c.platform.stack_in("Classes2"),
                "Platform",
                namespace_name="again.local",
                mesh=Mesh.app_mesh(mesh_name="classes-mesh"),
            ),
        ),
        "mesh.mesh_name",
        "among the App Mesh meshes",
    ),
    # 6. another partition or region than the stack's
    row(
        "home-key-of-another-partition",
        lambda c, t: ScannedRepository(
            c.stack, "Repo2", key=kms.Key.from_key_arn(c.stack, "ChinaKey", CHINA_KEY_ARN)
        ),
        "key",
        "partition 'aws'",
        "'aws-cn'",
    ),
    row(
        "home-lifecycle-hook-in-another-region",
        lambda c, t: c.public(release=Release.blue_green(lifecycle_hook=_hook(c, OTHER_REGION))),
        "release.lifecycle_hook",
        f"region {REGION}",
    ),
    row(
        "home-private-ca-in-another-region",
        lambda c, t: TradingCluster(
            c.platform.stack_in("Ca"),
            "Platform",
            mesh=Mesh.service_connect(tls_authority_arn=CA_ARN),
        ),
        "mesh.tls_authority_arn",
        f"region {REGION}",
    ),
    row(
        "home-alarm-topic-of-another-partition",
        lambda c, t: TradingCluster(
            c.platform.stack_in("Topic"),
            "Platform",
            alarm_subscriptions=[
                AlarmSubscription.topic(f"arn:aws-cn:sns:{REGION}:{ACCOUNT}:alarms")
            ],
        ),
        "alarm_subscriptions",
        "partition 'aws'",
    ),
    # 7. targets that cannot work
    row(
        "target-instance-group-for-fargate",
        lambda c, t: _attach(
            c, _listened(c, _target_group(c, target_type=elb.TargetType.INSTANCE))
        ),
        "target_group",
        "TargetType.IP",
    ),
    row(
        "target-https-to-a-plain-http-port",
        lambda c, t: _attach(
            c, _listened(c, _target_group(c, protocol=elb.ApplicationProtocol.HTTPS))
        ),
        "target_group",
        "plain HTTP",
    ),
    row(
        "target-group-in-another-vpc",
        lambda c, t: _attach(
            c, _listened(c, _target_group(c, vpc=ec2.Vpc(c.stack, "Other", nat_gateways=0)))
        ),
        "target_group",
        "the service's VPC",
    ),
    row(
        "target-blue-green-without-alternate",
        lambda c, t: c.public(release=Release.blue_green()).attach_to_target_group(
            _listened(c, _target_group(c, port=8085)), load_balancer=_balancer_group(c)
        ),
        "alternate_target",
        "Release.blue_green()",
    ),
    row(
        "target-weighted-service-registers-one-slot",
        lambda c, t: c.app_mesh_service(
            "Weighted", release=Release.weighted(blue=90, green=10)
        ).attach_to_target_group(
            elb.ApplicationTargetGroup.from_target_group_attributes(
                c.stack, "Imported", target_group_arn=GROUP_ARN
            ),
            load_balancer=_balancer_group(c),
        ),
        "Release.weighted",
        "only its first slot would register",
    ),
    # 8. endpoints SNS would refuse or never deliver to
    row(
        "endpoint-mailto-address",
        lambda c, t: AlarmSubscription.email("mailto:ops@example.com"),
        "email",
        "no 'mailto:'",
    ),
    row(
        "endpoint-fifo-topic",
        lambda c, t: AlarmSubscription.topic(f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms.fifo"),
        "topic_arn",
        ".fifo",
    ),
    # 9. sizes past a limit, names that become logical ids, one name claimed twice
    row(
        "limit-task-definition-over-64-kib",
        lambda c, t: c.platform.service(
            "Big", environment={f"K{i}": "x" * 1024 for i in range(70)}
        ),
        "environment",
        "64 KiB",
    ),
    row(
        "limit-service-name-as-token",
        lambda c, t: c.platform.service(
            "Tokened", name=CfnParameter(c.stack, "Name").value_as_string
        ),
        "name",
        "logical ids derive from it",
    ),
    row(
        "limit-two-edges-one-name-in-one-zone",
        lambda c, t: _two_edges_on_one_name(c),
        "domain",
        "unique in its hosted zone",
        "'Test/Edge0'",
    ),
    # 10. settings that would be ignored or never work
    row(
        "ignored-alarm-threshold-above-max-capacity",
        lambda c, t: c.platform.service(
            "Alarmed",
            scaling=ScalingOptions(min_capacity=1, max_capacity=3),
            alarm_thresholds=AlarmThresholds(tasks_below_desired=5),
        ),
        "alarm_thresholds.tasks_below_desired",
        "scaling.max_capacity=3",
    ),
    row(
        "ignored-snapshot-on-a-repository",
        lambda c, t: ScannedRepository(
            c.stack, "Repo2", key=c.platform.key, removal_policy=RemovalPolicy.SNAPSHOT
        ),
        "removal_policy",
        "RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE",
    ),
    row(
        "ignored-snapshot-on-a-cluster",
        lambda c, t: TradingCluster(
            c.platform.stack_in("Snap"), "Platform", removal_policy=RemovalPolicy.SNAPSHOT
        ),
        "removal_policy",
        "cannot be snapshotted",
    ),
]


@pytest.mark.parametrize(("make", "prop", "words", "error"), BAD)
def test_a_bad_input_is_refused_naming_its_prop(
    context: Context,
    tmp_path: Path,
    make: Maker,
    prop: str,
    words: tuple[str, ...],
    error: type,
) -> None:
    # GIVEN one wrong value, written as a user would  WHEN it is built or called
    with pytest.raises(error) as raised:
        make(context, tmp_path)
    # THEN the error is the library's: it names the prop (or the call) and what is allowed
    message = str(raised.value)
    assert re.search(rf"(?<![\w.]){re.escape(prop)}(?!\w)", message), message
    for word in words:
        assert word in message, message


# -- values that are right pass ---------------------------------------------------------------


def _two_names_differing_in_punctuation(c: Context) -> None:
    first = c.app_mesh_service("Feed2Hyphen", name="feed-2")
    second = c.app_mesh_service("Feed2", name="feed2")
    assert first.node.path != second.node.path


def _isolated_rotation_beside_an_endpoint(c: Context) -> None:
    ec2.InterfaceVpcEndpoint(
        c.stack,
        "SecretsEndpoint",
        vpc=c.platform.cluster.vpc,
        service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    )
    _rotation(c, ec2.SubnetType.PRIVATE_ISOLATED)


GOOD = [
    pytest.param(
        lambda c: DomainOptions(
            domain_name="api.example.com", hosted_zone=_zone(c, name="example.com.")
        ),
        id="zone-name-with-its-root-dot",
    ),
    pytest.param(_isolated_rotation_beside_an_endpoint, id="isolated-rotation-with-endpoint"),
    pytest.param(
        lambda c: c.platform.gateway.metric_cpu_utilization(period=Duration.minutes(5)),
        id="metric-period-of-five-minutes",
    ),
    pytest.param(
        lambda c: c.platform.service(
            "Fixed",
            scaling=None,
            desired_count=3,
            alarm_thresholds=AlarmThresholds(tasks_below_desired=3),
        ),
        id="alarm-threshold-at-the-fixed-count",
    ),
]


@pytest.mark.parametrize("make", GOOD)
def test_a_right_input_passes(context: Context, make: Callable[[Context], Any]) -> None:
    # GIVEN a value that is right, though it looks like a mistake  WHEN it is built  THEN
    # no error
    make(context)


def test_two_names_differing_in_punctuation_get_their_own_certificates(context: Context) -> None:
    # GIVEN 'feed-2' and 'feed2' on a mesh with mutual TLS  WHEN both join
    _two_names_differing_in_punctuation(context)
    # THEN each has a certificate secret of its own under the mesh's issuer
    certificates = context.app_mesh.node.find_all()
    ids = {node.node.id for node in certificates if node.node.id.endswith("Certificate")}
    assert {"Feed_2Certificate", "Feed2Certificate"} <= ids


def test_a_target_group_no_listener_uses_is_refused_at_synthesis(context: Context) -> None:
    # GIVEN a service put behind a target group of this app that no listener forwards to
    service = _attach(context, _target_group(context))
    # WHEN the app is validated  THEN the service names the group and what it needs
    (error,) = service.node.validate()
    assert "target_group='Test/Group' is not allowed" in error
    assert "a listener forwards to" in error


def test_a_listener_added_after_the_attach_is_enough(context: Context) -> None:
    # GIVEN a service attached first, its group put behind a listener afterwards
    group = _target_group(context)
    service = _attach(context, group)
    _listened(context, group)
    # WHEN the app is validated  THEN nothing is wrong
    assert service.node.validate() == []


@pytest.mark.parametrize("engine", list(DbEngine), ids=lambda engine: engine.name)
def test_every_engine_offered_is_one_the_secret_rotates(context: Context, engine: DbEngine) -> None:
    # GIVEN an engine DbEngine offers  WHEN a rotating secret is built for it
    secret = RotatingDbSecret(
        context.stack,
        f"{engine.name.capitalize()}Secret",
        key=context.platform.key,
        vpc=context.platform.cluster.vpc,
        engine=engine,
    )
    # THEN it is accepted (an engine the library would refuse is not offered)
    assert secret.engine is engine
    assert secret.port == engine.default_port
