"""Running the rules over stacks, and what acknowledgements make of the findings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assembly import Acknowledgements, StackInput, read_assembly, resource_paths_of
from .graph import Template
from .model import PLUGIN_NAME, ReadinessFinding, ReadinessOptions, ReadinessRule
from .rules import ACKNOWLEDGEMENT_REASON, RULES


def _template_findings(
    stack: StackInput, rules: Sequence[ReadinessRule], options: ReadinessOptions
) -> Iterable[ReadinessFinding]:
    for rule in rules:
        if rule.check is None:
            continue
        for logical_id, message in rule.check(stack.template, options):
            yield ReadinessFinding(
                rule=rule,
                stack=stack.path,
                logical_id=logical_id,
                message=message,
                path=stack.resource_paths.get(logical_id),
                template_path=stack.template_path,
            )


def _stack_findings(
    stacks: Sequence[StackInput], rules: Sequence[ReadinessRule], options: ReadinessOptions
) -> Iterable[ReadinessFinding]:
    """The findings of rules over the stacks of one assembly, on the stack they name."""
    by_name = {stack.name: stack for stack in stacks}
    templates = {stack.name: stack.template for stack in stacks}
    dependencies = {stack.name: stack.dependencies for stack in stacks}
    for rule in rules:
        if rule.check_stacks is None:
            continue
        for name, message in rule.check_stacks(templates, dependencies, options):
            stack = by_name[name]
            yield ReadinessFinding(
                rule=rule,
                stack=stack.path,
                logical_id=None,
                message=message,
                path=stack.path,
                template_path=stack.template_path,
            )


def run_rules(
    stacks: Sequence[StackInput],
    *,
    options: ReadinessOptions | None = None,
    rules: Sequence[ReadinessRule] | None = None,
) -> list[ReadinessFinding]:
    """Every finding of ``rules`` (all if None) over the stacks of one assembly, before
    acknowledgements."""
    options = options or ReadinessOptions()
    rules = RULES if rules is None else rules
    findings = [f for stack in stacks for f in _template_findings(stack, rules, options)]
    return findings + list(_stack_findings(stacks, rules, options))


def check_template(
    template: Template,
    *,
    options: ReadinessOptions | None = None,
    rules: Sequence[ReadinessRule] | None = None,
    stack: str = "Stack",
) -> list[ReadinessFinding]:
    """Every finding of the rules over one template (a dict, as ``json.load`` reads it).

    Args:
        template: The CloudFormation template.
        options: What the rules need that the template does not say. Default: None
            (``ReadinessOptions()``).
        rules: The rules to run. Default: None (``RULES``, all of them).
        stack: The stack's name in the findings. Default: 'Stack'.
    """
    given = StackInput(
        name=stack, path=stack, template=template, resource_paths=resource_paths_of(template, {})
    )
    return run_rules([given], options=options, rules=rules)


# -- acknowledgements ----------------------------------------------------------------------------


def acknowledgement_id(rule_id: str) -> str:
    """The id an acknowledgement of a rule names: ``DeployReadiness::<rule id>``."""
    return f"{PLUGIN_NAME}::{rule_id}"


def _ancestors(path: str) -> Iterable[str]:
    """The path and every construct above it, up to the app (whose path is '')."""
    while path:
        yield path
        path = path.rpartition("/")[0]
    yield ""


def _closest_reason(finding: ReadinessFinding, acknowledgements: Acknowledgements) -> str | None:
    """The reason of the acknowledgement nearest the finding's construct, as CDK matches an
    acknowledgement to a violation; None if none covers it."""
    wanted = acknowledgement_id(finding.rule.id)
    for path in _ancestors(finding.path or finding.stack):
        reasons = acknowledgements.get(path, {})
        if wanted in reasons:
            return reasons[wanted]
    return None


def _stack_holding(path: str, stacks: Iterable[str]) -> str:
    return max((s for s in stacks if path == s or path.startswith(f"{s}/")), key=len, default=path)


def apply_acknowledgements(
    findings: Iterable[ReadinessFinding],
    acknowledgements: Acknowledgements,
    stacks: Iterable[str] = (),
) -> list[ReadinessFinding]:
    """The findings with the reasons that acknowledge them, followed by a finding for each
    acknowledgement of a rule without a reason (refused: what it names stays open).
    ``stacks``: the stacks' construct paths, to say which stack holds a refused one."""
    stacks = tuple(stacks)
    result = []
    for finding in findings:
        reason = _closest_reason(finding, acknowledgements)
        if reason is not None and reason.strip():
            finding = dataclasses.replace(finding, acknowledged=reason)
        result.append(finding)
    prefix = f"{PLUGIN_NAME}::"
    for path, reasons in sorted(acknowledgements.items()):
        for rule_id, reason in sorted(reasons.items()):
            if rule_id.startswith(prefix) and not reason.strip():
                result.append(
                    ReadinessFinding(
                        rule=ACKNOWLEDGEMENT_REASON,
                        stack=_stack_holding(path, stacks),
                        logical_id=None,
                        message=f"'{path}' acknowledges {rule_id} without a reason (refused)",
                        path=path,
                    )
                )
    return result


