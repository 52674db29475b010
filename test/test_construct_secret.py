"""RotatingDbSecret and ApiKeySecret on a stack of their own, synthesized once for the module:
the secret, its rotation function, schedule, network, policy, logs and dead letters (the
example's database secret is tested in test_supply_chain.py, the handlers in
test_rotation_*.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from conftest import CDK_CONTEXT, ENV, synthesize
from construct_support import of_type, readiness_violations, statements

from trading_constructs import (
    ApiKeySecret,
    DbRotation,
    DbSchema,
    DbUser,
    RotatingDbSecret,
    TableGrant,
)
from trading_constructs.notifications import AlarmNotifications

EXCLUDED = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"
VPC_NETWORK = [
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
]
VIA_SECRETS_MANAGER = {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


@dataclass(frozen=True)
class Secrets:
    stack: Stack
    key: kms.Key
    vpc: ec2.Vpc
    db: RotatingDbSecret
    """every default"""
    ticks: RotatingDbSecret
    """host, port, names, alternating users, 30 days, a month of logs, a name, DESTROY"""
    master: sm.Secret
    master_key: kms.Key
    api_key: ApiKeySecret
    """every default; ``reader`` was granted read"""
    reader: iam.Role
    template: dict[str, Any]

    def id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

    def resource(self, construct: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][self.id(construct)]
        return resource

    def properties(self, construct: Any) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(construct)["Properties"]
        return properties

    def ref(self, construct: Any) -> dict[str, str]:
        return {"Ref": self.id(construct)}

    def arn(self, construct: Any) -> dict[str, list[str]]:
        return {"Fn::GetAtt": [self.id(construct), "Arn"]}


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("construct-secrets")))
    stack = Stack(app, "Secrets", env=ENV)
    kept = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
    key = kms.Key(stack, "Key", enable_key_rotation=True, removal_policy=kept)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1, restrict_default_security_group=False)
    db = RotatingDbSecret(stack, "Db", key=key, vpc=vpc)
    master_key = kms.Key(stack, "MasterKey", enable_key_rotation=True, removal_policy=kept)
    master = sm.Secret(stack, "Master", encryption_key=master_key, removal_policy=kept)
    alarms = AlarmNotifications(stack, "Alarms", key=key)
    ticks = RotatingDbSecret(
        stack,
        "Ticks",
        key=key,
        vpc=vpc,
        host="db.internal.example.com",
        port=6432,
        dbname="ticks",
        username="ticks_rw",
        rotation=DbRotation.alternating_users(master),
        rotate_every=Duration.days(30),
        log_retention=logs.RetentionDays.ONE_MONTH,
        secret_name="trading/ticks",
        removal_policy=RemovalPolicy.DESTROY,
        alarms=alarms,
    )
    api_key = ApiKeySecret(stack, "ApiKey", key=key, vpc=vpc)
    reader = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    api_key.grant_read(reader)
    synthesized = synthesize(app)
    assert synthesized.synth_error is None, synthesized.synth_error
    return Secrets(
        stack,
        key,
        vpc,
        db,
        ticks,
        master,
        master_key,
        api_key,
        reader,
        synthesized.templates["Secrets"],
    )


def _policy(secrets: Secrets, prefix: str) -> dict[str, dict[str, Any]]:
    """The rotation policy's statements by Sid ('' for one without)."""
    (policy,) = (
        p
        for k, p in of_type(secrets.template, "AWS::IAM::ManagedPolicy").items()
        if k.startswith(f"{prefix}RotationPolicy")
    )
    return {s.get("Sid", ""): s for s in statements(policy)}


# -- what must never be lost ----------------------------------------------------------------------


def test_secrets_and_rotation_logs_keep_their_logical_ids_and_are_kept_once_created(
    secrets: Secrets,
) -> None:
    kept = {
        secrets.id(secrets.db.secret): "DbSecretCF6D79B0",
        secrets.id(secrets.db.function.log_group): "DbRotationLogs1AD62355",
        secrets.id(secrets.api_key.secret): "ApiKeySecret5E0E1F3C",
        secrets.id(secrets.api_key.function.log_group): "ApiKeyRotationLogsDA8A9C5D",
    }
    assert list(kept) == list(kept.values())
    for logical_id in kept:
        resource = secrets.template["Resources"][logical_id]
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_removal_policy_destroy_reaches_the_secret_and_its_logs(secrets: Secrets) -> None:
    for construct in (secrets.ticks.secret, secrets.ticks.function.log_group):
        resource = secrets.resource(construct)
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete")


