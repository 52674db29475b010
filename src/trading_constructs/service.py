"""MeshedFargateService: one microservice on Fargate, in the mesh, scaled and observed."""

from __future__ import annotations

import itertools
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jsii
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from ._validation import Problems, check_type, construct_owner, is_token
from .cluster import CapacityStrategy, TradingCluster
from .compliance import acknowledge_wildcard_resource
from .mesh import MeshMember, MeshMembership, MeshSlot, ResiliencePolicy
from .observability import (
    LOG_RETENTION_DAYS,
    AlarmThresholds,
    ServiceObservability,
    check_retention,
)
from .repository import ServiceImage
from .scaling import ScalingOptions
from .secret import secret_read_statements

# CPU units Fargate offers, each with the memory sizes (MiB) it can pair with.
FARGATE_CPU_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
APP_USER = "10001"
_HTTP = typing.cast(ecs.AppProtocol, ecs.AppProtocol.http)  # a jsii static property
# Ports the platform keeps for itself: Envoy's ingress, egress and admin ports.
_RESERVED_PORTS = (15000, 15001, 9901)
_SERVICE_NAME = r"[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?"


@dataclass(frozen=True, kw_only=True)
class HealthCheckOptions:
    """The container's health check, and the path the mesh and load balancer probe."""

    path: str = "/health"
    """The HTTP path that answers 200 when the service is healthy: URL-safe characters only
    (letters, digits, ``/ . _ ~ -`` and %-escapes), as the mesh, the load balancer and the
    container check all use it. :default: '/health'"""

    command: Sequence[str] | None = None
    """The container health check command, ECS style: ``['CMD', 'program', 'arg', ...]``
    (run directly, preferred) or ``['CMD-SHELL', '<command>']`` (run by the image's shell).
    Slim images often lack curl: give a command the image can run.
    :default: ``['CMD', 'curl', '-fs', 'http://localhost:<port><path>']`` (the image needs
    curl; no shell is involved)"""

    interval: Duration = field(default_factory=lambda: Duration.seconds(15))
    """Time between checks, 5 to 300 s. :default: 15 seconds"""

    timeout: Duration = field(default_factory=lambda: Duration.seconds(5))
    """Time a check may take, 2 to 60 s. :default: 5 seconds"""

    retries: int = 3
    """Failures before the container is unhealthy, 1 to 10. :default: 3"""

    start_period: Duration = field(default_factory=lambda: Duration.seconds(20))
    """Grace after start during which failures do not count, 0 to 300 s. :default: 20 s"""

    def __post_init__(self) -> None:
        problems = Problems("HealthCheckOptions")
        problems.pattern(
            "path",
            self.path,
            r"/(?:[A-Za-z0-9._~/-]|%[0-9A-Fa-f]{2}){0,1023}",
            "an absolute URL path of letters, digits, / . _ ~ - and %-escapes",
        )
        _check_health_command(problems, self.command)
        for prop, low, high in (("interval", 5, 300), ("timeout", 2, 60), ("start_period", 0, 300)):
            problems.seconds(prop, getattr(self, prop), low, high)
        problems.int_range("retries", self.retries, 1, 10)
        if (
            not problems.problems
            and not self.interval.is_unresolved()
            and not self.timeout.is_unresolved()
            and self.timeout.to_seconds() >= self.interval.to_seconds()
        ):
            problems.note(
                f"timeout={self.timeout.to_human_string()} is not shorter than "
                f"interval={self.interval.to_human_string()} (allowed: timeout < interval)"
            )
        problems.raise_if_any()

    def container_health_check(self, port: int) -> ecs.HealthCheck:
        command = list(
            self.command or ["CMD", "curl", "-fs", f"http://localhost:{port}{self.path}"]
        )
        return ecs.HealthCheck(
            command=command,
            interval=self.interval,
            timeout=self.timeout,
            retries=self.retries,
            start_period=self.start_period,
        )


