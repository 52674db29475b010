"""Secrets Manager rotation handler for PostgreSQL credentials (RDS, Aurora, or any PostgreSQL).

The secret value is the JSON object Secrets Manager's RDS templates use: ``engine`` (``postgres``
or ``aurora-postgresql``), ``host``, ``username``, ``password`` and optionally ``port`` (default
5432) and ``dbname`` (default ``postgres``). Other fields are carried over unchanged.

Two strategies, chosen with ``ROTATION_STRATEGY`` and matching the semantics of AWS's
``SecretsManagerRDSPostgreSQLRotationSingleUser`` and ``...MultiUser`` templates:

``single-user``
    The user changes its own password. ``setSecret`` logs in with the pending password (done
    already: nothing to do), else with the current one, else with the previous one, and sets the
    pending password. Connections opened with the old password keep working; new ones need the
    new password at once.
``alternating-users``
    Two users take turns: ``<user>`` and ``<user>_clone``. ``createSecret`` names the other user in
    the pending version; ``setSecret`` checks the current credentials still log in (so a tampered
    secret cannot make the function act for someone else), then logs in with the master secret
    named by ``masterarn`` in the secret and creates the other user as a member of the current one
    (``CREATE ROLE ... LOGIN`` and ``GRANT <current> TO <other>``), or sets its password if it
    exists and is the pair of the current one: one of the two is a member of the other, neither
    is the master user, and neither holds SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or
    BYPASSRLS (else it refuses, naming the users). The current user is never touched, so its
    sessions and password stay valid until the next rotation.

Each step is idempotent, as Secrets Manager may repeat any of them: ``createSecret`` keeps a
pending value that exists, ``setSecret`` returns when the pending password already logs in,
``testSecret`` only reads, ``finishSecret`` returns when the version is current already.

Differences from the AWS templates, all on the side of safety:

- TLS is always on and always verified (certificate chain and host name), against the CA bundle in
  ``DB_CA_FILE``; there is no plain-text fallback and the secret's ``ssl`` field is ignored. The
  default is ``rds-ca-bundle.pem`` beside this module, the Amazon RDS root CAs shipped in the
  asset: the AWS templates verify against the Lambda image's trust store
  (``/etc/pki/tls/cert.pem``), which need not hold the RDS CA a new cluster's certificate chains
  to, and a rotation that cannot verify TLS never succeeds.
- A password is set as a SCRAM-SHA-256 verifier computed here, so the plain password never
  reaches the server in an SQL statement (nor its statement log).
- Only a refused password (SQLSTATE 28P01) counts as "these credentials do not log in"; a TLS
  failure, an unreachable host or a ``pg_hba.conf`` rejection fails the step with its cause.
- The master secret must name the same host as the user's secret; read replicas discovered
  through the RDS API, and RDS-managed master secrets without a ``host``, are not supported.
- An unknown ``Step`` is rejected before any API call.

Environment variables:

``ROTATION_STRATEGY``
    ``single-user`` (default) or ``alternating-users``.
``MASTER_SECRET_ARN``
    Alternating users only: when set, the ``masterarn`` in the secret must equal it.
``DB_CA_FILE``
    PEM bundle of the CAs the database certificate is verified against
    (default: the Amazon RDS root CAs in ``rds-ca-bundle.pem`` beside this module).
``PASSWORD_LENGTH``
    Length of generated passwords, 16 to 4096 (default 32).
``EXCLUDE_CHARACTERS``
    Characters generated passwords leave out (default ``:/@"'\\``, as the AWS templates).
``SECRETS_MANAGER_ENDPOINT``
    Secrets Manager endpoint URL, for an interface VPC endpoint without private DNS. When unset,
    boto3 resolves the regional endpoint.

Logs are JSON lines on standard output with a ``level`` field. They carry the secret id, the
version id, the step and user names, never a password or a secret value.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import ssl
from collections.abc import Callable
from typing import Any, Final

import pg8000.native  # type: ignore[import-untyped]
from botocore.exceptions import ClientError
from pg8000.exceptions import DatabaseError, InterfaceError  # type: ignore[import-untyped]
from scramp import ScramMechanism  # type: ignore[import-untyped]

try:  # in the wheel: trading_constructs.handlers.postgres_rotation.postgres
    from .._shared import secret_rotation
    from .._shared.jsonlog import JsonLogger
except ImportError:  # in the Lambda asset, where the shared modules are copied beside this one
    import secret_rotation  # type: ignore[import-not-found,no-redef]
    from jsonlog import JsonLogger  # type: ignore[import-not-found,no-redef]

__all__ = ["RotationError", "RotationEvent", "handler"]

SINGLE_USER: Final = "single-user"
ALTERNATING_USERS: Final = "alternating-users"
BUNDLED_CA_FILE: Final = "rds-ca-bundle.pem"
"""The Amazon RDS root CAs, shipped beside this module (in the asset and in the wheel)."""
DEFAULT_CA_FILE: Final = os.path.join(os.path.dirname(os.path.abspath(__file__)), BUNDLED_CA_FILE)
DEFAULT_PASSWORD_LENGTH: Final = 32
MIN_PASSWORD_LENGTH: Final = 16
MAX_PASSWORD_LENGTH: Final = 4096  # the GetRandomPassword maximum
DEFAULT_EXCLUDE_CHARACTERS: Final = ":/@\"'\\"
CLONE_SUFFIX: Final = "_clone"
MAX_IDENTIFIER_LENGTH: Final = 63  # PostgreSQL's NAMEDATALEN - 1: longer names are truncated
CONNECT_TIMEOUT_SECONDS: Final = 5
SCRAM_ITERATIONS: Final = 4096  # PostgreSQL's default scram_iterations
SUPPORTED_ENGINES: Final = ("postgres", "aurora-postgresql")

_AWSCURRENT: Final = secret_rotation.AWSCURRENT
_AWSPENDING: Final = secret_rotation.AWSPENDING
_AWSPREVIOUS: Final = secret_rotation.AWSPREVIOUS
_PASSWORD_REFUSED: Final = "28P01"  # invalid_password

RotationEvent = secret_rotation.RotationEvent
RotationError = secret_rotation.RotationError
_client: Final = secret_rotation.client
"""The Secrets Manager client, created on first use and reused across invocations."""
_error_code: Final = secret_rotation.error_code
_log: Final = JsonLogger(__name__)


def handler(event: RotationEvent, context: object) -> None:
    """Run one step of a Secrets Manager rotation of PostgreSQL credentials.

    Raises:
        RotationError: (a ``ValueError``) the step or strategy is unknown, rotation is disabled,
            the version is not staged for rotation, the database refused or could not be reached
            over verified TLS, or a check failed.
        KeyError: the event lacks one of its keys.
        botocore.exceptions.ClientError: a Secrets Manager call failed.
    """
    secret_rotation.run(
        event, select=lambda step: _STEPS[_strategy()].get(step), rotation=_Rotation, log=_log
    )


class _Rotation(secret_rotation.Rotation):
    """One invocation, reading the secret's values as PostgreSQL credentials."""

    def credentials(self, stage: str, *, of: str | None = None) -> dict[str, Any]:
        """The credentials at ``stage`` (of this version for AWSPENDING, or of secret ``of``)."""
        label = stage if of is None else f"{stage} of the master secret"
        return _parse_credentials(self.value(stage, of=of), label)

    def previous_credentials(self) -> dict[str, Any] | None:
        try:
            return self.credentials(_AWSPREVIOUS)
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise
            return None
        except RotationError:
            return None  # an old value in another shape cannot log in anyway


