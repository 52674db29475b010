"""The example's market-data database: created after the permissions it needs, and
named so that a stack deleted and deployed again, or a replaced resource, never meets a
leftover of the same name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import SynthesizedApp

APPS = ["mutual_tls", "service_connect", "example"]


def _resources(app: SynthesizedApp, kind: str) -> dict[str, Any]:
    resources: dict[str, Any] = app.templates["TradingPlatform"]["Resources"]
    return {k: r for k, r in resources.items() if r["Type"] == kind}


@pytest.fixture(params=APPS)
def app(request: pytest.FixtureRequest) -> SynthesizedApp:
    synthesized: SynthesizedApp = request.getfixturevalue(request.param)
    return synthesized


def test_instances_are_created_after_the_monitoring_roles_policy(app: SynthesizedApp) -> None:
    # GIVEN enhanced monitoring on both Aurora instances
    (policy,) = (
        k
        for k in _resources(app, "AWS::IAM::ManagedPolicy")
        if k.startswith("MarketDataDbMonitoringPolicy")
    )
    instances = _resources(app, "AWS::RDS::DBInstance")
    assert len(instances) == 2
    for instance in instances.values():
        assert instance["Properties"]["MonitoringRoleArn"]["Fn::GetAtt"][0].startswith(
            "MarketDataDbMonitoringRole"
        )
        # THEN RDS meets a role that may already write the OS metrics
        assert policy in instance["DependsOn"]


# The last part of the stack's ID: a GUID CloudFormation draws per stack, so unique per life.
STACK_ID_SUFFIX = {
    "Fn::Select": [
        4,
        {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]},
    ]
}


def test_names_forced_by_aws_on_retained_resources_end_in_the_stacks_id(
    app: SynthesizedApp,
) -> None:
    # GIVEN the retained resources whose names AWS forces or requires
    (cluster,) = _resources(app, "AWS::RDS::DBCluster").values()
    (vault,) = _resources(app, "AWS::Backup::BackupVault").values()
    rds_logs = next(
        r
        for k, r in _resources(app, "AWS::Logs::LogGroup").items()
        if k.startswith("MarketDataDbLogs")
    )
    # THEN the cluster identifier (which names RDS's log group) ends in the stack's ID part
    identifier = cluster["Properties"]["DBClusterIdentifier"]
    assert identifier == {"Fn::Join": ["-", ["tradingplatform-marketdata", STACK_ID_SUFFIX]]}
    assert rds_logs["Properties"]["LogGroupName"] == {
        "Fn::Join": ["", ["/aws/rds/cluster/", identifier, "/postgresql"]]
    }
    assert rds_logs["DeletionPolicy"] == "RetainExceptOnCreate"
    # and so does the vault's name, which AWS Backup requires
    assert vault["Properties"]["BackupVaultName"] == {
        "Fn::Join": ["-", ["marketdata", STACK_ID_SUFFIX]]
    }
    assert vault["DeletionPolicy"] == "RetainExceptOnCreate"


@pytest.mark.parametrize(
    ("stack_name", "prefix"),
    [
        ("TradingPlatform", "tradingplatform-marketdata"),
        ("Prod--Trading_Platform", "prod-trading-platform-marketdata"),
        ("A" * 128, f"{'a' * 38}-marketdata"),
        ("Stage-" + "x" * 31 + "-Tail", f"stage-{'x' * 31}-marketdata"),
    ],
)
def test_identifier_prefix_is_a_valid_rds_identifier_with_room_for_the_suffix(
    stack_name: str, prefix: str
) -> None:
    from examples.trading_platform.platform_stack import _identifier_prefix

    made = _identifier_prefix(stack_name)
    assert made == prefix
    # RDS: a letter first, letters, digits and single hyphens, at most 63 with "-" + 12 digits
    assert len(made) + 13 <= 63
    assert made[0].isalpha() and "--" not in made and not made.endswith("-")


# --- Who reads the master secret ---------------------------------------------------------------


def _master_secret(app: SynthesizedApp) -> str:
    (master,) = (
        k
        for k in _resources(app, "AWS::SecretsManager::Secret")
        if k.startswith("MarketDataDbSecret")
    )
    return master


def _roles_reading(app: SynthesizedApp, secret: str) -> set[str]:
    """The roles any policy lets read ``secret`` (a statement naming it, whatever the action)."""
    readers: set[str] = set()
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in _resources(app, kind).values():
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            if any({"Ref": secret} in _as_list(s.get("Resource")) for s in statements):
                readers |= {role["Ref"] for role in policy["Properties"].get("Roles", [])}
    for logical_id, role in _resources(app, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            if any(
                {"Ref": secret} in _as_list(s.get("Resource"))
                for s in inline["PolicyDocument"]["Statement"]
            ):
                readers.add(logical_id)
    return readers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _task_roles(app: SynthesizedApp) -> set[str]:
    """The task and execution roles of every task definition."""
    return {
        task["Properties"][key]["Fn::GetAtt"][0]
        for task in _resources(app, "AWS::ECS::TaskDefinition").values()
        for key in ("TaskRoleArn", "ExecutionRoleArn")
        if key in task["Properties"]
    }


def test_no_task_or_execution_role_can_read_the_master_secret(app: SynthesizedApp) -> None:
    # GIVEN the example's master secret and every task definition's roles
    readers = _roles_reading(app, _master_secret(app))
    task_roles = _task_roles(app)
    assert task_roles, "no task definition found"
    # THEN no task or execution role is among the master secret's readers
    assert not readers & task_roles
    # AND its readers are the rotation functions (its own, and each user's alternating
    # rotation) and the function that creates the schema and the users
    assert readers and all(
        r.startswith(("MarketDataDbSecretRotationRole", "MarketDataDbSecretUsersProvisioningRole"))
        or "DbUserCredentialsRotationRole" in r
        for r in readers
    ), readers


def test_each_database_service_reads_its_own_users_secret(app: SynthesizedApp) -> None:
    # GIVEN the secret each container is told to read (DB_SECRET_ARN), by task family
    told: dict[str, str] = {}
    for task in _resources(app, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            for variable in container.get("Environment", []):
                if variable["Name"] == "DB_SECRET_ARN":
                    told[task["Properties"]["Family"]] = variable["Value"]["Ref"]
    # THEN data-ingestion and analytics-engine each read a user's secret of their own (the
    # api-gateway reads none), never the master secret
    assert sorted({s.split("DbUser")[0] for s in told.values()}) == [
        "AnalyticsEngine",
        "DataIngestion",
    ], told
    for family, secret in told.items():
        assert secret.startswith(family.split("TradingPlatform")[-1][:10]), (family, secret)
    assert all("DbUserCredentialsSecret" in secret for secret in told.values()), told
    # AND each such secret names the master secret, whose user its rotation alternates with
    secrets = _resources(app, "AWS::SecretsManager::Secret")
    for secret in told.values():
        template = json.dumps(secrets[secret]["Properties"]["GenerateSecretString"])
        assert "masterarn" in template and f'"Ref": "{_master_secret(app)}"' in template


def test_a_users_first_rotation_waits_for_its_role_and_the_master_for_every_user(
    app: SynthesizedApp,
) -> None:
    # GIVEN the custom resources that create the schema and the users
    resources: dict[str, Any] = app.templates["TradingPlatform"]["Resources"]
    users = {k for k, r in resources.items() if r["Type"] == "Custom::PostgresUser"}
    (schema,) = (k for k, r in resources.items() if r["Type"] == "Custom::PostgresSchema")
    assert {u.split("DbUser")[0] for u in users} == {"DataIngestion", "AnalyticsEngine"}
    rotations = _resources(app, "AWS::SecretsManager::RotationSchedule")
    master = _master_secret(app)
    for user in users:
        # THEN each runs after the schema, its function's policy and the database
        depends = set(resources[user]["DependsOn"])
        assert schema in depends
        assert any(d.startswith("MarketDataDbSecretUsersProvisioningPolicy") for d in depends)
        assert any(d.startswith("MarketDataDb") and "Writer" in d for d in depends)
        # AND its secret's rotation (which logs in as the user first) waits for it
        own = user.split("DbUser")[0]
        (schedule,) = (
            r
            for r in rotations.values()
            if r["Properties"]["SecretId"]["Ref"].startswith(f"{own}DbUserCredentialsSecret")
        )
        assert user in schedule["DependsOn"]
    # AND the master password does not rotate while they run
    (master_rotation,) = (
        r for r in rotations.values() if r["Properties"]["SecretId"] == {"Ref": master}
    )
    assert users | {schema} <= set(master_rotation["DependsOn"])
