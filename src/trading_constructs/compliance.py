"""Acknowledging compliance findings (cdk-nag reads these) the way the finding names itself.

cdk-nag names an IAM wildcard finding after the resource as it appears in the template, tokens
rendered as ``<AWS::AccountId>`` or ``<LogicalId.Arn>``; the same ARN renders differently per
stack environment, so the ID is computed, not written by hand.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from ._validation import Problems


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(_render(part) for part in parts)
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return f"<{logical_id}.{attribute}>"
    return json.dumps(value, sort_keys=True)


VPC_LAMBDA_NETWORK_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
)
"""What a Lambda function in a VPC needs for its network interfaces (no resource-level
permissions exist for them)."""


def vpc_lambda_network_statement(sid: str | None = None) -> iam.PolicyStatement:
    """The network-interface statement of a VPC Lambda's own managed policy."""
    problems = Problems("vpc_lambda_network_statement")
    if sid is not None:
        # "The Sid element supports ASCII uppercase letters (A-Z), lowercase letters (a-z), and
        # numbers (0-9)" (IAM User Guide, IAM JSON policy elements: Sid).
        problems.pattern("sid", sid, r"[A-Za-z0-9]+", "ASCII letters and digits")
    problems.raise_if_any()
    return iam.PolicyStatement(sid=sid, actions=list(VPC_LAMBDA_NETWORK_ACTIONS), resources=["*"])


def acknowledge(construct: IConstruct, reason: str, *rules: str) -> None:
    """Acknowledge findings of ``construct`` with one reason, each rule by its full id
    (``Pack::Pack-Rule`` as cdk-nag names it, or ``CloudFormation-Validate::W...``)."""
    Validations.of(construct).acknowledge(
        *(Acknowledgment(id=rule, reason=reason) for rule in rules)
    )


CONTROL_TOWER_CONTEXT = "trading-constructs:control-tower"
"""Context key of the Control Tower profile: ``true`` where AWS Control Tower's proactive
controls run as CloudFormation hooks (a resource that breaks one fails the deploy). The
constructs then choose the setting each control asks for wherever their default differs for
another reason (container logs kept a year, not 30 days); a prop passed explicitly still wins.
``cdk synth -c trading-constructs:control-tower=true``, or ``"context"`` in cdk.json."""

CONTROL_TOWER_RULES = {
    "CT.CLOUDWATCH.PR.2": "cloudwatch_log_group_retention_period_check",
    "CT.ECR.PR.3": "ecr_private_tag_immutability_enabled_check",
    "CT.ECS.PR.2": "ecs_container_insights_enabled_check",
    "CT.ECS.PR.3": "ecs_task_definition_nonroot_user_check",
    "CT.ECS.PR.6": "ecs_containers_readonly_access_check",
    "CT.ECS.PR.7": "ecs_task_definition_memory_hard_limit_check",
    "CT.ELASTICLOADBALANCING.PR.1": "alb_http_to_https_redirection_check",
    "CT.ELASTICLOADBALANCING.PR.5": "elbv2_deletion_protection_enabled_check",
    "CT.KMS.PR.3": "kms_create_grant_aws_service_check",
    "CT.LAMBDA.PR.2": "lambda_function_public_access_prohibited_check",
    "CT.LAMBDA.PR.3": "lambda_inside_vpc_check",
    "CT.RDS.PR.3": "rds_cluster_deletion_protection_enabled_check",
    "CT.S3.PR.2": "s3_bucket_logging_enabled_check",
    "CT.S3.PR.4": "s3_event_notifications_enabled_check",
    "CT.S3.PR.9": "s3_bucket_object_lock_enabled_check",
    "CT.S3.PR.10": "s3_bucket_default_encryption_kms_check",
    "CT.SQS.PR.1": "sqs_dlq_check",
}
"""Control Tower control ids and the rule names cfn-guard reports them under (the validator
``cdklabs-cdk-validator-cfnguard`` acknowledges a finding by its rule name)."""

CFN_GUARD_PLUGIN = "cdk-validator-cfnguard"


