"""Secrets that rotate themselves: database credentials and the services' API key."""

from __future__ import annotations

import json
import typing
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import jsii
from aws_cdk import Annotations, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

if typing.TYPE_CHECKING:
    from aws_cdk.interfaces import aws_events as events_refs

from ._extras import require_extra
from ._validation import (
    SECRET,
    SECRET_ATTACHMENT_TARGET,
    SECURITY_GROUP,
    VPC,
    InvalidPropType,
    Problems,
    check_argument,
    check_key,
    check_removal_policy,
    check_type,
    claim,
    construct_owner,
    environment_of,
    is_token,
)
from .assets import API_KEY_ROTATION, POSTGRES_ROTATION
from .compliance import acknowledge, ignore_redundant_depends_on, vpc_lambda_network_statement
from .networks import check_function_subnets
from .notifications import AlarmNotifications

ROTATION_DAYS = 90
"""How often secrets rotate by default: every 90 days, a common compliance ceiling."""

# Secrets Manager takes a rotation interval of 4 hours to 1000 days.
_MIN_ROTATION = Duration.hours(4)
_MAX_ROTATION_DAYS = 1000

# Characters that break connection strings or shells; the default of CDK's DatabaseSecret.
_EXCLUDE_FROM_PASSWORDS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"

_HOST = r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*"
_EVERY_90_DAYS = Duration.days(ROTATION_DAYS)


def secret_read_statements(secret: sm.ISecret) -> list[iam.PolicyStatement]:
    """Reading one secret, for a managed policy: the value, and its key through Secrets
    Manager only."""
    statements = [
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn]
        )
    ]
    if secret.encryption_key is not None:
        statements.append(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[secret.encryption_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{secret.stack.region}.amazonaws.com"
                    }
                },
            )
        )
    return statements


class DbEngine(Enum):
    """A database engine ``RotatingDbSecret`` rotates, and its default port: PostgreSQL (RDS
    for PostgreSQL, Aurora PostgreSQL). No other is offered: the rotation function shipped in
    this package speaks PostgreSQL only, and AWS's hosted rotation for the other engines
    deploys a python3.10 function, a runtime Lambda deprecated on 2026-10-31."""

    POSTGRES = ("postgres", 5432)

    @property
    def engine_name(self) -> str:
        return self.value[0]

    @property
    def default_port(self) -> int:
        return self.value[1]


@dataclass(frozen=True, kw_only=True)
class DbRotation:
    """How a database secret rotates: ``DbRotation.single_user()`` changes the user's own
    password; ``DbRotation.alternating_users(master)`` keeps two users and switches between
    them, so connections never see a password that was just changed.

    Attributes:
        master_secret: The admin secret that alternating-users rotation clones the user with.
            Default: None (single user).
    """

    master_secret: sm.ISecret | None = None

    @staticmethod
    def single_user() -> DbRotation:
        return DbRotation()

    @staticmethod
    def alternating_users(master_secret: sm.ISecret) -> DbRotation:
        if master_secret is None:
            raise InvalidPropType(
                "DbRotation: master_secret=None is not allowed "
                "(allowed: an aws_secretsmanager.ISecret)"
            )
        return DbRotation(master_secret=master_secret)

    def __post_init__(self) -> None:
        problems = Problems("DbRotation")
        if self.master_secret is not None and not problems.of_kind(
            "master_secret", self.master_secret, SECRET
        ):
            raise InvalidPropType(f"DbRotation: {problems.problems[0]}")


def _check_rotation_interval(problems: Problems, rotate_every: Duration) -> None:
    if not isinstance(rotate_every, Duration):
        problems.add("rotate_every", rotate_every, "an aws_cdk.Duration")
        return
    if rotate_every.is_unresolved():
        return
    hours = rotate_every.to_hours(integral=False)
    # Secrets Manager's rate() takes whole hours or days only.
    if hours % 1 or not _MIN_ROTATION.to_hours() <= hours <= _MAX_ROTATION_DAYS * 24:
        problems.add(
            "rotate_every",
            rotate_every.to_human_string(),
            "a whole number of hours, 4 hours to 1000 days",
        )


