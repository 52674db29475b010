"""The small platform the bad-input suites (``test_inputs_*.py``) build on, once per module.

A construct checks its props before ``Construct.__init__``, so a failing call adds nothing to
the tree; whatever a passing call adds is removed after its test (``tidy``), and with it the
names it holds in the app (a removed construct's names are free again).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms

from trading_constructs import (
    MeshedFargateService,
    ScannedRepository,
    ServiceImage,
    TradingCluster,
    TradingEdge,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENV = Environment(account=ACCOUNT, region=REGION)
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY_ARN = KEY_ARN.replace(REGION, "eu-west-1")
CERTIFICATE_ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
OTHER_CERTIFICATE_ARN = CERTIFICATE_ARN.replace(REGION, "eu-west-1")

_numbers = itertools.count(1)


def unique_name(prefix: str = "svc") -> str:
    """A service name no earlier test took."""
    return f"{prefix}{next(_numbers)}"


@dataclass(frozen=True)
class Platform:
    """One Service Connect cluster in a stack with a concrete account and region."""

    app: App
    stack: Stack
    cluster: TradingCluster
    repository: ScannedRepository
    image: ServiceImage
    key: kms.IKey
    gateway: MeshedFargateService
    """A public service, for an edge to front."""

    def service(self, id: str = "Svc", **props: Any) -> MeshedFargateService:
        """A service on the cluster: valid props, but for those given."""
        defaults = {"cluster": self.cluster, "image": self.image, "port": 8080}
        return MeshedFargateService(self.stack, id, **{**defaults, "name": unique_name(), **props})

    def edge(self, **props: Any) -> TradingEdge:
        """An edge in front of the gateway: valid props, but for those given."""
        defaults = {"cluster": self.cluster, "service": self.gateway}
        return TradingEdge(self.stack, "Edge", **{**defaults, **props})

    def stack_in(self, id: str, region: str = REGION) -> Stack:
        """Another stack of the app (kept for the module)."""
        found = self.app.node.try_find_child(id)
        if isinstance(found, Stack):
            return found
        return Stack(self.app, id, env=Environment(account=ACCOUNT, region=region))


_shared: list[Platform] = []


def shared_platform() -> Platform:
    """The platform every input suite builds on: built once per test session (about half a
    second), each test's additions removed after it by ``tidy_after``."""
    if not _shared:
        _shared.append(build_platform())
    return _shared[0]


def cluster_with_image(
    stack: Stack, **cluster_props: Any
) -> tuple[TradingCluster, ScannedRepository, ServiceImage]:
    """A cluster (``cluster_props`` over the defaults), a repository encrypted with its key,
    and the image ``v1`` of that repository: what every service of a test stack needs."""
    cluster = TradingCluster(stack, "Platform", **cluster_props)
    repository = ScannedRepository(stack, "Repo", key=cluster.key)
    return cluster, repository, ServiceImage(repository=repository, tag="v1")


def build_platform() -> Platform:
    app = App()
    stack = Stack(app, "Test", env=ENV)
    cluster, repository, image = cluster_with_image(stack)
    gateway = MeshedFargateService(
        stack, "Gateway", cluster=cluster, name="gateway", image=image, port=8080, public=True
    )
    return Platform(app, stack, cluster, repository, image, cluster.key, gateway)


def tidy_after(platform: Platform) -> Iterator[None]:
    """Yield to a test, then remove what it added to the app's stacks, so tests stay
    independent (a module's autouse fixture)."""
    before = {
        stack.node.id: {child.node.id for child in stack.node.children}
        for stack in platform.app.node.children
    }
    yield
    for stack in list(platform.app.node.children):
        kept = before.get(stack.node.id)
        if kept is None:
            platform.app.node.try_remove_child(stack.node.id)
            continue
        for child in list(stack.node.children):
            if child.node.id not in kept:
                stack.node.try_remove_child(child.node.id)


def platform_fixture() -> Any:
    """A module's ``platform`` fixture, the shared one: ``platform = platform_fixture()`` (for
    a module whose ``tidy`` waits for fixtures of its own)."""

    @pytest.fixture(scope="module", name="platform")
    def platform_fixture() -> Platform:
        return shared_platform()

    return platform_fixture


def platform_fixtures() -> tuple[Any, Any]:
    """A module's ``platform`` (the shared one) and autouse ``tidy`` fixtures, in one line:
    ``platform, tidy = platform_fixtures()``."""

    @pytest.fixture(autouse=True, name="tidy")
    def tidy_fixture(platform: Platform) -> Iterator[None]:
        yield from tidy_after(platform)

    return platform_fixture(), tidy_fixture


def public_service(platform: Platform) -> MeshedFargateService:
    """A public service of the test's own, for an edge that is built: the gateway stays free
    for the tests that expect an edge to be refused (a service takes one edge, for good)."""
    return MeshedFargateService(
        platform.stack,
        "Fronted",
        cluster=platform.cluster,
        name="fronted",
        image=platform.image,
        port=8085,
        public=True,
    )
