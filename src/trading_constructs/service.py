"""MeshedFargateService: one microservice on Fargate, in the mesh, scaled and observed.

The constructor reads like the service's diagram: roles, task definitions, security group,
mesh membership, ECS services, scaling, alarms, callers. What other constructs need (its
metrics, a load-balancer target, its alarms) it offers as methods and attributes, in the style
of aws-cdk-lib's own services; nothing else reaches inside it.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence

import jsii
from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct, IValidation

from ._validation import (
    SECRET,
    InvalidPropType,
    Problems,
    check_argument,
    check_removal_policy,
    check_type,
    claim,
    construct_owner,
    is_token,
)
from .calls import order_call
from .cluster import CapacityStrategy, TradingCluster
from .compliance import (
    acknowledge,
    acknowledge_control,
    acknowledge_wildcard_resource,
    control_tower_profile,
    ignore_redundant_depends_on,
)
from .images import ServiceImage
from .limits import QUOTA_CONTEXT, SECURITY_GROUP_RULES, quota, watch_stack_limits
from .mesh import MeshMember, MeshMembership, MeshSlot, ResiliencePolicy, check_resilience
from .observability import AlarmThresholds, ServiceObservability
from .policies import ServicePolicies
from .release import Release, SlotSpec
from .scaling import ScalingOptions
from .secret import secret_read_statements
from .service_options import (
    FARGATE_CPU_MEMORY,
    ContainerOptions,
    HealthCheckOptions,
    ServiceSecret,
    check_service_props,
)
from .targets import NeedsListener, check_target

TASK_DEFINITION_BYTES = 65_536
"""ECS's limit on one task definition's size (Amazon ECS service quotas: 64 KiB)."""

_HTTP = typing.cast(ecs.AppProtocol, ecs.AppProtocol.http)  # a jsii static property
_ONE_MINUTE = Duration.minutes(1)


@jsii.implements(ec2.IConnectable)
class MeshedFargateService(Construct):
    """One microservice: a Fargate task of its app container and the sidecars its mesh needs,
    an ECS service on Fargate Spot with the deployment circuit breaker, its place in the mesh,
    auto scaling on CPU, memory and its own metric, logs, error metrics and alarms, and roles
    that can do what the service does and nothing more.

    Callers are declared, not assumed: ``backends=[...]`` (or ``add_backend``) opens the mesh
    route and the security group from this service to each backend.

    A worker (a queue consumer, a scheduler) is a service with ``port=None``: no port
    mapping, no inbound listener in its mesh, no ingress rule. It calls backends like any
    service, but cannot be one, nor public, nor behind a TradingEdge; its health check is
    a command of its own (``HealthCheckOptions(command=[...])``).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: TradingCluster,
        name: str,
        image: ServiceImage,
        port: int | None,
        cpu: int = 512,
        memory_mib: int = 1024,
        health_check: HealthCheckOptions | None = None,
        environment: Mapping[str, str] | None = None,
        secrets: Mapping[str, ServiceSecret] | None = None,
        backends: Sequence[MeshedFargateService] = (),
        scaling: ScalingOptions | None = None,
        desired_count: int | None = None,
        capacity: CapacityStrategy | None = None,
        release: Release | None = None,
        resilience: ResiliencePolicy | None = None,
        public: bool = False,
        log_retention_days: int | None = None,
        alarm_thresholds: AlarmThresholds | None = None,
        readonly_root_filesystem: bool = True,
        container: ContainerOptions | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        """
        :param cluster: the platform it runs on (its VPC, cluster, namespace, key and mesh).
        :param name: the service's discovery name (``<name>.<namespace>``), 1 to 32 lower-case
            letters, digits and hyphens, starting with a letter.
        :param image: the image the app container runs (``ServiceImage.from_...``).
        :param port: the app's HTTP port, 1024 to 65535, not one the mesh proxy uses; None
            for a worker, which listens on nothing (then ``health_check`` with a ``command``
            is required).
        :param cpu: task CPU units, a Fargate value. :default: 512
        :param memory_mib: task memory, a size Fargate pairs with ``cpu``. :default: 1024
        :param health_check: the container health check and health path.
            :default: ``HealthCheckOptions()`` (GET /health); a worker has no default
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
        :param release: how a new revision replaces the running one: ``Release.rolling()``,
            ``Release.blue_green(...)`` (behind a TradingEdge) or ``Release.weighted(...)``
            (App Mesh). :default: ``Release.rolling()``
        :param resilience: retries, circuit breaking and timeouts of calls to this service;
            fields the cluster's mesh cannot honour must keep their defaults.
            :default: the cluster mesh's traffic policy
        :param public: reached by a load balancer, which sends plain HTTP (an ALB cannot
            present a mesh certificate) and which the security group alone admits: on the
            mutual-TLS mesh straight to the app's port, beside Envoy's mutual-TLS listener for
            declared callers; on App Mesh to its Envoy listener, which then takes plain HTTP
            (mutual TLS guards no listener of a public service there); on Service Connect to
            the app's port, which then serves no TLS, even with a Private CA (Service Connect
            TLS authenticates the server only and is never mutual). :default: False
        :param log_retention_days: days container logs are kept, a value CloudWatch Logs
            accepts. :default: 30, or 365 under the Control Tower profile (context
            ``trading-constructs:control-tower=true``; CT.CLOUDWATCH.PR.2 asks for a year)
        :param alarm_thresholds: when the service's alarms fire. :default: ``AlarmThresholds()``
        :param readonly_root_filesystem: mount the app's root filesystem read-only (give
            ``container.scratch_paths`` for the directories the image writes to).
            :default: True
        :param container: the app's user and its writable scratch directories. Anything
            else is set on ``task_definition`` and ``app_container`` (aws-cdk-lib's own).
            :default: ``ContainerOptions()`` (user 10001, no scratch path)
        :param removal_policy: what happens to the log groups when the stack is deleted: kept
            once created, removed by a failed first create. :default: RETAIN_ON_UPDATE_OR_DELETE
        """
        _validate(
            construct_owner("MeshedFargateService", scope.node.path, id),
            locals(),
        )
        super().__init__(scope, id)
        self.cluster = cluster
        self.name = name
        self.port: int | None = port
        """The app's port; None for a worker, which listens on nothing."""
        self.public = public
        self.release: Release = release or Release.rolling()
        """How new revisions replace running ones."""
        self._take_names(image)
        self.health_check: HealthCheckOptions = health_check or HealthCheckOptions()
        """The health check options, for a load balancer in front of the service."""
        self._targeted = False
        self.waits_for: list[MeshedFargateService] = []
        """Services whose ECS services start before this one's (its backends, mostly)."""

        self.observability: ServiceObservability = ServiceObservability(
            self,
            "Observability",
            service_name=name,
            key=cluster.key,
            retention_days=log_retention_days,
            thresholds=alarm_thresholds,
            removal_policy=removal_policy,
            notifications=cluster.alarms,
        )
        """Log groups, error metrics and alarms."""
        self.policies: ServicePolicies = ServicePolicies(self, name)
        """The execution and task roles and the managed policies collaborators add to."""
        self.execution_role: iam.Role = self.policies.execution_role
        """The role ECS starts tasks with."""
        self.task_role: iam.Role = self.policies.task_role
        """The role the containers run with."""

        self.container: ContainerOptions = container or ContainerOptions()
        """The app's user and scratch directories."""
        slots = self._slots(
            image, cpu, memory_mib, environment or {}, secrets or {}, readonly_root_filesystem
        )
        self.task_definition: ecs.FargateTaskDefinition = slots[0].task_definition
        """The task definition (the blue slot's, with weighted slots)."""
        self.app_container: ecs.ContainerDefinition = slots[0].app_container
        """The app container (the blue slot's, with weighted slots)."""
        self.security_group: ec2.SecurityGroup = self._security_group()
        """Admits only declared callers; reaches only its backends and AWS APIs."""
        self.connections: ec2.Connections = self.security_group.connections
        """The service's connections, for security group rules."""
        self.membership: MeshMembership = self._join_mesh(slots, resilience)
        """The service's place in the mesh."""
        fixed_count = desired_count if scaling is None else None
        self.services: dict[str, ecs.FargateService] = self._ecs_services(
            slots, capacity, fixed_count
        )
        """The ECS services by slot: 'main', or 'blue' and 'green'."""
        self.service: ecs.FargateService = next(iter(self.services.values()))
        """The ECS service (the blue slot's, with weighted slots)."""
        self.scalings: dict[str, ecs.ScalableTaskCount] = (
            {} if fixed_count is not None else self._scale(slots, scaling or ScalingOptions())
        )
        """The scalable task counts by slot (an idle slot and a fixed count have none)."""
        self.scaling: ecs.ScalableTaskCount | None = next(iter(self.scalings.values()), None)
        """The scalable task count, None when the count is fixed."""
        self._wait_for_images(image, self.release)
        self._grant_log_writes()
        for backend in backends:
            self.add_backend(backend)
        self.node.add_validation(_NeedsLoadBalancer(self))
        watch_stack_limits(self)

    # -- the steps of the constructor ---------------------------------------------------------

    def _take_names(self, image: ServiceImage) -> None:
        """Hold the service's name, and the names the mesh derives from it, in the app; and
        start with no backend or caller."""
        self._backends: list[MeshedFargateService] = []
        self._callers: list[MeshedFargateService] = []
        cluster, name, mesh = self.cluster, self.name, self.cluster.mesh
        cluster.service_names.add(name)
        if is_token(name):
            return
        slot_ids = [spec.id for spec in self.release.slots(image)]
        claim(
            self,
            ("service", cluster, name),
            *(mesh.name_key(what, n) for what, n in mesh.generated_names(name, slot_ids)),
        )

    def _slots(
        self,
        image: ServiceImage,
        cpu: int,
        memory_mib: int,
        environment: Mapping[str, str],
        secrets: Mapping[str, ServiceSecret],
        readonly_root_filesystem: bool,
    ) -> list[MeshSlot]:
        """A task definition and app container per slot of the release."""
        container_secrets = {
            variable: ecs.Secret.from_secrets_manager(
                self._secret_reference(variable, reference.secret), reference.field
            )
            for variable, reference in secrets.items()
        }
        for reference in secrets.values():
            self.policies.add_to_execution(*secret_read_statements(reference.secret))
        slots = []
        for spec in self.release.slots(image):
            self.policies.add_to_execution(*spec.image.pull_statements())
            task = self._task_definition(spec.id, cpu, memory_mib)
            app = self._app_container(
                task, spec, environment, container_secrets, readonly_root_filesystem
            )
            slots.append(MeshSlot(spec.id, spec.weight, task, app))
        self.observability.count_errors(self.name)
        return slots

    def _secret_reference(self, variable: str, secret: sm.ISecret) -> sm.ISecret:
        """The secret as ECS reads it, without its key: ECS grants a secret's key to the role
        through the key's own policy, which for a key in another stack would point that stack
        back at this one. The execution policy already allows the decrypt, on this side."""
        if secret.encryption_key is None:
            return secret
        if secret.secret_full_arn is not None:
            return sm.Secret.from_secret_attributes(
                self, f"{variable}Secret", secret_complete_arn=secret.secret_full_arn
            )
        return sm.Secret.from_secret_attributes(
            self, f"{variable}Secret", secret_partial_arn=secret.secret_arn
        )

    def _task_definition(
        self, slot: str | None, cpu: int, memory_mib: int
    ) -> ecs.FargateTaskDefinition:
        task = ecs.FargateTaskDefinition(
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
        acknowledge(
            task,
            "Environment variables carry plain configuration only (ports, peer URLs, the "
            "proxy's mesh resource ARN); secrets reach containers as ECS secrets read from "
            "Secrets Manager at task start.",
            "AwsSolutions::AwsSolutions-ECS2",
        )
        return task

    def _app_container(
        self,
        task: ecs.FargateTaskDefinition,
        slot: SlotSpec,
        environment: Mapping[str, str],
        secrets: Mapping[str, ecs.Secret],
        readonly_root_filesystem: bool,
    ) -> ecs.ContainerDefinition:
        memory_limit, memory_reservation = self._app_memory(task)
        self._acknowledge_choices(task, readonly_root_filesystem)
        app = task.add_container(
            "App",
            container_name=self.name,
            image=slot.image.container_image(),
            port_mappings=[]
            if self.port is None
            else [ecs.PortMapping(container_port=self.port, name=self.name, app_protocol=_HTTP)],
            environment=dict(environment),
            secrets=dict(secrets),
            health_check=self.health_check.container_health_check(self.port),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=self.name, log_group=self.observability.log_group(self.name)
            ),
            user=self.container.user,
            readonly_root_filesystem=readonly_root_filesystem,
            memory_limit_mib=memory_limit,
            memory_reservation_mib=memory_reservation,
            # A Fargate Spot interruption gives two minutes; the app drains in less.
            stop_timeout=Duration.seconds(30),
            essential=True,
        )
        self.container.add_to(task, app)
        return app

    def _acknowledge_choices(
        self, task: ecs.FargateTaskDefinition, readonly_root_filesystem: bool
    ) -> None:
        """Choices the Control Tower profile refuses, acknowledged outside it (its validator
        reports them under it, as the controls' hooks would refuse the deploy)."""
        if control_tower_profile(self):
            return
        if self.container.runs_as_root:
            acknowledge_control(
                task,
                f"ContainerOptions(user={self.container.user!r}) was chosen for {self.name}'s "
                "app, whose image starts as root and drops to its own user (as nginx's does). "
                "Under the Control Tower profile (CT.ECS.PR.3) the validator reports it.",
                "CT.ECS.PR.3",
            )
        if not readonly_root_filesystem:
            acknowledge_control(
                task,
                f"readonly_root_filesystem=False was chosen for {self.name}'s app, which writes "
                "to its root filesystem. Under the Control Tower profile (CT.ECS.PR.6) the "
                "validator reports it, as the control's hook would refuse the deploy.",
                "CT.ECS.PR.6",
            )

    def _app_memory(self, task: ecs.FargateTaskDefinition) -> tuple[int | None, int | None]:
        """The app's memory: the task's as its hard limit (CT.ECS.PR.7 asks every container for
        one; Fargate stops a task at its memory anyway), and what the mesh's containers (or
        the proxy ECS adds for Service Connect) leave as its reservation. A task memory that
        is a token has neither (CloudFormation cannot subtract), as a container may reserve no
        more than the task has."""
        if is_token(task.memory_mib):
            return None, None
        memory = int(task.memory_mib)
        sidecars = self.cluster.mesh.sidecar_memory_mib
        return memory, (memory - sidecars if sidecars else None)

    def _security_group(self) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.cluster.vpc,
            description=f"{self.name}: admits declared callers only",
            allow_all_outbound=False,
        )
        group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs: ECR, logs, secrets, mesh"
        )
        return group

    def _join_mesh(
        self, slots: list[MeshSlot], resilience: ResiliencePolicy | None
    ) -> MeshMembership:
        """Describe the service to the cluster's mesh, which adds its sidecars and resources."""
        return self.cluster.mesh.join(
            MeshMember(
                scope=self,
                name=self.name,
                port=self.port,
                health_check_path=self.health_check.path,
                slots=slots,
                policies=self.policies,
                observability=self.observability,
                resilience=resilience or self.cluster.resilience,
                public=self.public,
            )
        )

    def _ecs_services(
        self, slots: list[MeshSlot], capacity: CapacityStrategy | None, fixed_count: int | None
    ) -> dict[str, ecs.FargateService]:
        """An ECS service per slot, on the capacity strategy, rolled back by the circuit
        breaker, started only once its roles may do their work."""
        services = {}
        for slot in slots:
            service = ecs.FargateService(
                self,
                f"{slot.id or ''}Service",
                cluster=self.cluster.cluster,
                task_definition=slot.task_definition,
                capacity_provider_strategies=(capacity or self.cluster.capacity).to_strategy(),
                circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
                min_healthy_percent=100,
                max_healthy_percent=200,
                # An idle slot runs no tasks; scaling owns the others' count, so a deployment
                # never resets it (unless a fixed count was asked for instead).
                desired_count=0 if slot.weight == 0 else fixed_count,
                security_groups=[self.security_group],
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                assign_public_ip=False,
                enable_ecs_managed_tags=True,
                propagate_tags=ecs.PropagatedTagSource.SERVICE,
                deployment_strategy=self.release.strategy,
                bake_time=self.release.bake_time,
            )
            self.policies.wait_for_roles(service)
            self.membership.bind_service(service, slot)
            self._add_lifecycle_hook(service, slot)
            self.observability.watch_task_count(
                self.cluster.cluster.cluster_name, service.service_name, slot.id or ""
            )
            services[(slot.id or "main").lower()] = service
        return services

    def _add_lifecycle_hook(self, service: ecs.FargateService, slot: MeshSlot) -> None:
        """ECS calls the hook with a role of its own, which may invoke the hook and nothing
        else, through a managed policy the ECS service waits for."""
        hook = self.release.lifecycle_hook
        if hook is None:
            return
        hook_id = f"{slot.id or ''}PostTestTrafficHook"
        role = iam.Role(
            self,
            f"{hook_id}Role",
            assumed_by=iam.ServicePrincipal("ecs.amazonaws.com"),
            description=f"Lets ECS call {self.name}'s post-test-traffic hook",
        )
        policy = iam.ManagedPolicy(
            self,
            f"{hook_id}Policy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"],
                    resources=[hook.function_arn, f"{hook.function_arn}:*"],
                )
            ],
        )
        acknowledge_wildcard_resource(
            policy,
            f"{hook.function_arn}:*",
            reason="ECS may invoke any version or alias of the one hook function.",
        )
        service.add_lifecycle_hook(
            ecs.DeploymentLifecycleLambdaTarget(
                hook,
                hook_id,
                lifecycle_stages=[ecs.DeploymentLifecycleStage.POST_TEST_TRAFFIC_SHIFT],
                role=role.without_policy_updates(),
            )
        )
        service.node.add_dependency(policy)

    def _scale(
        self, slots: list[MeshSlot], scaling: ScalingOptions
    ) -> dict[str, ecs.ScalableTaskCount]:
        """Target tracking on every slot that takes traffic (an idle slot stays at zero)."""
        return {
            key: scaling.apply(self.services[key], self.name)
            for key in ((slot.id or "main").lower() for slot in slots if slot.weight != 0)
        }

    def _wait_for_images(self, image: ServiceImage, release: Release) -> None:
        """Tasks start only once their images are in the repository (copied at deploy)."""
        ready = [spec.image.ready_after for spec in release.slots(image)]
        for service in self.services.values():
            service.node.add_dependency(*(r for r in ready if r is not None))

    def _grant_log_writes(self) -> None:
        """The execution role writes the containers' logs, each group by name."""
        self.policies.add_to_execution(
            *(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
                for log_group in self.observability.log_groups.values()
            )
        )

    # -- what other constructs use ------------------------------------------------------------

    def add_backend(self, backend: MeshedFargateService) -> None:
        """Let this service call ``backend``: the mesh route, and the security group rule on
        both sides (egress here, ingress there, on the backend's port only)."""
        owner = f"MeshedFargateService {self.node.path!r}"
        if not isinstance(backend, MeshedFargateService):
            raise InvalidPropType(
                f"{owner}: backend={backend!r} is not allowed (allowed: a MeshedFargateService)"
            )
        if backend is self:
            raise ValueError(f"{owner}: a service cannot be its own backend")
        problems = Problems(owner)
        _check_call(problems, self, backend)
        problems.raise_if_any()
        self.membership.add_backend(backend.membership)
        self._backends.append(backend)
        backend._callers.append(self)
        # Backends first, unless that would close a loop of calls (see calls.py).
        order_call(self, backend)

    def wait_for(self, other: MeshedFargateService) -> None:
        """Start this service's tasks only after ``other``'s ECS services exist."""
        check_argument(
            f"MeshedFargateService {self.node.path!r}", "other", other, MeshedFargateService
        )
        self.waits_for.append(other)
        for service in self.services.values():
            service.node.add_dependency(*other.services.values())

    def grant_secret_read(self, secret: sm.ISecret) -> None:
        """Let the containers read ``secret`` at run time (and decrypt it, through Secrets
        Manager only): for values that change while tasks run, such as a rotated password,
        which ECS secrets would fix at task start."""
        problems = Problems(f"MeshedFargateService {self.node.path!r}")
        if not problems.of_kind("secret", secret, SECRET):
            raise InvalidPropType(f"{problems.owner}: {problems.problems[0]}")
        self.policies.add_to_task(*secret_read_statements(secret))

    def attach_to_target_group(
        self,
        target_group: elb.IApplicationTargetGroup,
        *,
        load_balancer: ec2.IConnectable,
        alternate_target: ecs.AlternateTarget | None = None,
    ) -> None:
        """Put the app container's port behind ``target_group`` (one load balancer per
        service), reachable from ``load_balancer`` on that port alone; with ECS native
        blue/green, ``alternate_target`` names the group ECS shifts to.

        Everything this adds lives in the service's stack: the security-group rules both
        ways and the ECS service's wait for the listener rule. A load balancer in a stack of
        its own then only points up to nothing, and the service's stack points at it: no
        cycle, where CDK's own ``add_target`` would write the rules on the load balancer's
        side while the ECS service names its target group.
        """
        if self._targeted:
            raise ValueError(
                f"MeshedFargateService {self.node.path!r}: already a load balancer's target "
                "(allowed: one TradingEdge per service)"
            )
        if self.port is None:
            raise ValueError(
                f"MeshedFargateService {self.node.path!r}: a worker (port=None) listens on "
                "nothing (allowed: a service with a port and public=True)"
            )
        check_target(
            f"MeshedFargateService {self.node.path!r}",
            target_group,
            load_balancer,
            alternate_target,
            vpc=self.cluster.vpc,
            blue_green=self.release.behind_load_balancer,
            slots=len(self.services),
        )
        self._targeted = True
        self.node.add_validation(
            NeedsListener(f"MeshedFargateService {self.node.path!r}", target_group)
        )
        self.connections.allow_from(
            load_balancer, ec2.Port.tcp(self.port), "the public service's port only"
        )
        # The group as this stack sees it: registering the target here adds no rules on the
        # load balancer's side (the ones above are all it needs).
        local = elb.ApplicationTargetGroup.from_target_group_attributes(
            self, "LoadBalancerTargetGroup", target_group_arn=target_group.target_group_arn
        )
        Annotations.of(local).acknowledge_warning(
            "@aws-cdk/aws-elbv2:albTargetGroupCannotRegisterConnectable",
            "The service adds its security-group rules itself, in its own stack.",
        )
        local.add_target(
            self.service.load_balancer_target(
                container_name=self.name,
                container_port=self.port,
                alternate_target=alternate_target,
            )
        )
        # ECS rejects a target group that no listener rule forwards to yet.
        self.service.node.add_dependency(target_group.load_balancer_attached)
        ignore_redundant_depends_on(self.service)  # blue/green also names the rules it waits for

    def _security_group_rules(self) -> tuple[int, int]:
        """The (inbound, outbound) rules the platform gives the service's security group: one
        per caller and load balancer in, HTTPS to AWS APIs and one per backend out."""
        return len(self._callers) + int(self._targeted), 1 + len(self._backends)

    @property
    def behind_load_balancer(self) -> bool:
        """Whether a load balancer already targets this service."""
        return self._targeted

    def metric_cpu_utilization(self, **props: typing.Any) -> cloudwatch.Metric:
        """Average CPU of the (blue) slot's tasks, percent, per minute by default."""
        _check_metric_props(self, props)
        return self.service.metric_cpu_utilization(**{"period": _ONE_MINUTE, **props})

    def metric_memory_utilization(self, **props: typing.Any) -> cloudwatch.Metric:
        """Average memory of the (blue) slot's tasks, percent, per minute by default."""
        _check_metric_props(self, props)
        return self.service.metric_memory_utilization(**{"period": _ONE_MINUTE, **props})

    def metric_running_tasks(self) -> list[cloudwatch.IMetric]:
        """Tasks running, one metric per slot (Container Insights)."""
        return [counts.running for counts in self.observability.task_counts]

    def metric_desired_tasks(self) -> list[cloudwatch.IMetric]:
        """Tasks ECS wants, one metric per slot (Container Insights)."""
        return [counts.desired for counts in self.observability.task_counts]

    def metric_error_logs(self) -> cloudwatch.IMetric:
        """ERROR-level lines of the app's JSON logs, summed over 5 minutes."""
        return self.observability.error_logs

    def metric_proxy_5xx(self) -> cloudwatch.IMetric:
        """5xx responses the mesh proxy answered for this service, summed over 5 minutes."""
        return self.observability.proxy_5xx

    @property
    def log_groups(self) -> dict[str, logs.LogGroup]:
        """Log groups by container name."""
        return self.observability.log_groups

    @property
    def alarms(self) -> dict[str, cloudwatch.Alarm]:
        """Alarms by name: ErrorLogs, Proxy5xx, TasksBelowDesired (per slot)."""
        return self.observability.alarms