def _check_health_command(problems: Problems, command: Sequence[str] | None) -> None:
    """ECS runs ``CMD`` arguments directly and hands ``CMD-SHELL``'s one string to a shell;
    an empty program or command would count as healthy whatever the app does."""
    if command is None or is_token(command):
        return
    allowed = "['CMD', '<program>', '<arg>', ...] or ['CMD-SHELL', '<command>'], none empty"
    if isinstance(command, str) or not isinstance(command, (list, tuple)) or len(command) < 2:
        problems.add("command", command, allowed)
        return
    parts = list(command)
    well_formed = (
        all(isinstance(part, str) for part in parts)
        and parts[0] in ("CMD", "CMD-SHELL")
        and all(is_token(part) or part.strip() for part in parts[1:])
        and (parts[0] == "CMD" or len(parts) == 2)
    )
    if not well_formed:
        problems.add("command", command, allowed)


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """How a new revision replaces the running one: ``Deployment.rolling()`` or
    ``Deployment.blue_green(bake_time=...)`` (ECS native blue/green behind a TradingEdge)."""

    strategy: ecs.DeploymentStrategy = ecs.DeploymentStrategy.ROLLING
    """ROLLING or BLUE_GREEN. :default: ROLLING"""

    bake_time: Duration | None = None
    """Blue/green only: how long both revisions stay up after the shift, so a rollback is
    instant, 0 to 1440 minutes. :default: None (rolling)"""

    lifecycle_hook: lambda_.IFunction | None = None
    """Blue/green only: a function ECS calls after test traffic reached the new revision
    (POST_TEST_TRAFFIC_SHIFT); it fails the deployment, and rolls it back, by answering
    FAILED. :default: None"""

    def __post_init__(self) -> None:
        problems = Problems("Deployment")
        problems.one_of(
            "strategy",
            self.strategy,
            [ecs.DeploymentStrategy.ROLLING, ecs.DeploymentStrategy.BLUE_GREEN],
        )
        if self.strategy == ecs.DeploymentStrategy.ROLLING and self.bake_time is not None:
            problems.note("bake_time applies to blue/green only (allowed: None with ROLLING)")
        if self.lifecycle_hook is not None:
            if self.strategy == ecs.DeploymentStrategy.ROLLING:
                problems.note(
                    "lifecycle_hook applies to blue/green only (allowed: None with ROLLING)"
                )
            if not hasattr(self.lifecycle_hook, "function_arn"):
                problems.add("lifecycle_hook", self.lifecycle_hook, "an aws_lambda.IFunction")
        if self.bake_time is not None:
            if not isinstance(self.bake_time, Duration):
                problems.add("bake_time", self.bake_time, "an aws_cdk.Duration")
            elif not self.bake_time.is_unresolved():
                minutes = self.bake_time.to_minutes(integral=False)
                if minutes % 1:
                    problems.add("bake_time", self.bake_time.to_human_string(), "whole minutes")
                elif not 0 <= minutes <= 1440:
                    problems.add("bake_time", self.bake_time.to_human_string(), "0 to 1440 minutes")
        problems.raise_if_any()

    @staticmethod
    def rolling() -> Deployment:
        return Deployment()

    @staticmethod
    def blue_green(
        *, bake_time: Duration | None = None, lifecycle_hook: lambda_.IFunction | None = None
    ) -> Deployment:
        """ECS native blue/green: :default: bake_time 10 minutes, no lifecycle hook."""
        return Deployment(
            strategy=ecs.DeploymentStrategy.BLUE_GREEN,
            bake_time=bake_time if bake_time is not None else Duration.minutes(10),
            lifecycle_hook=lifecycle_hook,
        )


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """How requests split between a service's blue and green slots, in percent:
    ``Traffic.weighted(blue=90, green=10)``. A slot at 0 runs no tasks."""

    blue: int = 100
    """The blue slot's share, 0 to 100. :default: 100"""

    green: int = 0
    """The green slot's share, 0 to 100. :default: 0"""

    def __post_init__(self) -> None:
        problems = Problems("Traffic")
        problems.int_range("blue", self.blue, 0, 100)
        problems.int_range("green", self.green, 0, 100)
        if not problems.problems and self.blue + self.green != 100:
            problems.note(
                f"blue={self.blue} and green={self.green} add up to {self.blue + self.green} "
                "(allowed: weights that add up to 100)"
            )
        problems.raise_if_any()

    @staticmethod
    def weighted(*, blue: int, green: int) -> Traffic:
        return Traffic(blue=blue, green=green)


