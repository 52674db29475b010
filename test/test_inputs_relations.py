"""Bad input, by category: relations between props and between constructs. A backend on
another cluster, the same backend twice, path patterns a request path never matches or with
more wildcards than a listener rule takes, an edge nobody may reach, mesh options of the other
mesh: each fails where it is given, naming the prop.

(A blue/green service with no edge in front fails at synth: see test_edge_validation.py.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from inputs_support import Platform, platform_fixture, public_service, tidy_after
from validation_support import bad, refused

from trading_constructs import Mesh, MeshedFargateService, Release, TradingCluster, TradingEdge


@dataclass(frozen=True)
class Neighbours:
    """A service on another cluster, and a public blue/green service on the platform's."""

    elsewhere: MeshedFargateService
    blue_green: MeshedFargateService


platform = platform_fixture()


@pytest.fixture(scope="module")
def neighbours(platform: Platform) -> Iterator[Neighbours]:
    stack = platform.stack_in("Neighbours")
    other = TradingCluster(stack, "Platform")
    elsewhere = MeshedFargateService(
        stack, "Elsewhere", cluster=other, name="elsewhere", image=platform.image, port=8080
    )
    blue_green = platform.service("BlueGreen", public=True, release=Release.blue_green())
    yield Neighbours(elsewhere, blue_green)
    platform.app.node.try_remove_child(stack.node.id)
    platform.stack.node.try_remove_child(blue_green.node.id)


@pytest.fixture(autouse=True)
def tidy(platform: Platform, neighbours: Neighbours) -> Iterator[None]:
    yield from tidy_after(platform)


# -- services and their backends ----------------------------------------------------------


def test_a_backend_on_another_cluster_is_refused(
    platform: Platform, neighbours: Neighbours
) -> None:
    # Another cluster has its own namespace and mesh: the caller's proxy cannot reach it
    allowed = (
        "services on this service's cluster; 'Neighbours/Elsewhere' runs on 'Neighbours/Platform'"
    )
    with pytest.raises(ValueError, match=bad("backends", "elsewhere", allowed)):
        platform.service("Svc", backends=[neighbours.elsewhere])
    caller = platform.service("Caller")
    with pytest.raises(
        ValueError, match=bad("backend", "elsewhere", "a service on this service's cluster")
    ):
        caller.add_backend(neighbours.elsewhere)


def test_the_same_backend_twice_is_refused(platform: Platform) -> None:
    gateway = platform.gateway
    with pytest.raises(
        ValueError, match=bad("backends", ["gateway", "gateway"], "each service once")
    ):
        platform.service("Svc", backends=[gateway, gateway])
    caller = platform.service("Caller", backends=[gateway])
    with pytest.raises(
        ValueError, match=bad("backend", "gateway", "not already a backend of this one")
    ):
        caller.add_backend(gateway)


# -- an edge and what it routes -----------------------------------------------------------

PATTERN = "starting with '/' (or a wildcard)"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(PATTERN, id="no-leading-slash", shown="api/*", path_patterns=["api/*"]),
        refused(
            "at most 5 wildcards (* ?)",
            id="six-wildcards-in-one-pattern",
            shown="/a/*/*/*/*/*/?",
            path_patterns=["/a/*/*/*/*/*/?"],
        ),
        refused(
            "None with blue/green",
            id="path-patterns-with-blue-green",
            path_patterns=["/a/*/*", "/b/*/*", "/c/*/*"],
            blue_green=True,
        ),
        refused("at least one IPv4 CIDR, such as '0.0.0.0/0'", id="no-ingress", ingress_cidrs=[]),
        refused(
            "each CIDR once", id="the-same-cidr-twice", ingress_cidrs=["10.0.0.0/8", "10.0.0.0/8"]
        ),
    ],
)
def test_bad_edge_relations(
    platform: Platform, neighbours: Neighbours, props: dict[str, Any], message: str
) -> None:
    service = neighbours.blue_green if props.pop("blue_green", False) else platform.gateway
    with pytest.raises(ValueError, match=f"^TradingEdge 'Test/Edge': {message}"):
        TradingEdge(platform.stack, "Edge", cluster=platform.cluster, service=service, **props)


def test_a_pattern_may_start_with_a_wildcard(platform: Platform) -> None:
    edge = TradingEdge(
        platform.stack,
        "Edge",
        cluster=platform.cluster,
        service=public_service(platform),
        path_patterns=["*.json", "/api/*"],
    )
    assert len(edge.rules) == 1


# -- options of the other mesh --------------------------------------------------------------


def test_a_mesh_name_is_app_mesh_only() -> None:
    message = re.escape("Mesh: mesh_name applies to App Mesh (allowed: None)")
    with pytest.raises(ValueError, match=message):
        Mesh(kind="service-connect", mesh_name="trading")
