"""Entry point of ``cdk synth``: the TradingPlatform stack, checked by the cdk-nag packs."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks, PCIDSS321Checks

from trading_constructs import AZ_COUNT, AlarmSubscription, DeployReadiness, Mesh
from trading_constructs.compliance import CONTROL_TOWER_CONTEXT

if __package__ in (None, ""):  # run as a script by the CDK CLI: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.trading_platform.platform_stack import DomainContext, TradingPlatformStack

DEFAULT_REGION = "us-east-1"


def create_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """Build the app; tests call this with their own context and output folder."""
    app = App(context=dict(context or {}), outdir=outdir)
    control_tower = _control_tower(app)
    values = ContextValues(app)
    region = values.region(os.environ.get("CDK_DEFAULT_REGION") or DEFAULT_REGION)
    # one NAT gateway per AZ at most (VpcOptions checks the same)
    nat_gateways = values.integer("nat_gateways", default=AZ_COUNT, low=1, high=AZ_COUNT)
    certificate_arn = values.certificate_arn()
    green_weight = values.integer("green_weight", default=0, low=0, high=100)
    registry_scanning = values.flag("registry_scanning", default=True)
    # Off for the first deploy (a failed create must roll back); on in production, and
    # from the start under Control Tower's CT.RDS.PR.3 and CT.ELASTICLOADBALANCING.PR.5.
    deletion_protection = values.flag("deletion_protection", default=control_tower)
    values.raise_if_any()
    TradingPlatformStack(
        app,
        "TradingPlatform",
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=region),
        description="Trading analytics platform on ECS Fargate (trading-constructs example)",
        nat_gateways=nat_gateways,
        mesh=_mesh(app),
        image_tag=app.node.try_get_context("image_tag"),
        certificate_arn=certificate_arn,
        domain=_domain(app),
        green_weight=green_weight,
        green_image_tag=app.node.try_get_context("green_image_tag"),
        registry_scanning=registry_scanning,
        deletion_protection=deletion_protection,
        alarm_subscriptions=_alarm_subscriptions(app),
    )
    add_compliance_checks(app)
    return app


# arn:<partition>:acm:<region>:<account>:certificate/<id> (ACM's ARN format); TradingEdge
# checks the region against the stack's.
_CERTIFICATE_ARN = r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+"
_REGION = r"[a-z]{2}(-[a-z]+)+-\d"


class ContextValues:
    """Reads the ``-c name=value`` values that are not strings, checking each as the library
    checks its props: every problem of the command line in one error, each naming the value,
    what was given and what is allowed."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.problems: list[str] = []

    def _bad(self, name: str, value: object, allowed: str) -> None:
        self.problems.append(f"{name}={value!r} is not allowed (allowed: {allowed})")

    def integer(
        self, name: str, *, default: int, low: int | None = None, high: int | None = None
    ) -> int:
        """A whole number (``-c name=3`` gives the string '3'), within [low, high] if given."""
        value = self.app.node.try_get_context(name)
        if value is None:
            return default
        text = str(value).strip()
        number = int(text) if re.fullmatch(r"-?\d+", text) and not isinstance(value, bool) else None
        within = (
            number is not None
            and (low is None or number >= low)
            and (high is None or number <= high)
        )
        if number is None or not within:
            span = (
                f"an integer from {low} to {high}"
                if low is not None and high is not None
                else "an integer"
            )
            self._bad(name, value, span)
            return default
        return number

    def flag(self, name: str, *, default: bool) -> bool:
        """A boolean: JSON true/false, or the strings ``-c name=true|false`` gives."""
        value = self.app.node.try_get_context(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in {"true", "false"}:
            self._bad(name, value, "true, false")
            return default
        return text == "true"

    def region(self, default: str) -> str:
        """``-c region=...``, else the CLI's default region, else us-east-1."""
        value = self.app.node.try_get_context("region")
        if value is None:
            return default
        if not (isinstance(value, str) and re.fullmatch(_REGION, value)):
            self._bad("region", value, "a Region code, such as us-east-1")
            return default
        return value

    def certificate_arn(self) -> str | None:
        """``-c certificate_arn=...``: an ACM certificate for the load balancer's HTTPS."""
        value = self.app.node.try_get_context("certificate_arn")
        if value is None:
            return None
        if not (isinstance(value, str) and re.fullmatch(_CERTIFICATE_ARN, value)):
            self._bad(
                "certificate_arn",
                value,
                "an ACM certificate ARN, arn:aws:acm:<region>:<account>:certificate/<id>",
            )
            return None
        return value

    def raise_if_any(self) -> None:
        """One error for every bad value, so that one command line is fixed in one pass."""
        if len(self.problems) == 1:
            raise ValueError(f"context: {self.problems[0]}")
        if self.problems:
            lines = "".join(f"\n  - {problem}" for problem in self.problems)
            raise ValueError(f"context: {len(self.problems)} invalid values:{lines}")


def _control_tower(app: App) -> bool:
    """``-c control_tower=true``: the account runs AWS Control Tower's proactive controls as
    CloudFormation hooks. The library's Control Tower profile goes on (context
    ``trading-constructs:control-tower``: container logs kept a year), deletion protection is on
    from the first create, and HTTPS is required (plain HTTP listeners may only redirect)."""
    values = ContextValues(app)
    control_tower = values.flag("control_tower", default=False)
    values.raise_if_any()
    if not control_tower:
        return False
    app.node.set_context(CONTROL_TOWER_CONTEXT, True)
    if not (app.node.try_get_context("certificate_arn") or _domain(app)):
        raise ValueError(
            "context control_tower=true needs HTTPS: -c certificate_arn=... or -c domain_name=... "
            "with hosted_zone_id and hosted_zone_name (CT.ELASTICLOADBALANCING.PR.1 lets an "
            "HTTP listener only redirect to HTTPS)"
        )
    return True


def _mesh(app: App) -> Mesh:
    """``-c mesh=mutual-tls`` (the default: Envoy sidecars with mutual TLS from the platform's
    CA, retries with backoff, outlier ejection and circuit breakers), ``-c mesh=service-connect``
    (ECS's own proxy; ``-c tls_authority_arn=...`` adds server-authenticated TLS from an AWS
    Private CA) or ``-c mesh=appmesh`` (the original App Mesh design, past AWS's end of support:
    it synthesizes, but cannot be created). The mutual-TLS mesh takes
    ``-c docker_hub_credentials=<secret ARN>`` when the Docker Hub secret is not the default
    ``ecr-pullthroughcache/docker-hub``."""
    mesh = Mesh.from_name(str(app.node.try_get_context("mesh") or "mutual-tls"))
    authority = app.node.try_get_context("tls_authority_arn")
    if authority and mesh.kind == "service-connect":
        return Mesh.service_connect(tls_authority_arn=str(authority))
    credentials = app.node.try_get_context("docker_hub_credentials")
    if credentials and mesh.kind == "mutual-tls":
        return Mesh.mutual_tls(docker_hub_credentials=str(credentials))
    return mesh


def _domain(app: App) -> DomainContext | None:
    """``-c domain_name=api.example.com -c hosted_zone_id=Z... -c hosted_zone_name=example.com``:
    a DNS-validated certificate and an alias record instead of ``certificate_arn``."""
    values = {
        key: app.node.try_get_context(key)
        for key in ("domain_name", "hosted_zone_id", "hosted_zone_name")
    }
    if not any(values.values()):
        return None
    missing = sorted(key for key, value in values.items() if not value)
    if missing:
        raise ValueError(
            f"context {', '.join(missing)} missing: domain_name, hosted_zone_id and "
            "hosted_zone_name go together (allowed: all three, or none)"
        )
    return DomainContext(**{key: str(value) for key, value in values.items()})


def _alarm_subscriptions(app: App) -> list[AlarmSubscription]:
    """``-c alarm_email=...`` and ``-c alarm_topic_arn=...`` (for example the topic an AWS
    Chatbot channel watches): who hears the platform's alarms."""
    subscriptions = []
    if email := app.node.try_get_context("alarm_email"):
        subscriptions.append(AlarmSubscription.email(str(email)))
    if topic_arn := app.node.try_get_context("alarm_topic_arn"):
        subscriptions.append(AlarmSubscription.topic(str(topic_arn)))
    return subscriptions


def add_compliance_checks(app: App) -> None:
    """AWS Solutions, NIST 800-53 rev 5 and PCI DSS 3.2.1, and the library's deploy-readiness
    rules (what synth and the packs do not check: order, quotas, rollback, working after
    deploy): a finding stops synthesis."""
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), NIST80053R5Checks(app), PCIDSS321Checks(app), DeployReadiness()
    )


if __name__ == "__main__":
    create_app().synth()
