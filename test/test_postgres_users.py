"""The database-user provisioning handler (``handlers/postgres_rotation/users.py``) against a real
PostgreSQL (TLS only, SCRAM), with the example's schema and grants.

The master user is set up as on RDS: a CREATEROLE login that owns the database, not a
superuser. Secrets Manager is a dictionary answering ``GetSecretValue`` (the only call the
handler makes; moto would cost half a second a test), and CloudFormation's response is captured
where the handler would PUT it.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pg8000.native
import pytest
from postgres_server import PostgresServer

from examples.trading_platform.services.common.schema import GRANTS, SCHEMA, TABLES
from trading_constructs.handlers.postgres_rotation import users

ALL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


class FakeSecretsManager:
    """The current value of each secret, by ARN."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def create_secret(self, *, Name: str, SecretString: str) -> dict[str, str]:
        arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{Name}-AbCdEf"
        self.values[arn] = SecretString
        return {"ARN": arn}

    def put_secret_value(self, *, SecretId: str, SecretString: str) -> None:
        self.values[SecretId] = SecretString

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, str]:
        assert VersionStage == "AWSCURRENT"
        return {"ARN": SecretId, "SecretString": self.values[SecretId]}


@dataclass
class Platform:
    """A database owned by a master user, their secrets in moto, and what CloudFormation got."""

    server: PostgresServer
    sm: FakeSecretsManager
    dbname: str
    master: str
    master_arn: str
    suffix: str
    responses: list[dict[str, Any]]

    @property
    def owner(self) -> str:
        return f"owner_{self.suffix}"

    def name(self, service: str) -> str:
        """A user name no other test of the module has."""
        return f"{service.replace('-', '_')}_{self.suffix}_{uuid.uuid4().hex[:6]}"

    def secret(self, username: str, password: str) -> str:
        value = {**self.value(username, password), "masterarn": self.master_arn}
        return str(
            self.sm.create_secret(Name=f"app/{username}", SecretString=json.dumps(value))["ARN"]
        )

    def value(self, username: str, password: str) -> dict[str, Any]:
        return {
            "engine": "postgres",
            "host": self.server.host,
            "port": self.server.port,
            "dbname": self.dbname,
            "username": username,
            "password": password,
        }

    def request(self, kind: str, request: str = "Create", **properties: Any) -> dict[str, Any]:
        """Send one custom-resource request; the response CloudFormation would receive."""
        event = {
            "RequestType": request,
            "ResourceType": kind,
            "ResponseURL": "https://cloudformation-custom-resource-response.example/x",
            "StackId": "stack",
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "Resource",
            "ResourceProperties": {"MasterSecretArn": self.master_arn, **properties},
        }
        if request != "Create":
            event["PhysicalResourceId"] = "earlier"
        users.handler(event, None)
        return self.responses[-1]

    def schema(self) -> dict[str, Any]:
        return self.request("Custom::PostgresSchema", Owner=self.owner, Statements=list(SCHEMA))

    def user(
        self, service: str, username: str, arn: str, request: str = "Create", owner: str = ""
    ) -> dict[str, Any]:
        grants = [
            {"Table": table, "Privileges": list(privileges)}
            for table, privileges in GRANTS[service].items()
        ]
        return self.request(
            "Custom::PostgresUser",
            request,
            SecretArn=arn,
            Username=username,
            Owner=owner or self.owner,
            Grants=grants,
        )

    def admin(self) -> pg8000.native.Connection:
        return self.server.connect(database=self.dbname)

    def connect(self, username: str, password: str) -> pg8000.native.Connection:
        return self.server.connect(user=username, password=password, database=self.dbname)


