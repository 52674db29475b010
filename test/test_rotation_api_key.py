"""Tests for the API-key rotation handler, against moto's Secrets Manager.

How a rotation is driven
------------------------
In AWS, ``RotateSecret`` does not write a value before calling the function. It registers the
new ``ClientRequestToken`` as a version with the ``AWSPENDING`` label and *no value*, then invokes
the rotation function with ``createSecret``, ``setSecret``, ``testSecret`` and ``finishSecret``,
stopping at the first step that fails (the pending version is left in place and the rotation is
retried later with the same token). That value-less version is why the handler's "token is in
``VersionIdsToStages`` and is ``AWSPENDING``" check passes on ``createSecret``, and why
``createSecret`` sees ``ResourceNotFoundException`` when it looks for a pending value.

moto's ``rotate_secret`` does the same registration (a value-less ``AWSPENDING`` version, rotation
enabled) and then calls ``Invoke`` on its Lambda backend once per step. So the tests let moto's
``RotateSecret`` play the service, with a real Lambda function registered in moto (the no-Docker
"simple" Lambda backend), and route each ``Invoke`` in-process to ``handler``
(``FakeLambdaRuntime``). An exception in the handler propagates out of ``rotate_secret`` and stops
the remaining steps, as a failed step stops a rotation in AWS. A test that needs the rotation to
pause after the service registered the version (or after a step) uses ``halt_before``; it then
calls the handler itself with the recorded token, as the service does when it retries.

The alternatives were less faithful: ``rotate_secret`` without a Lambda ARN makes moto label the
value-less version ``AWSCURRENT`` at once, and ``put_secret_value`` before ``createSecret`` would
give the version a value that the service never writes.

moto also keeps a separate "default version" that ``UpdateSecretVersionStage`` does not move, so
these tests always read values by an explicit ``VersionStage`` or ``VersionId``, as the handler
does.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends
from validation_support import fake_aws

from trading_constructs.handlers.api_key_rotation import api_key

REGION = "us-east-1"
SECRET_NAME = "trading/market-data/api-key"
OLD_KEY = "LegacyKey0123456789abcdefghijklmnopqrstuvwxyzABC"  # 48 chars, valid
INITIAL_VALUE: dict[str, object] = {
    "api_key": OLD_KEY,
    "provider": "example-market-data",
    "account": "acct-42",
    "scopes": ["quotes", "trades"],
}
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]
KEY_PATTERN = re.compile(r"[A-Za-z0-9]+")


class RotationHalted(Exception):
    """Raised by the fake runtime to stop the service's rotation before a step."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