@dataclass(frozen=True, kw_only=True)
class ServiceSecret:
    """A secret (or one JSON field of it) handed to the container as an environment variable."""

    secret: sm.ISecret
    """The secret."""

    field: str | None = None
    """One JSON key of the secret. :default: None (the whole value)"""

    def __post_init__(self) -> None:
        problems = Problems("ServiceSecret")
        if not hasattr(self.secret, "secret_arn"):
            problems.add("secret", self.secret, "an aws_secretsmanager.ISecret")
        if self.field is not None:
            problems.pattern("field", self.field, r"[A-Za-z0-9_.-]{1,256}", "a JSON key")
        problems.raise_if_any()


@jsii.implements(ec2.IConnectable)
class MeshedFargateService(Construct):
    """One microservice: a Fargate task of its app container and the sidecars its mesh needs,
    an ECS service on Fargate Spot with the deployment circuit breaker, its place in the mesh,
    auto scaling on CPU, memory and its own metric, logs, error metrics and alarms, and roles
    that can do what the service does and nothing more.

    Callers are declared, not assumed: ``backends=[...]`` (or ``add_backend``) opens the mesh
    route and the security group from this service to each backend.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: TradingCluster,
        name: str,
        image: ServiceImage,
        port: int,
        cpu: int = 512,
        memory_mib: int = 1024,
        health_check: HealthCheckOptions | None = None,
        environment: Mapping[str, str] | None = None,
        secrets: Mapping[str, ServiceSecret] | None = None,
        backends: Sequence[MeshedFargateService] = (),
        scaling: ScalingOptions | None = None,
        desired_count: int | None = None,
        capacity: CapacityStrategy | None = None,
        deployment: Deployment | None = None,
        traffic: Traffic | None = None,
        green_image: ServiceImage | None = None,
        resilience: ResiliencePolicy | None = None,
        public: bool = False,
        log_retention_days: int = LOG_RETENTION_DAYS,
        alarm_thresholds: AlarmThresholds | None = None,
        readonly_root_filesystem: bool = True,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        """
        :param cluster: the platform it runs on (its VPC, cluster, namespace, key and mesh).
        :param name: the service's discovery name (``<name>.<namespace>``), 1 to 32 lower-case
            letters, digits and hyphens, starting with a letter.
        :param image: the scanned repository and tag the app container runs.
        :param port: the app's HTTP port, 1024 to 65535, not one the mesh proxy uses.
        :param cpu: task CPU units, a Fargate value. :default: 512
        :param memory_mib: task memory, a size Fargate pairs with ``cpu``. :default: 1024
        :param health_check: the container health check and health path.
            :default: ``HealthCheckOptions()`` (GET /health)
        :param environment: plain configuration for the app. Never secrets.
            :default: none
        :param secrets: environment variables read from Secrets Manager at task start.
            :default: none
        :param backends: services this one calls. :default: none
        :param scaling: auto scaling. :default: ``ScalingOptions()`` (2 to 10 tasks on CPU
            and memory), unless ``desired_count`` asks for a fixed count
        :param desired_count: a fixed task count, 1 to 1000, instead of scaling. When scaling
            is on, no desired count is set, so a deployment never resets the running count.
            :default: None (scaling)
        :param capacity: how tasks spread over FARGATE and FARGATE_SPOT.
            :default: the cluster's strategy
        :param deployment: rolling, or ECS native blue/green (needs a TradingEdge in front).
            :default: ``Deployment.rolling()``
        :param traffic: blue and green slots (a virtual node and ECS service each) behind the
            service's virtual router, weighted; the slot at 0 runs no tasks (App Mesh only).
            :default: None (one slot)
        :param green_image: the image the green slot runs. :default: ``image``
        :param resilience: retries, circuit breaking and timeouts of calls to this service.
            :default: the cluster mesh's traffic policy
        :param public: reached by a load balancer: its mesh listener then takes the load
            balancer's plain HTTP (the ALB cannot present a mesh certificate) and the security
            group alone decides who gets in; every other listener requires mutual TLS.
            :default: False
        :param log_retention_days: days container logs are kept, a value CloudWatch Logs
            accepts. :default: 30
        :param alarm_thresholds: when the service's alarms fire. :default: ``AlarmThresholds()``
        :param readonly_root_filesystem: mount the app's root filesystem read-only.
            :default: True
        :param removal_policy: what happens to the log groups when the stack is deleted:
            kept once created,
            removed by a failed first create. :default: RETAIN_ON_UPDATE_OR_DELETE
        """
        owner = construct_owner("MeshedFargateService", scope.node.path, id)
        check_type(owner, "cluster", cluster, TradingCluster)
        check_type(owner, "image", image, ServiceImage)
        check_type(owner, "health_check", health_check, HealthCheckOptions)
        check_type(owner, "scaling", scaling, ScalingOptions)
        check_type(owner, "capacity", capacity, CapacityStrategy)
        check_type(owner, "resilience", resilience, ResiliencePolicy)
        check_type(owner, "deployment", deployment, Deployment)
        check_type(owner, "traffic", traffic, Traffic)
        check_type(owner, "green_image", green_image, ServiceImage)
        check_type(owner, "alarm_thresholds", alarm_thresholds, AlarmThresholds)
        check_type(owner, "removal_policy", removal_policy, RemovalPolicy)
        if image is None:
            raise TypeError(f"{owner}: image=None is not allowed (allowed: a ServiceImage)")
        if cluster is None:
            raise TypeError(f"{owner}: cluster=None is not allowed (allowed: a TradingCluster)")
        problems = Problems(owner)
        _check_props(
            problems,
            name=name,
            port=port,
            cpu=cpu,
            memory_mib=memory_mib,
            environment=environment or {},
            secrets=secrets or {},
            scaling=scaling,
            desired_count=desired_count,
            log_retention_days=log_retention_days,
        )
        for backend in backends:
            if not isinstance(backend, MeshedFargateService):
                problems.add("backends", backend, "MeshedFargateService instances")
        if green_image is not None and traffic is None:
            problems.note("green_image was given without traffic (allowed: both, or neither)")
        if (
            traffic is not None
            and deployment is not None
            and deployment.strategy != (ecs.DeploymentStrategy.ROLLING)
        ):
            problems.note(
                "traffic slots and an ECS blue/green deployment were both given (allowed: one "
                "way to run blue/green)"
            )
        if traffic is not None and cluster.mesh.kind != "appmesh":
            problems.note(
                "traffic=Traffic(...) weighs blue and green slots in App Mesh, which Service "
                "Connect cannot (allowed: deployment=Deployment.blue_green() for ECS native "
                "blue/green instead)"
            )
        if not is_token(name) and name in cluster.service_names:
            problems.add("name", name, "a name no other service on this cluster has")
        problems.raise_if_any()
        super().__init__(scope, id)
        cluster.service_names.add(name)

        self.name = name
        self.port = port
        self.public = public
        self.edge: Construct | None = None
        """The TradingEdge in front of the service, if any."""
        self.deployment: Deployment = deployment or Deployment.rolling()
        """How new revisions replace running ones."""
        self.cluster = cluster
        health = health_check or HealthCheckOptions()
        self.health_check: HealthCheckOptions = health
        """The health check options, for a load balancer in front of the service."""

        self._task_managed_policy: iam.ManagedPolicy | None = None
        self.observability: ServiceObservability = ServiceObservability(
            self,
            "Observability",
            service_name=name,
            key=cluster.key,
            retention_days=log_retention_days,
            thresholds=alarm_thresholds,
            removal_policy=removal_policy,
        )
        """Log groups, error metrics and alarms."""

        execution_statements = image.pull_statements()
        task_statements: list[iam.PolicyStatement] = []
        self.execution_role: iam.Role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"Starts {name} tasks: its images, its log groups, its secrets",
        )
        """The role ECS starts tasks with."""
        self.task_role: iam.Role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"What {name}'s containers may call in AWS",
        )
        """The role the containers run with."""

        container_secrets = {}
        for variable, reference in (secrets or {}).items():
            container_secrets[variable] = ecs.Secret.from_secrets_manager(
                reference.secret, reference.field
            )
            execution_statements.extend(secret_read_statements(reference.secret))
        if green_image is not None:
            execution_statements.extend(green_image.pull_statements())

        # One slot, or blue and green slots behind the mesh's weighted route.
        self.traffic: Traffic | None = traffic
        """The blue/green weights, None for a single slot."""
        weights = {None: 100} if traffic is None else {"Blue": traffic.blue, "Green": traffic.green}
        slot_images = {None: image, "Blue": image, "Green": green_image or image}
        slots = [
            MeshSlot(
                id=slot,
                weight=weight,
                task_definition=(task := self._task_definition(slot, cpu, memory_mib)),
                app_container=task.add_container(
                    "App",
                    container_name=name,
                    image=slot_images[slot].container_image(),
                    port_mappings=[
                        ecs.PortMapping(container_port=port, name=name, app_protocol=_HTTP)
                    ],
                    environment=dict(environment or {}),
                    secrets=container_secrets,
                    health_check=health.container_health_check(port),
                    logging=ecs.LogDrivers.aws_logs(
                        stream_prefix=name, log_group=self.observability.log_group(name)
                    ),
                    user=APP_USER,
                    readonly_root_filesystem=readonly_root_filesystem,
                    # A Fargate Spot interruption gives two minutes; the app drains in less.
                    stop_timeout=Duration.seconds(30),
                    essential=True,
                ),
            )
            for slot, weight in weights.items()
        ]
        self.task_definition: ecs.FargateTaskDefinition = slots[0].task_definition
        """The task definition (the blue slot's, with blue/green slots)."""
        self.app_container: ecs.ContainerDefinition = slots[0].app_container
        """The app container (the blue slot's, with blue/green slots)."""
        self.observability.count_errors(name)

        self.security_group: ec2.SecurityGroup = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=cluster.vpc,
            description=f"{name}: admits declared callers only",
            allow_all_outbound=False,
        )
        """Admits only declared callers; reaches only its backends and AWS APIs."""
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs: ECR, logs, secrets, mesh"
        )
        self.connections: ec2.Connections = self.security_group.connections
        """The service's connections, for security group rules."""

        self.membership: MeshMembership = cluster.mesh.join(
            MeshMember(
                scope=self,
                name=name,
                port=port,
                health_check_path=health.path,
                slots=slots,
                execution_statements=execution_statements,
                task_statements=task_statements,
                observability=self.observability,
                resilience=resilience or cluster.resilience,
                public=public,
            )
        )
        """The service's place in the mesh (its virtual nodes, router and virtual service on
        App Mesh)."""

        scaled = scaling is not None or desired_count is None
        self.services: dict[str, ecs.FargateService] = {}
        """The ECS services by slot: 'main', or 'blue' and 'green'."""
        self.scalings: dict[str, ecs.ScalableTaskCount] = {}
        """The scalable task counts by slot (an idle slot has none)."""
        for slot in slots:
            key = (slot.id or "main").lower()
            idle = slot.weight == 0
            service = ecs.FargateService(
                self,
                f"{slot.id or ''}Service",
                cluster=cluster.cluster,
                task_definition=slot.task_definition,
                capacity_provider_strategies=(capacity or cluster.capacity).to_strategy(),
                circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
                min_healthy_percent=100,
                max_healthy_percent=200,
                # The idle slot runs no tasks; scaling owns the count of the others.
                desired_count=0 if idle else (None if scaled else desired_count),
                security_groups=[self.security_group],
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                assign_public_ip=False,
                enable_ecs_managed_tags=True,
                propagate_tags=ecs.PropagatedTagSource.SERVICE,
                deployment_strategy=self.deployment.strategy,
                bake_time=self.deployment.bake_time,
            )
            self.membership.bind_service(service, slot)
            if self.deployment.lifecycle_hook is not None:
                service.add_lifecycle_hook(
                    ecs.DeploymentLifecycleLambdaTarget(
                        self.deployment.lifecycle_hook,
                        f"{slot.id or ''}PostTestTrafficHook",
                        lifecycle_stages=[ecs.DeploymentLifecycleStage.POST_TEST_TRAFFIC_SHIFT],
                    )
                )
            self.services[key] = service
            if scaled and not idle:
                self.scalings[key] = (scaling or ScalingOptions()).apply(service, name)
            self.observability.watch_task_count(
                cluster.cluster.cluster_name, service.service_name, slot.id or ""
            )
        if image.ready_after is not None or (green_image and green_image.ready_after):
            for service in self.services.values():
                for ready in (image.ready_after, green_image and green_image.ready_after):
                    if ready is not None:
                        service.node.add_dependency(ready)
        self.service: ecs.FargateService = next(iter(self.services.values()))
        """The ECS service (the blue slot's, with blue/green slots)."""
        self.scaling: ecs.ScalableTaskCount | None = next(iter(self.scalings.values()), None)
        """The scalable task count, None when the count is fixed."""

        for log_group in self.observability.log_groups.values():
            execution_statements.append(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            )
        self._policies(execution_statements, task_statements)
        for slot in slots:
            Validations.of(slot.task_definition).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-ECS2",
                    reason="Environment variables carry plain configuration only (ports, peer "
                    "URLs, the proxy's mesh resource ARN); secrets reach containers as ECS "
                    "secrets read from Secrets Manager at task start.",
                )
            )
        for alarm in self.observability.alarms.values():
            cluster.alarms.notify(alarm)
        for backend in backends:
            self.add_backend(backend)

    def _task_definition(
        self, slot: str | None, cpu: int, memory_mib: int
    ) -> ecs.FargateTaskDefinition:
        return ecs.FargateTaskDefinition(
            self,
            f"{slot or ''}TaskDefinition",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            execution_role=self.execution_role.without_policy_updates(),
            task_role=self.task_role.without_policy_updates(),
            proxy_configuration=self.cluster.mesh.proxy_configuration(self.port),
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )

    def _policies(
        self,
        execution_statements: list[iam.PolicyStatement],
        task_statements: list[iam.PolicyStatement],
    ) -> None:
        """Managed policies (not inline) that exist before the service starts a task."""
        execution = iam.ManagedPolicy(
            self, "ExecutionPolicy", roles=[self.execution_role], statements=execution_statements
        )
        acknowledge_wildcard_resource(
            execution,
            "*",
            reason="ecr:GetAuthorizationToken has no resource-level permissions; every image "
            "pull, log write and secret read names its repository, log group or secret.",
        )
        for service in self.services.values():
            service.node.add_dependency(execution)
            # Any policy granted to the roles later (``grant_*(service.task_role)``) lives
            # under the role: depending on the roles orders those before the service too.
            service.node.add_dependency(self.execution_role, self.task_role)
        if task_statements:
            self._task_policy().add_statements(*task_statements)

    def _task_policy(self) -> iam.ManagedPolicy:
        """The task role's managed policy, made on first use; every slot's ECS service waits
        for it, so no task starts before its containers may do what they need."""
        if self._task_managed_policy is None:
            self._task_managed_policy = iam.ManagedPolicy(
                self, "TaskPolicy", roles=[self.task_role]
            )
            for service in self.services.values():
                service.node.add_dependency(self._task_managed_policy)
        return self._task_managed_policy

    def grant_secret_read(self, secret: sm.ISecret) -> None:
        """Let the containers read ``secret`` at run time (and decrypt it, through Secrets
        Manager only): for values that change while tasks run, such as a rotated password,
        which ECS secrets would fix at task start."""
        if not hasattr(secret, "secret_arn"):
            raise TypeError(
                f"MeshedFargateService {self.node.path!r}: secret={secret!r} is not allowed "
                "(allowed: an aws_secretsmanager.ISecret)"
            )
        self._task_policy().add_statements(*secret_read_statements(secret))

    def add_backend(self, backend: MeshedFargateService) -> None:
        """Let this service call ``backend``: the mesh route, and the security group rule on
        both sides (egress here, ingress there, on the backend's port only)."""
        if not isinstance(backend, MeshedFargateService):
            raise TypeError(
                f"MeshedFargateService {self.node.path!r}: backend={backend!r} is not allowed "
                "(allowed: a MeshedFargateService)"
            )
        if backend is self:
            raise ValueError(
                f"MeshedFargateService {self.node.path!r}: a service cannot be its own backend"
            )
        self.membership.add_backend(backend.membership)
        # Backends first: a mesh proxy sees only the endpoints that existed when it started.
        for caller in self.services.values():
            for callee in backend.services.values():
                caller.node.add_dependency(callee)
        backend.connections.allow_from(
            self.connections, ec2.Port.tcp(backend.port), f"{self.name} calls {backend.name}"
        )

    @property
    def blue_green(self) -> bool:
        """Whether the service deploys blue/green (and so needs a TradingEdge in front)."""
        return self.deployment.strategy == ecs.DeploymentStrategy.BLUE_GREEN

    @property
    def log_groups(self) -> dict[str, logs.LogGroup]:
        """Log groups by container name."""
        return self.observability.log_groups

    @property
    def alarms(self) -> dict[str, cloudwatch.Alarm]:
        """Alarms by name: ErrorLogs, Proxy5xx, TasksBelowDesired."""
        return self.observability.alarms


