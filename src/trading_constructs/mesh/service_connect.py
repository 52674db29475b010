"""The ECS Service Connect backend: AWS's successor to App Mesh, and what deploys today.

ECS injects and manages the Service Connect proxy itself (its image comes from AWS, not from a
repository of ours); services find each other by their discovery names in the namespace. Service
Connect's proxy retries connection failures and ejects failing hosts on its own; what it lets us
set per service are the timeouts, which come from the service's ResiliencePolicy. Any other
field of the policy set to other than its default is refused: it would be ignored.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from ..policies import ecs_infrastructure_role
from .backend import MeshBackend, MeshMember, MeshMembership, MeshSlot
from .resilience import SERVICE_CONNECT_HONOURS, SERVICE_CONNECT_NOTE

PROXY_CONTAINER = "service-connect"
PROXY_MEMORY_MIB = 64
"""What the app leaves for the proxy ECS adds to each task (AWS recommends at least 64 MiB
more task memory for it): the proxy is not in the task definition to reserve it itself."""


class ServiceConnectBackend(MeshBackend):
    """Service Connect in the cluster's private DNS namespace. With a Private CA, every
    service but a public one (a load balancer's target) serves TLS; callers' proxies follow
    each server's setting, so calling a public service stays plain HTTP."""

    # ECS: "Existing tasks can't resolve and connect to the new endpoint."
    resolves_endpoints_at_start = True
    honoured_resilience = SERVICE_CONNECT_HONOURS
    resilience_note = SERVICE_CONNECT_NOTE
    # The proxy's log group is keyed by this name beside the app's, which is keyed by its own.
    reserved_names = frozenset({PROXY_CONTAINER})

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namespace: servicediscovery.INamespace,
        tls_authority_arn: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.namespace = namespace
        self.tls: ecs.ServiceConnectTlsConfiguration | None = None
        """TLS between services, with certificates from an AWS Private CA; None for none."""
        if tls_authority_arn is not None:
            role = ecs_infrastructure_role(
                self,
                "TlsRole",
                policy_name="service-role/"
                "AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity",
                description="Lets ECS issue Service Connect TLS certificates from the Private CA",
                reason="The role ECS assumes to issue and rotate Service Connect certificates "
                "from the Private CA",
            )
            # ECS keeps the issued private keys encrypted with a key of its own (no kms_key):
            # a customer key would need a key policy for ECS's role that AWS does not pin down.
            self.tls = ecs.ServiceConnectTlsConfiguration(
                aws_pca_authority_arn=tls_authority_arn, role=role
            )

    @property
    def kind(self) -> str:
        return "service-connect"

    @property
    def sidecar_memory_mib(self) -> int:
        return PROXY_MEMORY_MIB

    def join(self, member: MeshMember) -> ServiceConnectMembership:
        return ServiceConnectMembership(member, self)


class ServiceConnectMembership(MeshMembership):
    """One service in Service Connect: a server under its discovery name, and a client."""

    def __init__(self, member: MeshMember, backend: ServiceConnectBackend) -> None:
        if len(member.slots) > 1:
            raise ValueError(
                f"MeshedFargateService {member.scope.node.path!r}: release=Release.weighted(...) "
                "weighs blue and green slots in App Mesh, which Service Connect cannot (allowed: "
                "Release.rolling(), or Release.blue_green() for ECS native blue/green behind a "
                "TradingEdge)"
            )
        super().__init__(member)
        self.backend = backend

    def add_backend(self, backend: MeshMembership) -> None:
        """Every Service Connect service is a client of the whole namespace: nothing to add
        beyond the security group rule the service writes, and the backend's alarm on its
        5xx responses, which has data now that it has a caller."""
        backend.member.observability.alarm_on_proxy_5xx()

    def bind_service(self, service: ecs.FargateService, slot: MeshSlot) -> None:
        member = self.member
        if member.port is None:
            # A worker is a client only: its proxy resolves the namespace, serves nothing.
            service.enable_service_connect(
                namespace=self.backend.namespace.namespace_arn,
                log_driver=self._log_driver(),
            )
            return
        # Service Connect publishes its own request metrics in AWS/ECS.
        member.observability.publish_proxy_5xx(
            cloudwatch.Metric(
                namespace="AWS/ECS",
                metric_name="HTTPCode_Target_5XX_Count",
                dimensions_map={"TargetDiscoveryName": member.name},
                statistic="Sum",
                period=Duration.minutes(5),
            )
        )
        service.enable_service_connect(
            namespace=self.backend.namespace.namespace_arn,
            services=[
                ecs.ServiceConnectService(
                    port_mapping_name=member.name,
                    discovery_name=member.name,
                    # the name callers use, as on App Mesh: <service>.<namespace>
                    dns_name=f"{member.name}.{self.backend.namespace.namespace_name}",
                    port=member.port,
                    per_request_timeout=member.resilience.per_request_timeout,
                    idle_timeout=member.resilience.idle_timeout,
                    # A public service's port is the load balancer's target, health-checked in
                    # plain HTTP: TLS there would keep it unhealthy for ever.
                    tls=None if member.public else self.backend.tls,
                )
            ],
            log_driver=self._log_driver(),
            access_log_configuration=ecs.ServiceConnectAccessLogConfiguration(
                format=ecs.ServiceConnectAccessLogFormat.JSON, include_query_parameters=False
            ),
        )

    def _log_driver(self) -> ecs.LogDriver:
        """The proxy's logs, in a log group of the service's own."""
        return ecs.LogDrivers.aws_logs(
            stream_prefix=PROXY_CONTAINER,
            log_group=self.member.observability.log_group(PROXY_CONTAINER),
        )
