"""``python -m trading_constructs.readiness [cdk.out]``: the rules over a synthesized assembly,
for CI. Exit status 1 when an error is left that no acknowledgement covers, 0 otherwise, 2 when
the assembly cannot be read."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date

from .assembly import AssemblyError
from .check import check_assembly
from .model import ReadinessOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trading_constructs.readiness",
        description="Deploy-readiness rules over a synthesized cloud assembly (cdk synth's "
        "output), its stages included. Findings acknowledged on a construct or a stack "
        "(Validations.of(scope).acknowledge) are listed, not counted.",
    )
    parser.add_argument(
        "assembly", nargs="?", default="cdk.out", help="the assembly directory (cdk.out)"
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (text)"
    )
    parser.add_argument(
        "--build-date",
        type=date.fromisoformat,
        default=None,
        help="judge Lambda runtimes on this day, YYYY-MM-DD (today)",
    )
    parser.add_argument(
        "--runtime-notice-days",
        type=int,
        default=ReadinessOptions().runtime_notice_days,
        help="report a runtime this many days before its deprecation (90)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    arguments = _parser().parse_args(argv)
    try:
        options = ReadinessOptions(
            build_date=arguments.build_date, runtime_notice_days=arguments.runtime_notice_days
        )
        report = check_assembly(arguments.assembly, options=options)
    except (AssemblyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if arguments.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.to_text())
    return 1 if report.failed else 0
