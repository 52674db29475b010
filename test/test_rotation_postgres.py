"""The PostgreSQL rotation handler against a real PostgreSQL 15 (TLS only, SCRAM) and moto's
Secrets Manager, and the asset it is shipped in.

Rotations are driven as in ``test_rotation_api_key.py``: moto's ``RotateSecret`` plays the
service (it registers a value-less AWSPENDING version, then invokes the function once per step,
stopping at the first step that fails) and each ``Invoke`` runs ``postgres.handler`` in-process.
A test that needs the service to stop before a step uses ``halt_before`` and then calls the
handler itself with the recorded token, as the service does when it retries.

Single user: once ``setSecret`` has changed the password, only the pending password logs in
until ``finishSecret`` makes it current; that window is the single-user strategy's, in AWS's
template too. So a failure *before* the password changes must leave AWSCURRENT logging in, and a
failure after it must leave the rotation completable by a retry. Alternating users never touch
the current user: AWSCURRENT logs in whatever step fails.
"""

from __future__ import annotations

import io
import json
import secrets
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pg8000.native
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends
from postgres_server import PostgresServer, _write_certificates
from validation_support import fake_aws

from trading_constructs.assets import POSTGRES_ROTATION
from trading_constructs.handlers.postgres_rotation import postgres as rotation

REGION = "us-east-1"
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]


class RotationHalted(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


@dataclass
class FakeLambdaRuntime:
    """Stands in for the Lambda service: runs ``rotation.handler`` for each step moto invokes."""

    events: list[dict[str, str]] = field(default_factory=list)
    halt_before: str | None = None
    before_step: dict[str, Callable[[str], None]] = field(default_factory=dict)
    deliveries: int = 1

    def invoke(self, function_name: str, qualifier: str | None, body: str, **_: Any) -> bytes:
        event = json.loads(body)
        if event["Step"] == self.halt_before:
            raise RotationHalted(event["ClientRequestToken"])
        hook = self.before_step.get(event["Step"])
        if hook is not None:
            hook(event["ClientRequestToken"])
        for _ in range(self.deliveries):
            self.events.append(event)
            rotation.handler(event, None)
        return b""

    @property
    def steps(self) -> list[str]:
        return [event["Step"] for event in self.events]

    @property
    def token(self) -> str:
        tokens = {event["ClientRequestToken"] for event in self.events}
        assert len(tokens) == 1, tokens
        return tokens.pop()


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer) -> Iterator[None]:
    fake_aws(
        monkeypatch,
        REGION,
        "ROTATION_STRATEGY",
        "MASTER_SECRET_ARN",
        "PASSWORD_LENGTH",
        "EXCLUDE_CHARACTERS",
        "SECRETS_MANAGER_ENDPOINT",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    )
    # the test server's CA stands in for the runtime's trust store with the Amazon RDS CAs
    monkeypatch.setenv("DB_CA_FILE", str(postgres.ca_file))
    rotation._client.cache_clear()
    yield
    rotation._client.cache_clear()