# --- Steps ------------------------------------------------------------------------------------


def _create_secret(rotation: _Rotation, *, alternate: bool) -> None:
    """Store new credentials as the AWSPENDING value, unless it has one already."""
    current = rotation.credentials(_AWSCURRENT)
    if secret_rotation.pending_has_value(rotation):
        return
    pending = dict(current)
    if alternate:
        pending["username"] = _other_user(str(current["username"]))
    length, exclude = _password_rules()
    generated = rotation.client.get_random_password(
        PasswordLength=length, ExcludeCharacters=exclude, RequireEachIncludedType=True
    )
    pending["password"] = generated["RandomPassword"]
    rotation.client.put_secret_value(
        SecretId=rotation.arn,
        ClientRequestToken=rotation.token,
        SecretString=json.dumps(pending),
        VersionStages=[_AWSPENDING],
    )
    rotation.log(
        "Stored new credentials in the AWSPENDING version",
        username=pending["username"],
        password_length=length,
    )


def _set_own_password(rotation: _Rotation) -> None:
    """Single user: log in as the user (current, else previous password) and change its own."""
    current = rotation.credentials(_AWSCURRENT)
    pending = rotation.credentials(_AWSPENDING)
    if _can_log_in(pending):
        rotation.log("The AWSPENDING password logs in already, nothing to do")
        return
    _same_user_and_host(pending, current, "AWSCURRENT")
    connection = _connect(current)
    if connection is None:
        previous = rotation.previous_credentials()
        if previous is not None:
            _same_user_and_host(pending, previous, "AWSPREVIOUS")
            connection = _connect(previous)
    if connection is None:
        raise RotationError(
            f"Neither the AWSCURRENT nor the AWSPREVIOUS password of secret {rotation.arn} "
            "logs in: the password was changed outside this rotation"
        )
    try:
        _set_password(connection, str(pending["username"]), str(pending["password"]))
    finally:
        connection.close()
    rotation.log("Set the AWSPENDING password in the database", username=pending["username"])


