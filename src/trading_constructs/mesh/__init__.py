"""Service meshes the platform's services join, chosen with ``Mesh``: the Envoy mutual-TLS mesh
(Envoy sidecars configured at synth, certificates from the platform CA, discovery through Cloud
Map), ECS Service Connect (AWS's proxy: TLS from AWS Private CA, fixed retries), or App Mesh (a
plug-in in ``trading_constructs.appmesh``, past AWS's end of support, imported only when asked
for)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from constructs import Construct

from .._validation import Problems
from ..appmesh.options import ENVOY_VERSION
from ..repository import check_cache_prefix, check_docker_hub_credentials
from .backend import MeshBackend, MeshContext, MeshMember, MeshMembership, MeshSlot
from .options import MeshTlsOptions
from .resilience import (
    APP_MESH_HONOURS,
    APP_MESH_NOTE,
    SERVICE_CONNECT_HONOURS,
    SERVICE_CONNECT_NOTE,
    ConnectionPoolOptions,
    OutlierOptions,
    ResiliencePolicy,
    RetryOptions,
    unhonoured,
)
from .service_connect import ServiceConnectBackend, ServiceConnectMembership

_DEFAULT_TLS = MeshTlsOptions()
APP_MESH = "appmesh"
SERVICE_CONNECT = "service-connect"
MUTUAL_TLS = "mutual-tls"
MESH_KINDS = (MUTUAL_TLS, SERVICE_CONNECT, APP_MESH)

# What each kind honours of a ResiliencePolicy (None: every field), and why not the rest.
HONOURS: dict[str, tuple[frozenset[str] | None, str, str]] = {
    MUTUAL_TLS: (None, "the mutual-TLS mesh", ""),
    SERVICE_CONNECT: (SERVICE_CONNECT_HONOURS, "Service Connect", SERVICE_CONNECT_NOTE),
    APP_MESH: (APP_MESH_HONOURS, "App Mesh", APP_MESH_NOTE),
}


def check_resilience(problems: Problems, prop: str, policy: object, kind: str) -> None:
    """Refuse the fields of ``policy`` that a mesh of ``kind`` would ignore."""
    honoured, mesh, why = HONOURS[kind]
    if isinstance(policy, ResiliencePolicy):
        unhonoured(problems, prop, policy, honoured, mesh, why)


@dataclass(frozen=True, kw_only=True)
class Mesh:
    """Which mesh a TradingCluster runs, and the traffic policy its services get by default.
    Build one with ``Mesh.mutual_tls(...)``, ``Mesh.service_connect(...)``,
    ``Mesh.app_mesh(...)`` or ``Mesh.from_name('mutual-tls' | 'service-connect' | 'appmesh')``.

    Attributes:
        kind: 'mutual-tls', 'service-connect' or 'appmesh'.
        resilience: Retries, circuit breaking and timeouts of every service; a field the mesh
            cannot honour must keep its default. Default: ``ResiliencePolicy()``.
        envoy_version: The App Mesh Envoy image tag (App Mesh only). Default: 'v1.29.12.1-prod'.
        mesh_name: The App Mesh mesh's name (App Mesh only). Default: a generated name.
        mtls: The certificates' lifetimes (the mutual-TLS mesh, where it is required, and App
            Mesh, where None turns mutual TLS off). Default: ``MeshTlsOptions()`` with both.
        tls_authority_arn: Service Connect only: the AWS Private CA that issues TLS certificates for
            traffic between services. Default: None (no TLS).
        docker_hub_credentials: The mutual-TLS mesh only: the ARN of the Secrets Manager secret
            ECR signs in to Docker Hub with, to cache Envoy's official image (its name starts
            with 'ecr-pullthroughcache/'). Default: None, the secret named
            'ecr-pullthroughcache/docker-hub' in the stack's account and region.
        cache_prefix: The mutual-TLS mesh and App Mesh: the prefix of the pull-through cache the
            cluster makes for Envoy's image, which ECR allows once per account and region, so a
            second platform there needs its own (2 to 30 characters, ECR's
            ecrRepositoryPrefix rule). Default: None, 'docker-hub' for the mutual-TLS mesh and
            'ecr-public' for App Mesh.
    """

    kind: str
    resilience: ResiliencePolicy = field(default_factory=ResiliencePolicy)
    envoy_version: str = ENVOY_VERSION
    mesh_name: str | None = None
    mtls: MeshTlsOptions | None = None
    tls_authority_arn: str | None = None
    docker_hub_credentials: str | None = None
    cache_prefix: str | None = None

    def __post_init__(self) -> None:
        problems = Problems("Mesh")
        problems.one_of("kind", self.kind, MESH_KINDS)
        if not isinstance(self.resilience, ResiliencePolicy):
            problems.add("resilience", self.resilience, "a ResiliencePolicy")
        problems.pattern(
            "envoy_version",
            self.envoy_version,
            r"v\d+\.\d+\.\d+\.\d+-prod",
            "an App Mesh Envoy release tag such as 'v1.29.12.1-prod'",
        )
        if self.mtls is not None and not isinstance(self.mtls, MeshTlsOptions):
            problems.add("mtls", self.mtls, "MeshTlsOptions or None")
        if self.mtls is not None and self.kind == SERVICE_CONNECT:
            problems.note(
                "mtls applies to the mutual-TLS mesh and App Mesh (allowed: None with Service "
                "Connect, whose TLS comes from AWS Private CA)"
            )
        if self.mtls is None and self.kind == MUTUAL_TLS:
            problems.add("mtls", None, "MeshTlsOptions: the mutual-TLS mesh always has it")
        if self.kind in HONOURS:
            check_resilience(problems, "resilience", self.resilience, self.kind)
        if self.tls_authority_arn is not None:
            if self.kind != SERVICE_CONNECT:
                problems.note("tls_authority_arn applies to Service Connect (allowed: None)")
            problems.pattern(
                "tls_authority_arn",
                self.tls_authority_arn,
                r"arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]{36}",
                "an AWS Private CA certificate-authority ARN",
            )
        if self.docker_hub_credentials is not None and self.kind != MUTUAL_TLS:
            problems.note("docker_hub_credentials applies to the mutual-TLS mesh (allowed: None)")
        check_docker_hub_credentials(problems, self.docker_hub_credentials)
        if self.cache_prefix is not None:
            if self.kind == SERVICE_CONNECT:
                problems.note(
                    "cache_prefix applies to the mutual-TLS mesh and App Mesh (allowed: None "
                    "with Service Connect, whose proxy image is ECS's own)"
                )
            check_cache_prefix(problems, "cache_prefix", self.cache_prefix)
        if self.mesh_name is not None:
            if self.kind != APP_MESH:
                problems.note("mesh_name applies to App Mesh (allowed: None)")
            problems.pattern(
                "mesh_name", self.mesh_name, r"[A-Za-z0-9_-]{1,255}", "1 to 255 of A-Z a-z 0-9 _ -"
            )
        problems.raise_if_any()

    @staticmethod
    def mutual_tls(
        *,
        resilience: ResiliencePolicy | None = None,
        mtls: MeshTlsOptions = _DEFAULT_TLS,
        docker_hub_credentials: str | None = None,
        cache_prefix: str | None = None,
    ) -> Mesh:
        """Envoy sidecars that call each other over mutual TLS with certificates from the
        platform's own CA, authorize callers by identity, find each other's tasks through
        Cloud Map, and apply every field of ``resilience``: retries with jittered exponential
        backoff on another task, timeouts, outlier ejection and circuit-breaker limits.
        Envoy's official image comes from Docker Hub through the cluster's pull-through cache,
        which signs in with ``docker_hub_credentials`` under the prefix ``cache_prefix``
        (default 'docker-hub'; give a second platform of the account and region its own, see
        the attributes). A task's certificate
        reaches Envoy as files an init container writes at start; under the Control Tower
        profile (context ``trading-constructs:control-tower=true``) as ECS secrets in Envoy's
        environment instead, so that no container runs as root (CT.ECS.PR.3)."""
        return Mesh(
            kind=MUTUAL_TLS,
            resilience=resilience or ResiliencePolicy(),
            mtls=mtls,
            docker_hub_credentials=docker_hub_credentials,
            cache_prefix=cache_prefix,
        )

    @staticmethod
    def app_mesh(
        *,
        resilience: ResiliencePolicy | None = None,
        envoy_version: str = ENVOY_VERSION,
        mesh_name: str | None = None,
        mtls: MeshTlsOptions | None = _DEFAULT_TLS,
        cache_prefix: str | None = None,
    ) -> Mesh:
        """AWS App Mesh with an Envoy sidecar per task, its image from ECR Public through the
        cluster's pull-through cache under ``cache_prefix`` (default 'ecr-public'; give a
        second platform of the account and region its own). Past its end of support
        (2026-09-30): it synthesizes, but its resources can no longer be created."""
        return Mesh(
            kind=APP_MESH,
            resilience=resilience or ResiliencePolicy(),
            envoy_version=envoy_version,
            mesh_name=mesh_name,
            mtls=mtls,
            cache_prefix=cache_prefix,
        )

    @staticmethod
    def service_connect(
        *, resilience: ResiliencePolicy | None = None, tls_authority_arn: str | None = None
    ) -> Mesh:
        """ECS Service Connect: the proxy is ECS's own; the timeouts of ``resilience`` apply
        (its other fields must keep their defaults), and TLS between services, which
        authenticates the server only, when a Private CA is given."""
        return Mesh(
            kind=SERVICE_CONNECT,
            resilience=resilience or ResiliencePolicy(),
            tls_authority_arn=tls_authority_arn,
        )

    @staticmethod
    def from_name(name: str, *, resilience: ResiliencePolicy | None = None) -> Mesh:
        """The mesh a name selects ('mutual-tls', 'service-connect' or 'appmesh'), e.g. from a
        context value."""
        if name == MUTUAL_TLS:
            return Mesh.mutual_tls(resilience=resilience)
        if name == APP_MESH:
            return Mesh.app_mesh(resilience=resilience)
        if name == SERVICE_CONNECT:
            return Mesh.service_connect(resilience=resilience)
        raise ValueError(
            f"Mesh: mesh={name!r} is not allowed "
            f"(allowed: {', '.join(repr(k) for k in MESH_KINDS)})"
        )

    def _build(self, scope: Construct, id: str, context: MeshContext) -> MeshBackend:
        """The backend this spec selects, built in ``scope`` (the cluster)."""
        return _builder(self.kind)(self, scope, id, context)


def _build_service_connect(
    mesh: Mesh, scope: Construct, id: str, context: MeshContext
) -> MeshBackend:
    return ServiceConnectBackend(
        scope, id, namespace=context.namespace, tls_authority_arn=mesh.tls_authority_arn
    )


# Each kind's builder; a plug-in's module is imported only when its kind is built.
_PLUGINS = {
    APP_MESH: "trading_constructs.appmesh.backend",
    MUTUAL_TLS: "trading_constructs.mesh.mutual_tls",
}


def _builder(kind: str) -> Callable[[Mesh, Construct, str, MeshContext], MeshBackend]:
    if kind == SERVICE_CONNECT:
        return _build_service_connect
    build: Callable[[Mesh, Construct, str, MeshContext], MeshBackend]
    build = importlib.import_module(_PLUGINS[kind]).build
    return build


__all__ = [
    "APP_MESH",
    "MUTUAL_TLS",
    "SERVICE_CONNECT",
    "ConnectionPoolOptions",
    "Mesh",
    "MeshBackend",
    "MeshContext",
    "MeshMember",
    "MeshMembership",
    "MeshSlot",
    "MeshTlsOptions",
    "OutlierOptions",
    "ResiliencePolicy",
    "RetryOptions",
    "ServiceConnectBackend",
    "ServiceConnectMembership",
]
