"""Scale benchmarks (``npx projen bench``): what synthesis costs, and how it grows.

Each case synthesizes in a fresh Python process (``synth_child.py``), timed from outside with
pytest-benchmark's pedantic rounds, so that imports are paid as a user's ``cdk synth`` pays
them:

- (a) an empty stack;
- (b) an empty stack after importing the aws_cdk modules ``import trading_constructs`` loads;
- (c) the example platform with its cdk-nag packs (and, for reference, without them);
- (d) platforms of 1, 10, 30 and 60 services in the multi-stack layout on Service Connect,
  and of 10 and 20 on App Mesh.

Children run with a bytecode cache of their own (``PYTHONPYCACHEPREFIX`` under
``.benchmarks/``), warmed by an untimed first round, because users' installs keep ``.pyc``
files; (a) to (c) are also timed with no cache at all (``PYTHONDONTWRITEBYTECODE=1``, as
this repository's machines run). The untimed round also counts jsii round trips and keeps the
templates, whose resources, outputs and bytes the report lists per stack. A last step profiles
one 60-service synthesis with cProfile.

When every case ran, the report is written to ``docs/benchmarks/REPORT.md`` (and the raw
figures beside it), or where ``BENCH_REPORT`` says.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from pytest_benchmark.fixture import BenchmarkFixture

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfn_graph import cycles, dependency_graph, read_manifest, split_stack_outputs, stack_graph
from scale_report import machine_facts, profile_summary, write_report

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).resolve().parent / "synth_child.py"
WORK = ROOT / ".benchmarks" / "scale"
REPORT = Path(os.environ.get("BENCH_REPORT", ROOT / "docs" / "benchmarks" / "REPORT.md"))


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    case: str
    rounds: int
    services: int = 0
    mesh: str = "service-connect"
    cold: bool = False  # no bytecode cache: every module compiled from source


CASES = [
    Case("a", "(a) empty stack", "empty", 5),
    Case("b", "(b) empty stack + the library's aws_cdk imports", "empty-with-imports", 5),
    Case("c", "(c) example platform (3 cdk-nag packs)", "example", 5),
    Case("c-nopacks", "(c') example platform without cdk-nag", "example-without-packs", 3),
    Case("a-cold", "(a) empty stack, no bytecode cache", "empty", 3, cold=True),
    Case(
        "b-cold",
        "(b) empty + imports, no bytecode cache",
        "empty-with-imports",
        3,
        cold=True,
    ),
    Case("c-cold", "(c) example platform, no bytecode cache", "example", 3, cold=True),
    *(
        Case(f"sc-{n}", f"(d) {n} services, Service Connect", "platform", r, services=n)
        for n, r in ((1, 5), (10, 5), (30, 3), (60, 3))
    ),
    *(
        Case(f"am-{n}", f"(d) {n} services, App Mesh", "platform", 3, services=n, mesh="appmesh")
        for n in (10, 20)
    ),
]
PROFILED = Case("profile", "60 services, Service Connect, cProfile", "platform", 1, services=60)


@dataclass
class Results:
    modules: list[str] = field(default_factory=list)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile: dict[str, Any] | None = None


def _env(cold: bool) -> dict[str, str]:
    """The pinned Node (package.json's, as ``npx projen`` runs with) and a bytecode cache."""
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    if cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(WORK / "no-pycache")  # nothing is ever written here
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    return env


def _child(case: Case, outdir: Path, modules: list[str], *extra: str) -> dict[str, Any]:
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    result_file = outdir.with_suffix(".json")
    command = [
        sys.executable,
        str(CHILD),
        case.case,
        "--outdir",
        str(outdir),
        "--services",
        str(case.services),
        "--mesh",
        case.mesh,
        "--modules",
        ",".join(modules),
        "--result",
        str(result_file),
        *extra,
    ]
    env = _env(case.cold)
    load = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Python and its node kernel (reaped by it), user + system: less moved by other work on
    # the machine than the wall time
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if completed.returncode != 0:
        raise AssertionError(f"{case.label} failed:\n{completed.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result | {"wall_s": wall, "cpu_s": cpu, "load": load}


def _stack_figures(outdir: Path) -> list[dict[str, Any]]:
    stacks = []
    for path in sorted(outdir.glob("*.template.json")):
        template = json.loads(path.read_text())
        resources = template.get("Resources", {})
        per_service: dict[str, int] = {}
        for body in resources.values():
            cdk_path = body.get("Metadata", {}).get("aws:cdk:path", "")
            if match := re.match(r"[^/]+/(Svc\d+)/", cdk_path):
                per_service[match.group(1)] = per_service.get(match.group(1), 0) + 1
        stacks.append(
            {
                "stack": path.name.removesuffix(".template.json"),
                "resources": len(resources),
                "outputs": len(template.get("Outputs", {})),
                "parameters": len(template.get("Parameters", {})),
                "bytes": path.stat().st_size,
                "services": len(per_service),
                "service_resources": sum(per_service.values()),
                "per_service": sorted(per_service.values()),
            }
        )
    return stacks


@pytest.fixture(scope="module")
def results() -> Iterator[Results]:
    """Collects every case; once all ran, writes the report."""
    shutil.rmtree(WORK / "no-pycache", ignore_errors=True)
    collected = Results()
    probe = _child(Case("modules", "modules", "modules", 1), WORK / "modules", [])
    collected.modules = probe["modules"]
    yield collected
    if set(collected.cases) == {case.key for case in CASES} and collected.profile:
        write_report(REPORT, collected.modules, collected.cases, collected.profile, _facts())
        print(f"\nreport written to {REPORT}")


def _facts() -> dict[str, str]:
    node = subprocess.run(
        ["node", "--version"], env=_env(False), capture_output=True, text=True, check=False
    ).stdout.strip()
    return machine_facts(node)


@pytest.mark.parametrize("case", CASES, ids=[case.key for case in CASES])
def test_synthesize(benchmark: BenchmarkFixture, results: Results, case: Case) -> None:
    outdir = WORK / case.key
    calls: list[dict[str, Any]] = []

    def run() -> None:
        first = not calls  # the warm-up: writes the bytecode cache, counts round trips
        extra = ("--count-roundtrips",) if first else ()
        calls.append(_child(case, outdir, results.modules, *extra))

    benchmark.group = "scale"
    benchmark.pedantic(run, rounds=case.rounds, warmup_rounds=1, iterations=1)
    # the templates of the last round: every round builds the same app
    stacks = _stack_figures(outdir)
    timed = calls[1:]
    benchmark.extra_info.update({"roundtrips": calls[0].get("roundtrips"), "stacks": len(stacks)})
    results.cases[case.key] = {
        "label": case.label,
        "services": case.services,
        "mesh": case.mesh,
        "cold": case.cold,
        "rounds": case.rounds,
        "wall": [c["wall_s"] for c in timed],  # none under --benchmark-disable
        "cpu": [c["cpu_s"] for c in timed],
        "load": [c["load"] for c in timed],
        "import": [c["import_s"] for c in timed],
        "construct": [c["construct_s"] for c in timed],
        "synth": [c["synth_s"] for c in timed],
        "service": [c["service_s"] for c in timed],
        "roundtrips": calls[0].get("roundtrips"),
        "stacks": stacks,
    }


PLATFORMS = [case for case in CASES if case.case == "platform"]


@pytest.mark.parametrize("case", PLATFORMS, ids=[case.key for case in PLATFORMS])
def test_platform_deploys_as_synthesized(results: Results, case: Case) -> None:
    """The scale gates on the templates the timed rounds wrote: every stack under 500
    resources and 1 MB, cfn-lint clean, no value read from another stack cut with Fn::Split,
    and no dependency cycle inside a stack or between stacks."""
    outdir = WORK / case.key
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(outdir.glob("*.template.json"))
    }
    findings = {
        name: [str(match) for match in lint(json.dumps(template), regions=["us-east-1"])]
        for name, template in templates.items()
    }
    gates = {
        "stacks": len(templates),
        "cfn_lint_findings": sum(len(found) for found in findings.values()),
        "split_stack_outputs": sum(len(split_stack_outputs(t)) for t in templates.values()),
        "cycles_in_stacks": sum(len(cycles(dependency_graph(t))) for t in templates.values()),
        "cycles_between_stacks": len(cycles(stack_graph(templates, read_manifest(outdir)))),
        "over_500_resources": [n for n, t in templates.items() if len(t["Resources"]) > 500],
        "over_1_mb": [
            n for n in templates if (outdir / f"{n}.template.json").stat().st_size > 1_000_000
        ],
    }
    results.cases.setdefault(case.key, {})["gates"] = gates
    assert gates["cfn_lint_findings"] == 0, findings
    assert gates == gates | {
        "split_stack_outputs": 0,
        "cycles_in_stacks": 0,
        "cycles_between_stacks": 0,
        "over_500_resources": [],
        "over_1_mb": [],
    }


def test_profile_60_services(results: Results) -> None:
    """One 60-service synthesis under cProfile: where the time goes."""
    profile = WORK / "profile-60.prof"
    outcome = _child(PROFILED, WORK / PROFILED.key, results.modules, "--profile", str(profile))
    results.profile = profile_summary(profile, outcome)