def _check_rotated_secret(
    problems: Problems, rotate_every: Duration, secret_name: str | None
) -> None:
    _check_rotation_interval(problems, rotate_every)
    if secret_name is not None:
        problems.pattern(
            "secret_name",
            secret_name,
            r"[A-Za-z0-9/_+=.@-]{1,512}",
            "1 to 512 letters, digits and /_+=.@-",
        )


def _secret_names(scope: Construct, secret_name: str | None) -> list[tuple[object, ...]]:
    """A secret's name is unique in its account and region (Secrets Manager)."""
    env = environment_of(scope)
    if env is None or not isinstance(secret_name, str) or is_token(secret_name):
        return []
    return [("secret", *env, secret_name)]


def _check_placement(
    problems: Problems,
    scope: Construct,
    *,
    key: kms.IKey,
    vpc: ec2.IVpc,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
    secret_name: str | None,
) -> None:
    """What a rotated secret and its function are placed with: the key (in the stack's
    region), the VPC, subnets and security groups, and a name unique in the region."""
    check_key(problems, scope, key)
    problems.of_kind("vpc", vpc, VPC)
    if vpc_subnets is not None and not isinstance(vpc_subnets, ec2.SubnetSelection):
        problems.add("vpc_subnets", vpc_subnets, "an aws_ec2.SubnetSelection")
    elif vpc_subnets is not None and hasattr(vpc, "vpc_id"):
        check_function_subnets(problems, "vpc_subnets", vpc, vpc_subnets, service="secretsmanager")
    if security_groups is not None:
        groups = problems.sequence("security_groups", security_groups, "ISecurityGroup")
        for group in groups:
            problems.of_kind("security_groups", group, SECURITY_GROUP)
    for name_key in _secret_names(scope, secret_name):
        where = "among the secrets of an account and region"
        problems.unique("secret_name", secret_name, scope, name_key, where)


def _rotation_security_group(scope: Construct, vpc: ec2.IVpc, purpose: str) -> ec2.SecurityGroup:
    """A rotation function reaches Secrets Manager over HTTPS and, for a database, its port."""
    group = ec2.SecurityGroup(
        scope,
        "RotationSecurityGroup",
        vpc=vpc,
        description=f"Rotation function of {purpose}: Secrets Manager API and the database",
        allow_all_outbound=False,
    )
    group.add_egress_rule(
        ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Secrets Manager API (endpoint or NAT)"
    )
    return group


def _check_reserved_concurrency(problems: Problems, reserved_concurrency: int | None) -> None:
    if reserved_concurrency is not None:
        problems.int_range("reserved_concurrency", reserved_concurrency, 1, 1000)


@dataclass(frozen=True)
class _RotationFunctionSpec:
    """What differs between the rotation functions: the rest is the same machinery."""

    purpose: str
    asset: Path
    handler: str
    environment: dict[str, str]
    statements: list[iam.PolicyStatement]
    rotates: bool = True
    """Whether it rotates ``secret`` (reads, writes and stages it, and draws passwords); a
    function that only reads secrets names them in ``statements``."""
    description: str = ""
    """The function's description. :default: 'Rotates the <purpose> secret ...'"""
    prefix: str = "Rotation"
    """What the construct IDs of the function and its parts begin with."""


