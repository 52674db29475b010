"""The App Mesh backend: a mesh with an Envoy sidecar per task, mutual TLS, retries with
outlier detection and connection limits, and weighted routes between blue and green slots.

AWS ended support for App Mesh on 2026-09-30: its resources can no longer be created. The
backend stays complete so that existing meshes can be described and migrated; new platforms
deploy with ``Mesh.service_connect()`` (the example's default).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

from aws_cdk import Annotations, CfnResource, Duration, Tags
from aws_cdk import aws_appmesh as appmesh
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as sm
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from .._validation import claim, is_token
from ..compliance import acknowledge, acknowledge_control
from ..mesh import Mesh
from ..mesh.backend import MeshBackend, MeshContext, MeshMember, MeshMembership, MeshSlot
from ..mesh.certificates import (
    CA_CERTIFICATE_ID,
    CA_FILE,
    CERT_FILE,
    CERT_INIT_CONTAINER,
    CERT_INIT_MEMORY_MIB,
    KEY_FILE,
    SERVICE_TAG,
    MeshCertificates,
    certificate_id,
)
from ..mesh.resilience import APP_MESH_HONOURS, APP_MESH_NOTE
from ..repository import PullThroughCache
from ..secret import secret_read_statements
from .options import END_OF_SUPPORT, ENVOY_VERSION

ENVOY_REPOSITORY = "appmesh/aws-appmesh-envoy"
ENVOY_CONTAINER = "envoy"
ENVOY_UID = 1337
PROXY_INGRESS_PORT = 15000
PROXY_EGRESS_PORT = 15001
ENVOY_ADMIN_PORT = 9901
# Task metadata and credentials endpoints: traffic to them must not go through Envoy.
EGRESS_IGNORED_IPS = ("169.254.170.2", "169.254.169.254")

ENVOY_CPU = 128
ENVOY_MEMORY_MIB = 128

# Envoy's access log as JSON, so a metric filter can count 5xx responses.
_ACCESS_LOG_FORMAT = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "upstream": "%UPSTREAM_HOST%",
}

END_OF_SUPPORT_WARNING = (
    f"AWS App Mesh reached end of support on {END_OF_SUPPORT}: its resources can no longer be "
    "created, so this stack cannot be deployed as is. Deploy with ECS Service Connect instead: "
    "TradingCluster(mesh=Mesh.service_connect()), which is also what leaving mesh= out gives."
)


def _acknowledge_end_of_support(resource: Construct) -> None:
    """cfn-lint (W3696) and CDK's own validation warn on every App Mesh resource; the backend's
    one annotation says it instead, with the way out."""
    reason = (
        "App Mesh's end of support is reported once, by the trading-constructs "
        "app-mesh-end-of-support annotation on the mesh, with the switch to Service Connect."
    )
    acknowledge(resource, reason, "CloudFormation-Validate::W3696")
    cfn = resource.node.default_child
    if isinstance(cfn, CfnResource):
        cfn.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3696"]}})


def build(mesh: Mesh, scope: Construct, id: str, context: MeshContext) -> AppMeshBackend:
    """The App Mesh backend of a cluster: Envoy images through a pull-through cache of the
    cluster's, the mesh, and with mutual TLS the certificates and their issuer."""
    public_images = PullThroughCache(
        scope, "PublicImages", key=context.key, prefix=mesh.cache_prefix
    )
    backend = AppMeshBackend(
        scope,
        id,
        namespace=context.namespace,
        public_images=public_images,
        mesh_name=mesh.mesh_name,
        envoy_version=mesh.envoy_version,
    )
    if mesh.mtls is not None:
        backend.certificates = MeshCertificates(
            backend,
            "Certificates",
            key=context.key,
            vpc=context.vpc,
            cluster_name=context.cluster.cluster_name,
            alarms=context.alarms,
            options=mesh.mtls,
        )
        # The CA's secret holds the id a service named 'ca' would give its certificate.
        claim(backend.certificates, backend.name_key("certificate id", CA_CERTIFICATE_ID))
    return backend


