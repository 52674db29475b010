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
from validation_support import bad

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
        ({"repository_name": "Trading/svc"}, bad("repository_name", "Trading/svc", NAME_GRAMMAR)),
        ({"repository_name": "-trading"}, bad("repository_name", "-trading", NAME_GRAMMAR)),
        ({"repository_name": "trading_"}, bad("repository_name", "trading_", NAME_GRAMMAR)),
        ({"repository_name": "/trading"}, bad("repository_name", "/trading", NAME_GRAMMAR)),
        ({"repository_name": "trading/"}, bad("repository_name", "trading/", NAME_GRAMMAR)),
        ({"repository_name": "trading--svc"}, bad("repository_name", "trading--svc", NAME_GRAMMAR)),
        ({"repository_name": "trading//svc"}, bad("repository_name", "trading//svc", NAME_GRAMMAR)),
        ({"repository_name": "trading._svc"}, bad("repository_name", "trading._svc", NAME_GRAMMAR)),
        ({"repository_name": "trading svc"}, bad("repository_name", "trading svc", NAME_GRAMMAR)),
        ({"repository_name": 42}, bad("repository_name", 42, NAME_GRAMMAR)),
        ({"repository_name": "a"}, bad("repository_name", "a", "2 to 256 characters")),
        ({"repository_name": "a" * 257}, bad("repository_name", "a" * 257, "2 to 256 characters")),
        ({"keep_last_images": 0}, bad("keep_last_images", 0, "an integer from 1 to 1000")),
        ({"keep_last_images": 1001}, bad("keep_last_images", 1001, "an integer from 1 to 1000")),
        ({"keep_last_images": -5}, bad("keep_last_images", -5, "an integer from 1 to 1000")),
        ({"keep_last_images": True}, bad("keep_last_images", True, "an integer from 1 to 1000")),
        ({"keep_last_images": 2.5}, bad("keep_last_images", 2.5, "an integer from 1 to 1000")),
        ({"keep_last_images": "10"}, bad("keep_last_images", "10", "an integer from 1 to 1000")),
        ({"key": None}, bad("key", None, "an aws_kms.IKey")),
        ({"key": "alias/platform"}, bad("key", "alias/platform", "an aws_kms.IKey")),
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
        ({"removal_policy": "retain"}, bad("removal_policy", "retain", "RemovalPolicy")),
        ({"removal_policy": True}, bad("removal_policy", True, "RemovalPolicy")),
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
        ({"prefix": "ECR-Public"}, bad("prefix", "ECR-Public", PREFIX_GRAMMAR)),
        ({"prefix": "-ecr-public"}, bad("prefix", "-ecr-public", PREFIX_GRAMMAR)),
        ({"prefix": "ecr-public/"}, bad("prefix", "ecr-public/", PREFIX_GRAMMAR)),
        ({"prefix": "ecr__public"}, bad("prefix", "ecr__public", PREFIX_GRAMMAR)),
        ({"prefix": "ecr public"}, bad("prefix", "ecr public", PREFIX_GRAMMAR)),
        ({"prefix": "e"}, bad("prefix", "e", "2 to 30 characters")),
        ({"prefix": "p" * 31}, bad("prefix", "p" * 31, "2 to 30 characters")),
        ({"keep_last_images": 0}, bad("keep_last_images", 0, "an integer from 1 to 1000")),
        ({"keep_last_images": 1001}, bad("keep_last_images", 1001, "an integer from 1 to 1000")),
        ({"keep_last_images": 1.5}, bad("keep_last_images", 1.5, "an integer from 1 to 1000")),
        ({"key": None}, bad("key", None, "an aws_kms.IKey")),
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
        ({"repository_filter": "Trading*"}, bad("repository_filter", "Trading*", FILTER_GRAMMAR)),
        ({"repository_filter": ""}, bad("repository_filter", "", FILTER_GRAMMAR)),
        ({"repository_filter": "-trading*"}, bad("repository_filter", "-trading*", FILTER_GRAMMAR)),
        ({"repository_filter": "trading *"}, bad("repository_filter", "trading *", FILTER_GRAMMAR)),
        ({"repository_filter": "a" * 256}, bad("repository_filter", "a" * 256, FILTER_GRAMMAR)),
        ({"repository_filter": None}, bad("repository_filter", None, FILTER_GRAMMAR)),
        pytest.param(
            {"repository_filter": "trading-"},
            bad("repository_filter", "trading-", FILTER_GRAMMAR),
            id="trailing-separator",
        ),
        pytest.param(
            {"repository_filter": "trading--*"},
            bad("repository_filter", "trading--*", FILTER_GRAMMAR),
            id="double-separator",
        ),
    ],
)
def test_bad_registry_scanning_props(stack: Stack, props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^RegistryScanning 'Test/Scanning': {message}"):
        RegistryScanning(stack, "Scanning", **props)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"scan_type": "ENHANCED"}, bad("scan_type", "ENHANCED", "ScanType")),
        ({"scan_type": True}, bad("scan_type", True, "ScanType")),
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
        ({"username": "1trader"}, bad("username", "1trader", IDENTIFIER)),
        ({"username": "_trader"}, bad("username", "_trader", IDENTIFIER)),
        ({"username": "trading-admin"}, bad("username", "trading-admin", IDENTIFIER)),
        ({"username": "u" * 64}, bad("username", "u" * 64, IDENTIFIER)),
        ({"username": ""}, bad("username", "", IDENTIFIER)),
        ({"username": None}, bad("username", None, IDENTIFIER)),
        ({"username": "admin"}, bad("username", "admin", RESERVED)),
        ({"username": "rdsadmin"}, bad("username", "rdsadmin", RESERVED)),
        ({"username": "postgres"}, bad("username", "postgres", RESERVED)),
        ({"username": "root"}, bad("username", "root", RESERVED)),
        ({"dbname": "1trading"}, bad("dbname", "1trading", IDENTIFIER)),
        ({"dbname": "trading-db"}, bad("dbname", "trading-db", IDENTIFIER)),
        ({"dbname": "trading db"}, bad("dbname", "trading db", IDENTIFIER)),
        ({"dbname": "d" * 64}, bad("dbname", "d" * 64, IDENTIFIER)),
        ({"port": 1149}, bad("port", 1149, PORTS)),
        ({"port": 65536}, bad("port", 65536, PORTS)),
        ({"port": 0}, bad("port", 0, PORTS)),
        ({"port": True}, bad("port", True, PORTS)),
        ({"port": 5432.0}, bad("port", 5432.0, PORTS)),
        ({"host": "db host.example.com"}, bad("host", "db host.example.com", HOST)),
        ({"host": "db_1.example.com"}, bad("host", "db_1.example.com", HOST)),
        ({"host": "fe80::1"}, bad("host", "fe80::1", HOST)),
        ({"host": ""}, bad("host", "", HOST)),
        ({"host": "h" * 254}, bad("host", "h" * 254, HOST)),
        pytest.param(
            {"host": "db..example.com"},
            bad("host", "db..example.com", HOST),
            id="host-empty-label",
        ),
        pytest.param(
            {"host": "-db.example.com"},
            bad("host", "-db.example.com", HOST),
            id="host-leading-hyphen",
        ),
        ({"rotate_every": Duration.hours(3)}, bad("rotate_every", "3 hours", INTERVAL)),
        (
            {"rotate_every": Duration.minutes(239)},
            bad("rotate_every", "3 hours 59 minutes", INTERVAL),
        ),
        ({"rotate_every": Duration.days(0)}, bad("rotate_every", "0 days", INTERVAL)),
        ({"rotate_every": Duration.days(1001)}, bad("rotate_every", "1001 days", INTERVAL)),
        ({"rotate_every": 90}, bad("rotate_every", 90, "an aws_cdk.Duration")),
        ({"rotate_every": "P90D"}, bad("rotate_every", "P90D", "an aws_cdk.Duration")),
        pytest.param(
            {"rotate_every": Duration.minutes(270)},
            bad("rotate_every", "4 hours 30 minutes", "whole"),
            id="rotate-every-fractional-hours",
        ),
        ({"secret_name": "trading db"}, bad("secret_name", "trading db", SECRET_NAME)),
        ({"secret_name": "trading#db"}, bad("secret_name", "trading#db", SECRET_NAME)),
        ({"secret_name": ""}, bad("secret_name", "", SECRET_NAME)),
        ({"secret_name": "s" * 513}, bad("secret_name", "s" * 513, SECRET_NAME)),
        ({"key": None}, bad("key", None, "an aws_kms.IKey")),
        ({"key": "alias/platform"}, bad("key", "alias/platform", "an aws_kms.IKey")),
        ({"vpc": None}, bad("vpc", None, "an aws_ec2.IVpc")),
        ({"vpc": "vpc-0123456789abcdef0"}, bad("vpc", "vpc-0123456789abcdef0", "an aws_ec2.IVpc")),
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
        ({"engine": "postgres"}, bad("engine", "postgres", "DbEngine")),
        ({"engine": ("postgres", 5432)}, bad("engine", ("postgres", 5432), "DbEngine")),
        ({"rotation": "single-user"}, bad("rotation", "single-user", "DbRotation")),
        (
            {"rotation": {"master_secret": None}},
            bad("rotation", {"master_secret": None}, "DbRotation"),
        ),
        ({"removal_policy": "retain"}, bad("removal_policy", "retain", "RemovalPolicy")),
        ({"log_retention": 365}, bad("log_retention", 365, "RetentionDays")),
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