def merged(*sources: Mapping[str, Mapping[str, str]]) -> Acknowledgements:
    """Acknowledgements of several stacks (and of the app), by construct path."""
    found: Acknowledgements = {}
    for source in sources:
        for path, reasons in source.items():
            found.setdefault(path, {}).update(reasons)
    return found


# -- reports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadinessReport:
    """The findings over an app or an assembly, acknowledged ones included.

    Attributes:
        findings: Every finding, each with its acknowledgement's reason if it has one.
    """

    findings: tuple[ReadinessFinding, ...]

    @property
    def failed(self) -> bool:
        """Whether an error is left that no acknowledgement covers."""
        return any(f.blocks for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        open_ = [f for f in self.findings if f.acknowledged is None]
        return {
            "plugin": PLUGIN_NAME,
            "failed": self.failed,
            "errors": sum(f.severity == "error" for f in open_),
            "warnings": sum(f.severity == "warning" for f in open_),
            "acknowledged": len(self.findings) - len(open_),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_text(self) -> str:
        """The report for a person: open findings first, each with its rule's reason."""
        summary = self.to_dict()
        lines = [
            f"{PLUGIN_NAME}: {summary['errors']} error(s), {summary['warnings']} warning(s), "
            f"{summary['acknowledged']} acknowledged"
        ]
        ordered = sorted(self.findings, key=lambda f: (f.acknowledged is not None, str(f)))
        for finding in ordered:
            status = "acknowledged " if finding.acknowledged is not None else ""
            lines += [
                "",
                f"{status}{finding}",
                f"  {finding.rule.summary}",
                f"  {finding.rule.url}",
            ]
            if finding.acknowledged is not None:
                lines.append(f"  acknowledged: {finding.acknowledged}")
        return "\n".join(lines)


def check_assembly(
    directory: Path | str,
    *,
    options: ReadinessOptions | None = None,
    rules: Sequence[ReadinessRule] | None = None,
) -> ReadinessReport:
    """Every finding of the rules over a synthesized cloud assembly (``cdk.out``), its stages'
    assemblies included, with the acknowledgements recorded on the stacks' constructs.

    Args:
        directory: The assembly's directory.
        options: What the rules need that the templates do not say. Default: None
            (``ReadinessOptions()``).
        rules: The rules to run. Default: None (``RULES``, all of them).
    """
    findings: list[ReadinessFinding] = []
    for stacks in read_assembly(directory):
        acknowledgements = merged(*(stack.acknowledgements for stack in stacks))
        found = run_rules(stacks, options=options, rules=rules)
        findings += apply_acknowledgements(
            found, acknowledgements, [stack.path for stack in stacks]
        )
    return ReadinessReport(tuple(findings))
