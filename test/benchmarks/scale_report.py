"""The markdown report of ``bench_scale.py``: machine facts, medians, ratios, per-stack figures,
linearity and a profile summary, all computed from the run (nothing here is written by hand)."""

from __future__ import annotations

import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import pstats
import statistics
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MAX_RESOURCES = 500  # CloudFormation: resources per stack
MAX_BYTES = 1_000_000  # CloudFormation: template body uploaded through S3 (1 MB)
MAX_OUTPUTS = 200  # CloudFormation: outputs per stack
MAX_PARAMETERS = 200
COMMAND = "npx projen bench"
SIZES_SC = ("sc-1", "sc-10", "sc-30", "sc-60")
SIZES_AM = ("am-10", "am-20")


def machine_facts(node_version: str) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if "MemTotal" in line), 0)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    changed = subprocess.run(
        ["git", "status", "--short", "--", "src"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split("\n")
    return {
        "CPU": f"{models[0] if models else platform.processor()} x {len(models)} "
        f"({usable} usable by this process)",
        "Memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "Node (jsii runtime)": f"{node_version} (package.json's pinned node, first on PATH)",
        "aws-cdk-lib": version("aws-cdk-lib"),
        "constructs": version("constructs"),
        "jsii": version("jsii"),
        "cdk-nag": version("cdk-nag"),
        "pytest-benchmark": version("pytest-benchmark"),
        "Repository commit": f"{commit}; uncommitted in src/ at the time of the run: "
        + (", ".join(f"`{line.strip()}`" for line in changed if line.strip()) or "none"),
        "Date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def profile_summary(path: Path, outcome: dict[str, Any]) -> dict[str, Any]:
    """Where a profiled synthesis spends its time: waiting on the jsii kernel (node), compiling
    Python, and Python itself; and the library's most expensive calls."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in stats.values())
    node = compile_ = 0.0
    roundtrips = 0
    library: list[tuple[float, int, str]] = []
    for (file, line, function), (_cc, ncalls, tt, ct, _callers) in stats.items():
        if function == "<method 'readline' of '_io.BufferedReader' objects>":
            node += tt
        elif function == "<built-in method builtins.compile>":
            compile_ += tt
        if file.endswith("jsii/_kernel/providers/process.py") and function == "send":
            roundtrips += ncalls
        if "/trading_constructs/" in file and function not in {"<module>", "<lambda>"}:
            short = file.split("/trading_constructs/", 1)[1]
            library.append((ct, ncalls, f"{short}:{line}({function})"))
    library.sort(reverse=True)
    return {
        "total_s": total,
        "node_s": node,
        "compile_s": compile_,
        "python_s": total - node - compile_,
        "roundtrips": roundtrips,
        "construct_s": outcome["construct_s"],
        "synth_s": outcome["synth_s"],
        "library": [
            {"cumulative_s": ct, "calls": n, "function": name} for ct, n, name in library[:12]
        ],
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


def _total_resources(case: dict[str, Any]) -> int:
    return sum(stack["resources"] for stack in case["stacks"])


def _timing_rows(cases: dict[str, Any]) -> list[str]:
    rows = [
        "| case | rounds | median wall (s) | min-max (s) | median CPU (s) | in-process: imports "
        "/ construct / synth (s, medians) | jsii round trips | load average |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for case in cases.values():
        rows.append(
            f"| {case['label']} | {len(case['wall'])} | **{_median(case['wall']):.2f}** | "
            f"{_spread(case['wall'])} | {_median(case['cpu']):.2f} | "
            f"{_median(case['import']):.2f} / {_median(case['construct']):.2f} / "
            f"{_median(case['synth']):.2f} | {case['roundtrips']} | {_median(case['load']):.1f} |"
        )
    return rows


def _ratio_rows(cases: dict[str, Any]) -> list[str]:
    def ratio(top: str, bottom: str, part: str = "wall") -> str:
        return f"{_median(cases[top][part]) / _median(cases[bottom][part]):.2f}x"

    def cost(top: str, bottom: str, part: str = "wall") -> str:
        return f"{_median(cases[top][part]) - _median(cases[bottom][part]):.2f} s"

    rows = [
        "| | wall, bytecode cache (as users run) | CPU, bytecode cache | wall, no bytecode cache |",
        "|---|---:|---:|---:|",
    ]
    for label, top, bottom in (
        ("c/b: example over the import floor", "c", "b"),
        ("c/a: example over an empty stack", "c", "a"),
        ("b/a: the library's aws_cdk imports over an empty stack", "b", "a"),
    ):
        rows.append(
            f"| {label} | **{ratio(top, bottom)}** | {ratio(top, bottom, 'cpu')} | "
            f"{ratio(f'{top}-cold', f'{bottom}-cold')} |"
        )
    for label, top, bottom in (
        ("b - a: what importing those modules costs", "b", "a"),
        ("c - b: what the example's constructs, synthesis and cdk-nag cost", "c", "b"),
    ):
        rows.append(
            f"| {label} | {cost(top, bottom)} | {cost(top, bottom, 'cpu')} | "
            f"{cost(f'{top}-cold', f'{bottom}-cold')} |"
        )
    rows.append(
        f"| c - c': what the three cdk-nag packs cost | {cost('c', 'c-nopacks')} | "
        f"{cost('c', 'c-nopacks', 'cpu')} | |"
    )
    return rows


def _scale_rows(cases: dict[str, Any], sizes: tuple[str, ...]) -> list[str]:
    rows = [
        "| services | stacks | median wall (s) | min-max (s) | median CPU (s) "
        "| construct / synth (s, medians) | wall s per added service "
        "| CPU s per added service | jsii round trips | per added service "
        "| resources (all stacks) | resources per service | load average |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous: dict[str, Any] | None = None
    for key in sizes:
        case = cases[key]
        per_wall = per_cpu = per_trips = "-"
        if previous is not None:
            added = case["services"] - previous["services"]
            per_wall = f"{_per_added(previous, case, 'wall'):.3f}"
            per_cpu = f"{_per_added(previous, case, 'cpu'):.3f}"
            per_trips = f"{(case['roundtrips'] - previous['roundtrips']) / added:.0f}"
        per_service = [n for stack in case["stacks"] for n in stack["per_service"]]
        rows.append(
            f"| {case['services']} | {len(case['stacks'])} | **{_median(case['wall']):.2f}** | "
            f"{_spread(case['wall'])} | {_median(case['cpu']):.2f} | "
            f"{_median(case['construct']):.2f} / {_median(case['synth']):.2f} | {per_wall} | "
            f"{per_cpu} | {case['roundtrips']} | {per_trips} | {_total_resources(case)} | "
            f"{statistics.median(per_service):.0f} (min {min(per_service)}, max "
            f"{max(per_service)}) | {_median(case['load']):.1f} |"
        )
        previous = case
    return rows


def _per_added(
    low: dict[str, Any], high: dict[str, Any], part: str, stat: Any = statistics.median
) -> float:
    """Seconds of ``part`` (median, or ``stat``) per service added from ``low`` to ``high``."""
    added = high["services"] - low["services"]
    return (stat(high[part]) - stat(low[part])) / added


def _stack_rows(cases: dict[str, Any], sizes: tuple[str, ...]) -> list[str]:
    rows = [
        "| platform | stack | services in it | resources | outputs | template bytes "
        "| % of 500 resources | % of 1 MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sizes:
        case = cases[key]
        for stack in case["stacks"]:
            rows.append(
                f"| {case['services']} x {case['mesh']} | {stack['stack']} | "
                f"{stack['services']} | {stack['resources']} | {stack['outputs']} | "
                f"{stack['bytes']:,} | {100 * stack['resources'] / MAX_RESOURCES:.0f}% | "
                f"{100 * stack['bytes'] / MAX_BYTES:.0f}% |"
            )
    return rows


def _resources_per_service(cases: dict[str, Any]) -> list[str]:
    rows = [
        "| mesh | services | resources the services own (by construct path) "
        "| per service (construct path) | marginal per added service, all stacks |",
        "|---|---:|---:|---:|---:|",
    ]
    for sizes in (SIZES_SC, SIZES_AM):
        previous: dict[str, Any] | None = None
        for key in sizes:
            case = cases[key]
            owned = sum(stack["service_resources"] for stack in case["stacks"])
            marginal = "-"
            if previous is not None:
                added = case["services"] - previous["services"]
                delta = _total_resources(case) - _total_resources(previous)
                marginal = f"{delta / added:.1f}"
            rows.append(
                f"| {case['mesh']} | {case['services']} | {owned} | "
                f"{owned / case['services']:.1f} | {marginal} |"
            )
            previous = case
    return rows


def _limit_findings(cases: dict[str, Any]) -> list[str]:
    worst = {"resources": (0, ""), "bytes": (0, ""), "outputs": (0, "")}
    for case in cases.values():
        for stack in case["stacks"]:
            where = f"{stack['stack']} of the {case['services']}-service {case['mesh']} platform"
            for figure in worst:
                if stack[figure] > worst[figure][0]:
                    worst[figure] = (stack[figure], where)
    limits = {"resources": MAX_RESOURCES, "bytes": MAX_BYTES, "outputs": MAX_OUTPUTS}
    lines = []
    for figure, (value, where) in worst.items():
        share = 100 * value / limits[figure]
        verdict = "over the limit" if share >= 100 else "near the limit" if share >= 80 else "ok"
        lines.append(
            f"- Largest {figure}: {value:,} ({share:.0f}% of CloudFormation's "
            f"{limits[figure]:,}), in {where}: {verdict}."
        )
    return lines


def _block(case: dict[str, Any], first: int, last: int) -> float:
    """Median construction seconds of services ``first`` to ``last`` (1-based) over rounds."""
    per_index = [statistics.median(values) for values in zip(*case["service"], strict=True)]
    return statistics.median(per_index[first - 1 : last])


def _linearity(cases: dict[str, Any]) -> list[str]:
    lines = [
        "Other work on the machine only ever adds time, so the fastest round (min) is the "
        "least disturbed; both are shown.",
        "",
        "| figure | statistic | s per added service 10 to 30 | 30 to 60 | change |",
        "|---|---|---:|---:|---:|",
    ]
    for part in ("wall", "cpu", "construct", "synth"):
        for name, stat in (("median", statistics.median), ("min", min)):
            first = _per_added(cases["sc-10"], cases["sc-30"], part, stat)
            second = _per_added(cases["sc-30"], cases["sc-60"], part, stat)
            change = f"{(second / first - 1) * 100:+.0f}%" if first > 0 else "n/a"
            lines.append(f"| {part} | {name} | {first:.3f} | {second:.3f} | {change} |")
    lines.append("")
    for key, blocks in (("sc-60", ((2, 10), (26, 35), (51, 59))), ("am-20", ((2, 10), (11, 19)))):
        case = cases[key]
        spans = ", ".join(
            f"services {low}-{high}: {1000 * _block(case, low, high):.0f} ms"
            for low, high in blocks
        )
        lines.append(
            f"- Constructing one service, median, in the {case['services']}-service "
            f"{case['mesh']} platform: {spans} (the first service pays for first uses; the "
            "last is the public one)."
        )
    return lines


def _profile_rows(profile: dict[str, Any]) -> list[str]:
    total = profile["total_s"]

    def share(value: float) -> str:
        return f"{value:.2f} s ({100 * value / total:.0f}%)"

    rows = [
        f"- Profiled run: {total:.2f} s inside Python (construct {profile['construct_s']:.2f} s, "
        f"synth {profile['synth_s']:.2f} s, the rest imports), {profile['roundtrips']:,} jsii "
        "round trips.",
        f"- Waiting for the jsii kernel (node answering a request): {share(profile['node_s'])}.",
        f"- Compiling Python source: {share(profile['compile_s'])}.",
        f"- Python itself (our constructs, jsii's marshalling, typeguard): "
        f"{share(profile['python_s'])}. cProfile slows Python calls, not node: unprofiled, "
        "Python's share is smaller.",
        "",
        "The library's most expensive calls (cumulative, including the jsii calls they make):",
        "",
        "| function | calls | cumulative (s) |",
        "|---|---:|---:|",
    ]
    rows += [
        f"| `{entry['function']}` | {entry['calls']} | {entry['cumulative_s']:.2f} |"
        for entry in profile["library"]
    ]
    return rows


def _gate_rows(cases: dict[str, Any]) -> list[str]:
    rows = [
        "| platform | stacks | cfn-lint findings | split stack outputs | cycles in / between "
        "stacks | stacks over 500 resources | stacks over 1 MB |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for case in cases.values():
        gates = case.get("gates")
        if gates is None:
            continue
        rows.append(
            f"| {case['services']} x {case['mesh']} | {gates['stacks']} | "
            f"{gates['cfn_lint_findings']} | {gates['split_stack_outputs']} | "
            f"{gates['cycles_in_stacks']} / {gates['cycles_between_stacks']} | "
            f"{', '.join(gates['over_500_resources']) or 'none'} | "
            f"{', '.join(gates['over_1_mb']) or 'none'} |"
        )
    return rows


def _stack(case: dict[str, Any], name: str) -> dict[str, Any]:
    return next(stack for stack in case["stacks"] if stack["stack"] == name)


def _observations(cases: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    wall = {key: _median(case["wall"]) for key, case in cases.items()}
    loads = [load for case in cases.values() for load in case["load"]]
    construct_first = _per_added(cases["sc-10"], cases["sc-30"], "construct")
    construct_second = _per_added(cases["sc-30"], cases["sc-60"], "construct")
    growth = (construct_second / construct_first - 1) * 100
    verdict = (
        "roughly constant"
        if abs(growth) <= 25
        else f"not constant: it {'rises' if growth > 0 else 'falls'} by {abs(growth):.0f}%"
    )
    early, late = _block(cases["sc-60"], 2, 10), _block(cases["sc-60"], 51, 59)
    trips = [
        (cases[high]["roundtrips"] - cases[low]["roundtrips"])
        / (cases[high]["services"] - cases[low]["services"])
        for low, high in itertools.pairwise(SIZES_SC)
    ]
    dashboard = [_stack(cases[key], "Dashboard")["bytes"] for key in ("sc-10", "sc-60")]
    dashboard_per_service = (dashboard[1] - dashboard[0]) / 50
    node_share = 100 * profile["node_s"] / profile["total_s"]
    lines = [
        f"- An empty stack (a) is {100 * wall['a'] / wall['c']:.0f}% of the example's wall time "
        f"(c), the import floor (b) {100 * wall['b'] / wall['c']:.0f}%"
        f"{': the floor is most of it' if wall['b'] > wall['c'] / 2 else ''}. "
        f"Of (a), {_median(cases['a']['synth']):.2f} s is the empty stack's synthesis itself "
        "(node loading aws-cdk-lib's code, the default validation rules, writing the assembly).",
        f"- Without a bytecode cache, importing the library's aws_cdk modules costs "
        f"{wall['b-cold'] - wall['a-cold']:.1f} s instead of {wall['b'] - wall['a']:.1f} s: "
        "aws_cdk's generated modules are large, and compiling them is the biggest single cost of "
        "a cold run. Installs that keep `.pyc` files (pip writes them, and so does a first "
        "import) do not pay it; `PYTHONDONTWRITEBYTECODE=1`, as on this machine, makes every "
        "run pay it.",
        f"- Construction seconds per added service (Service Connect, in-process medians) are "
        f"{construct_first:.3f} from 10 to 30 and {construct_second:.3f} from 30 to 60: "
        f"{verdict}; the 2nd to 10th service of the 60 took {1000 * early:.0f} ms each, the "
        f"51st to 59th {1000 * late:.0f} ms. The requests Python sends to the jsii kernel per "
        f"added service are {', '.join(f'{t:.0f}' for t in trips)} between the sizes. Synthesis "
        "and wall times per added service swing with the machine's load (table above): read "
        "their min rows.",
        f"- In the profiled 60-service run, {node_share:.0f}% "
        "of the time inside Python is spent waiting for the jsii kernel: node building "
        "constructs and synthesizing"
        f"{': the jsii kernel, not our Python, dominates' if node_share > 50 else ''}.",
        f"- The dashboard stack grows by {dashboard_per_service:,.0f} bytes per service: its "
        f"1 MB template limit is reached near {1_000_000 / dashboard_per_service:.0f} services "
        "(one dashboard per group of services beyond that). A service stack of ten Service "
        "Connect services is about a third of the 500-resource limit.",
        f"- Load average over the rounds: {min(loads):.1f} to {max(loads):.1f} on "
        f"{os.cpu_count()} CPUs (other work shared the machine). Wall times move with it; "
        "compare cases within one run, and read the round-trip counts and resources as exact.",
    ]
    return lines


def write_report(
    path: Path,
    modules: list[str],
    cases: dict[str, Any],
    profile: dict[str, Any],
    facts: dict[str, str],
) -> None:
    lines = [
        "# Synthesis benchmarks",
        "",
        f"Command: `{COMMAND}` (runs `test/benchmarks/bench_synth.py`, then "
        "`test/benchmarks/bench_scale.py`, which writes this file and `scale-results.json` "
        "beside it). It is not part of `npm test`. Generated; do not edit by hand.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in facts.items()),
        "",
        "## Method",
        "",
        "Every round is a fresh Python process (`test/benchmarks/synth_child.py`) timed from "
        "outside with pytest-benchmark's pedantic rounds: interpreter start, imports, the jsii "
        "kernel's start, construction, synthesis and writing the cloud assembly. One untimed "
        "warm-up round per case writes the bytecode cache and counts jsii round trips. The "
        "multi-stack platforms synthesize with path metadata and version reporting on, as "
        "`cdk synth` does, so the templates are the ones the CLI would write.",
        "",
        f"(b) imports the {len(modules)} aws_cdk modules that `import trading_constructs` "
        f"loads (directly or through aws-cdk-lib): {', '.join(f'`{m}`' for m in modules)}.",
        "",
        "(d) is the multi-stack layout: `Platform` (TradingCluster, one ScannedRepository, one "
        "ApiKeySecret), `Services<k>` with ten services each (every service reads the API key "
        "and calls the one before it; in each group the first two call each other and the "
        "third to fifth form a ring; across groups a mutual pair and a ring of four), `Edge` (a "
        "TradingEdge with a certificate in front of the last service, which stays in its "
        "services stack) and `Dashboard` (a PlatformDashboard over all services and the edge). "
        "Stacks read each other's values with `Fn::GetStackOutput` (cdk.json's recommended "
        "weak references).",
        "",
        "### Gates on the templates of (d)",
        "",
        *_gate_rows(cases),
        "",
        "## (a), (b), (c): the floors and the example",
        "",
        *_timing_rows({k: v for k, v in cases.items() if not k.startswith(("sc-", "am-"))}),
        "",
        *_ratio_rows(cases),
        "",
        "## (d): platforms of many services, multi-stack",
        "",
        "Service Connect (the default mesh):",
        "",
        *_scale_rows(cases, SIZES_SC),
        "",
        "App Mesh (`Mesh.app_mesh()`):",
        "",
        *_scale_rows(cases, SIZES_AM),
        "",
        "### Resources per service",
        "",
        *_resources_per_service(cases),
        "",
        "### Per stack (CloudFormation limits: 500 resources, 1 MB template, 200 outputs)",
        "",
        *_stack_rows(cases, SIZES_SC + SIZES_AM),
        "",
        *_limit_findings(cases),
        "",
        "### Linearity (Service Connect)",
        "",
        *_linearity(cases),
        "",
        "## Observations (computed from this run)",
        "",
        *_observations(cases, profile),
        "",
        "## Profile: one 60-service synthesis (cProfile)",
        "",
        *_profile_rows(profile),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    raw = {"facts": facts, "modules": modules, "cases": cases, "profile": profile}
    path.with_name("scale-results.json").write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":  # regenerate the report from the raw figures of the last run
    raw = json.loads((ROOT / "docs" / "benchmarks" / "scale-results.json").read_text())
    write_report(
        ROOT / "docs" / "benchmarks" / "REPORT.md",
        raw["modules"],
        raw["cases"],
        raw["profile"],
        raw["facts"],
    )
