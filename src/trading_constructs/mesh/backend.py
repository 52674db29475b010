"""The one small interface a service uses to join its mesh, whatever the mesh is.

A service describes itself as a ``MeshMember`` and asks the cluster's backend to ``join``; it
gets back a ``MeshMembership`` that wires callers to backends and binds the ECS service. The
service never asks which backend it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from ..notifications import AlarmNotifications
from ..observability import ServiceObservability
from ..policies import ServicePolicies
from ..repository import PullThroughCache
from .resilience import ResiliencePolicy


@dataclass(frozen=True)
class MeshSlot:
    """One deployable copy of a service: its own task definition and ECS service. A service
    has one slot, or a blue and a green slot that its mesh weighs traffic between."""

    id: str | None
    """None for a service's only slot; 'Blue' or 'Green'."""
    weight: int
    """Percent of the service's traffic, 0 to 100."""
    task_definition: ecs.FargateTaskDefinition
    app_container: ecs.ContainerDefinition


@dataclass(frozen=True)
class MeshMember:
    """What a service tells its mesh about itself."""

    scope: Construct
    name: str
    port: int | None
    """The app's port; None for a worker, which takes no calls (it only makes them)."""
    health_check_path: str
    slots: list[MeshSlot]
    policies: ServicePolicies
    """The service's managed policies: add what sidecars need (image pulls, the proxy's
    configuration stream)."""
    observability: ServiceObservability
    resilience: ResiliencePolicy
    public: bool = False
    """Reached by a load balancer: its listener takes plain HTTP."""


class MeshMembership(ABC):
    """A service's place in the mesh."""

    def __init__(self, member: MeshMember) -> None:
        self.member = member

    @abstractmethod
    def add_backend(self, backend: MeshMembership) -> None:
        """Let this service call ``backend`` through the mesh."""

    @abstractmethod
    def bind_service(self, service: ecs.FargateService, slot: MeshSlot) -> None:
        """Finish a slot's wiring once its ECS service exists."""


@dataclass(frozen=True)
class MeshContext:
    """What a mesh backend is built from: the cluster's parts."""

    namespace: servicediscovery.INamespace
    key: kms.IKey
    vpc: ec2.IVpc
    cluster: ecs.ICluster
    alarms: AlarmNotifications


class MeshBackend(Construct):
    """A service mesh the platform's services join."""

    public_images: PullThroughCache | None = None
    """The pull-through cache the mesh's sidecar images come through; None when the mesh runs
    no sidecar of ours."""

    weighs_slots: bool = False
    """Whether the mesh can weigh requests between a service's blue and green slots."""

    resolves_endpoints_at_start: bool = False
    """Whether a task's proxy knows only the endpoints that existed when it started (Service
    Connect), so a caller must start, or be redeployed, after its backends."""

    reserved_names: frozenset[str] = frozenset()
    """Service names the mesh's own containers and log groups take: no service may have one."""

    reserved_ports: frozenset[int] = frozenset()
    """Ports the mesh's own containers listen on in every task: no app may listen on one."""

    honoured_resilience: frozenset[str] | None = None
    """The ``ResiliencePolicy`` option fields ('retry.max_retries'...) the mesh honours; None
    for all of them. A field outside it may only keep its default."""

    resilience_note: str = ""
    """Why the mesh cannot honour the other fields."""

    @property
    def sidecar_memory_mib(self) -> int:
        """Memory the mesh's containers reserve in each task (the app reserves the rest): the
        reservations of a task's containers may add up to its memory, no more."""
        return 0

    def listener_port(self, port: int) -> int:
        """The port callers reach a service on whose app listens on ``port``."""
        return port

    def generated_names(self, name: str, slot_ids: Sequence[str | None]) -> list[tuple[str, str]]:
        """(what, name) of each name the mesh derives from a service's name and slots, which
        must be unique in the mesh: another service deriving the same would collide."""
        return []

    def name_key(self, what: str, name: str) -> tuple[object, ...]:
        """The registry key of a name unique in this mesh (see ``_validation.claim``)."""
        return ("mesh", self, what, name)

    def proxy_configuration(self, port: int | None) -> ecs.ProxyConfiguration | None:
        """The task definition's proxy configuration, if the mesh redirects traffic itself."""
        return None

    def join(self, member: MeshMember) -> MeshMembership:
        """Add a service to the mesh: sidecars, proxy configuration and mesh resources."""
        raise NotImplementedError

    @property
    def kind(self) -> str:
        """'mutual-tls', 'service-connect' or 'appmesh'."""
        raise NotImplementedError


def allow_mesh_call(caller: ec2.IConnectable, callee: ec2.IConnectable, port: int) -> None:
    """The security-group half of a backend: the caller may reach the callee's port."""
    callee.connections.allow_from(caller, ec2.Port.tcp(port), "mesh call from a declared caller")
