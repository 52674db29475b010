"""Project configuration: the one source of truth for generated config files.

Run ``npx projen`` after editing; never edit a generated file by hand.
"""

import re
from pathlib import Path

from projen import Component, JsonFile, License, ReleasableCommits, TomlFile
from projen.github import GitHubOptions
from projen.github.workflows import (
    Job,
    JobMatrix,
    JobPermission,
    JobPermissions,
    JobStep,
    JobStrategy,
    MergeGroupOptions,
    PullRequestOptions,
    WorkflowDispatchOptions,
)
from projen.python import PythonProject, VenvOptions
from projen.release import Release, ReleaseTrigger

PROJEN_VERSION = "0.103.25"  # the npm and the PyPI projen move together
UV_VERSION = "0.13.9"
NODE_VERSION = "24.21.0"  # jsii and the CDK CLI run on this, not the machine's Node 20
CDK_CLI_VERSION = "2.1148.1"
# projen's bump runs it to read Conventional Commits; pinned here so npm ci installs it
# and a release needs no registry but PyPI's and npm's at install time
COMMIT_AND_TAG_VERSION = "13.2.1"

REPOSITORY_URL = "https://github.com/trading-constructs/trading-constructs"
DESCRIPTION = (
    "AWS CDK v2 L3 constructs for a containerized microservice trading analytics "
    "platform on ECS Fargate"
)
# The Python versions we claim (aws-cdk-lib supports the same): classifiers, CI matrix.
SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]
RELEASE_PYTHON = "3.13"  # builds, tests and install-tests the artifacts that ship
WORKFLOW_NODE = "24"  # the runner's npm; npm ci then installs NODE_VERSION for jsii and cdk

# The version lives in git tags (vX.Y.Z). projen's bump writes the next one into this file
# for the length of a release build (hatchling reads it into the wheel) and resets it to
# 0.0.0 afterwards, so the committed file always says 0.0.0.
VERSION_FILE = "version.json"
FIRST_VERSION = "0.1.0"  # what the first release is, while no tag exists
ARTIFACTS_DIR = "dist"  # projen's release metadata: changelog.md, version.txt, releasetag.txt
PYTHON_DIST_DIR = f"{ARTIFACTS_DIR}/python"  # the wheel and sdist, all that goes to PyPI

# Every action a workflow uses, pinned to a full commit SHA (its tag is written beside it).
ACTION_PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-node": ("820762786026740c76f36085b0efc47a31fe5020", "v7.0.0"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("043fb46d1a93c77aae656e7c1c64a875d1fc6a0a", "v7.0.1"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "pypa/gh-action-pypi-publish": ("dc37677b2e1c63e2034f94d8a5b11f265b73ba33", "v1.14.2"),
}


def action(name: str) -> str:
    """`owner/repo@sha` of a pinned action."""
    return f"{name}@{ACTION_PINS[name][0]}"


# The library's own dependencies: ranges, so users' apps resolve; uv.lock pins them for us.
DEPS = [
    "aws-cdk-lib>=2.269.0,<3",
    "constructs>=10.5.1,<11",
    # PostgreSQL driver (pure Python) bundled into the database rotation function at synth
    "pg8000>=1.31.2,<2",
    # ServiceImage.from_asset copies a built image into a scanned repository at deploy time;
    # 4.2.76 is the release the copy is built and tested on (loaded only when used)
    "cdk-ecr-deployment>=4.2.76,<5",
]
DEV_DEPS = [
    f"projen=={PROJEN_VERSION}",
    f"uv=={UV_VERSION}",
    "cdk-nag==3.0.2",
    "cfn-lint==1.58.0",
    "mypy==2.4.1",
    "ruff==0.17.6",
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",  # npm test on every core: two workers halve it on 2 cores
    "pytest-benchmark==5.3.1",
    "hypothesis>=6.100,<7",
    "boto3==1.44.8",
    "moto[secretsmanager]==5.2.5",
    # release: artifact checks and workflow linting (test/test_release.py)
    "twine==7.0.0",
    # the API reference (docs/api): API.md and the HTML site. Sphinx 8.1 is the last release
    # that runs on Python 3.10, so one version builds the same API.md on every Python we claim.
    "sphinx==8.1.3",
    "sphinx-markdown-builder==0.6.11",
    # both need Python 3.11+ (the workflow tests skip on 3.10, and only there)
    "zizmor==1.32.0; python_version >= '3.11'",
    "check-jsonschema==0.39.0; python_version >= '3.11'",
]

