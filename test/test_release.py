"""Release pipeline: the generated workflows lint clean, PyPI is reached only by
trusted publishing, and the artifacts hold what should ship.

The consumer install test (the wheel in a clean virtualenv, a small app synthesized with it)
takes about 15 s, so it is its own task, ``npx projen test:install``, which the release task and
the pull-request build run; here only what costs a second or two.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import check_dist

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli where tomllib is missing
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PUBLISH_ACTION = "pypa/gh-action-pypi-publish@"
UV_ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
needs_py311 = pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="zizmor and check-jsonschema install on Python 3.11+ only (their pins say so)",
)


def workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(action)]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist, built from the working tree as the package task builds them."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [BIN / "uv", "build", "--wheel", "--sdist", "--quiet", "-o", out],
        cwd=ROOT,
        check=True,
        env=UV_ENV,
    )
    return out


# --- the workflows -------------------------------------------------------------------------


def test_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["build.yml", "release.yml"]


@needs_py311
def test_workflows_have_no_zizmor_findings() -> None:
    # GIVEN the generated workflows WHEN zizmor audits them, pedantic and offline
    result = subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", "--persona=pedantic", *WORKFLOWS],
        capture_output=True,
        text=True,
    )
    # THEN it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


@needs_py311
def test_workflows_match_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_tag_beside_it() -> None:
    for path in WORKFLOWS:
        uses = re.findall(r"uses: (.+)$", path.read_text(), flags=re.MULTILINE)
        assert uses, path.name
        for ref in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", ref), (
                f"{path.name}: {ref}"
            )


def test_no_workflow_grants_permissions_by_default() -> None:
    # GIVEN each workflow THEN nothing is granted at the top, and every job says what it needs
    for path in WORKFLOWS:
        data = workflow(path.name)
        assert data["permissions"] == {}, path.name
        for name, job in data["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} takes the default permissions"


def test_only_the_release_jobs_write_and_only_what_they_must() -> None:
    writes = {
        (path.name, name, scope)
        for path in WORKFLOWS
        for name, job in workflow(path.name)["jobs"].items()
        for scope, level in job["permissions"].items()
        if level == "write"
    }
    assert writes == {
        ("release.yml", "release_pypi", "id-token"),  # trusted publishing
        ("release.yml", "release_github", "contents"),  # the tag and the GitHub release
    }


def test_pypi_publish_uses_trusted_publishing() -> None:
    jobs = workflow("release.yml")["jobs"]
    # GIVEN the jobs of the release workflow
    publishers = {name for name, job in jobs.items() if steps_using(job, PUBLISH_ACTION)}
    # THEN one job publishes, with the OIDC token and nothing else
    assert publishers == {"release_pypi"}
    job = jobs["release_pypi"]
    assert job["permissions"] == {"id-token": "write"}
    assert [n for n, j in jobs.items() if "id-token" in j["permissions"]] == ["release_pypi"]
    # AND no stored credential: no password or token input, no secret anywhere in the job
    (step,) = steps_using(job, PUBLISH_ACTION)
    assert not {"password", "user", "username", "api-token"} & set(step.get("with", {}))
    assert "secrets." not in json.dumps(job)
    # AND it uploads the distributions the release job built and tested, from a protected
    # environment that PyPI's trusted publisher names
    assert step["with"]["packages-dir"] == "dist/python/"
    assert job["environment"]["name"] == "pypi"
    (download,) = steps_using(job, "actions/download-artifact@")
    assert download["with"]["artifact-ids"] == "${{ needs.release.outputs.artifact_id }}"
    assert job["needs"] in ("release", ["release"])
    # AND a dry run publishes nothing
    assert step["if"] == "${{ !inputs.dry_run }}"


def test_github_release_and_tag_follow_pypi() -> None:
    jobs = workflow("release.yml")["jobs"]
    assert set(jobs["release_github"]["needs"]) == {"release", "release_pypi"}
    release_step = next(s for s in jobs["release_github"]["steps"] if s.get("name") == "Release")
    assert "gh release create" in release_step["run"]
    assert release_step["env"]["CHANGELOG_FILE"] == "dist/changelog.md"


def test_release_job_builds_once_and_install_tests_what_ships() -> None:
    data = workflow("release.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    runs = [step.get("run", "") for step in data["jobs"]["release"]["steps"]]
    assert any(re.fullmatch(r"npx projen(@[\d.]+)? release", run) for run in runs), runs
    tasks = json.loads((ROOT / ".projen" / "tasks.json").read_text())["tasks"]
    spawned = [step.get("spawn") for step in tasks["release"]["steps"] if "spawn" in step]
    assert spawned == ["bump", "build", "test:install", "unbump"]
    assert tasks["release"]["steps"][-1]["exec"].startswith("git diff")  # nothing left changed


def test_pull_request_build_runs_the_readme_test_command_on_every_supported_python() -> None:
    data = workflow("build.yml")
    assert "pull_request" in data["on"]
    job = data["jobs"]["test"]
    runs = [step.get("run", "") for step in job["steps"]]
    # GIVEN the README's test command
    assert "npm ci && npm test" in (ROOT / "README.md").read_text()
    # THEN the build runs it, on each Python the classifiers claim
    assert runs.index("npm ci") < runs.index("npm test")
    claimed = [
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert job["strategy"]["matrix"]["python"] == claimed
    assert "npx projen test:install" in runs
    # AND fails when the build changed or added a file
    assert "git status --porcelain" in runs[-1] and "exit 1" in runs[-1]
    assert runs.index("npx projen") < runs.index("npm test")


# --- the version -----------------------------------------------------------------------------


def test_the_version_has_one_source() -> None:
    # GIVEN pyproject.toml THEN it writes no version: hatchling reads the file projen bumps
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "version.json"
    tasks = json.loads((ROOT / ".projen" / "tasks.json").read_text())["tasks"]
    assert tasks["bump"]["env"]["OUTFILE"] == "version.json"
    version = json.loads((ROOT / "version.json").read_text())["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)


# --- the artifacts ---------------------------------------------------------------------------


def test_artifacts_hold_what_should_ship(dist: Path) -> None:
    # wheel = the package's files, sdist = what rebuilding needs, metadata complete, links work
    assert check_dist.dist_problems(dist) == []


def test_artifacts_pass_twine_check_strict(dist: Path) -> None:
    result = subprocess.run(
        [BIN / "twine", "check", "--strict", *dist.glob("*.whl"), *dist.glob("*.tar.gz")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sdist_rebuilds_the_same_wheel(dist: Path, tmp_path: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    subprocess.run(
        [BIN / "uv", "build", "--wheel", "--quiet", "-o", tmp_path, sdist],
        check=True,
        env=UV_ENV,
    )
    (first,) = dist.glob("*.whl")
    (again,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(again) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())


def test_the_wheel_check_catches_a_stray_file_and_a_missing_handler(dist: Path) -> None:
    # negative control: the content check is not vacuous
    (wheel,) = dist.glob("*.whl")
    expected = check_dist.package_files()
    handler = next(n for n in sorted(expected) if n.count("/") >= 2 and n.endswith(".py"))
    problems = check_dist.wheel_problems(wheel, (expected - {handler}) | {"trading_constructs/x"})
    assert "wheel lacks trading_constructs/x" in problems
    assert f"wheel holds {handler}, which is not in the package" in problems


@pytest.mark.parametrize(
    ("markdown", "bad"),
    [
        ("See [API.md](API.md).", "API.md"),
        ("Under [Deploy](#deploy).", "#deploy"),
        ('<img src="docs/a.png">', "docs/a.png"),
        ("[ref]: CONTRIBUTING.md", "CONTRIBUTING.md"),
    ],
)
def test_the_link_check_catches_links_that_break_on_pypi(markdown: str, bad: str) -> None:
    assert check_dist.link_problems(markdown) == [
        f"long description links to {bad!r}: use an absolute https:// URL"
    ]
    assert check_dist.link_problems("```\n[a](b)\n```\n[c](https://example.com)") == []


def test_the_opening_check_catches_contributor_set_up() -> None:
    assert check_dist.opening_problems("# x\n\n## Quick start\n\n    npm ci\n") != []
    assert check_dist.opening_problems("# x\n\n## Use\n\n## Development\n\n    npm ci\n") == []


# --- installing before the first release -------------------------------------------------------


def readme_install() -> tuple[list[str], list[str]]:
    """The README's install commands: from a clone today, and from PyPI after a release."""
    section = (ROOT / "README.md").read_text().split("## Install\n", 1)[1].split("\n## ", 1)[0]
    today, later = re.findall(r"^```[a-z]*\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return today.splitlines(), later.splitlines()


def test_the_readme_says_which_install_works_today_and_which_after_the_first_release() -> None:
    today, later = readme_install()
    # GIVEN no release yet (the committed version is 0.0.0; the first release is 0.1.0)
    assert json.loads((ROOT / "version.json").read_text())["version"] == "0.0.0"
    projenrc = (ROOT / ".projenrc.py").read_text()
    first = re.search(r'^FIRST_VERSION = "([\d.]+)"', projenrc, flags=re.MULTILINE)[1]
    section = (ROOT / "README.md").read_text().split("## Install\n", 1)[1].split("\n## ", 1)[0]
    # THEN the README installs from a clone of the repository today, with every extra
    extras = ",".join(PYPROJECT["project"]["optional-dependencies"])
    assert today == [
        f"git clone {PYPROJECT['project']['urls']['Repository']}",
        f'pip install "./trading-constructs[{extras}]"',
    ]
    # AND keeps the PyPI line for after the first release, saying so
    assert later == [today[1].replace("./trading-constructs", "trading-constructs")]
    assert "not on PyPI" in section and f"After the first release ({first})" in section


def test_the_readme_install_from_a_clone_resolves_with_its_extras(tmp_path: Path) -> None:
    # GIVEN the README's install command, this checkout standing for the clone
    today, _ = readme_install()
    requirement = today[1].removeprefix("pip install ").strip('"')
    requirement = requirement.replace("./trading-constructs", str(ROOT))
    # WHEN pip builds it from source and resolves it (a dry run: nothing is installed)
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
         "--disable-pip-version-check", "--report", report, requirement],
        check=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    # THEN pip would install the package, version 0.0.0, with both extras, whose dependencies
    # this environment already holds
    installs = json.loads(report.read_text())["install"]
    (package,) = (i for i in installs if i["metadata"]["name"] == "trading-constructs")
    assert package["metadata"]["version"] == "0.0.0"
    assert package["requested_extras"] == ["assets", "postgres"]
    assert {"cdk-ecr-deployment", "pg8000"} & {i["metadata"]["name"] for i in installs} == set()
