"""The deploy-readiness rules (``trading_constructs.readiness``, the deploy-time
rules) over every template the test suite synthesizes: what synth, cfn-lint and cdk-nag let
through and CloudFormation or the running platform then trips on.

Every rule runs over every stack of every source below (ids ``<source>/<stack>``, and each
source's stacks together for the rules across stacks), with the acknowledgements the source's
assembly records; no finding of any severity may be left open. README.md's apps are checked
the same way in test_readme.py. Each rule's negative control is in test_readiness_rules.py:
when a new deploy-time failure class is found, add a rule to the package, with its control.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_bring_your_own
import test_edge_validation
import test_images
import test_service_validation
import test_supply_chain
from aws_cdk import Stack, Stage
from aws_cdk.assertions import Template as CdkTemplate
from conftest import SynthesizedApp
from pipeline_support import (
    PIPELINE_STACK,
    STAGE_STACKS,
    SUPPORT_STACK,
    PipelineAssembly,
    pipeline_assembly,
)
from test_readiness_pending import READINESS_PENDING

from trading_constructs.readiness import (
    RULES,
    RUNTIMES_AS_OF,
    EmittedMetrics,
    ReadinessFinding,
    ReadinessOptions,
    check_template,
)
from trading_constructs.readiness.assembly import StackInput, read_assembly
from trading_constructs.readiness.check import apply_acknowledgements, merged, run_rules
from trading_constructs.readiness.graph import Template

ROOT = Path(__file__).resolve().parents[1]


def _metric_convention() -> EmittedMetrics:
    """What the example services emit (services/common/metrics.py): the EMF namespace and
    dimension, and the metric names each service's code emits."""
    source = (ROOT / "examples/trading_platform/services/common/metrics.py").read_text()
    namespace = re.search(r'^NAMESPACE = "([^"]+)"', source, re.M)
    dimension = re.search(r'^DIMENSION = "([^"]+)"', source, re.M)
    assert namespace and dimension, "metrics.py no longer names NAMESPACE and DIMENSION"
    emitted: dict[str, set[str]] = {}
    for app in (ROOT / "examples/trading_platform/services").glob("*/*.py"):
        names = set(re.findall(r'Metric\(\s*"([A-Za-z0-9_.:/#-]+)"', app.read_text()))
        if names:
            emitted.setdefault(app.parent.name.replace("_", "-"), set()).update(names)
    return EmittedMetrics(
        namespace=namespace.group(1), dimensions=(dimension.group(1),), names=emitted
    )


SUITE_OPTIONS = ReadinessOptions(emitted_metrics=(_metric_convention(),))
"""The example's services as the metric emitters: an alarm or a scaling policy on one of them
must read a metric name its code emits."""


# -- the templates of the test suite --------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One synthesized app (or construct-level stack) of the test suite."""

    templates: dict[str, Template]
    outdir: Path | None = None

    def stacks(self) -> list[StackInput]:
        """Its stacks as the rules read them: from its assembly (construct paths and
        acknowledgements included) when it has one, else from its templates."""
        if self.outdir is not None:
            return [stack for stacks in read_assembly(self.outdir) for stack in stacks]
        return [StackInput(name=n, path=n, template=t) for n, t in self.templates.items()]


def _app(app: SynthesizedApp) -> Source:
    return Source(dict(app.templates), app.outdir)


def _stack(name: str, template: CdkTemplate) -> Source:
    return Source({name: template.to_json()})


def _synthesized(stack: Stack) -> Source:
    """A construct-level stack as its app's assembly holds it, acknowledgements included
    (``Template.from_stack`` synthesizes the app into its output folder)."""
    template = CdkTemplate.from_stack(stack).to_json()
    stage = Stage.of(stack)
    assert stage is not None
    return Source({stack.stack_name: template}, Path(stage.outdir))


