"""Helpers the construct-level tests share: resources by logical-id prefix, a dashboard body
read as JSON, metrics read back, normalized snapshots, a customer-managed key as a platform
keeps it, and the deploy-readiness rules run over a construct's own stack."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
_HASH = re.compile(r"(?<=[A-Za-z0-9])[0-9A-F]{8}\b")


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def one(template: dict[str, Any], kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
    """The one resource of ``kind`` whose logical id starts with ``prefix``."""
    (found,) = ((k, r) for k, r in of_type(template, kind).items() if k.startswith(prefix))
    return found


def resources_of(template: Template, kind: str) -> dict[str, Any]:
    """The resources of ``kind`` in an assertions Template, by logical id."""
    found: dict[str, Any] = template.find_resources(kind)
    return found


def one_starting(resources: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The one resource whose logical id starts with ``prefix``."""
    (resource,) = (r for k, r in resources.items() if k.startswith(prefix))
    return resource


def platform_key(stack: Stack) -> kms.Key:
    """A customer-managed key as TradingCluster keeps its own: rotated yearly, and kept when
    its stack is deleted or the key replaced (data encrypted under it stays readable)."""
    return kms.Key(
        stack,
        "Key",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )


def props(template: dict[str, Any], kind: str, prefix: str) -> dict[str, Any]:
    properties: dict[str, Any] = one(template, kind, prefix)[1]["Properties"]
    return properties


def logical_id(stack: Stack, construct: Any) -> str:
    """The logical id of an L2 construct's CloudFormation resource."""
    return stack.get_logical_id(construct.node.default_child)


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def resolved_statement(stack: Stack, statement: iam.PolicyStatement) -> dict[str, Any]:
    resolved: dict[str, Any] = stack.resolve(statement.to_statement_json())
    return resolved


def metric_stat(stack: Stack, metric: cloudwatch.IMetric) -> dict[str, Any]:
    """What a metric reads, resolved: namespace, name, dimensions, statistic, period (s)."""
    stat = metric.to_metric_config().metric_stat
    assert stat is not None, "a math expression, not a metric"
    return {
        "namespace": stat.namespace,
        "metric_name": stat.metric_name,
        "dimensions": {d.name: stack.resolve(d.value) for d in stat.dimensions or []},
        "statistic": stat.statistic,
        "period": stat.period.to_seconds(),
    }


def _token(value: dict[str, Any]) -> str:
    """A reference inside a Fn::Join, as plain text: ``<Ref X>``, ``<X.Attribute>``, or any
    other intrinsic function as ``<{'Fn::...': ...}>``."""
    if "Ref" in value:
        return f"<Ref {value['Ref']}>"
    if "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        return f"<{resource}.{attribute}>"
    # any other function, as compact JSON without double quotes (it sits inside a string)
    return "<" + json.dumps(value, separators=(",", ":"), sort_keys=True).replace('"', "'") + ">"


def dashboard_body(dashboard: dict[str, Any]) -> dict[str, Any]:
    """A dashboard's body (a Fn::Join of JSON text and references) as JSON, each reference
    replaced by ``<Ref X>`` / ``<X.Attribute>`` text."""
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else _token(p) for p in parts)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def normalized(value: Any) -> Any:
    """A value with the hash suffixes of logical ids and task families replaced by ``*``, so a
    snapshot survives everything but a change of what the resource says."""
    return json.loads(_HASH.sub("*", json.dumps(value, sort_keys=True)))


def matches_snapshot(name: str, value: Any) -> None:
    """Compare with ``snapshots/<name>.json``; ``UPDATE_SNAPSHOTS=1`` (re)writes it."""
    path = SNAPSHOTS / f"{name}.json"
    current = normalized(value)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"no snapshot {path.name}: write it with UPDATE_SNAPSHOTS=1"
    assert current == json.loads(path.read_text()), (
        f"{path.name} differs: check the change, then rerun with UPDATE_SNAPSHOTS=1"
    )


def readiness_violations(template: dict[str, Any]) -> dict[str, list[str]]:
    """The deploy-readiness rules of test_deploy_readiness over one construct stack, by rule:
    only the rules that found something."""
    import test_deploy_readiness as rules

    checks: dict[str, Callable[[dict[str, Any]], list[str]]] = {
        "policies before their users": rules.policies_created_after_their_users,
        "alarm actions deliverable": rules.undeliverable_alarm_actions,
        "retained with a fixed name": rules.retained_with_fixed_names,
        "retained on a failed create": rules.stateful_retained_on_failed_create,
        "TLS on a load balancer target": rules.tls_on_load_balancer_targets,
        "dependency cycles": rules.dependency_cycles,
        "metrics emitted": rules.unemitted_metrics,
        "runtimes supported": lambda t: rules.unsupported_runtimes(t, date.today()),
        "reserved concurrency": lambda t: rules.reserved_concurrency(t, set()),
        "deletion protection": lambda t: rules.deletion_protection_on(t, set()),
    }
    found = {name: check(template) for name, check in checks.items()}
    return {name: violations for name, violations in found.items() if violations}
