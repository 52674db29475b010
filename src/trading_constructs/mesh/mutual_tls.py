"""The Envoy mutual-TLS mesh: an Envoy sidecar per task, configured statically at synth, with
certificates from the platform's own CA and discovery through Cloud Map DNS.

Why not Service Connect underneath: Service Connect's proxy would sit between our Envoy and the
backend's tasks as one plain-TCP upstream, hiding the tasks, so Envoy could not balance, retry on
another task or eject one; and it would add a second proxy hop. Cloud Map's DNS answers with the
healthy tasks themselves (up to eight per answer, MULTIVALUE), which Envoy re-resolves every
five seconds (STRICT_DNS). Above eight tasks of one backend, a caller balances over a changing
subset of eight: the limit that holds on this mesh.

A task's certificate, key and CA bundle reach Envoy as files that an init container writes into
a task volume at start (as root: Fargate makes the volume root-owned) and hands to Envoy's user;
under the Control Tower profile, as ECS secrets in Envoy's own environment, which its
configuration reads (``DataSource.environment_variable``), so that no container runs as root.

Certificates are renewed by replacing tasks, not by reloading files: the issuer reissues a
certificate ``renew_before_days`` before it expires and calls ECS UpdateService on the service,
whose deployment starts new tasks (with the new certificate) before stopping old ones
(``min_healthy_percent=100``); old and new certificates chain to the same CA, so callers accept
both throughout, and a call that meets a stopping task is retried on another
(``connect-failure``).
"""

from __future__ import annotations

import json
from typing import Any

import jsii
from aws_cdk import ArnFormat, Duration, IResolvable, IResolveContext, Stack, Tags, Token
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct, IValidation

from .._validation import claim
from ..compliance import control_tower_profile
from ..repository import PullThroughCache
from ..secret import secret_read_statements
from . import Mesh
from .backend import MeshBackend, MeshContext, MeshMember, MeshMembership, MeshSlot
from .certificates import (
    CA_CERTIFICATE_ID,
    CERT_INIT_CONTAINER,
    CERT_INIT_MEMORY_MIB,
    SERVICE_TAG,
    MeshCertificates,
)
from .certificates import certificate_id as certificate_construct_id
from .envoy import (
    HEALTH_PORT,
    MESH_PORT,
    OUTBOUND_PORTS,
    Backend,
    TaskMesh,
    bootstrap,
    outbound_port,
)
from .options import MeshTlsOptions

ENVOY_REPOSITORY = "envoyproxy/envoy"
"""Envoy's official image, published on Docker Hub only (docker.io/envoyproxy/envoy)."""
ENVOY_TAG = "v1.36.2"
"""The Envoy release the mesh runs (the tag the digest below was published under)."""
ENVOY_DIGEST = "sha256:4972515dd9a069b44beb43cebba7851596e72a8c61cd7a7c33d8f48efc5280ba"
"""The image index's digest: tasks pull exactly this image, however the tag moves."""
DOCKER_HUB_SECRET_NAME = "ecr-pullthroughcache/docker-hub"
"""The secret ECR signs in to Docker Hub with, unless the mesh names another."""
ENVOY_CONTAINER = "envoy"
ENVOY_UID = 101
"""The ``envoy`` user of the official image, which Envoy runs as and which owns the certificate
files."""
ENVOY_CPU = 256
"""CPU units the sidecar reserves in each task (a quarter of a vCPU, what AWS recommends for
the Service Connect proxy, also Envoy)."""
ENVOY_MEMORY_MIB = 128
"""Memory the sidecar reserves in each task."""
CONFIGURATION_BUDGET = 48 * 1024
"""Bytes the Envoy configuration may take in the task definition, as ECS receives it (JSON
inside JSON): ECS refuses a task definition over 64 KiB, and the containers take the rest."""


def backend_url_variable(name: str) -> str:
    """The app's environment variable with a backend's local address: 'data-ingestion' ->
    'DATA_INGESTION_URL'."""
    return name.upper().replace("-", "_") + "_URL"


