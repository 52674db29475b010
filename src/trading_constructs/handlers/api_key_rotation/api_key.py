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

import json
import os
import re
from collections.abc import Callable
from typing import Final

try:  # in the wheel: trading_constructs.handlers.api_key_rotation.api_key
    from .._shared import secret_rotation
    from .._shared.jsonlog import JsonLogger
except ImportError:  # in the Lambda asset, where the shared modules are copied beside this one
    import secret_rotation  # type: ignore[import-not-found,no-redef]
    from jsonlog import JsonLogger  # type: ignore[import-not-found,no-redef]

__all__ = ["RotationError", "RotationEvent", "handler"]

API_KEY_FIELD: Final = "api_key"
DEFAULT_API_KEY_LENGTH: Final = 48
MIN_API_KEY_LENGTH: Final = 32
MAX_API_KEY_LENGTH: Final = 4096  # the GetRandomPassword maximum

_API_KEY_CHARSET: Final = re.compile(r"[A-Za-z0-9]+")
_AWSCURRENT: Final = secret_rotation.AWSCURRENT
_AWSPENDING: Final = secret_rotation.AWSPENDING

RotationEvent = secret_rotation.RotationEvent
RotationError = secret_rotation.RotationError
_Rotation = secret_rotation.Rotation
_client: Final = secret_rotation.client
"""The Secrets Manager client, created on first use and reused across invocations."""
_parse_secret: Final = secret_rotation.parse_json_object
_log: Final = JsonLogger(__name__)


def handler(event: RotationEvent, context: object) -> None:
    """Run one step of a Secrets Manager rotation.

    Raises:
        RotationError: (a ``ValueError``) the step is unknown, rotation is disabled for the secret,
            the version is not staged for rotation, or a check failed.
        KeyError: the event lacks one of its keys.
        botocore.exceptions.ClientError: a Secrets Manager call failed.
    """
    secret_rotation.run(event, select=_STEPS.get, rotation=_Rotation, log=_log)


# --- Steps ------------------------------------------------------------------------------------


def _create_secret(rotation: _Rotation) -> None:
    """Store a new API key as the value of the AWSPENDING version, unless it already has one."""
    current_value = _parse_secret(rotation.value(_AWSCURRENT), "AWSCURRENT")
    if secret_rotation.pending_has_value(rotation):
        return
    length = _api_key_length()
    generated = rotation.client.get_random_password(PasswordLength=length, ExcludePunctuation=True)
    pending_value = {**current_value, API_KEY_FIELD: generated["RandomPassword"]}
    rotation.client.put_secret_value(
        SecretId=rotation.arn,
        ClientRequestToken=rotation.token,
        SecretString=json.dumps(pending_value),
        VersionStages=[_AWSPENDING],
    )
    rotation.log("Stored a new API key in the AWSPENDING version", key_length=length)


def _set_secret(rotation: _Rotation) -> None:
    """Do nothing: the provider has no API to set the key in (see the module docstring)."""
    rotation.log("setSecret is a no-op: the API-key provider has no API to register the key with")


def _test_secret(rotation: _Rotation) -> None:
    """Check that the AWSPENDING value holds a well-formed API key that differs from the current."""
    arn = rotation.arn
    pending_key = _parse_secret(rotation.value(_AWSPENDING), "AWSPENDING").get(API_KEY_FIELD)
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
    current = _parse_secret(rotation.value(_AWSCURRENT), "AWSCURRENT")
    if current.get(API_KEY_FIELD) == pending_key:
        raise RotationError(f"AWSPENDING {API_KEY_FIELD!r} of secret {arn} equals AWSCURRENT")
    rotation.log("AWSPENDING value passed the checks")


_STEPS: Final[dict[str, Callable[[_Rotation], None]]] = {
    "createSecret": _create_secret,
    "setSecret": _set_secret,
    "testSecret": _test_secret,
    "finishSecret": secret_rotation.finish_secret,
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