project = PythonProject(
    name="trading-constructs",
    module_name="trading_constructs",
    # not written anywhere: pyproject.toml reads the version from VERSION_FILE
    version="0.0.0",
    description=DESCRIPTION,
    author_name="trading-constructs developers",
    author_email="trading-constructs@users.noreply.github.com",
    homepage=REPOSITORY_URL,
    license="Apache-2.0",
    deps=DEPS,
    dev_deps=DEV_DEPS,
    pip=True,
    venv=True,
    venv_options=VenvOptions(envdir=".venv", python_exec="python3"),
    setuptools=False,
    pytest=False,
    sample=False,
    github=True,
    # The build workflow below lints PR titles itself: projen's lint job would run on
    # pull_request_target, which zizmor rightly calls dangerous.
    github_options=GitHubOptions(mergify=False, pull_request_lint=False),
    projenrc_python_options={"projen_version": PROJEN_VERSION, "python_exec": "python3"},
)
assert project.github is not None
for name, (sha, _tag) in ACTION_PINS.items():
    project.github.actions.set(name, f"{name}@{sha}")

License(project, spdx="Apache-2.0", copyright_owner="trading-constructs developers")
# pyproject.toml and uv.lock are the dependency truth; pip's requirement files would be another.
for generated in ("requirements.txt", "requirements-dev.txt"):
    project.try_remove_file(generated)

project.gitignore.add_patterns(
    "cdk.out/", "cdk.context.json", ".ruff_cache/", ".mypy_cache/", ".benchmarks/", "node_modules/"
)

TomlFile(
    project,
    "pyproject.toml",
    obj={
        "build-system": {"requires": ["hatchling==1.33.0"], "build-backend": "hatchling.build"},
        "project": {
            "name": "trading-constructs",
            "dynamic": ["version"],
            "description": DESCRIPTION,
            "readme": "README.md",
            "license": "Apache-2.0",
            "license-files": ["LICENSE"],
            "authors": [
                {
                    "name": "trading-constructs developers",
                    "email": "trading-constructs@users.noreply.github.com",
                }
            ],
            "keywords": [
                "aws",
                "aws-cdk",
                "cdk",
                "constructs",
                "ecs",
                "fargate",
                "service-connect",
                "app-mesh",
                "microservices",
                "infrastructure-as-code",
                "trading",
            ],
            "requires-python": f">={SUPPORTED_PYTHONS[0]}",
            "dependencies": DEPS,
            "classifiers": [
                "Development Status :: 3 - Alpha",
                "Intended Audience :: Developers",
                "Operating System :: OS Independent",
                "Programming Language :: Python :: 3",
                "Programming Language :: Python :: 3 :: Only",
                *(f"Programming Language :: Python :: {v}" for v in SUPPORTED_PYTHONS),
                "Framework :: AWS CDK",
                "Framework :: AWS CDK :: 2",
                "Topic :: System :: Distributed Computing",
                "Topic :: Software Development :: Libraries",
                "Typing :: Typed",
            ],
            "urls": {
                "Homepage": REPOSITORY_URL,
                "Documentation": f"{REPOSITORY_URL}/blob/main/API.md",
                "Repository": REPOSITORY_URL,
                "Issues": f"{REPOSITORY_URL}/issues",
                "Changelog": f"{REPOSITORY_URL}/releases",
            },
        },
        "dependency-groups": {"dev": DEV_DEPS},
        "tool": {
            "hatch": {
                "version": {
                    "path": VERSION_FILE,
                    "pattern": r'"version":\s*"(?P<version>[^"]+)"',
                },
                "build": {
                    "targets": {
                        # the package with its handler code and py.typed; nothing else
                        "wheel": {
                            "packages": ["src/trading_constructs"],
                            "exclude": ["__pycache__", "*.py[cod]"],
                        },
                        # what rebuilding the wheel needs (pyproject.toml and PKG-INFO come
                        # anyway): no lock files, CI scripts, tests or caches
                        "sdist": {
                            "only-include": [
                                "src/trading_constructs",
                                VERSION_FILE,
                                "README.md",
                                "LICENSE",
                            ],
                            "exclude": ["__pycache__", "*.py[cod]"],
                        },
                    }
                },
            },
            "uv": {"python-downloads": "never"},
            "ruff": {
                "line-length": 100,
                "target-version": "py310",
                "lint": {"select": ["E", "F", "W", "I", "B", "UP", "SIM", "RUF"]},
            },
            "mypy": {
                "strict": True,
                "python_version": "3.10",
                "files": ["src"],
                # boto3 ships no type hints; the rotation handlers use it only at their edges
                "overrides": [
                    {
                        "module": ["boto3", "boto3.*", "botocore", "botocore.*"],
                        "ignore_missing_imports": True,
                    }
                ],
            },
            "pytest": {
                "ini_options": {
                    "testpaths": ["test"],
                    # a worker per core (two on 2 cores), a test file per worker so module
                    # fixtures build once; session fixtures build once per worker
                    "addopts": "-q --benchmark-disable -n auto --dist loadfile",
                    "pythonpath": ["."],
                    "filterwarnings": ["ignore::DeprecationWarning:jsii.*"],
                }
            },
        },
    },
)

