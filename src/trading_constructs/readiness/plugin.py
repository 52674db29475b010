"""The rules as a CDK validation plugin: findings in CDK's validation report, errors fail
``cdk synth``, acknowledgements through ``Validations.of(scope).acknowledge(...)``."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    PolicyViolatingResource,
    PolicyViolation,
    Stage,
    Validations,
)
from constructs import IConstruct

from .._validation import Problems, check_type
from .assembly import Acknowledgements, StackInput, stack_of_template
from .check import apply_acknowledgements, merged, run_rules
from .model import PLUGIN_NAME, ReadinessFinding, ReadinessOptions, ReadinessRule
from .rules import RULES


def _package_version() -> str:
    try:
        return metadata.version("trading-constructs")
    except metadata.PackageNotFoundError:  # a source checkout, not installed
        return "0.0.0"


def _stage_acknowledgements(scope: IConstruct) -> Acknowledgements:
    """Acknowledgements on the app and its stages: the assembly keeps only those recorded
    inside stacks, so the plugin reads these from the construct tree."""
    found: Acknowledgements = {}
    for entry in scope.node.metadata:
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
            reasons = {str(k): str(v) for k, v in dict(entry.data).items()}
            found.setdefault(scope.node.path, {}).update(reasons)
    for child in scope.node.children:
        if Stage.is_stage(child):
            found = merged(found, _stage_acknowledgements(child))
    return found


def _violation(finding: ReadinessFinding) -> PolicyViolation:
    if finding.logical_id is not None and finding.template_path is not None:
        resource = PolicyViolatingResource(
            resource_logical_id=finding.logical_id,
            template_path=finding.template_path,
            locations=[f"Resources/{finding.logical_id}"],
        )
    else:
        resource = PolicyViolatingResource(construct_path=finding.path or "", locations=[])
    return PolicyViolation(
        rule_name=finding.rule.id,
        description=f"{finding.message}. {finding.rule.summary}.",
        fix=finding.rule.url,
        severity=finding.severity,
        violating_resources=[resource],
    )


@jsii.implements(IPolicyValidationPlugin)
class DeployReadiness:
    """The deploy-readiness rules as a CDK validation plugin: what synthesis, cfn-lint and
    cdk-nag let through and CloudFormation, ECS, RDS or Lambda then trip on at deploy time.

    Add it with ``Validations.of(app).add_plugins(DeployReadiness())``. Its findings appear in
    CDK's validation report (``validation-report.json`` in the assembly); an error fails the
    synthesis. A finding that is acceptable is acknowledged on its construct, its stack or the
    app, with a reason: ``Validations.of(scope).acknowledge(Acknowledgment(
    id="DeployReadiness::<rule id>", reason="..."))``; one without a reason is refused.
    """

    def __init__(
        self,
        *,
        options: ReadinessOptions | None = None,
        rules: Sequence[ReadinessRule] | None = None,
    ) -> None:
        """
        :param options: What some rules need that the templates do not say (the build date for
            Lambda runtimes, the custom metrics code emits). Default: ``ReadinessOptions()``.
        :param rules: The rules to run. Default: ``RULES`` (all of them).
        """
        check_type("DeployReadiness", "options", options, ReadinessOptions)
        problems = Problems("DeployReadiness")
        chosen = (
            RULES if rules is None else tuple(problems.sequence("rules", rules, "ReadinessRule"))
        )
        if not all(isinstance(rule, ReadinessRule) for rule in chosen):
            problems.add("rules", rules, "a list of ReadinessRule objects, such as RULES")
        problems.raise_if_any()
        self._options = options or ReadinessOptions()
        self._rules = tuple(chosen)

    @builtins.property
    def name(self) -> str:
        """The plugin's name in the validation report."""
        return PLUGIN_NAME

    @builtins.property
    def version(self) -> str:
        """The version of trading-constructs."""
        return _package_version()

    @builtins.property
    def rule_ids(self) -> list[str]:
        """The ids of the rules it runs."""
        return [rule.id for rule in self._rules]

    def findings(
        self, template_paths: Iterable[str], scope: IConstruct | None = None
    ) -> list[ReadinessFinding]:
        """Every finding over the given templates of a synthesized assembly, with the
        acknowledgements recorded on their stacks' constructs (and on ``scope``, the app, and
        its stages)."""
        by_assembly: dict[Path, list[StackInput]] = {}
        for path in template_paths:
            stack = stack_of_template(path)
            by_assembly.setdefault(Path(stack.template_path or path).parent, []).append(stack)
        stacks = [stack for group in by_assembly.values() for stack in group]
        acknowledgements = merged(
            _stage_acknowledgements(scope) if scope is not None else {},
            *(stack.acknowledgements for stack in stacks),
        )
        findings: list[ReadinessFinding] = []
        for group in by_assembly.values():
            findings += run_rules(group, options=self._options, rules=self._rules)
        return apply_acknowledgements(findings, acknowledgements, [stack.path for stack in stacks])

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        """Called by CDK during synthesis, with the templates of the stage it was added to."""
        scope: Any = getattr(context, "app_construct", None)
        findings = self.findings(context.template_paths, scope)
        return PolicyValidationPluginReport(
            success=not any(f.blocks for f in findings),
            violations=[_violation(f) for f in findings],
            plugin_version=self.version,
        )