def _set_other_users_password(rotation: _Rotation) -> None:
    """Alternating users: as the master user, create the other user or set its password."""
    current = rotation.credentials(_AWSCURRENT)
    pending = rotation.credentials(_AWSPENDING)
    if _can_log_in(pending):
        rotation.log("The AWSPENDING password logs in already, nothing to do")
        return
    if _other_user(str(current["username"])) != pending["username"]:
        raise RotationError(
            f"AWSPENDING user {pending['username']!r} is not the alternate of the AWSCURRENT "
            f"user {current['username']!r}"
        )
    if (pending["host"], _port(pending)) != (current["host"], _port(current)):
        raise RotationError("AWSPENDING names another database endpoint than AWSCURRENT")
    # The current credentials must still log in: the function acts with the master user only
    # for a secret whose owner can prove it (the AWS templates' confused-deputy check).
    if not _can_log_in(current):
        raise RotationError(f"The AWSCURRENT credentials of secret {rotation.arn} do not log in")
    master = rotation.credentials(_AWSCURRENT, of=_master_arn(current))
    if (master["host"], _port(master)) != (current["host"], _port(current)):
        raise RotationError("The master secret names another database endpoint than the secret")
    master["dbname"] = current.get("dbname")
    connection = _connect(master)
    if connection is None:
        raise RotationError("The master secret's credentials do not log in")
    try:
        created = _create_or_set_password(
            connection,
            str(pending["username"]),
            str(pending["password"]),
            str(current["username"]),
            str(master["username"]),
        )
    finally:
        connection.close()
    rotation.log(
        "Created the alternate user" if created else "Set the alternate user's password",
        username=pending["username"],
        member_of=current["username"],
    )


def _test_secret(rotation: _Rotation) -> None:
    """Log in with the AWSPENDING credentials over verified TLS and run a query."""
    pending = rotation.credentials(_AWSPENDING)
    connection = _connect(pending)
    if connection is None:
        raise RotationError(f"The AWSPENDING credentials of secret {rotation.arn} do not log in")
    try:
        connection.run("SELECT 1")
    finally:
        connection.close()
    rotation.log("The AWSPENDING credentials log in", username=pending["username"])


_Step = Callable[[_Rotation], None]
_STEPS: Final[dict[str, dict[str, _Step]]] = {
    SINGLE_USER: {
        "createSecret": functools.partial(_create_secret, alternate=False),
        "setSecret": _set_own_password,
        "testSecret": _test_secret,
        "finishSecret": secret_rotation.finish_secret,
    },
    ALTERNATING_USERS: {
        "createSecret": functools.partial(_create_secret, alternate=True),
        "setSecret": _set_other_users_password,
        "testSecret": _test_secret,
        "finishSecret": secret_rotation.finish_secret,
    },
}


# --- Database ---------------------------------------------------------------------------------