VENV_BIN = ".venv/bin"
install = project.tasks.try_find("install")
assert install is not None
install.reset(
    "[ -x .venv/bin/python ] || python3 -m venv .venv",
    name="create the virtualenv with the machine's Python 3.10+",
)
install.exec(
    f"{VENV_BIN}/python -m pip install --quiet --disable-pip-version-check uv=={UV_VERSION}"
)
install.exec(
    f"{VENV_BIN}/uv sync --frozen --all-groups --python {VENV_BIN}/python",
    env={"UV_PROJECT_ENVIRONMENT": ".venv", "UV_PYTHON_DOWNLOADS": "never"},
)

lock = project.add_task("lock", description="Re-resolve uv.lock after a dependency change")
lock.exec(f"{VENV_BIN}/uv lock", env={"UV_PYTHON_DOWNLOADS": "never"})

# The API reference: Sphinx autodoc (+ napoleon) reads the docstrings of the public names
# (docs/api/conf.py says which); sphinx-markdown-builder writes API.md, the html builder a site.
DOCS_SOURCE = "docs/api"
DOCS_BUILD = "build/docs"  # git-ignored
SPHINX_BUILD = f"{VENV_BIN}/sphinx-build -E -W --keep-going -q"
docgen = project.add_task(
    "docgen", description="Regenerate API.md from the docstrings (Sphinx, Markdown builder)"
)
docgen.exec(f"{SPHINX_BUILD} -b markdown {DOCS_SOURCE} {DOCS_BUILD}/markdown")
docgen.exec(f"cp {DOCS_BUILD}/markdown/index.md API.md")
docgen_html = project.add_task(
    "docgen:html",
    description=f"Build the HTML API reference from the docstrings into {DOCS_BUILD}/html",
)
docgen_html.exec(f"{SPHINX_BUILD} -b html {DOCS_SOURCE} {DOCS_BUILD}/html")

test = project.tasks.try_find("test")
assert test is not None
test.exec(f"{VENV_BIN}/ruff check src test examples scripts docs .projenrc.py")
test.exec(f"{VENV_BIN}/ruff format --check src test examples scripts docs .projenrc.py")
test.exec(f"{VENV_BIN}/mypy --strict src")
test.exec(f"{VENV_BIN}/python -m pytest")