class AppMeshBackend(MeshBackend):
    """A mesh that drops traffic to anything outside it, an Envoy sidecar per task, and per
    service a virtual node, router, route and virtual service."""

    weighs_slots = True
    # Containers of every task beside the app's, which is named after its service.
    reserved_names = frozenset({ENVOY_CONTAINER, CERT_INIT_CONTAINER})
    honoured_resilience = APP_MESH_HONOURS
    resilience_note = APP_MESH_NOTE

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namespace: servicediscovery.INamespace,
        public_images: PullThroughCache,
        mesh_name: str | None = None,
        envoy_version: str = ENVOY_VERSION,
        certificates: MeshCertificates | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.namespace = namespace
        self.public_images: PullThroughCache = public_images
        """Where Envoy's image comes from: the cluster's pull-through cache of ECR Public."""
        self.envoy_version = envoy_version
        self.certificates = certificates
        """Mutual TLS: issues each service's certificate; None turns mTLS off."""
        self.mesh: appmesh.Mesh = appmesh.Mesh(
            self, "Mesh", mesh_name=mesh_name, egress_filter=appmesh.MeshFilterType.DROP_ALL
        )
        """The mesh; traffic to destinations outside it is dropped."""
        Annotations.of(self).add_warning_v2(
            "trading-constructs:app-mesh-end-of-support", END_OF_SUPPORT_WARNING
        )
        _acknowledge_end_of_support(self.mesh)

    @property
    def kind(self) -> str:
        return "appmesh"

    @property
    def sidecar_memory_mib(self) -> int:
        """Envoy's, and with mutual TLS the certificate init container's."""
        return ENVOY_MEMORY_MIB + (CERT_INIT_MEMORY_MIB if self.certificates is not None else 0)

    def generated_names(self, name: str, slot_ids: Sequence[str | None]) -> list[tuple[str, str]]:
        """Virtual node names (unique in the mesh: 'orders', or 'orders-blue' and
        'orders-green'), and with mTLS the construct id of the service's certificate, unique
        beside the CA's."""
        names = [("virtual node", f"{name}-{slot.lower()}" if slot else name) for slot in slot_ids]
        if self.certificates is not None:
            names.append(("certificate id", certificate_id(name)))
        return names

    def proxy_configuration(self, port: int | None) -> ecs.ProxyConfiguration:
        """Route the task's traffic through Envoy, except Envoy's own and metadata calls (a
        worker's outbound traffic only: it has no app port)."""
        return ecs.ProxyConfigurations.app_mesh_proxy_configuration(
            container_name=ENVOY_CONTAINER,
            properties=ecs.AppMeshProxyConfigurationProps(
                app_ports=[] if port is None else [port],
                proxy_ingress_port=PROXY_INGRESS_PORT,
                proxy_egress_port=PROXY_EGRESS_PORT,
                ignored_uid=ENVOY_UID,
                egress_ignored_i_ps=list(EGRESS_IGNORED_IPS),
            ),
        )

    def join(self, member: MeshMember) -> AppMeshMembership:
        return AppMeshMembership(member, self)


