"""Check that the wheel and sdist in a folder are what should ship to PyPI.

Usage: ``python scripts/check_dist.py dist/python`` (the ``package`` task runs it after
``uv build``; ``twine check --strict`` runs beside it). Exits 1 listing every problem.

- The wheel holds the package and nothing else: every file under ``src/trading_constructs``
  that git tracks or would track (not ignored), minus ``__pycache__``; so handler code and
  ``py.typed`` ship, and a file added to the package ships without editing this script.
- The sdist holds what rebuilding the wheel needs (the package, ``pyproject.toml``, the
  version file, README, LICENSE) and nothing else: no lock files, CI scripts, tests or caches.
- The metadata is complete: version from the version file, license expression, author,
  keywords, project URLs, a development status and a classifier for each supported Python.
- The long description reads right on PyPI: every link is absolute (a repository-relative link
  or a ``#heading`` anchor leads nowhere there).

Standard library only; ``test/test_release.py`` imports it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "trading_constructs"
PACKAGE_DIR = f"src/{PACKAGE}"
DIST_NAME = "trading_constructs"  # normalized, as in file names
VERSION_FILE = "version.json"
# besides the package, what the sdist carries: hatchling adds pyproject.toml, PKG-INFO and
# .gitignore (whose patterns a rebuild from the sdist applies again)
SDIST_EXTRAS = frozenset(
    {"pyproject.toml", "PKG-INFO", ".gitignore", VERSION_FILE, "README.md", "LICENSE"}
)
PROJECT_URLS = frozenset({"Homepage", "Documentation", "Repository", "Issues", "Changelog"})
LICENSE_EXPRESSION = "Apache-2.0"
NEWEST_PYTHON = (3, 14)  # the newest Python the classifiers must name (aws-cdk-lib's newest)
# contributor set-up that must not open the long description
CONTRIBUTOR_COMMANDS = ("npm ci", "npm test", "npx projen", "uv sync")
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")  # [text](target) and ![alt](target)
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HTML = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def package_files(root: Path = ROOT) -> set[str]:
    """Files under the package that git tracks or would track, relative to ``src/``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", PACKAGE_DIR],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    return {
        str(PurePosixPath(name).relative_to("src"))
        for name in listed
        if name and "__pycache__" not in PurePosixPath(name).parts and (root / name).is_file()
    }


def wheel_problems(wheel: Path, expected: set[str]) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
    dist_info = {n for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    package = names - dist_info
    problems = [f"wheel lacks {name}" for name in sorted(expected - package)]
    problems += [f"wheel holds {name}, which is not in the package" for name in package - expected]
    for name in dist_info:
        if not name.startswith(f"{DIST_NAME}-"):
            problems.append(f"wheel holds a foreign dist-info file {name}")
    return sorted(problems)


def sdist_problems(sdist: Path, expected: set[str]) -> list[str]:
    with tarfile.open(sdist) as archive:
        members = [m.name for m in archive.getmembers() if m.isfile()]
    top = {name.split("/", 1)[0] for name in members}
    if len(top) != 1:
        return [f"sdist has {len(top)} top folders: {sorted(top)}"]
    inside = {name.split("/", 1)[1] for name in members}
    wanted = {f"src/{name}" for name in expected} | SDIST_EXTRAS
    problems = [f"sdist lacks {name}" for name in sorted(wanted - inside)]
    problems += [f"sdist holds {name}, which rebuilding does not need" for name in inside - wanted]
    return sorted(problems)


def metadata_problems(meta: Message, version: str) -> list[str]:
    problems = []
    if meta["Version"] != version:
        problems.append(f"Version is {meta['Version']}, the version file says {version}")
    if meta["License-Expression"] != LICENSE_EXPRESSION:
        problems.append(f"License-Expression is {meta['License-Expression']!r}")
    if "LICENSE" not in (meta.get_all("License-File") or []):
        problems.append("License-File LICENSE is missing")
    for field in ("Summary", "Author-email", "Keywords", "Requires-Python"):
        if not meta[field]:
            problems.append(f"{field} is missing")
    if meta["Description-Content-Type"] != "text/markdown":
        problems.append(f"Description-Content-Type is {meta['Description-Content-Type']!r}")
    urls = {}
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        urls[label.strip()] = url.strip()
    if missing := PROJECT_URLS - urls.keys():
        problems.append(f"Project-URL lacks {sorted(missing)}")
    problems += [
        f"Project-URL {label} is not https: {url!r}"
        for label, url in urls.items()
        if not url.startswith("https://")
    ]
    classifiers = set(meta.get_all("Classifier") or [])
    if not any(c.startswith("Development Status :: ") for c in classifiers):
        problems.append("no Development Status classifier")
    floor = re.fullmatch(r">=\s*3\.(\d+)", meta["Requires-Python"] or "")
    if floor is None:
        problems.append(f"Requires-Python {meta['Requires-Python']!r} is not '>=3.N'")
    else:
        claimed = {
            f"Programming Language :: Python :: 3.{minor}"
            for minor in range(int(floor.group(1)), NEWEST_PYTHON[1] + 1)
        }
        problems += [f"classifier missing: {c}" for c in sorted(claimed - classifiers)]
    return problems


def link_problems(markdown: str) -> list[str]:
    """Links that do not work on PyPI: relative paths and in-page anchors."""
    text = _FENCE.sub("", markdown)
    targets = _LINK.findall(text) + _REFERENCE.findall(text) + _HTML.findall(text)
    return [
        f"long description links to {target!r}: use an absolute https:// URL"
        for target in targets
        if not target.startswith(("https://", "http://", "mailto:"))
    ]


def opening_problems(markdown: str) -> list[str]:
    """The opening (title, pitch and first section) is for users, not contributors."""
    sections = re.split(r"^## ", markdown, flags=re.MULTILINE)
    opening = "## ".join(sections[:2])
    return [
        f"the opening of the long description shows contributor set-up ({command!r}): "
        "that belongs in CONTRIBUTING.md"
        for command in CONTRIBUTOR_COMMANDS
        if command in opening
    ]


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return HeaderParser().parsestr(archive.read(name).decode())


def long_description(meta: Message) -> str:
    payload = meta.get_payload()
    return payload if isinstance(payload, str) else ""


def dist_problems(folder: Path, root: Path = ROOT) -> list[str]:
    wheels = sorted(folder.glob("*.whl"))
    sdists = sorted(folder.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1 or len(os_names(folder)) != 2:
        return [f"{folder} must hold one wheel and one sdist, holds {os_names(folder)}"]
    version = json.loads((root / VERSION_FILE).read_text())["version"]
    expected = package_files(root)
    meta = wheel_metadata(wheels[0])
    problems = wheel_problems(wheels[0], expected) + sdist_problems(sdists[0], expected)
    problems += metadata_problems(meta, version)
    problems += link_problems(long_description(meta)) + opening_problems(long_description(meta))
    for artifact in (wheels[0], sdists[0]):
        if not artifact.name.startswith(f"{DIST_NAME}-{version}"):
            problems.append(f"{artifact.name} is not named for version {version}")
    return problems


def os_names(folder: Path) -> list[str]:
    """The files a ``dir/*`` upload takes (uv build adds a ``.gitignore``)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n", 2)[1], file=sys.stderr)
        return 2
    folder = Path(argv[0])
    problems = dist_problems(folder)
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {', '.join(os_names(folder))} hold what should ship")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