bench = project.add_task(
    "bench",
    description=(
        "Time the example in one process, then synthesis at scale in fresh processes (empty "
        "stack, import floor, example, 1 to 60 services); writes docs/benchmarks/REPORT.md"
    ),
)
bench.exec(
    f"{VENV_BIN}/python -m pytest test/benchmarks/bench_synth.py --benchmark-enable -n 0 "
    "-p no:cacheprovider -o python_files=bench_*.py"
)
bench.spawn(
    project.add_task(
        "bench:scale",
        description="Synthesis at scale in fresh processes; writes docs/benchmarks/REPORT.md",
        exec=f"{VENV_BIN}/python -m pytest test/benchmarks/bench_scale.py --benchmark-enable -n 0 "
        "-p no:cacheprovider -o python_files=bench_*.py -s",
    )
)

# package: the wheel and sdist that would ship, checked as PyPI and users will see them
package = project.tasks.try_find("package")
assert package is not None
package.reset(f"rm -rf {PYTHON_DIST_DIR}")
package.exec(
    f"{VENV_BIN}/uv build --wheel --sdist -o {PYTHON_DIST_DIR}",
    env={"UV_PYTHON_DOWNLOADS": "never"},
)
package.exec(f"{VENV_BIN}/twine check --strict {PYTHON_DIST_DIR}/*.whl {PYTHON_DIST_DIR}/*.tar.gz")
package.exec(f"{VENV_BIN}/python scripts/check_dist.py {PYTHON_DIST_DIR}")

install_test = project.add_task(
    "test:install",
    description=(
        "Install the built wheel into clean virtualenvs (dependencies as uv.lock pins them, "
        "then the lowest versions it declares) and synthesize a consumer app with each"
    ),
)
# The declared floor is a claim: aws-cdk-lib 2.269.0 is the first release the library works
# with (2.268 rejects the acknowledgement ids cdk-nag 3 writes; 2.251 and older lack
# Acknowledgment). The lowest run proves it on every build and release.
for deps in ("locked", "lowest"):
    install_test.exec(
        f"{VENV_BIN}/python scripts/install_test.py {PYTHON_DIST_DIR} --deps {deps}",
        env={"UV_PYTHON_DOWNLOADS": "never"},
    )

synth = project.add_task("synth:example", description="Synthesize the example platform")
synth.exec("cdk synth --quiet")

