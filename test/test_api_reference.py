"""The API reference: API.md is what Sphinx builds from the docstrings today, it shows the
public API and nothing else, and the docs of the options' fields reach help() and IDEs too.

The Markdown is built once, here, by the same Sphinx configuration as ``npx projen docgen``
(docs/api/conf.py); every other test reads the committed API.md, which that one proves current.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib
import inspect
import pkgutil
import pydoc
import re
from pathlib import Path

from sphinx.cmd.build import build_main

import trading_constructs
import trading_constructs.appmesh

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "API.md"
PUBLIC_MODULES = (trading_constructs, trading_constructs.appmesh)
PUBLIC = {
    f"{module.__name__}.{name}": getattr(module, name)
    for module in PUBLIC_MODULES
    for name in module.__all__
    # the plug-in re-exports MeshTlsOptions; the reference documents it once, at the top
    if module is trading_constructs or name not in trading_constructs.__all__
}
# Read as attributes, documented as properties (the hand-written generator showed methods).
PROPERTIES = {
    "MeshedFargateService": ("behind_load_balancer", "log_groups", "alarms"),
    "ScannedRepository": ("repository_uri",),
    "DbEngine": ("engine_name", "default_port"),
}
# Public by name only (see INTERNAL in docs/api/conf.py, and Mesh._build).
INTERNAL = (
    "Mesh.build",
    "Release.slots",
    "MeshedFargateService.observability",
    "MeshedFargateService.policies",
    "MeshedFargateService.membership",
    "TradingCluster.mesh",
    "AppMeshBackend.join",
    "AppMeshMembership.bind_service",
    "MeshCertificates.issue_for",
)


def _api_md() -> str:
    return API_MD.read_text()


def _headings(markdown: str) -> dict[str, str]:
    """Each entry's anchor (its full dotted name) and the heading under it."""
    return dict(re.findall(r'<a id="([^"]+)"></a>\n\n(#+ [^\n]*)', markdown))


def _library_modules() -> list[object]:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(trading_constructs.__path__, "trading_constructs.")
        if ".handlers" not in info.name  # Lambda code shipped in the wheel, not the API
    ]


def _private_names() -> set[str]:
    """Every private name the library defines: module globals and class members."""
    names: set[str] = set()
    for module in _library_modules():
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__:
                names |= {n for n in vars(value) if n.startswith("_") and not n.endswith("__")}
            if name.startswith("_") and not name.endswith("__"):
                names.add(name)
    return names


def _internal_classes() -> set[str]:
    """Classes the library defines but does not export."""
    exported = {name.rsplit(".", 1)[1] for name in PUBLIC}
    return {
        name
        for module in _library_modules()
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__ and name not in exported
    }


def unreadable(markdown: str, private_names: set[str]) -> list[str]:
    """What a reader of the reference cannot use: private names, dataclass machinery, reprs."""
    found = [
        n for n in sorted(private_names) if re.search(rf"(?<![\w\\]){re.escape(n)}\b", markdown)
    ]
    for text in ("<factory>", "field(", "default_factory", " object at 0x", ":default:"):
        if text in markdown:
            found.append(text)
    found += re.findall(r'<a id="[^"]*\._[^"]*"></a>', markdown)
    return found


def undocumented_fields(cls: type) -> list[str]:
    """Fields of an options dataclass that help(cls) does not explain (with the default)."""
    doc = inspect.getdoc(cls) or ""
    section = doc.split("\nAttributes:\n", 1)[1] if "\nAttributes:\n" in doc else ""
    entries = dict(re.findall(r"^    (\w+): (.*(?:\n        .*)*)", section, re.MULTILINE))
    shown = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    missing = []
    for f in dataclasses.fields(cls):
        missing_default = dataclasses.MISSING
        has_default = f.default is not missing_default or f.default_factory is not missing_default
        if (
            f.name not in entries
            or f.name not in shown
            or (has_default and "Default: " not in entries[f.name])
        ):
            missing.append(f.name)
    return missing


