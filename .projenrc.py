"""Project configuration: the one source of truth for generated config files.

Run ``npx projen`` after editing; never edit a generated file by hand.
"""

from projen import JsonFile, License, TomlFile
from projen.python import PythonProject, VenvOptions

PROJEN_VERSION = "0.103.25"  # the npm and the PyPI projen move together
UV_VERSION = "0.13.9"
NODE_VERSION = "24.21.0"  # jsii and the CDK CLI run on this, not the machine's Node 20
CDK_CLI_VERSION = "2.1148.1"

DESCRIPTION = (
    "AWS CDK v2 L3 constructs for a containerized microservice trading analytics "
    "platform on ECS Fargate"
)

# The library's own dependencies: ranges, so users' apps resolve; uv.lock pins them for us.
DEPS = [
    "aws-cdk-lib>=2.211.0,<3",
    "constructs>=10.5.0,<11",
    # PostgreSQL driver (pure Python) bundled into the database rotation function at synth
    "pg8000>=1.31.2,<2",
]
DEV_DEPS = [
    f"projen=={PROJEN_VERSION}",
    f"uv=={UV_VERSION}",
    "cdk-nag==3.0.2",
    "cdk-ecr-deployment==4.2.76",
    "cfn-lint==1.58.0",
    "mypy==2.4.1",
    "ruff==0.17.6",
    "pytest==9.2.0",
    "pytest-benchmark==5.3.1",
    "hypothesis>=6.100,<7",
    "boto3==1.44.8",
    "moto[secretsmanager]==5.2.5",
]

project = PythonProject(
    name="trading-constructs",
    module_name="trading_constructs",
    version="0.1.0",
    description=DESCRIPTION,
    author_name="trading-constructs developers",
    author_email="trading-constructs@users.noreply.github.com",
    license="Apache-2.0",
    deps=DEPS,
    dev_deps=DEV_DEPS,
    pip=True,
    venv=True,
    venv_options=VenvOptions(envdir=".venv", python_exec="python3"),
    setuptools=False,
    pytest=False,
    sample=False,
    github=False,
    projenrc_python_options={"projen_version": PROJEN_VERSION, "python_exec": "python3"},
)

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
            "version": "0.1.0",
            "description": DESCRIPTION,
            "readme": "README.md",
            "license": "Apache-2.0",
            "license-files": ["LICENSE"],
            "requires-python": ">=3.10",
            "dependencies": DEPS,
            "classifiers": [
                "Programming Language :: Python :: 3",
                "Framework :: AWS CDK",
                "Framework :: AWS CDK :: 2",
                "Typing :: Typed",
            ],
        },
        "dependency-groups": {"dev": DEV_DEPS},
        "tool": {
            "hatch": {"build": {"targets": {"wheel": {"packages": ["src/trading_constructs"]}}}},
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
                    "addopts": "-q --benchmark-disable",
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

docgen = project.add_task("docgen", description="Regenerate API.md from the docstrings")
docgen.exec(f"{VENV_BIN}/python scripts/docgen.py API.md")

test = project.tasks.try_find("test")
assert test is not None
test.exec(f"{VENV_BIN}/ruff check src test examples scripts .projenrc.py")
test.exec(f"{VENV_BIN}/ruff format --check src test examples scripts .projenrc.py")
test.exec(f"{VENV_BIN}/mypy --strict src")
test.exec(f"{VENV_BIN}/python -m pytest")

bench = project.add_task("bench", description="Time construction and synthesis of the example")
bench.exec(
    f"{VENV_BIN}/python -m pytest test/benchmarks/bench_synth.py --benchmark-enable "
    "-p no:cacheprovider -o python_files=bench_*.py"
)

package = project.tasks.try_find("package")
assert package is not None
package.exec(f"{VENV_BIN}/uv build --wheel --sdist -o dist", env={"UV_PYTHON_DOWNLOADS": "never"})

synth = project.add_task("synth:example", description="Synthesize the example platform")
synth.exec("cdk synth --quiet")

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
        },
        # npm 11 runs a dependency's install script only when allowed; node's fetches the binary
        "allowScripts": {"node": True},
        "devDependencies": {
            "aws-cdk": CDK_CLI_VERSION,
            "node": NODE_VERSION,
            "projen": PROJEN_VERSION,
        },
    },
    committed=True,
)

project.synth()