# --- release ------------------------------------------------------------------------------
# `npx projen release` on main: bump the version from the Conventional Commits since the last
# tag, write the changelog entry, build and test (`build`), install-test the wheel, and leave
# in dist/ exactly what ships. The workflow then publishes dist/python to PyPI and creates the
# GitHub release (and with it the tag) holding dist/changelog.md.
build_task = project.tasks.try_find("build")
assert build_task is not None
release = Release(
    project,
    branch="main",
    artifacts_directory=ARTIFACTS_DIR,
    version_file=VERSION_FILE,
    tasks=[build_task, install_test],
    release_trigger=ReleaseTrigger.continuous(),
    # a release only for what users see: features, fixes, performance, reverts, breaking
    releasable_commits=ReleasableCommits.exec(
        "git log --no-merges --oneline $LATEST_TAG..HEAD -E"
        " --grep '^(feat|fix|perf|revert)(\\([^()[:space:]]+\\))?!?:[[:blank:]]+.+'"
        " --grep '^[a-z]+(\\([^()[:space:]]+\\))?!:[[:blank:]]+.+'"
        " --grep '^BREAKING[ -]CHANGE:'"
    ),
    next_version_command=(
        f"node -e \"process.stdout.write(process.env.LATEST_TAG ? '' : '{FIRST_VERSION}')\""
    ),
    bump_package=f"commit-and-tag-version@{COMMIT_AND_TAG_VERSION}",
    versionrc_options={
        "commitUrlFormat": f"{REPOSITORY_URL}/commit/{{{{hash}}}}",
        "compareUrlFormat": f"{REPOSITORY_URL}/compare/{{{{previousTag}}}}...{{{{currentTag}}}}",
        "issueUrlFormat": f"{REPOSITORY_URL}/issues/{{{{id}}}}",
    },
    workflow_node_version=WORKFLOW_NODE,
    # the build job reads the repository; only the GitHub release job writes (the tag)
    workflow_permissions=JobPermissions(contents=JobPermission.READ),
    release_workflow_setup_steps=[
        JobStep(
            name="Set up Python",
            uses=action("actions/setup-python"),
            with_={"python-version": RELEASE_PYTHON},
        ),
        JobStep(
            name="Set up Node",
            uses=action("actions/setup-node"),
            with_={"node-version": WORKFLOW_NODE},
        ),
        JobStep(name="Install", run="npm ci"),
    ],
)
release.add_jobs(
    {
        "release_pypi": Job(
            name="Publish to PyPI",
            needs=["release"],
            if_=(
                "needs.release.outputs.tag_exists != 'true'"
                " && needs.release.outputs.latest_commit == github.sha"
            ),
            runs_on=["ubuntu-latest"],
            # PyPI's trusted publisher for this project names this workflow and environment
            environment={"name": "pypi", "url": "https://pypi.org/project/trading-constructs/"},
            # OIDC for PyPI's trusted publishing: no stored token, and nothing else
            permissions=JobPermissions(id_token=JobPermission.WRITE),
            steps=[
                JobStep(
                    name="Download build artifacts",
                    uses=action("actions/download-artifact"),
                    with_={
                        "artifact-ids": "${{ needs.release.outputs.artifact_id }}",
                        "path": ARTIFACTS_DIR,
                    },
                ),
                JobStep(
                    name="Publish to PyPI (trusted publishing)",
                    if_="${{ !inputs.dry_run }}",
                    uses=action("pypa/gh-action-pypi-publish"),
                    with_={"packages-dir": f"{PYTHON_DIST_DIR}/"},
                ),
            ],
        )
    }
)

release_workflow = project.github.try_find_workflow("release")
assert release_workflow is not None
release_workflow.file.add_override("jobs.release.name", "Build, test and install-test")
# the tag and the GitHub release only once the artifacts are on PyPI
release_workflow.file.add_override("jobs.release_github.needs", ["release", "release_pypi"])
# the build job keeps no credentials in .git (it pushes nothing)
release_workflow.file.add_override("jobs.release.steps.0.with.persist-credentials", False)

# --- pull requests ------------------------------------------------------------------------
build_workflow = project.github.add_workflow("build")
build_workflow.on(
    pull_request=PullRequestOptions(),
    merge_group=MergeGroupOptions(),
    workflow_dispatch=WorkflowDispatchOptions(),
)
# a new push to a pull request cancels the run of the push before it
build_workflow.file.add_override(
    "concurrency",
    {
        "group": "${{ github.workflow }}-${{ github.event.pull_request.number || github.ref }}",
        "cancel-in-progress": True,
    },
)
build_workflow.add_jobs(
    {
        "test": Job(
            name="npm test (Python ${{ matrix.python }})",
            runs_on=["ubuntu-latest"],
            permissions=JobPermissions(contents=JobPermission.READ),
            timeout_minutes=45,
            strategy=JobStrategy(
                fail_fast=False, matrix=JobMatrix(domain={"python": SUPPORTED_PYTHONS})
            ),
            steps=[
                JobStep(
                    name="Checkout",
                    uses=action("actions/checkout"),
                    with_={"persist-credentials": False},
                ),
                JobStep(
                    name="Set up Python",
                    uses=action("actions/setup-python"),
                    with_={"python-version": "${{ matrix.python }}"},
                ),
                JobStep(
                    name="Set up Node",
                    uses=action("actions/setup-node"),
                    with_={"node-version": WORKFLOW_NODE},
                ),
                JobStep(name="Install (npm ci)", run="npm ci"),
                JobStep(name="Regenerate project files (npx projen)", run="npx projen"),
                JobStep(name="Test (npm test)", run="npm test"),
                JobStep(name="Build and check the artifacts", run="npx projen package"),
                JobStep(
                    name="Consumer install test (the wheel in a clean virtualenv)",
                    run="npx projen test:install",
                ),
                JobStep(
                    name="Fail if the build changed or added files",
                    run=(
                        'if [ -n "$(git status --porcelain)" ]; then\n'
                        '  echo "::error::The build left changes: run npx projen (and npx '
                        'projen docgen) and commit the result."\n'
                        "  git status --porcelain\n"
                        "  git diff\n"
                        "  exit 1\n"
                        "fi"
                    ),
                ),
            ],
        ),
        "pr_title": Job(
            name="PR title follows Conventional Commits",
            if_="github.event_name == 'pull_request'",
            runs_on=["ubuntu-latest"],
            permissions=JobPermissions(),
            steps=[
                JobStep(
                    name="Check the title (it becomes the squashed commit)",
                    env={"TITLE": "${{ github.event.pull_request.title }}"},
                    run=(
                        "printf '%s\\n' \"$TITLE\" | grep -Eq "
                        "'^(feat|fix|perf|revert|docs|style|refactor|test|build|ci|chore)"
                        "(\\([^()[:space:]]+\\))?!?: .+' || {\n"
                        '  echo "::error::PR title must be a Conventional Commit '
                        '(feat: ..., fix(scope): ..., feat!: ...); see CONTRIBUTING.md"\n'
                        "  exit 1\n"
                        "}"
                    ),
                )
            ],
        ),
    }
)


