"""Policies as compliance rules and audits read them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..graph import (
    Template,
    as_list,
    is_custom_resource,
    of_type,
    properties,
    references,
    resources,
    roles_run_by,
)
from ..model import ReadinessOptions


def inline_policies_of_custom_resources(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """The roles custom resources run as (an AwsCustomResource's, a provider framework's) hold
    managed policies only: an inline policy (an AWS::IAM::Policy, or the role's own Policies)
    is what NIST 800-53 and PCI DSS checks (IAMNoInlinePolicy, AWS Config's
    iam-no-inline-policy-check) refuse, and it cannot be audited or reused on its own."""
    all_resources = resources(template)
    roles = {
        role
        for logical_id, resource in all_resources.items()
        if is_custom_resource(resource)
        for role in roles_run_by(logical_id, template)
    }
    for role in sorted(roles):
        if properties(all_resources[role]).get("Policies"):
            yield role, "a custom resource runs as it, and it has inline Policies"
    for policy_id, policy in sorted(
        of_type(template, "AWS::IAM::Policy", "AWS::IAM::RolePolicy").items()
    ):
        holders = sorted(roles & _holders(policy))
        if holders:
            yield policy_id, f"an inline policy of {holders[0]}, which a custom resource runs as"


def _holders(policy: Mapping[str, Any]) -> set[str]:
    props = properties(policy)
    return references(as_list(props.get("Roles")) + as_list(props.get("RoleName")))
