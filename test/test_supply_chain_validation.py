"""Bad input to the supply-chain and secret constructs fails in the constructor, naming the
prop, the value and what is allowed; unresolved tokens and valid edge values pass.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Duration, Fn, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from validation_support import bad, problem_lines, refused

from trading_constructs import (
    ApiKeySecret,
    DbEngine,
    DbRotation,
    PullThroughCache,
    RegistryScanning,
    RotatingDbSecret,
    ScannedRepository,
    ScanType,
)


@pytest.fixture
def stack() -> Stack:
    # Construct-time validation only: nothing here is synthesized.
    return Stack(App(), "Test")


@pytest.fixture
def key(stack: Stack) -> kms.IKey:
    return kms.Key(stack, "Key")


@pytest.fixture
def vpc(stack: Stack) -> ec2.IVpc:
    return ec2.Vpc(stack, "Vpc", max_azs=2)


def token_string(name: str) -> str:
    return Token.as_string(Fn.import_value(name))


# -- ScannedRepository ---------------------------------------------------------------------

NAME_GRAMMAR = "lower-case letters, digits and . _ - / separators"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(NAME_GRAMMAR, repository_name="Trading/svc"),
        refused(NAME_GRAMMAR, repository_name="-trading"),
        refused(NAME_GRAMMAR, repository_name="trading_"),
        refused(NAME_GRAMMAR, repository_name="/trading"),
        refused(NAME_GRAMMAR, repository_name="trading/"),
        refused(NAME_GRAMMAR, repository_name="trading--svc"),
        refused(NAME_GRAMMAR, repository_name="trading//svc"),
        refused(NAME_GRAMMAR, repository_name="trading._svc"),
        refused(NAME_GRAMMAR, repository_name="trading svc"),
        refused(NAME_GRAMMAR, repository_name=42),
        refused("2 to 256 characters", repository_name="a"),
        refused("2 to 256 characters", repository_name="a" * 257),
        refused("an integer from 1 to 1000", keep_last_images=0),
        refused("an integer from 1 to 1000", keep_last_images=1001),
        refused("an integer from 1 to 1000", keep_last_images=-5),
        refused("an integer from 1 to 1000", keep_last_images=True),
        refused("an integer from 1 to 1000", keep_last_images=2.5),
        refused("an integer from 1 to 1000", keep_last_images="10"),
        refused("an aws_kms.IKey", key=None),
        refused("an aws_kms.IKey", key="alias/platform"),
    ],
)
def test_bad_scanned_repository_props(
    stack: Stack, key: kms.IKey, props: dict[str, Any], message: str
) -> None:
    # WHEN one prop is out of ECR's rules  THEN it alone is named, with what is allowed
    with pytest.raises(ValueError, match=f"^ScannedRepository 'Test/Repo': {message}"):
        ScannedRepository(stack, "Repo", **{"key": key, **props})


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused("RemovalPolicy", removal_policy="retain"),
        refused("RemovalPolicy", removal_policy=True),
    ],
)
def test_scanned_repository_wrong_types_are_type_errors(
    stack: Stack, key: kms.IKey, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=f"^ScannedRepository 'Test/Repo': {message}"):
        ScannedRepository(stack, "Repo", key=key, **props)


def test_scanned_repository_empty_name_breaks_both_rules(stack: Stack, key: kms.IKey) -> None:
    with pytest.raises(ValueError) as raised:
        ScannedRepository(stack, "Repo", key=key, repository_name="")
    message = str(raised.value)
    assert message.startswith("ScannedRepository 'Test/Repo': 2 invalid props:\n")
    assert "(allowed: 2 to 256 characters)" in message


@pytest.mark.parametrize("keep", [1, 1000])
@pytest.mark.parametrize("name", ["ab", "a" * 256, "trading/market-data_v1.2", "a.b-c_d/e"])
def test_scanned_repository_edge_values_pass(
    stack: Stack, key: kms.IKey, name: str, keep: int
) -> None:
    repository = ScannedRepository(
        stack, "Repo", key=key, repository_name=name, keep_last_images=keep
    )
    assert repository.repository.node.id == "Repository"


def test_scanned_repository_token_keep_last_images_is_an_error(stack: Stack, key: kms.IKey) -> None:
    count = Token.as_number(Fn.import_value("KeepLast"))
    with pytest.raises(ValueError, match=r"^ScannedRepository 'Test/Repo': keep_last_images="):
        ScannedRepository(stack, "Repo", key=key, keep_last_images=count)


# -- PullThroughCache ----------------------------------------------------------------------

PREFIX_GRAMMAR = "lower-case letters, digits, . _ - /"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(PREFIX_GRAMMAR, prefix="ECR-Public"),
        refused(PREFIX_GRAMMAR, prefix="-ecr-public"),
        refused(PREFIX_GRAMMAR, prefix="ecr-public/"),
        refused(PREFIX_GRAMMAR, prefix="ecr__public"),
        refused(PREFIX_GRAMMAR, prefix="ecr public"),
        refused("2 to 30 characters", prefix="e"),
        refused("2 to 30 characters", prefix="p" * 31),
        refused("an integer from 1 to 1000", keep_last_images=0),
        refused("an integer from 1 to 1000", keep_last_images=1001),
        refused("an integer from 1 to 1000", keep_last_images=1.5),
        refused("an aws_kms.IKey", key=None),
    ],
)
def test_bad_pull_through_cache_props(
    stack: Stack, key: kms.IKey, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^PullThroughCache 'Test/Cache': {message}"):
        PullThroughCache(stack, "Cache", **{"key": key, **props})


def test_pull_through_cache_root_prefix_is_an_error(stack: Stack, key: kms.IKey) -> None:
    # GIVEN ROOT, which a creation template reads as "every repository", not a namespace
    with pytest.raises(ValueError) as raised:
        PullThroughCache(stack, "Cache", key=key, prefix="ROOT")
    # THEN besides breaking the lower-case grammar, it is named as the reserved word it is
    message = str(raised.value)
    assert message.startswith("PullThroughCache 'Test/Cache': 2 invalid props:\n")
    assert "  - prefix='ROOT' is not allowed (allowed: a namespace, not ROOT)" in message


@pytest.mark.parametrize("keep", [1, 1000])
@pytest.mark.parametrize("prefix", ["ec", "p" * 30, "root", "mirror/ecr-public"])
def test_pull_through_cache_edge_values_pass(
    stack: Stack, key: kms.IKey, prefix: str, keep: int
) -> None:
    cache = PullThroughCache(stack, "Cache", key=key, prefix=prefix, keep_last_images=keep)
    assert cache.prefix == prefix


def test_pull_through_cache_token_prefix_with_suffix_passes(stack: Stack, key: kms.IKey) -> None:
    # GIVEN a deploy-time environment name with a suffix, whose real length is unknown
    prefix = f"{token_string('Environment')}-pull-through"
    # THEN it is left to CloudFormation, like any other token
    PullThroughCache(stack, "Cache", key=key, prefix=prefix)


# -- RegistryScanning ----------------------------------------------------------------------

FILTER_GRAMMAR = "an ECR wildcard filter of lower-case letters, digits, . _ - / and *"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(FILTER_GRAMMAR, repository_filter="Trading*"),
        refused(FILTER_GRAMMAR, repository_filter=""),
        refused(FILTER_GRAMMAR, repository_filter="-trading*"),
        refused(FILTER_GRAMMAR, repository_filter="trading *"),
        refused(FILTER_GRAMMAR, repository_filter="a" * 256),
        refused(FILTER_GRAMMAR, repository_filter=None),
        refused(FILTER_GRAMMAR, id="trailing-separator", repository_filter="trading-"),
        refused(FILTER_GRAMMAR, id="double-separator", repository_filter="trading--*"),
    ],
)
def test_bad_registry_scanning_props(stack: Stack, props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^RegistryScanning 'Test/Scanning': {message}"):
        RegistryScanning(stack, "Scanning", **props)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused("ScanType", scan_type="ENHANCED"),
        refused("ScanType", scan_type=True),
    ],
)
def test_registry_scanning_wrong_types_are_type_errors(
    stack: Stack, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=f"^RegistryScanning 'Test/Scanning': {message}"):
        RegistryScanning(stack, "Scanning", **props)


@pytest.mark.parametrize("scan_type", list(ScanType))
@pytest.mark.parametrize("repository_filter", ["*", "trading/*", "*prod*", "a" * 255])
def test_registry_scanning_valid_values_pass(
    stack: Stack, scan_type: ScanType, repository_filter: str
) -> None:
    scanning = RegistryScanning(
        stack, "Scanning", scan_type=scan_type, repository_filter=repository_filter
    )
    assert scanning.configuration.scan_type == scan_type.value


# -- RotatingDbSecret ----------------------------------------------------------------------

IDENTIFIER = "1 to 63 letters, digits or underscores, starting with a letter"
RESERVED = "a name the engine does not reserve"
PORTS = "an integer from 1150 to 65535"
HOST = "a DNS name or IP address"
INTERVAL = "4 hours to 1000 days"
SECRET_NAME = "1 to 512 letters, digits and /_+=.@-"
WHOLE_HOURS = "Secrets Manager takes rate() in whole hours or days; CDK renders rate(270 minutes)"
DNS_LABELS = "the host pattern [A-Za-z0-9.-]{1,253} accepts empty and hyphen-edged labels"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(IDENTIFIER, username="1trader"),
        refused(IDENTIFIER, username="_trader"),
        refused(IDENTIFIER, username="trading-admin"),
        refused(IDENTIFIER, username="u" * 64),
        refused(IDENTIFIER, username=""),
        refused(IDENTIFIER, username=None),
        refused(RESERVED, username="admin"),
        refused(RESERVED, username="rdsadmin"),
        refused(RESERVED, username="postgres"),
        refused(RESERVED, username="root"),
        refused(IDENTIFIER, dbname="1trading"),
        refused(IDENTIFIER, dbname="trading-db"),
        refused(IDENTIFIER, dbname="trading db"),
        refused(IDENTIFIER, dbname="d" * 64),
        refused(PORTS, port=1149),
        refused(PORTS, port=65536),
        refused(PORTS, port=0),
        refused(PORTS, port=True),
        refused(PORTS, port=5432.0),
        refused(HOST, host="db host.example.com"),
        refused(HOST, host="db_1.example.com"),
        refused(HOST, host="fe80::1"),
        refused(HOST, host=""),
        refused(HOST, host="h" * 254),
        refused(HOST, id="host-empty-label", host="db..example.com"),
        refused(HOST, id="host-leading-hyphen", host="-db.example.com"),
        refused(INTERVAL, rotate_every=Duration.hours(3)),
        refused(INTERVAL, rotate_every=Duration.minutes(239)),
        refused(INTERVAL, rotate_every=Duration.days(0)),
        refused(INTERVAL, rotate_every=Duration.days(1001)),
        refused("an aws_cdk.Duration", rotate_every=90),
        refused("an aws_cdk.Duration", rotate_every="P90D"),
        refused("whole", id="rotate-every-fractional-hours", rotate_every=Duration.minutes(270)),
        refused(SECRET_NAME, secret_name="trading db"),
        refused(SECRET_NAME, secret_name="trading#db"),
        refused(SECRET_NAME, secret_name=""),
        refused(SECRET_NAME, secret_name="s" * 513),
        refused("an aws_kms.IKey", key=None),
        refused("an aws_kms.IKey", key="alias/platform"),
        refused("an aws_ec2.IVpc", vpc=None),
        refused("an aws_ec2.IVpc", vpc="vpc-0123456789abcdef0"),
    ],
)
def test_bad_rotating_db_secret_props(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^RotatingDbSecret 'Test/Db': {message}"):
        RotatingDbSecret(stack, "Db", **{"key": key, "vpc": vpc, **props})


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused("DbEngine", engine="postgres"),
        refused("DbEngine", engine=("postgres", 5432)),
        refused("DbRotation", rotation="single-user"),
        refused("DbRotation", rotation={"master_secret": None}),
        refused("RemovalPolicy", removal_policy="retain"),
        refused("RetentionDays", log_retention=365),
    ],
)
def test_rotating_db_secret_wrong_types_are_type_errors(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=f"^RotatingDbSecret 'Test/Db': {message}"):
        RotatingDbSecret(stack, "Db", key=key, vpc=vpc, **props)


def test_a_wrong_type_is_raised_before_value_problems(stack: Stack, key: kms.IKey) -> None:
    # GIVEN a wrong type and bad values in one call
    # THEN the TypeError comes first, alone: the values are judged once the types are right
    with pytest.raises(TypeError, match=r"^RotatingDbSecret 'Test/Db': engine='mysql'"):
        RotatingDbSecret(stack, "Db", key=key, vpc=None, engine="mysql", port=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("master_secret", [None, "arn:aws:secretsmanager:us-east-1:1:secret:m"])
def test_alternating_users_needs_a_secret(master_secret: object) -> None:
    with pytest.raises(TypeError, match=f"^DbRotation: {bad('master_secret', master_secret, '')}"):
        DbRotation.alternating_users(master_secret)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "props",
    [
        {"port": 1150},
        {"port": 65535},
        {"rotate_every": Duration.hours(4)},
        {"rotate_every": Duration.minutes(240)},
        {"rotate_every": Duration.days(1000)},
        {"username": "u" * 63, "dbname": "d"},
        {"username": "Admin_2", "dbname": "Trading_2"},
        {"host": "10.0.0.5"},
        {"host": "trading.cluster-abc123.us-east-1.rds.amazonaws.com"},
        {"secret_name": "trading/db+admin=1@prod.v2_-"},
        {"secret_name": "s" * 512},
        {"engine": DbEngine.POSTGRES, "rotation": DbRotation.single_user()},
        {"reserved_concurrency": 1},
        {"reserved_concurrency": 1000},
        {"log_retention": logs.RetentionDays.INFINITE},
    ],
)
def test_rotating_db_secret_edge_values_pass(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, props: dict[str, Any]
) -> None:
    secret = RotatingDbSecret(stack, "Db", key=key, vpc=vpc, **props)
    assert secret.port == props.get("port", secret.engine.default_port)


def test_alternating_users_pass_for_postgres(stack: Stack, key: kms.IKey, vpc: ec2.IVpc) -> None:
    master = sm.Secret(stack, "Master", encryption_key=key)
    rotation = DbRotation.alternating_users(master)
    secret = RotatingDbSecret(stack, "Db", key=key, vpc=vpc, username="u" * 57, rotation=rotation)
    assert secret.engine is DbEngine.POSTGRES
    # the secret names its master, where the rotation function looks for it
    generator = stack.resolve(secret.secret.node.default_child.generate_secret_string)  # type: ignore[union-attr]
    assert {"Ref": stack.get_logical_id(master.node.default_child)} in generator[
        "secretStringTemplate"
    ]["Fn::Join"][1]


def test_alternating_users_leave_room_for_the_clone_suffix(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc
) -> None:
    rotation = DbRotation.alternating_users(sm.Secret(stack, "Master", encryption_key=key))
    message = bad("username", "u" * 58, "at most 57 characters with alternating users")
    with pytest.raises(ValueError, match=f"^RotatingDbSecret 'Test/Db': {message}"):
        RotatingDbSecret(stack, "Db", key=key, vpc=vpc, username="u" * 58, rotation=rotation)


CONCURRENCY = "an integer from 1 to 1000"
BAD_CONCURRENCY = [0, -1, 1001, True, 2.5, "1", float("nan")]


@pytest.mark.parametrize("value", BAD_CONCURRENCY, ids=repr)
@pytest.mark.parametrize("construct", [RotatingDbSecret, ApiKeySecret], ids=lambda c: c.__name__)
def test_bad_reserved_concurrency(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, construct: Any, value: object
) -> None:
    message = bad("reserved_concurrency", value, CONCURRENCY)
    with pytest.raises(ValueError, match=f"^{construct.__name__} 'Test/Id': {message}"):
        construct(stack, "Id", key=key, vpc=vpc, reserved_concurrency=value)


@pytest.mark.parametrize("construct", [RotatingDbSecret, ApiKeySecret], ids=lambda c: c.__name__)
def test_reserved_concurrency_is_opt_in(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, construct: Any
) -> None:
    # GIVEN no reserved_concurrency  THEN none is reserved (new accounts: 10, all unreserved)
    default = construct(stack, "Default", key=key, vpc=vpc).function.node.default_child
    assert default.reserved_concurrent_executions is None
    # GIVEN a number or a token  THEN the function reserves it
    chosen = construct(stack, "Chosen", key=key, vpc=vpc, reserved_concurrency=2)
    assert chosen.function.node.default_child.reserved_concurrent_executions == 2
    token = Token.as_number(Fn.import_value("Concurrency"))
    imported = construct(stack, "Imported", key=key, vpc=vpc, reserved_concurrency=token)
    resolved = stack.resolve(imported.function.node.default_child.reserved_concurrent_executions)
    assert resolved == {"Fn::ImportValue": "Concurrency"}


@pytest.mark.parametrize("construct", [RotatingDbSecret, ApiKeySecret], ids=lambda c: c.__name__)
def test_secrets_and_logs_are_kept_except_after_a_failed_first_create(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, construct: Any
) -> None:
    # GIVEN the default removal policy
    built = construct(stack, "Id", key=key, vpc=vpc)
    # THEN the secret and the rotation log group are RetainExceptOnCreate (a failed first
    # create rolls back to nothing; once created they are never deleted or replaced with data)
    logs_group = built.node.find_child("RotationLogs")
    for resource in (built.secret.node.default_child, logs_group.node.default_child):
        options = resource.cfn_options
        assert options.deletion_policy.value == "RETAIN_EXCEPT_ON_CREATE"
        assert options.update_replace_policy.value == "RETAIN"


# -- ApiKeySecret --------------------------------------------------------------------------

PROVIDER = "1 to 64 of A-Z a-z 0-9 . _ -"
KEY_LENGTH = "an integer from 32 to 4096"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(PROVIDER, provider="market data"),
        refused(PROVIDER, provider="market/data"),
        refused(PROVIDER, provider=""),
        refused(PROVIDER, provider="p" * 65),
        refused(PROVIDER, provider=None),
        refused(KEY_LENGTH, key_length=31),
        refused(KEY_LENGTH, key_length=4097),
        refused(KEY_LENGTH, key_length=True),
        refused(KEY_LENGTH, key_length=48.0),
        refused(INTERVAL, rotate_every=Duration.hours(1)),
        refused(INTERVAL, rotate_every=Duration.days(1001)),
        refused("an aws_cdk.Duration", rotate_every="90 days"),
        refused("whole", id="rotate-every-fractional-hours", rotate_every=Duration.minutes(270)),
        refused(SECRET_NAME, secret_name="api key!"),
        refused(SECRET_NAME, secret_name="s" * 513),
        refused("an aws_kms.IKey", key=None),
        refused("an aws_ec2.IVpc", vpc=None),
    ],
)
def test_bad_api_key_secret_props(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^ApiKeySecret 'Test/ApiKey': {message}"):
        ApiKeySecret(stack, "ApiKey", **{"key": key, "vpc": vpc, **props})


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused("RetentionDays", log_retention=365),
        refused("RetentionDays", log_retention="ONE_YEAR"),
        refused("RemovalPolicy", removal_policy="destroy"),
    ],
)
def test_api_key_secret_wrong_types_are_type_errors(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=f"^ApiKeySecret 'Test/ApiKey': {message}"):
        ApiKeySecret(stack, "ApiKey", key=key, vpc=vpc, **props)


@pytest.mark.parametrize(
    "props",
    [
        {"key_length": 32, "rotate_every": Duration.hours(4)},
        {"key_length": 4096, "rotate_every": Duration.days(1000)},
        {"provider": "p" * 64, "log_retention": logs.RetentionDays.INFINITE},
        {"provider": "Market.Data_v2-eu", "removal_policy": RemovalPolicy.DESTROY},
    ],
)
def test_api_key_secret_edge_values_pass(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, props: dict[str, Any]
) -> None:
    secret = ApiKeySecret(stack, "ApiKey", key=key, vpc=vpc, **props)
    assert secret.function.node.id == "RotationFunction"


# -- every construct -----------------------------------------------------------------------


def test_all_problems_of_one_call_are_reported_together(stack: Stack) -> None:
    # WHEN one call breaks eight rules
    with pytest.raises(ValueError) as raised:
        RotatingDbSecret(
            stack,
            "Db",
            key=None,  # type: ignore[arg-type]
            vpc=None,  # type: ignore[arg-type]
            username="admin",
            dbname="1trading",
            port=80,
            host="db host",
            rotate_every=Duration.hours(1),
            secret_name="trading db",
        )
    # THEN one error lists them all, in the order of the props
    first, problems = problem_lines(raised.value)
    assert first == "RotatingDbSecret 'Test/Db': 8 invalid props:"
    assert problems == [
        "  - key=None",
        "  - vpc=None",
        "  - dbname='1trading'",
        "  - username='admin'",
        "  - port=80",
        "  - host='db host'",
        "  - rotate_every='1 hour'",
        "  - secret_name='trading db'",
    ]


@pytest.mark.parametrize(
    ("build", "count"),
    [
        (
            lambda s: ScannedRepository(
                s, "Id", key=None, repository_name="Bad_", keep_last_images=0
            ),
            3,
        ),
        (lambda s: PullThroughCache(s, "Id", key=None, prefix="x", keep_last_images=2000), 3),
        (
            lambda s: ApiKeySecret(
                s, "Id", key=None, vpc=None, provider="", key_length=8, secret_name="a b"
            ),
            5,
        ),
    ],
    ids=["ScannedRepository", "PullThroughCache", "ApiKeySecret"],
)
def test_every_construct_collects_its_problems(stack: Stack, build: Any, count: int) -> None:
    with pytest.raises(ValueError, match=rf"^\w+ 'Test/Id': {count} invalid props:\n  - "):
        build(stack)


def test_unresolved_tokens_are_left_to_cloudformation(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc
) -> None:
    # GIVEN names, endpoints and numbers only known at deploy time
    # WHEN they reach the props  THEN nothing is rejected at synth time
    ScannedRepository(stack, "Repo", key=key, repository_name=token_string("RepoName"))
    PullThroughCache(stack, "Cache", key=key, prefix=token_string("Prefix"))
    RegistryScanning(stack, "Scanning", repository_filter=token_string("Filter"))
    secret = RotatingDbSecret(
        stack,
        "Db",
        key=key,
        vpc=vpc,
        username=token_string("User"),
        dbname=token_string("DbName"),
        host=token_string("Host"),
        port=Token.as_number(Fn.import_value("Port")),
        secret_name=token_string("DbSecretName"),
    )
    ApiKeySecret(
        stack,
        "ApiKey",
        key=key,
        vpc=vpc,
        provider=token_string("Provider"),
        key_length=Token.as_number(Fn.import_value("KeyLength")),
        secret_name=token_string("ApiSecretName"),
    )
    assert Token.is_unresolved(secret.port)


def test_a_token_repository_name_reaches_the_template(stack: Stack, key: kms.IKey) -> None:
    repository = ScannedRepository(
        stack, "Repo", key=key, repository_name=token_string("RepoName")
    ).repository
    # THEN CloudFormation gets the import, not a placeholder the check let through
    # (resolved on the L1 resource: a full synthesis would cost seconds for the same proof)
    resource = repository.node.default_child
    assert isinstance(resource, ecr.CfnRepository)
    assert stack.resolve(resource.repository_name) == {"Fn::ImportValue": "RepoName"}
