"""Every ```python block of README.md runs as written, each in a fresh namespace, and every app a
block builds synthesizes. A block added to the README is run without a change here.

The blocks run as ``cdk synth`` would run them from a user's project: ``App()`` gets the
feature flags of our ``cdk.json`` (what ``cdk init`` recommends) and writes to a temporary
folder, and Python's working directory is an empty temporary folder holding only the files the
README tells users to have (``README_FILES``). aws-cdk-lib resolves paths in its Node process,
whose working directory stays the repository root: a block that hands a relative path straight
to aws-cdk-lib needs it to exist there too.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk
import pytest
from aws_cdk import App
from aws_cdk.cx_api import CloudAssembly
from conftest import CDK_CONTEXT, SynthesizedApp
from test_readiness_pending import READINESS_PENDING

from scripts import install_test
from trading_constructs.readiness import check_assembly

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

README_FILES: dict[str, str] = {}
"""Files (path: content) the README tells users to have beside their app, e.g. a Dockerfile
of an image a block builds; written into the working directory each block runs in."""


@dataclass(frozen=True)
class Block:
    """One ```python block: where it is and what it says."""

    heading: str
    line: int
    code: str

    @property
    def id(self) -> str:
        return f"{self.heading}@{self.line}"


def python_blocks(text: str) -> list[Block]:
    """Every ```python fenced block, under the nearest heading above it (a ``#`` line outside
    any fence: a comment in a bash block is not a heading)."""
    blocks = []
    heading = "top"
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            if line.rstrip() == "```python":
                blocks.append(Block(heading, index + 1, "".join(lines[index + 1 : end])))
            index = end
        elif line.startswith("#"):
            heading = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").strip().lower()).strip("-")
        index += 1
    return blocks


BLOCKS = python_blocks(README)


@dataclass
class Ran:
    """What running a block left: its namespace, the assemblies of its apps, or its error."""

    namespace: dict[str, Any] = field(default_factory=dict)
    assemblies: list[CloudAssembly] = field(default_factory=list)
    error: BaseException | None = None


def _cdk_synth_app(outdirs: Iterator[Path]) -> type[App]:
    """``App`` as ``cdk synth`` starts it: cdk.json's context, a fresh output folder."""

    class CdkSynthApp(App):
        def __init__(self, **props: Any) -> None:
            props["context"] = CDK_CONTEXT | dict(props.get("context") or {})
            props.setdefault("outdir", str(next(outdirs)))
            super().__init__(**props)

    return CdkSynthApp