@jsii.implements(IValidation)
class _NeedsLoadBalancer:
    """At synthesis, once every construct exists: ECS native blue/green needs a load balancer
    in front, or ECS rejects the service at deploy time."""

    def __init__(self, service: MeshedFargateService) -> None:
        self.service = service

    def validate(self) -> list[str]:
        service = self.service
        if service.release.behind_load_balancer and not service.behind_load_balancer:
            return [
                f"MeshedFargateService {service.node.path!r}: release=Release.blue_green() "
                "needs a load balancer in front (allowed: a TradingEdge(service=...) for this "
                "service, or Release.rolling())"
            ]
        return []


def _validate(owner: str, props: Mapping[str, typing.Any]) -> None:
    """Every prop of one call, checked together: types first (they would fail inside jsii),
    then values, then relations with the cluster and the rest of the app."""
    for prop, expected in (
        ("cluster", TradingCluster),
        ("image", ServiceImage),
        ("health_check", HealthCheckOptions),
        ("container", ContainerOptions),
        ("scaling", ScalingOptions),
        ("capacity", CapacityStrategy),
        ("resilience", ResiliencePolicy),
        ("release", Release),
        ("alarm_thresholds", AlarmThresholds),
        ("removal_policy", RemovalPolicy),
    ):
        check_type(owner, prop, props[prop], expected)
    check_removal_policy(owner, props["removal_policy"])
    for required, allowed in (("image", "a ServiceImage"), ("cluster", "a TradingCluster")):
        if props[required] is None:
            raise InvalidPropType(f"{owner}: {required}=None is not allowed (allowed: {allowed})")
    problems = Problems(owner)
    environment, secrets = props["environment"], props["secrets"]
    check_service_props(
        problems,
        **{key: props[key] for key in ("name", "port", "cpu", "memory_mib", "scaling")},
        environment={}
        if environment is None
        else problems.mapping("environment", environment, "variable names to strings"),
        secrets={}
        if secrets is None
        else problems.mapping("secrets", secrets, "variable names to ServiceSecret"),
        desired_count=props["desired_count"],
        log_retention_days=props["log_retention_days"],
    )
    # Service Connect checks the port at synth, and the health check command is written then.
    problems.concrete("port", props["port"], "the mesh and the health check use it at synth")
    problems.encoded_size(
        "environment",
        environment,
        TASK_DEFINITION_BYTES,
        "a task definition is at most 64 KiB, its containers' environment included",
    )
    # The name becomes construct ids, hence logical ids: a token's placeholder would move them.
    problems.concrete(
        "name", props["name"], "the log groups' and secrets' logical ids derive from it"
    )
    hook = getattr(props["release"], "lifecycle_hook", None)
    if hook is not None and hasattr(hook, "function_arn"):
        problems.at_home("release.lifecycle_hook", hook.function_arn, props["scope"])
    for prop in ("public", "readonly_root_filesystem"):
        problems.boolean(prop, props[prop])
    _check_worker(problems, props)
    _check_backends(problems, props["backends"], props["cluster"])
    _check_names(problems, props)
    _check_alarms_can_fire(problems, props)
    problems.raise_if_any()


