"""The ECS Service Connect backend: AWS's successor to App Mesh, and what deploys today.

ECS injects and manages the Service Connect proxy itself (its image comes from AWS, not from a
repository of ours); services find each other by their discovery names in the namespace. Service
Connect's proxy retries connection failures and ejects failing hosts on its own; what it lets us
set per service are the timeouts, which come from the service's ResiliencePolicy.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from .backend import MeshBackend, MeshMember, MeshMembership, MeshSlot

PROXY_CONTAINER = "service-connect"


class ServiceConnectBackend(MeshBackend):
    """Service Connect in the cluster's private DNS namespace."""

    def __init__(
        self, scope: Construct, id: str, *, namespace: servicediscovery.PrivateDnsNamespace
    ) -> None:
        super().__init__(scope, id)
        self.namespace = namespace

    @property
    def kind(self) -> str:
        return "service-connect"

    def join(self, member: MeshMember) -> ServiceConnectMembership:
        return ServiceConnectMembership(member, self)


class ServiceConnectMembership(MeshMembership):
    """One service in Service Connect: a server under its discovery name, and a client."""

    def __init__(self, member: MeshMember, backend: ServiceConnectBackend) -> None:
        if len(member.slots) > 1:
            raise ValueError(
                f"MeshedFargateService {member.scope.node.path!r}: traffic=Traffic(...) weighs "
                "blue and green slots in App Mesh, which Service Connect cannot (allowed: "
                "deployment=Deployment.blue_green() for ECS native blue/green instead)"
            )
        super().__init__(member)
        self.backend = backend

    def add_backend(self, backend: MeshMembership) -> None:
        """Every Service Connect service is a client of the whole namespace: nothing to add
        beyond the security group rule the service writes."""

    def bind_service(self, service: ecs.FargateService, slot: MeshSlot) -> None:
        member = self.member
        # Service Connect publishes its own request metrics in AWS/ECS.
        member.observability.alarm_on_proxy_5xx(
            cloudwatch.Metric(
                namespace="AWS/ECS",
                metric_name="HTTPCode_Target_5XX_Count",
                dimensions_map={
                    "ClusterName": service.cluster.cluster_name,
                    "DiscoveryName": member.name,
                },
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
                    dns_name=member.name,
                    port=member.port,
                    per_request_timeout=member.resilience.per_request_timeout,
                    idle_timeout=member.resilience.idle_timeout,
                )
            ],
            log_driver=ecs.LogDrivers.aws_logs(
                stream_prefix=PROXY_CONTAINER,
                log_group=member.observability.log_group(PROXY_CONTAINER),
            ),
            access_log_configuration=ecs.ServiceConnectAccessLogConfiguration(
                format=ecs.ServiceConnectAccessLogFormat.JSON, include_query_parameters=False
            ),
        )
