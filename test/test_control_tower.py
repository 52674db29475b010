"""AWS Control Tower's proactive controls: what a landing zone's CloudFormation hooks would refuse.

The controls run as ``cdklabs-cdk-validator-cfnguard`` runs them: the Control Tower rules, with
the cfn-guard binary its wheel ships (nothing is downloaded). The example with the Control Tower
profile (``-c control_tower=true``) is synthesized with the validator as a CDK validation
plugin, so its report and CDK's own acknowledgement matching are what a user's ``cdk synth``
gives. The apps the other tests synthesize anyway (the example as ``cdk synth`` builds it, the
construct-level stacks) are read by the same rules and cfn-guard binary over their templates,
and their acknowledgements matched as CDK matches them (the construct or its nearest ancestor),
so that no app is synthesized twice.

A finding is (control, construct path). The example's default choices that a control disagrees
with stay the defaults and are acknowledged next to the construct, with the reason; the profile
meets the controls instead. ``PENDING_*`` lists findings whose fix lies in constructs this
change does not own (see each entry): the tests fail when one is fixed (delete the entry) or
when a new finding appears.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import construct_platforms
import pytest
from aws_cdk import (
    App,
    CfnElement,
    Stack,
    Validations,
)
from aws_cdk import aws_logs as logs
from cdklabs import cdk_validator_cfnguard
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator
from cfnlint.api import lint
from conftest import CDK_CONTEXT, CERTIFICATE_ARN, SynthesizedApp, synthesize
from construct_support import readiness_violations
from constructs import IConstruct
from test_envoy_config import envoy_config, parse

from examples.trading_platform.app import create_app
from trading_constructs.compliance import (
    CFN_GUARD_PLUGIN,
    CONTROL_TOWER_CONTEXT,
    control_tower_profile,
)

Finding = tuple[str, str]
"""(control id, construct path of the resource), e.g. ("CT.ECS.PR.7", "Stack/Svc/Task/Resource")."""

# --- known pending: fixes in constructs owned elsewhere (remove an entry once it is fixed) ----
# Each says what makes the finding go: a property by default, or the profile
# (``control_tower_profile(scope)``, context trading-constructs:control-tower), or an
# acknowledgement with its reason next to the construct.
_PENDING_PLATFORM: set[Finding] = set()
PENDING_EXAMPLE: set[Finding] = set(_PENDING_PLATFORM)
PENDING_PROFILE: set[Finding] = set(_PENDING_PLATFORM)

# --- acknowledged here, each with its reason beside the construct ---------------------------
_SERVICES = ("DataIngestion", "AnalyticsEngine", "ApiGateway")
ACKNOWLEDGED_EXAMPLE: set[Finding] = {
    # observability.py: the default 30-day container logs (the profile keeps them a year)
    *(
        ("CT.CLOUDWATCH.PR.2", f"TradingPlatform/{service}/Observability/{group}/Resource")
        for service in _SERVICES
        for group in (f"{service}Logs", "EnvoyLogs")
    ),
    # mesh/certificates.py: the certificate init container writes into a root-owned volume
    *(("CT.ECS.PR.3", f"TradingPlatform/{s}/TaskDefinition/Resource") for s in _SERVICES),
    # mesh/certificates.py: aws-cdk-lib's trigger provider has no VPC setting
    (
        "CT.LAMBDA.PR.3",
        "TradingPlatform/AWSCDK.TriggerCustomResourceProviderCustomResourceProvider/Handler",
    ),
    # cluster.py: nor has its restrict-default-security-group provider
    (
        "CT.LAMBDA.PR.3",
        "TradingPlatform/Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler",
    ),
    # repository.py: content-addressed tags may be pushed again (IMMUTABLE_WITH_EXCLUSION)
    *(
        ("CT.ECR.PR.3", f"TradingPlatform/{service}Repository/Repository/Resource")
        for service in _SERVICES
    ),
    # cluster.py: Container Insights 'enhanced' (more than 'enabled', which the control reads)
    ("CT.ECS.PR.2", "TradingPlatform/Platform/Cluster/Resource"),
    # platform_stack.py: deletion protection off for a first create (the profile turns it on)
    ("CT.RDS.PR.3", "TradingPlatform/MarketDataDb/Resource"),
    ("CT.ELASTICLOADBALANCING.PR.5", "TradingPlatform/Edge/LoadBalancer/Resource"),
    # edge.py: the access-log bucket (logging the log bucket, Object Lock, SSE-S3 only)
    *(
        (control, "TradingPlatform/Edge/AccessLogs/Resource")
        for control in ("CT.S3.PR.2", "CT.S3.PR.9", "CT.S3.PR.10")
    ),
    # edge.py: plain HTTP without a certificate, and the forward-only blue/green test listener
    ("CT.ELASTICLOADBALANCING.PR.1", "TradingPlatform/Edge/LoadBalancer/Http/Resource"),
    ("CT.ELASTICLOADBALANCING.PR.1", "TradingPlatform/Edge/LoadBalancer/Test/Resource"),
}
ACKNOWLEDGED_PROFILE: set[Finding] = {
    # the logs are kept a year, Envoy reads its certificate from its environment, with no
    # root init container, and deletion protection is on; what is left is aws-cdk-lib's
    # providers, the content-addressed tags and Container Insights 'enhanced'
    f
    for f in ACKNOWLEDGED_EXAMPLE
    if f[0] in ("CT.LAMBDA.PR.3", "CT.ECR.PR.3", "CT.ECS.PR.2")
    or (f[0] in ("CT.S3.PR.2", "CT.S3.PR.9", "CT.S3.PR.10"))
}


@dataclass(frozen=True)
class Findings:
    """A validator run: what it reports, and what acknowledgements answered (with reasons)."""

    open: set[Finding]
    acknowledged: dict[Finding, str]


def _control(description: str) -> str:
    found = re.match(r"\[(CT\.[A-Z0-9]+\.PR\.[0-9]+)\]", description)
    assert found, f"not a Control Tower finding: {description!r}"
    return found.group(1)


def _from_report(app: SynthesizedApp) -> Findings:
    assert app.validation_report is not None, "the validators did not run"
    return _findings(app.validation_report)


def _findings(validation_report: dict[str, Any]) -> Findings:
    """The plugin's part of CDK's validation report (validation-report.json)."""
    (report,) = [
        r for r in validation_report["pluginReports"] if r["pluginName"] == CFN_GUARD_PLUGIN
    ] or [{"violations": [], "suppressedViolations": []}]
    found = {
        (_control(v["description"]), c["constructPath"])
        for v in report.get("violations", [])
        for c in v["violatingConstructs"]
    }
    acknowledged = {
        (_control(v["description"]), c["constructPath"]): v.get("reason") or ""
        for v in report.get("suppressedViolations") or []
        for c in v["violatingConstructs"]
    }
    return Findings(found, acknowledged)


def _types(app: SynthesizedApp) -> set[str]:
    return {r["Type"] for t in app.templates.values() for r in t["Resources"].values()}


@pytest.fixture(scope="session")
def example_controls(
    mutual_tls: SynthesizedApp, guard_rules: GuardRules
) -> tuple[SynthesizedApp, Findings]:
    """`cdk synth` with no context (the session's ``mutual_tls`` app, cdk-nag packs included):
    the rules run over its templates as the plugin would, so that the app is not synthesized
    twice; the profile's app below runs the plugin itself."""
    stacks = [c for c in mutual_tls.app.node.children if isinstance(c, Stack)]
    return mutual_tls, _guard(guard_rules, stacks)


@pytest.fixture(scope="session")
def profile_controls(
    tmp_path_factory: pytest.TempPathFactory, mutual_tls: SynthesizedApp, guard_rules: GuardRules
) -> tuple[SynthesizedApp, Findings]:
    """`cdk synth -c control_tower=true -c certificate_arn=...`: the Control Tower profile,
    with the validator as a plugin. It runs the rules for the resource types of the example
    (``cdk synth``'s): the profile changes settings, not what exists (a test checks)."""
    context = {"control_tower": "true", "certificate_arn": CERTIFICATE_ARN}
    app = create_app(
        context=CDK_CONTEXT | context, outdir=str(tmp_path_factory.mktemp("control-tower-profile"))
    )
    relevant = guard_rules.relevant(_types(mutual_tls))
    Validations.of(app).add_plugins(
        CfnGuardValidator(disabled_rules=sorted(set(guard_rules.files) - set(relevant)))
    )
    synthesized = synthesize(app)
    return synthesized, _from_report(synthesized)


def _acknowledgements(root: IConstruct) -> dict[str, dict[str, str]]:
    """rule id -> construct path -> reason, as CDK collects them."""
    found: dict[str, dict[str, str]] = {}
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule_id, reason in entry.data.items():
                    found.setdefault(rule_id, {})[construct.node.path] = reason
    return found


def _closest(acknowledged: dict[str, str], path: str) -> str | None:
    """The reason acknowledged at the path or its nearest ancestor (CDK's matching)."""
    while path not in acknowledged:
        if not path:
            return None
        path = path.rpartition("/")[0]
    return acknowledged[path]


@dataclass(frozen=True)
class GuardRules:
    """The cfn-guard binary and the Control Tower rules the validator's wheel ships, unpacked
    as the plugin finds them, and the resource types each rule evaluates (its metadata)."""

    binary: Path
    files: dict[str, Path]
    """Rule files by name ('ct-ecs-pr-7')."""
    types: dict[str, set[str]]

    def relevant(self, types: set[str]) -> list[str]:
        """The rules that evaluate one of ``types``: the others skip every such template."""
        return sorted(rule for rule, evaluated in self.types.items() if evaluated & types)


@pytest.fixture(scope="session")
def guard_rules(tmp_path_factory: pytest.TempPathFactory) -> GuardRules:
    package = Path(cdk_validator_cfnguard.__file__).parent / "_jsii"
    (tarball,) = package.glob("cdk-validator-cfnguard@*.jsii.tgz")
    where = tmp_path_factory.mktemp("cfn-guard")
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[
        platform.machine().lower()
    ]
    binary = f"package/bin/{'macos' if sys.platform == 'darwin' else 'ubuntu'}/{arch}/cfn-guard"
    rules, metadata = (
        "package/rules/control-tower/cfn-guard/",
        "package/rules/control-tower/metadata/",
    )
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(tarball) as archive:
        members = [
            m
            for m in archive.getmembers()
            if m.name == binary or m.name.startswith((rules, metadata))
        ]
        archive.extractall(where, members=members, **safe)  # type: ignore[arg-type]
    files = {f.stem: f for f in (where / rules).glob("*/*.guard")}
    types = {
        f.name.removesuffix(".metadata.json"): set(
            json.loads(f.read_text())["EvaluatedResourceTypes"]
        )
        for f in (where / metadata).glob("*/*.metadata.json")
    }
    assert set(files) <= set(types), "a rule without metadata"
    return GuardRules(where / binary, files, {rule: types[rule] for rule in files})


def _guard(rules: GuardRules, stacks: list[Stack]) -> Findings:
    """The validator's rules over stacks the other tests synthesized anyway, in one cfn-guard
    run (only the rules that evaluate a type the templates have: the others skip every
    template, and cfn-guard reads a template once per rule), read as the plugin reads it (a
    failing rule names the resources its checks reached) and matched to acknowledgements as
    CDK matches them (the construct or its nearest ancestor). The plugin itself cannot be
    called here: for a failing KMS key it also reports a resource without a logical ID, which
    its Python binding cannot return."""
    paths: dict[str, dict[str, str]] = {}  # template -> logical id -> construct path
    acks: dict[str, dict[str, dict[str, str]]] = {}  # template -> rule id -> path -> reason
    for stack in stacks:
        template = str(Path(stack.node.root.outdir) / stack.template_file)
        paths[template] = {
            stack.get_logical_id(c): c.node.path
            for c in stack.node.find_all()
            if isinstance(c, CfnElement)
        }
        acks[template] = _acknowledgements(stack.node.root)
    types = {
        resource["Type"]
        for template in paths
        for resource in json.loads(Path(template).read_text())["Resources"].values()
    }
    command = [str(rules.binary), "validate"]
    for rule in rules.relevant(types):
        command += ["--rules", str(rules.files[rule])]
    for template in sorted(paths):
        command += ["--data", template]
    command += ["--output-format", "json", "--show-summary", "none", "--structured"]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    assert run.returncode in (0, 19), run.stderr  # 19: something is not compliant
    found: set[Finding] = set()
    acknowledged: dict[Finding, str] = {}
    for result in json.loads(run.stdout):
        template = result["name"]
        for failure in result["not_compliant"] or []:
            rule = failure["Rule"]
            text = json.dumps(rule)
            control = _control(re.search(r"\[CT\.[A-Z0-9]+\.PR\.[0-9]+\]", text)[0])
            rule_acks = acks[template].get(f"{CFN_GUARD_PLUGIN}::{rule['name']}", {})
            for logical_id in set(re.findall(r'"/Resources/([^/"]+)', text)):
                path = paths[template][logical_id]
                reason = _closest(rule_acks, path)
                if reason is None:
                    found.add((control, path))
                else:
                    acknowledged[(control, path)] = reason
    return Findings(found, acknowledged)


@pytest.fixture(scope="session")
def construct_controls(
    tmp_path_factory: pytest.TempPathFactory, guard_rules: GuardRules
) -> Findings:
    """The construct-level stacks on each mesh (test/construct_platforms.py)."""
    return _guard(guard_rules, [p.stack for p in construct_platforms.platforms(tmp_path_factory)])


# --- the example ------------------------------------------------------------------------------


def _assert_open_are_the_pending(findings: Findings, pending: set[Finding]) -> None:
    """No finding is open but the pending ones, and none of those is fixed already (its entry
    is then deleted)."""
    assert sorted(findings.open - pending) == [], "new findings"
    assert sorted(pending - findings.open) == [], "fixed: delete them from PENDING"


def test_the_example_leaves_no_finding_unacknowledged_but_the_pending(
    example_controls: tuple[SynthesizedApp, Findings],
) -> None:
    # GIVEN `cdk synth` with the Control Tower rules as a validation plugin
    _, findings = example_controls
    # THEN every finding is acknowledged with its reason, or known pending elsewhere
    _assert_open_are_the_pending(findings, PENDING_EXAMPLE)


def test_the_example_acknowledges_its_default_choices_with_reasons(
    example_controls: tuple[SynthesizedApp, Findings],
) -> None:
    _, findings = example_controls
    assert set(findings.acknowledged) == ACKNOWLEDGED_EXAMPLE
    for finding, reason in findings.acknowledged.items():
        assert len(reason) > 60, f"{finding} needs a real reason"


def test_the_profile_meets_every_control_but_the_pending(
    profile_controls: tuple[SynthesizedApp, Findings],
) -> None:
    # GIVEN `cdk synth -c control_tower=true` with a certificate
    app, findings = profile_controls
    # THEN what is left is pending in constructs owned elsewhere; with those fixed the profile
    # synthesizes with no finding but the acknowledged ones below
    _assert_open_are_the_pending(findings, PENDING_PROFILE)
    assert set(findings.acknowledged) == ACKNOWLEDGED_PROFILE
    if not findings.open:
        assert app.synth_error is None


def test_the_profile_ran_every_rule_that_applies(
    profile_controls: tuple[SynthesizedApp, Findings], mutual_tls: SynthesizedApp
) -> None:
    # the profile's resource types are the example's, whose rules it ran
    assert sorted(_types(profile_controls[0]) - _types(mutual_tls)) == []


def test_the_profile_keeps_container_logs_a_year_and_protects_what_it_deletes(
    profile_controls: tuple[SynthesizedApp, Findings],
    example_controls: tuple[SynthesizedApp, Findings],
) -> None:
    def kinds(app: SynthesizedApp, kind: str) -> dict[str, dict[str, Any]]:
        resources = app.templates["TradingPlatform"]["Resources"]
        return {lid: r for lid, r in resources.items() if r["Type"] == kind}

    profile, default = profile_controls[0], example_controls[0]
    for app, days in ((default, 30), (profile, 365)):
        groups = kinds(app, "AWS::Logs::LogGroup")
        service_logs = [group for lid, group in groups.items() if "Observability" in lid]
        assert len(service_logs) == 6
        assert {g["Properties"]["RetentionInDays"] for g in service_logs} == {days}
    (database,) = kinds(profile, "AWS::RDS::DBCluster").values()
    assert database["Properties"]["DeletionProtection"] is True
    (balancer,) = kinds(profile, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = balancer["Properties"]["LoadBalancerAttributes"]
    assert {"Key": "deletion_protection.enabled", "Value": "true"} in attributes


def test_the_profile_lints_clean_and_is_deploy_ready_but_for_its_deletion_protection(
    profile_controls: tuple[SynthesizedApp, Findings],
) -> None:
    # GIVEN the profile's template (the gates every synthesized template passes)
    template = profile_controls[0].templates["TradingPlatform"]
    # THEN cfn-lint finds nothing, and the deploy-readiness rules only the deletion protection
    # the profile turns on from the first create (CT.RDS.PR.3, CT.ELASTICLOADBALANCING.PR.5):
    # a failed first create then cannot delete the database and the load balancer, the price of
    # landing zones whose hooks refuse them unprotected
    assert [str(m) for m in lint(json.dumps(template), regions=["us-east-1"])] == []
    found = readiness_violations(template)
    assert list(found) == ["deletion protection"]
    assert len(found["deletion protection"]) == 2


VARIABLES = ("MESH_TLS_CERT", "MESH_TLS_KEY", "MESH_TLS_CA")


def test_under_the_profile_envoy_reads_its_certificate_from_its_environment(
    profile_controls: tuple[SynthesizedApp, Findings],
) -> None:
    # GIVEN the profile's task definitions (the mutual-TLS mesh)
    resources = profile_controls[0].templates["TradingPlatform"]["Resources"]
    tasks = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    assert len(tasks) == 3
    for task in tasks:
        containers = {c["Name"]: c for c in task["ContainerDefinitions"]}
        envoy = containers.pop("envoy")
        (app,) = containers.values()
        # THEN no init container, no volume, nobody as root: ECS hands Envoy the secret's
        # fields, and Envoy's configuration (parsed with Envoy's own API) reads them there
        assert "Volumes" not in task and "MountPoints" not in envoy
        assert {s["Name"] for s in envoy["Secrets"]} == {
            "MESH_TLS_CERT",
            "MESH_TLS_KEY",
            "MESH_TLS_CA",
        }
        assert (envoy["User"], app["User"]) == ("101", "10001")
        config = envoy_config(envoy)
        parse(config)
        text = json.dumps(config)
        assert "/etc/mesh-tls" not in text
        for variable in VARIABLES:
            assert f'{{"environment_variable": "{variable}"}}' in text


def test_the_profile_context_is_read_strictly() -> None:
    for value, expected in ((None, False), (True, True), ("true", True), ("False", False)):
        app = App(context={} if value is None else {CONTROL_TOWER_CONTEXT: value})
        assert control_tower_profile(app) is expected
    with pytest.raises(ValueError, match=r"trading-constructs:control-tower='yes'.*true, false"):
        control_tower_profile(App(context={CONTROL_TOWER_CONTEXT: "yes"}))


def test_the_example_profile_needs_https(tmp_path: Path) -> None:
    # CT.ELASTICLOADBALANCING.PR.1: HTTP listeners only redirect to HTTPS
    with pytest.raises(ValueError, match=r"control_tower=true.*certificate_arn"):
        create_app(context=CDK_CONTEXT | {"control_tower": "true"}, outdir=str(tmp_path))


# --- the construct-level stacks ---------------------------------------------------------------

_STACKS = ("ServiceConnect", "AppMesh", "MutualTls")
PENDING_CONSTRUCTS: set[Finding] = {
    # the test stacks leave the edge's deletion protection off (its default, for a first
    # create) and do not acknowledge it, as the example does
    *(
        ("CT.ELASTICLOADBALANCING.PR.5", f"{stack}/Edge/LoadBalancer/Resource")
        for stack in ("ServiceConnect", "MutualTls")
    ),
}
_MUTUAL_TLS_SERVICES = (
    "Prices",
    "Orders",
    "Quotes",
    "Gateway",
    "Beta",
    "Alpha",
    "RingZ",
    "RingY",
    "RingX",
    "Audit",
    "Sweeper",
)
ACKNOWLEDGED_CONSTRUCTS: set[Finding] = {
    # edge.py, as in the example: the access-log bucket, plain HTTP without a certificate and
    # the forward-only blue/green test listener
    *(
        (control, f"{stack}/Edge/AccessLogs/Resource")
        for stack in ("ServiceConnect", "MutualTls")
        for control in ("CT.S3.PR.2", "CT.S3.PR.9", "CT.S3.PR.10")
    ),
    *(
        ("CT.ELASTICLOADBALANCING.PR.1", f"{stack}/Edge/LoadBalancer/Http/Resource")
        for stack in ("ServiceConnect", "MutualTls")
    ),
    ("CT.ELASTICLOADBALANCING.PR.1", "ServiceConnect/Edge/LoadBalancer/Test/Resource"),
    # observability.py: 30 days by default, 14 chosen for quotes
    *(
        ("CT.CLOUDWATCH.PR.2", f"ServiceConnect/{service}/Observability/{group}/Resource")
        for service in ("Quotes", "Gateway", "Ledger")
        for group in (f"{service}Logs", "ServiceConnectLogs")
    ),
    *(
        ("CT.CLOUDWATCH.PR.2", f"AppMesh/{service}/Observability/{group}/Resource")
        for service in ("Prices", "Orders", "Sweeper")
        for group in (f"{service}Logs", "EnvoyLogs")
    ),
    *(
        ("CT.CLOUDWATCH.PR.2", f"MutualTls/{service}/Observability/{group}/Resource")
        for service in _MUTUAL_TLS_SERVICES
        for group in (f"{service}Logs", "EnvoyLogs")
    ),
    # service.py: ledger chose readonly_root_filesystem=False
    ("CT.ECS.PR.6", "ServiceConnect/Ledger/TaskDefinition/Resource"),
    # appmesh/backend.py: App Mesh's Envoy writes its bootstrap under /tmp
    *(
        ("CT.ECS.PR.6", f"AppMesh/{task}/Resource")
        for task in (
            "Prices/BlueTaskDefinition",
            "Prices/GreenTaskDefinition",
            "Orders/TaskDefinition",
            "Sweeper/TaskDefinition",
        )
    ),
    # mesh/certificates.py: the init container, and the trigger provider
    *(
        ("CT.ECS.PR.3", f"MutualTls/{service}/TaskDefinition/Resource")
        for service in _MUTUAL_TLS_SERVICES
    ),
    (
        "CT.LAMBDA.PR.3",
        "MutualTls/AWSCDK.TriggerCustomResourceProviderCustomResourceProvider/Handler",
    ),
    # cluster.py: Container Insights 'enhanced', and the default-security-group provider
    *(("CT.ECS.PR.2", f"{stack}/Platform/Cluster/Resource") for stack in _STACKS),
    *(
        ("CT.LAMBDA.PR.3", f"{stack}/Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler")
        for stack in _STACKS
    ),
}


def test_the_construct_stacks_leave_no_finding_of_their_own(
    construct_controls: Findings,
) -> None:
    # GIVEN the construct-level stacks on Service Connect, App Mesh and the mutual-TLS mesh
    # THEN what is open is pending elsewhere, and what is acknowledged says why
    new = sorted(construct_controls.open - PENDING_CONSTRUCTS)
    assert new == [], "new findings:\n" + "\n".join(map(str, new))
    assert sorted(PENDING_CONSTRUCTS - construct_controls.open) == [], "fixed: delete them"
    assert set(construct_controls.acknowledged) == ACKNOWLEDGED_CONSTRUCTS
    for finding, reason in construct_controls.acknowledged.items():
        assert len(reason) > 60, f"{finding} needs a real reason"


# --- every synthesized task definition fits ECS's memory rules ---------------------------------


def _task_definitions(templates: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for template in templates:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                yield resource["Properties"]


def test_every_container_has_a_memory_limit_within_its_task(
    example_controls: tuple[SynthesizedApp, Findings],
    profile_controls: tuple[SynthesizedApp, Findings],
    construct_controls: Findings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # GIVEN every task definition of the example, the profile and the construct stacks
    templates = [
        *example_controls[0].templates.values(),
        *profile_controls[0].templates.values(),
        *(p.template for p in construct_platforms.platforms(tmp_path_factory)),
    ]
    tasks = list(_task_definitions(iter(templates)))
    assert len(tasks) > 10
    for task in tasks:
        memory = int(task["Memory"])
        containers = task["ContainerDefinitions"]
        # THEN each container's hard limit is the task's memory (CT.ECS.PR.7), above its
        # reservation, and the reservations (a limit stands for one where none is set) add up
        # to no more than the task's memory, as ECS requires
        assert {c["Memory"] for c in containers} == {memory}, task["Family"]
        for container in containers:
            assert container.get("MemoryReservation", 0) < container["Memory"]
        reserved = sum(c.get("MemoryReservation", c["Memory"]) for c in containers)
        assert reserved <= memory, task["Family"]


# --- the validator runs -----------------------------------------------------------------------


def test_the_validator_catches_a_finding(tmp_path: Path) -> None:
    # GIVEN a log group kept a month, unencrypted, unacknowledged (a negative control)
    app = App(outdir=str(tmp_path))
    logs.LogGroup(Stack(app, "Bare"), "Logs", retention=logs.RetentionDays.ONE_MONTH)
    Validations.of(app).add_plugins(CfnGuardValidator())
    # WHEN synthesized  THEN the plugin reports it, and synthesis stops
    result = synthesize(app)
    assert result.synth_error is not None
    assert _from_report(result).open == {
        ("CT.CLOUDWATCH.PR.2", "Bare/Logs/Resource"),
        ("CT.CLOUDWATCH.PR.3", "Bare/Logs/Resource"),
    }
