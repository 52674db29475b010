"""Props declared once: a construct's props are the fields of a frozen dataclass.

Each field carries its type, its default and (in the class's ``Attributes:`` section) its
documentation; the dataclass checks its own values in ``__post_init__``. ``takes_props``
then gives the construct the dataclass's keyword-only signature, for callers, mypy (through
``ParamSpec``) and the API reference (``__signature__`` and the ``:param`` lines it writes
from the fields' documentation), and hands the constructor one checked props object. Adding a
prop is one field, its line of documentation and its check.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from constructs import Construct

from ._validation import construct_owner

P = ParamSpec("P")
C = TypeVar("C", bound=Construct)
Props = TypeVar("Props")

_OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("owner", default=None)

# A Google-style docstring's ``Attributes:`` section: a field's line, then its indented rest.
_FIELD = re.compile(r"^(\w+): (.*)$")
_DEFAULT = re.compile(r"\s*Default: (.*)$", re.DOTALL)


def props_owner(default: str) -> str:
    """Who a props object's errors name: the construct being built from it (``TradingCluster
    'Stack/Platform'``), or the props class itself when built on its own."""
    return _OWNER.get() or default


@contextmanager
def _owned_by(owner: str) -> Iterator[None]:
    token = _OWNER.set(owner)
    try:
        yield
    finally:
        _OWNER.reset(token)


def field_docs(props_type: type) -> dict[str, str]:
    """Each field's documentation, from the class's ``Attributes:`` section."""
    doc = inspect.getdoc(props_type) or ""
    _, _, section = doc.partition("\nAttributes:\n")
    docs: dict[str, str] = {}
    name = None
    for line in textwrap.dedent(section).splitlines():
        match = _FIELD.match(line)
        if match:
            name = match.group(1)
            docs[name] = match.group(2)
        elif name is not None and line.startswith(" "):
            docs[name] += " " + line.strip()
        elif line.strip():
            break
    return docs


def _param_lines(props_type: type) -> str:
    """The ``:param`` lines of the construct's docstring, written from the fields' docs."""
    lines = []
    for name, text in field_docs(props_type).items():
        described, _, default = text.partition(" Default: ")
        line = f":param {name}: {described}"
        if default:
            line += f" :default: {default.rstrip('.')}"
        lines.append(textwrap.fill(line, 96, subsequent_indent="    "))
    return "\n".join(lines)


def _signature(init: Callable[..., None], props_type: type) -> inspect.Signature:
    """``(self, scope, id, /, *, <each field with its default>)``."""
    own = [
        parameter.replace(kind=inspect.Parameter.POSITIONAL_ONLY)
        for parameter in list(inspect.signature(init).parameters.values())[:3]
    ]
    fields = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty
            if field.default is dataclasses.MISSING
            else field.default,
            annotation=field.type,
        )
        for field in dataclasses.fields(props_type)
        if field.init
    ]
    return inspect.Signature([*own, *fields], return_annotation=None)


def takes_props(
    props_type: Callable[P, Props],
) -> Callable[
    [Callable[[C, Construct, str, Props], None]], Callable[Concatenate[C, Construct, str, P], None]
]:
    """Give a construct's ``__init__(self, scope, id, props)`` the keyword-only props of
    ``props_type`` (a frozen dataclass), built and checked in the construct's name."""
    declared: Any = props_type
    assert isinstance(declared, type) and dataclasses.is_dataclass(declared)
    kind = declared.__name__.removesuffix("Props")

    def decorate(
        init: Callable[[C, Construct, str, Props], None],
    ) -> Callable[Concatenate[C, Construct, str, P], None]:
        @functools.wraps(init)
        def wrapper(
            self: C, scope: Construct, id: str, /, *args: P.args, **kwargs: P.kwargs
        ) -> None:
            with _owned_by(construct_owner(kind, scope.node.path, id)):
                props = props_type(*args, **kwargs)
            init(self, scope, id, props)

        wrapper.__signature__ = _signature(init, declared)  # type: ignore[attr-defined]
        wrapper.__doc__ = f"{inspect.getdoc(init) or ''}\n\n{_param_lines(declared)}\n".lstrip()
        return wrapper

    return decorate


__all__ = ["field_docs", "props_owner", "takes_props"]