def _check_worker(problems: Problems, props: Mapping[str, typing.Any]) -> None:
    """A worker (port=None) listens on nothing: its health check must be a command of its
    own (the default probes a port), and nothing can reach it, so it cannot be public."""
    if props["port"] is not None:
        return
    health_check = props["health_check"]
    if health_check is None or health_check.command is None:
        problems.add(
            "health_check",
            health_check,
            "with port=None (a worker), HealthCheckOptions(command=[...]): a command the "
            "image runs to say it is healthy, as there is no port to probe",
        )
    if props["public"] is True:
        problems.add(
            "public",
            True,
            "False with port=None: a worker has no listener for a load balancer to reach",
        )


def _refuse_workers(problems: Problems, prop: str, services: list[MeshedFargateService]) -> None:
    """A backend is called on its port: a worker has none."""
    for service in services:
        if service.port is None:
            problems.add(
                prop,
                service.name,
                f"services with a port; {service.node.path!r} is a worker (port=None), "
                "which listens on nothing and so cannot be called",
            )


def _check_metric_props(service: MeshedFargateService, props: Mapping[str, typing.Any]) -> None:
    """A period CloudWatch takes, named before CDK refuses it without the method's name."""
    if "period" in props:
        problems = Problems(f"MeshedFargateService {service.node.path!r}")
        problems.metric_period("period", props["period"])
        problems.raise_if_any()