# -- RotatingDbSecret ---------------------------------------------------------------------------


def test_the_secret_holds_the_endpoint_and_a_generated_password_under_the_key(
    secrets: Secrets,
) -> None:
    properties = secrets.properties(secrets.db.secret)
    generator = properties["GenerateSecretString"]
    assert json.loads(generator.pop("SecretStringTemplate")) == {
        "dbname": "trading",
        "engine": "postgres",
        "port": 5432,
        "username": "trading_admin",
    }
    assert generator == {
        "ExcludeCharacters": EXCLUDED,
        "GenerateStringKey": "password",
        "PasswordLength": 32,
    }
    assert properties["KmsKeyId"] == secrets.arn(secrets.key)
    assert "Name" not in properties  # a generated name: a retry never collides
    assert secrets.db.port == 5432


def test_the_secret_rotates_every_90_days_once_its_function_may_run(secrets: Secrets) -> None:
    schedule = secrets.resource(secrets.db.rotation_schedule)
    assert schedule["Properties"] == {
        "RotationLambdaARN": secrets.arn(secrets.db.function),
        "RotationRules": {"ScheduleExpression": "rate(90 days)"},
        "SecretId": secrets.ref(secrets.db.secret),
    }
    # the first rotation starts with the schedule: after Secrets Manager may invoke the
    # function and its security group exists
    (permission_id,) = (
        d for d in schedule["DependsOn"] if d.startswith("DbRotationFunctionInvoke")
    )
    permission = secrets.template["Resources"][permission_id]["Properties"]
    assert (permission["Principal"], permission["Action"]) == (
        "secretsmanager.amazonaws.com",
        "lambda:InvokeFunction",
    )
    # CT.LAMBDA.PR.2: only for this secret, of this account
    assert (permission["SourceAccount"], permission["SourceArn"]) == (
        secrets.stack.resolve(secrets.stack.account),
        secrets.ref(secrets.db.secret),
    )
    assert secrets.id(secrets.db.connections.security_groups[0]) in schedule["DependsOn"]


def test_the_rotation_function_runs_the_packaged_handler_in_the_private_subnets(
    secrets: Secrets,
) -> None:
    resource = secrets.resource(secrets.db.function)
    properties = resource["Properties"]
    assert (properties["Runtime"], properties["Handler"]) == ("python3.14", "postgres.handler")
    assert (properties["Timeout"], properties["MemorySize"]) == (30, 256)
    assert properties["Environment"]["Variables"] == {
        "ROTATION_STRATEGY": "single-user",
        "PASSWORD_LENGTH": "32",
        "EXCLUDE_CHARACTERS": EXCLUDED,
        # the Amazon RDS root CAs shipped in the asset, not the runtime's trust store
        "DB_CA_FILE": "/var/task/rds-ca-bundle.pem",
    }
    assert properties["VpcConfig"] == {
        "SecurityGroupIds": [
            {"Fn::GetAtt": [secrets.id(secrets.db.connections.security_groups[0]), "GroupId"]}
        ],
        "SubnetIds": [secrets.ref(s) for s in secrets.vpc.private_subnets],
    }
    assert properties["LoggingConfig"] == {"LogGroup": secrets.ref(secrets.db.function.log_group)}
    assert "ReservedConcurrentExecutions" not in properties
    queue = properties["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    assert queue.startswith("DbRotationDeadLetters")
    # a VPC function's CreateFunction checks the network actions on its role at once
    policy_id = next(k for k in secrets.template["Resources"] if k.startswith("DbRotationPolicy"))
    assert policy_id in resource["DependsOn"]


def test_the_rotation_function_reaches_https_and_the_database_port_in_the_vpc_only(
    secrets: Secrets,
) -> None:
    (group,) = secrets.db.connections.security_groups
    assert secrets.properties(group)["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "Secrets Manager API (endpoint or NAT)",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        },
        {
            "CidrIp": {"Fn::GetAtt": [secrets.id(secrets.vpc), "CidrBlock"]},
            "Description": "The database, inside the VPC",
            "FromPort": 5432,
            "IpProtocol": "tcp",
            "ToPort": 5432,
        },
    ]


def test_the_rotation_policy_is_this_secret_its_key_its_queue_its_logs_and_the_network(
    secrets: Secrets,
) -> None:
    policy = _policy(secrets, "Db")
    queue = next(k for k in secrets.template["Resources"] if k.startswith("DbRotationDeadLetters"))
    assert policy == {
        "RotateThisSecret": {
            "Action": [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            "Effect": "Allow",
            "Resource": secrets.ref(secrets.db.secret),
            "Sid": "RotateThisSecret",
        },
        "GenerateKeys": {
            "Action": "secretsmanager:GetRandomPassword",
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "GenerateKeys",
        },
        "UseThePlatformKey": {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": [
                        "secretsmanager.us-east-1.amazonaws.com",
                        "sqs.us-east-1.amazonaws.com",
                    ]
                }
            },
            "Effect": "Allow",
            "Resource": secrets.arn(secrets.key),
            "Sid": "UseThePlatformKey",
        },
        "DeadLetters": {
            "Action": "sqs:SendMessage",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
            "Sid": "DeadLetters",
        },
        "WriteOwnLogs": {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": secrets.arn(secrets.db.function.log_group),
            "Sid": "WriteOwnLogs",
        },
        "AttachToTheVpc": {
            "Action": VPC_NETWORK,
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "AttachToTheVpc",
        },
    }


