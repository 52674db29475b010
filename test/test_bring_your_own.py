"""A team brings its own platform: services, an edge and a dashboard on the team's VPC, ECS
cluster, Cloud Map namespace, KMS key and alarm topic, none of them built here; a worker
without a port among them, and nginx's image settings (its user, and the directories it
writes to under a read-only root filesystem).

The consumer app is synthesized once per session (``consumer_app()``), with the example's
cdk-nag packs; test_deploy_readiness.py runs every readiness rule over it too.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_sns as sns
from cfnlint.api import lint
from conftest import CDK_CONTEXT, ENV, SynthesizedApp, synthesize
from construct_support import dashboard_body, of_type

from examples.trading_platform.app import add_compliance_checks
from trading_constructs import (
    ContainerOptions,
    HealthCheckOptions,
    MeshedFargateService,
    PlatformDashboard,
    PullThroughCache,
    ServiceImage,
    TradingCluster,
    TradingEdge,
)

ACCOUNT = "123456789012"
TEAM_VPC_ID = "vpc-0a1b2c3d4e5f6a7b8"
TEAM_CLUSTER = "team-cluster"
TEAM_NAMESPACE = "team.internal"
TEAM_NAMESPACE_ID = "ns-0a1b2c3d4e5f6a7b"
TEAM_NAMESPACE_ARN = f"arn:aws:servicediscovery:us-east-1:{ACCOUNT}:namespace/{TEAM_NAMESPACE_ID}"
TEAM_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
TEAM_TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:team-alarms"
AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]

NGINX_SCRATCH = ["/tmp", "/var/cache/nginx", "/var/run"]
"""Where nginx writes at start: temporary files, its body and proxy caches, its pid file."""
NGINX_USER = "101"
"""The ``nginx`` user of nginx's image, which its worker processes run as."""
WORKER_HEALTH = ["CMD-SHELL", "test -f /tmp/alive"]


@dataclass(frozen=True)
class Consumer:
    """The team's app, synthesized, and what it built."""

    synthesized: SynthesizedApp
    stack: Stack
    platform: TradingCluster
    web: MeshedFargateService
    """nginx as its own user, public behind the edge, calling ``orders``."""
    orders: MeshedFargateService
    """nginx as root (its image's default, which drops to its user), internal."""
    worker: MeshedFargateService
    """A queue consumer: no port; it calls ``orders``."""

    @property
    def template(self) -> dict[str, Any]:
        return self.synthesized.templates[self.stack.stack_name]

    def properties(self, construct: Any) -> dict[str, Any]:
        logical_id = self.stack.get_logical_id(construct.node.default_child)
        properties: dict[str, Any] = self.template["Resources"][logical_id]["Properties"]
        return properties

    def app_container(self, service: MeshedFargateService) -> dict[str, Any]:
        definitions = self.properties(service.task_definition)["ContainerDefinitions"]
        (app,) = [c for c in definitions if c["Name"] == service.name]
        return app


def team_platform(stack: Stack) -> TradingCluster:
    """The platform on the team's own parts, each imported, none built."""
    public = [f"subnet-0a0000000000000a{i}" for i in (1, 2, 3)]
    private = [f"subnet-0b0000000000000b{i}" for i in (1, 2, 3)]
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "TeamVpc",
        vpc_id=TEAM_VPC_ID,
        vpc_cidr_block="10.1.0.0/16",
        availability_zones=AZS,
        public_subnet_ids=public,
        public_subnet_route_table_ids=["rtb-0a0000000000000a1"] * 3,
        private_subnet_ids=private,
        private_subnet_route_table_ids=[f"rtb-0b0000000000000b{i}" for i in (1, 2, 3)],
    )
    return TradingCluster(
        stack,
        "Platform",
        vpc=vpc,
        cluster=ecs.Cluster.from_cluster_attributes(
            stack, "TeamCluster", cluster_name=TEAM_CLUSTER, vpc=vpc
        ),
        namespace=servicediscovery.PrivateDnsNamespace.from_private_dns_namespace_attributes(
            stack,
            "TeamNamespace",
            namespace_name=TEAM_NAMESPACE,
            namespace_id=TEAM_NAMESPACE_ID,
            namespace_arn=TEAM_NAMESPACE_ARN,
        ),
        key=kms.Key.from_key_arn(stack, "TeamKey", TEAM_KEY_ARN),
        alarm_topic=sns.Topic.from_topic_arn(stack, "TeamAlarms", TEAM_TOPIC_ARN),
    )


