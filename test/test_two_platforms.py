"""Two platforms in one app: a sidecar mesh pulls Envoy through a pull-through cache the
cluster makes, whose prefix ECR allows once per registry (account and region). A second
platform on the same mesh there fails at synth with a message that names the cache and its
prefix, so a user knows which resource collides. Nothing here synthesizes."""

from __future__ import annotations

import re

import pytest
from aws_cdk import App, Environment, Stack

from trading_constructs import Mesh, TradingCluster

ENV = Environment(account="123456789012", region="us-east-1")


def test_a_second_platform_on_the_mutual_tls_mesh_names_the_colliding_cache() -> None:
    # GIVEN a platform on the mutual-TLS mesh in an account and region
    app = App()
    TradingCluster(Stack(app, "First", env=ENV), "Platform", mesh=Mesh.mutual_tls())
    # WHEN a second stack of the same account and region builds another one
    with pytest.raises(ValueError) as raised:
        TradingCluster(Stack(app, "Second", env=ENV), "Platform", mesh=Mesh.mutual_tls())
    # THEN the error names the prop, the cache with its prefix, and the holder (App Mesh's
    # cache, 'ecr-public', is checked in test_inputs_uniqueness.py)
    message = str(raised.value)
    assert message.startswith(
        "TradingCluster 'Second/Platform': mesh='Mesh.mutual_tls()' is not allowed"
    )
    assert "PullThroughCache(prefix='docker-hub')" in message
    assert "one such platform per account and region" in message
    assert re.search(r"'First/Platform/DockerHubImages' already has it\)$", message)