def _check_alarms_can_fire(problems: Problems, props: Mapping[str, typing.Any]) -> None:
    """The tasks-below-desired alarm compares desired minus running tasks with its threshold:
    above the most tasks the service can want, it never fires."""
    thresholds, scaling, count = props["alarm_thresholds"], props["scaling"], props["desired_count"]
    if thresholds is None:
        return
    most = (
        count
        if scaling is None and count is not None
        else (scaling or ScalingOptions()).max_capacity
    )
    shown = "desired_count" if scaling is None and count is not None else "scaling.max_capacity"
    problems.at_most(
        "alarm_thresholds.tasks_below_desired",
        thresholds.tasks_below_desired,
        most,
        f"the service wants at most {shown}={most} tasks, so a higher threshold never fires",
    )


def _check_backends(problems: Problems, backends: object, cluster: TradingCluster) -> None:
    """A list of services, each once, on the caller's cluster: another cluster has its own
    namespace and mesh, where this service's proxy cannot reach it."""
    listed = problems.sequence("backends", backends, "MeshedFargateService")
    services = []
    for backend in listed:
        if isinstance(backend, MeshedFargateService):
            services.append(backend)
        else:
            problems.add("backends", backend, "MeshedFargateService instances")
    if len({id(s) for s in services}) != len(services):
        problems.add("backends", [s.name for s in services], "each service once")
    _refuse_workers(problems, "backends", services)
    for backend in services:
        if backend.cluster is not cluster:
            problems.add(
                "backends",
                backend.name,
                f"services on this service's cluster; {backend.node.path!r} runs on "
                f"{backend.cluster.node.path!r}",
            )


