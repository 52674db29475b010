"""``python -m trading_constructs.diagram cdk.out --out docs/architecture``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..readiness.assembly import AssemblyError
from .extract import graph_of_assembly
from .model import ArchitectureGraph
from .render import RenderError, render


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trading_constructs.diagram",
        description="Draw the architecture of a synthesized CDK app from its cloud assembly: "
        "<out>.json (the graph) and <out>.png (the picture).",
    )
    parser.add_argument("assembly", help="the cloud assembly directory (cdk.out)")
    parser.add_argument(
        "--out",
        default="architecture",
        help="path of the output files, without suffix (default: architecture)",
    )
    parser.add_argument("--title", default="Architecture", help="the picture's title")
    parser.add_argument(
        "--graph-only",
        action="store_true",
        help="write the graph only (no diagrams package or Graphviz needed)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when <out>.json differs from the assembly's "
        "graph (the committed picture is stale)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        graph = graph_of_assembly(args.assembly)
    except AssemblyError as error:
        print(error, file=sys.stderr)
        return 2
    out = Path(args.out)
    graph_file = out.with_suffix(".json")
    if args.check:
        committed = graph_file.read_text() if graph_file.exists() else ""
        if committed != graph.to_json():
            print(
                f"{graph_file} is not the graph of {args.assembly}: run the diagram again",
                file=sys.stderr,
            )
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    graph_file.write_text(graph.to_json())
    if not args.graph_only:
        try:
            render(ArchitectureGraph.from_json(graph.to_json()), out, title=args.title)
        except RenderError as error:
            print(error, file=sys.stderr)
            return 2
    return 0
