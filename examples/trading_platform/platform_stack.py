"""The trading analytics platform: what ``cdk synth`` and ``cdk deploy`` build from this repo."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from trading_constructs import TradingCluster, VpcOptions


class TradingPlatformStack(Stack):
    """The whole platform in one stack: cluster, services, mesh and edge."""

    def __init__(self, scope: Construct, id: str, *, nat_gateways: int = 3, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.platform = TradingCluster(
            self, "Platform", vpc_options=VpcOptions(nat_gateways=nat_gateways)
        )
