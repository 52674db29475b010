"""The delivery pipeline app, synthesized once per test session: three copies of the platform
(staging and two production regions) take a while, so the first xdist worker to ask builds the
assembly under a lock and every other worker reads it from disk."""

from __future__ import annotations

import fcntl
import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import CDK_CONTEXT, synthesize

from examples.trading_platform.pipeline_app import create_pipeline_app
from trading_constructs.readiness.assembly import StackInput, read_assembly

PIPELINE_ACCOUNT = "111111111111"
STAGING_ACCOUNT = "222222222222"
PRODUCTION_ACCOUNT = "333333333333"
PRODUCTION_REGIONS = ("us-east-1", "us-west-2")
CERTIFICATE_ID = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
PIPELINE_CONTEXT: dict[str, Any] = CDK_CONTEXT | {
    "pipeline_account": PIPELINE_ACCOUNT,
    "pipeline_region": "us-east-1",
    "repository": "trading-constructs/trading-constructs",
    "connection_arn": (
        f"arn:aws:codeconnections:us-east-1:{PIPELINE_ACCOUNT}:connection/"
        "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    ),
    "staging_account": STAGING_ACCOUNT,
    "staging_region": "us-east-1",
    "staging_alarm_email": "staging-ops@example.com",
    "production_account": PRODUCTION_ACCOUNT,
    "production_regions": ",".join(PRODUCTION_REGIONS),
    "production_alarm_email": "ops@example.com",
    "staging_certificate_arn": (
        f"arn:aws:acm:us-east-1:{STAGING_ACCOUNT}:certificate/{CERTIFICATE_ID}"
    ),
    "production_certificate_arns": ",".join(
        f"arn:aws:acm:{region}:{PRODUCTION_ACCOUNT}:certificate/{CERTIFICATE_ID}"
        for region in PRODUCTION_REGIONS
    ),
}
PIPELINE_STACK = "TradingPipeline"
SUPPORT_STACK = f"cross-region-stack-{PIPELINE_ACCOUNT}_us-west-2"
STAGE_STACKS = {
    "Staging": "TradingPipelineStagingTradingPlatformB130B0E2",
    "Production-us-east-1": "TradingPipelineProductionuseast1TradingPlatform0DF750CB",
    "Production-us-west-2": "TradingPipelineProductionuswest2TradingPlatform5C26AFEB",
}
_RESULT = "synth-result.json"


@dataclass(frozen=True)
class PipelineAssembly:
    """The synthesized pipeline app as read back from its cloud assembly."""

    outdir: Path
    stacks: dict[str, StackInput]
    """Every stack by artifact id, the stages' nested assemblies included."""
    validation_report: dict[str, Any] | None
    synth_error: str | None
    synth_seconds: float

    @property
    def templates(self) -> dict[str, dict[str, Any]]:
        return {name: stack.template for name, stack in self.stacks.items()}

    def assets(self, stage: str) -> dict[str, Any]:
        """A stage's asset manifest."""
        template_path = self.stacks[STAGE_STACKS[stage]].template_path
        assert template_path is not None
        return json.loads(Path(template_path.replace(".template.json", ".assets.json")).read_text())


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temporary folder, shared by its xdist workers (each has a child of it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if base.name.startswith("popen-gw") else base


def _synthesize(outdir: Path) -> None:
    started = time.perf_counter()
    result = synthesize(create_pipeline_app(context=PIPELINE_CONTEXT, outdir=str(outdir)))
    seconds = time.perf_counter() - started
    error = None if result.synth_error is None else str(result.synth_error)
    (outdir / _RESULT).write_text(json.dumps({"error": error, "seconds": seconds}))


@cache
def _read(outdir: Path) -> PipelineAssembly:
    result = json.loads((outdir / _RESULT).read_text())
    report = outdir / "validation-report.json"
    return PipelineAssembly(
        outdir=outdir,
        stacks={stack.name: stack for stacks in read_assembly(outdir) for stack in stacks},
        validation_report=json.loads(report.read_text()) if report.exists() else None,
        synth_error=result["error"],
        synth_seconds=result["seconds"],
    )


def pipeline_assembly(tmp_path_factory: pytest.TempPathFactory) -> PipelineAssembly:
    """The pipeline app of ``PIPELINE_CONTEXT``: synthesized by the first caller of the
    session, read from disk by the others."""
    root = _shared_root(tmp_path_factory)
    outdir = root / "pipeline-app"
    with (root / "pipeline-app.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (outdir / _RESULT).exists():
            outdir.mkdir(exist_ok=True)
            _synthesize(outdir)
    return _read(outdir)
