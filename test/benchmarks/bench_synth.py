"""Speed benchmarks (``npx projen bench``): not part of ``npm test``, which stays fast.

They time what a developer waits for: synthesizing the example platform with the compliance
packs, and constructing it without synthesis.
"""

from __future__ import annotations

import json
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from examples.trading_platform.app import create_app

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


def test_construct_the_example(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    benchmark.pedantic(
        lambda: create_app(context=CONTEXT, outdir=str(tmp_path)), rounds=3, iterations=1
    )


def test_synthesize_the_example_with_compliance_packs(
    benchmark: BenchmarkFixture, tmp_path: Path
) -> None:
    benchmark.pedantic(
        lambda: create_app(context=CONTEXT, outdir=str(tmp_path)).synth(),
        rounds=3,
        iterations=1,
    )
