"""Helpers the bad-input and moto tests share."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from aws_cdk import Duration

ECS_CLUSTER = "aws_cdk.aws_ecs.Cluster"
FARGATE_SERVICE = "aws_cdk.aws_ecs.FargateService"
SCANNED_REPOSITORY = "trading_constructs.repository.ScannedRepository"
"""Objects a suite's platform holds, as a message shows them (``<... object at 0x...>``)."""

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
    names the first of them, its value (a Duration as ``'5 minutes'``; or ``shown``, where the
    message writes it otherwise) and the words of what is ``allowed``.

    ``refused(PORT, id="port-0", port=0)`` stands for
    ``case("port-0", {"port": 0}, bad("port", 0, PORT))``: a table of them reads as the rules
    it checks, one line each.
    """
    prop, value = next(iter(props.items()))
    if shown is _SHOWN_AS_GIVEN:
        # a Duration is named as people read it, as the library's messages do
        shown = value.to_human_string() if isinstance(value, Duration) else value
    message = bad(prop, shown, allowed)
    return pytest.param(props, message, id=id)


def refused_held(allowed: str, held: str, /, *, id: str, end: str = "", **props: str) -> Any:
    """A row whose bad value is an object the suite's platform holds: ``props`` map the prop
    to the path of that object on the platform (``cluster="cluster.cluster"``, the aws-ecs
    Cluster inside a TradingCluster); the message shows it as ``<held object at 0x...>``."""
    ((prop, path),) = props.items()

    def given(platform: Any) -> dict[str, Any]:
        return {prop: operator.attrgetter(path)(platform)}

    message = re.escape(f"{prop}=<{held} object at ") + rf".*\(allowed: {allowed}\){end}"
    return pytest.param(given, message, id=id)


def owner_name(owner: Any) -> str:
    """The name of a table's key (an options class, an error class) as messages and test ids
    write it; a ``functools.partial`` of a class, holding valid values of the other props, is
    named as the class."""
    name: str = getattr(owner, "__name__", None) or owner.func.__name__
    return name


def walk(tables: Mapping[Any, Sequence[Any]], key: str, names: str = "props, message") -> Any:
    """One parametrize over several bad-input tables, keyed by what tells them apart (an
    options class, an error class): each row (``refused(...)``, ``case(...)`` or a tuple)
    becomes ``(key, *row)``, its id prefixed with the key's name."""
    rows = []
    for owner, table in tables.items():
        for index, row in enumerate(table):
            values = getattr(row, "values", row)
            id = f"{owner_name(owner)}-{getattr(row, 'id', None) or index}"
            rows.append(pytest.param(owner, *values, id=id))
    return pytest.mark.parametrize(f"{key}, {names}", rows)


def options_refused(tables: Mapping[Any, Sequence[Any]]) -> Any:
    """``walk`` over the tables of options classes: ``(options_class, options, message)``."""
    return walk(tables, "options_class", "options, message")


def assert_refused(options_class: Any, options: dict[str, Any], message: str) -> None:
    """The class refuses ``options`` with an error of ``<Class>: <message>``."""
    with pytest.raises(ValueError, match=f"^{owner_name(options_class)}: {message}"):
        options_class(**options)


def problem_lines(error: BaseException, *verdicts: str) -> tuple[str, list[str]]:
    """An error that lists all problems of one call: its first line, and each problem's line
    up to its verdict (``" is not allowed"``, or any of ``verdicts``)."""
    first, *problems = str(error).splitlines()
    for verdict in (" is not allowed", *verdicts):
        problems = [problem.split(verdict)[0] for problem in problems]
    return first, problems


def seconds(n: int) -> Duration:
    return Duration.seconds(n)


def timeout_not_shorter(id: str, timeout_s: int, interval_s: int, /, **props: Any) -> Any:
    """A health check's timeout of ``timeout_s`` seconds against its interval of ``interval_s``
    seconds (given in ``props``, or the default): refused, naming both and the rule."""
    return case(
        id,
        {"timeout": seconds(timeout_s), **props},
        re.escape(
            f"timeout={timeout_s} seconds is not shorter than interval={interval_s} seconds "
            "(allowed: timeout < interval)"
        ),
    )


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