def _connect(credentials: dict[str, Any]) -> Any:
    """A connection over verified TLS, or None when the server refuses the password.

    Every other failure (TLS verification, no TLS on the server, network, pg_hba.conf) raises
    ``RotationError`` naming its cause: it is not a wrong password, and must not be taken as one.
    """
    host, port = str(credentials["host"]), _port(credentials)
    context = ssl.create_default_context(cafile=_ca_file())  # verifies chain and host name
    try:
        return pg8000.native.Connection(
            str(credentials["username"]),
            password=str(credentials["password"]),
            host=host,
            port=port,
            database=str(credentials.get("dbname") or "postgres"),
            ssl_context=context,
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except DatabaseError as error:
        code = _sqlstate(error)
        if code == _PASSWORD_REFUSED:
            return None
        raise RotationError(f"{host}:{port} refused the connection (SQLSTATE {code})") from None
    except ssl.SSLCertVerificationError as error:
        raise RotationError(
            f"TLS verification of {host}:{port} failed ({error.verify_message}); "
            f"CA bundle {_ca_file()}"
        ) from None
    except ssl.SSLError as error:
        raise RotationError(f"TLS with {host}:{port} failed ({error.reason})") from None
    except InterfaceError as error:
        # pg8000's own messages: "Server refuses SSL", or the host and port it could not reach.
        raise RotationError(f"Cannot connect over TLS to {host}:{port}: {error}") from None


def _can_log_in(credentials: dict[str, Any]) -> bool:
    connection = _connect(credentials)
    if connection is None:
        return False
    connection.close()
    return True


def _set_password(connection: Any, username: str, password: str) -> None:
    connection.run(
        f"ALTER ROLE {pg8000.native.identifier(username)} "
        f"WITH PASSWORD {pg8000.native.literal(_scram_verifier(password))}"
    )


def _create_or_set_password(
    connection: Any, username: str, password: str, member_of: str, master: str
) -> bool:
    """Create ``username`` as a login member of ``member_of``, or set its password once it is
    proven the pair of ``member_of``; in one transaction. Returns whether the user was created.

    A role that merely has the alternate's name is not trusted: the secret's ``username`` is
    data anyone who may write the secret controls, and resetting the password of a role that is
    not the pair (or of a privileged one) would hand its login to whoever reads the secret."""
    user = pg8000.native.identifier(username)
    verifier = pg8000.native.literal(_scram_verifier(password))
    connection.run("BEGIN")
    try:
        exists = connection.run("SELECT 1 FROM pg_roles WHERE rolname = :name", name=username)
        _check_pair(connection, username, member_of, master, exists=bool(exists))
        if exists:
            connection.run(f"ALTER ROLE {user} WITH PASSWORD {verifier}")
        else:
            connection.run(f"CREATE ROLE {user} WITH LOGIN PASSWORD {verifier}")
            connection.run(f"GRANT {pg8000.native.identifier(member_of)} TO {user}")
        connection.run("COMMIT")
    except Exception:
        connection.run("ROLLBACK")
        raise
    return not exists


PRIVILEGED_ATTRIBUTES: Final = {
    "rolsuper": "SUPERUSER",
    "rolcreaterole": "CREATEROLE",
    "rolcreatedb": "CREATEDB",
    "rolreplication": "REPLICATION",
    "rolbypassrls": "BYPASSRLS",
}
"""Role attributes neither user of a pair may hold: membership passes none of them on, so a
pair built by this function never has one, and a role that does is not the pair."""


def _check_pair(connection: Any, other: str, current: str, master: str, *, exists: bool) -> None:
    """Refuse unless ``other`` and ``current`` are a pair this rotation may act on: neither is
    the master user, neither holds a privileged attribute and, when ``other`` exists, one is a
    member of the other (the clone of the original, or the original of the clone)."""
    names = (other, current)
    if master in names or connection.run("SELECT current_user")[0][0] in names:
        raise RotationError(
            f"Users {current!r} and {other!r} include the master user {master!r}: "
            "alternating users never rotate the master user's password"
        )
    columns = list(PRIVILEGED_ATTRIBUTES)
    attributes = ", ".join(columns)
    rows = connection.run(
        f"SELECT rolname, {attributes} FROM pg_roles WHERE rolname IN (:a, :b)",
        a=other,
        b=current,
    )
    for name, *flags in rows:
        held = [PRIVILEGED_ATTRIBUTES[a] for a, flag in zip(columns, flags, strict=True) if flag]
        if held:
            raise RotationError(
                f"User {name!r} of the pair {current!r}/{other!r} holds {', '.join(held)}: "
                "refusing to rotate a privileged role"
            )
    if not exists:
        return
    paired = connection.run(
        "SELECT 1 FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
        "JOIN pg_roles m ON m.oid = a.member "
        "WHERE (r.rolname = :current AND m.rolname = :other) "
        "OR (r.rolname = :other AND m.rolname = :current)",
        current=current,
        other=other,
    )
    if not paired:
        raise RotationError(
            f"User {other!r} exists but is not the pair of {current!r} (neither is a member of "
            "the other): refusing to reset its password"
        )


def _scram_verifier(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5803 format)."""
    salt, stored_key, server_key, iterations = ScramMechanism("SCRAM-SHA-256").make_auth_info(
        password, iteration_count=SCRAM_ITERATIONS
    )

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _sqlstate(error: DatabaseError) -> str:
    details = error.args[0] if error.args else None
    return str(details.get("C", "unknown")) if isinstance(details, dict) else "unknown"


# --- Helpers ----------------------------------------------------------------------------------


def _strategy() -> str:
    strategy = os.environ.get("ROTATION_STRATEGY", "").strip() or SINGLE_USER
    if strategy not in _STEPS:
        raise RotationError(
            f"ROTATION_STRATEGY must be {SINGLE_USER!r} or {ALTERNATING_USERS!r}, got {strategy!r}"
        )
    return strategy


def _ca_file() -> str:
    return os.environ.get("DB_CA_FILE", "").strip() or DEFAULT_CA_FILE


def _password_rules() -> tuple[int, str]:
    raw = os.environ.get("PASSWORD_LENGTH", "").strip()
    try:
        length = int(raw) if raw else DEFAULT_PASSWORD_LENGTH
    except ValueError:
        raise RotationError(f"PASSWORD_LENGTH must be an integer, got {raw!r}") from None
    if not MIN_PASSWORD_LENGTH <= length <= MAX_PASSWORD_LENGTH:
        raise RotationError(
            f"PASSWORD_LENGTH must be between {MIN_PASSWORD_LENGTH} and {MAX_PASSWORD_LENGTH},"
            f" got {length}"
        )
    return length, os.environ.get("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE_CHARACTERS)


def _other_user(username: str) -> str:
    """The alternate of ``username``: ``<user>_clone`` and back, as the AWS template names it."""
    if username.endswith(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    other = username + CLONE_SUFFIX
    if len(other) > MAX_IDENTIFIER_LENGTH:
        raise RotationError(
            f"User {username!r} has no alternate: {other!r} is longer than "
            f"{MAX_IDENTIFIER_LENGTH} characters"
        )
    return other


def _master_arn(current: dict[str, Any]) -> str:
    master_arn = current.get("masterarn")
    if not isinstance(master_arn, str) or not master_arn:
        raise RotationError("AWSCURRENT has no 'masterarn' for alternating-users rotation")
    expected = os.environ.get("MASTER_SECRET_ARN", "").strip()
    if expected and master_arn != expected:
        raise RotationError(
            f"AWSCURRENT names master secret {master_arn}, this function rotates with {expected}"
        )
    return master_arn


def _same_user_and_host(pending: dict[str, Any], other: dict[str, Any], stage: str) -> None:
    if pending["username"] != other["username"]:
        raise RotationError(
            f"AWSPENDING user {pending['username']!r} differs from the {stage} user "
            f"{other['username']!r}"
        )
    if (pending["host"], _port(pending)) != (other["host"], _port(other)):
        raise RotationError(f"AWSPENDING names another database endpoint than {stage}")


def _port(credentials: dict[str, Any]) -> int:
    return int(credentials.get("port") or 5432)


def _parse_credentials(
    response: secret_rotation.GetSecretValueResponse, stage: str
) -> dict[str, Any]:
    """Parse and check a secret value. Error messages never include the value."""
    value: dict[str, Any] = secret_rotation.parse_json_object(response, stage)
    missing = [
        key for key in ("host", "username", "password") if not isinstance(value.get(key), str)
    ]
    if missing:
        raise RotationError(f"{stage} value has no string {', '.join(missing)}")
    if value.get("engine") not in SUPPORTED_ENGINES:
        raise RotationError(
            f"{stage} engine is {value.get('engine')!r}, this function rotates "
            f"{' or '.join(SUPPORTED_ENGINES)}"
        )
    port = value.get("port")
    if port is not None and (
        isinstance(port, bool) or not str(port).isdigit() or not 1 <= int(port) <= 65535
    ):
        raise RotationError(f"{stage} port is not a TCP port")
    return value
