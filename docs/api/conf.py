"""Sphinx configuration of the API reference: autodoc reads the docstrings, napoleon their
Google-style sections; ``sphinx_markdown_builder`` writes API.md and the html builder a site.

``npx projen docgen`` builds the Markdown and copies it to API.md (a test fails when API.md is
stale); ``npx projen docgen:html`` builds the HTML reference into build/docs/html.

What the reference shows is the public API, and only it: the names in ``__all__`` of
``trading_constructs`` and of its App Mesh plug-in, ``trading_constructs.appmesh``. The hooks
below keep it that way and keep the text the same on every supported Python:

- annotations are shown as the source writes them (``sns.Topic``, ``Duration | None``), never
  evaluated, and defaults as code a user could write (``Duration.seconds(15)``,
  ``RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE``), never private names or object reprs;
- members that are public by name but belong to the machinery (``INTERNAL``) are left out, and
  so are bases that are not exported;
- napoleon reads the Google sections of modules, classes and functions; an attribute's own
  docstring is plain text (napoleon would take ``word: rest`` for a type).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import inspect
import re
import sys
from typing import Any

from aws_cdk import Duration
from sphinx.application import Sphinx
from sphinx.ext import autodoc
from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon import docstring as napoleon_docstring
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import inspect as sphinx_inspect

import trading_constructs
import trading_constructs.appmesh
from trading_constructs._signatures import ShownDefault

project = "trading-constructs"
author = "trading-constructs developers"
copyright = "trading-constructs developers"
extensions = ["sphinx.ext.autodoc", "sphinx_markdown_builder"]
smartquotes = False  # values in the text are code: keep their quotes straight
add_module_names = False
autodoc_member_order = "bysource"  # a module's in the order of its __all__
autodoc_inherit_docstrings = False  # Construct's own docstring is not ours
autoclass_content = "both"  # the class docstring, then its constructor's props
autodoc_default_options = {"members": True, "show-inheritance": True}
html_theme = "alabaster"
html_title = "trading-constructs API reference"
html_show_sourcelink = False
markdown_anchor_signatures = True  # each entry's anchor is its full name: links work

PUBLIC_MODULES = (trading_constructs, trading_constructs.appmesh)

# Public by name, internal by purpose: the service and the mesh backends call them, a user
# never does. Each is named here so that leaving one out is a decision, not an accident.
INTERNAL = {
    # the slots a release asks for; SlotSpec is internal
    "Release.slots",
    "WeightedRelease.slots",
    # the collaborators a service's mesh backend works with (internal types)
    "MeshedFargateService.observability",
    "MeshedFargateService.policies",
    "MeshedFargateService.membership",
    "TradingCluster.mesh",
    # the mesh interface (trading_constructs.mesh.backend) as the App Mesh plug-in implements it
    "AppMeshBackend.kind",
    "AppMeshBackend.proxy_configuration",
    "AppMeshBackend.join",
    "AppMeshBackend.generated_names",
    "AppMeshBackend.reserved_names",
    "AppMeshBackend.name_key",
    "AppMeshMembership.add_backend",
    "AppMeshMembership.admit",
    "AppMeshMembership.bind_service",
    "MeshCertificates.issue_for",
    "MeshCertificates.add_to_task",
}
# Classes the library builds for the user: their constructors take internal types.
BUILT_BY_THE_LIBRARY = {"AppMeshBackend", "AppMeshMembership"}


def _exported(obj: object) -> bool:
    name = getattr(obj, "__name__", "")
    return any(name in m.__all__ and getattr(m, name) is obj for m in PUBLIC_MODULES)


# --- annotations as written --------------------------------------------------------------


def _annotations_as_written(obj: Any, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """What autodoc and napoleon read for types: the source text, not evaluated objects."""
    return dict(getattr(obj, "__annotations__", None) or {})


def _signature_as_written(subject: Any, bound_method: bool = False, **_kwargs: Any) -> Any:
    signature = inspect.signature(subject)
    parameters = list(signature.parameters.values())
    if bound_method and not inspect.ismethod(subject):
        parameters = parameters[1:]
    return signature.replace(parameters=parameters)


autodoc.get_type_hints = _annotations_as_written  # type: ignore[attr-defined]
napoleon_docstring.get_type_hints = _annotations_as_written  # type: ignore[attr-defined]
sphinx_inspect.signature = _signature_as_written  # type: ignore[assignment]


# --- signatures --------------------------------------------------------------------------


def readable(value: Any) -> str:
    """A default as code a user could write."""
    if isinstance(value, ShownDefault):  # the package's own signatures (help() and IDEs)
        return readable(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, tuple | list):
        items = ", ".join(readable(v) for v in value)
        if isinstance(value, list):
            return f"[{items}]"
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, Duration):
        parts = value.to_human_string().split()
        if len(parts) == 2:
            amount, unit = parts
            return f"Duration.{unit if unit.endswith('s') else unit + 's'}({amount})"
        return f"Duration.millis({int(value.to_milliseconds())})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = [
            f"{f.name}={readable(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if f.init and readable(getattr(value, f.name)) != readable(_field_default(f))
        ]
        return f"{type(value).__name__}({', '.join(changed)})"
    raise ValueError(f"no readable form for the default {value!r}: teach docs/api/conf.py one")


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _parameters(signature: inspect.Signature, factories: dict[str, Any]) -> str:
    out: list[str] = []
    star = False
    for p in signature.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        star = star or p.kind is p.VAR_POSITIONAL
        text = prefix + p.name
        if p.annotation is not p.empty:
            annotation = p.annotation
            if not isinstance(annotation, str):
                annotation = inspect.formatannotation(annotation)
            text += f": {annotation}"
        if p.default is not p.empty:
            default = factories[p.name]() if p.name in factories else p.default
            text += f" = {readable(default)}"
        out.append(text)
    return f"({', '.join(out)})"


def _class_signature(cls: type) -> str:
    if issubclass(cls, enum.Enum) or cls.__init__ is object.__init__:
        return ""
    if cls.__name__ in BUILT_BY_THE_LIBRARY:
        return ""
    signature = inspect.signature(cls.__init__)
    signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    factories = {}
    if dataclasses.is_dataclass(cls):
        factories = {
            f.name: f.default_factory
            for f in dataclasses.fields(cls)
            if f.default_factory is not dataclasses.MISSING
        }
    return _parameters(signature, factories)


def on_signature(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, sig: str, ret: str
) -> tuple[str, str | None] | None:
    if what in ("class", "exception"):
        return _class_signature(obj), None
    if what not in ("method", "function"):
        return None
    signature = inspect.signature(obj)
    parameters = list(signature.parameters.values())
    if what == "method" and parameters and parameters[0].name in ("self", "cls"):
        signature = signature.replace(parameters=parameters[1:])
    returns = signature.return_annotation
    shown = None if returns is signature.empty else str(returns)
    return _parameters(signature, {}), shown


# --- members -----------------------------------------------------------------------------


def on_skip_member(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    if name.startswith("_"):
        return True
    if what == "module":
        module = sys.modules[app.env.temp_data["autodoc:module"]]
        if module is not trading_constructs and getattr(trading_constructs, name, None) is obj:
            return True  # documented where the top-level package exports it
        return name not in module.__all__
    owner = app.env.temp_data.get("autodoc:class")
    if f"{owner}.{name}" in INTERNAL:
        return True
    if isinstance(obj, enum.Enum) and type(obj).__name__ == owner:
        return False  # an enum's members have no docstrings; they are its API
    if inspect.isroutine(obj) or isinstance(obj, property):
        return False  # a public method or property is API, with a docstring or without
    return None  # attributes: those with a docstring (a dataclass's are in its Attributes)


def on_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """A base that is not exported is shown as what it extends."""
    shown: list[type] = []
    for base in bases:
        while base.__module__.startswith("trading_constructs") and not _exported(base):
            base = base.__bases__[0]
        if base is abc.ABC:
            base = object
        if base not in shown:
            shown.append(base)
    bases[:] = shown


# --- docstrings --------------------------------------------------------------------------

NAPOLEON = NapoleonConfig(
    napoleon_google_docstring=True,
    napoleon_numpy_docstring=False,
    napoleon_use_ivar=False,
    napoleon_use_param=True,
    napoleon_use_rtype=False,
    napoleon_attr_annotations=True,
)


def _constant_doc(name: str, value: object) -> list[str]:
    """A constant's docstring, from the module that defines it (the package re-exports it)."""
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith("trading_constructs.") and getattr(module, name, None) is value:
            docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
            if ("", name) in docs:
                return list(docs["", name])
    return []


def on_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "data":
        lines[:] = _constant_doc(name.rsplit(".", 1)[-1], obj)
    elif isinstance(obj, enum.Enum):
        lines[:] = []
    elif what not in ("attribute", "property"):
        lines[:] = napoleon_docstring.GoogleDocstring(
            lines, NAPOLEON, app, what, name, obj, options
        ).lines()
    lines[:] = _type_in_header([re.sub(r":default:\s*", "Default: ", line) for line in lines])


def _type_in_header(lines: list[str]) -> list[str]:
    """Napoleon writes an attribute's type in its body; the header is where autodoc puts it for
    every other attribute (and where it is read as an annotation, not as text)."""
    out: list[str] = []
    directive = None
    for line in lines:
        if line.startswith(".. attribute:: "):
            directive = len(out)
        elif directive is not None and line.startswith("   :type: "):
            out.insert(directive + 1, line)
            directive = None
            continue
        out.append(line)
    return out


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-signature", on_signature)
    app.connect("autodoc-skip-member", on_skip_member)
    app.connect("autodoc-process-bases", on_bases)
    app.connect("autodoc-process-docstring", on_docstring)
