"""TradingCluster: the network, the ECS cluster and the shared services every microservice uses."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import jsii
from aws_cdk import (
    Annotations,
    ArnFormat,
    AspectPriority,
    Aspects,
    Fn,
    IAspect,
    RemovalPolicy,
    Stack,
    Stage,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from ._props import props_owner, takes_props
from ._validation import (
    VPC,
    ObjectKind,
    Problems,
    check_items,
    check_key,
    check_removal_policy,
    check_type,
    claim,
    construct_owner,
    environment_of,
    is_token,
    stack_region,
)
from .compliance import (
    RESTRICT_DEFAULT_SG_PROVIDER,
    acknowledge,
    acknowledge_control,
    deny_grants_but_for_aws_resources,
    drop_provider_depends_on,
)
from .limits import watch_stack_limits
from .mesh import APP_MESH, MUTUAL_TLS, Mesh, MeshBackend, MeshContext, ResiliencePolicy
from .networks import check_vpc_cidr
from .notifications import TOPIC, AlarmNotifications, AlarmSubscription
from .repository import (
    DOCKER_HUB_CACHE_PREFIX,
    PUBLIC_CACHE_PREFIX,
    PullThroughCache,
    registry_names,
)

# The pull-through cache prefix each sidecar mesh claims by default, its factory, and its name.
_CACHE_PREFIXES = {
    APP_MESH: (PUBLIC_CACHE_PREFIX, "Mesh.app_mesh", "App Mesh"),
    MUTUAL_TLS: (DOCKER_HUB_CACHE_PREFIX, "Mesh.mutual_tls", "the mutual-TLS mesh"),
}

DNS_PRIVATE = servicediscovery.NamespaceType.DNS_PRIVATE

AZ_COUNT = 3
"""The platform spans three availability zones, so it survives the loss of one."""

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"

_ECS_MAX_BASE = 100_000
_ECS_MAX_WEIGHT = 1_000

# A VPC's IPv4 block is /16 to /28 (Amazon VPC User Guide, "VPC CIDR blocks"); ours stops at
# /24, since 3 AZs x 3 subnets of at least /28 need 144 addresses. The same page says that the
# link-local block cannot be assigned to a VPC, and that AWS services use 172.17.0.0/16 (the
# Docker bridge of AWS Cloud9 and SageMaker), so a VPC should not.
_UNUSABLE_RANGES = {
    ipaddress.IPv4Network("169.254.0.0/16"): "link-local, which no VPC can use",
    ipaddress.IPv4Network("172.17.0.0/16"): "used by AWS services (Docker's bridge); AWS "
    "advises against it for a VPC",
}

# The key actions CloudWatch Logs needs to encrypt a log group (AWS's documented key policy,
# without the wildcards).
_LOGS_KEY_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
]


@dataclass(frozen=True, kw_only=True)
class VpcOptions:
    """How TradingCluster builds its VPC when none is passed in.

    The subnets are carved from ``cidr`` in this order: public, private, isolated, one of each
    per availability zone.

    Attributes:
        cidr: The VPC's IPv4 CIDR block, /16 to /24. Default: '10.0.0.0/16'.
        availability_zones: Three AZ names. Default: the region's first three AZs, chosen at deploy
            time with ``Fn::GetAZs`` so that synthesis needs no AWS credentials and names no AZ.
        nat_gateways: NAT gateways, 1 to 3. Fewer than one per AZ saves money but loses egress from
            every AZ whose NAT gateway's AZ fails. Default: 3 (one per AZ).
        public_subnet_mask: Prefix length of each public subnet (the load balancer's only).
            Default: 24.
        private_subnet_mask: Prefix length of each private subnet (tasks, with egress through NAT).
            Default: 20.
        isolated_subnet_mask: Prefix length of each isolated subnet (databases, no route out).
            Default: 24.
        flow_log_retention: How long VPC flow logs are kept. Default: one year (PCI DSS 10.7 asks
            for a year).
    """

    cidr: str = "10.0.0.0/16"
    availability_zones: Sequence[str] | None = None
    nat_gateways: int = AZ_COUNT
    public_subnet_mask: int = 24
    private_subnet_mask: int = 20
    isolated_subnet_mask: int = 24
    flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR

    def __post_init__(self) -> None:
        problems = Problems("VpcOptions")
        problems.cidr("cidr", self.cidr, 16, 24)
        if not problems.problems and not is_token(self.cidr):
            _check_usable_range(problems, self.cidr)
        masks = {
            "public_subnet_mask": self.public_subnet_mask,
            "private_subnet_mask": self.private_subnet_mask,
            "isolated_subnet_mask": self.isolated_subnet_mask,
        }
        why = "CDK carves the subnets at synth"
        for prop, mask in masks.items():
            if problems.concrete(prop, mask, why):
                problems.int_range(prop, mask, 16, 28)
        if problems.concrete(
            "nat_gateways", self.nat_gateways, "CDK creates the gateways at synth"
        ):
            problems.int_range("nat_gateways", self.nat_gateways, 1, AZ_COUNT)
        if self.availability_zones is not None:
            _check_azs(problems, self.availability_zones)
        if not isinstance(self.flow_log_retention, logs.RetentionDays):
            problems.add(
                "flow_log_retention", self.flow_log_retention, "an aws_logs.RetentionDays value"
            )
        if not problems.problems and not is_token(self.cidr):
            _check_subnets_fit(problems, self.cidr, list(masks.values()))
        problems.raise_if_any()

    def subnet_configuration(self) -> list[ec2.SubnetConfiguration]:
        return [
            ec2.SubnetConfiguration(
                name="Public",
                subnet_type=ec2.SubnetType.PUBLIC,
                cidr_mask=self.public_subnet_mask,
                # Only the load balancer and NAT gateways live here; neither needs a launch IP.
                map_public_ip_on_launch=False,
            ),
            ec2.SubnetConfiguration(
                name="Private",
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                cidr_mask=self.private_subnet_mask,
            ),
            ec2.SubnetConfiguration(
                name="Isolated",
                subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                cidr_mask=self.isolated_subnet_mask,
            ),
        ]


def _check_usable_range(problems: Problems, cidr: str) -> None:
    network = ipaddress.IPv4Network(cidr)
    for reserved, why in _UNUSABLE_RANGES.items():
        if network.overlaps(reserved):
            problems.add("cidr", cidr, f"a block outside {reserved} ({why})")


def _check_azs(problems: Problems, availability_zones: object) -> None:
    """Three distinct AZ names (tokens such as ``Fn.select`` pass); a list token cannot be
    counted at synth."""
    before = len(problems.problems)
    azs = problems.sequence("availability_zones", availability_zones, "AZ names")
    if len(problems.problems) > before:
        return
    names = [az for az in azs if not is_token(az)]
    if (
        len(azs) != AZ_COUNT
        or len(set(names)) != len(names)
        or not all(isinstance(az, str) and az for az in azs)
    ):
        problems.add("availability_zones", azs, f"exactly {AZ_COUNT} distinct AZ names, or None")


def _check_subnets_fit(problems: Problems, cidr: str, masks: list[int]) -> None:
    """Allocate the subnets as CDK does (in order, each aligned to its size) and check the end."""
    network = ipaddress.IPv4Network(cidr)
    if any(mask < network.prefixlen for mask in masks):
        problems.note(
            f"subnet masks {masks} must each be at least the VPC's prefix /{network.prefixlen}"
        )
        return
    cursor = int(network.network_address)
    for mask in masks:
        size = 2 ** (32 - mask)
        for _ in range(AZ_COUNT):
            cursor = -(-cursor // size) * size  # align up to the subnet's size
            cursor += size
    if cursor > int(network.broadcast_address) + 1:
        problems.note(
            f"cidr={cidr!r} is too small for {AZ_COUNT} AZs x subnets of masks {masks} "
            "(allowed: a larger VPC block or longer subnet masks)"
        )


@dataclass(frozen=True, kw_only=True)
class CapacityStrategy:
    """How tasks are spread over FARGATE and FARGATE_SPOT.

    ``base`` tasks run first on their provider; the rest split by ``weight``. The default keeps
    one on-demand task per service so a Spot reclaim never takes a service to zero, and runs four
    of every five further tasks on Spot.

    Attributes:
        fargate_base: Tasks placed on FARGATE before weights apply, 0 to 100000. Default: 1.
        fargate_weight: Relative share of FARGATE, 0 to 1000. Default: 1.
        spot_base: Tasks placed on FARGATE_SPOT before weights apply, 0 to 100000. Default: 0.
        spot_weight: Relative share of FARGATE_SPOT, 0 to 1000. Default: 4.
    """

    fargate_base: int = 1
    fargate_weight: int = 1
    spot_base: int = 0
    spot_weight: int = 4

    def __post_init__(self) -> None:
        problems = Problems("CapacityStrategy")
        problems.int_range("fargate_base", self.fargate_base, 0, _ECS_MAX_BASE)
        problems.int_range("spot_base", self.spot_base, 0, _ECS_MAX_BASE)
        problems.int_range("fargate_weight", self.fargate_weight, 0, _ECS_MAX_WEIGHT)
        problems.int_range("spot_weight", self.spot_weight, 0, _ECS_MAX_WEIGHT)
        shares = (self.fargate_base, self.spot_base, self.fargate_weight, self.spot_weight)
        if not problems.problems and not any(is_token(share) for share in shares):
            if self.fargate_base > 0 and self.spot_base > 0:
                problems.note(
                    f"fargate_base={self.fargate_base} and spot_base={self.spot_base}: ECS "
                    "allows a base on only one capacity provider (allowed: set one to 0)"
                )
            if self.fargate_weight == 0 and self.spot_weight == 0:
                problems.note(
                    "fargate_weight=0 and spot_weight=0: no task could be placed "
                    "(allowed: at least one weight above 0)"
                )
        problems.raise_if_any()

    def to_strategy(self) -> list[ecs.CapacityProviderStrategy]:
        """The strategy in the form ECS takes, leaving out providers with nothing to do."""
        shares = [
            (FARGATE, self.fargate_base, self.fargate_weight),
            (FARGATE_SPOT, self.spot_base, self.spot_weight),
        ]
        return [
            ecs.CapacityProviderStrategy(capacity_provider=name, base=base or None, weight=weight)
            for name, base, weight in shares
            if base or weight
        ]


CLUSTER = ObjectKind(
    "cluster_arn",
    "an aws_ecs.ICluster",
    "ecs.Cluster.from_cluster_attributes(scope, id, cluster_name=..., vpc=...)",
    ("arn:aws:ecs:",),
)
NAMESPACE = ObjectKind(
    "namespace_arn",
    "an aws_servicediscovery.INamespace",
    "servicediscovery.PrivateDnsNamespace.from_private_dns_namespace_attributes(scope, id, "
    "namespace_name=..., namespace_id=..., namespace_arn=...)",
    ("ns-", "arn:aws:servicediscovery:"),
)
DEFAULT_NAMESPACE = "trading.local"


@dataclass(frozen=True, kw_only=True)
class TradingClusterProps:
    """What a TradingCluster builds, and which parts of an existing platform it adopts.

    Bring your own platform: a team with a VPC, an ECS cluster, a Cloud Map namespace, a KMS
    key or an alarm topic of its own passes them (``vpc``, ``cluster``, ``namespace``,
    ``key``, ``alarm_topic``) and the cluster builds only the rest. The library then checks
    what it can see: a VPC's AZs and private subnets, the flow logs of a VPC of the same app
    (a warning without one), the FARGATE and FARGATE_SPOT capacity providers of a cluster of
    the same app (it adds them). What an imported part does is the owner's to keep: an
    imported cluster must have FARGATE and FARGATE_SPOT associated (the services ask for
    them) and Container Insights on (the task-count alarms read it), an imported VPC should
    log its flows, a namespace must be in the VPC.

    Attributes:
        vpc: An existing VPC with at least three AZs and private subnets with egress (required
            with ``cluster``: the cluster's own). Its flow logs are its owner's: a VPC built in
            the same app without one gets a warning; an imported VPC cannot be checked.
            Default: a new VPC built from ``vpc_options``, with flow logs.
        vpc_options: The shape of the new VPC. Default: ``VpcOptions()``.
        cluster: An existing ECS cluster in ``vpc``, e.g.
            ``ecs.Cluster.from_cluster_attributes(...)``. It must have the FARGATE and
            FARGATE_SPOT capacity providers (added to an ``ecs.Cluster`` of the same app, not
            checkable on an imported one) and Container Insights on. Default: a new cluster
            with both.
        namespace: An existing Cloud Map namespace in the VPC that services register in: a
            private DNS namespace for the sidecar meshes (mutual TLS, App Mesh), any for
            Service Connect. Default: the ``cluster``'s default namespace, or a new private
            DNS namespace named ``namespace_name``.
        cluster_name: The new ECS cluster's name. Default: a name CloudFormation generates.
        namespace_name: The new private DNS namespace's name. Default: 'trading.local'.
        capacity: The default capacity provider strategy of the cluster's services.
            Default: ``CapacityStrategy()`` (FARGATE base 1 weight 1, FARGATE_SPOT weight 4).
        container_insights: The new cluster's Container Insights level. Default: ENHANCED.
        key: The platform KMS key. An existing key must already let CloudWatch Logs use it.
            Default: a new key with rotation on.
        alarm_topic: An existing SNS topic every alarm notifies; its policy must let
            cloudwatch.amazonaws.com publish, and its key (if any) let CloudWatch use it.
            Default: a new topic encrypted with ``key``.
        interface_endpoints: AWS services reached through interface endpoints with private DNS
            in the private subnets, so that traffic to them stays in the VPC (for example
            ``SECRETS_MANAGER`` for rotation functions). Default: none (through NAT).
        mesh: The service mesh services join, and their default traffic policy.
            Default: ``Mesh.service_connect()`` (App Mesh is past its end of support; choose
            ``Mesh.app_mesh()`` to describe an existing App Mesh platform).
        alarm_subscriptions: Who hears the platform's alarms besides its topic:
            ``AlarmSubscription.email(...)`` or ``AlarmSubscription.topic(arn)``.
            Default: none (subscribe to ``alarm_topic`` yourself).
        removal_policy: What happens to the key and flow log group when the stack is deleted
            or they are replaced. The default keeps them once created, while a failed first
            create still rolls back to nothing (CloudFormation's RetainExceptOnCreate), so a
            retry never collides with a leftover. Default: RETAIN_ON_UPDATE_OR_DELETE.
    """

    vpc: ec2.IVpc | None = None
    vpc_options: VpcOptions | None = None
    cluster: ecs.ICluster | None = None
    namespace: servicediscovery.INamespace | None = None
    cluster_name: str | None = None
    namespace_name: str | None = None
    capacity: CapacityStrategy | None = None
    container_insights: ecs.ContainerInsights | None = None
    key: kms.IKey | None = None
    alarm_topic: sns.ITopic | None = None
    interface_endpoints: Sequence[ec2.InterfaceVpcEndpointAwsService] = ()
    mesh: Mesh | None = None
    alarm_subscriptions: Sequence[AlarmSubscription] = ()
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE

    def __post_init__(self) -> None:
        owner = props_owner("TradingClusterProps")
        check_type(owner, "vpc_options", self.vpc_options, VpcOptions)
        check_type(owner, "capacity", self.capacity, CapacityStrategy)
        check_type(owner, "container_insights", self.container_insights, ecs.ContainerInsights)
        check_removal_policy(owner, self.removal_policy)
        check_type(owner, "mesh", self.mesh, Mesh)
        problems = Problems(owner)
        subscriptions = check_items(
            problems, "alarm_subscriptions", self.alarm_subscriptions, AlarmSubscription
        )
        pairs = [(s.kind, s.target) for s in subscriptions]
        if len(set(pairs)) != len(pairs):
            # CDK names an SNS subscription after its endpoint: a second one fails with
            # SubscriptionAlreadyExistsUnder.
            problems.add("alarm_subscriptions", [t for _, t in pairs], "each subscription once")
        if self.vpc is not None and self.vpc_options is not None:
            problems.note(
                "vpc and vpc_options were both given (allowed: an existing vpc, or "
                "vpc_options to build a new one, not both)"
            )
        if self.vpc is not None and problems.of_kind("vpc", self.vpc, VPC):
            _check_existing_vpc(problems, self.vpc)
        if self.cluster_name is not None:
            problems.pattern(
                "cluster_name",
                self.cluster_name,
                r"[A-Za-z0-9_-]{1,255}",
                "1 to 255 letters, digits, hyphens and underscores",
            )
        if self.namespace_name is not None:
            problems.dns_name("namespace_name", self.namespace_name)
        endpoints = check_items(
            problems,
            "interface_endpoints",
            self.interface_endpoints,
            ec2.InterfaceVpcEndpointAwsService,
        )
        if endpoints and self.vpc is not None and hasattr(self.vpc, "vpc_id"):
            check_vpc_cidr(
                problems, "vpc", self.vpc, "interface_endpoints admit HTTPS from the VPC's CIDR"
            )
        names = [endpoint.short_name for endpoint in endpoints]
        if len(set(names)) != len(names):
            problems.add("interface_endpoints", names, "each service at most once")
        _check_adopted(problems, self)
        problems.raise_if_any()

    @property
    def sidecar_mesh(self) -> bool:
        """Whether the mesh finds tasks through Cloud Map DNS records (not Service Connect)."""
        return self.mesh is not None and self.mesh.kind in (APP_MESH, MUTUAL_TLS)


def _check_adopted(problems: Problems, props: TradingClusterProps) -> None:
    """An adopted cluster, namespace or topic: of the right kind, and without the props that
    would shape one of ours."""
    if props.cluster is not None and problems.of_kind("cluster", props.cluster, CLUSTER):
        adopted = "an existing cluster, which has its own"
        if props.vpc is None:
            problems.add("vpc", None, "with an existing cluster, the cluster's VPC")
        for prop in ("vpc_options", "cluster_name", "container_insights"):
            if getattr(props, prop) is not None:
                problems.add(prop, getattr(props, prop), f"None with {adopted}")
        if props.namespace is None and props.cluster.default_cloud_map_namespace is None:
            problems.add(
                "namespace",
                None,
                f"with an existing cluster that has no default namespace, {NAMESPACE.allowed} "
                f"({NAMESPACE.from_string})",
            )
    if props.namespace is not None and problems.of_kind("namespace", props.namespace, NAMESPACE):
        if props.namespace_name is not None:
            problems.add("namespace_name", props.namespace_name, "None with an existing namespace")
        kind = props.namespace.type
        if props.sidecar_mesh and not is_token(kind) and kind != DNS_PRIVATE:
            problems.add(
                "namespace",
                props.namespace.node.path,
                "a private DNS namespace with this mesh, which finds tasks by their DNS "
                "records (an HTTP or public namespace suits Mesh.service_connect() only)",
            )
    if props.alarm_topic is not None:
        problems.of_kind("alarm_topic", props.alarm_topic, TOPIC)


def _check_in_app(scope: Construct, owner: str, props: TradingClusterProps) -> None:
    """The checks a props object cannot make alone: relations with the stack's region and
    with the rest of the app."""
    problems = Problems(owner)
    if props.key is not None:
        check_key(problems, scope, props.key)
    for subscription in props.alarm_subscriptions:
        if subscription.kind == "topic":
            # An alarm action's topic must be in the alarm's region (PutMetricAlarm rejects
            # another with "Invalid region <r> specified. Only <alarm region> is supported").
            problems.at_home("alarm_subscriptions", subscription.target, scope)
    if props.alarm_topic is not None:
        problems.at_home("alarm_topic", props.alarm_topic.topic_arn, scope)
    mesh = props.mesh
    if mesh is not None and mesh.tls_authority_arn is not None:
        # A Private CA issues for Service Connect in its own region and partition only.
        problems.at_home("mesh.tls_authority_arn", mesh.tls_authority_arn, scope)
    if props.vpc_options is not None and props.vpc_options.availability_zones is not None:
        _check_az_region(problems, scope, props.vpc_options.availability_zones)
    for prop, value, name_key, where in _unique_names(scope, props):
        problems.unique(prop, value, scope, name_key, where)
    problems.raise_if_any()


def _check_az_region(problems: Problems, scope: Construct, azs: Sequence[str]) -> None:
    """AZ names start with their region's name (us-east-1a, or the Local Zone us-west-2-lax-1a)."""
    region = stack_region(scope)
    if region is None or isinstance(azs, str) or is_token(azs):
        return
    for az in azs:
        if isinstance(az, str) and not is_token(az) and not az.startswith(region):
            problems.add(
                "availability_zones", az, f"AZs of the stack's region, such as '{region}a'"
            )


def _own_names(scope: Construct, props: TradingClusterProps) -> list[tuple[object, ...]]:
    """The keys the cluster itself holds (its pull-through cache holds the cache's)."""
    names = _unique_names(scope, props)
    return [key for prop, _, key, _ in names if prop not in _CACHE_PROPS]


def _unique_names(
    scope: Construct, props: TradingClusterProps
) -> list[tuple[str, object, tuple[object, ...], str]]:
    """The names of a cluster that AWS keeps unique: (prop, value, registry key, where)."""
    env = environment_of(scope)
    if env is None:
        return []
    names: list[tuple[str, object, tuple[object, ...], str]] = []
    if props.cluster_name is not None:
        # ECS CreateCluster: "you can create your own cluster with a unique name"; clusters,
        # like their ARNs (arn:aws:ecs:<region>:<account>:cluster/<name>), are regional.
        where = "among the ECS clusters of an account and region"
        names.append(
            ("cluster_name", props.cluster_name, ("ecs-cluster", *env, props.cluster_name), where)
        )
    vpc_id = getattr(props.vpc, "vpc_id", None)
    if vpc_id is not None and props.namespace is None and props.cluster is None:
        # Cloud Map creates a Route 53 private hosted zone of the namespace's name in the VPC,
        # and Route 53 refuses a second one there (CreateHostedZone: ConflictingDomainExists).
        where = "among the private DNS namespaces of one VPC"
        namespace_name = props.namespace_name or DEFAULT_NAMESPACE
        names.append(
            ("namespace_name", namespace_name, ("dns-namespace", vpc_id, namespace_name), where)
        )
    mesh, mesh_name = props.mesh, getattr(props.mesh, "mesh_name", None)
    if mesh_name is not None:
        # A mesh is named by its ARN, arn:aws:appmesh:<region>:<account>:mesh/<name>.
        where = "among the App Mesh meshes of an account and region"
        names.append(("mesh.mesh_name", mesh_name, ("app-mesh", *env, mesh_name), where))
    names.extend(_cache_prefix_names(scope, mesh))
    return [name for name in names if not is_token(name[1])]


# The props a cluster names its mesh's pull-through cache prefix by (the cache claims it).
_CACHE_PROPS = ("mesh", "mesh.cache_prefix")


def _cache_prefix_names(
    scope: Construct, mesh: object
) -> list[tuple[str, object, tuple[object, ...], str]]:
    """Envoy comes through the cluster's pull-through cache, whose prefix is one per registry:
    the cache claims it; a second cluster of the same mesh and prefix meets it here, told the
    way out (a prefix of its own)."""
    kind = getattr(mesh, "kind", None)
    if kind not in _CACHE_PREFIXES:
        return []
    default, factory, described = _CACHE_PREFIXES[kind]
    own = getattr(mesh, "cache_prefix", None)
    prefix = own or default
    prop, value = ("mesh.cache_prefix", own) if own else ("mesh", f"{factory}()")
    where = (
        f"per registry, as the prefix of PullThroughCache(prefix={prefix!r}), the cache "
        f"{described} pulls Envoy through and each platform on it makes: one such platform "
        "per account and region, unless each has a prefix of its own, as with "
        f"{factory}(cache_prefix={_another(prefix)!r})"
    )
    return [
        (prop, value, cache_key, where)
        for cache_key in registry_names(scope, "pull-through-prefix", prefix)
    ]


def _another(prefix: str) -> str:
    """A prefix a second platform could take, within ECR's 30 characters."""
    return f"{prefix[:28].rstrip('._/-')}-2"


class TradingCluster(Construct):
    """The platform's foundation: a three-AZ VPC, an ECS cluster on Fargate and Fargate Spot,
    a private Cloud Map namespace, the KMS key that encrypts the platform's data and the
    topic its alarms notify.

    Each part can be an existing one instead (see ``TradingClusterProps``): pass ``vpc`` to
    build into an existing network (or ``vpc_options`` to shape a new one; not both), and
    ``cluster``, ``namespace``, ``key`` and ``alarm_topic`` to adopt a team's own, service
    by service.
    """

    @takes_props(TradingClusterProps)
    def __init__(self, scope: Construct, id: str, props: TradingClusterProps) -> None:
        """Build the platform's missing parts in ``scope``; every prop is a field of
        ``TradingClusterProps``, checked before anything is built."""
        _check_in_app(scope, construct_owner("TradingCluster", scope.node.path, id), props)
        super().__init__(scope, id)
        watch_stack_limits(self)
        claim(self, *_own_names(scope, props))

        self.props: TradingClusterProps = props
        """What the cluster was built from."""

        self.service_names: set[str] = set()
        """Names of the services on this cluster: each must be unique in the namespace."""

        self.capacity: CapacityStrategy = props.capacity or CapacityStrategy()
        """The cluster's default capacity provider strategy."""

        self.key: kms.IKey = props.key or self._platform_key(props.removal_policy)
        """The KMS key for the platform's log groups, secrets and repositories."""

        self.flow_log_group: logs.ILogGroup | None = None
        """Where VPC flow logs go; None when the VPC was passed in."""

        self.vpc: ec2.IVpc = props.vpc or self._new_vpc(
            props.vpc_options or VpcOptions(), props.removal_policy
        )
        """Public subnets for the load balancer, private ones for tasks, isolated for data."""

        self.cluster: ecs.ICluster = props.cluster or self._ecs_cluster(props)
        """The ECS cluster, with FARGATE and FARGATE_SPOT and a default strategy over them."""
        self._watch_adopted(props)

        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {
            endpoint.short_name: self._interface_endpoint(endpoint, props.vpc_options)
            for endpoint in props.interface_endpoints
        }
        """The interface endpoints by service short name (e.g. 'secretsmanager')."""

        namespace = props.namespace or self.cluster.default_cloud_map_namespace
        assert namespace is not None  # the props refuse a cluster with neither
        self.namespace: servicediscovery.INamespace = namespace
        """The Cloud Map namespace in the VPC that services register in."""

        self.alarms: AlarmNotifications = AlarmNotifications(
            self,
            "Alarms",
            key=self.key,
            topic=props.alarm_topic,
            subscriptions=list(props.alarm_subscriptions),
        )
        """Where the platform's alarms notify; ``alarms.notify(alarm)`` wires one more."""
        self.alarm_topic: sns.ITopic = self.alarms.topic
        """Where every alarm of the platform notifies (a topic of ours is encrypted with the
        platform key, and the platform's CloudWatch alarms may publish to it)."""

        mesh = props.mesh or Mesh.service_connect()
        self.resilience: ResiliencePolicy = mesh.resilience
        """The traffic policy services get unless they set their own."""
        self.mesh: MeshBackend = mesh._build(
            self,
            "Mesh",
            MeshContext(
                namespace=namespace,
                key=self.key,
                vpc=self.vpc,
                cluster=self.cluster,
                alarms=self.alarms,
            ),
        )
        """The mesh backend services join."""
        self.public_images: PullThroughCache | None = self.mesh.public_images
        """The pull-through cache sidecar images come through (App Mesh's Envoy); None when
        the mesh runs no sidecar of ours."""

    def _watch_adopted(self, props: TradingClusterProps) -> None:
        """What can be seen of adopted parts built in the same app: an ``ecs.Cluster`` gets
        the FARGATE and FARGATE_SPOT capacity providers its services ask for (and they wait
        for them); an ``ec2.Vpc`` is checked for flow logs at synthesis."""
        if isinstance(props.cluster, ecs.Cluster):
            props.cluster.enable_fargate_capacity_providers()
            Aspects.of(Stage.of(self) or self.node.root).add(
                _ServicesAfterCapacityProviders(props.cluster), priority=AspectPriority.READONLY
            )
        if isinstance(props.vpc, ec2.Vpc):
            Aspects.of(Stage.of(self) or self.node.root).add(
                _FlowLogsOf(self, props.vpc), priority=AspectPriority.READONLY
            )

    def _ecs_cluster(self, props: TradingClusterProps) -> ecs.Cluster:
        insights = props.container_insights or ecs.ContainerInsights.ENHANCED
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            cluster_name=props.cluster_name,
            container_insights_v2=insights,
            enable_fargate_capacity_providers=True,
            default_cloud_map_namespace=None
            if props.namespace is not None
            else ecs.CloudMapNamespaceOptions(
                name=props.namespace_name or DEFAULT_NAMESPACE,
                type=servicediscovery.NamespaceType.DNS_PRIVATE,
                vpc=self.vpc,
            ),
        )
        cluster.add_default_capacity_provider_strategy(self.capacity.to_strategy())
        if insights == ecs.ContainerInsights.ENHANCED:
            acknowledge_control(
                cluster,
                "Container Insights is on, at its 'enhanced' level (the default): it collects "
                "every metric 'enabled' does and adds task- and container-level ones; the "
                "control reads only the value 'enabled' as on.",
                "CT.ECS.PR.2",
            )
        Aspects.of(Stage.of(self) or self.node.root).add(
            _ServicesAfterCapacityProviders(cluster), priority=AspectPriority.READONLY
        )
        return cluster

    def _interface_endpoint(
        self, service: ec2.InterfaceVpcEndpointAwsService, options: VpcOptions | None
    ) -> ec2.InterfaceVpcEndpoint:
        """An endpoint in the private subnets that admits HTTPS from the VPC's own range."""
        endpoint = self.vpc.add_interface_endpoint(
            f"{service.short_name.title().replace('.', '').replace('-', '')}Endpoint",
            service=service,
            private_dns_enabled=True,
            open=False,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        # A literal range where we know it, so compliance rules can read the rule.
        cidr = (options or VpcOptions()).cidr if self.flow_log_group else self.vpc.vpc_cidr_block
        endpoint.connections.allow_default_port_from(
            ec2.Peer.ipv4(cidr), "HTTPS from inside the VPC"
        )
        return endpoint

    def _platform_key(self, removal_policy: RemovalPolicy) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            description="trading platform: logs, secrets and container images",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        stack = Stack.of(self)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=_LOGS_KEY_ACTIONS,
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # CT.KMS.PR.3: grants only through an AWS service for a resource of the account (ECR
        # creates its repositories' grants so, through the pull-through cache's creation role
        # too; Secrets Manager, CloudWatch Logs, SNS and SQS use the key without grants).
        key.add_to_resource_policy(deny_grants_but_for_aws_resources())
        return key

    def _new_vpc(self, options: VpcOptions, removal_policy: RemovalPolicy) -> ec2.Vpc:
        azs = options.availability_zones or [Fn.select(i, Fn.get_azs()) for i in range(AZ_COUNT)]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(options.cidr),
            availability_zones=list(azs),
            nat_gateways=options.nat_gateways,
            subnet_configuration=options.subnet_configuration(),
            restrict_default_security_group=True,
        )
        log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=options.flow_log_retention,
            encryption_key=self.key,
            removal_policy=removal_policy,
        )
        role, policy = self._flow_log_role(log_group)
        flow_log = vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group, role),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        # CreateFlowLogs checks that the role may write to the group: its policy comes first.
        flow_log.node.add_dependency(policy)
        self.flow_log_group = log_group
        drop_provider_depends_on(Stack.of(self), RESTRICT_DEFAULT_SG_PROVIDER)
        provider = Stack.of(self).node.try_find_child(RESTRICT_DEFAULT_SG_PROVIDER)
        if provider is not None:
            acknowledge(
                provider,
                "aws-cdk-lib's provider that removes the rules of the VPC's default security "
                "group builds its role with an inline policy and takes no role of ours. The "
                "policy names only the default security groups of this stack's VPCs, is "
                "created with the role, before the function, and the function runs only "
                "while CloudFormation creates or deletes a VPC.",
                "DeployReadiness::custom-resource-managed-policies",
            )
            acknowledge_control(
                provider,
                "aws-cdk-lib's provider that removes the rules of the VPC's default security "
                "group (one per stack) only calls the EC2 API while CloudFormation creates or "
                "deletes a VPC; aws-cdk-lib gives it no VPC setting, and inside the VPC it "
                "would depend on the network it is configuring.",
                "CT.LAMBDA.PR.3",
            )
        for subnet in vpc.public_subnets:
            acknowledge(
                subnet.node.find_child("DefaultRoute"),
                "A public subnet's route to the internet gateway is what makes it public; only "
                "the internet-facing ALB and the NAT gateways live here, tasks and data run in "
                "private and isolated subnets.",
                "NIST.800.53.R5::NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW",
                "PCI.DSS.321::PCI.DSS.321-VPCNoUnrestrictedRouteToIGW",
            )
        return vpc

    def _flow_log_role(self, log_group: logs.LogGroup) -> tuple[iam.IRole, iam.ManagedPolicy]:
        """A role with a managed (not inline) policy that writes to this one log group."""
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "FlowLogRole",
            assumed_by=iam.ServicePrincipal(
                "vpc-flow-logs.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Lets VPC Flow Logs write to the platform's flow log group",
        )
        policy = iam.ManagedPolicy(
            self,
            "FlowLogPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    # A log group's Arn attribute ends in ":*", which covers its streams.
                    resources=[log_group.log_group_arn],
                )
            ],
        )
        # The flow log construct would add its grant as an inline policy; ours covers it.
        return role.without_policy_updates(), policy


