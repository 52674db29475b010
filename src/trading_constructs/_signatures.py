"""Signatures that ``inspect.signature``, ``help()`` and IDEs show for the public classes.

jsii's metaclass defines ``__call__(cls, *args, **kwargs)``, which ``inspect.signature`` reads
before ``__init__``: without a ``__signature__`` a construct shows ``(*args, **kwargs)``. And a
default that is an enum member, a ``Duration`` or a dataclass factory prints as an object repr
(``<RemovalPolicy.RETAIN: 'RETAIN'>``, ``<aws_cdk.Duration object at 0x...>``, ``<factory>``);
here it prints as the expression that builds it (``RemovalPolicy.RETAIN``,
``Duration.seconds(30)``, ``RetryOptions()``).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Callable
from typing import Any

from aws_cdk import Duration

# the largest unit that divides a duration names it: Duration.minutes(5), not .seconds(300)
_DURATION_UNITS = (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000))


class ShownDefault:
    """A default as its source reads: what a signature prints, standing for ``value``."""

    def __init__(self, text: str, value: object) -> None:
        self.text = text
        self.value = value

    def __repr__(self) -> str:
        return self.text


def default_text(value: object) -> str:
    """How a default reads in code: ``RemovalPolicy.RETAIN``, ``Duration.minutes(5)``,
    ``RetryOptions()``; anything else as its ``repr``."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, Duration):
        millis = int(value.to_milliseconds())
        for unit, size in _DURATION_UNITS:
            if millis and millis % size == 0:
                return f"Duration.{unit}({millis // size})"
        if millis % 1000 == 0:
            return f"Duration.seconds({millis // 1000})"
        return f"Duration.millis({millis})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = [
            f"{f.name}={default_text(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if f.init and _differs(getattr(value, f.name), _field_default(f))
        ]
        return f"{type(value).__name__}({', '.join(changed)})"
    return repr(value)


def _differs(value: object, default: object) -> bool:
    # jsii objects (a Duration) compare by identity: compare what they read as
    return default is dataclasses.MISSING or default_text(value) != default_text(default)


def _field_default(field: dataclasses.Field[Any]) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _readable(parameter: inspect.Parameter, factories: dict[str, Callable[[], Any]]) -> Any:
    default = parameter.default
    if parameter.name in factories:  # a dataclass field's default_factory shows '<factory>'
        default = factories[parameter.name]()
    elif default is inspect.Parameter.empty or not repr(default).startswith("<"):
        return parameter
    return parameter.replace(default=ShownDefault(default_text(default), default))


def readable_signature(cls: type) -> inspect.Signature:
    """The signature a call of ``cls`` takes: its ``__init__`` without ``self``, every default
    as the expression that builds it."""
    init = inspect.signature(cls.__init__)  # type: ignore[misc]
    factories = {
        f.name: f.default_factory
        for f in (dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ())
        if f.default_factory is not dataclasses.MISSING
    }
    parameters = [_readable(p, factories) for p in init.parameters.values()]
    return init.replace(parameters=parameters[1:])


def show_signatures(*classes: type) -> None:
    """Give each class (and its ``__init__``, which ``help()`` lists) the readable signature;
    enums, and classes built only by factories (no ``__init__`` of their own), keep theirs."""
    for cls in classes:
        if issubclass(cls, enum.Enum) or cls.__init__ is object.__init__:
            continue
        signature = readable_signature(cls)
        cls.__signature__ = signature  # type: ignore[attr-defined]
        init = cls.__dict__.get("__init__")
        if inspect.isfunction(init):
            self_parameter = next(iter(inspect.signature(init).parameters.values()))
            init.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[self_parameter, *signature.parameters.values()]
            )