@dataclass
class FakeLambdaRuntime:
    """Stands in for the Lambda service: runs ``handler`` for each step moto invokes."""

    events: list[dict[str, str]] = field(default_factory=list)
    halt_before: str | None = None
    before_step: dict[str, Callable[[str], None]] = field(default_factory=dict)
    deliveries: int = 1  # >1 emulates Lambda's at-least-once delivery

    def invoke(
        self,
        function_name: str,
        qualifier: str | None,
        body: str,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        event = json.loads(body)
        if event["Step"] == self.halt_before:
            raise RotationHalted(event["ClientRequestToken"])
        hook = self.before_step.get(event["Step"])
        if hook is not None:
            hook(event["ClientRequestToken"])
        for _ in range(self.deliveries):
            self.events.append(event)
            api_key.handler(event, None)
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
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_aws(
        monkeypatch,
        REGION,
        "API_KEY_LENGTH",
        "SECRETS_MANAGER_ENDPOINT",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    )
    api_key._client.cache_clear()
    yield
    api_key._client.cache_clear()


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
    iam = boto3.client("iam", region_name=REGION)
    role_arn = iam.create_role(
        RoleName="api-key-rotation",
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
        archive.writestr("api_key.py", "")
    return str(
        boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="api-key-rotation",
            Runtime="python3.12",
            Role=role_arn,
            Handler="api_key.handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
    )


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> FakeLambdaRuntime:
    fake = FakeLambdaRuntime()
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", fake.invoke)
    return fake


@pytest.fixture
def secret(sm: Any) -> str:
    """The secret's ARN; its only version holds INITIAL_VALUE as AWSCURRENT."""
    return str(sm.create_secret(Name=SECRET_NAME, SecretString=json.dumps(INITIAL_VALUE))["ARN"])


# --- Helpers ----------------------------------------------------------------------------------


def rotate(sm: Any, function_arn: str, name: str = SECRET_NAME) -> None:
    """Ask Secrets Manager (moto) to rotate the secret now with the rotation function."""
    sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=function_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
    )


def start_rotation(sm: Any, function_arn: str, runtime: FakeLambdaRuntime, before: str) -> str:
    """Rotate, but stop the service before step ``before``; return the rotation's token."""
    runtime.halt_before = before
    with pytest.raises(RotationHalted) as halted:
        rotate(sm, function_arn)
    runtime.halt_before = None
    return halted.value.token


def call(token: str, step: str, secret_id: str = SECRET_NAME) -> None:
    api_key.handler({"SecretId": secret_id, "ClientRequestToken": token, "Step": step}, None)


def stages(sm: Any, name: str = SECRET_NAME) -> dict[str, list[str]]:
    versions = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    return {version: sorted(labels) for version, labels in versions.items()}


def at_stage(sm: Any, stage: str, name: str = SECRET_NAME) -> tuple[str, dict[str, Any]]:
    response = sm.get_secret_value(SecretId=name, VersionStage=stage)
    return response["VersionId"], json.loads(response["SecretString"])


def pending_value(sm: Any, token: str) -> str:
    response = sm.get_secret_value(SecretId=SECRET_NAME, VersionId=token, VersionStage="AWSPENDING")
    return str(response["SecretString"])


def assert_has_no_value(sm: Any, token: str) -> None:
    with pytest.raises(ClientError) as error:
        pending_value(sm, token)
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def log_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


# --- A whole rotation -------------------------------------------------------------------------


def test_rotation_promotes_a_new_key_and_keeps_the_other_fields(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a secret whose AWSCURRENT version holds the old key
    old_version, _ = at_stage(sm, "AWSCURRENT")

    # WHEN Secrets Manager rotates it with the rotation function
    rotate(sm, function_arn)

    # THEN the four steps ran once each, in order, for one new version
    assert runtime.steps == STEPS
    new_version = runtime.token
    assert new_version != old_version
    # AND AWSCURRENT is the new version, with a fresh default-length key and the other fields kept
    current_version, current = at_stage(sm, "AWSCURRENT")
    assert current_version == new_version
    new_key = current.pop("api_key")
    assert len(new_key) == api_key.DEFAULT_API_KEY_LENGTH == 48
    assert KEY_PATTERN.fullmatch(new_key)
    assert new_key != OLD_KEY
    assert current == {k: v for k, v in INITIAL_VALUE.items() if k != "api_key"}
    # AND AWSPREVIOUS is the old version, unchanged
    assert at_stage(sm, "AWSPREVIOUS") == (old_version, INITIAL_VALUE)
    # AND no AWSPENDING label is left on any version
    assert stages(sm) == {old_version: ["AWSPREVIOUS"], new_version: ["AWSCURRENT"]}


def test_a_second_rotation_moves_previous_along(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a secret rotated once
    original_version, _ = at_stage(sm, "AWSCURRENT")
    rotate(sm, function_arn)
    first_version, first_value = at_stage(sm, "AWSCURRENT")
    runtime.events.clear()

    # WHEN it is rotated again
    rotate(sm, function_arn)

    # THEN the first rotation's key is AWSPREVIOUS and the original version lost its labels
    second_version = runtime.token
    assert at_stage(sm, "AWSPREVIOUS") == (first_version, first_value)
    assert at_stage(sm, "AWSCURRENT")[1]["api_key"] != first_value["api_key"]
    assert stages(sm) == {
        original_version: [],
        first_version: ["AWSPREVIOUS"],
        second_version: ["AWSCURRENT"],
    }


def test_set_secret_changes_nothing(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a rotation stopped after createSecret
    token = start_rotation(sm, function_arn, runtime, before="setSecret")
    before = stages(sm), pending_value(sm, token)

    # WHEN setSecret runs (a documented no-op: the provider has no API)
    call(token, "setSecret")

    # THEN the versions and the pending value are unchanged
    assert (stages(sm), pending_value(sm, token)) == before


# --- Idempotency ------------------------------------------------------------------------------


def test_every_step_delivered_twice_still_rotates_once(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a Lambda runtime that delivers every step twice (at-least-once delivery)
    runtime.deliveries = 2
    old_version, _ = at_stage(sm, "AWSCURRENT")

    # WHEN the secret is rotated
    rotate(sm, function_arn)

    # THEN the end state is that of a single rotation: two versions, no AWSPENDING
    assert runtime.steps == [step for step in STEPS for _ in range(2)]
    new_version = runtime.token
    assert stages(sm) == {old_version: ["AWSPREVIOUS"], new_version: ["AWSCURRENT"]}
    assert at_stage(sm, "AWSPREVIOUS") == (old_version, INITIAL_VALUE)


def test_create_secret_twice_keeps_one_pending_version_and_value(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a rotation stopped after createSecret stored a pending key
    token = start_rotation(sm, function_arn, runtime, before="setSecret")
    first_value = pending_value(sm, token)
    old_version, _ = at_stage(sm, "AWSCURRENT")

    # WHEN createSecret runs again for the same token
    call(token, "createSecret")

    # THEN there is still exactly one pending version, with the same value
    assert stages(sm) == {old_version: ["AWSCURRENT"], token: ["AWSPENDING"]}
    assert pending_value(sm, token) == first_value


def test_finish_secret_twice_is_a_no_op(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a completed rotation
    rotate(sm, function_arn)
    token = runtime.token
    after_rotation = stages(sm), at_stage(sm, "AWSCURRENT"), at_stage(sm, "AWSPREVIOUS")

    # WHEN finishSecret runs again for the same token
    call(token, "finishSecret")

    # THEN nothing changes
    assert (stages(sm), at_stage(sm, "AWSCURRENT"), at_stage(sm, "AWSPREVIOUS")) == after_rotation


@pytest.mark.parametrize("step", STEPS)
def test_any_step_for_a_version_already_current_does_nothing(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime, step: str
) -> None:
    # GIVEN a completed rotation
    rotate(sm, function_arn)
    token = runtime.token
    after_rotation = stages(sm), at_stage(sm, "AWSCURRENT")

    # WHEN a late or repeated invocation arrives for the now-current version
    call(token, step)

    # THEN it returns without changing anything
    assert (stages(sm), at_stage(sm, "AWSCURRENT")) == after_rotation


# --- Failed steps leave AWSCURRENT alone ------------------------------------------------------

BAD_PENDING_VALUES = {
    "not JSON": "api_key=" + "A" * 48,
    "JSON array": json.dumps(["B" * 48]),
    "no api_key": json.dumps({"provider": "example-market-data"}),
    "api_key not a string": json.dumps({"api_key": 10**47}),
    "api_key too short": json.dumps({**INITIAL_VALUE, "api_key": "C" * 47}),
    "api_key too long": json.dumps({**INITIAL_VALUE, "api_key": "D" * 49}),
    "api_key with punctuation": json.dumps({**INITIAL_VALUE, "api_key": "E" * 47 + "!"}),
    "api_key equals the current key": json.dumps({**INITIAL_VALUE, "api_key": OLD_KEY}),
}


@pytest.mark.parametrize("bad_value", BAD_PENDING_VALUES.values(), ids=BAD_PENDING_VALUES.keys())
def test_test_secret_rejects_a_bad_pending_value_and_current_is_untouched(
    sm: Any,
    secret: str,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    capsys: pytest.CaptureFixture[str],
    bad_value: str,
) -> None:
    # GIVEN a rotation whose pending value gets corrupted between setSecret and testSecret.
    # (moto lets a PutSecretValue with the rotation's token overwrite the pending value; AWS would
    # refuse to reuse a token with a different value, so this only emulates a bad pending value.)
    old = at_stage(sm, "AWSCURRENT")

    def corrupt(token: str) -> None:
        sm.put_secret_value(
            SecretId=SECRET_NAME,
            ClientRequestToken=token,
            SecretString=bad_value,
            VersionStages=["AWSPENDING"],
        )

    runtime.before_step["testSecret"] = corrupt

    # WHEN the secret is rotated
    with pytest.raises(ValueError, match="AWSPENDING"):
        rotate(sm, function_arn)

    # THEN the rotation stopped at testSecret: finishSecret never ran
    assert runtime.steps == ["createSecret", "setSecret", "testSecret"]
    # AND AWSCURRENT still has the same version and value; the pending version stays pending
    assert at_stage(sm, "AWSCURRENT") == old
    assert stages(sm) == {old[0]: ["AWSCURRENT"], runtime.token: ["AWSPENDING"]}
    # AND the failure was logged as an error without the bad value
    lines = log_lines(capsys.readouterr().out)
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert [line["step"] for line in errors] == ["testSecret"]
    assert errors[0]["error_type"] == "RotationError"
    for line in lines:
        assert bad_value not in json.dumps(line)
        assert OLD_KEY not in json.dumps(line)


def test_create_secret_client_error_leaves_current_untouched_and_a_retry_completes(
    sm: Any,
    secret: str,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN PutSecretValue fails with a service error
    old = at_stage(sm, "AWSCURRENT")
    client = api_key._client()

    def failing_put_secret_value(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "InternalServiceError", "Message": "try again later"}},
            "PutSecretValue",
        )

    # WHEN the secret is rotated
    with (
        mock.patch.object(client, "put_secret_value", failing_put_secret_value),
        pytest.raises(ClientError, match="InternalServiceError"),
    ):
        rotate(sm, function_arn)

    # THEN the rotation stopped at createSecret, AWSCURRENT is untouched
    assert runtime.steps == ["createSecret"]
    token = runtime.token
    assert at_stage(sm, "AWSCURRENT") == old
    assert stages(sm) == {old[0]: ["AWSCURRENT"], token: ["AWSPENDING"]}
    # AND the pending version still has no value
    assert_has_no_value(sm, token)
    # AND the error was logged with its type only
    errors = [line for line in log_lines(capsys.readouterr().out) if line["level"] == "ERROR"]
    assert [(line["step"], line["error_type"], line["error_code"]) for line in errors] == [
        ("createSecret", "ClientError", "InternalServiceError")
    ]

    # WHEN the service error has cleared and Secrets Manager retries the steps with the same token
    for step in STEPS:
        call(token, step)

    # THEN the rotation completes
    assert stages(sm) == {old[0]: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}
    assert at_stage(sm, "AWSPREVIOUS") == old


@pytest.mark.parametrize("length", ["forty-eight", "31", "4097", "-48", "4.8e1"])
def test_invalid_api_key_length_fails_create_secret_before_any_write(
    sm: Any,
    secret: str,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
    length: str,
) -> None:
    # GIVEN a misconfigured key length
    monkeypatch.setenv("API_KEY_LENGTH", length)
    old = at_stage(sm, "AWSCURRENT")

    # WHEN the secret is rotated
    with pytest.raises(ValueError, match="API_KEY_LENGTH"):
        rotate(sm, function_arn)

    # THEN createSecret failed without writing a pending value and AWSCURRENT is untouched
    assert runtime.steps == ["createSecret"]
    assert_has_no_value(sm, runtime.token)
    assert at_stage(sm, "AWSCURRENT") == old


def test_a_configured_api_key_length_is_used(
    sm: Any,
    secret: str,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN API_KEY_LENGTH=64
    monkeypatch.setenv("API_KEY_LENGTH", "64")

    # WHEN the secret is rotated
    rotate(sm, function_arn)

    # THEN the new key has 64 characters
    assert len(at_stage(sm, "AWSCURRENT")[1]["api_key"]) == 64


# --- Validation -------------------------------------------------------------------------------


def test_rotation_disabled_is_rejected(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a rotation in progress whose rotation was then cancelled (RotationEnabled false)
    token = start_rotation(sm, function_arn, runtime, before="createSecret")
    sm.cancel_rotate_secret(SecretId=SECRET_NAME)
    before = stages(sm)

    # WHEN createSecret runs
    # THEN it refuses, and writes nothing
    with pytest.raises(ValueError, match="not enabled for rotation"):
        call(token, "createSecret")
    assert stages(sm) == before
    assert_has_no_value(sm, token)


def test_a_secret_never_configured_for_rotation_is_rejected(sm: Any, secret: str) -> None:
    # GIVEN a secret without rotation and a pending version written directly
    token = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=SECRET_NAME,
        ClientRequestToken=token,
        SecretString=json.dumps({**INITIAL_VALUE, "api_key": "F" * 48}),
        VersionStages=["AWSPENDING"],
    )

    # WHEN finishSecret runs
    # THEN it refuses and AWSCURRENT is untouched
    with pytest.raises(ValueError, match="not enabled for rotation"):
        call(token, "finishSecret")
    assert at_stage(sm, "AWSCURRENT")[1] == INITIAL_VALUE


def test_an_unknown_token_is_rejected(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a rotation in progress
    start_rotation(sm, function_arn, runtime, before="createSecret")
    before = stages(sm)

    # WHEN a step arrives for a token that is not a version of the secret
    # THEN it is rejected, and nothing changes
    with pytest.raises(ValueError, match="has no stage for rotation"):
        call(str(uuid.uuid4()), "createSecret")
    assert stages(sm) == before


def test_a_token_that_is_not_pending_is_rejected(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a completed rotation: the original version is now AWSPREVIOUS
    old_version, _ = at_stage(sm, "AWSCURRENT")
    rotate(sm, function_arn)
    before = stages(sm)

    # WHEN a step arrives for the old version
    # THEN it is rejected, and nothing changes
    with pytest.raises(ValueError, match="not set as AWSPENDING"):
        call(old_version, "finishSecret")
    assert stages(sm) == before


@pytest.mark.parametrize("stop_before", ["createSecret", "finishSecret"])
def test_an_unknown_step_is_rejected(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime, stop_before: str
) -> None:
    # GIVEN a rotation in progress
    token = start_rotation(sm, function_arn, runtime, before=stop_before)
    before = stages(sm)

    # WHEN a step arrives that is not one of the four
    # THEN it is rejected, and nothing changes
    with pytest.raises(ValueError, match="Invalid step"):
        call(token, "deleteSecret")
    assert stages(sm) == before


def test_an_unknown_step_is_rejected_even_for_the_current_version(
    sm: Any, secret: str, function_arn: str, runtime: FakeLambdaRuntime
) -> None:
    # GIVEN a completed rotation
    rotate(sm, function_arn)

    # WHEN an unknown step arrives for the now-current version
    # THEN it is still rejected (the AWS template would return silently here)
    with pytest.raises(ValueError, match="Invalid step"):
        call(runtime.token, "rotateSecret")


def test_an_event_without_a_key_is_rejected(sm: Any, secret: str) -> None:
    # GIVEN an event without a Step / WHEN it is handled / THEN KeyError, as in the template
    with pytest.raises(KeyError):
        api_key.handler({"SecretId": SECRET_NAME, "ClientRequestToken": "t" * 36}, None)  # type: ignore[typeddict-item]


# --- Logging ----------------------------------------------------------------------------------


def test_logs_are_json_lines_without_secret_values(
    sm: Any,
    secret: str,
    function_arn: str,
    runtime: FakeLambdaRuntime,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN log capture at INFO
    caplog.set_level(logging.INFO)

    # WHEN the secret is rotated
    rotate(sm, function_arn)

    # THEN every line on stdout is a JSON object with a level, one or more per step
    captured = capsys.readouterr()
    lines = log_lines(captured.out)
    assert lines
    assert all(line["level"] in {"INFO", "ERROR"} for line in lines)
    assert {line["step"] for line in lines} == set(STEPS)
    assert all(line["version_id"] == runtime.token for line in lines)
    # AND setSecret says plainly that it did nothing
    (set_line,) = [line for line in lines if line["step"] == "setSecret"]
    assert "no-op" in set_line["message"]
    # AND neither the old nor the new key appears in any output or log record
    new_key = at_stage(sm, "AWSCURRENT")[1]["api_key"]
    for text in (captured.out, captured.err, caplog.text):
        assert OLD_KEY not in text
        assert new_key not in text


# --- Client -----------------------------------------------------------------------------------


def test_client_uses_the_configured_endpoint_and_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an interface VPC endpoint URL in SECRETS_MANAGER_ENDPOINT
    endpoint = "https://vpce-0123456789abcdef0-abcdefgh.secretsmanager.us-east-1.vpce.amazonaws.com"
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", endpoint)

    # WHEN the client is created
    client = api_key._client()

    # THEN it targets that endpoint, and later invocations reuse it
    assert client.meta.endpoint_url == endpoint  # type: ignore[attr-defined]
    assert api_key._client() is client


def test_client_defaults_to_the_regional_endpoint() -> None:
    # GIVEN no SECRETS_MANAGER_ENDPOINT / WHEN the client is created / THEN boto3 resolves it
    client = api_key._client()
    assert client.meta.endpoint_url == f"https://secretsmanager.{REGION}.amazonaws.com"  # type: ignore[attr-defined]


# --- Property ---------------------------------------------------------------------------------


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(length=st.integers(min_value=api_key.MIN_API_KEY_LENGTH, max_value=256))
def test_test_secret_accepts_every_key_create_secret_generates(
    sm: Any, function_arn: str, runtime: FakeLambdaRuntime, length: int
) -> None:
    # GIVEN a fresh secret and any allowed API_KEY_LENGTH
    # (fixtures are shared across examples; each example uses its own secret)
    name = f"trading/property/{uuid.uuid4()}"
    sm.create_secret(Name=name, SecretString=json.dumps(INITIAL_VALUE))
    runtime.events.clear()

    # WHEN the secret is rotated
    with mock.patch.dict(os.environ, {"API_KEY_LENGTH": str(length)}):
        rotate(sm, function_arn, name)

    # THEN all four steps passed (testSecret accepted the generated key) and it is current
    assert runtime.steps == STEPS
    new_key = at_stage(sm, "AWSCURRENT", name)[1]["api_key"]
    assert len(new_key) == length
    assert KEY_PATTERN.fullmatch(new_key)
