"""Drawing the graph with the ``diagrams`` library (AWS icons, laid out by Graphviz's ``dot``).

Both are needed only to draw: ``pip install diagrams==0.25.1`` and Graphviz (``apt-get install
graphviz``, ``brew install graphviz``). The graph itself (``extract``) needs neither.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from pathlib import Path
from typing import Any

from .model import ArchitectureGraph, Node

ICONS = {
    "availability-zone": "diagrams.aws.network.PrivateSubnet",
    "container": "diagrams.aws.compute.ElasticContainerServiceContainer",
    "sidecar": "diagrams.aws.compute.ElasticContainerServiceContainer",
    "load-balancer": "diagrams.aws.network.ElbApplicationLoadBalancer",
    "database": "diagrams.aws.database.Aurora",
    "secret": "diagrams.aws.security.SecretsManager",
    "rotation": "diagrams.aws.compute.Lambda",
    "repository": "diagrams.aws.compute.EC2ContainerRegistry",
    "image-cache": "diagrams.aws.compute.EC2ContainerRegistry",
    "topic": "diagrams.aws.integration.SimpleNotificationServiceSns",
    "alarms": "diagrams.aws.management.Cloudwatch",
    "subscriber": "diagrams.aws.general.User",
}
"""The ``diagrams`` class each kind of node is drawn with."""


class RenderError(RuntimeError):
    """Drawing is not possible here: the ``diagrams`` package or Graphviz is missing."""


def _icon(kind: str) -> Any:
    module, name = ICONS.get(kind, "diagrams.aws.general.General").rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def render(graph: ArchitectureGraph, out: Path | str, *, title: str = "Architecture") -> Path:
    """Draw ``graph`` into ``<out>.png``; returns the picture's path."""
    try:
        diagrams = importlib.import_module("diagrams")
    except ImportError as error:
        raise RenderError(
            "drawing needs the diagrams package and Graphviz: pip install diagrams==0.25.1, "
            "and apt-get install graphviz (or brew install graphviz)"
        ) from error
    out = Path(out)
    children: dict[str | None, list[str]] = defaultdict(list)
    labels = {group.id: group.label for group in graph.groups}
    for group in sorted(set(graph.groups)):
        children[group.parent].append(group.id)
    members: dict[str | None, list[Node]] = defaultdict(list)
    for node in sorted(set(graph.nodes)):
        members[node.group].append(node)
    drawn: dict[str, Any] = {}

    def draw(group: str | None) -> None:
        for node in members[group]:
            drawn[node.id] = _icon(node.kind)(node.label)
        for child in children[group]:
            with diagrams.Cluster(labels[child]):
                draw(child)

    attributes = {"fontsize": "22", "pad": "0.4", "nodesep": "0.5", "ranksep": "1.1"}
    try:
        with diagrams.Diagram(
            title,
            filename=str(out),
            outformat="png",
            show=False,
            direction="LR",
            graph_attr=attributes,
        ):
            draw(None)
            for edge in sorted(set(graph.edges)):
                if edge.source in drawn and edge.target in drawn:
                    drawn[edge.source] >> diagrams.Edge(label=edge.label) >> drawn[edge.target]
    except Exception as error:  # graphviz's ExecutableNotFound when dot is not installed
        if type(error).__name__ == "ExecutableNotFound":
            raise RenderError(
                "Graphviz's dot is not on the PATH: apt-get install graphviz"
            ) from error
        raise
    return out.with_suffix(".png")
