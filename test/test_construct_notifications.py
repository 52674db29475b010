"""AlarmNotifications on stacks of its own (one app, synthesized once for the module): the
topic, its policy, its subscriptions and the actions ``notify`` gives an alarm. The platform's
alarms on a whole cluster are tested in test_notifications.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from conftest import CDK_CONTEXT, synthesize
from construct_platforms import Built
from construct_support import of_type, platform_key, readiness_violations, statements

from trading_constructs import AlarmNotifications, AlarmSubscription

ACCOUNT = "123456789012"
ENV = Environment(account=ACCOUNT, region="us-east-1")
FORWARD = f"arn:aws:sns:us-east-1:{ACCOUNT}:ops-chatbot"


@dataclass(frozen=True)
class Notified(Built):
    key: kms.Key
    notifications: AlarmNotifications
    alarm: cloudwatch.Alarm


def _notified(
    app: App, name: str, subscriptions: list[AlarmSubscription], *, cloudwatch_may_use_key: bool
) -> tuple[Stack, kms.Key, AlarmNotifications, cloudwatch.Alarm]:
    stack = Stack(app, name, env=ENV)
    key = platform_key(stack)
    if cloudwatch_may_use_key:  # what TradingCluster's platform key says
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            )
        )
    notifications = AlarmNotifications(stack, "Alarms", key=key, subscriptions=subscriptions)
    alarm = cloudwatch.Alarm(
        stack,
        "Alarm",
        metric=cloudwatch.Metric(
            namespace="TradingPlatform", metric_name="Ticks", dimensions_map={"Service": "svc"}
        ),
        threshold=1,
        evaluation_periods=1,
    )
    notifications.notify(alarm)
    return stack, key, notifications, alarm


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Notified]:
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("construct-notifications")))
    built = {
        "Notified": _notified(
            app,
            "Notified",
            [AlarmSubscription.email("oncall@example.com"), AlarmSubscription.topic(FORWARD)],
            cloudwatch_may_use_key=True,
        ),
        "Quiet": _notified(app, "Quiet", [], cloudwatch_may_use_key=True),
        "OwnKey": _notified(app, "OwnKey", [], cloudwatch_may_use_key=False),
    }
    synthesized = synthesize(app)
    assert synthesized.synth_error is None, synthesized.synth_error
    return {
        name: Notified(stack, synthesized.templates[name], key, notifications, alarm)
        for name, (stack, key, notifications, alarm) in built.items()
    }


@pytest.fixture(scope="module")
def notified(stacks: dict[str, Notified]) -> Notified:
    return stacks["Notified"]


def test_the_topic_is_encrypted_with_the_key(notified: Notified) -> None:
    topic = notified.notifications.topic
    assert notified.properties(topic) == {
        "DisplayName": "Trading platform alarms",
        "KmsMasterKeyId": {"Fn::GetAtt": [notified.id(notified.key), "Arn"]},
    }


def test_only_cloudwatch_alarms_of_this_account_may_publish_and_only_over_tls(
    notified: Notified,
) -> None:
    topic = {"Ref": notified.id(notified.notifications.topic)}
    (policy,) = of_type(notified.template, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [topic]
    assert statements(policy) == [
        {
            "Action": "sns:Publish",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": "*",
            "Resource": topic,
            "Sid": "AllowPublishThroughSSLOnly",
        },
        {
            "Action": "sns:Publish",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:*"},
            },
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Resource": topic,
            "Sid": "AllowCloudWatchAlarmsOfThisAccount",
        },
    ]


def test_an_email_subscribes_and_a_topic_is_notified_directly(notified: Notified) -> None:
    (subscription,) = of_type(notified.template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "Endpoint": "oncall@example.com",
        "Protocol": "email",
        "TopicArn": {"Ref": notified.id(notified.notifications.topic)},
    }
    # a forwarding topic is an alarm action, not a subscription (alarms publish to it)
    assert len(notified.notifications.actions) == 2


def test_notify_sends_alarm_and_ok_to_the_topic_then_each_forwarding_topic(
    notified: Notified,
) -> None:
    properties = notified.properties(notified.alarm)
    expected = [{"Ref": notified.id(notified.notifications.topic)}, FORWARD]
    assert properties["AlarmActions"] == expected
    assert properties["OKActions"] == expected
    assert "InsufficientDataActions" not in properties


def test_without_subscriptions_alarms_notify_the_topic_alone(stacks: dict[str, Notified]) -> None:
    quiet = stacks["Quiet"]
    assert of_type(quiet.template, "AWS::SNS::Subscription") == {}
    topic = [{"Ref": quiet.id(quiet.notifications.topic)}]
    assert quiet.properties(quiet.alarm)["AlarmActions"] == topic
    assert quiet.properties(quiet.alarm)["OKActions"] == topic


@pytest.mark.parametrize("name", ["Notified", "Quiet"])
def test_the_notification_stacks_pass_the_deploy_readiness_rules(
    stacks: dict[str, Notified], name: str
) -> None:
    assert readiness_violations(stacks[name].template) == {}


def test_alarms_can_be_delivered_with_a_key_of_the_users(stacks: dict[str, Notified]) -> None:
    assert readiness_violations(stacks["OwnKey"].template) == {}
