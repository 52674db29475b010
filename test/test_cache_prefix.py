"""Two sidecar-mesh platforms in one account and region: ECR allows a pull-through cache prefix
once per registry, so the second platform gives its mesh a prefix of its own
(``Mesh.mutual_tls(cache_prefix=...)``, ``Mesh.app_mesh(cache_prefix=...)``). Each platform's
cache, Envoy image and execution role then name its own prefix; the same prefix twice, or one
ECR would refuse, fails at synth naming the prop."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template
from construct_platforms import CDK_CONTEXT

from trading_constructs import (
    Mesh,
    MeshedFargateService,
    ScannedRepository,
    ServiceImage,
    TradingCluster,
)

ENV = Environment(account="123456789012", region="us-east-1")
PREFIXES = {"Production": "docker-hub", "Staging": "docker-hub-staging"}


def _platform(app: App, name: str, mesh: Mesh) -> Stack:
    stack = Stack(app, name, env=ENV)
    cluster = TradingCluster(stack, "Platform", mesh=mesh)
    repository = ScannedRepository(stack, "Repo", key=cluster.key)
    MeshedFargateService(
        stack,
        "Prices",
        cluster=cluster,
        name="prices",
        port=8080,
        image=ServiceImage(repository=repository, tag="v1"),
        desired_count=1,
    )
    return stack


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    """Production on the default prefix, staging on its own, in one account and region."""
    app = App(context=CDK_CONTEXT)
    stacks = {
        "Production": _platform(app, "Production", Mesh.mutual_tls()),
        "Staging": _platform(app, "Staging", Mesh.mutual_tls(cache_prefix=PREFIXES["Staging"])),
    }
    return {name: Template.from_stack(stack).to_json() for name, stack in stacks.items()}


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _envoy_repository(prefix: str) -> str:
    return f"/{prefix}/envoyproxy/envoy"


@pytest.mark.parametrize("name", sorted(PREFIXES))
def test_each_platform_caches_docker_hub_under_its_own_prefix(
    templates: dict[str, dict[str, Any]], name: str
) -> None:
    # GIVEN two mutual-TLS platforms in one account and region  WHEN both synthesize
    template = templates[name]
    # THEN each cache rule and creation template holds the platform's own prefix
    rules = _of_type(template, "AWS::ECR::PullThroughCacheRule").values()
    assert [r["Properties"]["EcrRepositoryPrefix"] for r in rules] == [PREFIXES[name]]
    creation = _of_type(template, "AWS::ECR::RepositoryCreationTemplate").values()
    assert [t["Properties"]["Prefix"] for t in creation] == [PREFIXES[name]]


@pytest.mark.parametrize("name", sorted(PREFIXES))
def test_each_envoy_image_and_execution_role_name_the_platforms_prefix(
    templates: dict[str, dict[str, Any]], name: str
) -> None:
    # GIVEN two mutual-TLS platforms in one account and region  WHEN both synthesize
    template = templates[name]
    own, other = PREFIXES[name], next(p for n, p in PREFIXES.items() if n != name)
    (task,) = _of_type(template, "AWS::ECS::TaskDefinition").values()
    envoy = next(c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == "envoy")
    # THEN Envoy comes from the platform's own cached repository, not the other's
    assert _envoy_repository(own) + "@sha256:" in json.dumps(envoy["Image"])
    assert _envoy_repository(other) not in json.dumps(envoy["Image"])
    # AND the execution role may pull (and create) that repository only
    role = task["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    policies = [
        p["Properties"]["PolicyDocument"]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for p in _of_type(template, kind).values()
        if {"Ref": role} in p["Properties"].get("Roles", [])
    ]
    pulls = [
        json.dumps(s["Resource"])
        for document in policies
        for s in document["Statement"]
        if "ecr:BatchImportUpstreamImage" in s["Action"]
    ]
    assert len(pulls) == 1
    assert pulls[0].endswith(f'repository{_envoy_repository(own)}"')
    assert _envoy_repository(other) not in pulls[0]


def test_the_same_prefix_twice_is_refused_naming_the_prop() -> None:
    # GIVEN a staging platform with its own prefix
    app = App()
    staging = Mesh.mutual_tls(cache_prefix="docker-hub-staging")
    TradingCluster(Stack(app, "Staging", env=ENV), "Platform", mesh=staging)
    # WHEN a second platform of the account and region asks for the same prefix
    with pytest.raises(ValueError) as raised:
        TradingCluster(Stack(app, "Production", env=ENV), "Platform", mesh=staging)
    # THEN the error names the prop, the value, the holder and the way out
    message = str(raised.value)
    assert message.startswith(
        "TradingCluster 'Production/Platform': mesh.cache_prefix='docker-hub-staging' "
        "is not allowed"
    )
    assert "Mesh.mutual_tls(cache_prefix='docker-hub-staging-2')" in message
    assert message.endswith("'Staging/Platform/DockerHubImages' already has it)")


def test_a_second_default_platform_is_told_the_way_out() -> None:
    # GIVEN an App Mesh platform on the default prefix
    app = App()
    TradingCluster(Stack(app, "First", env=ENV), "Platform", mesh=Mesh.app_mesh())
    # WHEN a second one of the account and region takes the default too
    with pytest.raises(ValueError, match=r"Mesh\.app_mesh\(cache_prefix='ecr-public-2'\)"):
        TradingCluster(Stack(app, "Second", env=ENV), "Platform", mesh=Mesh.app_mesh())
    # THEN (above) the error names the prop that lets it through; with it, it builds a cache
    # of that prefix
    third = TradingCluster(
        Stack(app, "Third", env=ENV),
        "Platform",
        mesh=Mesh.app_mesh(cache_prefix="ecr-public-2", mesh_name="second"),
    )
    assert third.public_images is not None
    assert third.public_images.rule.ecr_repository_prefix == "ecr-public-2"


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [
        ("Docker-Hub", "lower-case letters, digits, . _ - /"),
        ("docker--hub", "lower-case letters, digits, . _ - /"),
        ("d", "2 to 30 characters"),
        ("docker-hub-" + "x" * 20, "2 to 30 characters"),
        ("ROOT", "a namespace, not ROOT"),
    ],
)
def test_a_prefix_ecr_refuses_is_refused(prefix: str, allowed: str) -> None:
    # GIVEN a prefix outside ECR's ecrRepositoryPrefix rule  WHEN a mesh is given it
    # THEN the mesh refuses it, naming the prop, the value and what is allowed
    for factory in (Mesh.mutual_tls, Mesh.app_mesh):
        with pytest.raises(ValueError) as raised:
            factory(cache_prefix=prefix)
        assert f"cache_prefix={prefix!r} is not allowed (allowed: {allowed})" in str(raised.value)


def test_service_connect_takes_no_cache_prefix() -> None:
    # GIVEN Service Connect, whose proxy image is ECS's own  WHEN given a cache prefix
    # THEN the mesh refuses it
    with pytest.raises(ValueError, match="cache_prefix applies to the mutual-TLS mesh and App"):
        Mesh(kind="service-connect", cache_prefix="docker-hub-staging")