def _rotation_function(
    scope: Construct,
    spec: _RotationFunctionSpec,
    *,
    secret: sm.Secret,
    key: kms.IKey,
    vpc: ec2.IVpc,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: list[ec2.ISecurityGroup],
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
    reserved_concurrency: int | None,
) -> lambda_.Function:
    """A rotation function in the VPC: its own encrypted log group (no fixed name), a role with
    one managed policy created before the function, and a dead-letter queue."""
    log_group = logs.LogGroup(
        scope,
        f"{spec.prefix}Logs",
        retention=log_retention,
        encryption_key=key,
        removal_policy=removal_policy,
    )
    role = iam.Role(
        scope,
        f"{spec.prefix}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=(
            f"Rotates the {spec.purpose} secret and nothing else"
            if spec.rotates
            else spec.description
        ),
    )
    dead_letters = _dead_letters(scope, key, f"{spec.prefix}DeadLetters")
    function = lambda_.Function(
        scope,
        f"{spec.prefix}Function",
        description=spec.description
        or f"Rotates the {spec.purpose} secret (createSecret..finishSecret)",
        # python3.14: deprecated 2029-06-30, creation blocked 2029-07-31, updates 2029-08-31
        # (AWS Lambda Developer Guide, "Building Lambda functions with Python", supported
        # runtimes table, https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html).
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler=spec.handler,
        code=lambda_.Code.from_asset(str(spec.asset)),
        timeout=Duration.seconds(30),
        memory_size=256,
        environment=spec.environment,
        vpc=vpc,
        vpc_subnets=vpc_subnets
        or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        security_groups=security_groups,
        # None by default: a new account's 10 concurrent executions must all stay unreserved.
        reserved_concurrent_executions=reserved_concurrency,
        log_group=log_group,
        role=role.without_policy_updates(),
        dead_letter_queue=dead_letters,
    )
    policy = _rotation_policy(scope, spec, secret, key, role, dead_letters, log_group)
    # CreateFunction of a VPC function checks ec2:CreateNetworkInterface on its role at once.
    function.node.add_dependency(policy)
    ignore_redundant_depends_on(function)
    acknowledge(
        policy,
        "The EC2 network-interface actions a VPC Lambda needs (and, for a rotation, "
        "secretsmanager:GetRandomPassword) have no resource-level permissions; every other "
        "statement names its secrets, key, queue or log group.",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
    )
    if reserved_concurrency is None:
        acknowledge(
            function,
            "Reserved concurrency is opt-in (reserved_concurrency): a new account has 10 "
            "concurrent executions, all of which Lambda keeps unreserved, and Secrets Manager "
            "never runs two rotations of one secret at once.",
            *_CONCURRENCY_RULES,
        )
    return function


def _rotation_policy(
    scope: Construct,
    spec: _RotationFunctionSpec,
    secret: sm.Secret,
    key: kms.IKey,
    role: iam.Role,
    dead_letters: sqs.Queue,
    log_group: logs.LogGroup,
) -> iam.ManagedPolicy:
    """Exactly what the handler calls, in a managed policy the function waits for."""
    key_services = [
        f"secretsmanager.{Stack.of(scope).region}.amazonaws.com",
        f"sqs.{Stack.of(scope).region}.amazonaws.com",
    ]
    rotation = (
        [
            iam.PolicyStatement(
                sid="RotateThisSecret",
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                resources=[secret.secret_arn],
            ),
            iam.PolicyStatement(
                sid="GenerateKeys",
                actions=["secretsmanager:GetRandomPassword"],
                resources=["*"],
            ),
        ]
        if spec.rotates
        else []
    )
    return iam.ManagedPolicy(
        scope,
        f"{spec.prefix}Policy",
        roles=[role],
        statements=[
            *rotation,
            iam.PolicyStatement(
                sid="UseThePlatformKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                # the secret's values, through Secrets Manager; dead letters, through SQS
                conditions={"StringEquals": {"kms:ViaService": key_services}},
            ),
            *spec.statements,
            iam.PolicyStatement(
                sid="DeadLetters",
                actions=["sqs:SendMessage"],
                resources=[dead_letters.queue_arn],
            ),
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
            vpc_lambda_network_statement("AttachToTheVpc"),
        ],
    )


_CONCURRENCY_RULES = ("NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",)


def _only_this_secret_invokes(function: lambda_.Function, secret: sm.Secret) -> None:
    """aws-cdk-lib's rotation schedule lets the Secrets Manager service principal invoke the
    function from any account and for any secret (CT.LAMBDA.PR.2): the permission names this
    account and this secret (the ARN Secrets Manager invokes the rotation for)."""
    permissions = [
        child
        for child in function.node.children
        if isinstance(child, lambda_.CfnPermission)
        and child.principal == "secretsmanager.amazonaws.com"
    ]
    assert permissions, "aws-cdk-lib added no Secrets Manager invoke permission"
    for permission in permissions:
        permission.source_account = Stack.of(function).account
        permission.source_arn = secret.secret_arn


def _dead_letters(scope: Construct, key: kms.IKey, id: str) -> sqs.Queue:
    """Rotation events that failed every retry, kept two weeks for a person to look at."""
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        # CT.SQS.PR.1: a Lambda function's dead-letter queue has no source queue to name
        redrive_allow_policy=sqs.RedriveAllowPolicy(
            redrive_permission=sqs.RedrivePermission.ALLOW_ALL
        ),
    )
    acknowledge(
        queue,
        "This queue is itself a Lambda function's dead-letter queue.",
        "AwsSolutions::AwsSolutions-SQS3",
    )
    return queue