def control_tower_profile(scope: IConstruct) -> bool:
    """Whether the app runs the Control Tower profile (context ``CONTROL_TOWER_CONTEXT``:
    ``true``, or the string ``"true"`` that ``-c`` gives)."""
    value = scope.node.try_get_context(CONTROL_TOWER_CONTEXT)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text not in {"true", "false"}:
        raise ValueError(
            f"context {CONTROL_TOWER_CONTEXT}={value!r} is not allowed (allowed: true, false)"
        )
    return text == "true"


def acknowledge_control(construct: IConstruct, reason: str, *controls: str) -> None:
    """Acknowledge Control Tower findings of ``construct`` (and what it contains) with one
    reason, each control by its id (``CT.ECS.PR.3``), as the cfn-guard validator names it."""
    problems = Problems("acknowledge_control")
    _check_construct(problems, construct)
    if not isinstance(reason, str) or not reason.strip():
        problems.add("reason", reason, "a reason in words, which the validator reports")
    for control in controls:
        if control not in CONTROL_TOWER_RULES:
            problems.add("controls", control, ", ".join(CONTROL_TOWER_RULES))
    problems.raise_if_any()
    Validations.of(construct).acknowledge(
        *(
            Acknowledgment(id=f"{CFN_GUARD_PLUGIN}::{CONTROL_TOWER_RULES[control]}", reason=reason)
            for control in controls
        )
    )


def deny_grants_but_for_aws_resources() -> iam.PolicyStatement:
    """The key-policy statement Control Tower asks of every KMS key (CT.KMS.PR.3): nobody
    creates a grant on the key except an AWS service doing so for a resource of the account
    (Secrets Manager, CloudWatch Logs, ECR, RDS create theirs that way)."""
    return iam.PolicyStatement(
        sid="GrantsOnlyForAwsResources",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["kms:CreateGrant"],
        resources=["*"],
        conditions={
            "BoolIfExists": {
                "kms:GrantIsForAWSResource": "false",
                "aws:PrincipalIsAWSService": "false",
            }
        },
    )


def acknowledge_wildcard_resource(construct: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for one wildcard resource of a policy, and no other."""
    problems = Problems("acknowledge_wildcard_resource")
    _check_construct(problems, construct)
    if not isinstance(resource, str):
        problems.add("resource", resource, "the resource ARN (a string) as the policy names it")
    if not isinstance(reason, str) or not reason.strip():
        problems.add("reason", reason, "a reason in words, which cdk-nag reports")
    problems.raise_if_any()
    rendered = _render(Stack.of(construct).resolve(resource))
    Validations.of(construct).acknowledge(
        Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{rendered}]", reason=reason)
    )


def ignore_redundant_depends_on(construct: IConstruct) -> None:
    """aws-cdk-lib sometimes makes a resource both ``DependsOn`` and ``Ref``/``GetAtt`` another
    (a Lambda function its role, an ECS service its listener rule); cfn-lint calls the first
    redundant (W3005). It is harmless, so it is silenced on this one resource, in the template
    where cfn-lint reads it, and the resource's other dependencies stay."""
    problems = Problems("ignore_redundant_depends_on")
    _check_construct(problems, construct)
    problems.raise_if_any()
    resource = construct.node.default_child
    if isinstance(resource, CfnResource):
        resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})


def _check_construct(problems: Problems, construct: object) -> None:
    if not hasattr(construct, "node"):
        problems.add("construct", construct, "a construct (an IConstruct)")


RESTRICT_DEFAULT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"
TRIGGER_PROVIDER = "AWSCDK.TriggerCustomResourceProviderCustomResourceProvider"


def drop_provider_depends_on(stack: Stack, provider_id: str) -> None:
    """A custom resource provider aws-cdk-lib adds to a stack has its function both
    ``DependsOn`` and ``GetAtt`` its role (cfn-lint W3005); the provider's function is not in a
    VPC, so the ``DependsOn`` is dropped."""
    provider = stack.node.try_find_child(provider_id)
    handler = provider.node.try_find_child("Handler") if provider else None
    if isinstance(handler, CfnResource):
        handler.add_deletion_override("DependsOn")