@functools.cache
def consumer_app() -> Consumer:
    """GIVEN the team's app: nginx twice (as its user, public; as root, internal), a worker,
    an edge and a dashboard, on the team's imported VPC, cluster, namespace, key and topic."""
    app = App(context=CDK_CONTEXT, outdir=tempfile.mkdtemp(prefix="consumer-app-"))
    add_compliance_checks(app)
    stack = Stack(app, "Consumer", env=ENV)
    platform = team_platform(stack)
    cache = PullThroughCache(stack, "PublicImages", key=platform.key)
    nginx = ServiceImage.from_pull_through_cache(
        cache, upstream_image="docker/library/nginx", tag="1.27"
    )
    orders = MeshedFargateService(
        stack,
        "Orders",
        cluster=platform,
        name="orders",
        port=8081,
        image=nginx,
        desired_count=1,
        container=ContainerOptions(user="root", scratch_paths=NGINX_SCRATCH),
    )
    web = MeshedFargateService(
        stack,
        "Web",
        cluster=platform,
        name="web",
        port=8080,
        image=nginx,
        public=True,
        backends=[orders],
        container=ContainerOptions(user=NGINX_USER, scratch_paths=NGINX_SCRATCH),
    )
    worker = MeshedFargateService(
        stack,
        "Worker",
        cluster=platform,
        name="worker",
        port=None,
        image=ServiceImage.from_pull_through_cache(
            cache, upstream_image="docker/library/python", tag="3.13-slim"
        ),
        health_check=HealthCheckOptions(command=WORKER_HEALTH),
        backends=[orders],
        container=ContainerOptions(scratch_paths=["/tmp"]),
    )
    edge = TradingEdge(stack, "Edge", cluster=platform, service=web)
    # as the example does: deletion protection waits for a first create to succeed
    Validations.of(edge.load_balancer).acknowledge(
        Acknowledgment(
            id="NIST.800.53.R5::NIST.800.53.R5-ELBDeletionProtectionEnabled",
            reason="Off for a first deploy, so that a failed create rolls back cleanly; "
            "turned on once the stack exists.",
        )
    )
    PlatformDashboard(stack, "Dashboard", services=[web, orders, worker], edge=edge)
    return Consumer(synthesize(app), stack, platform, web, orders, worker)


def _resolved(consumer: Consumer, value: Any) -> Any:
    return json.loads(json.dumps(consumer.stack.resolve(value)))


def test_nothing_of_the_team_platform_is_built_again() -> None:
    consumer = consumer_app()
    assert consumer.synthesized.synth_error is None, consumer.synthesized.synth_error
    built = {resource["Type"] for resource in consumer.template["Resources"].values()}
    # THEN no VPC, cluster, namespace, key or topic is created: the team's are used
    for kind in (
        "AWS::EC2::VPC",
        "AWS::EC2::FlowLog",
        "AWS::ECS::Cluster",
        "AWS::ECS::ClusterCapacityProviderAssociations",
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        "AWS::KMS::Key",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
    ):
        assert kind not in built, kind
    assert consumer.platform.flow_log_group is None


