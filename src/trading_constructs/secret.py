"""Secrets that rotate themselves: database credentials and the services' API key."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import jsii
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ._validation import Problems, check_type, construct_owner, is_token
from .compliance import ignore_redundant_depends_on, vpc_lambda_network_statement

ROTATION_DAYS = 90
"""How often secrets rotate by default (the seed's 90 days)."""

# Secrets Manager takes a rotation interval of 4 hours to 1000 days.
_MIN_ROTATION = Duration.hours(4)
_MAX_ROTATION_DAYS = 1000

# Characters that break connection strings or shells; the default of CDK's DatabaseSecret.
_EXCLUDE_FROM_PASSWORDS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"

_HOST = r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*"
_ROTATION_CODE = Path(__file__).parent / "rotation"
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
    """A database engine with an AWS-hosted rotation function, and its default port."""

    POSTGRES = ("postgres", 5432)
    MYSQL = ("mysql", 3306)
    MARIADB = ("mariadb", 3306)
    SQLSERVER = ("sqlserver", 1433)
    ORACLE = ("oracle", 1521)

    @property
    def engine_name(self) -> str:
        return self.value[0]

    @property
    def default_port(self) -> int:
        return self.value[1]


_SINGLE_USER: dict[DbEngine, Callable[..., sm.HostedRotation]] = {
    DbEngine.POSTGRES: sm.HostedRotation.postgre_sql_single_user,
    DbEngine.MYSQL: sm.HostedRotation.mysql_single_user,
    DbEngine.MARIADB: sm.HostedRotation.maria_db_single_user,
    DbEngine.SQLSERVER: sm.HostedRotation.sql_server_single_user,
    DbEngine.ORACLE: sm.HostedRotation.oracle_single_user,
}
_MULTI_USER: dict[DbEngine, Callable[..., sm.HostedRotation]] = {
    DbEngine.POSTGRES: sm.HostedRotation.postgre_sql_multi_user,
    DbEngine.MYSQL: sm.HostedRotation.mysql_multi_user,
    DbEngine.MARIADB: sm.HostedRotation.maria_db_multi_user,
    DbEngine.SQLSERVER: sm.HostedRotation.sql_server_multi_user,
    DbEngine.ORACLE: sm.HostedRotation.oracle_multi_user,
}


@dataclass(frozen=True, kw_only=True)
class DbRotation:
    """How a database secret rotates: ``DbRotation.single_user()`` changes the user's own
    password; ``DbRotation.alternating_users(master)`` keeps two users and switches between
    them, so connections never see a password that was just changed."""

    master_secret: sm.ISecret | None = None
    """The admin secret that alternating-users rotation clones the user with. :default: None
    (single user)"""

    @staticmethod
    def single_user() -> DbRotation:
        return DbRotation()

    @staticmethod
    def alternating_users(master_secret: sm.ISecret) -> DbRotation:
        if master_secret is None or not hasattr(master_secret, "secret_arn"):
            raise TypeError(
                f"DbRotation: master_secret={master_secret!r} is not allowed "
                "(allowed: an aws_secretsmanager.ISecret)"
            )
        return DbRotation(master_secret=master_secret)


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


@jsii.implements(ec2.IConnectable)
class RotatingDbSecret(Construct):
    """A database's endpoint and credentials (engine, host, port, dbname, username, password)
    in Secrets Manager, encrypted with the platform key and rotated by AWS's hosted rotation
    function inside the VPC.

    The rotation function runs in ``vpc_subnets`` with ``connections`` as its security
    groups: let the database admit them (``database.connections.allow_default_port_from(
    secret)``), which ``attach`` does for a database with connections. It reaches Secrets
    Manager through the NAT gateways, or through an interface endpoint with private DNS in the
    VPC (``ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER``) where there is no route out.
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
        secret_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        :param key: the KMS key the secret is encrypted with (the platform key).
        :param vpc: the VPC the hosted rotation function runs in (the database's).
        :param engine: the database engine. :default: DbEngine.POSTGRES
        :param username: the database user, 1 to 63 letters, digits or underscores, starting
            with a letter. :default: 'trading_admin'
        :param dbname: the database name, same rules. :default: 'trading'
        :param host: the endpoint, for a database not attached with ``attach``.
            :default: None (filled in by ``attach``)
        :param port: the port, 1150 to 65535. :default: the engine's default port
        :param rotation: single user, or alternating users with a master secret.
            :default: ``DbRotation.single_user()``
        :param rotate_every: the rotation interval, 4 hours to 1000 days. :default: 90 days
        :param vpc_subnets: where the rotation function runs.
            :default: the VPC's private subnets with egress
        :param security_groups: the rotation function's security groups.
            :default: a new group allowing only HTTPS out (and the database port, by ``attach``)
        :param secret_name: the secret's name. :default: a name CloudFormation generates
        :param removal_policy: what happens to the secret when the stack is deleted.
            :default: RETAIN
        """
        owner = construct_owner("RotatingDbSecret", scope.node.path, id)
        check_type(owner, "engine", engine, DbEngine)
        check_type(owner, "rotation", rotation, DbRotation)
        check_type(owner, "removal_policy", removal_policy, RemovalPolicy)
        problems = Problems(owner)
        if key is None or not hasattr(key, "key_arn"):
            problems.add("key", key, "an aws_kms.IKey")
        if vpc is None or not hasattr(vpc, "vpc_id"):
            problems.add("vpc", vpc, "an aws_ec2.IVpc")
        identifier = r"[A-Za-z][A-Za-z0-9_]{0,62}"
        rule = "1 to 63 letters, digits or underscores, starting with a letter"
        problems.pattern("username", username, identifier, rule)
        problems.pattern("dbname", dbname, identifier, rule)
        if not is_token(username) and username in {"admin", "rdsadmin", "postgres", "root"}:
            problems.add("username", username, "a name the engine does not reserve")
        if port is not None:
            problems.int_range("port", port, 1150, 65535)
        if host is not None:
            problems.pattern("host", host, _HOST, "a DNS name or IP address")
        _check_rotated_secret(problems, rotate_every, secret_name)
        problems.raise_if_any()
        super().__init__(scope, id)
        self.engine = engine
        self.port: int = port or engine.default_port
        """The database port the secret names and the rotation function connects to."""
        rotation = rotation or DbRotation.single_user()

        template = {
            "engine": engine.engine_name,
            "dbname": dbname,
            "username": username,
            "port": self.port,
        }
        if host is not None:
            template["host"] = host
        self.secret: sm.Secret = sm.Secret(
            self,
            "Secret",
            secret_name=secret_name,
            description=f"{engine.engine_name} endpoint and credentials of {dbname}",
            encryption_key=key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template=json.dumps(template, sort_keys=True),
                generate_string_key="password",
                exclude_characters=_EXCLUDE_FROM_PASSWORDS,
                password_length=32,
            ),
            removal_policy=removal_policy,
        )
        """The secret (JSON: engine, host, port, dbname, username, password)."""

        groups = list(security_groups or [_rotation_security_group(self, vpc, dbname)])
        self.connections: ec2.Connections = ec2.Connections(security_groups=groups)
        """The rotation function's security groups: what the database must admit."""

        subnets = vpc_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        placement = {"vpc": vpc, "vpc_subnets": subnets, "security_groups": groups}
        if rotation.master_secret is None:
            hosted = _SINGLE_USER[engine](**placement)
        else:
            hosted = _MULTI_USER[engine](master_secret=rotation.master_secret, **placement)
        self.rotation_schedule: sm.RotationSchedule = self.secret.add_rotation_schedule(
            "Rotation", hosted_rotation=hosted, automatically_after=rotate_every
        )
        """The rotation schedule, run by AWS's hosted rotation function."""

    def attach(self, target: sm.ISecretAttachmentTarget) -> sm.ISecret:
        """Fill host and port from a database, admit the rotation function to it, and start
        rotating only once the endpoint is in the secret.

        An RDS database built with ``rds.Credentials.from_secret(this.secret)`` has attached
        the secret already (its ``secret`` attribute); that attachment is used."""
        existing = getattr(target, "secret", None)
        attachment: sm.ISecret = (
            existing
            if isinstance(existing, sm.SecretTargetAttachment)
            else self.secret.attach(target)
        )
        self.rotation_schedule.node.add_dependency(attachment)
        if isinstance(target, Construct):
            # the whole database, instances included: rotation connects right away
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
    and rotated by the rotation function shipped in this package (``rotation/api_key.py``)."""

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
        secret_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
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
        :param secret_name: the secret's name. :default: a name CloudFormation generates
        :param removal_policy: what happens to the secret and the function's log group when
            the stack is deleted. :default: RETAIN
        """
        owner = construct_owner("ApiKeySecret", scope.node.path, id)
        check_type(owner, "log_retention", log_retention, logs.RetentionDays)
        check_type(owner, "removal_policy", removal_policy, RemovalPolicy)
        problems = Problems(owner)
        if key is None or not hasattr(key, "key_arn"):
            problems.add("key", key, "an aws_kms.IKey")
        if vpc is None or not hasattr(vpc, "vpc_id"):
            problems.add("vpc", vpc, "an aws_ec2.IVpc")
        problems.pattern(
            "provider", provider, r"[A-Za-z0-9._-]{1,64}", "1 to 64 of A-Z a-z 0-9 . _ -"
        )
        problems.int_range("key_length", key_length, 32, 4096)
        _check_rotated_secret(problems, rotate_every, secret_name)
        problems.raise_if_any()
        super().__init__(scope, id)

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

        log_group = logs.LogGroup(
            self,
            "RotationLogs",
            retention=log_retention,
            encryption_key=key,
            removal_policy=removal_policy,
        )
        role = iam.Role(
            self,
            "RotationRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Rotates the {provider} API key secret and nothing else",
        )
        dead_letters = self._dead_letters(key)
        self.function: lambda_.Function = lambda_.Function(
            self,
            "RotationFunction",
            description=f"Rotates the {provider} API key (createSecret..finishSecret)",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="api_key.handler",
            code=lambda_.Code.from_asset(
                str(_ROTATION_CODE), exclude=["__pycache__", "*.pyc", "__init__.py"]
            ),
            timeout=Duration.seconds(30),
            memory_size=256,
            environment={"API_KEY_LENGTH": str(key_length)},
            vpc=vpc,
            vpc_subnets=vpc_subnets
            or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=groups,
            # Secrets Manager never rotates one secret twice at once; one slot is enough.
            reserved_concurrent_executions=1,
            log_group=log_group,
            role=role.without_policy_updates(),
            dead_letter_queue=dead_letters,
        )
        """The rotation function."""
        self._grant_rotation(role, key, log_group, dead_letters)
        ignore_redundant_depends_on(self.function)
        self.rotation_schedule: sm.RotationSchedule = self.secret.add_rotation_schedule(
            "Rotation", rotation_lambda=self.function, automatically_after=rotate_every
        )
        """The rotation schedule."""

    def _dead_letters(self, key: kms.IKey) -> sqs.Queue:
        """Rotation events that failed every retry, kept two weeks for a person to look at."""
        queue = sqs.Queue(
            self,
            "RotationDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        Validations.of(queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="This queue is itself the rotation function's dead-letter queue.",
            )
        )
        return queue

    def _grant_rotation(
        self, role: iam.Role, key: kms.IKey, log_group: logs.LogGroup, dead_letters: sqs.Queue
    ) -> None:
        """Exactly what the handler calls, in a managed policy (not inline)."""
        policy = iam.ManagedPolicy(
            self,
            "RotationPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="RotateThisSecret",
                    actions=[
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                    ],
                    resources=[self.secret.secret_arn],
                ),
                iam.PolicyStatement(
                    sid="GenerateKeys",
                    actions=["secretsmanager:GetRandomPassword"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="UseThePlatformKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                ),
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
        self.function.node.add_dependency(policy)
        Validations.of(policy).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="secretsmanager:GetRandomPassword and the EC2 network-interface actions a "
                "VPC Lambda needs have no resource-level permissions; every other statement "
                "names its one secret, key or log group.",
            )
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read this secret and decrypt it with its key: nothing broader."""
        return self.secret.grant_read(grantee)
