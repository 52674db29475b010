"""Delivery past one account: a CDK Pipeline that builds the platform's images once and deploys
the same build to a staging account, then (after a manual approval) to production, one or more
regions of it as a wave."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, DefaultStackSynthesizer, Environment, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from examples.trading_platform.pipeline_findings import acknowledge_pipeline, order_build_projects
from examples.trading_platform.platform_stack import TradingPlatformStack
from trading_constructs import AlarmSubscription

SYNTH_OUTPUT = "cdk.out"
# cdk-assets, which the asset actions install to build and publish the images: pinned, so a
# release of it cannot change a run (the CDK CLI's version comes from package.json).
CDK_ASSETS_VERSION = "4.7.3"
PLATFORM_STACK = "TradingPlatform"


@dataclass(frozen=True)
class Target:
    """Where one stage deploys: an account, a region, who hears its alarms, and the ACM
    certificate its load balancer serves HTTPS with (plain HTTP without one)."""

    account: str
    region: str
    alarm_email: str | None = None
    certificate_arn: str | None = None
    deletion_protection: bool = False


@dataclass(frozen=True)
class Delivery:
    """The pipeline's source, its synth commands and its stages."""

    repository: str
    branch: str
    connection_arn: str
    synth_commands: Sequence[str]
    staging: Target
    production: Sequence[Target]
    cli_version: str
    docker_hub_credentials: str | None = None
    """A Secrets Manager secret of the pipeline's account (``username`` and ``accessToken``,
    as for an ECR pull-through cache of Docker Hub) the image builds pull their base image
    with; anonymous pulls from shared CodeBuild addresses hit Docker Hub's rate limit."""


def _lookup_statement(delivery: Delivery) -> iam.PolicyStatement:
    """Assume the CDK lookup role of every stage's account and region, and no other role."""
    targets = [delivery.staging, *delivery.production]
    return iam.PolicyStatement(
        actions=["sts:AssumeRole"],
        resources=sorted(
            {
                f"arn:{Aws.PARTITION}:iam::{t.account}:role/"
                f"cdk-{DefaultStackSynthesizer.DEFAULT_QUALIFIER}-lookup-role-{t.account}-{t.region}"
                for t in targets
            }
        ),
    )


class PlatformStage(Stage):
    """One copy of the platform in one account and region, with its own alarm topic, scanned
    repositories and keys: nothing in it is shared with another stage."""

    def __init__(self, scope: Construct, id: str, *, target: Target) -> None:
        super().__init__(scope, id, env=Environment(account=target.account, region=target.region))
        subscriptions = [AlarmSubscription.email(target.alarm_email)] if target.alarm_email else []
        self.platform = TradingPlatformStack(
            self,
            PLATFORM_STACK,
            description=f"Trading analytics platform, {id} stage (trading-constructs example)",
            alarm_subscriptions=subscriptions,
            certificate_arn=target.certificate_arn,
            deletion_protection=target.deletion_protection,
        )


class TradingPipelineStack(Stack):
    """The pipeline, in the tooling account: source, synth (tests and every gate), the images
    published once, staging, a manual approval, then production as a wave of regions."""

    def __init__(self, scope: Construct, id: str, *, delivery: Delivery, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        source = pipelines.CodePipelineSource.connection(
            delivery.repository, delivery.branch, connection_arn=delivery.connection_arn
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            synth=pipelines.CodeBuildStep(
                "Synth",
                input=source,
                commands=list(delivery.synth_commands),
                primary_output_directory=SYNTH_OUTPUT,
                # `cdk synth` looks up each stage's Availability Zones through the stage's
                # lookup role (bootstrapped with --trust-for-lookup): those roles, by name
                role_policy_statements=[_lookup_statement(delivery)],
            ),
            # Stages live in other accounts: the artifact bucket gets a customer managed key
            # those accounts' deploy roles may use, rotated yearly.
            cross_account_keys=True,
            enable_key_rotation=True,
            # One CodeBuild action per image: built once, pushed to every stage's account.
            publish_assets_in_parallel=True,
            cli_version=delivery.cli_version,
            cdk_assets_cli_version=CDK_ASSETS_VERSION,
            docker_credentials=docker_hub_credentials(self, delivery.docker_hub_credentials),
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxBuildImage.STANDARD_7_0
                )
            ),
        )
        self.staging = PlatformStage(self, "Staging", target=delivery.staging)
        self.pipeline.add_stage(self.staging)
        wave = self.pipeline.add_wave(
            "Production",
            pre=[
                pipelines.ManualApprovalStep(
                    "PromoteToProduction",
                    comment="Staging runs this build: promote the same images to production.",
                )
            ],
        )
        self.production = [
            PlatformStage(self, f"Production-{target.region}", target=target)
            for target in delivery.production
        ]
        for stage in self.production:
            wave.add_stage(stage)
        # Built now rather than at synth, so the generated resources can be ordered and their
        # findings acknowledged beside them.
        self.pipeline.build_pipeline()
        order_build_projects(self.pipeline)
        acknowledge_pipeline(self, self.pipeline)


def docker_hub_credentials(
    scope: Construct, secret_arn: str | None
) -> list[pipelines.DockerCredential]:
    """The image builds' Docker Hub login: the secret an ECR pull-through cache of Docker Hub
    uses too (``username`` and ``accessToken``), read by the asset publishing actions only."""
    if secret_arn is None:
        return []
    secret = secretsmanager.Secret.from_secret_complete_arn(
        scope, "DockerHubCredentials", secret_arn
    )
    return [
        pipelines.DockerCredential.docker_hub(
            secret,
            secret_username_field="username",
            secret_password_field="accessToken",
            usages=[pipelines.DockerCredentialUsage.ASSET_PUBLISHING],
        )
    ]


__all__ = [
    "Delivery",
    "PlatformStage",
    "Target",
    "TradingPipelineStack",
    "docker_hub_credentials",
]
