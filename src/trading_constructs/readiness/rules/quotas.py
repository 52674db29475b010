"""Quotas and lifetimes a template can break: Lambda concurrency, Lambda runtimes, the size of
an ECS task definition."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta

from ..graph import Template, of_type, properties
from ..model import ReadinessOptions


def reserved_concurrency(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """New accounts have 10 concurrent executions and must keep them unreserved: any
    reservation fails their deploy."""
    for logical_id, f in sorted(of_type(template, "AWS::Lambda::Function").items()):
        if "ReservedConcurrentExecutions" in properties(f):
            reserved = properties(f)["ReservedConcurrentExecutions"]
            yield logical_id, f"reserves {reserved} concurrent executions"


RUNTIMES_AS_OF = date(2026, 11, 30)
"""The day the rules' table of Lambda runtime deprecation dates was read from
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html."""

RUNTIME_DEPRECATION = {
    "nodejs24.x": date(2028, 4, 30),
    "nodejs22.x": date(2027, 4, 30),
    "nodejs20.x": date(2026, 4, 30),
    "nodejs18.x": date(2025, 9, 1),
    "nodejs16.x": date(2024, 6, 12),
    "python3.14": date(2029, 6, 30),
    "python3.13": date(2029, 6, 30),
    "python3.12": date(2028, 10, 31),
    "python3.11": date(2027, 6, 30),
    "python3.10": date(2026, 6, 30),
    "python3.9": date(2025, 12, 15),
    "python3.8": date(2024, 10, 14),
    "java25": date(2029, 6, 30),
    "java21": date(2029, 6, 30),
    "java17": date(2029, 6, 30),
    "java11": date(2026, 6, 30),
    "java8.al2": date(2026, 6, 30),
    "dotnet10": date(2028, 11, 14),
    "dotnet8": date(2026, 11, 10),
    "ruby3.4": date(2028, 3, 31),
    "ruby3.3": date(2027, 3, 31),
    "ruby3.2": date(2026, 3, 31),
    "provided.al2023": date(2029, 6, 30),
    "provided.al2": date(2026, 6, 30),
}
"""Deprecation dates of Lambda's managed runtimes, from the "Supported runtimes" and
"Deprecated runtimes" tables of https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
(cross-checked with https://endoflife.date/aws-lambda), as of ``RUNTIMES_AS_OF``."""

HOSTED_ROTATION_RUNTIME = "python3.10"
"""The runtime of the function a RotationSchedule's HostedRotationLambda deploys (the
CloudFormation documentation says it deploys Python 3.10 binaries)."""


def lambda_runtimes(template: Template) -> dict[str, object]:
    """The runtime of every function the template creates, its own or made for it."""
    found: dict[str, object] = {
        logical_id: properties(f).get("Runtime", "")
        for logical_id, f in of_type(template, "AWS::Lambda::Function").items()
        if properties(f).get("PackageType") != "Image"
    }
    defaults = (template.get("Globals") or {}).get("Function") or {}
    for logical_id, f in of_type(template, "AWS::Serverless::Function").items():
        if properties(f).get("PackageType") != "Image":
            found[logical_id] = properties(f).get("Runtime", defaults.get("Runtime", ""))
    for logical_id, schedule in of_type(template, "AWS::SecretsManager::RotationSchedule").items():
        if "HostedRotationLambda" in properties(schedule):
            found[logical_id] = HOSTED_ROTATION_RUNTIME
    return found


def _deprecations(template: Template) -> Iterator[tuple[str, str, date | None]]:
    """(logical ID, the runtime as a message names it, its deprecation date if known)."""
    schedules = of_type(template, "AWS::SecretsManager::RotationSchedule")
    for logical_id, runtime in sorted(lambda_runtimes(template).items()):
        deprecation = RUNTIME_DEPRECATION.get(runtime) if isinstance(runtime, str) else None
        shown = (
            f"{runtime!r} (its HostedRotationLambda)" if logical_id in schedules else repr(runtime)
        )
        yield logical_id, shown, deprecation


def deprecated_runtimes(template: Template, options: ReadinessOptions) -> Iterator[tuple[str, str]]:
    """A function on a runtime Lambda deprecates within the notice period of the build date
    gets no security patches, and soon can be neither created nor updated."""
    build_date = options.judged_on
    notice = timedelta(days=options.runtime_notice_days)
    for logical_id, runtime, deprecation in _deprecations(template):
        if deprecation is not None and deprecation <= build_date + notice:
            yield (
                logical_id,
                f"{runtime} is deprecated on {deprecation.isoformat()} (build date "
                f"{build_date.isoformat()}, notice {notice.days} days)",
            )


def undated_runtimes(template: Template, _options: ReadinessOptions) -> Iterator[tuple[str, str]]:
    """A runtime the dated table does not know cannot be judged: a new one (refresh the table)
    or a token."""
    for logical_id, runtime, deprecation in _deprecations(template):
        if deprecation is None:
            yield logical_id, f"runtime {runtime} is not in the dated table"


TASK_DEFINITION_LIMIT = 64 * 1024
"""ECS RegisterTaskDefinition refuses a task definition over 64 KiB (ECS service quotas: "Task
definition size")."""


def oversized_task_definitions(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """A task definition must fit ECS's 64 KiB once registered: its properties as JSON, counted
    as CloudFormation sends them (intrinsics count with their own text, a close upper bound for
    the ARNs and names they resolve to). Long inline configuration (a sidecar's) fills it."""
    for logical_id, task in sorted(of_type(template, "AWS::ECS::TaskDefinition").items()):
        size = len(json.dumps(properties(task), separators=(",", ":")))
        if size > TASK_DEFINITION_LIMIT:
            yield logical_id, f"is {size} bytes, over ECS's {TASK_DEFINITION_LIMIT}"