@jsii.implements(IAspect)
class _ServicesAfterCapacityProviders:
    """Every ECS service on the cluster waits for the cluster's capacity providers.

    CreateService refuses a capacity provider strategy whose providers are not yet associated
    with the cluster, and so does a service that leans on the cluster's default strategy.
    CloudFormation orders only what a reference or DependsOn says, and a service names the
    cluster, not the AWS::ECS::ClusterCapacityProviderAssociations that aws-cdk-lib adds to
    it at synth (with an aspect, hence this one, which runs after it). Services of any stack
    of the stage are found: a service stack then depends on the cluster's, as it already
    does.
    """

    def __init__(self, cluster: ecs.Cluster) -> None:
        self._cluster = cluster

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, ecs.BaseService) or node.cluster is not self._cluster:
            return
        for child in self._cluster.node.children:
            if isinstance(child, ecs.CfnClusterCapacityProviderAssociations):
                node.node.add_dependency(child)


@jsii.implements(IAspect)
class _FlowLogsOf:
    """A VPC of the app that a TradingCluster adopts should log its flows, as the VPCs the
    platform builds do (PCI DSS 10): at synthesis, once every construct exists, a warning when
    no flow log of the app names it. An imported VPC's flow logs cannot be seen."""

    def __init__(self, cluster: TradingCluster, vpc: ec2.Vpc) -> None:
        self._cluster = cluster
        self._vpc = vpc

    def visit(self, node: IConstruct) -> None:
        if node is not self._cluster:
            return
        vpc_id = self._vpc.vpc_id
        logged = any(
            isinstance(child, ec2.CfnFlowLog) and child.resource_id == vpc_id
            for child in self._vpc.node.root.node.find_all()
        )
        if not logged:
            Annotations.of(self._cluster).add_warning_v2(
                "trading-constructs:vpc-without-flow-logs",
                f"The VPC {self._vpc.node.path!r} has no flow log: add one "
                "(vpc.add_flow_log(...)) so that its traffic is recorded, as the VPC a "
                "TradingCluster builds does.",
            )


