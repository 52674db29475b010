"""The architecture graph: what the picture shows, as plain data that can be committed beside
the picture and compared with the graph of a fresh synthesis."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = (
    "availability-zone",
    "container",
    "sidecar",
    "load-balancer",
    "database",
    "secret",
    "rotation",
    "repository",
    "image-cache",
    "topic",
    "alarms",
    "subscriber",
)
"""The kinds of node, each drawn with its own AWS icon."""


@dataclass(frozen=True, order=True)
class Group:
    """A box around nodes: a stack, the VPC, the ECS cluster, one service's task."""

    id: str
    label: str
    parent: str | None = None


@dataclass(frozen=True, order=True)
class Node:
    """One thing in the picture, in its group (``None``: the stack's region, outside a VPC)."""

    id: str
    kind: str
    label: str
    group: str | None = None


@dataclass(frozen=True, order=True)
class Edge:
    """An arrow: who calls, serves, reads, rotates or notifies whom."""

    source: str
    target: str
    label: str


@dataclass
class ArchitectureGraph:
    """Groups, nodes and edges, kept sorted so that the same assembly gives the same JSON."""

    groups: list[Group] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def to_json(self) -> str:
        """The graph as the committed ``docs/architecture.json`` holds it."""
        data = {
            "groups": [asdict(g) for g in sorted(set(self.groups))],
            "nodes": [asdict(n) for n in sorted(set(self.nodes))],
            "edges": [asdict(e) for e in sorted(set(self.edges))],
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ArchitectureGraph:
        data: dict[str, Any] = json.loads(text)
        return cls(
            groups=[Group(**g) for g in data["groups"]],
            nodes=[Node(**n) for n in data["nodes"]],
            edges=[Edge(**e) for e in data["edges"]],
        )