def build(mesh: Mesh, scope: Construct, id: str, context: MeshContext) -> MutualTlsBackend:
    """The mutual-TLS mesh of a cluster: Envoy through the cluster's pull-through cache of
    Docker Hub, and the certificates with their issuer."""
    credentials = mesh.docker_hub_credentials or Stack.of(scope).format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=DOCKER_HUB_SECRET_NAME,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    public_images = PullThroughCache(
        scope,
        "DockerHubImages",
        key=context.key,
        prefix=mesh.cache_prefix,
        docker_hub_credentials=credentials,
    )
    backend = MutualTlsBackend(scope, id, namespace=context.namespace, public_images=public_images)
    backend.certificates = MeshCertificates(
        backend,
        "Certificates",
        key=context.key,
        vpc=context.vpc,
        cluster_name=context.cluster.cluster_name,
        alarms=context.alarms,
        options=mesh.mtls or MeshTlsOptions(),
    )
    # The CA's secret holds the id a service named 'ca' would give its certificate.
    claim(backend.certificates, backend.name_key("certificate id", CA_CERTIFICATE_ID))
    return backend


class MutualTlsBackend(MeshBackend):
    """Envoy sidecars that speak mutual TLS to each other, found through Cloud Map."""

    reserved_names = frozenset({ENVOY_CONTAINER, CERT_INIT_CONTAINER})
    reserved_ports = frozenset({MESH_PORT, *OUTBOUND_PORTS, HEALTH_PORT})

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namespace: servicediscovery.INamespace,
        public_images: PullThroughCache,
    ) -> None:
        super().__init__(scope, id)
        self.namespace = namespace
        self.public_images: PullThroughCache = public_images
        """Where Envoy's image comes from: the cluster's pull-through cache of Docker Hub."""
        self.certificates: MeshCertificates | None = None
        """Issues each service's certificate from the platform CA."""

    @property
    def kind(self) -> str:
        return "mutual-tls"

    @property
    def certificates_in_environment(self) -> bool:
        """Envoy reads its certificate from ECS secrets in its environment, with no init
        container (which must run as root to write files): under the Control Tower profile,
        whose CT.ECS.PR.3 refuses any root container."""
        return control_tower_profile(self)

    @property
    def sidecar_memory_mib(self) -> int:
        init = 0 if self.certificates_in_environment else CERT_INIT_MEMORY_MIB
        return ENVOY_MEMORY_MIB + init

    def listener_port(self, port: int) -> int:
        return MESH_PORT

    def generated_names(self, name: str, slot_ids: Any) -> list[tuple[str, str]]:
        """The construct id of the service's certificate, unique beside the CA's."""
        return [("certificate id", certificate_construct_id(name))]

    def envoy_image(self) -> ecs.ContainerImage:
        """Envoy's official image by digest, through the private, scanned pull-through cache."""
        return ecs.ContainerImage.from_registry(
            self.public_images.image_uri(f"{ENVOY_REPOSITORY}@{ENVOY_DIGEST}")
        )

    def join(self, member: MeshMember) -> MutualTlsMembership:
        return MutualTlsMembership(member, self)


@jsii.implements(IResolvable)
class _Bootstrap:
    """The Envoy configuration of a task, produced at synthesis once every call is declared."""

    def __init__(self, membership: MutualTlsMembership) -> None:
        self.membership = membership
        self.creation_stack: list[str] = []

    def resolve(self, context: IResolveContext) -> Any:
        stack = Stack.of(self.membership.member.scope)
        return context.resolve(stack.to_json_string(self.membership.bootstrap()))

    def to_string(self) -> str:
        return "<envoy bootstrap>"


