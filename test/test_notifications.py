"""Alarm notifications are delivered: CloudWatch may publish to the TLS-only topic, and its
subscriptions (email, forwarding topics) are validated and wired to every alarm."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Token
from aws_cdk.assertions import Template
from inputs_support import cluster_with_image
from validation_support import bad, case

from trading_constructs import (
    AlarmSubscription,
    MeshedFargateService,
    TradingCluster,
)

ENV = Environment(account="123456789012", region="us-east-1")
FORWARD = "arn:aws:sns:us-east-1:123456789012:ops-chatbot"


@pytest.fixture(scope="module")
def notified() -> Template:
    """A platform whose alarms mail the on-call list and forward to a Chatbot topic."""
    stack = Stack(App(), "Notified", env=ENV)
    cluster, _, image = cluster_with_image(
        stack,
        alarm_subscriptions=[
            AlarmSubscription.email("oncall@example.com"),
            AlarmSubscription.topic(FORWARD),
        ],
    )
    MeshedFargateService(stack, "Svc", cluster=cluster, name="svc", port=8080, image=image)
    return Template.from_stack(stack)


def _statements(template: Template) -> list[dict[str, Any]]:
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_cloudwatch_of_this_account_may_publish_and_tls_stays_required(
    notified: Template,
) -> None:
    statements = _statements(notified)
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert allow["Condition"]["ArnLike"] == {
        "aws:SourceArn": {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:us-east-1:123456789012:alarm:*"],
            ]
        }
    }
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_topic_key_lets_cloudwatch_encrypt_the_notification(notified: Template) -> None:
    (topic,) = notified.find_resources("AWS::SNS::Topic").values()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = notified.find_resources("AWS::KMS::Key")[key_id]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [
        s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(cloudwatch["Action"]) >= {"kms:Decrypt", "kms:GenerateDataKey"}


def test_an_email_subscribes_to_the_topic(notified: Template) -> None:
    notified.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


def test_every_alarm_notifies_the_topic_and_the_forwarding_topic(notified: Template) -> None:
    alarms = notified.find_resources("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        for actions in ("AlarmActions", "OKActions"):
            targets = alarm["Properties"][actions]
            assert len(targets) == 2
            assert targets[0]["Ref"].startswith("PlatformAlarms")
            assert targets[1] == FORWARD


@pytest.mark.parametrize(
    ("make", "message"),
    [
        case("email-no-at", lambda: AlarmSubscription.email("oncall"), bad("email", "oncall", "")),
        case(
            "email-space",
            lambda: AlarmSubscription.email("on call@example.com"),
            bad("email", "on call@example.com", "an email address"),
        ),
        case("email-none", lambda: AlarmSubscription.email(None), bad("email", None, "")),  # type: ignore[arg-type]
        case(
            "topic-not-sns",
            lambda: AlarmSubscription.topic("arn:aws:sqs:us-east-1:123456789012:q"),
            bad("topic_arn", "arn:aws:sqs:us-east-1:123456789012:q", "an SNS topic ARN"),
        ),
        case(
            "topic-name-only",
            lambda: AlarmSubscription.topic("ops"),
            bad("topic_arn", "ops", "an SNS topic ARN"),
        ),
        case(
            "kind",
            lambda: AlarmSubscription("pager", "x"),
            bad("kind", "pager", "'email', 'topic'"),
        ),
    ],
)
def test_bad_subscriptions(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^AlarmSubscription: {message}"):
        make()


def test_tokens_pass_as_subscription_targets() -> None:
    assert AlarmSubscription.topic(Token.as_string({"Ref": "Topic"})).kind == "topic"
    assert AlarmSubscription.email(Token.as_string({"Ref": "Email"})).kind == "email"


@pytest.mark.parametrize(
    ("subscriptions", "message"),
    [
        case(
            "one-item-not-a-list",
            AlarmSubscription.email("oncall@example.com"),
            r"alarm_subscriptions=AlarmSubscription\(.*\) is not allowed \(allowed: a list of "
            "AlarmSubscription",
        ),
        case(
            "a-bare-address",
            ["oncall@example.com"],
            bad("alarm_subscriptions[0]", "oncall@example.com", "AlarmSubscription"),
        ),
    ],
)
def test_subscriptions_must_be_a_list_of_subscriptions(subscriptions: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^TradingCluster 'Test/Platform': {message}"):
        TradingCluster(Stack(App(), "Test"), "Platform", alarm_subscriptions=subscriptions)