# What ``Vpc.from_lookup`` returns while its context value is missing: CDK synthesizes once with
# this stand-in (2 AZs named dummy1a, dummy1b) and records the lookup, then the CDK CLI looks
# the VPC up, stores it in cdk.context.json and synthesizes again with the real VPC.
_LOOKUP_PLACEHOLDER_VPC_ID = "vpc-12345"


def is_lookup_placeholder(vpc: ec2.IVpc) -> bool:
    """True for ``Vpc.from_lookup``'s stand-in before the lookup ran: checked on the second
    pass, with the VPC the lookup found."""
    vpc_id = vpc.vpc_id
    azs = vpc.availability_zones
    return (
        not is_token(vpc_id)
        and vpc_id == _LOOKUP_PLACEHOLDER_VPC_ID
        and not is_token(azs)
        and all(az.startswith("dummy") for az in azs)
    )


def _check_existing_vpc(problems: Problems, vpc: ec2.IVpc) -> None:
    if is_lookup_placeholder(vpc):
        return
    azs = vpc.availability_zones
    if not is_token(azs) and len(azs) < AZ_COUNT:
        problems.add(
            "vpc", f"{vpc.node.path} in {len(azs)} AZs", f"a VPC in at least {AZ_COUNT} AZs"
        )
    if not vpc.private_subnets:
        problems.add(
            "vpc",
            f"{vpc.node.path} without private subnets",
            "a VPC with private subnets with egress",
        )


__all__ = ["AZ_COUNT", "CapacityStrategy", "TradingCluster", "TradingClusterProps", "VpcOptions"]