@pytest.fixture(scope="module")
def moto() -> Iterator[None]:
    """moto for the whole module: starting it loads every service's model, which cost most
    of each test; the rotation function (IAM role, Lambda) is made once in it."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def sm(moto: None) -> Iterator[Any]:
    """Secrets Manager, empty for each test."""
    yield boto3.client("secretsmanager", region_name=REGION)
    secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].reset()


@pytest.fixture(scope="module")
def function_arn(moto: None) -> str:
    role_arn = boto3.client("iam", region_name=REGION).create_role(
        RoleName="postgres-rotation",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("postgres.py", "")
    return str(
        boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="postgres-rotation",
            Runtime="python3.14",
            Role=role_arn,
            Handler="postgres.handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
    )


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> FakeLambdaRuntime:
    fake = FakeLambdaRuntime()
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", fake.invoke)
    return fake


@dataclass
class Database:
    """A fresh login role with its own database, and its secret in moto."""

    server: PostgresServer
    username: str
    password: str
    secret_name: str
    value: dict[str, Any]


def _create_role(server: PostgresServer, name: str, password: str, *extra: str) -> None:
    admin = server.connect()
    try:
        admin.run(
            f"CREATE ROLE {pg8000.native.identifier(name)} WITH LOGIN {' '.join(extra)} "
            f"PASSWORD {pg8000.native.literal(password)}"
        )
    finally:
        admin.close()


def _secret_value(server: PostgresServer, username: str, password: str) -> dict[str, Any]:
    return {
        "engine": "postgres",
        "host": server.host,
        "port": server.port,
        "dbname": "postgres",
        "username": username,
        "password": password,
        "note": "kept as it is",
    }


@pytest.fixture
def database(sm: Any, postgres: PostgresServer) -> Database:
    username = f"trader_{uuid.uuid4().hex[:12]}"
    password = secrets.token_urlsafe(24)
    _create_role(postgres, username, password)
    name = f"trading/{username}"
    value = _secret_value(postgres, username, password)
    sm.create_secret(Name=name, SecretString=json.dumps(value))
    return Database(postgres, username, password, name, value)


@pytest.fixture
def master(sm: Any, postgres: PostgresServer) -> str:
    """A master secret: a role that may create roles, as an RDS master user."""
    username = f"master_{uuid.uuid4().hex[:12]}"
    password = secrets.token_urlsafe(24)
    _create_role(postgres, username, password, "CREATEROLE")
    name = f"trading/{username}"
    value = _secret_value(postgres, username, password)
    return str(sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])


@pytest.fixture
def alternating(
    sm: Any, database: Database, master: str, monkeypatch: pytest.MonkeyPatch
) -> Database:
    """The database secret, rotated with alternating users under ``master``."""
    monkeypatch.setenv("ROTATION_STRATEGY", "alternating-users")
    monkeypatch.setenv("MASTER_SECRET_ARN", master)
    admin = database.server.connect()
    try:  # the master user administers the user it clones, as on RDS
        admin.run(
            f"GRANT {pg8000.native.identifier(database.username)} TO "
            f"{pg8000.native.identifier(_secret(sm, master)['username'])} WITH ADMIN OPTION"
        )
    finally:
        admin.close()
    database.value["masterarn"] = master
    sm.put_secret_value(SecretId=database.secret_name, SecretString=json.dumps(database.value))
    return database


# --- Helpers ----------------------------------------------------------------------------------


def rotate(sm: Any, function_arn: str, database: Database) -> None:
    sm.rotate_secret(
        SecretId=database.secret_name,
        RotationLambdaARN=function_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
    )


def start_rotation(
    sm: Any, function_arn: str, runtime: FakeLambdaRuntime, database: Database, before: str
) -> str:
    runtime.halt_before = before
    with pytest.raises(RotationHalted) as halted:
        rotate(sm, function_arn, database)
    runtime.halt_before = None
    return halted.value.token


def call(token: str, step: str, database: Database) -> None:
    rotation.handler(
        {"SecretId": database.secret_name, "ClientRequestToken": token, "Step": step}, None
    )


def _secret(sm: Any, name: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    return dict(json.loads(sm.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]))


def at_stage(sm: Any, database: Database, stage: str) -> dict[str, Any]:
    return _secret(sm, database.secret_name, stage)


def stages(sm: Any, database: Database) -> dict[str, list[str]]:
    versions = sm.describe_secret(SecretId=database.secret_name)["VersionIdsToStages"]
    return {version: sorted(labels) for version, labels in versions.items()}


def logs_in(server: PostgresServer, credentials: dict[str, Any]) -> bool:
    """Whether the credentials log in over verified TLS (the fixture's own client)."""
    try:
        connection = server.connect(user=credentials["username"], password=credentials["password"])
    except pg8000.native.DatabaseError as error:
        assert error.args[0]["C"] == "28P01", error.args[0]
        return False
    connection.run("SELECT 1")
    connection.close()
    return True


def stored_password(server: PostgresServer, username: str) -> str:
    admin = server.connect()
    try:
        ((verifier,),) = admin.run(
            "SELECT rolpassword FROM pg_authid WHERE rolname = :name", name=username
        )
    finally:
        admin.close()
    return str(verifier)


def members_of(server: PostgresServer, role: str) -> list[str]:
    admin = server.connect()
    try:
        rows = admin.run(
            "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
            "JOIN pg_roles m ON m.oid = a.member WHERE r.rolname = :name ORDER BY 1",
            name=role,
        )
    finally:
        admin.close()
    return [str(row[0]) for row in rows]


@pytest.fixture
def wrong_ca(tmp_path: Path) -> Path:
    """A CA that did not sign the server's certificate."""
    return _write_certificates(tmp_path)


# --- Single user: a whole rotation ------------------------------------------------------------


def test_rotation_changes_the_password_over_tls(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a user whose AWSCURRENT password logs in
    old = at_stage(sm, database, "AWSCURRENT")
    assert logs_in(database.server, old)

    # WHEN Secrets Manager rotates the secret with the function
    rotate(sm, function_arn, database)

    # THEN the four steps ran once each, and AWSCURRENT holds a new password for the same user
    assert runtime.steps == STEPS
    new = at_stage(sm, database, "AWSCURRENT")
    assert new["username"] == database.username
    assert new["password"] != old["password"]
    assert len(new["password"]) == 32
    assert {k: v for k, v in new.items() if k != "password"} == {
        k: v for k, v in old.items() if k != "password"
    }
    # AND the new password logs in over verified TLS while the old one no longer does
    assert logs_in(database.server, new)
    assert not logs_in(database.server, old)
    # AND AWSPREVIOUS is the old value; no AWSPENDING is left
    assert at_stage(sm, database, "AWSPREVIOUS") == old
    assert sorted(label for labels in stages(sm, database).values() for label in labels) == [
        "AWSCURRENT",
        "AWSPREVIOUS",
    ]


def test_the_server_stores_a_scram_verifier_not_the_password(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    rotate(sm, function_arn, database)
    new = at_stage(sm, database, "AWSCURRENT")
    verifier = stored_password(database.server, database.username)
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert new["password"] not in verifier


def test_two_rotations_in_a_row(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    rotate(sm, function_arn, database)
    first = at_stage(sm, database, "AWSCURRENT")
    runtime.events.clear()
    rotate(sm, function_arn, database)
    second = at_stage(sm, database, "AWSCURRENT")
    assert at_stage(sm, database, "AWSPREVIOUS") == first
    assert logs_in(database.server, second)
    assert not logs_in(database.server, first)


# --- Idempotency ------------------------------------------------------------------------------


def test_every_step_delivered_twice_still_rotates_once(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN at-least-once delivery: every step runs twice
    runtime.deliveries = 2
    old = at_stage(sm, database, "AWSCURRENT")
    rotate(sm, function_arn, database)
    # THEN the end state is that of one rotation
    assert runtime.steps == [step for step in STEPS for _ in range(2)]
    new = at_stage(sm, database, "AWSCURRENT")
    assert at_stage(sm, database, "AWSPREVIOUS") == old
    assert logs_in(database.server, new)
    assert len(stages(sm, database)) == 2


def test_repeated_steps_after_set_secret_change_nothing(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a rotation stopped after setSecret changed the password
    token = start_rotation(sm, function_arn, runtime, database, before="testSecret")
    pending = json.loads(
        sm.get_secret_value(
            SecretId=database.secret_name, VersionId=token, VersionStage="AWSPENDING"
        )["SecretString"]
    )
    verifier = stored_password(database.server, database.username)
    # WHEN createSecret and setSecret run again for the same token
    call(token, "createSecret", database)
    call(token, "setSecret", database)
    # THEN the pending value and the stored password are those of the first run
    again = sm.get_secret_value(
        SecretId=database.secret_name, VersionId=token, VersionStage="AWSPENDING"
    )
    assert json.loads(again["SecretString"]) == pending
    assert stored_password(database.server, database.username) == verifier
    # AND the service's retry completes the rotation
    call(token, "testSecret", database)
    call(token, "finishSecret", database)
    call(token, "finishSecret", database)
    assert at_stage(sm, database, "AWSCURRENT") == pending
    assert logs_in(database.server, pending)


# --- Failures ---------------------------------------------------------------------------------


def test_a_failed_create_secret_leaves_current_working(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    old = at_stage(sm, database, "AWSCURRENT")
    client = rotation._client()

    def failing(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "x"}}, "Put")

    with (
        mock.patch.object(client, "put_secret_value", failing),
        pytest.raises(ClientError),
    ):
        rotate(sm, function_arn, database)
    assert runtime.steps == ["createSecret"]
    assert at_stage(sm, database, "AWSCURRENT") == old
    assert logs_in(database.server, old)


def test_a_wrong_ca_fails_set_secret_and_current_keeps_working(
    sm: Any,
    database: Database,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
    wrong_ca: Path,
) -> None:
    # GIVEN a CA bundle that did not sign the server's certificate
    old = at_stage(sm, database, "AWSCURRENT")
    runtime.before_step["setSecret"] = lambda _token: monkeypatch.setenv(
        "DB_CA_FILE", str(wrong_ca)
    )
    # WHEN the secret is rotated  THEN setSecret fails on the TLS verification, not on a password
    with pytest.raises(ValueError, match=r"TLS verification of 127\.0\.0\.1:\d+ failed"):
        rotate(sm, function_arn, database)
    assert runtime.steps == ["createSecret", "setSecret"]
    # AND the password is unchanged: AWSCURRENT still logs in
    assert at_stage(sm, database, "AWSCURRENT") == old
    assert logs_in(database.server, old)


def test_without_db_ca_file_tls_is_verified_against_the_shipped_rds_cas(
    sm: Any,
    database: Database,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the function as the construct ships it, minus DB_CA_FILE: its default is the
    # Amazon RDS root CAs beside the handler, not the Lambda runtime's trust store
    assert Path(rotation.DEFAULT_CA_FILE) == Path(rotation.__file__).with_name("rds-ca-bundle.pem")
    old = at_stage(sm, database, "AWSCURRENT")
    runtime.before_step["setSecret"] = lambda _token: monkeypatch.delenv("DB_CA_FILE")
    # WHEN it rotates against a server whose certificate no RDS CA signed (the test server's)
    # THEN it refuses the TLS verification, naming the bundle it used, and changes nothing
    with pytest.raises(ValueError, match=r"TLS verification of .* failed .*rds-ca-bundle\.pem"):
        rotate(sm, function_arn, database)
    assert at_stage(sm, database, "AWSCURRENT") == old
    assert logs_in(database.server, old)


def test_the_shipped_bundle_is_the_g1_roots_of_every_region_it_names() -> None:
    # GIVEN the bundle in the asset  THEN it holds the RSA2048, RSA4096 and ECC384 G1 roots of
    # each Region the construct says it covers (rds-ca-rsa2048-g1 is new clusters' default),
    # each valid for decades, and nothing else
    import ssl

    from trading_constructs.secret import RDS_CA_BUNDLE, RDS_CA_REGIONS

    assert RDS_CA_BUNDLE in POSTGRES_ROTATION.files()
    bundle = Path(rotation.DEFAULT_CA_FILE)
    context = ssl.create_default_context(cafile=str(bundle))
    names = sorted(
        dict(part[0] for part in cert["subject"])["commonName"] for cert in context.get_ca_certs()
    )
    assert names == sorted(
        f"Amazon RDS {region} Root CA {kind} G1"
        for region in RDS_CA_REGIONS
        for kind in ("RSA2048", "RSA4096", "ECC384")
    )
    years = [int(cert["notAfter"].split()[-2]) for cert in context.get_ca_certs()]
    assert len(years) == len(names) and min(years) >= 2061


@pytest.mark.parametrize("failing_step", ["testSecret", "finishSecret"])
def test_a_failure_after_set_secret_is_completed_by_the_retry(
    sm: Any,
    database: Database,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
    wrong_ca: Path,
    failing_step: str,
) -> None:
    old = at_stage(sm, database, "AWSCURRENT")
    good_ca = str(database.server.ca_file)
    if failing_step == "testSecret":
        runtime.before_step["testSecret"] = lambda _t: monkeypatch.setenv(
            "DB_CA_FILE", str(wrong_ca)
        )
        expected: type[Exception] = ValueError
    else:
        failure = ClientError({"Error": {"Code": "InternalServiceError", "Message": "x"}}, "U")
        runtime.before_step["finishSecret"] = lambda _t: monkeypatch.setattr(
            rotation._client(), "update_secret_version_stage", mock.Mock(side_effect=failure)
        )
        expected = ClientError
    with pytest.raises(expected):
        rotate(sm, function_arn, database)
    token = runtime.token
    # THEN AWSCURRENT still names the old version
    assert at_stage(sm, database, "AWSCURRENT") == old
    # WHEN the cause clears and the service retries every step with the same token
    monkeypatch.setenv("DB_CA_FILE", good_ca)
    rotation._client.cache_clear()
    for step in STEPS:
        call(token, step, database)
    # THEN the rotation completes and the new password logs in
    new = at_stage(sm, database, "AWSCURRENT")
    assert new["password"] != old["password"]
    assert logs_in(database.server, new)


def test_a_password_changed_outside_the_rotation_stops_set_secret(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    admin = database.server.connect()
    try:
        admin.run(
            f"ALTER ROLE {pg8000.native.identifier(database.username)} "
            f"PASSWORD {pg8000.native.literal(secrets.token_urlsafe(24))}"
        )
    finally:
        admin.close()
    with pytest.raises(ValueError, match="Neither the AWSCURRENT nor the AWSPREVIOUS"):
        rotate(sm, function_arn, database)
    assert runtime.steps == ["createSecret", "setSecret"]


def test_a_secret_of_another_engine_is_refused_before_any_write(
    sm: Any, database: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    sm.put_secret_value(
        SecretId=database.secret_name,
        SecretString=json.dumps({**database.value, "engine": "mysql"}),
    )
    with pytest.raises(ValueError, match="engine is 'mysql'"):
        rotate(sm, function_arn, database)
    assert len(stages(sm, database)) == 3  # initial, mysql (current), value-less pending


def test_an_unknown_step_or_strategy_is_rejected(
    sm: Any, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="Invalid step"):
        call(str(uuid.uuid4()), "deleteSecret", database)
    monkeypatch.setenv("ROTATION_STRATEGY", "round-robin")
    with pytest.raises(ValueError, match="ROTATION_STRATEGY"):
        call(str(uuid.uuid4()), "createSecret", database)


# --- Logs -------------------------------------------------------------------------------------


def test_no_password_reaches_the_logs(
    sm: Any,
    alternating: Database,
    master: str,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
    wrong_ca: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN two rotations with alternating users, the second failing at setSecret
    rotate(sm, function_arn, alternating)
    runtime.events.clear()
    runtime.before_step["setSecret"] = lambda _t: monkeypatch.setenv("DB_CA_FILE", str(wrong_ca))
    with pytest.raises(ValueError):
        rotate(sm, function_arn, alternating)
    # THEN every line is JSON with a level and the step
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    assert lines and all(line["level"] in {"INFO", "ERROR"} and line["step"] for line in lines)
    # AND no password of any version or of the master secret appears anywhere
    passwords = {
        json.loads(sm.get_secret_value(SecretId=name, VersionId=version)["SecretString"])[
            "password"
        ]
        for name in (alternating.secret_name, master)
        for version in sm.describe_secret(SecretId=name)["VersionIdsToStages"]
        if _has_value(sm, name, version)
    }
    assert len(passwords) >= 4
    for text in (captured.out, captured.err, caplog.text):
        for password in passwords:
            assert password not in text


def _has_value(sm: Any, name: str, version: str) -> bool:
    try:
        sm.get_secret_value(SecretId=name, VersionId=version)
    except ClientError:
        return False
    return True


# --- Alternating users ------------------------------------------------------------------------


def test_alternating_users_creates_the_clone_and_leaves_the_user_alone(
    sm: Any, alternating: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    old = at_stage(sm, alternating, "AWSCURRENT")
    # WHEN the secret is rotated with alternating users
    rotate(sm, function_arn, alternating)
    # THEN AWSCURRENT names <user>_clone with a new password that logs in
    new = at_stage(sm, alternating, "AWSCURRENT")
    assert new["username"] == f"{alternating.username}_clone"
    assert logs_in(alternating.server, new)
    # AND the clone is a member of the user, so it has the user's privileges
    assert members_of(alternating.server, alternating.username)[-1:] == [new["username"]]
    # AND the original user, and its password, still work (AWSPREVIOUS)
    assert logs_in(alternating.server, old)
    assert at_stage(sm, alternating, "AWSPREVIOUS") == old


def test_alternating_users_switch_back_on_the_next_rotation(
    sm: Any, alternating: Database, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    old = at_stage(sm, alternating, "AWSCURRENT")
    rotate(sm, function_arn, alternating)
    clone = at_stage(sm, alternating, "AWSCURRENT")
    runtime.events.clear()
    rotate(sm, function_arn, alternating)
    back = at_stage(sm, alternating, "AWSCURRENT")
    assert back["username"] == alternating.username
    assert back["password"] != old["password"]
    assert logs_in(alternating.server, back)
    assert not logs_in(alternating.server, old)
    assert logs_in(alternating.server, clone)  # the clone keeps working until its next turn


@pytest.mark.parametrize("failing_step", STEPS)
def test_alternating_users_keep_current_working_whatever_step_fails(
    sm: Any,
    alternating: Database,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
    wrong_ca: Path,
    failing_step: str,
) -> None:
    old = at_stage(sm, alternating, "AWSCURRENT")
    runtime.before_step[failing_step] = _failure(failing_step, monkeypatch, wrong_ca)
    with pytest.raises((ValueError, ClientError)):
        rotate(sm, function_arn, alternating)
    assert runtime.steps[-1] == failing_step
    assert at_stage(sm, alternating, "AWSCURRENT") == old
    assert logs_in(alternating.server, old)


def _failure(step: str, monkeypatch: pytest.MonkeyPatch, wrong_ca: Path) -> Callable[[str], None]:
    error = ClientError({"Error": {"Code": "InternalServiceError", "Message": "x"}}, "Call")
    if step == "createSecret":
        return lambda _t: monkeypatch.setattr(
            rotation._client(), "put_secret_value", mock.Mock(side_effect=error)
        )
    if step == "finishSecret":
        return lambda _t: monkeypatch.setattr(
            rotation._client(), "update_secret_version_stage", mock.Mock(side_effect=error)
        )
    return lambda _t: monkeypatch.setenv("DB_CA_FILE", str(wrong_ca))


def test_a_master_secret_other_than_the_functions_is_refused(
    sm: Any,
    alternating: Database,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MASTER_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:other")
    with pytest.raises(ValueError, match="names master secret"):
        rotate(sm, function_arn, alternating)
    assert runtime.steps == ["createSecret", "setSecret"]


def _clone_exists(server: PostgresServer, name: str, *extra: str, member_of: str = "") -> str:
    """A login role named like the alternate; a member of ``member_of`` if given."""
    password = secrets.token_urlsafe(24)
    _create_role(server, name, password, *extra)
    if member_of:
        admin = server.connect()
        try:
            admin.run(
                f"GRANT {pg8000.native.identifier(member_of)} TO {pg8000.native.identifier(name)}"
            )
        finally:
            admin.close()
    return stored_password(server, name)


@pytest.mark.parametrize(
    ("extra", "member", "refusal"),
    [
        ((), False, "is not the pair of"),
        (("SUPERUSER",), True, "holds SUPERUSER"),
        (("BYPASSRLS",), True, "holds BYPASSRLS"),
    ],
    ids=["not-a-member", "superuser", "bypassrls"],
)
def test_alternating_users_refuse_to_reset_a_role_that_is_not_the_pair(
    sm: Any,
    alternating: Database,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    extra: tuple[str, ...],
    member: bool,
    refusal: str,
) -> None:
    # GIVEN a role with the alternate's name that is not a member of the user, or is privileged
    clone = f"{alternating.username}_clone"
    before = _clone_exists(
        alternating.server, clone, *extra, member_of=alternating.username if member else ""
    )
    old = at_stage(sm, alternating, "AWSCURRENT")
    # WHEN the secret is rotated
    with pytest.raises(ValueError, match=refusal) as refused:
        rotate(sm, function_arn, alternating)
    # THEN setSecret refused, naming the users, and changed nothing
    assert runtime.steps == ["createSecret", "setSecret"]
    assert clone in str(refused.value)
    assert stored_password(alternating.server, clone) == before
    assert at_stage(sm, alternating, "AWSCURRENT") == old
    assert logs_in(alternating.server, old)


def test_alternating_users_never_reset_the_master_users_password(
    sm: Any,
    master: str,
    postgres: PostgresServer,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a secret naming '<master>_clone', a login member of the master user
    monkeypatch.setenv("ROTATION_STRATEGY", "alternating-users")
    monkeypatch.setenv("MASTER_SECRET_ARN", master)
    master_user = _secret(sm, master)["username"]
    clone = f"{master_user}_clone"
    password = secrets.token_urlsafe(24)
    _clone_exists(postgres, clone, member_of=master_user)
    admin = postgres.connect()
    try:
        admin.run(f"ALTER ROLE {clone} PASSWORD {pg8000.native.literal(password)}")
    finally:
        admin.close()
    value = {**_secret_value(postgres, clone, password), "masterarn": master}
    name = f"trading/{clone}"
    sm.create_secret(Name=name, SecretString=json.dumps(value))
    before = stored_password(postgres, master_user)
    # WHEN it is rotated, the alternate being the master user
    with pytest.raises(ValueError, match="include the master user"):
        rotate(sm, function_arn, Database(postgres, clone, password, name, value))
    # THEN the master user's password is untouched
    assert runtime.steps == ["createSecret", "setSecret"]
    assert stored_password(postgres, master_user) == before


def test_a_name_without_room_for_the_clone_suffix_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 63"):
        rotation._other_user("u" * 58)
    assert rotation._other_user("u" * 57) == "u" * 57 + "_clone"
    assert rotation._other_user("trader_clone") == "trader"


# --- The asset --------------------------------------------------------------------------------


def test_the_asset_holds_the_handler_and_the_driver_and_no_byte_code(tmp_path: Path) -> None:
    folder = POSTGRES_ROTATION.build(root=tmp_path)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "postgres.py" in files
    assert "pg8000/native.py" in files and "scramp/core.py" in files and "six.py" in files
    # importlib.metadata.version() runs at import: each distribution keeps its METADATA
    for name in ("pg8000", "scramp", "asn1crypto", "python_dateutil", "six"):
        assert [f for f in files if f.startswith(f"{name}-") and f.endswith(".dist-info/METADATA")]
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".pyo"))]
    assert not [f for f in files if f.rsplit("/", 1)[-1] in {"RECORD", "INSTALLER", "REQUESTED"}]
    assert not [f for f in files if f.startswith("trading_constructs")]


def test_the_asset_is_the_same_whoever_builds_it(tmp_path: Path) -> None:
    # GIVEN two builds into different folders (two machines, two runs)
    first = POSTGRES_ROTATION.build(root=tmp_path / "a")
    second = POSTGRES_ROTATION.build(root=tmp_path / "b")
    # THEN they carry the same name (the content digest) and the same bytes
    assert first.name == second.name
    assert _tree(first) == _tree(second)
    # AND a third build reuses the folder
    assert POSTGRES_ROTATION.build(root=tmp_path / "a") == first


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_the_bundled_driver_imports_from_the_asset_alone(tmp_path: Path) -> None:
    # GIVEN the asset folder as /var/task, with nothing else of site-packages but boto3
    folder = POSTGRES_ROTATION.build(root=tmp_path)
    import subprocess
    import sys

    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]; import postgres, pg8000, scramp; "
        "assert pg8000.__file__.startswith(sys.argv[1]), pg8000.__file__; "
        "assert scramp.__file__.startswith(sys.argv[1]); print(postgres.handler.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(folder)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "handler"
