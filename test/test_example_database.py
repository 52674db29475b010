"""The example's market-data database (issue 17): created after the permissions it needs, and
named so that a stack deleted and deployed again, or a replaced resource, never meets a
leftover of the same name."""

from __future__ import annotations

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
