"""What a rule is, what it finds, and the options some rules read."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .._validation import CLOUDWATCH_NAMESPACE, Problems
from ..scaling import METRIC_NAMESPACE
from .graph import Template

PLUGIN_NAME = "DeployReadiness"
"""The plugin's name in CDK's validation report, and the prefix of an acknowledgement's id:
``DeployReadiness::<rule id>``."""


SEVERITIES = ("error", "warning")
"""How bad a rule's findings are: an ``error`` fails ``cdk synth`` and the command's exit
status, a ``warning`` is reported only."""


@dataclass(frozen=True, kw_only=True)
class EmittedMetrics:
    """Custom metrics that code emits where a template cannot show it (CloudWatch Embedded
    Metric Format, ``PutMetricData``): an alarm or a scaling policy that reads a metric in
    ``namespace`` with exactly ``dimensions`` reads something that is emitted.

    Attributes:
        namespace: The metrics' namespace. Default: 'TradingPlatform' (the namespace the
            library's ``CustomMetricTarget`` reads).
        dimensions: The dimension names every metric of the namespace carries.
            Default: ('Service',).
        names: The metric names each emitter emits, by the value of the first dimension (a
            service's name): a reader of a listed emitter must read one of its names; an
            emitter not listed may emit any name. Default: None (any name).
    """

    namespace: str = METRIC_NAMESPACE
    dimensions: tuple[str, ...] = ("Service",)
    names: Mapping[str, Collection[str]] | None = None

    def __post_init__(self) -> None:
        problems = Problems("EmittedMetrics")
        problems.pattern(
            "namespace",
            self.namespace,
            CLOUDWATCH_NAMESPACE,
            "a custom CloudWatch namespace (1 to 255 printable ASCII characters, not 'AWS/...')",
        )
        if not self.dimensions or not all(isinstance(d, str) and d for d in self.dimensions):
            problems.add("dimensions", self.dimensions, "a tuple of one or more dimension names")
        if self.names is not None:
            problems.mapping("names", self.names, "emitter names to the metric names they emit")
        problems.raise_if_any()

    def emits(self, namespace: Any, name: Any, dimensions: Mapping[Any, Any]) -> bool | None:
        """True if a metric read this way is emitted, False if the namespace is this one but
        the metric is not, None if the namespace is another."""
        if namespace != self.namespace:
            return None
        if set(dimensions) != set(self.dimensions):
            return False
        emitter = dimensions.get(self.dimensions[0])
        if self.names is None or not isinstance(emitter, str) or emitter not in self.names:
            return True
        return name in self.names[emitter]


@dataclass(frozen=True, kw_only=True)
class ReadinessOptions:
    """What some rules need to know that a template does not say.

    Attributes:
        build_date: The day the rules judge Lambda runtimes on. Default: None (today).
        runtime_notice_days: How long before a runtime's deprecation it is reported, so a
            deploy is not the day before the runtime stops taking updates. Default: 90.
        emitted_metrics: Custom metrics emitted by code, which alarms and scaling may read.
            Default: (EmittedMetrics(),) (the library's services: the 'TradingPlatform'
            namespace with the single 'Service' dimension).
    """

    build_date: date | None = None
    runtime_notice_days: int = 90
    emitted_metrics: tuple[EmittedMetrics, ...] = (EmittedMetrics(),)

    def __post_init__(self) -> None:
        problems = Problems("ReadinessOptions")
        if self.build_date is not None and not isinstance(self.build_date, date):
            problems.add("build_date", self.build_date, "a datetime.date, or None for today")
        problems.int_range("runtime_notice_days", self.runtime_notice_days, 0, 3650)
        emitted = problems.sequence("emitted_metrics", self.emitted_metrics, "EmittedMetrics")
        if not all(isinstance(e, EmittedMetrics) for e in emitted):
            problems.add("emitted_metrics", self.emitted_metrics, "a tuple of EmittedMetrics")
        problems.raise_if_any()

    @property
    def judged_on(self) -> date:
        """The build date the runtimes are judged on."""
        return self.build_date or date.today()


TemplateCheck = Callable[[Template, ReadinessOptions], Iterable[tuple[str, str]]]
"""A check over one template: (logical ID, what is wrong) for each violation."""
StacksCheck = Callable[
    [Mapping[str, Template], Mapping[str, Collection[str]], ReadinessOptions],
    Iterable[tuple[str, str]],
]
"""A check over the stacks of one assembly (templates and declared dependencies, by stack):
(stack, what is wrong) for each violation."""


@dataclass(frozen=True, kw_only=True)
class ReadinessRule:
    """One deploy-readiness rule: the AWS behaviour it encodes, and its check.

    Attributes:
        id: The rule's id, as findings and acknowledgements name it.
        severity: 'error' (a finding fails synthesis) or 'warning' (it is reported).
        summary: One line: what AWS does that makes the finding a problem.
        url: The AWS documentation that says so.
        check: The check over one template, or None. Default: None.
        check_stacks: The check over the stacks of one assembly, or None. Default: None.
    """

    id: str
    severity: str
    summary: str
    url: str
    check: TemplateCheck | None = field(default=None, repr=False, compare=False)
    check_stacks: StacksCheck | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = Problems(f"ReadinessRule {self.id!r}")
        problems.pattern("id", self.id, r"[a-z0-9]+(-[a-z0-9]+)*", "lower-case words and hyphens")
        problems.one_of("severity", self.severity, SEVERITIES)
        if not self.url.startswith("https://"):
            problems.add("url", self.url, "an https:// link to the AWS documentation")
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class ReadinessFinding:
    """A rule firing on one resource (or one stack).

    Attributes:
        rule: The rule that fired.
        stack: The stack's construct path (the stack's name for a bare template).
        logical_id: The resource's logical ID, or None when the finding is on a stack.
        path: The resource's construct path (its ``aws:cdk:path`` metadata), or the stack's.
            Default: None (a template without metadata).
        message: What is wrong, naming the resources involved.
        acknowledged: The reason of the acknowledgement that covers it, if any. Default: None.
        template_path: The template file the finding is in, when read from disk. Default: None.
    """

    rule: ReadinessRule
    stack: str
    logical_id: str | None
    message: str
    path: str | None = None
    acknowledged: str | None = None
    template_path: str | None = None

    @property
    def severity(self) -> str:
        """The rule's severity: 'error' or 'warning'."""
        return self.rule.severity

    @property
    def blocks(self) -> bool:
        """Whether it fails synthesis and the command: an error not acknowledged."""
        return self.rule.severity == "error" and self.acknowledged is None

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data (the command's ``--format json``)."""
        return {
            "rule": self.rule.id,
            "severity": self.rule.severity,
            "stack": self.stack,
            "logicalId": self.logical_id,
            "path": self.path,
            "message": self.message,
            "summary": self.rule.summary,
            "url": self.rule.url,
            "acknowledged": self.acknowledged,
        }

    def __str__(self) -> str:
        where = self.path or self.stack
        if self.logical_id is not None:
            where += f" ({self.logical_id})"
        return f"{self.rule.severity} {self.rule.id} {where}: {self.message}"