# How each source is built: the session fixtures of conftest, and the fixtures of other modules
# (called through ``__wrapped__``, the function the fixture decorator wraps, so this module
# checks exactly what those modules build).
BUILDERS: dict[str, Callable[[pytest.FixtureRequest], Source]] = {
    "example": lambda r: _app(r.getfixturevalue("example")),
    "service-connect": lambda r: _app(r.getfixturevalue("service_connect")),
    "mutual-tls": lambda r: _app(r.getfixturevalue("mutual_tls")),
    "cluster": lambda r: _app(r.getfixturevalue("cluster_stacks").app),
    "ci-images": lambda r: _app(
        test_supply_chain.ci_images.__wrapped__(r.getfixturevalue("tmp_path_factory"))
    ),
    "grants": lambda r: _stack(
        "Grants", test_supply_chain.grants.__wrapped__(r.getfixturevalue("tmp_path_factory"))
    ),
    "edge-platform": lambda r: _synthesized(_edge_platform()),
    "edge-blue-green": lambda r: _synthesized(test_edge_validation.blue_green.__wrapped__().stack),
    "edge-app-mesh": lambda r: _synthesized(test_edge_validation.app_mesh.__wrapped__().stack),
    "service-platform": lambda r: _synthesized(
        test_service_validation.platform.__wrapped__().stack
    ),
    # a service per image source, the deploy-time copy among them (built once per session)
    "images": lambda r: _app(test_images.images_app().app),
    # a team's app on its own VPC, cluster, namespace, key and topic (built once per session)
    "bring-your-own": lambda r: _app(test_bring_your_own.consumer_app().synthesized),
    # the delivery pipeline: its own stack, the cross-region support stack and the three
    # stages' platforms (synthesized once per session, shared by the workers)
    "pipeline": lambda r: _pipeline(pipeline_assembly(r.getfixturevalue("tmp_path_factory"))),
}
# The stacks each source synthesizes; a stack added to a source must be listed here (checked).
STACKS: dict[str, tuple[str, ...]] = {
    "example": ("TradingPlatform",),
    "service-connect": ("TradingPlatform",),
    "mutual-tls": ("TradingPlatform",),
    "cluster": ("Custom", "Default", "Existing"),
    "ci-images": ("TradingPlatform",),
    "grants": ("Grants",),
    "edge-platform": ("Test",),
    "edge-blue-green": ("BlueGreen",),
    "edge-app-mesh": ("Mesh",),
    "service-platform": ("Test",),
    "images": ("Images",),
    "bring-your-own": ("Consumer",),
    "pipeline": (PIPELINE_STACK, SUPPORT_STACK, *STAGE_STACKS.values()),
}


def _pipeline(assembly: PipelineAssembly) -> Source:
    return Source(assembly.templates, assembly.outdir)


def _edge_platform() -> Stack:
    """The edge tests' shared platform, finished as a user would: its blue/green service
    behind an edge of its own (the bad-input tests build and drop edges on it)."""
    platform = test_edge_validation.platform.__wrapped__()
    platform.edge(service=platform.bg)
    return platform.stack


TEMPLATE_IDS = [f"{source}/{stack}" for source, stacks in STACKS.items() for stack in stacks]


@pytest.fixture(scope="module")
def sources(request: pytest.FixtureRequest) -> Callable[[str], Source]:
    """Build each source once for the module, the first time a test asks for it."""
    built: dict[str, Source | Exception] = {}

    def load(source: str) -> Source:
        if source not in built:
            try:
                built[source] = BUILDERS[source](request)
            except Exception as exc:  # a source that does not build fails its tests, once
                built[source] = exc
        result = built[source]
        if isinstance(result, Exception):
            pytest.fail(f"source {source!r} does not build: {result!r}", pytrace=False)
        return result

    return load


@pytest.fixture(scope="module")
def findings(sources: Callable[[str], Source]) -> Callable[[str], list[ReadinessFinding]]:
    """Every rule over each source once: its findings, acknowledged ones marked."""
    found: dict[str, list[ReadinessFinding]] = {}

    def load(source: str) -> list[ReadinessFinding]:
        if source not in found:
            stacks = sources(source).stacks()
            acknowledgements = merged(*(stack.acknowledgements for stack in stacks))
            raw = run_rules(stacks, options=SUITE_OPTIONS)
            found[source] = apply_acknowledgements(raw, acknowledgements, [s.path for s in stacks])
        return found[source]

    return load


def _open(found: Iterable[ReadinessFinding]) -> str:
    return "\n".join(["", *(str(f) for f in found if f.acknowledged is None)])