def test_services_run_on_the_team_cluster_namespace_key_and_topic() -> None:
    consumer = consumer_app()
    template = consumer.template
    services = of_type(template, "AWS::ECS::Service")
    assert len(services) == 3
    for service in services.values():
        properties = service["Properties"]
        assert properties["Cluster"] == TEAM_CLUSTER
        # on the team's private subnets
        subnets = properties["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
        assert sorted(subnets) == [f"subnet-0b0000000000000b{i}" for i in (1, 2, 3)]
        # in the team's namespace, through Service Connect
        assert properties["ServiceConnectConfiguration"]["Namespace"] == TEAM_NAMESPACE_ARN
        # on FARGATE and FARGATE_SPOT, which the team's cluster must have (see the docs)
        providers = {s["CapacityProvider"] for s in properties["CapacityProviderStrategy"]}
        assert providers == {"FARGATE", "FARGATE_SPOT"}
    # every log group is encrypted with the team's key
    for log_group in of_type(template, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["KmsKeyId"] == TEAM_KEY_ARN
    # and every alarm notifies the team's topic, on ALARM and on OK
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [TEAM_TOPIC_ARN]
        assert alarm["Properties"]["OKActions"] == [TEAM_TOPIC_ARN]


def test_nginx_runs_as_its_user_on_a_read_only_root_with_its_scratch_directories() -> None:
    consumer = consumer_app()
    for service, user in ((consumer.web, NGINX_USER), (consumer.orders, "root")):
        task = consumer.properties(service.task_definition)
        app = consumer.app_container(service)
        # THEN the app runs as the image's user, on a read-only root filesystem
        assert app["User"] == user
        assert app["ReadonlyRootFilesystem"] is True
        # AND each directory nginx writes to is a writable task-local volume
        volumes = {volume["Name"]: volume for volume in task["Volumes"]}
        mounts = {m["ContainerPath"]: m for m in app["MountPoints"]}
        assert sorted(mounts) == sorted(NGINX_SCRATCH)
        for mount in mounts.values():
            assert mount["ReadOnly"] is False
            # no host, no EFS: Fargate's ephemeral storage, gone with the task
            assert volumes[mount["SourceVolume"]] == {"Name": mount["SourceVolume"]}
        assert len(volumes) == len(NGINX_SCRATCH)


def test_a_worker_has_no_port_no_listener_and_no_ingress() -> None:
    consumer = consumer_app()
    worker = consumer.worker
    app = consumer.app_container(worker)
    # THEN its container maps no port and checks itself with its command
    assert "PortMappings" not in app or app["PortMappings"] == []
    assert app["HealthCheck"]["Command"] == WORKER_HEALTH
    # AND Service Connect makes it a client only: no service of its own in the namespace
    (service,) = [
        s
        for s in of_type(consumer.template, "AWS::ECS::Service").values()
        if s["Properties"]["TaskDefinition"]
        == _resolved(consumer, worker.task_definition.task_definition_arn)
    ]
    connect = service["Properties"]["ServiceConnectConfiguration"]
    assert connect["Enabled"] is True
    assert "Services" not in connect
    # AND nothing may reach it, while it reaches its backend's port
    group = _resolved(consumer, worker.security_group.security_group_id)
    rules = [
        r["Properties"]
        for r in of_type(consumer.template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == group
    ]
    assert rules == []
    assert "SecurityGroupIngress" not in consumer.properties(worker.security_group)
    egress = [
        r["Properties"]
        for r in of_type(consumer.template, "AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == group
    ]
    assert [(r["FromPort"], r["Description"]) for r in egress] == [
        (consumer.orders.port, "worker calls orders")
    ]


def test_cdk_nag_packs_pass_the_consumer_app() -> None:
    consumer = consumer_app()
    report = consumer.synthesized.validation_report
    assert report is not None, "the nag packs did not run"
    violations = [
        f"{v['ruleName']} at {c['constructPath']}"
        for plugin in report["pluginReports"]
        for v in plugin.get("violations", [])
        for c in v["violatingConstructs"]
    ]
    # THEN every pack passes; the one finding is the edge's plain-HTTP warning
    assert violations == ["Annotation::trading-constructs:edge-without-https at Consumer/Edge"]


def test_cfn_lint_finds_nothing_in_the_consumer_app() -> None:
    consumer = consumer_app()
    findings = [str(m) for m in lint(json.dumps(consumer.template), regions=["us-east-1"])]
    assert findings == []


def test_a_service_connect_worker_has_no_proxy_5xx_but_its_errors_are_on_the_dashboard() -> None:
    consumer = consumer_app()
    # GIVEN the worker, whose Service Connect proxy serves nothing
    with pytest.raises(ValueError, match="worker: no proxy 5xx metric"):
        consumer.worker.metric_proxy_5xx()
    assert consumer.worker.observability.proxy_5xx_metrics == []
    # THEN its errors widget shows its error logs alone, and the web service's its 5xx too
    (dashboard,) = of_type(consumer.template, "AWS::CloudWatch::Dashboard").values()
    errors = {
        widget["properties"]["title"]: widget["properties"]["metrics"]
        for widget in dashboard_body(dashboard)["widgets"]
        if widget["properties"].get("title", "").endswith(": errors")
    }
    assert len(errors["worker: errors"]) == 1
    assert len(errors["web: errors"]) == 2
