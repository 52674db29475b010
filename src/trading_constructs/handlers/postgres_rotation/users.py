"""CloudFormation custom resources that set a PostgreSQL database up for per-application users,
acting as the master user over verified TLS (the rotation function's connection, CA bundle and
SCRAM verifiers; this module ships in the same asset).

``Custom::PostgresSchema`` (properties ``MasterSecretArn``, ``Owner``, ``Statements``)
    Creates ``Owner`` as a NOLOGIN role, lets it create in schema ``public`` (PostgreSQL 15
    and later revoke that from PUBLIC) and runs ``Statements`` as that role, under an advisory
    lock: the tables belong to a role nobody logs in as, not to an application's user, so no
    application can drop or alter them. The statements must be idempotent (``CREATE TABLE IF
    NOT EXISTS``): they run again on every update.
``Custom::PostgresUser`` (properties ``MasterSecretArn``, ``SecretArn``, ``Username``, ``Owner``,
``Grants``: a list of ``{"Table": ..., "Privileges": [...]}``)
    Creates ``Username`` as a LOGIN role with the password in the user's secret, unless it
    exists: then its password is left alone, since after a rotation the secret may name
    ``<user>_clone`` and the database holds passwords the rotation set. Then, as ``Owner``, it
    revokes every table privilege the user holds in ``public`` and grants exactly ``Grants``; the
    alternate user (``<user>_clone``, a member of the user) inherits them. A role that exists
    with a privileged attribute, or that is the master user, is refused.

Both are idempotent on Create and Update. Delete leaves the roles and tables: the secrets are
kept when the stack goes (their removal policy), a role dropped while tasks still log in with
the kept secret would cut them off in the middle of a replacement, and the tables hold the
platform's data. A role or table to drop is dropped by a person, knowing why.

The response goes to the pre-signed ``ResponseURL`` CloudFormation gives, over HTTPS through
the VPC's route out; a failure is reported with its reason, never with a password.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from typing import Any, Final

import pg8000.native  # type: ignore[import-untyped]
from pg8000.exceptions import DatabaseError  # type: ignore[import-untyped]

try:  # in the wheel: trading_constructs.handlers.postgres_rotation.users
    from .._shared import secret_rotation
    from .._shared.jsonlog import JsonLogger
    from . import postgres
except ImportError:  # in the Lambda asset, beside postgres.py and the shared modules
    import postgres  # type: ignore[import-not-found,no-redef]
    import secret_rotation  # type: ignore[import-not-found,no-redef]
    from jsonlog import JsonLogger  # type: ignore[import-not-found,no-redef]

__all__ = ["PRIVILEGES", "ensure_schema", "ensure_user", "handler"]

PRIVILEGES: Final = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
"""The table privileges an application user may be granted."""
SCHEMA_LOCK_KEY: Final = 7_215_532_019_448_202
"""Serializes this module's transactions, so two custom resources never race on one role."""
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RESPONSE_TIMEOUT_SECONDS: Final = 10
_log: Final = JsonLogger(__name__)

RotationError = secret_rotation.RotationError


def handler(event: dict[str, Any], context: object) -> None:
    """Run one custom-resource request and report the outcome to CloudFormation."""
    physical = str(event.get("PhysicalResourceId") or event.get("LogicalResourceId", "resource"))
    fields = {"request": event.get("RequestType"), "resource": event.get("ResourceType")}
    try:
        physical = _run(event)
    except Exception as error:  # every failure must reach CloudFormation, or it waits an hour
        reason = _reason(error)
        _log(logging.ERROR, "Request failed", reason=reason, **fields)
        _respond(event, "FAILED", physical, reason)
        return
    _log(logging.INFO, "Request done", physical_id=physical, **fields)
    _respond(event, "SUCCESS", physical, "")


def _run(event: dict[str, Any]) -> str:
    properties = dict(event.get("ResourceProperties") or {})
    kind = event.get("ResourceType")
    if kind == "Custom::PostgresSchema":
        physical = f"schema/{_identifier(properties, 'Owner')}"
    elif kind == "Custom::PostgresUser":
        physical = f"user/{_identifier(properties, 'Username')}"
    else:
        raise RotationError(f"Unknown resource type {kind!r}")
    if event["RequestType"] == "Delete":
        return physical  # left in place: see the module docstring
    master = _credentials(str(properties["MasterSecretArn"]), "the master secret")
    connection = postgres._connect(master)
    if connection is None:
        raise RotationError("The master secret's credentials do not log in")
    try:
        if kind == "Custom::PostgresSchema":
            statements = properties.get("Statements") or []
            if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
                raise RotationError("Statements must be a list of SQL strings")
            ensure_schema(connection, owner=physical.split("/", 1)[1], statements=statements)
        else:
            _provision_user(connection, properties, master)
    finally:
        connection.close()
    return physical


def _provision_user(connection: Any, properties: dict[str, Any], master: dict[str, Any]) -> None:
    username = _identifier(properties, "Username")
    secret = _credentials(str(properties["SecretArn"]), "the user's secret")
    if (secret["host"], postgres._port(secret)) != (master["host"], postgres._port(master)):
        raise RotationError("The user's secret names another database endpoint than the master")
    # Before any rotation the secret names the user itself; after one, perhaps its clone,
    # whose password is no business of this resource.
    password = str(secret["password"]) if secret["username"] == username else None
    ensure_user(
        connection,
        username=username,
        password=password,
        owner=_identifier(properties, "Owner"),
        grants=_grants(properties.get("Grants")),
    )