def _run(block: Block, workdir: Path, outdirs: Iterator[Path]) -> Ran:
    ran = Ran()
    for relative, content in README_FILES.items():
        (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
        (workdir / relative).write_text(content)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setattr(aws_cdk, "App", _cdk_synth_app(outdirs))
        try:
            exec(compile(block.code, f"README.md:{block.line}", "exec"), ran.namespace)
            apps = [v for v in ran.namespace.values() if isinstance(v, App)]
            ran.assemblies = [app.synth() for app in apps]
        except Exception as error:  # reported by the block's own test
            ran.error = error
    return ran


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """Every block run once, in the README's order."""
    outdirs = (tmp_path_factory.mktemp("cdk.out") for _ in itertools.count())
    return {
        block.id: _run(block, tmp_path_factory.mktemp("readme-block"), outdirs) for block in BLOCKS
    }


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_runs_as_written_and_its_apps_synthesize(
    block: Block, readme: dict[str, Ran]
) -> None:
    # GIVEN a python block of the README, run in a fresh namespace (above)
    ran = readme[block.id]
    # THEN it raised nothing, and it built an app that synthesized
    if ran.error is not None:
        raise AssertionError(f"README.md:{block.line} ({block.heading}) failed") from ran.error
    assert ran.assemblies, f"README.md:{block.line} builds no App"
    assert all(assembly.stacks for assembly in ran.assemblies)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_apps_pass_the_deploy_readiness_rules(block: Block, readme: dict[str, Ran]) -> None:
    # GIVEN the apps a block synthesized  WHEN every readiness rule reads their assemblies
    left = [
        f
        for assembly in readme[block.id].assemblies
        for f in check_assembly(assembly.directory).findings
        if f.acknowledged is None
    ]
    # THEN no finding of any severity is left that no acknowledgement covers (a rule whose fix
    # is pending is an expected failure: test_readiness_pending.py)
    failing = [str(f) for f in left if f.rule.id not in READINESS_PENDING]
    assert failing == [], f"README.md:{block.line} ({block.heading})\n" + "\n".join(failing)
    if left:
        pytest.xfail("pending: " + "; ".join(sorted({READINESS_PENDING[f.rule.id] for f in left})))


def test_the_multi_stack_layout_references_point_one_way(readme: dict[str, Ran]) -> None:
    # GIVEN the README's multi-stack block, synthesized
    (ran,) = (readme[b.id] for b in BLOCKS if b.heading == "platforms-across-stacks")
    (assembly,) = ran.assemblies
    # THEN every stack depends only on stacks before it (the platform first)
    order = [s.stack_name for s in assembly.stacks]
    for stack in assembly.stacks:
        for dependency in stack.dependencies:
            if not dependency.id.endswith(".assets"):
                assert order.index(dependency.id) < order.index(stack.stack_name)
    assert {s.stack_name for s in assembly.stacks} >= {
        "Platform",
        "Orders",
        "Pricing",
        "Reports",
        "Dashboard",
        "Edge",
    }
    assert all(len(s.template["Resources"]) <= 500 for s in assembly.stacks)


def test_the_versions_a_consumer_needs_are_the_projects() -> None:
    # GIVEN the Pythons CI tests and the Node the repository pins (.projenrc.py)
    projenrc = (ROOT / ".projenrc.py").read_text()
    pythons = re.findall(r'"(3\.\d+)"', re.search(r"SUPPORTED_PYTHONS = \[(.*)\]", projenrc)[1])
    node_major = re.search(r'NODE_VERSION = "(\d+)\.', projenrc)[1]
    # THEN the README's quick start states them, and why Node matters
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert f"Python {pythons[0]} or newer" in quick_start
    assert f"CI tests {pythons[0]} to {pythons[-1]}" in quick_start
    assert re.search(rf"Node \d+ or {node_major}\b", quick_start)
    assert "jsii" in quick_start and "Node 20" in quick_start


def test_no_block_leaves_a_context_lookup_to_the_cli(readme: dict[str, Ran]) -> None:
    # GIVEN every app the README's blocks build, as written
    for block in BLOCKS:
        for assembly in readme[block.id].assemblies:
            # THEN its assembly lists no missing context: `cdk synth` calls no AWS API for it
            # (the CLI would look a missing value up, which needs credentials)
            manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
            assert manifest.get("missing", []) == [], f"README.md:{block.line} ({block.heading})"


def test_the_cdk_json_for_a_stack_naming_its_account_answers_its_az_lookup() -> None:
    # GIVEN the README's cdk.json for stacks that name their account (the consumer install
    # test, scripts/install_test.py, synthesizes with it through the CDK CLI, no credentials)
    context = install_test.readme_cdk_context()
    # WHEN aws-cdk-lib names the AZ lookup of such a stack
    stack = aws_cdk.Stack(
        App(), "Trading", env=aws_cdk.Environment(account="123456789012", region="us-east-1")
    )
    # (the provider's name as the cloud assembly schema writes it: jsii gives Python the enum
    # member's name, AVAILABILITY_ZONE_PROVIDER, not its value)
    key = aws_cdk.ContextProvider.get_key(stack, provider="availability-zones").key
    # THEN the README answers it, with three AZs of the region
    assert context == {key: ["us-east-1a", "us-east-1b", "us-east-1c"]}
    assert "python3 app.py" in README.split("```json", 1)[1].split("```", 1)[0]


def test_the_inventory_counts_the_alarms_the_example_has(mutual_tls: SynthesizedApp) -> None:
    # GIVEN the example as `cdk synth` builds it (the mutual-TLS mesh)
    resources = mutual_tls.template("TradingPlatform").to_json()["Resources"].values()
    alarms = sum(1 for r in resources if r["Type"] == "AWS::CloudWatch::Alarm")
    tracking = sum(
        1
        for r in resources
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
        and r["Properties"]["PolicyType"] == "TargetTrackingScaling"
        and not r["Properties"]["TargetTrackingScalingPolicyConfiguration"].get("DisableScaleIn")
    )
    # THEN the README's inventory counts them, and the two alarms Application Auto Scaling
    # creates per target-tracking policy (scale out, scale in), and bills them
    inventory = " ".join(README.split("### What a first deploy creates", 1)[1].split())
    assert f"{alarms} alarms in the template" in inventory
    assert f"{2 * tracking} more that Application Auto Scaling creates" in inventory
    assert f"the {tracking} target-tracking policies" in inventory
    assert f"| CloudWatch alarms | {alarms} alarms in the template" in README
    assert f"+ {2 * tracking} target-tracking alarms" in README


def test_the_services_a_stack_holds_are_the_benchmarks() -> None:
    # GIVEN the benchmark's report: the platform stack's resources and what each added service
    # costs on Service Connect (services reading a secret and calling each other)
    report = (ROOT / "docs" / "benchmarks" / "REPORT.md").read_text()
    platform = int(
        re.search(r"^\| 1 x service-connect \| Platform \| 0 \| (\d+) \|", report, re.M)[1]
    )
    marginal = [
        float(m)
        for m in re.findall(
            r"^\| service-connect \| \d+ \| \d+ \| [\d.]+ \| ([\d.]+) \|$", report, re.M
        )
    ]
    # THEN the README's figures are the report's: how many such services fit in 500 resources
    fit = round((500 - platform) / marginal[-1])
    across = " ".join(README.split("## Platforms across stacks", 1)[1].split("```", 1)[0].split())
    assert f"about {fit} on Service Connect" in across
    assert f"{platform} resources, and {round(marginal[-1])} per service" in across
    assert "few dozen" not in README