class AppMeshMembership(MeshMembership):
    """One service in App Mesh: a virtual node per slot (each with its Envoy), one Cloud Map
    service the slots share, a router whose route weighs the slots, and a virtual service."""

    def __init__(self, member: MeshMember, backend: AppMeshBackend) -> None:
        super().__init__(member)
        self.backend = backend
        resilience, scope = member.resilience, member.scope
        self.timeout = appmesh.HttpTimeout(
            idle=resilience.idle_timeout, per_request=resilience.per_request_timeout
        )
        self.discovery: servicediscovery.Service | None = (
            None
            if member.port is None
            else servicediscovery.Service(
                scope,
                "Discovery",
                namespace=backend.namespace,
                name=member.name,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=Duration.seconds(10),
                custom_health_check=servicediscovery.HealthCheckCustomConfig(failure_threshold=1),
            )
        )
        """The Cloud Map service the tasks of every slot register in; None for a worker,
        which nobody calls (a node without listeners needs no discovery)."""
        self.san = f"{member.name}.{backend.namespace.namespace_name}"
        """The name in this service's certificate, which its callers check."""
        self.callers: set[str] = set()
        self.certificate: sm.ISecret | None = (
            backend.certificates.issue_for(member.name, [self.san])
            if backend.certificates is not None
            else None
        )
        """The secret holding the service's certificate, key and CA bundle (mTLS)."""
        if self.certificate is not None:
            member.policies.add_to_execution(*secret_read_statements(self.certificate))
        self.virtual_nodes: dict[str | None, appmesh.VirtualNode] = {
            slot.id: self._virtual_node(slot, several=len(member.slots) > 1)
            for slot in member.slots
        }
        """The virtual node of each slot (None for a single slot, else 'Blue', 'Green')."""
        self.virtual_node: appmesh.VirtualNode = next(iter(self.virtual_nodes.values()))
        """The (blue) slot's virtual node."""
        self.virtual_router: appmesh.VirtualRouter | None = None
        self.route: appmesh.Route | None = None
        self.virtual_service: appmesh.VirtualService | None = None
        """How callers reach the service (None for a worker, which nobody calls)."""
        resources = [] if member.port is None else self._routing(member.port)
        self.envoys = {slot.id: self._add_envoy(slot) for slot in member.slots}
        for resource in [*self.virtual_nodes.values(), *resources]:
            _acknowledge_end_of_support(resource)

    def _routing(self, port: int) -> list[Construct]:
        """How callers reach the service: a router whose route weighs the slots, behind a
        virtual service of the service's DNS name (a worker, never called, has none)."""
        member, backend = self.member, self.backend
        router = appmesh.VirtualRouter(
            member.scope,
            "VirtualRouter",
            mesh=backend.mesh,
            listeners=[appmesh.VirtualRouterListener.http(port)],
        )
        route = router.add_route("Route", route_spec=self._route_spec())
        service = appmesh.VirtualService(
            member.scope,
            "VirtualService",
            virtual_service_name=f"{member.name}.{backend.namespace.namespace_name}",
            virtual_service_provider=appmesh.VirtualServiceProvider.virtual_router(router),
        )
        self.virtual_router, self.route, self.virtual_service = router, route, service
        return [router, route, service]

    def _virtual_node(self, slot: MeshSlot, *, several: bool) -> appmesh.VirtualNode:
        """A slot's node finds its own tasks: by task definition family when slots share the
        Cloud Map service (ECS sets that attribute on every instance it registers)."""
        member, resilience = self.member, self.member.resilience
        attributes = (
            {"ECS_TASK_DEFINITION_FAMILY": slot.task_definition.family} if several else None
        )
        if self.discovery is None:  # a worker: backends only
            return appmesh.VirtualNode(
                member.scope,
                f"{slot.id or ''}VirtualNode",
                mesh=self.backend.mesh,
                virtual_node_name=member.name,
                access_log=appmesh.AccessLog.from_file_path(
                    "/dev/stdout", appmesh.LoggingFormat.from_json(_ACCESS_LOG_FORMAT)
                ),
            )
        return appmesh.VirtualNode(
            member.scope,
            f"{slot.id or ''}VirtualNode",
            mesh=self.backend.mesh,
            virtual_node_name=f"{member.name}-{slot.id.lower()}" if slot.id else member.name,
            service_discovery=appmesh.ServiceDiscovery.cloud_map(self.discovery, attributes),
            listeners=[
                appmesh.VirtualNodeListener.http(
                    port=typing.cast(int, member.port),
                    health_check=appmesh.HealthCheck.http(
                        path=member.health_check_path,
                        healthy_threshold=2,
                        unhealthy_threshold=3,
                    ),
                    timeout=self.timeout,
                    outlier_detection=appmesh.OutlierDetection(
                        max_server_errors=resilience.outlier.max_server_errors,
                        interval=resilience.outlier.interval,
                        base_ejection_duration=resilience.outlier.base_ejection_duration,
                        max_ejection_percent=resilience.outlier.max_ejection_percent,
                    ),
                    connection_pool=appmesh.HttpConnectionPool(
                        max_connections=resilience.connection_pool.max_connections,
                        max_pending_requests=resilience.connection_pool.max_pending_requests,
                    ),
                    tls=self._listener_tls(),
                )
            ],
            access_log=appmesh.AccessLog.from_file_path(
                "/dev/stdout", appmesh.LoggingFormat.from_json(_ACCESS_LOG_FORMAT)
            ),
        )

    def _listener_tls(self) -> appmesh.ListenerTlsOptions | None:
        """STRICT mutual TLS: present our certificate, accept only clients the platform CA
        signed (and, once callers are declared, only their names). A public service's listener
        takes the load balancer's plain HTTP instead, behind its security group."""
        if self.certificate is None or self.member.public:
            return None
        return appmesh.ListenerTlsOptions(
            mode=appmesh.TlsMode.STRICT,
            certificate=appmesh.TlsCertificate.file(CERT_FILE, KEY_FILE),
            mutual_tls_validation=appmesh.MutualTlsValidation(
                trust=appmesh.TlsValidationTrust.file(CA_FILE)
            ),
        )

    def _route_spec(self) -> appmesh.RouteSpec:
        member, retry = self.member, self.member.resilience.retry
        ports = {typing.cast(int, member.port) for _ in member.slots}
        if len(ports) != 1:  # every target of a route must share the listener's port
            raise ValueError(f"route targets of {member.name} use ports {sorted(ports)}")
        return appmesh.RouteSpec.http(
            weighted_targets=[
                appmesh.WeightedTarget(
                    virtual_node=self.virtual_nodes[slot.id],
                    weight=slot.weight,
                    port=typing.cast(int, member.port),
                )
                for slot in member.slots
            ],
            retry_policy=appmesh.HttpRetryPolicy(
                retry_attempts=retry.max_retries,
                retry_timeout=retry.per_retry_timeout,
                http_retry_events=[
                    appmesh.HttpRetryEvent[e.upper().replace("-", "_")]
                    for e in retry.http_retry_events
                ],
                tcp_retry_events=[
                    appmesh.TcpRetryEvent[e.upper().replace("-", "_")]
                    for e in retry.tcp_retry_events
                ],
            )
            if is_token(retry.max_retries) or retry.max_retries > 0
            else None,
            timeout=self.timeout,
        )

    def _add_envoy(self, slot: MeshSlot) -> ecs.ContainerDefinition:
        member, backend = self.member, self.backend
        node = self.virtual_nodes[slot.id]
        repository = f"{ENVOY_REPOSITORY}:{backend.envoy_version}"
        member.observability.count_proxy_5xx(ENVOY_CONTAINER)
        envoy = slot.task_definition.add_container(
            ENVOY_CONTAINER,
            container_name=ENVOY_CONTAINER,
            image=ecs.ContainerImage.from_registry(backend.public_images.image_uri(repository)),
            user=str(ENVOY_UID),
            essential=True,
            cpu=ENVOY_CPU,
            memory_reservation_mib=ENVOY_MEMORY_MIB,
            # the task's memory is the hard limit (CT.ECS.PR.7 asks for one on every container)
            memory_limit_mib=slot.task_definition.memory_mib,
            environment={"APPMESH_RESOURCE_ARN": node.virtual_node_arn, "ENVOY_LOG_LEVEL": "info"},
            health_check=ecs.HealthCheck(
                command=[
                    "CMD-SHELL",
                    f"curl -s http://localhost:{ENVOY_ADMIN_PORT}/server_info "
                    "| grep state | grep -q LIVE",
                ],
            ),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=ENVOY_CONTAINER,
                log_group=member.observability.log_group(ENVOY_CONTAINER),
            ),
        )
        slot.app_container.add_container_dependencies(
            ecs.ContainerDependency(
                container=envoy, condition=ecs.ContainerDependencyCondition.HEALTHY
            )
        )
        acknowledge_control(
            slot.task_definition,
            "App Mesh's Envoy image writes the bootstrap configuration it generates at start "
            "under /tmp, so its root filesystem stays writable (a task volume at /tmp does not "
            "help: aws-app-mesh-roadmap issues 265 and 433); App Mesh is past its end of "
            "support and its image will not change.",
            "CT.ECS.PR.6",
        )
        if slot is member.slots[0]:
            member.policies.add_to_execution(
                *backend.public_images.pull_statements(ENVOY_REPOSITORY)
            )
        if backend.certificates is not None and self.certificate is not None:
            backend.certificates.add_to_task(
                slot.task_definition,
                envoy,
                self.certificate,
                image=ecs.ContainerImage.from_registry(backend.public_images.image_uri(repository)),
                logging=ecs.LogDrivers.aws_logs(
                    stream_prefix=CERT_INIT_CONTAINER,
                    log_group=member.observability.log_group(ENVOY_CONTAINER),
                ),
            )
        member.policies.add_to_task(
            iam.PolicyStatement(
                actions=["appmesh:StreamAggregatedResources"],
                resources=[node.virtual_node_arn],
            )
        )
        return envoy

    def add_backend(self, backend: MeshMembership) -> None:
        assert isinstance(backend, AppMeshMembership)
        assert backend.virtual_service is not None, "a worker is never a backend"
        policy = None
        if self.certificate is not None and backend.member.public:
            raise ValueError(
                f"MeshedFargateService {self.member.scope.node.path!r}: backend "
                f"{backend.member.name!r} is public: its mesh listener takes the load "
                "balancer's plain HTTP, so a call from this service could not use mutual TLS "
                "and would fail (allowed: backends that are not public; reach a public service "
                "through its load balancer, or turn mutual TLS off with Mesh.app_mesh(mtls=None))"
            )
        if self.certificate is not None:
            # Present our certificate; accept only the backend's name, signed by the CA.
            policy = appmesh.TlsClientPolicy(
                mutual_tls_certificate=appmesh.MutualTlsCertificate.file(CERT_FILE, KEY_FILE),
                validation=appmesh.TlsValidation(
                    trust=appmesh.TlsValidationTrust.file(CA_FILE),
                    subject_alternative_names=appmesh.SubjectAlternativeNames.matching_exactly(
                        backend.san
                    ),
                ),
            )
        for node in self.virtual_nodes.values():
            node.add_backend(
                appmesh.Backend.virtual_service(backend.virtual_service, tls_client_policy=policy)
            )
        backend.admit(self.san)

    def admit(self, caller_san: str) -> None:
        """Accept client certificates with this name on the listener (the declared callers)."""
        self.callers.add(caller_san)
        if self._listener_tls() is None:
            return
        for node in self.virtual_nodes.values():
            cfn = node.node.default_child
            assert isinstance(cfn, CfnResource)
            cfn.add_property_override(
                "Spec.Listeners.0.TLS.Validation.SubjectAlternativeNames",
                {"Match": {"Exact": sorted(self.callers)}},
            )

    def bind_service(self, service: ecs.FargateService, slot: MeshSlot) -> None:
        """Register the slot's tasks in Cloud Map, where its virtual node finds them; with
        mTLS, start tasks only once certificates exist, and let renewals redeploy them."""
        if self.discovery is not None:
            service.associate_cloud_map_service(
                service=self.discovery,
                container=slot.app_container,
                container_port=self.member.port,
            )
        if self.backend.certificates is not None:
            service.node.add_dependency(self.backend.certificates.first_issue)
            Tags.of(service).add(SERVICE_TAG, self.member.name)
