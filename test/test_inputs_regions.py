"""Bad input, by category: regions. A KMS key, a certificate, an alarm's topic or an AZ of
another region than the stack's fails where it is given, naming the prop and both regions,
whenever both regions are known at synth; an environment-agnostic stack leaves it to deploy.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_kms as kms
from inputs_support import (
    KEY_ARN,
    OTHER_CERTIFICATE_ARN,
    OTHER_KEY_ARN,
    Platform,
    platform_fixtures,
    public_service,
)
from validation_support import bad, case

from trading_constructs import (
    AlarmSubscription,
    ApiKeySecret,
    PullThroughCache,
    RotatingDbSecret,
    ScannedRepository,
    TradingCluster,
    TradingEdge,
    VpcOptions,
)

IN_US_EAST_1 = "one in the stack's region us-east-1 (this one is in eu-west-1)"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:pager"


platform, tidy = platform_fixtures()


def other_key(platform: Platform) -> kms.IKey:
    return kms.Key.from_key_arn(platform.stack, "OtherKey", OTHER_KEY_ARN)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        case(
            "cluster-key",
            lambda p: TradingCluster(p.stack, "Platform2", key=other_key(p)),
            bad("key", OTHER_KEY_ARN, IN_US_EAST_1),
        ),
        case(
            "repository-key",
            lambda p: ScannedRepository(p.stack, "Repo2", key=other_key(p)),
            bad("key", OTHER_KEY_ARN, IN_US_EAST_1),
        ),
        case(
            "cache-key",
            lambda p: PullThroughCache(p.stack, "Cache", key=other_key(p), prefix="regions"),
            bad("key", OTHER_KEY_ARN, IN_US_EAST_1),
        ),
        case(
            "db-secret-key",
            lambda p: RotatingDbSecret(p.stack, "Db", key=other_key(p), vpc=p.cluster.vpc),
            bad("key", OTHER_KEY_ARN, IN_US_EAST_1),
        ),
        case(
            "api-key-secret-key",
            lambda p: ApiKeySecret(p.stack, "ApiKey", key=other_key(p), vpc=p.cluster.vpc),
            bad("key", OTHER_KEY_ARN, IN_US_EAST_1),
        ),
        case(
            "edge-certificate",
            lambda p: TradingEdge(
                p.stack,
                "Edge",
                cluster=p.cluster,
                service=public_service(p),
                certificate=acm.Certificate.from_certificate_arn(
                    p.stack, "OtherCertificate", OTHER_CERTIFICATE_ARN
                ),
            ),
            bad("certificate", OTHER_CERTIFICATE_ARN, IN_US_EAST_1),
        ),
        case(
            "alarm-topic",
            lambda p: TradingCluster(
                p.stack, "Platform2", alarm_subscriptions=[AlarmSubscription.topic(TOPIC_ARN)]
            ),
            bad("alarm_subscriptions", TOPIC_ARN, IN_US_EAST_1),
        ),
        case(
            "availability-zones",
            lambda p: TradingCluster(
                p.stack,
                "Platform2",
                vpc_options=VpcOptions(
                    availability_zones=["eu-west-1a", "eu-west-1b", "eu-west-1c"]
                ),
            ),
            bad(
                "availability_zones",
                "eu-west-1a",
                "AZs of the stack's region, such as 'us-east-1a'",
            ),
        ),
    ],
)
def test_a_resource_of_another_region_is_refused(
    platform: Platform, make: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make(platform)


def test_a_new_key_in_another_regions_stack_is_refused(platform: Platform) -> None:
    key = kms.Key(platform.stack_in("Europe", region="eu-west-1"), "Key")
    with pytest.raises(ValueError, match=bad("key", "Europe/Key", IN_US_EAST_1)):
        ScannedRepository(platform.stack, "Repo2", key=key)


def test_a_key_of_the_stacks_region_passes(platform: Platform) -> None:
    key = kms.Key.from_key_arn(platform.stack, "SameRegionKey", KEY_ARN)
    assert ScannedRepository(platform.stack, "Repo2", key=key).repository is not None


def test_an_environment_agnostic_stack_leaves_regions_to_deploy_time() -> None:
    stack = Stack(App(), "Agnostic")
    key = kms.Key.from_key_arn(stack, "Key", OTHER_KEY_ARN)
    assert ScannedRepository(stack, "Repo", key=key).repository is not None