def test_rotation_logs_and_dead_letters_are_encrypted_with_the_key(secrets: Secrets) -> None:
    logs_group = secrets.properties(secrets.db.function.log_group)
    assert logs_group == {"KmsKeyId": secrets.arn(secrets.key), "RetentionInDays": 365}
    (queue_id, queue) = next(
        (k, r)
        for k, r in of_type(secrets.template, "AWS::SQS::Queue").items()
        if k.startswith("DbRotationDeadLetters")
    )
    assert queue["Properties"] == {
        "KmsMasterKeyId": secrets.arn(secrets.key),
        "MessageRetentionPeriod": 14 * 24 * 3600,
        # CT.SQS.PR.1: a dead-letter queue names who may use it as one (a Lambda's has no
        # source queue, so all)
        "RedriveAllowPolicy": {"redrivePermission": "allowAll"},
    }
    (queue_policy,) = (
        p
        for p in of_type(secrets.template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    )
    (deny,) = statements(queue_policy)
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_every_option_reaches_the_secret_its_function_and_its_network(secrets: Secrets) -> None:
    properties = secrets.properties(secrets.ticks.secret)
    assert properties["Name"] == "trading/ticks"
    template = properties["GenerateSecretString"]["SecretStringTemplate"]["Fn::Join"][1]
    assert template == [
        '{"dbname": "ticks", "engine": "postgres", "host": "db.internal.example.com", '
        '"masterarn": "',
        secrets.ref(secrets.master),
        '", "port": 6432, "username": "ticks_rw"}',
    ]
    assert secrets.properties(secrets.ticks.rotation_schedule)["RotationRules"] == {
        "ScheduleExpression": "rate(30 days)"
    }
    assert secrets.properties(secrets.ticks.function.log_group)["RetentionInDays"] == 30
    variables = secrets.properties(secrets.ticks.function)["Environment"]["Variables"]
    assert variables["ROTATION_STRATEGY"] == "alternating-users"
    assert variables["MASTER_SECRET_ARN"] == secrets.ref(secrets.master)
    (group,) = secrets.ticks.connections.security_groups
    ports = [rule["FromPort"] for rule in secrets.properties(group)["SecurityGroupEgress"]]
    assert ports == [443, 6432]


def test_alternating_users_read_the_master_secret_through_its_own_key(secrets: Secrets) -> None:
    policy = _policy(secrets, "Ticks")
    assert policy["ReadTheMasterSecret"] == {
        "Action": "secretsmanager:GetSecretValue",
        "Effect": "Allow",
        "Resource": secrets.ref(secrets.master),
        "Sid": "ReadTheMasterSecret",
    }
    assert policy[""] == {
        "Action": "kms:Decrypt",
        "Condition": VIA_SECRETS_MANAGER,
        "Effect": "Allow",
        "Resource": secrets.arn(secrets.master_key),
    }
    assert "ReadTheMasterSecret" not in _policy(secrets, "Db")


# -- ApiKeySecret -------------------------------------------------------------------------------


def test_the_api_key_is_generated_without_punctuation_under_the_key(secrets: Secrets) -> None:
    properties = secrets.properties(secrets.api_key.secret)
    assert properties["GenerateSecretString"] == {
        "ExcludePunctuation": True,
        "GenerateStringKey": "api_key",
        "PasswordLength": 48,
        "SecretStringTemplate": '{"provider": "market-data"}',
    }
    assert properties["KmsKeyId"] == secrets.arn(secrets.key)
    assert secrets.properties(secrets.api_key.rotation_schedule)["RotationRules"] == {
        "ScheduleExpression": "rate(90 days)"
    }


def test_the_api_key_rotation_needs_no_database(secrets: Secrets) -> None:
    function = secrets.properties(secrets.api_key.function)
    assert (function["Runtime"], function["Handler"]) == ("python3.14", "api_key.handler")
    assert function["Environment"]["Variables"] == {"API_KEY_LENGTH": "48"}
    (group,) = secrets.api_key.connections.security_groups
    assert [r["FromPort"] for r in secrets.properties(group)["SecurityGroupEgress"]] == [443]
    assert sorted(_policy(secrets, "ApiKey")) == [
        "AttachToTheVpc",
        "DeadLetters",
        "GenerateKeys",
        "RotateThisSecret",
        "UseThePlatformKey",
        "WriteOwnLogs",
    ]
    assert _policy(secrets, "ApiKey")["RotateThisSecret"]["Resource"] == secrets.ref(
        secrets.api_key.secret
    )


def test_grant_read_is_the_api_key_and_decrypting_it_through_secrets_manager(
    secrets: Secrets,
) -> None:
    (policy,) = (
        p
        for k, p in of_type(secrets.template, "AWS::IAM::Policy").items()
        if k.startswith("ReaderDefaultPolicy")
    )
    assert statements(policy) == [
        {
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Effect": "Allow",
            "Resource": secrets.ref(secrets.api_key.secret),
        }
    ]
    key_policy = secrets.properties(secrets.key)["KeyPolicy"]["Statement"]
    reader = [s for s in key_policy if s["Principal"].get("AWS") == secrets.arn(secrets.reader)]
    assert reader == [
        {
            "Action": "kms:Decrypt",
            "Condition": VIA_SECRETS_MANAGER,
            "Effect": "Allow",
            "Principal": {"AWS": secrets.arn(secrets.reader)},
            "Resource": "*",
        }
    ]


# -- the deploy-readiness rules, on this stack ------------------------------------------------


def test_the_secrets_stack_passes_the_deploy_readiness_rules(secrets: Secrets) -> None:
    assert readiness_violations(secrets.template) == {}


# -- a failing rotation is told --------------------------------------------------------------


def test_a_failing_rotation_alarms_on_the_platform_topic(secrets: Secrets) -> None:
    # GIVEN a secret given the platform's alarm notifications
    topic = {"Ref": next(k for k in of_type(secrets.template, "AWS::SNS::Topic"))}
    alarm = secrets.properties(secrets.ticks.alarms["RotationErrors"])
    # THEN any error of its rotation function alarms there (and says so when it clears)
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/Lambda",
        "Errors",
        "Sum",
    )
    assert alarm["Dimensions"] == [
        {"Name": "FunctionName", "Value": secrets.ref(secrets.ticks.function)}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    # and Secrets Manager's RotationFailed event for this secret (a rotation can fail before
    # the function runs) goes to the same topic
    (rule,) = (
        r["Properties"]
        for k, r in of_type(secrets.template, "AWS::Events::Rule").items()
        if k.startswith("TicksRotationFailedRule")
    )
    assert rule["EventPattern"] == {
        "source": ["aws.secretsmanager"],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": ["RotationFailed"],
            "additionalEventData": {"SecretId": [secrets.ref(secrets.ticks.secret)]},
        },
    }
    assert [t["Arn"] for t in rule["Targets"]] == [topic]