def ensure_schema(connection: Any, *, owner: str, statements: list[str]) -> None:
    """Create ``owner`` (NOLOGIN) if missing, and run ``statements`` as it; one transaction."""
    role = pg8000.native.identifier(owner)
    connection.run("BEGIN")
    try:
        connection.run("SELECT pg_advisory_xact_lock(:key)", key=SCHEMA_LOCK_KEY)
        if owner == connection.run("SELECT current_user")[0][0]:
            raise RotationError(f"The schema owner {owner!r} is the master user")
        found = _role(connection, owner)
        if found is None:
            connection.run(f"CREATE ROLE {role} NOLOGIN")
        elif found["rolcanlogin"] or _privileged(found):
            raise RotationError(
                f"Role {owner!r} exists and can log in or is privileged: it cannot own the schema"
            )
        connection.run(f"GRANT {role} TO CURRENT_USER")  # so the master user may SET ROLE
        connection.run(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        connection.run(f"SET LOCAL ROLE {role}")
        for statement in statements:
            connection.run(statement)
        connection.run("COMMIT")
    except Exception:
        connection.run("ROLLBACK")
        raise


def ensure_user(
    connection: Any,
    *,
    username: str,
    password: str | None,
    owner: str,
    grants: dict[str, list[str]],
) -> bool:
    """Create ``username`` (LOGIN, ``password``) if missing, and leave it exactly ``grants`` on
    the tables of ``public``, granted by ``owner``; one transaction. Returns whether the role
    was created."""
    user = pg8000.native.identifier(username)
    connection.run("BEGIN")
    try:
        connection.run("SELECT pg_advisory_xact_lock(:key)", key=SCHEMA_LOCK_KEY)
        if username in {connection.run("SELECT current_user")[0][0], owner}:
            raise RotationError(f"User {username!r} is the master user or the schema owner")
        found = _role(connection, username)
        if found is not None and _privileged(found):
            raise RotationError(
                f"User {username!r} exists and holds {', '.join(_privileged(found))}: refusing "
                "to make it an application user"
            )
        if found is None:
            if password is None:
                raise RotationError(
                    f"User {username!r} does not exist and its secret names another user"
                )
            verifier = pg8000.native.literal(postgres._scram_verifier(password))
            connection.run(f"CREATE ROLE {user} WITH LOGIN PASSWORD {verifier}")
        connection.run(f"SET LOCAL ROLE {pg8000.native.identifier(owner)}")
        connection.run(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {user}")
        for table, privileges in sorted(grants.items()):
            connection.run(
                f"GRANT {', '.join(sorted(privileges))} ON TABLE "
                f"public.{pg8000.native.identifier(table)} TO {user}"
            )
        connection.run("COMMIT")
    except Exception:
        connection.run("ROLLBACK")
        raise
    return found is None


def _role(connection: Any, name: str) -> dict[str, Any] | None:
    columns = ("rolcanlogin", *postgres.PRIVILEGED_ATTRIBUTES)
    rows = connection.run(
        f"SELECT {', '.join(columns)} FROM pg_roles WHERE rolname = :name", name=name
    )
    return dict(zip(columns, rows[0], strict=True)) if rows else None


def _privileged(role: dict[str, Any]) -> list[str]:
    return [keyword for name, keyword in postgres.PRIVILEGED_ATTRIBUTES.items() if role[name]]


def _credentials(arn: str, label: str) -> dict[str, Any]:
    response = secret_rotation.client().get_secret_value(
        SecretId=arn, VersionStage=secret_rotation.AWSCURRENT
    )
    return postgres._parse_credentials(response, f"AWSCURRENT of {label}")


def _identifier(properties: dict[str, Any], name: str) -> str:
    value = properties.get(name)
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise RotationError(f"{name} must be a PostgreSQL identifier, got {value!r}")
    return value


def _grants(raw: object) -> dict[str, list[str]]:
    if not isinstance(raw, list):
        raise RotationError("Grants must be a list of {Table, Privileges}")
    grants: dict[str, list[str]] = {}
    for entry in raw:
        table = _identifier(entry if isinstance(entry, dict) else {}, "Table")
        privileges = entry.get("Privileges")
        if not isinstance(privileges, list) or not privileges or not set(privileges) <= PRIVILEGES:
            raise RotationError(
                f"Privileges of {table!r} must be some of {', '.join(sorted(PRIVILEGES))}"
            )
        grants[table] = sorted(set(grants.get(table, [])) | set(privileges))
    return grants


def _reason(error: Exception) -> str:
    """What CloudFormation shows: our own messages, else the type and SQLSTATE; no values."""
    if isinstance(error, RotationError):
        return str(error)[:500]
    if isinstance(error, DatabaseError):
        details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        return f"PostgreSQL {details.get('C', '?')}: {details.get('M', '')}"[:500]
    return f"{type(error).__name__} (see the function's log)"


def _respond(event: dict[str, Any], status: str, physical: str, reason: str) -> None:
    body: dict[str, object] = {
        "Status": status,
        "Reason": reason or "See the function's log",
        "PhysicalResourceId": physical,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": False,
        "Data": {},
    }
    _send(str(event["ResponseURL"]), json.dumps(body).encode())


def _send(url: str, body: bytes) -> None:
    """PUT the response to CloudFormation's pre-signed S3 URL (HTTPS only)."""
    if not url.startswith("https://"):
        raise RotationError("ResponseURL is not an HTTPS URL")
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=_RESPONSE_TIMEOUT_SECONDS) as response:
        response.read()
