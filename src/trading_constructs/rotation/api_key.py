"""Secrets Manager rotation handler for API-key secrets.

The secret value is a JSON object such as ``{"api_key": "...", "provider": "..."}``. A rotation
replaces ``api_key`` with a fresh random key and keeps every other field as it is.

Secrets Manager invokes the function four times per rotation, with the same
``ClientRequestToken`` (the id of the new secret version, which ``RotateSecret`` has already
registered with the ``AWSPENDING`` staging label but without a value):

``createSecret``
    Generate a key with ``GetRandomPassword`` (letters and digits, ``API_KEY_LENGTH`` characters)
    and store it as the value of the ``AWSPENDING`` version. Does nothing if that version already
    has a value, so a retried invocation never generates a second key.
``setSecret``
    A deliberate no-op. The provider has no API through which a key could be set: the keys are
    minted here and accepted by the provider side without a call from this function (it reads
    them from this secret, or they are registered out of band). The step logs that it did nothing
    instead of pretending otherwise. If the provider ever gains a registration API, this is the
    step in which to call it.
``testSecret``
    Check the ``AWSPENDING`` value: a JSON object whose ``api_key`` is a string of the configured
    length, made only of ASCII letters and digits, and different from the ``AWSCURRENT`` key.
``finishSecret``
    Move ``AWSCURRENT`` to the new version (Secrets Manager moves ``AWSPREVIOUS`` to the version it
    was taken from) and remove ``AWSPENDING`` from the new version.

This follows the semantics of the AWS rotation template (``SecretsManagerRotationTemplate`` in
``aws-samples/aws-secrets-manager-rotation-lambdas``) with one deliberate difference: an unknown
``Step`` is rejected before any API call, so it raises ``ValueError`` even when the version is
already ``AWSCURRENT`` (the template would return silently in that case).

Environment variables:

``API_KEY_LENGTH``
    Length of generated keys, 32 to 4096 (default 48).
``SECRETS_MANAGER_ENDPOINT``
    Secrets Manager endpoint URL, for example that of an interface VPC endpoint without private
    DNS. When unset, boto3 resolves the regional endpoint.

Logs are JSON lines on standard output with a ``level`` field. They carry the secret id, the
version id and the step, never a secret value.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Final, Protocol, TypedDict

import boto3
from botocore.exceptions import ClientError

__all__ = ["RotationError", "RotationEvent", "handler"]

API_KEY_FIELD: Final = "api_key"
DEFAULT_API_KEY_LENGTH: Final = 48
MIN_API_KEY_LENGTH: Final = 32
MAX_API_KEY_LENGTH: Final = 4096  # the GetRandomPassword maximum

_AWSCURRENT: Final = "AWSCURRENT"
_AWSPENDING: Final = "AWSPENDING"
_API_KEY_CHARSET: Final = re.compile(r"[A-Za-z0-9]+")


class RotationEvent(TypedDict):
    """The event Secrets Manager sends to a rotation function."""

    SecretId: str
    ClientRequestToken: str
    Step: str


class RotationError(ValueError):
    """The secret is not in a state this function can rotate, or a check failed.

    Messages never contain a secret value, so they are safe to log.
    """


# --- Secrets Manager client -------------------------------------------------------------------
# Typed views of the parts of the boto3 client and its responses that this module uses.


class _DescribeSecretResponse(TypedDict, total=False):
    RotationEnabled: bool
    VersionIdsToStages: dict[str, list[str]]


class _GetSecretValueResponse(TypedDict, total=False):
    VersionId: str
    SecretString: str


class _GetRandomPasswordResponse(TypedDict):
    RandomPassword: str


class SecretsManagerClient(Protocol):
    """The subset of the boto3 Secrets Manager client used by the rotation steps."""

    def describe_secret(self, *, SecretId: str) -> _DescribeSecretResponse: ...

    def get_secret_value(
        self, *, SecretId: str, VersionId: str = ..., VersionStage: str = ...
    ) -> _GetSecretValueResponse: ...

    def get_random_password(
        self, *, PasswordLength: int, ExcludePunctuation: bool
    ) -> _GetRandomPasswordResponse: ...

    def put_secret_value(
        self,
        *,
        SecretId: str,
        ClientRequestToken: str,
        SecretString: str,
        VersionStages: list[str],
    ) -> object: ...

    def update_secret_version_stage(
        self,
        *,
        SecretId: str,
        VersionStage: str,
        MoveToVersionId: str = ...,
        RemoveFromVersionId: str = ...,
    ) -> object: ...


@functools.cache
def _client() -> SecretsManagerClient:
    """Create the Secrets Manager client on first use and reuse it across invocations."""
    endpoint_url = os.environ.get("SECRETS_MANAGER_ENDPOINT") or None
    client: SecretsManagerClient = boto3.client("secretsmanager", endpoint_url=endpoint_url)
    return client


# --- Logging ----------------------------------------------------------------------------------


class _JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.Handler):
    """Write each record as one line to the current ``sys.stdout``.

    Looking the stream up at emit time (rather than binding it once, as ``StreamHandler`` does)
    keeps the output capturable in tests.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def _make_logger() -> logging.Logger:
    log = logging.getLogger(__name__)
    if not log.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(_JsonLineFormatter())
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    # The Lambda runtime installs a plain-text handler on the root logger; not propagating
    # keeps every line pure JSON.
    log.propagate = False
    return log


