"""Bad input, by category: types. A prop of the wrong type (None, one item for a list, a list
of pairs for a mapping, a string where a CDK object goes, 'false' for a bool) fails where it is
given, with a message that names the prop; a string that looks like an ARN or an ID gets the
``from_*`` that imports it.

Nothing here synthesizes: the checks run before ``Construct.__init__``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from inputs_support import CERTIFICATE_ARN, KEY_ARN, Platform, platform_fixtures
from validation_support import bad, case

from trading_constructs import (
    AlarmNotifications,
    AlarmSubscription,
    ApiKeySecret,
    DbRotation,
    PullThroughCache,
    Release,
    RetryOptions,
    RotatingDbSecret,
    ScannedRepository,
    ServiceSecret,
    TradingCluster,
    TradingEdge,
    VpcOptions,
    acknowledge_wildcard_resource,
    ignore_redundant_depends_on,
    vpc_lambda_network_statement,
)

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-AbCdEf"
HOOK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:hook"
FROM_KEY_ARN = "kms.Key.from_key_arn(scope, id, arn)"


platform, tidy = platform_fixtures()


def build(platform: Platform, construct: str, props: dict[str, Any]) -> Any:
    """One construct of the platform's stack with the given props over valid ones."""
    stack, cluster = platform.stack, platform.cluster
    makers: dict[str, Any] = {
        "TradingCluster": lambda: TradingCluster(platform.stack_in("Other"), "Platform", **props),
        "MeshedFargateService": lambda: platform.service("Svc", **props),
        "TradingEdge": lambda: TradingEdge(
            stack,
            "Edge",
            **{"cluster": cluster, "service": platform.gateway, **props},
        ),
        "ScannedRepository": lambda: ScannedRepository(
            stack, "Repo2", **{"key": cluster.key, **props}
        ),
        "PullThroughCache": lambda: PullThroughCache(
            stack, "Cache", **{"key": cluster.key, "prefix": "types", **props}
        ),
        "RotatingDbSecret": lambda: RotatingDbSecret(
            stack, "Db", **{"key": cluster.key, "vpc": cluster.vpc, **props}
        ),
        "ApiKeySecret": lambda: ApiKeySecret(
            stack, "ApiKey", **{"key": cluster.key, "vpc": cluster.vpc, **props}
        ),
    }
    return makers[construct]()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        # CDK objects given as strings: the message says how to import one
        case(
            "cluster-key-arn",
            ("TradingCluster", {"key": KEY_ARN}),
            bad("key", KEY_ARN, f"an aws_kms.IKey; from a string: {FROM_KEY_ARN}"),
        ),
        case(
            "cluster-key-alias",
            ("TradingCluster", {"key": "alias/platform"}),
            bad("key", "alias/platform", "kms.Alias.from_alias_name(scope, id, 'alias/...')"),
        ),
        case(
            "repository-key-arn",
            ("ScannedRepository", {"key": KEY_ARN}),
            bad("key", KEY_ARN, FROM_KEY_ARN),
        ),
        case(
            "cache-key-arn",
            ("PullThroughCache", {"key": KEY_ARN}),
            bad("key", KEY_ARN, FROM_KEY_ARN),
        ),
        case(
            "db-key-arn", ("RotatingDbSecret", {"key": KEY_ARN}), bad("key", KEY_ARN, FROM_KEY_ARN)
        ),
        case(
            "edge-certificate-arn",
            ("TradingEdge", {"certificate": CERTIFICATE_ARN}),
            bad(
                "certificate",
                CERTIFICATE_ARN,
                "an aws_certificatemanager.ICertificate; from a string: "
                "acm.Certificate.from_certificate_arn(scope, id, arn)",
            ),
        ),
        case(
            "db-vpc-id",
            ("RotatingDbSecret", {"vpc": "vpc-0123456789abcdef0"}),
            bad("vpc", "vpc-0123456789abcdef0", "ec2.Vpc.from_lookup(scope, id, vpc_id=...)"),
        ),
        case(
            "api-key-security-group-id",
            ("ApiKeySecret", {"security_groups": ["sg-0123456789abcdef0"]}),
            bad(
                "security_groups",
                "sg-0123456789abcdef0",
                "ec2.SecurityGroup.from_security_group_id(scope, id, 'sg-...')",
            ),
        ),
        # one item where a list goes, None where a list goes
        case(
            "api-key-one-security-group",
            ("ApiKeySecret", {"security_groups": "sg-0123456789abcdef0"}),
            bad("security_groups", "sg-0123456789abcdef0", "a list of ISecurityGroup"),
        ),
        case(
            "cluster-one-endpoint",
            ("TradingCluster", {"interface_endpoints": ec2.InterfaceVpcEndpointAwsService.ECR}),
            r"interface_endpoints=<.*> is not allowed \(allowed: a list of "
            "InterfaceVpcEndpointAwsService",
        ),
        case(
            "cluster-endpoints-none",
            ("TradingCluster", {"interface_endpoints": None}),
            bad("interface_endpoints", None, "a list of InterfaceVpcEndpointAwsService"),
        ),
        case(
            "service-one-backend",
            ("MeshedFargateService", {"backends": "orders"}),
            bad("backends", "orders", "a list of MeshedFargateService"),
        ),
        case(
            "service-backends-none",
            ("MeshedFargateService", {"backends": None}),
            bad("backends", None, "a list of MeshedFargateService"),
        ),
        case(
            # (None is the default: the release's paths)
            "edge-patterns-a-number",
            ("TradingEdge", {"path_patterns": 7}),
            bad("path_patterns", 7, "a list of path patterns"),
        ),
        case(
            "edge-patterns-number",
            ("TradingEdge", {"path_patterns": 8080}),
            bad("path_patterns", 8080, "a list of path patterns"),
        ),
        case(
            "edge-ingress-none",
            ("TradingEdge", {"ingress_cidrs": None}),
            bad("ingress_cidrs", None, "a list of IPv4 CIDRs"),
        ),
        case(
            "edge-ingress-set",
            ("TradingEdge", {"ingress_cidrs": {"10.0.0.0/8"}}),
            bad("ingress_cidrs", {"10.0.0.0/8"}, "a list of IPv4 CIDRs"),
        ),
        # a list of pairs, or None, where a mapping goes
        case(
            "service-environment-pairs",
            ("MeshedFargateService", {"environment": [("LOG_LEVEL", "info")]}),
            bad(
                "environment",
                [("LOG_LEVEL", "info")],
                "a mapping of variable names to strings, such as {'NAME': value}, not a list "
                "of pairs (wrap it in dict(...))",
            ),
        ),
        case(
            "service-secrets-list",
            ("MeshedFargateService", {"secrets": ["API_KEY"]}),
            bad("secrets", ["API_KEY"], "a mapping of variable names to ServiceSecret"),
        ),
        # the string 'false' where a bool goes: it would count as true
        case(
            "service-public-string",
            ("MeshedFargateService", {"public": "false"}),
            bad("public", "false", "True or False"),
        ),
        case(
            "service-readonly-int",
            ("MeshedFargateService", {"readonly_root_filesystem": 0}),
            bad("readonly_root_filesystem", 0, "True or False"),
        ),
        case(
            "edge-waf-string",
            ("TradingEdge", {"waf": "false"}),
            bad("waf", "false", "True or False"),
        ),
        case(
            "edge-deletion-protection-none",
            ("TradingEdge", {"deletion_protection": None}),
            bad("deletion_protection", None, "True or False"),
        ),
        # an options object of the wrong kind
        case(
            "db-subnets-dict",
            ("RotatingDbSecret", {"vpc_subnets": {"subnet_type": "PRIVATE"}}),
            bad("vpc_subnets", {"subnet_type": "PRIVATE"}, "an aws_ec2.SubnetSelection"),
        ),
    ],
)
def test_a_wrong_type_names_its_prop(
    platform: Platform, given: tuple[str, dict[str, Any]], message: str
) -> None:
    # GIVEN (construct, props)  WHEN one prop has the wrong type  THEN its name is in the error
    construct, props = given
    with pytest.raises(ValueError, match=message):
        build(platform, construct, props)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        case(
            "service-secret-arn",
            lambda: ServiceSecret(secret=SECRET_ARN),
            bad(
                "secret",
                SECRET_ARN,
                "sm.Secret.from_secret_complete_arn(scope, id, arn)",
            ),
        ),
        case(
            "master-secret-arn",
            lambda: DbRotation(master_secret=SECRET_ARN),
            bad("master_secret", SECRET_ARN, "an aws_secretsmanager.ISecret; from a string"),
        ),
        case(
            "lifecycle-hook-arn",
            lambda: Release.blue_green(lifecycle_hook=HOOK_ARN),
            bad("lifecycle_hook", HOOK_ARN, "lambda_.Function.from_function_arn(scope, id, arn)"),
        ),
        case(
            "retry-events-none",
            lambda: RetryOptions(http_retry_events=None),
            bad("http_retry_events", None, "a list of server-error"),
        ),
        case(
            "retry-events-one-string",
            lambda: RetryOptions(tcp_retry_events="connection-error"),
            bad("tcp_retry_events", "connection-error", "a list of connection-error"),
        ),
        case(
            "azs-one-string",
            lambda: VpcOptions(availability_zones="us-east-1a"),
            bad("availability_zones", "us-east-1a", "a list of AZ names"),
        ),
        case(
            "subscription-kind-none",
            lambda: AlarmSubscription(None, "ops@example.com"),  # type: ignore[arg-type]
            bad("kind", None, "'email', 'topic'"),
        ),
    ],
)
def test_options_name_the_prop_of_the_wrong_type(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_a_type_error_is_also_a_value_error(platform: Platform) -> None:
    # GIVEN an options object of the wrong kind  THEN the error is a TypeError, as before, and
    # a ValueError too, so `except ValueError` catches every bad prop
    with pytest.raises(TypeError, match=re.escape("scaling=60 is not allowed")) as raised:
        platform.service("Svc", scaling=60)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        case(
            "grant-secret-read-arn",
            lambda p: p.gateway.grant_secret_read(SECRET_ARN),
            bad("secret", SECRET_ARN, "an aws_secretsmanager.ISecret; from a string"),
        ),
        case(
            "alarm-notifications-key-arn",
            lambda p: AlarmNotifications(p.stack, "Alarms", key=KEY_ARN),
            bad("key", KEY_ARN, FROM_KEY_ARN),
        ),
        case(
            "alarm-notifications-one-subscription",
            lambda p: AlarmNotifications(
                p.stack,
                "Alarms",
                key=p.key,
                subscriptions=AlarmSubscription.email("ops@example.com"),
            ),
            r"subscriptions=AlarmSubscription\(.*\) is not allowed \(allowed: a list of "
            "AlarmSubscription",
        ),
        case(
            "acknowledge-a-name",
            lambda p: acknowledge_wildcard_resource("Test/Repo", "*", "why"),
            bad("construct", "Test/Repo", "a construct (an IConstruct)"),
        ),
        case(
            "acknowledge-without-a-reason",
            lambda p: acknowledge_wildcard_resource(p.repository, "*", " "),
            bad("reason", " ", "a reason in words"),
        ),
        case(
            "ignore-depends-on-of-none",
            lambda p: ignore_redundant_depends_on(None),
            bad("construct", None, "a construct"),
        ),
        case(
            "statement-sid-with-a-hyphen",
            lambda p: vpc_lambda_network_statement("vpc-network"),
            bad("sid", "vpc-network", "ASCII letters and digits"),
        ),
    ],
)
def test_methods_and_helpers_name_the_argument_of_the_wrong_type(
    platform: Platform, call: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call(platform)