def test_only_event_rules_of_this_account_may_publish_to_the_topic(secrets: Secrets) -> None:
    (policy,) = of_type(secrets.template, "AWS::SNS::TopicPolicy").values()
    by_sid = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    events = by_sid["AllowEventBridgeRulesOfThisAccount"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    account = {"Ref": "AWS::AccountId"}  # the stack names a region, not an account
    assert events["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    assert events["Condition"]["ArnLike"] == {
        "aws:SourceArn": {"Fn::Join": ["", ["arn:aws:events:us-east-1:", account, ":rule/*"]]}
    }
    # no unconditioned grant to EventBridge besides (aws-cdk-lib's SnsTopic target adds one)
    assert [
        s for s in by_sid.values() if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ] == [events]
    # EventBridge may use the topic's key
    key = secrets.resource(secrets.key)["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s["Principal"] == {"Service": "events.amazonaws.com"}
        and sorted(s["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        for s in key
    )


def test_a_secret_nobody_watches_says_so_at_synth(secrets: Secrets) -> None:
    # GIVEN a secret without alarms  THEN a warning names the way to be told, and nothing alarms
    assert secrets.db.alarms == {}
    messages = _annotations(secrets, secrets.db)
    assert any("pass alarms=cluster.alarms" in m for m in messages)
    assert not any("pass alarms=" in m for m in _annotations(secrets, secrets.ticks))


def _annotations(secrets: Secrets, construct: Any) -> list[str]:
    from aws_cdk.assertions import Annotations, Match

    found = Annotations.from_stack(secrets.stack).find_warning(
        f"/{construct.node.path}", Match.any_value()
    )
    return [str(entry.entry.data) for entry in found]


# --- Database users: bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda s: TableGrant(table="1ticks", privileges=["SELECT"]), "table='1ticks'"),
        (lambda s: TableGrant(table="ticks", privileges=["TRUNCATE"]), "privileges='TRUNCATE'"),
        (lambda s: TableGrant(table="ticks", privileges=[]), "privileges=[]"),
        (lambda s: TableGrant(table="ticks", privileges="SELECT"), "privileges='SELECT'"),
        (
            lambda s: DbSchema(s.stack, "Schema", master=s.db, statements=["SELECT 1"]),
            "attached to its database",
        ),
        (
            lambda s: DbSchema(s.stack, "Schema", master="db", statements=[]),  # type: ignore[arg-type]
            "master='db'",
        ),
        (
            lambda s: DbSchema(s.stack, "Schema", master="db", statements=[]),  # type: ignore[arg-type]
            "statements=[]",
        ),
        (
            lambda s: DbSchema(s.stack, "Schema", master=s.db, statements=["ok"], owner="a-b"),
            "owner='a-b'",
        ),
        (
            lambda s: DbUser(
                s.stack,
                "User",
                master=s.db,
                schema=None,  # type: ignore[arg-type]
                username="app",
                grants=[
                    TableGrant(table="ticks", privileges=["SELECT"]),
                    TableGrant(table="ticks", privileges=["INSERT"]),
                ],
            ),
            "grants=['ticks'] is not allowed (allowed: one TableGrant per table)",
        ),
        (
            lambda s: DbUser(
                s.stack,
                "User",
                master=s.db,
                schema=None,
                username="app",
                grants=[],  # type: ignore[arg-type]
            ),
            "schema=None",
        ),
    ],
    ids=[
        "table",
        "privilege",
        "no-privilege",
        "privileges-string",
        "schema-unattached",
        "schema-master",
        "schema-statements",
        "schema-owner",
        "user-duplicate-tables",
        "user-schema",
    ],
)
def test_database_users_refuse_bad_input_naming_the_prop(
    secrets: Secrets, make: Any, words: str
) -> None:
    with pytest.raises((ValueError, TypeError)) as refused:
        make(secrets)
    assert words in str(refused.value)
