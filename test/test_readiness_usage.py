"""The readiness rules as a user runs them: the CDK validation plugin (findings in CDK's report,
errors fail the synthesis), the command over an assembly (exit status, text and JSON), and
acknowledgements with a reason (on a construct, a stack or the app; a blank one is refused).

Each app here is small and synthesized once; the command runs in-process (``main``), as
``python -m trading_constructs.readiness`` runs it.
"""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, RemovalPolicy, Stack, Stage, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from conftest import ENV

from trading_constructs import DeployReadiness
from trading_constructs.readiness import ReadinessOptions, acknowledge, check_assembly
from trading_constructs.readiness.cli import main

REASON = "Reserved on purpose: this account's concurrency quota is 1000 (raised in 2025)."
FIXED_REASON = "The log group's name is fixed by the auditors' tooling; a retry deletes it first."


def _function(scope: Stack, id: str) -> lambda_.Function:
    return lambda_.Function(
        scope,
        id,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(*_): pass"),
        reserved_concurrent_executions=1,
    )


@dataclass(frozen=True)
class Built:
    """An app synthesized (or not: ``error``) into ``outdir``."""

    outdir: Path
    error: Exception | None

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())

    def plugin_report(self) -> dict[str, Any]:
        (found,) = [r for r in self.report["pluginReports"] if r["pluginName"] == "DeployReadiness"]
        return found


def build(
    outdir: Path,
    *,
    fixed_name_acknowledged: bool = False,
    blank_reason: bool = False,
) -> Built:
    """An app with DeployReadiness, one error (a log group retained with a fixed name), one
    warning on a function acknowledged with a reason, and a stage whose stack's function is
    acknowledged on its stack."""
    app = App(outdir=str(outdir))
    stack = Stack(app, "Checked", env=ENV)
    logs.LogGroup(
        stack, "Named", log_group_name="/readiness/fixed", removal_policy=RemovalPolicy.RETAIN
    )
    acknowledge(_function(stack, "Reserved"), "no-reserved-concurrency", reason=REASON)
    if fixed_name_acknowledged:
        for rule in ("fixed-name-retained-on-failed-create", "retain-except-on-create"):
            acknowledge(stack, rule, reason=FIXED_REASON)
    inner = Stack(Stage(app, "Prod"), "Inner", env=ENV)
    _function(inner, "Reserved")
    acknowledge(inner, "no-reserved-concurrency", reason=REASON)
    if blank_reason:
        Validations.of(inner).acknowledge(
            Acknowledgment(id="DeployReadiness::retain-except-on-create", reason=" ")
        )
    Validations.of(app).add_plugins(DeployReadiness())
    try:
        app.synth()
    except Exception as error:  # the plugin's errors stop synthesis: the report says why
        return Built(outdir, error)
    return Built(outdir, None)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Built]:
    """Each variant of the app, synthesized once for the module (the command reads the same
    assemblies)."""
    built: dict[tuple[tuple[str, bool], ...], Built] = {}

    def get(**variant: bool) -> Built:
        key = tuple(sorted(variant.items()))
        if key not in built:
            built[key] = build(tmp_path_factory.mktemp("readiness"), **variant)
        return built[key]

    return get


# -- the plugin ------------------------------------------------------------------------------------


def test_the_plugin_fails_the_synthesis_with_the_finding_in_cdks_report(
    apps: Callable[..., Built],
) -> None:
    # GIVEN an app with a log group retained with a fixed name, and DeployReadiness added
    built = apps()
    # THEN synthesis fails, and CDK's report names the rule, the construct and the logical ID
    assert built.error is not None and "fixed LogGroupName" in str(built.error)
    report = built.plugin_report()
    assert report["conclusion"] == "failure"
    found = {
        (v["ruleName"], v["severity"], c["constructPath"])
        for v in report["violations"]
        for c in v["violatingConstructs"]
    }
    assert found == {
        ("fixed-name-retained-on-failed-create", "error", "Checked/Named/Resource"),
        ("retain-except-on-create", "warning", "Checked/Named/Resource"),
    }
    violation = next(v for v in report["violations"] if v["severity"] == "error")
    assert "'/readiness/fixed'" in violation["description"]
    assert violation["suggestedFix"].startswith("https://docs.aws.amazon.com/")
    (construct,) = violation["violatingConstructs"]
    assert construct["cloudFormationResource"]["logicalId"].startswith("Named")


def test_acknowledged_findings_pass_with_their_reason_in_the_report(
    apps: Callable[..., Built],
) -> None:
    # GIVEN the same app with the log group's findings acknowledged on its stack, with a reason
    built = apps(fixed_name_acknowledged=True)
    # THEN it synthesizes, and the report keeps each acknowledged finding with its reason
    assert built.error is None
    report = built.plugin_report()
    assert report["conclusion"] == "success" and report.get("violations", []) == []
    suppressed = {
        (v["ruleName"], v["acknowledgedAt"], v["reason"]) for v in report["suppressedViolations"]
    }
    assert suppressed == {
        ("fixed-name-retained-on-failed-create", "Checked", FIXED_REASON),
        ("retain-except-on-create", "Checked", FIXED_REASON),
        ("no-reserved-concurrency", "Checked/Reserved", REASON),
        ("no-reserved-concurrency", "Prod/Inner", REASON),
    }