def _check_db_secret(
    scope: Construct,
    owner: str,
    *,
    key: kms.IKey,
    vpc: ec2.IVpc,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
    engine: DbEngine,
    username: str,
    dbname: str,
    host: str | None,
    port: int | None,
    rotation: DbRotation | None,
    rotate_every: Duration,
    log_retention: logs.RetentionDays,
    reserved_concurrency: int | None,
    secret_name: str | None,
    removal_policy: RemovalPolicy,
    alarms: AlarmNotifications | None,
) -> None:
    """Every prop of one database secret, checked together, and the extra its rotation
    function's driver comes with."""
    require_extra("postgres", f"{owner}: rotating PostgreSQL credentials")
    check_type(owner, "alarms", alarms, AlarmNotifications)
    check_type(owner, "rotation", rotation, DbRotation)
    rotation = rotation or DbRotation.single_user()
    check_type(owner, "engine", engine, DbEngine)
    check_type(owner, "log_retention", log_retention, logs.RetentionDays)
    check_removal_policy(owner, removal_policy)
    problems = Problems(owner)
    _check_placement(
        problems,
        scope,
        key=key,
        vpc=vpc,
        vpc_subnets=vpc_subnets,
        security_groups=security_groups,
        secret_name=secret_name,
    )
    identifier = r"[A-Za-z][A-Za-z0-9_]{0,62}"
    rule = "1 to 63 letters, digits or underscores, starting with a letter"
    problems.pattern("username", username, identifier, rule)
    problems.pattern("dbname", dbname, identifier, rule)
    if not is_token(username) and username in {"admin", "rdsadmin", "postgres", "root"}:
        problems.add("username", username, "a name the engine does not reserve")
    if (
        rotation.master_secret is not None
        and isinstance(username, str)
        and not is_token(username)
        and len(username) > 57
    ):
        problems.add(
            "username",
            username,
            "at most 57 characters with alternating users: the clone adds '_clone' and "
            "PostgreSQL names stop at 63",
        )
    if port is not None:
        problems.int_range("port", port, 1150, 65535)
    if host is not None:
        problems.pattern("host", host, _HOST, "a DNS name or IP address")
    _check_rotated_secret(problems, rotate_every, secret_name)
    _check_reserved_concurrency(problems, reserved_concurrency)
    problems.raise_if_any()


RDS_CA_BUNDLE = "rds-ca-bundle.pem"
"""The file of Amazon RDS root CAs the PostgreSQL rotation function verifies TLS against."""

RDS_CA_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-central-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)
"""The Regions whose RDS root CAs (RSA2048, RSA4096 and ECC384 G1) the rotation asset ships."""

_LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks a .zip function's code
_FIVE_MINUTES = Duration.minutes(5)


def _warn_if_no_rds_ca(scope: Construct) -> None:
    """A stack in a Region the shipped CAs do not cover: every rotation would fail TLS."""
    region = Stack.of(scope).region
    if not is_token(region) and region not in RDS_CA_REGIONS:
        Annotations.of(scope).add_warning_v2(
            "trading-constructs:rds-ca-region",
            f"The rotation function verifies the database's TLS certificate against the Amazon "
            f"RDS root CAs it ships, which do not include {region}'s: every rotation would "
            "fail (and alarm). Regions covered: trading_constructs.secret.RDS_CA_REGIONS.",
        )


