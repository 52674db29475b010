"""A database user per application: its own login role, holding only the table privileges the
application declares, with its own secret rotated by alternating users; and the schema those
privileges are on, owned by a role nobody logs in as.

The master secret (a ``RotatingDbSecret`` attached to its database) is read by two kinds of
functions only: its own rotation function, and one provisioning function per master secret
(``handlers/postgres_rotation/users.py``, in the rotation function's asset) that runs the
``Custom::PostgresSchema`` and ``Custom::PostgresUser`` resources in the VPC, over TLS verified
against the Amazon RDS root CAs. No application needs it: it reads its own user's secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from ._validation import InvalidPropType, Problems, check_type, construct_owner, is_token
from .assets import POSTGRES_ROTATION
from .secret import (
    _EVERY_90_DAYS,
    _LAMBDA_TASK_ROOT,
    RDS_CA_BUNDLE,
    DbRotation,
    RotatingDbSecret,
    _rotation_function,
    _RotationFunctionSpec,
)

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
"""The table privileges an application user may be granted."""

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_IDENTIFIER_RULE = "1 to 63 letters, digits or underscores, not starting with a digit"


@dataclass(frozen=True, kw_only=True)
class TableGrant:
    """Privileges on one table of schema ``public``: what an application's statements need.

    Attributes:
        table: The table's name (unquoted PostgreSQL identifier).
        privileges: Some of SELECT, INSERT, UPDATE and DELETE. ``UPDATE`` also covers
            ``SELECT ... FOR UPDATE``; identity columns need no sequence privilege.
    """

    table: str
    privileges: Sequence[str]

    def __post_init__(self) -> None:
        problems = Problems("TableGrant")
        problems.pattern("table", self.table, _IDENTIFIER, _IDENTIFIER_RULE)
        privileges = problems.sequence("privileges", self.privileges, "str")
        if isinstance(self.privileges, (list, tuple)) and not self.privileges:
            problems.add("privileges", list(self.privileges), f"some of {', '.join(PRIVILEGES)}")
        for privilege in privileges:
            if not is_token(privilege) and privilege not in PRIVILEGES:
                problems.add("privileges", privilege, f"one of {', '.join(PRIVILEGES)}")
        problems.raise_if_any()


class _Provisioner(Construct):
    """The one function per master secret that runs the schema and user resources."""

    def __init__(self, master: RotatingDbSecret) -> None:
        super().__init__(master, "Users")
        placement = master._placement
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=placement.vpc,
            description=f"Provisioning of {placement.dbname} users: Secrets Manager, "
            "the CloudFormation response URL and the database",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Secrets Manager API and the response URL"
        )
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(placement.vpc.vpc_cidr_block),
            ec2.Port.tcp(master.port),
            "The database, inside the VPC",
        )
        self.function: lambda_.Function = _rotation_function(
            self,
            _RotationFunctionSpec(
                purpose=f"{placement.dbname} users",
                asset=POSTGRES_ROTATION.build(),
                handler="users.handler",
                environment={"DB_CA_FILE": f"{_LAMBDA_TASK_ROOT}/{RDS_CA_BUNDLE}"},
                statements=[_read(master.secret, "ReadTheMasterSecret")],
                rotates=False,
                description=f"Creates the {placement.dbname} schema and application users "
                "as the master user (CloudFormation custom resources)",
                prefix="Provisioning",
            ),
            secret=master.secret,
            key=placement.key,
            vpc=placement.vpc,
            vpc_subnets=placement.vpc_subnets,
            security_groups=[self.security_group],
            log_retention=placement.log_retention,
            removal_policy=placement.removal_policy,
            reserved_concurrency=None,
        )
        policy = self.node.find_child("ProvisioningPolicy")
        assert isinstance(policy, iam.ManagedPolicy)
        self.policy = policy
        connections = getattr(master.attached_to, "connections", None)
        if isinstance(connections, ec2.Connections):
            connections.allow_from(
                self.security_group, ec2.Port.tcp(master.port), "provisioning of its users"
            )

    def read(self, secret: sm.ISecret, sid: str) -> None:
        """Let the function read an application user's secret (its password, at creation)."""
        self.policy.add_statements(_read(secret, sid))

    def run(self, scope: Construct, master: RotatingDbSecret, **props: object) -> CustomResource:
        """A custom resource this function runs, created once the function may act and the
        database (with the master secret's endpoint) is there; the master's rotation waits for
        it, so the master password does not change under it on a first deploy."""
        kind = str(props.pop("resource_type"))
        resource = CustomResource(
            scope,
            "Resource",
            service_token=self.function.function_arn,
            resource_type=kind,
            properties={"MasterSecretArn": master.secret.secret_arn, **props},
        )
        resource.node.add_dependency(self.policy)
        if master.attachment is not None and isinstance(master.attachment, Construct):
            resource.node.add_dependency(master.attachment)
        if isinstance(master.attached_to, Construct):
            resource.node.add_dependency(master.attached_to)
        master.rotation_schedule.node.add_dependency(resource)
        return resource