_logger: Final = _make_logger()


def _log(level: int, message: str, **fields: object) -> None:
    """Log ``message`` as a JSON line. Callers must never pass a secret value in ``fields``."""
    _logger.log(level, message, extra={"fields": fields}, stacklevel=2)


# --- Handler ----------------------------------------------------------------------------------


def handler(event: RotationEvent, context: object) -> None:
    """Run one step of a Secrets Manager rotation.

    Raises:
        RotationError: (a ``ValueError``) the step is unknown, rotation is disabled for the secret,
            the version is not staged for rotation, or a check failed.
        KeyError: the event lacks one of its keys.
        botocore.exceptions.ClientError: a Secrets Manager call failed.
    """
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]
    fields: dict[str, object] = {"secret_id": arn, "version_id": token, "step": step}
    try:
        step_function = _STEPS.get(step)
        if step_function is None:
            raise RotationError(f"Invalid step parameter {step!r}")
        client = _client()
        if _is_staged_for_rotation(client, arn, token):
            step_function(client, arn, token)
        else:
            _log(logging.INFO, "Version is already AWSCURRENT, nothing to do", **fields)
    except RotationError as error:
        _log(logging.ERROR, str(error), error_type=type(error).__name__, **fields)
        raise
    except Exception as error:
        # Type and AWS error code only: a foreign exception message is not guaranteed to be free
        # of values.
        if isinstance(error, ClientError):
            fields["error_code"] = _error_code(error)
        _log(logging.ERROR, "Rotation step failed", error_type=type(error).__name__, **fields)
        raise


def _is_staged_for_rotation(client: SecretsManagerClient, arn: str, token: str) -> bool:
    """Return whether ``token`` is the AWSPENDING version to rotate to, as the template checks.

    Returns False if the version is already AWSCURRENT (the rotation has completed).
    """
    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled", False):
        raise RotationError(f"Secret {arn} is not enabled for rotation")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise RotationError(f"Secret version {token} has no stage for rotation of secret {arn}")
    if _AWSCURRENT in versions[token]:
        return False
    if _AWSPENDING not in versions[token]:
        raise RotationError(
            f"Secret version {token} is not set as AWSPENDING for rotation of secret {arn}"
        )
    return True


def _create_secret(client: SecretsManagerClient, arn: str, token: str) -> None:
    """Store a new API key as the value of the AWSPENDING version, unless it already has one."""
    current = client.get_secret_value(SecretId=arn, VersionStage=_AWSCURRENT)
    current_value = _parse_secret(current, "AWSCURRENT")
    fields: dict[str, object] = {"secret_id": arn, "version_id": token, "step": "createSecret"}
    try:
        client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=_AWSPENDING)
    except ClientError as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise
    else:
        _log(logging.INFO, "AWSPENDING version already has a value, nothing to do", **fields)
        return

    length = _api_key_length()
    generated = client.get_random_password(PasswordLength=length, ExcludePunctuation=True)
    pending_value = {**current_value, API_KEY_FIELD: generated["RandomPassword"]}
    client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps(pending_value),
        VersionStages=[_AWSPENDING],
    )
    _log(
        logging.INFO, "Stored a new API key in the AWSPENDING version", key_length=length, **fields
    )