def _check_props(
    problems: Problems,
    *,
    name: str,
    port: int,
    cpu: int,
    memory_mib: int,
    environment: Mapping[str, str],
    secrets: Mapping[str, ServiceSecret],
    scaling: ScalingOptions | None,
    desired_count: int | None,
    log_retention_days: int,
) -> None:
    problems.pattern(
        "name",
        name,
        _SERVICE_NAME,
        "1 to 32 lower-case letters, digits and hyphens, "
        "starting with a letter and not ending with a hyphen",
    )
    problems.int_range("port", port, 1024, 65535)
    if not is_token(port) and port in _RESERVED_PORTS:
        problems.add("port", port, "a port other than the mesh proxy's 15000, 15001 and 9901")
    if is_token(cpu) or is_token(memory_mib):
        pass
    elif isinstance(cpu, bool) or not isinstance(cpu, int) or cpu not in FARGATE_CPU_MEMORY:
        problems.add("cpu", cpu, ", ".join(str(c) for c in FARGATE_CPU_MEMORY))
    elif (
        isinstance(memory_mib, bool)
        or not isinstance(memory_mib, int)
        or memory_mib not in FARGATE_CPU_MEMORY[cpu]
    ):
        sizes = FARGATE_CPU_MEMORY[cpu]
        steps = {b - a for a, b in itertools.pairwise(sizes)}
        listed = (
            ", ".join(map(str, sizes))
            if len(steps) > 1
            else f"{sizes[0]} to {sizes[-1]} in steps of {sizes[1] - sizes[0]}"
        )
        problems.add("memory_mib", memory_mib, f"with cpu={cpu}: {listed}")
    for variable in [*environment, *secrets]:
        problems.pattern(
            "environment/secrets",
            variable,
            r"[A-Za-z_][A-Za-z0-9_]{0,254}",
            "variable names of letters, digits and underscores",
        )
    for variable, value in environment.items():
        if not isinstance(value, str):
            problems.add(f"environment[{variable!r}]", value, "a string")
    clash = set(environment) & set(secrets)
    if clash:
        problems.add("secrets", sorted(clash), "names not also set in environment")
    for variable, reference in secrets.items():
        if not isinstance(reference, ServiceSecret):
            problems.add(f"secrets[{variable!r}]", reference, "a ServiceSecret")
    if scaling is not None and desired_count is not None:
        problems.note(
            f"scaling and desired_count={desired_count} were both given (allowed: scaling, "
            "which owns the count, or desired_count with scaling=None)"
        )
    if desired_count is not None:
        problems.int_range("desired_count", desired_count, 1, 1000)
    check_retention(problems, "log_retention_days", log_retention_days)
