"""An architecture diagram drawn from a synthesized CDK app, not by hand: the graph of what its
templates say (VPC and Availability Zones, ECS cluster, services with their sidecars and the
calls between them, load balancers and their paths, databases, secrets and their rotation,
image repositories, alarm topics), then the picture, drawn with the ``diagrams`` library and
Graphviz.

- ``python -m trading_constructs.diagram cdk.out --out docs/architecture``: writes
  ``docs/architecture.json`` (the graph) and ``docs/architecture.png``; ``--graph-only`` needs
  neither ``diagrams`` nor Graphviz, ``--check`` exits 1 when the committed graph is stale;
- ``graph_of_assembly("cdk.out")`` and ``render(graph, "architecture")`` from Python.

Commit the graph beside the picture and compare it with a fresh synthesis in a test: the
picture is then proven current without comparing pixels.
"""

from __future__ import annotations

from .extract import graph_of_assembly, graph_of_stacks
from .model import KINDS, ArchitectureGraph, Edge, Group, Node
from .render import ICONS, RenderError, render

__all__ = [
    "ICONS",
    "KINDS",
    "ArchitectureGraph",
    "Edge",
    "Group",
    "Node",
    "RenderError",
    "graph_of_assembly",
    "graph_of_stacks",
    "render",
]
