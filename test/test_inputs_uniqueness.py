"""Bad input, by category: uniqueness. Names AWS keeps unique per account and region (or per
account, VPC, registry, cluster or mesh), and names the library derives from them, fail at
synth when a second construct of the app would take one: the error names the prop, the value
and the path of the construct that already has it.

Stacks with a concrete account and region are compared with each other; a stack that leaves
either to deploy time is compared with itself only. Nothing here synthesizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from conftest import team_vpc
from inputs_support import (
    REGION,
    Platform,
    platform_fixture,
    shared_platform,
    tidy_after,
    unique_name,
)
from validation_support import bad

from trading_constructs import (
    ApiKeySecret,
    Mesh,
    MeshedFargateService,
    PlatformDashboard,
    PullThroughCache,
    RegistryScanning,
    Release,
    ScannedRepository,
    TradingCluster,
)
from trading_constructs.repository import PUBLIC_CACHE_PREFIX


@dataclass(frozen=True)
class Named:
    """A second stack of the platform's account and region, holding a VPC and an App Mesh
    cluster (mTLS on) with every name it can claim."""

    stack: Stack
    vpc: ec2.Vpc
    cluster: TradingCluster


platform = platform_fixture()


@pytest.fixture(scope="module")
def named(platform: Platform) -> Iterator[Named]:
    stack = platform.stack_in("Named")
    vpc = team_vpc(stack)
    cluster = TradingCluster(
        stack,
        "Platform",
        vpc=vpc,
        cluster_name="trading",
        mesh=Mesh.app_mesh(mesh_name="trading-mesh"),
    )
    yield Named(stack, vpc, cluster)
    # the names it holds are freed with it, for the other suites on the shared platform
    platform.app.node.try_remove_child(stack.node.id)


@pytest.fixture(autouse=True)
def tidy(platform: Platform, named: Named) -> Iterator[None]:
    yield from tidy_after(platform)


IN_REGISTRY = "in the account's registry of this region"


def taken(prop: str, value: object, where: str, holder: str) -> str:
    """The message of a name another construct holds."""
    return bad(prop, value, f"a name unique {where}; {holder!r} already has it")


# -- per account and region ---------------------------------------------------------------


def test_a_cluster_name_vpc_namespace_and_mesh_name_are_taken_once(
    platform: Platform, named: Named
) -> None:
    # GIVEN a cluster named 'trading' with the namespace 'trading.local' in a VPC and the mesh
    # 'trading-mesh'  WHEN another cluster of the account and region asks for all three
    with pytest.raises(ValueError) as raised:
        TradingCluster(
            platform.stack_in("Again"),
            "Platform",
            vpc=named.vpc,
            cluster_name="trading",
            mesh=Mesh.app_mesh(mesh_name="trading-mesh"),
        )
    # THEN one error names each prop and the construct that has it
    message = str(raised.value)
    assert message.startswith("TradingCluster 'Again/Platform': 4 invalid props:")
    holder = "Named/Platform"
    for expected in (
        taken("cluster_name", "trading", "among the ECS clusters of an account and region", holder),
        taken(
            "namespace_name", "trading.local", "among the private DNS namespaces of one VPC", holder
        ),
        taken(
            "mesh.mesh_name",
            "trading-mesh",
            "among the App Mesh meshes of an account and region",
            holder,
        ),
        # App Mesh pulls Envoy through a pull-through cache, one per prefix and registry
        taken(
            "mesh",
            "Mesh.app_mesh()",
            "per registry, as the prefix of PullThroughCache(prefix='ecr-public'), the cache "
            "App Mesh pulls Envoy through and each platform on it makes: one such platform per "
            "account and region, unless each has a prefix of its own, as with "
            "Mesh.app_mesh(cache_prefix='ecr-public-2')",
            "Named/Platform/PublicImages",
        ),
    ):
        assert re.search(expected, message), expected


def test_the_same_names_in_another_region_pass(platform: Platform) -> None:
    cluster = TradingCluster(
        platform.stack_in("Elsewhere", region="eu-west-1"), "Platform", cluster_name="trading"
    )
    assert cluster.cluster.cluster_name is not None


def test_a_repository_name_is_taken_once_and_freed_with_its_construct(platform: Platform) -> None:
    first = ScannedRepository(platform.stack, "Quotes", key=platform.key, repository_name="quotes")
    with pytest.raises(
        ValueError, match=taken("repository_name", "quotes", IN_REGISTRY, "Test/Quotes")
    ):
        ScannedRepository(
            platform.stack_in("Named"), "Quotes", key=platform.key, repository_name="quotes"
        )
    # WHEN the first is removed from the tree  THEN its name is free again
    platform.stack.node.try_remove_child(first.node.id)
    ScannedRepository(
        platform.stack_in("Named"), "Quotes", key=platform.key, repository_name="quotes"
    )


def test_a_pull_through_prefix_is_taken_once_per_registry(platform: Platform, named: Named) -> None:
    # The App Mesh cluster's cache holds 'ecr-public' in this account and region
    message = taken("prefix", "ecr-public", IN_REGISTRY, "Named/Platform/PublicImages")
    with pytest.raises(ValueError, match=message):
        PullThroughCache(platform.stack, "Cache", key=platform.key)


def test_a_registry_has_one_scanning_configuration(platform: Platform) -> None:
    RegistryScanning(platform.stack, "Scanning")
    with pytest.raises(
        ValueError, match=r"'Test/Scanning' already sets it for this account and region"
    ):
        RegistryScanning(platform.stack_in("Named"), "Scanning")


def test_stacks_that_leave_the_account_to_deploy_time_are_compared_within_themselves() -> None:
    # GIVEN two stacks of one region and no account: `cdk deploy` may send them to two accounts
    app = App()
    RegistryScanning(Stack(app, "Basic", env=Environment(region=REGION)), "Scanning")
    RegistryScanning(Stack(app, "Enhanced", env=Environment(region=REGION)), "Scanning")
    # WHEN one of them holds a name twice  THEN that fails
    with pytest.raises(ValueError, match=r"'Enhanced/Scanning' already sets it"):
        RegistryScanning(app.node.find_child("Enhanced"), "Again")  # type: ignore[arg-type]


def test_a_secret_name_is_taken_once(platform: Platform) -> None:
    props = {"key": platform.key, "vpc": platform.cluster.vpc, "secret_name": "trading/api-key"}
    ApiKeySecret(platform.stack, "ApiKey", **props)
    where = "among the secrets of an account and region"
    with pytest.raises(
        ValueError, match=taken("secret_name", "trading/api-key", where, "Test/ApiKey")
    ):
        ApiKeySecret(platform.stack, "ApiKey2", **props)


def test_a_dashboard_name_is_taken_once_in_all_regions(platform: Platform) -> None:
    PlatformDashboard(
        platform.stack, "Board", services=[platform.gateway], dashboard_name="trading"
    )
    # CloudWatch dashboards are global: another region's stack cannot have the name either
    elsewhere = platform.stack_in("Elsewhere", region="eu-west-1")
    where = "among the dashboards of an account (all regions)"
    with pytest.raises(ValueError, match=taken("dashboard_name", "trading", where, "Test/Board")):
        PlatformDashboard(elsewhere, "Board", services=[platform.gateway], dashboard_name="trading")


# -- per cluster and mesh: service names and what the mesh derives from them ---------------


def test_a_service_name_is_taken_once_per_cluster(platform: Platform) -> None:
    platform.service("Orders", name="orders")
    where = "among the services of a cluster (its namespace's discovery names)"
    with pytest.raises(ValueError, match=taken("name", "orders", where, "Test/Orders")):
        platform.service("Orders2", name="orders")


@pytest.mark.parametrize("name", ["service-connect"])
def test_a_service_cannot_take_a_name_service_connect_uses(platform: Platform, name: str) -> None:
    with pytest.raises(ValueError, match=bad("name", name, "a name other than the mesh's own")):
        platform.service("Svc", name=name)


@pytest.mark.parametrize("name", ["envoy", "mesh-tls-init"])
def test_a_service_cannot_take_a_container_name_app_mesh_uses(named: Named, name: str) -> None:
    with pytest.raises(ValueError, match=bad("name", name, "'envoy', 'mesh-tls-init'")):
        app_mesh_service(named, "Svc", name=name)


def test_a_weighted_service_holds_its_slots_virtual_node_names(
    platform: Platform, named: Named
) -> None:
    # GIVEN 'quotes' released in weighted slots: virtual nodes 'quotes-blue', 'quotes-green'
    app_mesh_service(named, "Quotes", name="quotes", release=Release.weighted(blue=90, green=10))
    # WHEN another service would be the virtual node 'quotes-green'  THEN it is refused
    where = "in the mesh, whose virtual node 'quotes-green' it derives"
    with pytest.raises(ValueError, match=taken("name", "quotes-green", where, "Named/Quotes")):
        app_mesh_service(named, "Green", name="quotes-green")


@pytest.mark.parametrize(
    ("first", "second", "holder", "certificate"),
    [
        # the CA's secret is 'CaCertificate', which a service named 'ca' would also be
        (None, "ca", "Named/Platform/Mesh/Certificates", "CaCertificate"),
    ],
)
def test_two_names_giving_one_certificate_id_are_refused(
    named: Named, first: str | None, second: str, holder: str, certificate: str
) -> None:
    if first is not None:
        app_mesh_service(named, "First", name=first)
    where = f"in the mesh, whose certificate id {certificate!r} it derives"
    with pytest.raises(ValueError, match=taken("name", second, where, holder)):
        app_mesh_service(named, "Second", name=second)


def app_mesh_service(named: Named, id: str, **props: Any) -> MeshedFargateService:
    defaults = {"cluster": named.cluster, "image": shared_platform().image, "port": 8080}
    return MeshedFargateService(named.stack, id, **{**defaults, "name": unique_name(), **props})


def test_the_cache_prefix_app_mesh_claims_is_the_caches_default() -> None:
    stack = Stack(App(), "Cache", env=Environment(account="123456789012", region="us-east-1"))
    cache = PullThroughCache(stack, "Cache", key=kms.Key(stack, "Key"))
    assert cache.prefix == PUBLIC_CACHE_PREFIX
