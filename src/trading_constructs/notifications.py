"""Where the platform's alarms notify: its own encrypted topic, and where that topic forwards.

An SNS topic policy replaces SNS's default one, so a topic that enforces TLS must also say,
in the same policy, that CloudWatch may publish to it; otherwise every alarm action is
dropped at run time and nobody is told. The topic is encrypted with the platform key, whose
policy lets CloudWatch use it (see ``TradingCluster``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Annotations, ArnFormat, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from constructs import Construct

from ._validation import (
    ALARM,
    ObjectKind,
    Problems,
    check_argument,
    check_items,
    check_key,
    construct_owner,
)

TOPIC = ObjectKind(
    "topic_arn", "an aws_sns.ITopic", "sns.Topic.from_topic_arn(scope, id, arn)", ("arn:aws:sns:",)
)
# An address, not a URI: SNS takes the bare address (a 'mailto:' would be read as its local part
# and never delivered), so no colon; an alarm cannot publish to a FIFO topic (SNS FIFO topics
# take only SQS subscriptions and publishers that give a message group id, which CloudWatch
# does not), so a standard topic only.
_EMAIL = r"[^@\s:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+"
_TOPIC_ARN = r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}"


@dataclass(frozen=True)
class AlarmSubscription:
    """Who hears the platform's alarms: ``AlarmSubscription.email('ops@example.com')`` or
    ``AlarmSubscription.topic('arn:aws:sns:...')`` (an existing topic, for example one an AWS
    Chatbot channel or a paging tool watches; alarms publish to it directly, so its own policy
    must let CloudWatch publish).

    Attributes:
        kind: 'email' or 'topic'.
        target: The email address or the topic ARN.
    """

    kind: str
    target: str

    def __post_init__(self) -> None:
        problems = Problems("AlarmSubscription")
        problems.one_of("kind", self.kind, ("email", "topic"))
        if self.kind == "email":
            problems.pattern(
                "email",
                self.target,
                _EMAIL,
                "an email address such as 'ops@example.com' (no 'mailto:')",
            )
        elif self.kind == "topic":
            problems.pattern(
                "topic_arn",
                self.target,
                _TOPIC_ARN,
                "an SNS topic ARN of a standard topic (alarms cannot publish to a .fifo one)",
            )
        problems.raise_if_any()

    @staticmethod
    def email(address: str) -> AlarmSubscription:
        """An email subscription to the platform's alarm topic (the address must confirm it)."""
        return AlarmSubscription("email", address)

    @staticmethod
    def topic(topic_arn: str) -> AlarmSubscription:
        """An existing SNS topic every alarm also notifies."""
        return AlarmSubscription("topic", topic_arn)


class AlarmNotifications(Construct):
    """The platform's alarm topic (KMS-encrypted, TLS only, CloudWatch of this account may
    publish), its subscriptions, and the alarm actions every alarm of the platform gets."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        topic: sns.ITopic | None = None,
        subscriptions: Sequence[AlarmSubscription] = (),
    ) -> None:
        """
        :param key: the KMS key the topic is encrypted with (the platform key); its policy
            must let CloudWatch use it, which this adds to a key of the same stack.
        :param topic: an existing topic to notify instead of a new one: a team's own, whose
            policy (and key, if it has one) must already let CloudWatch alarms publish, as
            they cannot be changed here. :default: a new topic encrypted with ``key``
        :param subscriptions: who hears the alarms besides the topic:
            ``AlarmSubscription.email(...)`` or ``AlarmSubscription.topic(arn)``. :default: none
        """
        problems = Problems(construct_owner("AlarmNotifications", scope.node.path, id))
        check_key(problems, scope, key)
        check_items(problems, "subscriptions", subscriptions, AlarmSubscription)
        if topic is not None:
            problems.of_kind("topic", topic, TOPIC)
        problems.raise_if_any()
        super().__init__(scope, id)
        self.topic: sns.ITopic = topic or self._own_topic(key)
        """The platform's alarm topic."""
        self.actions: list[cloudwatch.IAlarmAction] = [cloudwatch_actions.SnsAction(self.topic)]
        """The actions each alarm gets: the platform topic, then each forwarding topic."""
        for index, subscription in enumerate(subscriptions):
            if subscription.kind == "email":
                self.topic.add_subscription(
                    sns_subscriptions.EmailSubscription(subscription.target)
                )
            else:
                forward = sns.Topic.from_topic_arn(self, f"Forward{index}", subscription.target)
                self.actions.append(cloudwatch_actions.SnsAction(forward))

    def _own_topic(self, key: kms.IKey) -> sns.Topic:
        """A topic encrypted with ``key``, TLS only, that CloudWatch may publish to."""
        topic = sns.Topic(
            self,
            "Resource",
            display_name="Trading platform alarms",
            master_key=key,
            enforce_ssl=True,
        )
        self._allow_cloudwatch(topic)
        self._let_cloudwatch_use(key)
        return topic

    def _allow_cloudwatch(self, topic: sns.Topic) -> None:
        """CloudWatch alarms of this account, and no one else's, may publish."""
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )

    def _let_cloudwatch_use(self, key: kms.IKey) -> None:
        """CloudWatch encrypts each notification with the topic's key, so the key's policy
        must allow it; an imported key's policy cannot be changed here, so say what to add."""
        stack = Stack.of(self)
        added = key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToNotify",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        if not added.statement_added:
            Annotations.of(self).add_warning_v2(
                "trading-constructs:alarm-key-policy",
                "The alarm topic's key is imported: its key policy must let "
                "cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey, or no alarm "
                "notification is delivered.",
            )

    def notify(self, alarm: cloudwatch.Alarm) -> None:
        """Send the alarm's ALARM and OK transitions to every destination."""
        check_argument(f"AlarmNotifications {self.node.path!r}", "alarm", alarm, ALARM)
        alarm.add_alarm_action(*self.actions)
        alarm.add_ok_action(*self.actions)
