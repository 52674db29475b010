"""Load balancer access logs to S3 in any stack, environment-agnostic ones included.

The bucket policy must let Elastic Load Balancing write: in the Regions that existed before
August 2022 through that Region's Elastic Load Balancing account, in later ones through the
``logdelivery.elasticloadbalancing.amazonaws.com`` service principal. aws-cdk-lib's
``log_access_logs`` picks the principal at synth time and so refuses a stack without a region
(``RegionRequiredEnableBvAccess``). Without a region, the choice is left to CloudFormation: a
condition on ``AWS::Region`` over the Regions aws-cdk-lib knows an account for, and the account
from a mapping of the same data.
"""

from __future__ import annotations

from aws_cdk import (
    Aws,
    CfnCondition,
    CfnMapping,
    CfnResource,
    Fn,
    ICfnConditionExpression,
    Stack,
)
from aws_cdk import aws_elasticloadbalancingv2 as elb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ._validation import is_token

LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"
_ACCOUNT = "account"
# Fn::Or takes 2 to 10 conditions.
_MAX_OR = 10


def log_access(load_balancer: elb.ApplicationLoadBalancer, bucket: s3.IBucket, prefix: str) -> None:
    """Turn on the load balancer's access logs to ``bucket`` under ``prefix``: CDK's own way
    where the stack has a region, the same statements with the principal chosen at deploy time
    where it has none."""
    stack = Stack.of(load_balancer)
    if not is_token(stack.region):
        load_balancer.log_access_logs(bucket, prefix)
        return
    for key, value in {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": bucket.bucket_name,
        "access_logs.s3.prefix": prefix,
    }.items():
        load_balancer.set_attribute(key, value)
    objects = bucket.arn_for_objects(f"{prefix + '/' if prefix else ''}AWSLogs/{stack.account}/*")
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject"],
            principals=[_elb_principal(load_balancer)],
            resources=[objects],
        )
    )
    # The statements CDK adds for the log delivery service, as it adds them.
    delivery = iam.ServicePrincipal("delivery.logs.amazonaws.com")
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject"],
            principals=[delivery],
            resources=[objects],
            conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        )
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            actions=["s3:GetBucketAcl"], principals=[delivery], resources=[bucket.bucket_arn]
        )
    )
    # ELB checks that it may write when access logs are turned on: the policy comes first.
    load_balancer_resource = load_balancer.node.default_child
    policy = bucket.policy.node.default_child if bucket.policy else None
    if isinstance(load_balancer_resource, CfnResource) and isinstance(policy, CfnResource):
        load_balancer_resource.add_resource_dependency(policy)


def _elb_principal(scope: Construct) -> iam.IPrincipal:
    """The Region's Elastic Load Balancing account where it has one, else the log delivery
    service principal: the other key of the principal is removed (``AWS::NoValue``)."""
    from aws_cdk import region_info  # only stacks without a region need it

    accounts = region_info.RegionInfo.region_map(region_info.FactName.ELBV2_ACCOUNT)
    mapping = CfnMapping(
        scope,
        "ElbAccounts",
        mapping={region: {_ACCOUNT: account} for region, account in sorted(accounts.items())},
    )
    has_account = CfnCondition(
        scope, "RegionHasElbAccount", expression=_any_region(sorted(accounts))
    )
    account_arn = Fn.join(
        "", ["arn:", Aws.PARTITION, ":iam::", mapping.find_in_map(Aws.REGION, _ACCOUNT), ":root"]
    )
    return iam.CompositePrincipal(
        iam.ArnPrincipal(
            Fn.condition_if(has_account.logical_id, account_arn, Aws.NO_VALUE).to_string()
        ),
        iam.ServicePrincipal(
            Fn.condition_if(
                has_account.logical_id, Aws.NO_VALUE, LOG_DELIVERY_PRINCIPAL
            ).to_string()
        ),
    )


def _any_region(regions: list[str]) -> ICfnConditionExpression:
    """``AWS::Region`` is one of ``regions``: Fn::Or of at most 10, nested."""
    conditions: list[ICfnConditionExpression] = [
        Fn.condition_equals(Aws.REGION, region) for region in regions
    ]
    while len(conditions) > 1:
        conditions = [
            Fn.condition_or(*group) if len(group) > 1 else group[0]
            for group in (conditions[i : i + _MAX_OR] for i in range(0, len(conditions), _MAX_OR))
        ]
    return conditions[0]