def _read(secret: sm.ISecret, sid: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn]
    )


def _provisioner(master: RotatingDbSecret) -> _Provisioner:
    found = master.node.try_find_child("Users")
    return found if isinstance(found, _Provisioner) else _Provisioner(master)


def _check_master(problems: Problems, master: object) -> RotatingDbSecret | None:
    if not isinstance(master, RotatingDbSecret):
        problems.add("master", master, "a RotatingDbSecret")
        return None
    if master.attached_to is None:
        problems.add(
            "master",
            master.node.path,
            "a RotatingDbSecret attached to its database (master.attach(database)) first: the "
            "users are created on that database",
        )
    return master


class DbSchema(Construct):
    """The tables applications share, created by the platform as ``owner``, a NOLOGIN role:
    no application's user owns them, so none can drop or alter them, and each gets only what
    its ``DbUser`` grants. The statements run again on every update, under an advisory lock, so
    they must be idempotent (``CREATE TABLE IF NOT EXISTS``, ``CREATE INDEX IF NOT EXISTS``)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        master: RotatingDbSecret,
        statements: Sequence[str],
        owner: str = "schema_owner",
    ) -> None:
        """
        :param master: the database's master secret, attached to the database.
        :param statements: the SQL that creates the tables (idempotent), run as ``owner`` in
            schema ``public``.
        :param owner: the NOLOGIN role that owns the tables. :default: 'schema_owner'
        """
        problems = Problems(construct_owner("DbSchema", scope.node.path, id))
        master_secret = _check_master(problems, master)
        problems.pattern("owner", owner, _IDENTIFIER, _IDENTIFIER_RULE)
        items = problems.sequence("statements", statements, "str")
        if isinstance(statements, (list, tuple)) and not items:
            problems.add("statements", list(statements), "at least one SQL statement")
        for item in items:
            if not isinstance(item, str) or not (is_token(item) or item.strip()):
                problems.add("statements", item, "an SQL statement (a non-empty string)")
        problems.raise_if_any()
        assert master_secret is not None
        super().__init__(scope, id)
        self.owner: str = owner
        """The role that owns the tables."""
        self.resource: CustomResource = _provisioner(master_secret).run(
            self,
            master_secret,
            resource_type="Custom::PostgresSchema",
            Owner=owner,
            Statements=list(statements),
        )
        """The custom resource that runs the statements."""


class DbUser(Construct):
    """An application's own database user: a login role holding exactly ``grants`` on the
    tables of ``schema``, and its own secret (engine, host, port, dbname, username, password,
    masterarn) rotated with alternating users, so a rotation never changes the password of a
    login in use. The role is created with the secret's first password by a custom resource
    run as the master user, before the first rotation; later runs leave passwords to the
    rotation. Deleting the resource leaves the role (the secret is kept too; a person drops
    what is to go)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        master: RotatingDbSecret,
        schema: DbSchema,
        username: str,
        grants: Sequence[TableGrant],
        rotate_every: Duration = _EVERY_90_DAYS,
        secret_name: str | None = None,
    ) -> None:
        """
        :param master: the database's master secret, attached to the database.
        :param schema: the tables the grants are on.
        :param username: the user, 1 to 57 letters, digits or underscores starting with a
            letter (its alternate adds '_clone').
        :param grants: the privileges the application needs, one ``TableGrant`` per table.
        :param rotate_every: the rotation interval, 4 hours to 1000 days. :default: 90 days
        :param secret_name: the user's secret's name. :default: a name CloudFormation generates
        """
        problems = Problems(construct_owner("DbUser", scope.node.path, id))
        master_secret = _check_master(problems, master)
        if not isinstance(schema, DbSchema):
            problems.add("schema", schema, "a DbSchema")
        items = problems.sequence("grants", grants, "TableGrant")
        for grant in items:
            if not isinstance(grant, TableGrant):
                problems.add("grants", grant, "a TableGrant")
        if isinstance(grants, (list, tuple)) and not grants:
            problems.add("grants", [], "at least one TableGrant")
        tables = [grant.table for grant in items if isinstance(grant, TableGrant)]
        duplicates = sorted({t for t in tables if isinstance(t, str) and tables.count(t) > 1})
        if duplicates:
            problems.add("grants", duplicates, "one TableGrant per table")
        problems.raise_if_any()
        assert master_secret is not None
        super().__init__(scope, id)
        self.username: str = username
        """The user's role (its alternate is ``<username>_clone``)."""
        self.credentials: RotatingDbSecret = self._credentials(
            master_secret, username, rotate_every, secret_name
        )
        """The user's secret and its rotation function."""
        self.secret: sm.Secret = self.credentials.secret
        """The user's secret: what the application reads (``DB_SECRET_ARN``)."""
        provisioner = _provisioner(master_secret)
        provisioner.read(self.secret, f"Read{''.join(p.title() for p in username.split('_'))}")
        self.resource: CustomResource = provisioner.run(
            self,
            master_secret,
            resource_type="Custom::PostgresUser",
            SecretArn=self.secret.secret_arn,
            Username=username,
            Owner=schema.owner,
            Grants=[
                {"Table": grant.table, "Privileges": sorted(set(grant.privileges))}
                for grant in grants
            ],
        )
        """The custom resource that creates the role and makes its grants."""
        self.resource.node.add_dependency(schema.resource)
        if isinstance(self.credentials.attachment, Construct):
            self.resource.node.add_dependency(self.credentials.attachment)
        # alternating-users rotation logs in as the user first: the role must exist
        self.credentials.rotation_schedule.node.add_dependency(self.resource)

    def _credentials(
        self,
        master: RotatingDbSecret,
        username: str,
        rotate_every: Duration,
        secret_name: str | None,
    ) -> RotatingDbSecret:
        placement = master._placement
        check_type(f"DbUser {self.node.path!r}", "username", username, str)
        credentials = RotatingDbSecret(
            self,
            "Credentials",
            key=placement.key,
            vpc=placement.vpc,
            engine=master.engine,
            username=username,
            dbname=placement.dbname,
            port=master.port,
            rotation=DbRotation.alternating_users(master.secret),
            rotate_every=rotate_every,
            vpc_subnets=placement.vpc_subnets,
            log_retention=placement.log_retention,
            removal_policy=placement.removal_policy,
            secret_name=secret_name,
            alarms=placement.alarms,
        )
        if master.attached_to is None:  # checked in the constructor
            raise InvalidPropType(f"DbUser {self.node.path!r}: master is not attached")
        credentials.attach(master.attached_to)
        return credentials

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read this user's secret and decrypt it with its key: nothing broader."""
        return self.credentials.grant_read(grantee)