def _set_secret(client: SecretsManagerClient, arn: str, token: str) -> None:
    """Do nothing: the provider has no API to set the key in (see the module docstring)."""
    _log(
        logging.INFO,
        "setSecret is a no-op: the API-key provider has no API to register the key with",
        secret_id=arn,
        version_id=token,
        step="setSecret",
    )


def _test_secret(client: SecretsManagerClient, arn: str, token: str) -> None:
    """Check that the AWSPENDING value holds a well-formed API key that differs from the current."""
    pending = client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=_AWSPENDING)
    pending_key = _parse_secret(pending, "AWSPENDING").get(API_KEY_FIELD)
    if not isinstance(pending_key, str):
        raise RotationError(f"AWSPENDING value of secret {arn} has no string {API_KEY_FIELD!r}")
    expected_length = _api_key_length()
    if len(pending_key) != expected_length:
        raise RotationError(
            f"AWSPENDING {API_KEY_FIELD!r} of secret {arn} has {len(pending_key)} characters,"
            f" expected {expected_length}"
        )
    if not _API_KEY_CHARSET.fullmatch(pending_key):
        raise RotationError(
            f"AWSPENDING {API_KEY_FIELD!r} of secret {arn} has characters other than ASCII"
            " letters and digits"
        )
    current = client.get_secret_value(SecretId=arn, VersionStage=_AWSCURRENT)
    if _parse_secret(current, "AWSCURRENT").get(API_KEY_FIELD) == pending_key:
        raise RotationError(f"AWSPENDING {API_KEY_FIELD!r} of secret {arn} equals AWSCURRENT")
    _log(
        logging.INFO,
        "AWSPENDING value passed the checks",
        secret_id=arn,
        version_id=token,
        step="testSecret",
    )


def _finish_secret(client: SecretsManagerClient, arn: str, token: str) -> None:
    """Move AWSCURRENT to the new version and remove AWSPENDING from it."""
    fields: dict[str, object] = {"secret_id": arn, "version_id": token, "step": "finishSecret"}
    versions = client.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
    current_version = next(
        (version for version, stages in versions.items() if _AWSCURRENT in stages), None
    )
    if current_version == token:
        _log(logging.INFO, "Version is already AWSCURRENT, nothing to do", **fields)
        return
    if current_version is None:
        client.update_secret_version_stage(
            SecretId=arn, VersionStage=_AWSCURRENT, MoveToVersionId=token
        )
    else:
        client.update_secret_version_stage(
            SecretId=arn,
            VersionStage=_AWSCURRENT,
            MoveToVersionId=token,
            RemoveFromVersionId=current_version,
        )
    client.update_secret_version_stage(
        SecretId=arn, VersionStage=_AWSPENDING, RemoveFromVersionId=token
    )
    _log(
        logging.INFO,
        "Moved AWSCURRENT to the new version",
        previous_version_id=current_version,
        **fields,
    )


_STEPS: Final[dict[str, Callable[[SecretsManagerClient, str, str], None]]] = {
    "createSecret": _create_secret,
    "setSecret": _set_secret,
    "testSecret": _test_secret,
    "finishSecret": _finish_secret,
}


# --- Helpers ----------------------------------------------------------------------------------


def _api_key_length() -> int:
    raw = os.environ.get("API_KEY_LENGTH", "").strip()
    if not raw:
        return DEFAULT_API_KEY_LENGTH
    try:
        length = int(raw)
    except ValueError:
        raise RotationError(f"API_KEY_LENGTH must be an integer, got {raw!r}") from None
    if not MIN_API_KEY_LENGTH <= length <= MAX_API_KEY_LENGTH:
        raise RotationError(
            f"API_KEY_LENGTH must be between {MIN_API_KEY_LENGTH} and {MAX_API_KEY_LENGTH},"
            f" got {length}"
        )
    return length


def _parse_secret(response: _GetSecretValueResponse, stage: str) -> dict[str, object]:
    """Parse a secret value as a JSON object. Error messages never include the value."""
    secret_string = response.get("SecretString")
    if secret_string is None:
        raise RotationError(f"{stage} version has no SecretString")
    try:
        value: object = json.loads(secret_string)
    except json.JSONDecodeError as error:
        raise RotationError(
            f"{stage} value is not valid JSON ({error.msg} at line {error.lineno}"
            f" column {error.colno})"
        ) from None
    if not isinstance(value, dict):
        raise RotationError(f"{stage} value is not a JSON object")
    return {str(key): item for key, item in value.items()}


def _error_code(error: ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    return str(code)