@pytest.fixture(scope="module")
def platform(postgres: PostgresServer) -> Iterator[Platform]:
    """One database for the module, its schema made: each test makes users of its own."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _platform(monkeypatch, postgres)


def _platform(monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer) -> Iterator[Platform]:
    monkeypatch.setenv("DB_CA_FILE", str(postgres.ca_file))
    sm = FakeSecretsManager()
    monkeypatch.setattr(users.secret_rotation, "client", lambda: sm)
    suffix = uuid.uuid4().hex[:10]
    master, dbname, password = f"master_{suffix}", f"market_{suffix}", secrets.token_urlsafe(24)
    admin = postgres.connect()
    try:  # as RDS makes its master user: CREATEROLE and CREATEDB, owner of the database
        admin.run(
            f"CREATE ROLE {master} LOGIN CREATEROLE CREATEDB "
            f"PASSWORD {pg8000.native.literal(password)}"
        )
        admin.run(f"CREATE DATABASE {dbname} OWNER {master}")
    finally:
        admin.close()
    responses: list[dict[str, Any]] = []
    monkeypatch.setattr(users, "_send", lambda _url, body: responses.append(json.loads(body)))
    value = {"engine": "postgres", "host": postgres.host, "port": postgres.port}
    value |= {"dbname": dbname, "username": master, "password": password}
    arn = str(sm.create_secret(Name="master", SecretString=json.dumps(value))["ARN"])
    platform = Platform(postgres, sm, dbname, master, arn, suffix, responses)
    assert platform.schema()["Status"] == "SUCCESS"
    yield platform
    admin = postgres.connect()
    try:  # roles are the server's: every one this test made ends in its suffix
        admin.run(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        roles = admin.run("SELECT rolname FROM pg_roles WHERE rolname LIKE :p", p=f"%{suffix}%")
        for (role,) in sorted(roles, key=lambda row: "master" in row[0]):
            admin.run(f"DROP ROLE {role}")
    finally:
        admin.close()


def privileges(platform: Platform, username: str) -> dict[str, set[str]]:
    """What ``username`` may do to each table, as PostgreSQL answers it (memberships count)."""
    admin = platform.admin()
    try:
        return {
            table: {
                privilege
                for privilege in ALL_PRIVILEGES
                if admin.run(
                    "SELECT has_table_privilege(:user, :table, :privilege)",
                    user=username,
                    table=f"public.{table}",
                    privilege=privilege,
                )[0][0]
            }
            for table in TABLES
        }
    finally:
        admin.close()


def verifier(platform: Platform, username: str) -> str:
    admin = platform.server.connect()
    try:
        return str(
            admin.run("SELECT rolpassword FROM pg_authid WHERE rolname = :n", n=username)[0][0]
        )
    finally:
        admin.close()


def expected(service: str) -> dict[str, set[str]]:
    return {table: set(GRANTS[service].get(table, ())) for table in TABLES}


# --- Create, update, delete -------------------------------------------------------------------


def test_the_schema_belongs_to_a_role_nobody_logs_in_as(platform: Platform) -> None:
    # WHEN the schema resource has been created, and is updated
    assert platform.schema()["Status"] == "SUCCESS"
    # THEN every table is there, owned by the NOLOGIN owner role
    admin = platform.admin()
    try:
        owners = admin.run(
            "SELECT c.relname, r.rolname, r.rolcanlogin FROM pg_class c "
            "JOIN pg_roles r ON r.oid = c.relowner WHERE c.relname = ANY(CAST(:t AS text[]))",
            t=list(TABLES),
        )
    finally:
        admin.close()
    assert {row[0]: (row[1], row[2]) for row in owners} == {
        table: (platform.owner, False) for table in TABLES
    }


@pytest.mark.parametrize("service", sorted(GRANTS))
def test_each_user_gets_exactly_its_grants_and_a_second_run_changes_nothing(
    platform: Platform, service: str
) -> None:
    # GIVEN the schema and a user's secret
    username, password = platform.name(service), secrets.token_urlsafe(24)
    arn = platform.secret(username, password)
    # WHEN the user resource is created
    created = platform.user(service, username, arn)
    # THEN the user logs in with its secret's password and holds exactly its service's grants
    assert created == {**created, "Status": "SUCCESS", "PhysicalResourceId": f"user/{username}"}
    platform.connect(username, password).close()
    assert privileges(platform, username) == expected(service)
    # AND it is no superuser, no role creator, and no owner of anything
    admin = platform.admin()
    try:
        ((attributes,),) = admin.run(
            "SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls] "
            "FROM pg_roles WHERE rolname = :n",
            n=username,
        )
    finally:
        admin.close()
    assert attributes == [False] * 5
    # WHEN it runs again (an update)
    before = verifier(platform, username)
    assert platform.user(service, username, arn, "Update")["Status"] == "SUCCESS"
    # THEN nothing changed
    assert verifier(platform, username) == before
    assert privileges(platform, username) == expected(service)


def test_an_update_after_a_rotation_leaves_the_passwords_alone(platform: Platform) -> None:
    # GIVEN a provisioned user whose secret a rotation switched to its clone
    username, password = platform.name("data-ingestion"), secrets.token_urlsafe(24)
    arn = platform.secret(username, password)
    platform.user("data-ingestion", username, arn)
    clone_password = secrets.token_urlsafe(24)
    admin = platform.server.connect()
    try:
        admin.run(
            f"CREATE ROLE {username}_clone LOGIN PASSWORD {pg8000.native.literal(clone_password)}"
        )
        admin.run(f"GRANT {username} TO {username}_clone")
    finally:
        admin.close()
    platform.sm.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(
            {
                **platform.value(f"{username}_clone", clone_password),
                "masterarn": platform.master_arn,
            }
        ),
    )
    before = verifier(platform, username)
    # WHEN the stack updates the user resource
    assert platform.user("data-ingestion", username, arn, "Update")["Status"] == "SUCCESS"
    # THEN neither password changed, and both log in with what they had
    assert verifier(platform, username) == before
    platform.connect(username, password).close()
    platform.connect(f"{username}_clone", clone_password).close()
    # AND the clone holds the user's grants through its membership
    assert privileges(platform, f"{username}_clone") == expected("data-ingestion")


def test_an_update_takes_back_privileges_no_longer_declared(platform: Platform) -> None:
    username, password = platform.name("analytics-engine"), secrets.token_urlsafe(24)
    arn = platform.secret(username, password)
    platform.user("analytics-engine", username, arn)
    admin = platform.admin()
    try:  # a privilege granted by hand, by the owner
        admin.run(f"SET ROLE {platform.owner}")
        admin.run(f"GRANT INSERT, DELETE ON ticks TO {username}")
    finally:
        admin.close()
    assert "INSERT" in privileges(platform, username)["ticks"]
    platform.user("analytics-engine", username, arn, "Update")
    assert privileges(platform, username) == expected("analytics-engine")


@pytest.mark.parametrize("attribute", ["SUPERUSER", "CREATEROLE", "BYPASSRLS"])
def test_an_existing_privileged_role_of_that_name_is_refused(
    platform: Platform, attribute: str
) -> None:
    username = platform.name("data-ingestion")
    admin = platform.server.connect()
    try:
        admin.run(f"CREATE ROLE {username} LOGIN {attribute}")
    finally:
        admin.close()
    response = platform.user("data-ingestion", username, platform.secret(username, "x" * 24))
    assert response["Status"] == "FAILED"
    assert username in response["Reason"] and attribute in response["Reason"]
    assert privileges(platform, username)["ticks"] == set() or attribute == "SUPERUSER"


def test_the_master_user_is_never_made_an_application_user(platform: Platform) -> None:
    before = verifier(platform, platform.master)
    arn = platform.secret(platform.master, "y" * 24)
    response = platform.user("data-ingestion", platform.master, arn)
    assert response["Status"] == "FAILED" and "master user" in response["Reason"]
    assert verifier(platform, platform.master) == before


def test_delete_leaves_the_role_and_reports_success(platform: Platform) -> None:
    username, password = platform.name("data-ingestion"), secrets.token_urlsafe(24)
    arn = platform.secret(username, password)
    platform.user("data-ingestion", username, arn)
    assert platform.user("data-ingestion", username, arn, "Delete")["Status"] == "SUCCESS"
    platform.connect(username, password).close()


def test_a_failure_reaches_cloudformation_without_a_password(platform: Platform) -> None:
    password = secrets.token_urlsafe(24)
    username = platform.name("data-ingestion")
    # a schema owner that does not exist: there is nobody to grant from
    response = platform.user(
        "data-ingestion", username, platform.secret(username, password), owner="nobody_here"
    )
    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith("PostgreSQL 22023")  # the owner role does not exist
    assert password not in json.dumps(response)


# --- What each service's user may do ----------------------------------------------------------

_FORBIDDEN = {
    "data-ingestion": [
        "INSERT INTO analyses (symbol) VALUES ('X')",
        "UPDATE analyses SET result = 'x'",
        "DELETE FROM symbols",
        "DROP TABLE ticks",
        "CREATE TABLE mine (x int)",
    ],
    "analytics-engine": [
        "INSERT INTO ticks (symbol, price, size, ts) VALUES ('X', 1, 1, 1)",
        "UPDATE symbols SET ticks_total = 0",
        "DELETE FROM ticks",
        "INSERT INTO symbols (symbol) VALUES ('Y')",
        "DROP TABLE analyses",
    ],
}


@pytest.mark.parametrize("service", sorted(_FORBIDDEN))
def test_a_users_statements_beyond_its_service_are_refused(
    platform: Platform, service: str
) -> None:
    username, password = platform.name(service), secrets.token_urlsafe(24)
    platform.user(service, username, platform.secret(username, password))
    connection = platform.connect(username, password)
    refusals = {}
    try:
        for statement in _FORBIDDEN[service]:
            with pytest.raises(pg8000.native.DatabaseError) as refused:
                connection.run(statement)
            refusals[statement] = refused.value.args[0]["C"]
    finally:
        connection.close()
    assert set(refusals.values()) == {"42501"}  # insufficient_privilege, each of them
