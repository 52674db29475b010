"""Alarms that work once deployed: they can notify their topic, and they (and scaling
policies) read metrics that something emits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..graph import (
    Template,
    as_list,
    grants_action,
    of_type,
    properties,
    references,
    resources,
    service_principals,
    statements,
    targets,
)
from ..model import ReadinessOptions

CLOUDWATCH = "cloudwatch.amazonaws.com"


def _only_over_plain_http(statement: Mapping[str, Any]) -> bool:
    """A deny that applies only to requests without TLS (CloudWatch publishes over TLS)."""
    condition = statement.get("Condition") or {}
    return condition in (
        {"Bool": {"aws:SecureTransport": "false"}},
        {"Bool": {"aws:SecureTransport": False}},
    )


def _refused(document: Any, actions: Iterable[str], resource_ids: set[str]) -> list[str]:
    """The actions a policy document does not let CloudWatch take on the resource."""
    missing = []
    for action in actions:
        allowed = any(
            s.get("Effect") == "Allow"
            and CLOUDWATCH in service_principals(s)
            and grants_action(s, action)
            and (
                "*" in as_list(s.get("Resource"))
                or bool(references(s.get("Resource")) & resource_ids)
                or not resource_ids
            )
            for s in statements(document)
        )
        denied = any(
            s.get("Effect") == "Deny"
            and service_principals(s) & {CLOUDWATCH, "*"}
            and grants_action(s, action)
            and not _only_over_plain_http(s)
            for s in statements(document)
        )
        if not allowed or denied:
            missing.append(action)
    return missing


def _topic_policy_problems(template: Template, topic: str) -> Iterator[str]:
    for policy_id, policy in sorted(of_type(template, "AWS::SNS::TopicPolicy").items()):
        props = properties(policy)
        if not any(topic in references(t) for t in as_list(props.get("Topics"))):
            continue
        if _refused(props.get("PolicyDocument"), ["sns:Publish"], {topic}):
            yield f"whose policy {policy_id} does not let {CLOUDWATCH} sns:Publish"


def _key_problems(template: Template, topic: str) -> Iterator[str]:
    all_resources = resources(template)
    key = properties(all_resources[topic]).get("KmsMasterKeyId")
    if key is None:
        return
    keys = set()
    for k in targets(key, template, "AWS::KMS::Key", "AWS::KMS::Alias"):
        if all_resources[k]["Type"] == "AWS::KMS::Alias":
            k = next(iter(targets(properties(all_resources[k]), template, "AWS::KMS::Key")), k)
        keys.add(k)
    if not keys:
        yield f"encrypted with {key!r}: CloudWatch cannot use an AWS managed key"
    for key_id in sorted(keys):
        missing = _refused(
            properties(all_resources[key_id]).get("KeyPolicy"),
            ["kms:Decrypt", "kms:GenerateDataKey"],  # what "GenerateDataKey*" grants
            set(),
        )
        if missing:
            yield f"whose key {key_id} does not let {CLOUDWATCH} {', '.join(missing)}"


def undeliverable_alarm_actions(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """Every alarm action that is a topic of the template: its topic policy (if any) lets
    CloudWatch publish, and its KMS key (if any) lets CloudWatch use it."""
    for alarm_id, alarm in sorted(of_type(template, "AWS::CloudWatch::Alarm").items()):
        props = properties(alarm)
        actions = [
            *as_list(props.get("AlarmActions")),
            *as_list(props.get("OKActions")),
            *as_list(props.get("InsufficientDataActions")),
        ]
        for topic in sorted(targets(actions, template, "AWS::SNS::Topic")):
            for problem in [
                *_topic_policy_problems(template, topic),
                *_key_problems(template, topic),
            ]:
                yield alarm_id, f"publishes to {topic}, {problem}"


# -- metrics ---------------------------------------------------------------------------------

Read = tuple[str, Any, Any, dict[Any, Any]]


def metric_reads(template: Template) -> list[Read]:
    """(reader, namespace, metric name, dimensions) of every alarm and target tracking policy."""
    found: list[Read] = []

    def add(reader: str, metric: Mapping[str, Any]) -> None:
        dimensions = {d.get("Name"): d.get("Value") for d in as_list(metric.get("Dimensions"))}
        found.append((reader, metric.get("Namespace"), metric.get("MetricName"), dimensions))

    def add_queries(reader: str, queries: Any) -> None:
        for query in as_list(queries):
            if "MetricStat" in query:
                add(reader, query["MetricStat"]["Metric"])

    for alarm_id, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        props = properties(alarm)
        if "MetricName" in props:
            add(alarm_id, props)
        add_queries(alarm_id, props.get("Metrics"))
    for policy_id, policy in of_type(
        template, "AWS::ApplicationAutoScaling::ScalingPolicy"
    ).items():
        tracking = properties(policy).get("TargetTrackingScalingPolicyConfiguration") or {}
        custom = tracking.get("CustomizedMetricSpecification") or {}
        if "MetricName" in custom:
            add(policy_id, custom)
        add_queries(policy_id, custom.get("Metrics"))
    return sorted(found, key=str)


def _custom_reads(template: Template) -> Iterator[Read]:
    for read in metric_reads(template):
        namespace = read[1]
        aws = not isinstance(namespace, str) or namespace.startswith("AWS/")
        if not aws and namespace != "ECS/ContainerInsights":
            yield read


def _filters(template: Template) -> set[tuple[Any, Any, frozenset[Any]]]:
    """(namespace, name, dimension names) of every metric the template's filters write."""
    return {
        (
            t.get("MetricNamespace"),
            t.get("MetricName"),
            frozenset(d.get("Key") for d in as_list(t.get("Dimensions")) if isinstance(d, dict)),
        )
        for f in of_type(template, "AWS::Logs::MetricFilter").values()
        for t in as_list(properties(f).get("MetricTransformations"))
    }


def unemitted_metrics(template: Template, options: ReadinessOptions) -> Iterator[tuple[str, str]]:
    """A custom metric an alarm or a scaling policy reads, in a namespace that a metric filter
    of the template or a declared emitter (``ReadinessOptions.emitted_metrics``) writes, must be
    emitted with that name and those dimensions: otherwise it has no data, and the alarm or the
    scaling never acts."""
    filters = _filters(template)
    filtered = {namespace for namespace, _, _ in filters}
    for reader, namespace, name, dimensions in _custom_reads(template):
        if (namespace, name, frozenset(dimensions)) in filters:
            continue
        verdicts = [e.emits(namespace, name, dimensions) for e in options.emitted_metrics]
        if True in verdicts or (False not in verdicts and namespace not in filtered):
            continue
        emitter = next((e for e in options.emitted_metrics if e.namespace == namespace), None)
        detail = ""
        if emitter is not None and emitter.names is not None:
            value = dimensions.get(emitter.dimensions[0])
            if isinstance(value, str) and value in emitter.names:
                detail = f" ({value} emits {sorted(emitter.names[value])})"
        yield reader, f"reads {namespace}/{name} {sorted(dimensions)}, which nothing emits{detail}"


def metrics_of_unknown_emitters(
    template: Template, options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """A custom metric in a namespace that neither a metric filter of the template nor a
    declared emitter writes: the template cannot show it is emitted at all."""
    filtered = {namespace for namespace, _, _ in _filters(template)}
    declared = {e.namespace for e in options.emitted_metrics}
    for reader, namespace, name, dimensions in _custom_reads(template):
        if namespace not in filtered and namespace not in declared:
            yield (
                reader,
                f"reads {namespace}/{name} {sorted(dimensions)}: no metric filter of the "
                "template writes the namespace and no emitter of it is declared",
            )
