"""Entry point of the delivery pipeline: ``npx cdk synth -a "<python> <this file>" -c ...``.

Context (all ``-c name=value``): ``pipeline_account``, ``pipeline_region`` (where the pipeline
runs), ``repository`` (GitHub ``owner/name``), ``branch`` (default ``main``),
``connection_arn`` (the CodeConnections connection to GitHub), ``staging_account``,
``staging_region``, ``production_account``, ``production_regions`` (comma-separated: one
stage per region, deployed together as a wave), and optionally ``staging_alarm_email``,
``production_alarm_email``, ``staging_certificate_arn`` and ``production_certificate_arns``
(ACM certificates the load balancers serve HTTPS with: one for staging, one per production
region, comma-separated), ``production_deletion_protection`` (true once production's first
deploy has succeeded) and ``pipeline_docker_hub_credentials`` (a secret the image builds log in
to Docker Hub with). The synth step runs the README's commands with the same context, so the
pipeline that updates itself is the one deployed.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

if __package__ in (None, ""):  # run as a script by the CDK CLI: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.trading_platform.app import ContextValues, add_compliance_checks
from examples.trading_platform.pipeline_stack import Delivery, Target, TradingPipelineStack

PIPELINE_STACK = "TradingPipeline"
ENTRY_POINT = "examples/trading_platform/pipeline_app.py"
REQUIRED = (
    "pipeline_account",
    "pipeline_region",
    "repository",
    "connection_arn",
    "staging_account",
    "staging_region",
    "production_account",
    "production_regions",
)
OPTIONAL = (
    "branch",
    "staging_alarm_email",
    "production_alarm_email",
    "pipeline_docker_hub_credentials",
    "staging_certificate_arn",
    "production_certificate_arns",
)
ROOT = Path(__file__).resolve().parents[2]
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d")
_CERTIFICATE = re.compile(
    r"arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):certificate/[A-Za-z0-9-]+"
)


def create_pipeline_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """Build the pipeline app; tests call this with their own context and output folder."""
    app = App(context=dict(context or {}), outdir=outdir)
    values = _context(app)
    TradingPipelineStack(
        app,
        PIPELINE_STACK,
        env=Environment(account=values["pipeline_account"], region=values["pipeline_region"]),
        description="Delivery pipeline of the trading analytics platform (trading-constructs)",
        delivery=_delivery(app, values),
    )
    # the cdk-nag packs and the deploy-readiness rules: a finding fails `cdk synth`, and with
    # it the pipeline's synth step
    add_compliance_checks(app)
    return app


def _context(app: App) -> dict[str, str]:
    """The context values, checked: every problem in one message."""
    values = {key: app.node.try_get_context(key) for key in (*REQUIRED, *OPTIONAL)}
    problems = [f"context {key} missing" for key in REQUIRED if not values[key]]
    for key in ("pipeline_account", "staging_account", "production_account"):
        if values[key] and not _ACCOUNT.fullmatch(str(values[key])):
            problems.append(f"context {key}={values[key]!r} is not an account (12 digits)")
    for key in ("pipeline_region", "staging_region"):
        if values[key] and not _REGION.fullmatch(str(values[key])):
            problems.append(f"context {key}={values[key]!r} is not a region (e.g. us-east-1)")
    regions = _regions(values["production_regions"])
    problems += [
        f"context production_regions: {region!r} is not a region"
        for region in regions
        if not _REGION.fullmatch(region)
    ]
    if len(set(regions)) != len(regions):
        problems.append("context production_regions names a region twice (one stage a region)")
    problems += _certificates(values)[1]
    same_account = values["staging_account"] == values["production_account"]
    if same_account and values["staging_region"] in regions:
        problems.append(
            f"context staging_region={values['staging_region']!r} is a production region of "
            "the same account (allowed: another account or region: a platform holds what an "
            "account and region have once, such as its pull-through cache rule)"
        )
    if problems:
        raise ValueError(
            "pipeline app: " + "; ".join(problems) + f" (needed: {', '.join(REQUIRED)})"
        )
    return {key: str(value) for key, value in values.items() if value}


def _regions(value: object) -> list[str]:
    """``production_regions``: a comma-separated string (``-c``) or a JSON list (cdk.json)."""
    if not value:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _certificates(values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """``production_certificate_arns``: an ACM certificate ARN per production region (comma-
    separated; the region is the ARN's), in the production account. Returns them by region,
    and what is wrong with them."""
    found: dict[str, str] = {}
    problems = []
    for arn in _regions(values.get("production_certificate_arns")):
        match = _CERTIFICATE.fullmatch(arn)  # a string from -c, or a list in cdk.json
        region = match["region"] if match else None
        if match is None or match["account"] != str(values.get("production_account")):
            problems.append(
                f"context production_certificate_arns: {arn!r} is not an ACM certificate of "
                "the production account"
            )
        elif region not in _regions(values.get("production_regions")) or region in found:
            problems.append(
                f"context production_certificate_arns: {arn!r} is not the one certificate of "
                f"a production region (allowed: one per region of production_regions)"
            )
        else:
            found[region] = arn
    staging = values.get("staging_certificate_arn")
    match = _CERTIFICATE.fullmatch(staging) if staging else None
    if staging and (
        match is None
        or (match["account"], match["region"])
        != (str(values.get("staging_account")), values.get("staging_region"))
    ):
        problems.append(
            f"context staging_certificate_arn={staging!r} is not an ACM certificate of the "
            "staging account and region"
        )
    return found, problems


def _delivery(app: App, values: Mapping[str, str]) -> Delivery:
    certificates, _ = _certificates(
        {key: app.node.try_get_context(key) for key in (*REQUIRED, *OPTIONAL)}
    )
    flags = ContextValues(app)
    deletion_protection = flags.flag("production_deletion_protection", default=False)
    flags.raise_if_any()
    production = [
        Target(
            account=values["production_account"],
            region=region,
            alarm_email=values.get("production_alarm_email"),
            certificate_arn=certificates.get(region),
            deletion_protection=deletion_protection,
        )
        for region in _regions(app.node.try_get_context("production_regions"))
    ]
    return Delivery(
        repository=values["repository"],
        branch=values.get("branch", "main"),
        connection_arn=values["connection_arn"],
        synth_commands=synth_commands(app),
        staging=Target(
            account=values["staging_account"],
            region=values["staging_region"],
            alarm_email=values.get("staging_alarm_email"),
            certificate_arn=values.get("staging_certificate_arn"),
        ),
        production=production,
        cli_version=json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"],
        docker_hub_credentials=values.get("pipeline_docker_hub_credentials"),
    )


def synth_commands(app: App) -> list[str]:
    """The README's commands: install, test (ruff, mypy, pytest), synthesize this app with the
    context it was deployed with (cdk-nag and deploy readiness fail it on a finding), and the
    readiness command over every stage's templates."""
    keys = (*REQUIRED, *OPTIONAL, "production_deletion_protection")
    flags = [
        f"-c {key}={shlex.quote(_context_text(key, value))}"
        for key in keys
        if (value := app.node.try_get_context(key)) is not None
    ]
    return [
        "npm ci",
        "npm test",
        f'npx cdk synth -a ".venv/bin/python {ENTRY_POINT}" ' + " ".join(flags),
        ".venv/bin/python -m trading_constructs.readiness cdk.out",
    ]


def _context_text(key: str, value: object) -> str:
    """A context value as ``-c`` gives it back: lists comma-separated, booleans lower-case."""
    if key in ("production_regions", "production_certificate_arns"):
        return ",".join(_regions(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


if __name__ == "__main__":
    create_pipeline_app().synth()
