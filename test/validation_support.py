"""Helpers the bad-input and moto tests share."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import Duration

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def bad(prop: str, value: object, allowed: str) -> str:
    """The regex of one problem: ``prop=<value!r> is not allowed (allowed: ...<allowed>``."""
    return re.escape(f"{prop}={value!r} is not allowed (allowed: ") + ".*" + re.escape(allowed)


def case(id: str, props: Any, message: str) -> Any:
    return pytest.param(props, message, id=id)


_SHOWN_AS_GIVEN = object()


def refused(
    allowed: str, /, *, id: str | None = None, shown: object = _SHOWN_AS_GIVEN, **props: Any
) -> Any:
    """One row of a bad-input table: ``props`` (over valid ones) are refused, and the message
    names the first of them, its value (or ``shown``, where the message writes it otherwise,
    as ``'5 minutes'`` for a Duration) and the words of what is ``allowed``.

    ``refused(PORT, port=0)`` stands for ``case("port-0"…, {"port": 0}, bad("port", 0, PORT))``:
    a table of them reads as the rules it checks, one line each.
    """
    prop, value = next(iter(props.items()))
    message = bad(prop, value if shown is _SHOWN_AS_GIVEN else shown, allowed)
    return pytest.param(props, message, id=id)


def seconds(n: int) -> Duration:
    return Duration.seconds(n)


def fake_aws(monkeypatch: pytest.MonkeyPatch, region: str, *unset: str) -> None:
    """moto's environment: fake credentials in ``region``, and no endpoint or profile (nor
    the named variables) left over from the machine."""
    for name, value in {
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **FAKE_CREDENTIALS,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", *unset):
        monkeypatch.delenv(name, raising=False)