def _watch_rotation(
    scope: RotatingDbSecret, alarms: AlarmNotifications | None
) -> dict[str, cloudwatch.Alarm]:
    """A failing rotation is told on the platform's alarm topic: the function's errors, and
    Secrets Manager's RotationFailed event for this secret (which also covers a rotation that
    fails before the function runs, such as one Lambda cannot invoke)."""
    secret, function = scope.secret, scope.function
    _warn_if_no_rds_ca(scope)
    if alarms is None:
        Annotations.of(scope).add_warning_v2(
            "trading-constructs:rotation-unwatched",
            "Nobody is told when this secret's rotation fails: pass alarms=cluster.alarms "
            "(TradingCluster.alarms).",
        )
        return {}
    errors = cloudwatch.Alarm(
        scope,
        "RotationErrorsAlarm",
        metric=function.metric_errors(period=_FIVE_MINUTES, statistic="Sum"),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description="The rotation function of a database secret failed a step",
    )
    alarms.notify(errors)
    events.Rule(
        scope,
        "RotationFailedRule",
        description="Secrets Manager could not rotate the database secret",
        # Secrets Manager reports rotation outcomes as CloudTrail service events; the secret's
        # ARN is in additionalEventData.SecretId (Secrets Manager User Guide, "AWS CloudTrail
        # entries for Secrets Manager", log entries for rotation).
        event_pattern=events.EventPattern(
            source=["aws.secretsmanager"],
            detail={
                "eventSource": ["secretsmanager.amazonaws.com"],
                "eventName": ["RotationFailed"],
                "additionalEventData": {"SecretId": [secret.secret_arn]},
            },
        ),
        targets=[_AlarmTopic(alarms.topic)],
    )
    _let_event_rules_publish(alarms.topic)
    return {"RotationErrors": errors}


@jsii.implements(events.IRuleTarget)
class _AlarmTopic:
    """The alarm topic as a rule's target, granted by ``_let_event_rules_publish`` rather than
    by aws-cdk-lib's SnsTopic target, whose grant lets EventBridge rules of any account
    publish."""

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        del rule, id  # the target is the same for every rule
        return events.RuleTargetConfig(arn=self._topic.topic_arn)


def _let_event_rules_publish(topic: sns.ITopic) -> None:
    """EventBridge rules of this account may publish to the topic, and use its key (the key
    policy shape SNS documents for AWS services publishing to an encrypted topic)."""
    if topic in _TOPICS_OPEN_TO_RULES:
        return
    _TOPICS_OPEN_TO_RULES.add(topic)
    stack = Stack.of(topic)
    events_principal = iam.ServicePrincipal("events.amazonaws.com")
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowEventBridgeRulesOfThisAccount",
            principals=[events_principal],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="events", resource="rule", resource_name="*"
                    )
                },
            },
        )
    )
    if topic.master_key is not None:
        topic.master_key.grant(events_principal, "kms:Decrypt", "kms:GenerateDataKey")


_TOPICS_OPEN_TO_RULES: weakref.WeakSet[sns.ITopic] = weakref.WeakSet()


@dataclass(frozen=True)
class _Placement:
    """Where a database's secrets and functions go: its users' are placed as its master's."""

    key: kms.IKey
    vpc: ec2.IVpc
    vpc_subnets: ec2.SubnetSelection | None
    dbname: str
    log_retention: logs.RetentionDays
    removal_policy: RemovalPolicy
    alarms: AlarmNotifications | None


