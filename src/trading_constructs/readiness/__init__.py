"""Deploy readiness: rules over synthesized CloudFormation templates for what synthesis,
cfn-lint and cdk-nag let through and CloudFormation, ECS, RDS or Lambda then trip on at deploy
time (creation order, quotas, rollback of a failed first create, alarms that cannot notify,
metrics nothing emits, databases nothing can reach...). They read any CDK app's templates, by
resource type, property and dependency, whether or not it uses the other constructs.

Three ways to run them:

- ``Validations.of(app).add_plugins(DeployReadiness())``: the findings in CDK's validation
  report, errors failing ``cdk synth``;
- ``python -m trading_constructs.readiness cdk.out [--format json]`` over a synthesized
  assembly, for CI: exit status 1 when an error is left, 0 otherwise;
- ``check_template(template)`` and ``check_assembly(directory)`` from Python.

A finding that is acceptable is acknowledged with a reason on its construct, its stack or the
app, as cdk-nag's are: ``acknowledge(scope, "policy-before-use", reason="...")``, or CDK's own
``Validations.of(scope).acknowledge(Acknowledgment(id="DeployReadiness::policy-before-use",
reason="..."))``. The command reads the acknowledgements recorded in the assembly, which keeps
those on constructs inside stacks (and on the stacks); an acknowledgement on the app or a stage
reaches only the plugin.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

from .check import ReadinessReport, acknowledgement_id, check_assembly, check_template
from .model import (
    PLUGIN_NAME,
    SEVERITIES,
    EmittedMetrics,
    ReadinessFinding,
    ReadinessOptions,
    ReadinessRule,
    StacksCheck,
    TemplateCheck,
)
from .plugin import DeployReadiness
from .rules import RULES
from .rules.quotas import RUNTIMES_AS_OF


def acknowledge(scope: IConstruct, rule_id: str, *, reason: str) -> None:
    """Acknowledge a rule's findings on ``scope`` and every construct under it (a resource, a
    construct, a stack or the app), with the reason they are acceptable. It records CDK's own
    acknowledgement (``Validations.of(scope).acknowledge``), which the plugin and the command
    read.

    Args:
        scope: The construct whose findings (and those of the constructs under it) are
            acceptable.
        rule_id: The rule's id, such as 'policy-before-use' (see ``RULES``).
        reason: Why, for whoever reads the report next: at least a sentence.

    Raises:
        ValueError: The rule is unknown or the reason is blank.
    """
    known = {rule.id for rule in RULES}
    problems = []
    if rule_id not in known:
        problems.append(f"rule_id={rule_id!r} is not allowed (allowed: {', '.join(sorted(known))})")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(
            f"reason={reason!r} is not allowed (allowed: why the finding is acceptable)"
        )
    if problems:
        raise ValueError(f"acknowledge '{scope.node.path}': {'; '.join(problems)}")
    Validations.of(scope).acknowledge(Acknowledgment(id=acknowledgement_id(rule_id), reason=reason))


__all__ = [
    "PLUGIN_NAME",
    "RULES",
    "RUNTIMES_AS_OF",
    "SEVERITIES",
    "DeployReadiness",
    "EmittedMetrics",
    "ReadinessFinding",
    "ReadinessOptions",
    "ReadinessReport",
    "ReadinessRule",
    "StacksCheck",
    "TemplateCheck",
    "acknowledge",
    "check_assembly",
    "check_template",
]
