"""The architecture picture (``trading_constructs.diagram``): drawn from the synthesized example,
never by hand. The committed graph (docs/architecture.json, beside docs/architecture.png) must
be the graph of the session's synthesis of the example as ``cdk synth`` builds it: a change to
the example that the picture does not show fails here (``npx projen diagram`` redraws both).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest
from conftest import ROOT, SynthesizedApp

from trading_constructs.diagram import (
    ICONS,
    KINDS,
    ArchitectureGraph,
    graph_of_assembly,
    graph_of_stacks,
)
from trading_constructs.diagram.cli import main
from trading_constructs.readiness.assembly import read_assembly

COMMITTED = ROOT / "docs" / "architecture.json"
PICTURE_URL = (
    "https://raw.githubusercontent.com/trading-constructs/trading-constructs/main/"
    "docs/architecture.png"
)
SERVICES = ("data-ingestion", "analytics-engine", "api-gateway")


@pytest.fixture(scope="module")
def graph(mutual_tls: SynthesizedApp) -> ArchitectureGraph:
    return graph_of_assembly(mutual_tls.outdir)


def _labels(graph: ArchitectureGraph) -> dict[str, str]:
    return {node.id: node.label for node in graph.nodes}


def _edges(graph: ArchitectureGraph) -> set[tuple[str, str, str]]:
    labels = _labels(graph)
    return {(labels[e.source], labels[e.target], e.label) for e in graph.edges}


def test_the_committed_graph_is_the_graph_of_the_example(graph: ArchitectureGraph) -> None:
    # GIVEN the example as `cdk synth` builds it (this session's synthesis)
    # THEN its graph is the one committed beside the picture, to the character
    assert graph.to_json() == COMMITTED.read_text(), (
        "docs/architecture.png no longer shows the example: run `npx projen diagram` and "
        "commit docs/architecture.json and docs/architecture.png"
    )
    # AND the README opens with that picture, by an absolute URL (PyPI shows it too)
    readme = (ROOT / "README.md").read_text()
    assert PICTURE_URL in readme.split("\n## ", 1)[0]
    assert (ROOT / "docs" / "architecture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_graph_shows_what_the_platform_is_made_of(graph: ArchitectureGraph) -> None:
    groups = {group.label: group for group in graph.groups}
    kinds = {node.label: node.kind for node in graph.nodes}
    # the VPC and its three Availability Zones, each with its three subnets and a NAT gateway
    zones = [n for n in graph.nodes if n.kind == "availability-zone"]
    assert [z.label.split("\n")[0] for z in zones] == ["AZ 1", "AZ 2", "AZ 3"]
    assert all(z.label.count("\n") == 4 and "NAT gateway" in z.label for z in zones)
    assert groups["VPC 10.0.0.0/16"].id == zones[0].group
    # each service in the ECS cluster, with its Envoy sidecar and certificate init container
    for name in SERVICES:
        service = groups[f"{name} service"]
        assert groups["ECS cluster"].id == service.parent
        members = sorted((n.label, n.kind) for n in graph.nodes if n.group == service.id)
        assert members == [(name, "container"), ("envoy", "sidecar"), ("mesh-tls-init", "sidecar")]
    edges = _edges(graph)
    # the calls between services (through the mesh's port), and the database they use
    assert ("api-gateway", "data-ingestion", "tcp 15000") in edges
    assert ("api-gateway", "analytics-engine", "tcp 15000") in edges
    assert {(s, t) for s, t, label in edges if label == "tcp 5433"} == {
        ("data-ingestion", "MarketDataDb\naurora-postgresql 17.9, 2 instances"),
        ("analytics-engine", "MarketDataDb\naurora-postgresql 17.9, 2 instances"),
        *(
            (f"{rotation} / RotationFunction", "MarketDataDb\naurora-postgresql 17.9, 2 instances")
            for rotation in (
                "MarketDataDbSecret",  # the master user's
                "DataIngestionDbUser / Credentials",  # and each application user's
                "AnalyticsEngineDbUser / Credentials",
            )
        ),
    }
    # AND each service reads its own database user's secret, never the master's
    for name, user in (
        ("data-ingestion", "DataIngestion"),
        ("analytics-engine", "AnalyticsEngine"),
    ):
        assert (name, f"{user}DbUser / Credentials", "reads") in edges
        assert (name, "MarketDataDbSecret", "reads") not in edges
    # the load balancer and its paths: the production listener and the blue/green test one
    assert ("load balancer (internet-facing)", "api-gateway", "HTTP:80 /*, HTTP:9443 /*") in edges
    # secrets and their rotation, repositories and the image cache, the alarm topic
    rotated = sorted(t for s, t, label in edges if label == "rotates: rate(90 days)")
    assert rotated == [
        "AnalyticsEngineDbUser / Credentials",
        "DataIngestionDbUser / Credentials",
        "MarketDataApiKey",
        "MarketDataDbSecret",
    ]
    for folder, name in zip(
        ("DataIngestion", "AnalyticsEngine", "ApiGateway"), SERVICES, strict=True
    ):
        assert kinds[f"{folder}Repository"] == "repository"
        assert (f"{folder}Repository", name, "image") in edges
    # (Envoy's image, for the sidecar and the init container, through the pull-through cache)
    cache = next(n.id for n in graph.nodes if n.kind == "image-cache")
    pulled = sorted(_labels(graph)[e.target] for e in graph.edges if e.source == cache)
    assert pulled == ["envoy"] * 3 + ["mesh-tls-init"] * 3
    assert ("22 CloudWatch alarms", "Platform / Alarms", "notify") in edges


def test_a_change_to_the_example_changes_the_graph(mutual_tls: SynthesizedApp) -> None:
    # GIVEN the example's stack with one call between services taken out (negative control)
    (stack,) = [s for stacks in read_assembly(mutual_tls.outdir) for s in stacks]
    template = json.loads(json.dumps(stack.template))
    call = next(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Properties", {}).get("Description") == "api-gateway calls data-ingestion"
    )
    del template["Resources"][call]
    changed = graph_of_stacks([dataclasses.replace(stack, template=template)])
    # THEN its graph is not the committed one: the comparison above would fail
    assert changed.to_json() != COMMITTED.read_text()
    assert ("api-gateway", "data-ingestion", "tcp 15000") not in _edges(changed)


def test_the_command_writes_and_checks_the_graph(
    mutual_tls: SynthesizedApp, tmp_path: Path
) -> None:
    out = tmp_path / "docs" / "architecture"
    # WHEN the command draws the graph only (no diagrams package or Graphviz needed)
    assert main([str(mutual_tls.outdir), "--out", str(out), "--graph-only"]) == 0
    # THEN it wrote the example's graph, which --check accepts until it changes
    assert out.with_suffix(".json").read_text() == COMMITTED.read_text()
    assert main([str(mutual_tls.outdir), "--out", str(out), "--check"]) == 0
    out.with_suffix(".json").write_text("{}")
    assert main([str(mutual_tls.outdir), "--out", str(out), "--check"]) == 1
    # AND a folder that is no assembly is refused
    assert main([str(tmp_path), "--out", str(out), "--check"]) == 2


def test_every_kind_of_node_has_an_icon_of_the_diagrams_library() -> None:
    assert set(ICONS) == set(KINDS)
    for path in ICONS.values():
        module, name = path.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), name), path