@jsii.implements(ec2.IConnectable)
class RotatingDbSecret(Construct):
    """A PostgreSQL database's endpoint and credentials (engine, host, port, dbname, username,
    password) in Secrets Manager, encrypted with the platform key and rotated by the rotation
    function shipped in this package (``handlers/postgres_rotation``, python3.14) inside the VPC.

    The function connects over TLS verified against the Amazon RDS root CAs shipped in its
    asset (``RDS_CA_REGIONS`` says whose), never in plain text: AWS's templates verify against
    the Lambda runtime's trust store, which need not hold the CA a new cluster uses, and such a
    rotation never succeeds. Given ``alarms``, a failing rotation notifies the platform's
    alarm topic: the function's errors (an alarm) and Secrets Manager's ``RotationFailed``
    event (an EventBridge rule; Secrets Manager reports it through CloudTrail, so the account
    needs CloudTrail's management events, which a Control Tower landing zone has). It runs in
    ``vpc_subnets`` with ``connections`` as its
    security groups: let the database admit them (``database.connections.allow_default_port_from(
    secret)``), which ``attach`` does for a database with connections. It reaches Secrets
    Manager through the NAT gateways, or through an interface endpoint with private DNS in the
    VPC (``ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER``) where there is no route out.

    Only PostgreSQL (RDS, Aurora) is rotated: AWS's hosted functions for the other engines run
    on python3.10, which Lambda deprecated in 2026, so those engines are rejected at synth.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        vpc: ec2.IVpc,
        engine: DbEngine = DbEngine.POSTGRES,
        username: str = "trading_admin",
        dbname: str = "trading",
        host: str | None = None,
        port: int | None = None,
        rotation: DbRotation | None = None,
        rotate_every: Duration = _EVERY_90_DAYS,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        reserved_concurrency: int | None = None,
        secret_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        alarms: AlarmNotifications | None = None,
    ) -> None:
        """
        :param key: the KMS key the secret and the function's logs are encrypted with.
        :param vpc: the VPC the rotation function runs in (the database's).
        :param engine: the database engine; only ``DbEngine.POSTGRES`` is rotated (see the
            class docstring). :default: DbEngine.POSTGRES
        :param username: the database user, 1 to 63 letters, digits or underscores, starting
            with a letter (at most 57 with alternating users, which add ``_clone``).
            :default: 'trading_admin'
        :param dbname: the database name, 1 to 63 letters, digits or underscores.
            :default: 'trading'
        :param host: the endpoint, for a database not attached with ``attach``.
            :default: None (filled in by ``attach``)
        :param port: the port, 1150 to 65535. :default: the engine's default port
        :param rotation: single user, or alternating users with a master secret.
            :default: ``DbRotation.single_user()``
        :param rotate_every: the rotation interval, 4 hours to 1000 days. :default: 90 days
        :param vpc_subnets: where the rotation function runs.
            :default: the VPC's private subnets with egress
        :param security_groups: the rotation function's security groups.
            :default: a new group allowing only HTTPS and the database port out
        :param log_retention: how long the rotation function's logs are kept. :default: 1 year
        :param reserved_concurrency: concurrent executions reserved for the rotation function,
            1 to 1000. :default: None (none reserved: new accounts have 10, all unreservable)
        :param secret_name: the secret's name. :default: a name CloudFormation generates
        :param removal_policy: what happens to the secret and the function's log group when
            the stack is deleted or they are replaced. :default: RETAIN_ON_UPDATE_OR_DELETE
            (kept once created; a failed first create rolls back to nothing, so a retry is not
            blocked by a leftover secret)
        :param alarms: where a failing rotation is told (``TradingCluster.alarms``): an alarm
            on the function's errors and a rule on Secrets Manager's ``RotationFailed`` event.
            :default: None (nobody is told; a synth warning says so)
        """
        owner = construct_owner("RotatingDbSecret", scope.node.path, id)
        _check_db_secret(
            scope,
            owner,
            key=key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            engine=engine,
            username=username,
            dbname=dbname,
            host=host,
            port=port,
            rotation=rotation,
            rotate_every=rotate_every,
            log_retention=log_retention,
            reserved_concurrency=reserved_concurrency,
            secret_name=secret_name,
            removal_policy=removal_policy,
            alarms=alarms,
        )
        rotation = rotation or DbRotation.single_user()
        super().__init__(scope, id)
        claim(self, *_secret_names(scope, secret_name))
        self.engine = engine
        self.port: int = port or engine.default_port
        """The database port the secret names and the rotation function connects to."""
        # what the users of this database (``DbUser``) are placed with
        self._placement = _Placement(
            key, vpc, vpc_subnets, dbname, log_retention, removal_policy, alarms
        )

        self.secret: sm.Secret = self._secret(
            key, dbname, username, host, rotation, secret_name, removal_policy
        )
        """The secret (JSON: engine, host, port, dbname, username, password[, masterarn])."""

        groups = list(security_groups or [self._security_group(vpc, dbname)])
        self.connections: ec2.Connections = ec2.Connections(security_groups=groups)
        """The rotation function's security groups: what the database must admit."""

        self.function: lambda_.Function = _rotation_function(
            self,
            self._function_spec(dbname, rotation, key),
            secret=self.secret,
            key=key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=groups,
            log_retention=log_retention,
            removal_policy=removal_policy,
            reserved_concurrency=reserved_concurrency,
        )
        """The rotation function (python3.14, ``handlers/postgres_rotation`` with pg8000)."""
        self.rotation_schedule: sm.RotationSchedule = self.secret.add_rotation_schedule(
            "Rotation", rotation_lambda=self.function, automatically_after=rotate_every
        )
        _only_this_secret_invokes(self.function, self.secret)
        """The rotation schedule."""
        self._first_rotation_after(groups)
        self.attachment: sm.ISecret | None = None
        """The secret with the database's endpoint in it, once ``attach`` ran."""
        self.attached_to: sm.ISecretAttachmentTarget | None = None
        """The database ``attach`` filled the endpoint from. :default: None"""
        self.alarms: dict[str, cloudwatch.Alarm] = _watch_rotation(self, alarms)
        """The alarm on the rotation function's errors (``RotationErrors``); none without
        ``alarms``."""

    def _first_rotation_after(self, groups: list[ec2.ISecurityGroup]) -> None:
        """The first rotation runs as soon as the schedule exists: after the function's
        network."""
        for group in groups:
            if isinstance(group, Construct) and group.node.scope is self:
                self.rotation_schedule.node.add_dependency(group)

    def _secret(
        self,
        key: kms.IKey,
        dbname: str,
        username: str,
        host: str | None,
        rotation: DbRotation,
        secret_name: str | None,
        removal_policy: RemovalPolicy,
    ) -> sm.Secret:
        template: dict[str, object] = {
            "engine": self.engine.engine_name,
            "dbname": dbname,
            "username": username,
            "port": self.port,
        }
        if host is not None:
            template["host"] = host
        if rotation.master_secret is not None:
            # where alternating-users rotation finds the master user, as AWS's templates read it
            template["masterarn"] = rotation.master_secret.secret_arn
        return sm.Secret(
            self,
            "Secret",
            secret_name=secret_name,
            description=f"{self.engine.engine_name} endpoint and credentials of {dbname}",
            encryption_key=key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template=json.dumps(template, sort_keys=True),
                generate_string_key="password",
                exclude_characters=_EXCLUDE_FROM_PASSWORDS,
                password_length=32,
            ),
            removal_policy=removal_policy,
        )

    def _security_group(self, vpc: ec2.IVpc, dbname: str) -> ec2.SecurityGroup:
        group = _rotation_security_group(self, vpc, dbname)
        group.add_egress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block),
            ec2.Port.tcp(self.port),
            "The database, inside the VPC",
        )
        return group

    def _function_spec(
        self, dbname: str, rotation: DbRotation, key: kms.IKey
    ) -> _RotationFunctionSpec:
        environment = {
            "ROTATION_STRATEGY": "single-user",
            "PASSWORD_LENGTH": "32",
            "EXCLUDE_CHARACTERS": _EXCLUDE_FROM_PASSWORDS,
            # the Amazon RDS root CAs in the asset, where Lambda unpacks it
            "DB_CA_FILE": f"{_LAMBDA_TASK_ROOT}/{RDS_CA_BUNDLE}",
        }
        statements: list[iam.PolicyStatement] = []
        master = rotation.master_secret
        if master is not None:
            environment["ROTATION_STRATEGY"] = "alternating-users"
            environment["MASTER_SECRET_ARN"] = master.secret_arn
            statements.append(
                iam.PolicyStatement(
                    sid="ReadTheMasterSecret",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[master.secret_arn],
                )
            )
            if master.encryption_key is not None and master.encryption_key is not key:
                statements.extend(secret_read_statements(master)[1:])
        return _RotationFunctionSpec(
            purpose=f"{dbname} database credentials",
            asset=POSTGRES_ROTATION.build(),
            handler=POSTGRES_ROTATION.handler,
            environment=environment,
            statements=statements,
        )

    def attach(self, target: sm.ISecretAttachmentTarget) -> sm.ISecret:
        """Fill host and port from a database, admit the rotation function to it, and start
        rotating only once the endpoint is in the secret.

        An RDS database built with ``rds.Credentials.from_secret(this.secret)`` has attached
        the secret already (its ``secret`` attribute); that attachment is used. Another secret
        of the same database (an application user's) gets an attachment of its own."""
        check_argument(
            f"RotatingDbSecret {self.node.path!r}", "target", target, SECRET_ATTACHMENT_TARGET
        )
        existing = getattr(target, "secret", None)
        attachment: sm.ISecret = (
            existing
            if isinstance(existing, sm.SecretTargetAttachment)
            and existing.node.path.startswith(f"{self.secret.node.path}/")
            else self.secret.attach(target)
        )
        self.attachment = attachment
        self.attached_to = target
        self.rotation_schedule.node.add_dependency(attachment)
        if isinstance(target, Construct):
            # the whole database, instances and security group rules included: rotation
            # connects right away
            self.rotation_schedule.node.add_dependency(target)
        connections = getattr(target, "connections", None)
        if isinstance(connections, ec2.Connections):
            connections.allow_from(
                self.connections, ec2.Port.tcp(self.port), "rotation of its secret"
            )
        return attachment

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read this secret and decrypt it with its key: nothing broader."""
        return self.secret.grant_read(grantee)


class ApiKeySecret(Construct):
    """An API key (JSON: provider, api_key) in Secrets Manager, encrypted with the platform key
    and rotated by the rotation function shipped in this package (``handlers/api_key_rotation``)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        vpc: ec2.IVpc,
        provider: str = "market-data",
        key_length: int = 48,
        rotate_every: Duration = _EVERY_90_DAYS,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        reserved_concurrency: int | None = None,
        secret_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        """
        :param key: the KMS key the secret and the function's logs are encrypted with.
        :param vpc: the VPC the rotation function runs in.
        :param provider: who issued the key, kept in the secret. :default: 'market-data'
        :param key_length: characters of each generated key, 32 to 4096. :default: 48
        :param rotate_every: the rotation interval, 4 hours to 1000 days. :default: 90 days
        :param vpc_subnets: where the rotation function runs.
            :default: the VPC's private subnets with egress
        :param security_groups: the rotation function's security groups.
            :default: a new group allowing only HTTPS out
        :param log_retention: how long the rotation function's logs are kept. :default: 1 year
        :param reserved_concurrency: concurrent executions reserved for the rotation function,
            1 to 1000. :default: None (none reserved: new accounts have 10, all unreservable)
        :param secret_name: the secret's name. :default: a name CloudFormation generates
        :param removal_policy: what happens to the secret and the function's log group when
            the stack is deleted or they are replaced. :default: RETAIN_ON_UPDATE_OR_DELETE
            (kept once created; a failed first create rolls back to nothing)
        """
        owner = construct_owner("ApiKeySecret", scope.node.path, id)
        check_type(owner, "log_retention", log_retention, logs.RetentionDays)
        check_removal_policy(owner, removal_policy)
        problems = Problems(owner)
        _check_placement(
            problems,
            scope,
            key=key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            secret_name=secret_name,
        )
        problems.pattern(
            "provider", provider, r"[A-Za-z0-9._-]{1,64}", "1 to 64 of A-Z a-z 0-9 . _ -"
        )
        problems.int_range("key_length", key_length, 32, 4096)
        _check_rotated_secret(problems, rotate_every, secret_name)
        _check_reserved_concurrency(problems, reserved_concurrency)
        problems.raise_if_any()
        super().__init__(scope, id)
        claim(self, *_secret_names(scope, secret_name))

        self.secret: sm.Secret = sm.Secret(
            self,
            "Secret",
            secret_name=secret_name,
            description=f"API key for {provider}",
            encryption_key=key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template=json.dumps({"provider": provider}),
                generate_string_key="api_key",
                exclude_punctuation=True,
                password_length=key_length,
            ),
            removal_policy=removal_policy,
        )
        """The secret (JSON: provider, api_key)."""

        groups = list(security_groups or [_rotation_security_group(self, vpc, provider)])
        self.connections: ec2.Connections = ec2.Connections(security_groups=groups)
        """The rotation function's security groups."""

        self.function: lambda_.Function = _rotation_function(
            self,
            _RotationFunctionSpec(
                purpose=f"{provider} API key",
                asset=API_KEY_ROTATION.build(),
                handler=API_KEY_ROTATION.handler,
                environment={"API_KEY_LENGTH": str(key_length)},
                statements=[],
            ),
            secret=self.secret,
            key=key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=groups,
            log_retention=log_retention,
            removal_policy=removal_policy,
            reserved_concurrency=reserved_concurrency,
        )
        """The rotation function."""
        self.rotation_schedule: sm.RotationSchedule = self.secret.add_rotation_schedule(
            "Rotation", rotation_lambda=self.function, automatically_after=rotate_every
        )
        _only_this_secret_invokes(self.function, self.secret)
        """The rotation schedule."""

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read this secret and decrypt it with its key: nothing broader."""
        return self.secret.grant_read(grantee)