# Why a job holds a write permission, written beside it in the workflow.
PERMISSION_REASONS = {
    "contents: write": "creates the release tag and the GitHub release",
    "id-token: write": "PyPI trusted publishing (OIDC): no stored token",
}


class WorkflowFinish(Component):
    """Finishes the written workflows where projen's YAML cannot: no permissions at the top
    (`permissions: {}`; each job asks for what it needs; projen drops empty mappings), each
    pinned action's tag beside its SHA (`uses: a/b@<sha> # vX.Y.Z`) and the reason beside
    each write permission (projen's YAML has no comments).
    """

    def post_synthesize(self) -> None:
        pins = {f"{name}@{sha}": tag for name, (sha, tag) in ACTION_PINS.items()}

        def comment(m: re.Match[str]) -> str:
            value = m.group(2)
            note = pins.get(value.removeprefix("uses: "), PERMISSION_REASONS.get(value))
            return f"{m.group(1)}{value} # {note}" if note else m.group(0)

        for path in sorted(Path(project.outdir, ".github", "workflows").glob("*.yml")):
            text = path.read_text()
            annotated = re.sub(
                r"^(\s*(?:- )?)(uses: \S+|[a-z-]+: write)$", comment, text, flags=re.MULTILINE
            )
            if not re.search(r"^permissions:", annotated, flags=re.MULTILINE):
                annotated = annotated.replace("\njobs:\n", "\npermissions: {}\njobs:\n", 1)
            if annotated != text:
                mode = path.stat().st_mode
                path.chmod(mode | 0o200)
                path.write_text(annotated)
                path.chmod(mode)


WorkflowFinish(project)

JsonFile(
    project,
    "package.json",
    obj={
        "name": "trading-constructs-dev",
        "private": True,
        "description": "Development toolchain of trading-constructs (the library is on PyPI)",
        "license": "Apache-2.0",
        "engines": {"node": ">=22"},
        "scripts": {
            "postinstall": "projen install",
            "test": "projen test",
            "projen": "projen",
            "synth": "projen synth:example",
            "docgen": "projen docgen",
            "docgen:html": "projen docgen:html",
        },
        # npm 11 runs a dependency's install script only when allowed; node's fetches the binary
        "allowScripts": {"node": True},
        "devDependencies": {
            "aws-cdk": CDK_CLI_VERSION,
            "commit-and-tag-version": COMMIT_AND_TAG_VERSION,
            "node": NODE_VERSION,
            "projen": PROJEN_VERSION,
        },
    },
    committed=True,
)

project.synth()