def _check_call(
    problems: Problems, caller: MeshedFargateService, backend: MeshedFargateService
) -> None:
    """A call adds an egress rule to the caller's security group and an ingress rule to the
    backend's; each group holds at most the account's quota of each (60 by default)."""
    if backend in caller._backends:
        problems.add("backend", backend.name, "a service not already a backend of this one")
    _refuse_workers(problems, "backend", [backend])
    if backend.cluster is not caller.cluster:
        problems.add(
            "backend",
            backend.name,
            f"a service on this service's cluster; {backend.node.path!r} runs on "
            f"{backend.cluster.node.path!r}",
        )
    limit = quota(caller, "security-group-rules", SECURITY_GROUP_RULES)
    inbound, _ = backend._security_group_rules()
    _, outbound = caller._security_group_rules()
    for side, service, count in (("outbound", caller, outbound), ("inbound", backend, inbound)):
        if count + 1 > limit:
            problems.add(
                "backend",
                backend.name,
                f"a call within the security group quota: {service.node.path!r} would have "
                f"{count + 1} {side} rules, more than {limit} (raise the account's quota and "
                f"set the context {QUOTA_CONTEXT}security-group-rules, or split the service)",
            )


def _check_names(problems: Problems, props: Mapping[str, typing.Any]) -> None:
    """The name, unique among the cluster's services and beside what the mesh derives from
    names; and slots the mesh can weigh."""
    name, cluster = props["name"], props["cluster"]
    mesh = cluster.mesh
    release = props["release"] or Release.rolling()
    slot_ids = [slot.id for slot in release.slots(props["image"])]
    if len(slot_ids) > 1 and not mesh.weighs_slots:
        problems.note(
            "release=Release.weighted(...) weighs blue and green slots, which this cluster's "
            "mesh cannot (allowed: Release.rolling(), or Release.blue_green() behind a "
            "TradingEdge; weighted slots need Mesh.app_mesh())"
        )
    port = props["port"]
    if isinstance(port, int) and not is_token(port) and port in mesh.reserved_ports:
        low, high = min(mesh.reserved_ports), max(mesh.reserved_ports)
        problems.add("port", port, f"a port outside the mesh's own {low} to {high}")
    if props["resilience"] is not None:
        check_resilience(problems, "resilience", props["resilience"], mesh.kind)
    if not isinstance(name, str) or is_token(name):
        return
    if name in mesh.reserved_names:
        taken = ", ".join(repr(n) for n in sorted(mesh.reserved_names))
        problems.add("name", name, f"a name other than the mesh's own {taken}")
    where = "among the services of a cluster (its namespace's discovery names)"
    problems.unique("name", name, cluster, ("service", cluster, name), where)
    for what, generated in mesh.generated_names(name, slot_ids):
        problems.unique(
            "name",
            name,
            cluster,
            mesh.name_key(what, generated),
            f"in the mesh, whose {what} {generated!r} it derives",
        )


__all__ = [
    "FARGATE_CPU_MEMORY",
    "ContainerOptions",
    "HealthCheckOptions",
    "MeshedFargateService",
    "ServiceSecret",
]
