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