def test_api_md_is_generated_from_the_current_code(tmp_path: Path) -> None:
    # GIVEN the docs source; WHEN Sphinx builds the Markdown as `npx projen docgen` does
    args = ["-b", "markdown", "-E", "-W", "--keep-going", "-q", str(ROOT / "docs" / "api")]
    assert build_main([*args, str(tmp_path)]) == 0, "Sphinx warned: see the output above"
    # THEN it is the committed API.md
    built, committed = (tmp_path / "index.md").read_text(), _api_md()
    lines = difflib.unified_diff(committed.splitlines(), built.splitlines(), lineterm="", n=1)
    diff = "\n".join(lines)
    assert built == committed, f"API.md is stale: run `npx projen docgen`\n{diff[:3000]}"


def test_the_reference_covers_every_public_name() -> None:
    headings = _headings(_api_md())
    assert sorted(set(PUBLIC) - set(headings)) == []


def test_the_reference_names_nothing_private_or_unreadable() -> None:
    assert unreadable(_api_md(), _private_names()) == []


def test_the_reference_names_only_exported_types() -> None:
    text = _api_md()
    assert [c for c in sorted(_internal_classes()) if re.search(rf"\b{c}\b", text)] == []
    headings = _headings(text)
    shown = [i for i in INTERNAL for m in PUBLIC_MODULES if f"{m.__name__}.{i}" in headings]
    assert shown == []


def test_properties_are_properties_and_enums_list_their_members() -> None:
    headings = _headings(_api_md())
    for cls, names in PROPERTIES.items():
        for name in names:
            heading = headings[f"trading_constructs.{cls}.{name}"]
            assert heading.startswith(f"#### *property* {name} *:"), heading
    for cls in (trading_constructs.DbEngine, trading_constructs.ScanType):
        for member in cls:
            assert f"trading_constructs.{cls.__name__}.{member.name}" in headings


def test_every_field_of_an_options_dataclass_is_in_help() -> None:
    options = [c for c in PUBLIC.values() if dataclasses.is_dataclass(c) and isinstance(c, type)]
    assert len(options) >= 19
    assert {c.__name__: undocumented_fields(c) for c in options if undocumented_fields(c)} == {}


def test_every_constructor_prop_is_documented() -> None:
    constructs = [
        c
        for c in PUBLIC.values()
        if isinstance(c, type)
        and not dataclasses.is_dataclass(c)
        and not issubclass(c, enum.Enum)
        and c.__init__ is not object.__init__
        # built by Mesh.app_mesh(), never by a user: the reference shows no constructor
        and c.__name__ not in ("AppMeshBackend", "AppMeshMembership")
    ]
    missing = {
        f"{c.__name__}.{p.name}"
        for c in constructs
        for p in inspect.signature(c.__init__).parameters.values()
        if p.kind is p.KEYWORD_ONLY and f":param {p.name}:" not in (c.__init__.__doc__ or "")
    }
    assert sorted(missing) == []


# --- the checks can fail -------------------------------------------------------------------


def test_the_checks_catch_what_the_old_generator_let_through() -> None:
    old = "| `rotate_every` | `_EVERY_90_DAYS` |\n| `interval` | `field(default_factory=...)` |"
    assert unreadable(old, {"_EVERY_90_DAYS"}) == ["_EVERY_90_DAYS", "field(", "default_factory"]
    assert unreadable('<a id="trading_constructs.Mesh._build"></a>', set()) != []
    assert unreadable("which add `_clone`", {"_EVERY_90_DAYS"}) == []  # prose is not a name
    method = '<a id="trading_constructs.X.alarms"></a>\n\n#### alarms() → dict'
    assert _headings(method) == {"trading_constructs.X.alarms": "#### alarms() → dict"}


def test_a_field_documented_below_itself_is_invisible_to_help() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Old:
        """Options.

        Attributes:
            size: How big. Default: 1.
        """

        size: int = 1
        colour: str = "red"
        """Invisible to help(), as every field doc was. :default: 'red'"""

        required: str

    assert undocumented_fields(Old) == ["colour", "required"]
