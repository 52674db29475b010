"""Shared input checks: every construct and options class reports bad props the same way.

Problems are collected, not raised one by one, so a user fixes a whole call in one pass.
Unresolved tokens are skipped: CloudFormation checks those at deploy time, we cannot.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration, Token

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_token(value: object) -> bool:
    """True for a value CDK resolves later (a token string, number or list)."""
    if isinstance(value, float) and not math.isfinite(value):
        return False  # NaN and infinities are never tokens, and jsii cannot carry them
    if isinstance(value, (tuple, set, frozenset, dict)):
        return False  # never a token, and jsii cannot carry a tuple or a set
    return Token.is_unresolved(value)


@dataclass
class Problems:
    """The bad props of one call, raised together as one ``ValueError``."""

    owner: str
    problems: list[str] = field(default_factory=list)

    def add(self, prop: str, value: object, allowed: str) -> None:
        self.problems.append(f"{prop}={value!r} is not allowed (allowed: {allowed})")

    def note(self, message: str) -> None:
        self.problems.append(message)

    def extend(self, other: Iterable[str]) -> None:
        self.problems.extend(other)

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        if len(self.problems) == 1:
            raise ValueError(f"{self.owner}: {self.problems[0]}")
        lines = "\n".join(f"  - {p}" for p in self.problems)
        raise ValueError(f"{self.owner}: {len(self.problems)} invalid props:\n{lines}")

    # -- checks that skip tokens ---------------------------------------------------------

    def seconds(self, prop: str, value: object, low: int, high: int) -> None:
        """A Duration of whole seconds within a range (ECS and scaling take whole seconds)."""
        if not isinstance(value, Duration):
            self.add(prop, value, "an aws_cdk.Duration")
            return
        if value.is_unresolved():
            return
        seconds = value.to_seconds(integral=False)
        if seconds % 1:
            self.add(prop, value.to_human_string(), "whole seconds")
        elif not low <= seconds <= high:
            self.add(prop, value.to_human_string(), f"{low} to {high} seconds")

    def int_range(self, prop: str, value: int | float, low: int, high: int) -> None:
        if is_token(value):
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(prop, value, f"an integer from {low} to {high}")

    def one_of(self, prop: str, value: object, allowed: Sequence[object]) -> None:
        if is_token(value):
            return
        if value not in allowed:
            self.add(prop, value, ", ".join(repr(a) for a in allowed))

    def pattern(self, prop: str, value: str, regex: str, allowed: str) -> None:
        if is_token(value):
            return
        if not isinstance(value, str) or re.fullmatch(regex, value) is None:
            self.add(prop, value, allowed)

    def timeout_below_interval(self, timeout: Duration, interval: Duration) -> None:
        """A health check's timeout must end before the next check starts."""
        if timeout.is_unresolved() or interval.is_unresolved():
            return
        if timeout.to_seconds() >= interval.to_seconds():
            self.note(
                f"timeout={timeout.to_human_string()} is not shorter than "
                f"interval={interval.to_human_string()} (allowed: timeout < interval)"
            )

    def dns_name(self, prop: str, value: str, max_length: int = 253) -> None:
        """A lower-case DNS name of dot-separated labels, as Route 53 and Cloud Map take."""
        if is_token(value):
            return
        ok = (
            isinstance(value, str)
            and 0 < len(value) <= max_length
            and all(_DNS_LABEL.match(label) for label in value.split("."))
        )
        if not ok:
            self.add(
                prop,
                value,
                "a lower-case DNS name: dot-separated labels of 1-63 letters, digits or "
                f"hyphens, not starting or ending with a hyphen, at most {max_length} "
                "characters in all",
            )

    def cidr(self, prop: str, value: str, min_prefix: int, max_prefix: int) -> None:
        """A concrete CIDR: CDK subdivides it at synth time, so a token cannot pass."""
        if is_token(value):
            self.add(prop, value, "a concrete CIDR string; CDK splits it into subnets at synth")
            return
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except (ValueError, TypeError):
            self.add(prop, value, "an IPv4 CIDR block such as '10.0.0.0/16'")
            return
        if not min_prefix <= network.prefixlen <= max_prefix:
            self.add(prop, value, f"a prefix length from /{min_prefix} to /{max_prefix}")


def check_type(owner: str, prop: str, value: Any, expected: type | tuple[type, ...]) -> None:
    """Raise ``TypeError`` early, when a wrong type would otherwise fail deep inside jsii."""
    if value is None or isinstance(value, expected):
        return
    names = (
        " or ".join(t.__name__ for t in expected)
        if isinstance(expected, tuple)
        else expected.__name__
    )
    raise TypeError(f"{owner}: {prop}={value!r} is not allowed (allowed: {names})")


def check_items(problems: Problems, prop: str, values: object, expected: type) -> None:
    """A sequence prop (a list or tuple, not a lone item or a string) of ``expected`` items."""
    if not isinstance(values, (list, tuple)):
        problems.add(prop, values, f"a list of {expected.__name__}")
        return
    for index, value in enumerate(values):
        if not isinstance(value, expected):
            problems.add(f"{prop}[{index}]", value, expected.__name__)


def construct_owner(kind: str, scope_path: str, id: str) -> str:
    """How errors name a construct: ``TradingCluster 'Stack/Cluster'``."""
    path = f"{scope_path}/{id}" if scope_path else id
    return f"{kind} {path!r}"
