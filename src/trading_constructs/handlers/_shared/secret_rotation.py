"""The four-step Secrets Manager rotation protocol, shared by the rotation handlers.

Secrets Manager invokes a rotation function four times per rotation (``createSecret``,
``setSecret``, ``testSecret``, ``finishSecret``) with the same ``ClientRequestToken``: the id of
the new version, which ``RotateSecret`` has already staged as ``AWSPENDING``. This module holds
what does not depend on the kind of secret, with the semantics of the AWS rotation templates
(``aws-samples/aws-secrets-manager-rotation-lambdas``):

- ``run`` checks the version is staged for rotation (rotation enabled, version known, not yet
  ``AWSCURRENT``, staged ``AWSPENDING``) and runs the step; an unknown ``Step`` is rejected
  before any API call. Errors are logged by type (and AWS error code) and raised again.
- ``pending_has_value`` makes ``createSecret`` idempotent.
- ``finish_secret`` moves ``AWSCURRENT`` to the new version (Secrets Manager moves
  ``AWSPREVIOUS`` with it) and removes ``AWSPENDING`` from it.

Environment: ``SECRETS_MANAGER_ENDPOINT``, the Secrets Manager endpoint URL (for example that of
an interface VPC endpoint without private DNS); when unset, boto3 resolves the regional endpoint.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from typing import Final, Protocol, TypedDict, TypeVar

import boto3
from botocore.exceptions import ClientError

try:  # in the wheel: trading_constructs.handlers._shared.secret_rotation
    from .jsonlog import JsonLogger
except ImportError:  # in a Lambda asset: the top-level module secret_rotation
    from jsonlog import JsonLogger  # type: ignore[import-not-found,no-redef]

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "Rotation",
    "RotationError",
    "RotationEvent",
    "SecretsManagerClient",
    "client",
    "error_code",
    "finish_secret",
    "parse_json_object",
    "pending_has_value",
    "run",
]

AWSCURRENT: Final = "AWSCURRENT"
AWSPENDING: Final = "AWSPENDING"
AWSPREVIOUS: Final = "AWSPREVIOUS"


class RotationEvent(TypedDict):
    """The event Secrets Manager sends to a rotation function."""

    SecretId: str
    ClientRequestToken: str
    Step: str


class RotationError(ValueError):
    """The secret is not in a state the function can rotate, or a check failed.

    Messages never contain a secret value, so they are safe to log.
    """


# --- Secrets Manager client -------------------------------------------------------------------
# Typed views of the parts of the boto3 client and its responses that the handlers use.


class DescribeSecretResponse(TypedDict, total=False):
    RotationEnabled: bool
    VersionIdsToStages: dict[str, list[str]]


class GetSecretValueResponse(TypedDict, total=False):
    VersionId: str
    SecretString: str


class GetRandomPasswordResponse(TypedDict):
    RandomPassword: str


class SecretsManagerClient(Protocol):
    """The subset of the boto3 Secrets Manager client the rotation steps use."""

    def describe_secret(self, *, SecretId: str) -> DescribeSecretResponse: ...

    def get_secret_value(
        self, *, SecretId: str, VersionId: str = ..., VersionStage: str = ...
    ) -> GetSecretValueResponse: ...

    def get_random_password(
        self,
        *,
        PasswordLength: int,
        ExcludeCharacters: str = ...,
        ExcludePunctuation: bool = ...,
        RequireEachIncludedType: bool = ...,
    ) -> GetRandomPasswordResponse: ...

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
def client() -> SecretsManagerClient:
    """Create the Secrets Manager client on first use and reuse it across invocations."""
    endpoint_url = os.environ.get("SECRETS_MANAGER_ENDPOINT") or None
    created: SecretsManagerClient = boto3.client("secretsmanager", endpoint_url=endpoint_url)
    return created


# --- One invocation ---------------------------------------------------------------------------


class Rotation:
    """One invocation: the client, the secret, the version and the step, for the step functions."""

    def __init__(
        self, client: SecretsManagerClient, arn: str, token: str, step: str, log: JsonLogger
    ) -> None:
        self.client = client
        self.arn = arn
        self.token = token
        self.step = step
        self._log = log

    def log(self, message: str, **fields: object) -> None:
        """Log at INFO with the secret id, version id and step. Never pass a secret value."""
        self._log(
            logging.INFO,
            message,
            secret_id=self.arn,
            version_id=self.token,
            step=self.step,
            **fields,
        )

    def value(self, stage: str, *, of: str | None = None) -> GetSecretValueResponse:
        """The value at ``stage``: of this version for AWSPENDING, else of secret ``of``."""
        secret_id = of or self.arn
        if stage == AWSPENDING:
            return self.client.get_secret_value(
                SecretId=secret_id, VersionId=self.token, VersionStage=stage
            )
        return self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)


R = TypeVar("R", bound=Rotation)


def run(
    event: RotationEvent,
    *,
    select: Callable[[str], Callable[[R], None] | None],
    rotation: Callable[[SecretsManagerClient, str, str, str, JsonLogger], R],
    log: JsonLogger,
) -> None:
    """Run one step: ``select(step)`` names its function (None: unknown step), ``rotation``
    builds its argument.

    Raises:
        RotationError: the step is unknown (before any API call), rotation is disabled for the
            secret, the version is not staged for rotation, or a step's check failed.
        KeyError: the event lacks one of its keys.
        botocore.exceptions.ClientError: a Secrets Manager call failed.
    """
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]
    fields: dict[str, object] = {"secret_id": arn, "version_id": token, "step": step}
    try:
        step_function = select(step)
        if step_function is None:
            raise RotationError(f"Invalid step parameter {step!r}")
        secrets_manager = client()
        if is_staged_for_rotation(secrets_manager, arn, token):
            step_function(rotation(secrets_manager, arn, token, step, log))
        else:
            log(logging.INFO, "Version is already AWSCURRENT, nothing to do", **fields)
    except RotationError as error:
        log(logging.ERROR, str(error), error_type=type(error).__name__, **fields)
        raise
    except Exception as error:
        # Type and AWS error code only: a foreign message is not guaranteed to be free of values.
        if isinstance(error, ClientError):
            fields["error_code"] = error_code(error)
        log(logging.ERROR, "Rotation step failed", error_type=type(error).__name__, **fields)
        raise


def is_staged_for_rotation(client: SecretsManagerClient, arn: str, token: str) -> bool:
    """Whether ``token`` is the AWSPENDING version to rotate to, as the templates check.

    Returns False if the version is already AWSCURRENT (the rotation has completed).
    """
    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled", False):
        raise RotationError(f"Secret {arn} is not enabled for rotation")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise RotationError(f"Secret version {token} has no stage for rotation of secret {arn}")
    if AWSCURRENT in versions[token]:
        return False
    if AWSPENDING not in versions[token]:
        raise RotationError(
            f"Secret version {token} is not set as AWSPENDING for rotation of secret {arn}"
        )
    return True


# --- Steps ------------------------------------------------------------------------------------


def pending_has_value(rotation: Rotation) -> bool:
    """Whether the AWSPENDING version has a value already (``createSecret`` then does nothing)."""
    try:
        rotation.value(AWSPENDING)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return False
    rotation.log("AWSPENDING version already has a value, nothing to do")
    return True


def finish_secret(rotation: Rotation) -> None:
    """Move AWSCURRENT to the new version (AWSPREVIOUS follows) and remove its AWSPENDING."""
    client, arn, token = rotation.client, rotation.arn, rotation.token
    versions = client.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
    current_version = next(
        (version for version, stages in versions.items() if AWSCURRENT in stages), None
    )
    if current_version == token:
        rotation.log("Version is already AWSCURRENT, nothing to do")
        return
    if current_version is None:
        client.update_secret_version_stage(
            SecretId=arn, VersionStage=AWSCURRENT, MoveToVersionId=token
        )
    else:
        client.update_secret_version_stage(
            SecretId=arn,
            VersionStage=AWSCURRENT,
            MoveToVersionId=token,
            RemoveFromVersionId=current_version,
        )
    client.update_secret_version_stage(
        SecretId=arn, VersionStage=AWSPENDING, RemoveFromVersionId=token
    )
    rotation.log("Moved AWSCURRENT to the new version", previous_version_id=current_version)


# --- Helpers ----------------------------------------------------------------------------------


def parse_json_object(response: GetSecretValueResponse, stage: str) -> dict[str, object]:
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


def error_code(error: ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    return str(code)
