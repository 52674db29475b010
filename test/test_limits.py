"""A stack that would pass CloudFormation's 500 resources fails at synthesis, saying which
services to move (the README's multi-stack layout runs in test_readme.py)."""

from __future__ import annotations

import re

import pytest
from aws_cdk import App, CfnOutput, CfnResource, Environment, Stack, Stage
from conftest import SynthesizedApp

from trading_constructs import (
    MeshedFargateService,
    PlatformDashboard,
    ScannedRepository,
    ServiceImage,
    TradingCluster,
    TradingEdge,
)
from trading_constructs.limits import (
    MAX_TEMPLATE_BYTES,
    SIZE_CHECK_FROM,
    estimated_template_bytes,
    watch_stack_limits,
)

ENV = Environment(account="123456789012", region="us-east-1")


def test_too_many_services_in_one_stack_fail_at_synth_naming_what_to_move() -> None:
    # GIVEN 34 Service Connect services in the platform's own stack (about 14 resources each)
    app = App()
    stack = Stack(app, "Big", env=ENV)
    cluster = TradingCluster(stack, "Cluster")
    image = ServiceImage(repository=ScannedRepository(stack, "Repo", key=cluster.key), tag="v1")
    for i in range(34):
        MeshedFargateService(stack, f"S{i}", cluster=cluster, name=f"s{i}", port=8080, image=image)
    # WHEN synthesized  THEN our error comes first, with the count and services to move
    with pytest.raises(RuntimeError) as raised:
        app.synth()
    message = str(raised.value)
    assert re.search(r"Stack 'Big' has 5\d\d resources, more than CloudFormation's 500", message)
    assert "move at least 3 of its 34 services into another stack" in message
    assert "'Big/S33'" in message


def test_a_template_past_1_mb_or_200_outputs_fails_at_synth() -> None:
    # GIVEN a stack of 160 resources of 7 KB each (1.1 MB) and 201 outputs
    app = App()
    stack = Stack(app, "Heavy", env=ENV)
    watch_stack_limits(stack)  # as every construct of the library does for its stack
    for i in range(SIZE_CHECK_FROM + 10):
        CfnResource(
            stack,
            f"P{i}",
            type="AWS::SSM::Parameter",
            properties={"Type": "String", "Value": "x" * 7000},
        )
    for i in range(201):
        CfnOutput(stack, f"O{i}", value="v")
    # WHEN synthesized  THEN both limits are named, with the size and what to do
    with pytest.raises(RuntimeError) as raised:
        app.synth()
    message = str(raised.value)
    assert "Stack 'Heavy' has 201 outputs, more than CloudFormation's 200 per template" in message
    assert re.search(r"Stack 'Heavy' has a template of about 1,[0-9,]+ bytes, more than", message)
    assert "move constructs into a stack of their own" in message


def test_the_size_estimate_is_above_the_real_template_and_close_to_it(
    example: SynthesizedApp,
) -> None:
    # GIVEN the example's stack, already synthesized (App Mesh, its largest form)
    stack = example.app.node.find_child("TradingPlatform")
    assert isinstance(stack, Stack)
    real = len((example.outdir / "TradingPlatform.template.json").read_text())
    resources = [
        c for c in stack.node.find_all() if isinstance(c, CfnResource) and Stack.of(c) is stack
    ]
    # WHEN estimated  THEN never below the real size (the check errs on the safe side), and
    # not so far above that a stack well under the limit would be refused
    estimate = estimated_template_bytes(stack, resources)
    assert real <= estimate <= 1.3 * real
    assert estimate < MAX_TEMPLATE_BYTES


def test_the_multi_stack_layout_works_inside_a_stage() -> None:
    # GIVEN the README's layout (platform, a stack per service, edge, dashboard) in a Stage
    app = App()
    stage = Stage(app, "Prod", env=ENV)
    platform = Stack(stage, "Platform")
    cluster = TradingCluster(platform, "Cluster")
    repository = ScannedRepository(platform, "Repo", key=cluster.key)
    image = ServiceImage.from_repository(repository, tag="v1")
    orders = MeshedFargateService(
        Stack(stage, "Orders"), "Orders", cluster=cluster, name="orders", port=8080, image=image
    )
    pricing = MeshedFargateService(
        Stack(stage, "Pricing"),
        "Pricing",
        cluster=cluster,
        name="pricing",
        port=8081,
        image=image,
        public=True,
        backends=[orders],
    )
    edge = TradingEdge(Stack(stage, "Edge"), "Edge", cluster=cluster, service=pricing)
    PlatformDashboard(Stack(stage, "Dashboard"), "Dashboard", services=[orders, pricing], edge=edge)
    # WHEN synthesized  THEN the stage's stacks depend one way: platform, edge, services, dashboard
    stacks = app.synth().get_nested_assembly(f"assembly-{stage.stage_name}").stacks
    waits_for = {
        s.stack_name: {d.id for d in s.dependencies if not d.id.endswith(".assets")} for s in stacks
    }
    ids = {s.stack_name: s.id for s in stacks}
    assert waits_for["Prod-Platform"] == set()
    assert waits_for["Prod-Edge"] == {ids["Prod-Platform"]}
    assert waits_for["Prod-Pricing"] == {ids["Prod-Platform"], ids["Prod-Orders"], ids["Prod-Edge"]}
    assert ids["Prod-Pricing"] in waits_for["Prod-Dashboard"]