ENGINES_WITHOUT_ROTATION = [engine for engine in DbEngine if engine is not DbEngine.POSTGRES]


@pytest.mark.parametrize("engine", ENGINES_WITHOUT_ROTATION)
def test_engines_left_to_the_hosted_python_3_10_rotation_are_rejected(
    stack: Stack, key: kms.IKey, vpc: ec2.IVpc, engine: DbEngine
) -> None:
    # GIVEN an engine only AWS's hosted rotation (a python3.10 function) could rotate
    # THEN the error names the prop, the value, what is allowed and why
    message = bad("engine", engine, "DbEngine.POSTGRES; the rotation function shipped")
    with pytest.raises(ValueError, match=f"^RotatingDbSecret 'Test/Db': {message}.*python3\\.10"):
        RotatingDbSecret(stack, "Db", key=key, vpc=vpc, engine=engine)


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
        ({"provider": "market data"}, bad("provider", "market data", PROVIDER)),
        ({"provider": "market/data"}, bad("provider", "market/data", PROVIDER)),
        ({"provider": ""}, bad("provider", "", PROVIDER)),
        ({"provider": "p" * 65}, bad("provider", "p" * 65, PROVIDER)),
        ({"provider": None}, bad("provider", None, PROVIDER)),
        ({"key_length": 31}, bad("key_length", 31, KEY_LENGTH)),
        ({"key_length": 4097}, bad("key_length", 4097, KEY_LENGTH)),
        ({"key_length": True}, bad("key_length", True, KEY_LENGTH)),
        ({"key_length": 48.0}, bad("key_length", 48.0, KEY_LENGTH)),
        ({"rotate_every": Duration.hours(1)}, bad("rotate_every", "1 hour", INTERVAL)),
        ({"rotate_every": Duration.days(1001)}, bad("rotate_every", "1001 days", INTERVAL)),
        ({"rotate_every": "90 days"}, bad("rotate_every", "90 days", "an aws_cdk.Duration")),
        pytest.param(
            {"rotate_every": Duration.minutes(270)},
            bad("rotate_every", "4 hours 30 minutes", "whole"),
            id="rotate-every-fractional-hours",
        ),
        ({"secret_name": "api key!"}, bad("secret_name", "api key!", SECRET_NAME)),
        ({"secret_name": "s" * 513}, bad("secret_name", "s" * 513, SECRET_NAME)),
        ({"key": None}, bad("key", None, "an aws_kms.IKey")),
        ({"vpc": None}, bad("vpc", None, "an aws_ec2.IVpc")),
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
        ({"log_retention": 365}, bad("log_retention", 365, "RetentionDays")),
        ({"log_retention": "ONE_YEAR"}, bad("log_retention", "ONE_YEAR", "RetentionDays")),
        ({"removal_policy": "destroy"}, bad("removal_policy", "destroy", "RemovalPolicy")),
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
    first, *problems = str(raised.value).splitlines()
    assert first == "RotatingDbSecret 'Test/Db': 8 invalid props:"
    assert [p.split(" is not allowed (allowed: ")[0] for p in problems] == [
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