@jsii.implements(IValidation)
class _FitsTaskDefinition:
    """At synthesis, once every call is declared: the configuration fits ECS's 64 KiB task
    definition (each backend adds an outbound listener and a cluster, about 3 KB)."""

    def __init__(self, membership: MutualTlsMembership) -> None:
        self.membership = membership

    def validate(self) -> list[str]:
        member = self.membership.member
        size = len(json.dumps(json.dumps(self.membership.bootstrap())))
        if size <= CONFIGURATION_BUDGET:
            return []
        return [
            f"MeshedFargateService {member.scope.node.path!r}: its Envoy configuration for "
            f"{len(self.membership.backends)} backends and {len(self.membership.callers)} "
            f"callers takes {size} bytes (allowed: at most {CONFIGURATION_BUDGET}, so that the "
            "task definition stays under ECS's 64 KiB; split the service's calls between "
            "services)"
        ]


class MutualTlsMembership(MeshMembership):
    """One service in the mutual-TLS mesh: its certificate, its Envoy, the callers it admits
    and the backends it calls."""

    def __init__(self, member: MeshMember, backend: MutualTlsBackend) -> None:
        if len(member.slots) > 1:
            raise ValueError(
                f"MeshedFargateService {member.scope.node.path!r}: release=Release.weighted(...) "
                "weighs blue and green slots in App Mesh, which the mutual-TLS mesh cannot "
                "(allowed: Release.rolling(), or Release.blue_green() for ECS native blue/green "
                "behind a TradingEdge)"
            )
        super().__init__(member)
        assert backend.certificates is not None
        self.backend = backend
        self.slot: MeshSlot = member.slots[0]
        self.san = f"{member.name}.{backend.namespace.namespace_name}"
        """The DNS name callers use, which is also the name in this service's certificate."""
        self.callers: list[MutualTlsMembership] = []
        """The services that declared this one as a backend: the only clients it admits."""
        self.backends: list[MutualTlsMembership] = []
        """The services this one calls, in the order of their outbound ports."""
        self.discovery: servicediscovery.Service | None = None
        """The Cloud Map service its tasks register in, made when its first caller is
        declared (a service nobody calls needs no name)."""
        self._services: list[ecs.FargateService] = []
        self.certificate = backend.certificates.issue_for(member.name, [self.san])
        """The secret holding the service's certificate, key and the CA bundle."""
        member.policies.add_to_execution(*secret_read_statements(self.certificate))
        member.policies.add_to_execution(*backend.public_images.pull_statements(ENVOY_REPOSITORY))
        self.envoy: ecs.ContainerDefinition = self._add_envoy()
        """The Envoy sidecar."""
        member.scope.node.add_validation(_FitsTaskDefinition(self))

    def task_mesh(self) -> TaskMesh:
        """What this task's Envoy is configured from."""
        member = self.member
        return TaskMesh(
            name=member.name,
            app_port=member.port,
            resilience=member.resilience,
            callers=[caller.san for caller in self.callers],
            backends=[Backend(b.member.name, b.san, b.member.resilience) for b in self.backends],
            certificates_in_environment=self.backend.certificates_in_environment,
        )

    def bootstrap(self) -> dict[str, Any]:
        """This task's Envoy configuration (an Envoy v3 Bootstrap), as Envoy reads it."""
        return bootstrap(self.task_mesh())

    def _add_envoy(self) -> ecs.ContainerDefinition:
        member, backend, slot = self.member, self.backend, self.slot
        assert backend.certificates is not None
        image = backend.envoy_image()
        logging = ecs.LogDrivers.aws_logs(
            stream_prefix=ENVOY_CONTAINER,
            log_group=member.observability.log_group(ENVOY_CONTAINER),
        )
        member.observability.count_envoy(ENVOY_CONTAINER)
        in_environment = backend.certificates_in_environment
        envoy = slot.task_definition.add_container(
            ENVOY_CONTAINER,
            container_name=ENVOY_CONTAINER,
            image=image,
            essential=True,
            cpu=ENVOY_CPU,
            memory_reservation_mib=ENVOY_MEMORY_MIB,
            # the task's memory is the hard limit (CT.ECS.PR.7 asks for one on every container)
            memory_limit_mib=slot.task_definition.memory_mib,
            # Envoy's own user from the start (CT.ECS.PR.3): the image's entry point then runs
            # 'envoy <arguments>' (they start with '-') without its root-only step, which hands
            # the log pipes to that user; the container runtime (runc) already hands a
            # container's standard streams to its user, so Envoy still opens /dev/stdout.
            user=str(ENVOY_UID),
            command=[
                "--config-yaml",
                Token.as_string(_Bootstrap(self)),
                "--disable-hot-restart",
                "--log-level",
                "warn",
            ],
            readonly_root_filesystem=True,
            # Envoy's image has bash but no curl: a TCP connect to the health listener.
            health_check=ecs.HealthCheck(
                command=["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{HEALTH_PORT}"],
                interval=Duration.seconds(10),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(10),
            ),
            stop_timeout=Duration.seconds(30),
            logging=logging,
            secrets=backend.certificates.environment(slot.task_definition, self.certificate)
            if in_environment
            else None,
        )
        # The app's calls go through Envoy: start the app once Envoy's listeners are up.
        slot.app_container.add_container_dependencies(
            ecs.ContainerDependency(
                container=envoy, condition=ecs.ContainerDependencyCondition.HEALTHY
            )
        )
        if not in_environment:
            backend.certificates.add_to_task(
                slot.task_definition,
                envoy,
                self.certificate,
                image=image,
                logging=logging,
                uid=ENVOY_UID,
            )
        return envoy

    def add_backend(self, backend: MeshMembership) -> None:
        """Call ``backend`` through a local listener whose address the app finds in
        ``<BACKEND>_URL``; the backend admits this service's certificate."""
        assert isinstance(backend, MutualTlsMembership)
        member = self.member
        if len(self.backends) >= len(OUTBOUND_PORTS):
            raise ValueError(
                f"MeshedFargateService {member.scope.node.path!r}: backend "
                f"{backend.member.name!r} would be backend number {len(self.backends) + 1} "
                f"(allowed: at most {len(OUTBOUND_PORTS)} backends per service, one local port "
                f"each from {OUTBOUND_PORTS[0]})"
            )
        variable = backend_url_variable(backend.member.name)
        port = outbound_port(len(self.backends))
        self.backends.append(backend)
        self.slot.app_container.add_environment(variable, f"http://127.0.0.1:{port}")
        backend.admit(self)

    def admit(self, caller: MutualTlsMembership) -> None:
        """Accept ``caller``'s certificate, and be found in Cloud Map."""
        self.callers.append(caller)
        if self.discovery is None:
            self.discovery = servicediscovery.Service(
                self.member.scope,
                "Discovery",
                namespace=self.backend.namespace,
                name=self.member.name,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=Duration.seconds(10),
                routing_policy=servicediscovery.RoutingPolicy.MULTIVALUE,
                custom_health_check=servicediscovery.HealthCheckCustomConfig(failure_threshold=1),
            )
            for service in self._services:
                service.associate_cloud_map_service(service=self.discovery)

    def bind_service(self, service: ecs.FargateService, slot: MeshSlot) -> None:
        """Start tasks only once certificates exist, let renewals redeploy the service, and
        register it in Cloud Map once it has a caller."""
        assert self.backend.certificates is not None
        self._services.append(service)
        service.node.add_dependency(self.backend.certificates.first_issue)
        Tags.of(service).add(SERVICE_TAG, self.member.name)
        if self.discovery is not None:
            service.associate_cloud_map_service(service=self.discovery)


__all__ = [
    "DOCKER_HUB_SECRET_NAME",
    "ENVOY_CPU",
    "ENVOY_DIGEST",
    "ENVOY_MEMORY_MIB",
    "ENVOY_REPOSITORY",
    "ENVOY_TAG",
    "MutualTlsBackend",
    "MutualTlsMembership",
    "backend_url_variable",
]