def test_the_plugin_honours_an_acknowledgement_on_the_app(tmp_path: Path) -> None:
    # GIVEN a finding acknowledged on the app itself (it reaches no stack's metadata)
    app = App(outdir=str(tmp_path))
    _function(Stack(app, "Alone", env=ENV), "Reserved")
    acknowledge(app, "no-reserved-concurrency", reason=REASON)
    plugin = DeployReadiness()
    Validations.of(app).add_plugins(plugin)
    # WHEN synthesized  THEN the plugin reads it from the construct tree: nothing is left open
    app.synth()
    (finding,) = plugin.findings([str(tmp_path / "Alone.template.json")], app)
    assert (finding.rule.id, finding.acknowledged) == ("no-reserved-concurrency", REASON)
    assert plugin.name == "DeployReadiness" and "policy-before-use" in plugin.rule_ids


def test_the_plugin_takes_options_and_checks_them() -> None:
    assert DeployReadiness(options=ReadinessOptions(runtime_notice_days=30)).rule_ids
    with pytest.raises(ValueError, match="DeployReadiness: options="):
        DeployReadiness(options={"runtime_notice_days": 30})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"rules=.* is not allowed"):
        DeployReadiness(rules=["policy-before-use"])  # type: ignore[list-item]


# -- acknowledgements ------------------------------------------------------------------------------


def test_a_blank_reason_is_refused_where_it_is_given() -> None:
    stack = Stack(App(), "Refused")
    with pytest.raises(ValueError, match=r"acknowledge 'Refused': reason='  ' is not allowed"):
        acknowledge(stack, "no-reserved-concurrency", reason="  ")
    with pytest.raises(ValueError, match=r"acknowledge 'Refused': rule_id='no-such-rule'"):
        acknowledge(stack, "no-such-rule", reason=REASON)


def test_a_blank_reason_given_to_cdk_directly_fails_the_synthesis(
    apps: Callable[..., Built],
) -> None:
    # GIVEN an acknowledgement recorded with CDK's own API and a blank reason
    built = apps(fixed_name_acknowledged=True, blank_reason=True)
    # THEN the plugin refuses it, naming the construct and the rule
    assert built.error is not None
    (violation,) = built.plugin_report()["violations"]
    assert violation["ruleName"] == "acknowledgement-reason"
    assert (
        "'Prod/Inner' acknowledges DeployReadiness::retain-except-on-create without a reason"
        in (violation["description"])
    )


# -- the command -----------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(list(args))
    return status, capsys.readouterr().out


def test_the_command_exits_1_on_an_error_and_says_where(
    apps: Callable[..., Built], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the app's assembly (the plugin's synthesis wrote it before failing: a plugin only
    # reads an assembly, so it is what `cdk synth` writes without one)
    built = apps()
    # WHEN the command reads it  THEN exit status 1, and the error says rule, path and logical ID
    status, out = run(capsys, str(built.outdir))
    assert status == 1
    assert out.splitlines()[0] == "DeployReadiness: 1 error(s), 1 warning(s), 2 acknowledged"
    assert "error fixed-name-retained-on-failed-create Checked/Named/Resource (Named" in out
    assert "https://docs.aws.amazon.com/AWSCloudFormation/" in out
    # AND the stage's stack (a nested assembly) was read, its acknowledgement honoured
    assert "acknowledged warning no-reserved-concurrency Prod/Inner/Reserved/Resource" in out


def test_the_command_exits_0_when_every_error_is_acknowledged(
    apps: Callable[..., Built], capsys: pytest.CaptureFixture[str]
) -> None:
    built = apps(fixed_name_acknowledged=True)
    status, out = run(capsys, str(built.outdir), "--format", "json")
    assert status == 0
    report = json.loads(out)
    assert (report["failed"], report["errors"], report["warnings"], report["acknowledged"]) == (
        False,
        0,
        0,
        4,
    )
    finding = next(f for f in report["findings"] if f["stack"] == "Prod/Inner")
    assert finding == {
        "rule": "no-reserved-concurrency",
        "severity": "warning",
        "stack": "Prod/Inner",
        "logicalId": finding["logicalId"],
        "path": "Prod/Inner/Reserved/Resource",
        "message": "reserves 1 concurrent executions",
        "summary": finding["summary"],
        "url": "https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html",
        "acknowledged": REASON,
    }
    assert finding["logicalId"].startswith("Reserved")


def test_the_command_refuses_a_blank_reason(
    apps: Callable[..., Built], capsys: pytest.CaptureFixture[str]
) -> None:
    built = apps(fixed_name_acknowledged=True, blank_reason=True)
    status, out = run(capsys, str(built.outdir))
    assert status == 1
    assert "error acknowledgement-reason Prod/Inner: 'Prod/Inner' acknowledges " in out


def test_the_command_exits_2_on_what_is_not_an_assembly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["--build-date", "tomorrow"])
    assert exit.value.code == 2


def test_python_m_runs_the_command(
    apps: Callable[..., Built],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = apps(fixed_name_acknowledged=True)
    monkeypatch.setattr(sys, "argv", ["readiness", str(built.outdir), "--build-date", "2026-01-01"])
    with pytest.raises(SystemExit) as exit:
        runpy.run_module("trading_constructs.readiness", run_name="__main__")
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith("DeployReadiness: 0 error(s)")


def test_check_assembly_is_the_commands_report(apps: Callable[..., Built]) -> None:
    report = check_assembly(apps().outdir)
    assert report.failed
    assert sorted({f.stack for f in report.findings}) == ["Checked", "Prod/Inner"]