def _template_file(finding: ReadinessFinding) -> str:
    if finding.template_path is None:
        return finding.stack
    return Path(finding.template_path).name.removesuffix(".json").removesuffix(".template")


def _expect_none(found: Iterable[ReadinessFinding]) -> None:
    """No finding left open; those of a rule whose fix is pending (test_readiness_pending.py)
    make the test an expected failure, listing them."""
    left = [f for f in found if f.acknowledged is None]
    failing = [f for f in left if f.rule.id not in READINESS_PENDING]
    assert not failing, _open(failing)
    if left:
        reasons = sorted({READINESS_PENDING[f.rule.id] for f in left})
        pytest.xfail("; ".join(reasons) + _open(left))


@pytest.mark.parametrize("source", list(STACKS))
def test_every_synthesized_stack_is_checked(source: str, sources: Callable[[str], Source]) -> None:
    assert tuple(sorted(sources(source).templates)) == tuple(sorted(STACKS[source]))
    assert sorted(s.name for s in sources(source).stacks()) == sorted(STACKS[source])


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_every_stack_passes_every_rule(
    template_id: str, findings: Callable[[str], list[ReadinessFinding]]
) -> None:
    # GIVEN one stack of the suite  WHEN every rule reads it (with its assembly's metadata)
    source, stack = template_id.split("/", 1)
    found = [f for f in findings(source) if f.rule.check is not None and _template_file(f) == stack]
    # THEN no rule finds anything that no acknowledgement covers
    _expect_none(found)


@pytest.mark.parametrize("source", list(STACKS))
def test_the_stacks_of_every_source_pass_every_rule_across_stacks(
    source: str, findings: Callable[[str], list[ReadinessFinding]]
) -> None:
    _expect_none(f for f in findings(source) if f.rule.check_stacks is not None)


def test_no_acknowledgement_is_refused(findings: Callable[[str], list[ReadinessFinding]]) -> None:
    refused = [
        f for source in STACKS for f in findings(source) if f.rule.id == "acknowledgement-reason"
    ]
    assert refused == [], _open(refused)


def test_the_runtime_table_is_not_stale() -> None:
    assert date.today() - RUNTIMES_AS_OF < timedelta(days=180), (
        "refresh RUNTIME_DEPRECATION (trading_constructs/readiness/rules/quotas.py) from the "
        "Lambda runtimes page"
    )


# -- for construct_support.readiness_violations: the rules by their former names ----------------


def _messages(rule_id: str, template: Template, **options: Any) -> list[str]:
    rule = next(r for r in RULES if r.id == rule_id)
    found = check_template(template, rules=[rule], options=ReadinessOptions(**options))
    return [f"{f.logical_id}: {f.message}" for f in found]


def _allowing(rule_id: str) -> Callable[[Template, set[str]], list[str]]:
    def check(template: Template, allowed: set[str]) -> list[str]:
        return [m for m in _messages(rule_id, template) if m.split(":")[0] not in allowed]

    return check


def policies_created_after_their_users(template: Template) -> list[str]:
    return _messages("policy-before-use", template)


def undeliverable_alarm_actions(template: Template) -> list[str]:
    return _messages("alarm-can-notify", template)


def retained_with_fixed_names(template: Template) -> list[str]:
    return _messages("fixed-name-retained-on-failed-create", template)


def stateful_retained_on_failed_create(template: Template) -> list[str]:
    return _messages("retain-except-on-create", template)


def tls_on_load_balancer_targets(template: Template) -> list[str]:
    return _messages("no-tls-on-load-balancer-target", template)


def dependency_cycles(template: Template) -> list[str]:
    return _messages("no-dependency-cycle", template)


def unemitted_metrics(template: Template) -> list[str]:
    return _messages("metric-emitted", template, emitted_metrics=SUITE_OPTIONS.emitted_metrics)


def unsupported_runtimes(template: Template, build_date: date) -> list[str]:
    return _messages("lambda-runtime-supported", template, build_date=build_date) + _messages(
        "lambda-runtime-dated", template
    )


reserved_concurrency = _allowing("no-reserved-concurrency")
deletion_protection_on = _allowing("no-deletion-protection-on-create")
