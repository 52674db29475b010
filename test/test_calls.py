"""Services that call each other, in one stack or across stacks, on both meshes: every call is
allowed, no dependency cycle forms, and on Service Connect the service that started first is
redeployed once the one it calls exists. The apps synthesize with the CLI's context (cdk.json's
recommended flags), so stacks read each other's values with Fn::GetStackOutput, as users'
apps do; across stacks an edge and a dashboard have stacks of their own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from cfn_graph import cycles, dependency_graph, split_stack_outputs, stack_graph
from cfnlint.api import lint
from conftest import CDK_CONTEXT, synthesize

from examples.trading_platform.app import add_compliance_checks
from trading_constructs import (
    Mesh,
    MeshedFargateService,
    PlatformDashboard,
    ScannedRepository,
    ServiceImage,
    TradingCluster,
    TradingEdge,
)

ENV = Environment(account="123456789012", region="us-east-1")
REDEPLOY = "Custom::AWS"


@dataclass(frozen=True)
class Ring:
    """a <-> b (a mutual pair) and the ring a -> c -> b -> a."""

    templates: dict[str, dict[str, Any]]
    manifest_dependencies: dict[str, list[str]]
    services: dict[str, MeshedFargateService]


def _ring(mesh: Mesh | None, *, multi_stack: bool) -> Ring:
    app = App(context=CDK_CONTEXT)
    services = _add_ring(app, mesh, multi_stack=multi_stack)
    assembly = app.synth()
    return Ring(
        templates={s.stack_name: s.template for s in assembly.stacks},
        manifest_dependencies={
            s.stack_name: [d.id for d in s.dependencies if not d.id.endswith(".assets")]
            for s in assembly.stacks
        },
        services=services,
    )


def _add_ring(
    app: App, mesh: Mesh | None, *, multi_stack: bool, deletion_protection: bool = False
) -> dict[str, MeshedFargateService]:
    platform = Stack(app, "Platform", env=ENV)
    cluster = TradingCluster(platform, "Cluster", mesh=mesh)
    image = ServiceImage(repository=ScannedRepository(platform, "Repo", key=cluster.key), tag="v1")

    def stack(name: str) -> Stack:
        return Stack(app, name, env=ENV) if multi_stack else platform

    def service(stack_name: str, id: str, port: int, **props: Any) -> MeshedFargateService:
        return MeshedFargateService(
            stack(stack_name), id, cluster=cluster, name=id.lower(), port=port, image=image, **props
        )

    a = service("StackA", "A", 8080)
    b = service("StackB", "B", 8081, backends=[a])
    a.add_backend(b)  # mutual
    c = service("StackC", "C", 8082, backends=[b])
    a.add_backend(c)  # closes the ring a -> c -> b -> a
    d = service("StackD", "D", 8083, backends=[c], public=True)
    edge = TradingEdge(
        stack("Edge"), "Edge", cluster=cluster, service=d, deletion_protection=deletion_protection
    )
    PlatformDashboard(stack("Dashboard"), "Dashboard", services=[a, b, c, d], edge=edge)
    return {"a": a, "b": b, "c": c}


VARIANTS = {
    "service-connect/one-stack": (None, False),
    "service-connect/stacks": (None, True),
    "appmesh/stacks": ("appmesh", True),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def ring(request: pytest.FixtureRequest) -> Ring:
    mesh, multi = VARIANTS[request.param]
    return _ring(Mesh.app_mesh() if mesh else None, multi_stack=multi)


def test_no_dependency_cycle_in_any_stack_or_between_them(ring: Ring) -> None:
    for template in ring.templates.values():
        assert cycles(dependency_graph(template)) == []
    assert cycles(stack_graph(ring.templates, None)) == []
    # service stacks depend on the platform stack, never the other way
    assert ring.manifest_dependencies.get("Platform", []) == []


def test_each_call_is_allowed_on_its_port(ring: Ring) -> None:
    ingress = [
        resource["Properties"]
        for template in ring.templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    described = sorted(
        rule["Description"] for rule in ingress if " calls " in rule.get("Description", "")
    )
    assert described == ["a calls b", "a calls c", "b calls a", "c calls b", "d calls c"]
    ports = {
        rule["Description"]: rule["FromPort"]
        for rule in ingress
        if " calls " in rule.get("Description", "")
    }
    assert ports == {
        "a calls b": 8081,
        "a calls c": 8082,
        "b calls a": 8080,
        "c calls b": 8081,
        "d calls c": 8082,
    }


def test_cfn_lint_finds_nothing() -> None:
    # the variant with every kind of resource the calls add (rules, redeploys, stacks)
    ring = _ring(None, multi_stack=True)
    findings = {
        name: [str(m) for m in lint(json.dumps(template), regions=["us-east-1"])]
        for name, template in ring.templates.items()
    }
    assert findings == {name: [] for name in ring.templates}


def test_service_connect_redeploys_the_services_that_started_first(ring: Ring) -> None:
    redeploys = [
        resource
        for template in ring.templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == REDEPLOY
    ]
    if ring.services["a"].cluster.mesh.resolves_endpoints_at_start:
        # a started before b and c (b and c wait for a): a is redeployed after each of them
        assert len(redeploys) == 2
        calls = [json.dumps(r["Properties"]["Create"]) for r in redeploys]
        assert all("forceNewDeployment" in call and "updateService" in call for call in calls)
    else:
        # App Mesh's Envoy learns endpoints from the mesh while it runs: nothing to redeploy
        assert redeploys == []


def test_no_value_read_from_another_stack_is_split(ring: Ring) -> None:
    for name, template in ring.templates.items():
        assert split_stack_outputs(template) == [], name


def test_control_a_split_stack_output_is_found() -> None:
    read = {"Fn::GetStackOutput": {"StackName": "Platform", "OutputName": "RepoArn"}}
    assert split_stack_outputs({"Image": {"Fn::Split": [":", read]}}) == [
        read["Fn::GetStackOutput"]
    ]
    assert split_stack_outputs({"Image": {"Fn::Join": ["", [read, ":v1"]]}}) == []


def test_every_service_waits_for_the_clusters_capacity_providers(ring: Ring) -> None:
    # GIVEN services in the platform's stack or in stacks of their own
    platform = ring.templates["Platform"]["Resources"]
    (association,) = (
        logical_id
        for logical_id, resource in platform.items()
        if resource["Type"] == "AWS::ECS::ClusterCapacityProviderAssociations"
    )
    for stack_name, template in ring.templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::ECS::Service":
                continue
            # THEN each is created once the providers are associated: by DependsOn in the
            # platform's stack, by its stack's dependency on the platform's elsewhere
            if stack_name == "Platform":
                assert association in resource["DependsOn"]
            else:
                assert "Platform" in ring.manifest_dependencies[stack_name]


@pytest.mark.parametrize("variant", ["service-connect/one-stack", "service-connect/stacks"])
def test_the_compliance_packs_find_nothing_in_mutual_pairs_and_rings(
    variant: str, tmp_path: Path
) -> None:
    # GIVEN a mutual pair and a ring on Service Connect, whose earlier services are redeployed
    # by a custom resource, with AwsSolutions, NIST 800-53 R5 and PCI DSS 3.2.1 as the
    # example runs them (an inline policy would break NIST's and PCI's IAMNoInlinePolicy)
    mesh, multi = VARIANTS[variant]
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path))
    add_compliance_checks(app)
    # (the load balancer protected from deletion, as production keeps it)
    _add_ring(app, mesh, multi_stack=multi, deletion_protection=True)
    synthesized = synthesize(app)
    # WHEN synthesized  THEN no pack reports a finding; only the edge's plain-HTTP warning is
    # left (these apps give it no certificate), and the deploy-readiness warning that deletion
    # protection on a first create blocks its rollback (on here as production keeps it)
    assert synthesized.validation_report is not None, "the packs did not run"
    findings = sorted(
        f"{violation['ruleName']} at {construct['constructPath']}"
        for report in synthesized.validation_report["pluginReports"]
        for violation in report.get("violations", [])
        for construct in violation["violatingConstructs"]
    )
    edge = "Edge/Edge" if multi else "Platform/Edge"
    assert findings == [
        f"Annotation::trading-constructs:edge-without-https at {edge}",
        f"no-deletion-protection-on-create at {edge}/LoadBalancer/Resource",
    ]
    # and the redeploys run as a role whose only policies are managed ones
    for template in synthesized.templates.values():
        kinds = {r["Type"] for r in template["Resources"].values()}
        assert "AWS::IAM::Policy" not in kinds
        if REDEPLOY in kinds:
            assert _redeploy_waits_for_its_managed_policy(template)


def _redeploy_waits_for_its_managed_policy(template: dict[str, Any]) -> bool:
    resources = template["Resources"]
    (policy,) = (k for k in resources if k.startswith("RedeployPolicy"))
    (function,) = (
        r for k, r in resources.items() if k.startswith("AWS679f53fac002430cb0da5b7982bd2287")
    )
    calls = [r for r in resources.values() if r["Type"] == REDEPLOY]
    return policy in function.get("DependsOn", []) and all(
        policy in call.get("DependsOn", []) for call in calls
    )
