"""The delivery pipeline (examples/trading_platform/pipeline_app.py): a staging stage and a
production wave of two regions, one build of each image promoted through them, and the same
gates as the example on every template it writes.

The app is synthesized once per session (pipeline_support.py); the readiness rules run over its
stacks in test_deploy_readiness.py. cfn-lint reads the pipeline's stacks and the staging stage;
the production stages are checked to be the staging template with another account, region and
stage name, so the lint of one holds for all three.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack, pipelines
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
from cfnlint.api import lint
from pipeline_support import (
    PIPELINE_ACCOUNT,
    PIPELINE_CONTEXT,
    PIPELINE_STACK,
    PRODUCTION_ACCOUNT,
    PRODUCTION_REGIONS,
    STAGE_STACKS,
    STAGING_ACCOUNT,
    SUPPORT_STACK,
    PipelineAssembly,
    pipeline_assembly,
)

from examples.trading_platform.pipeline_app import create_pipeline_app
from examples.trading_platform.pipeline_stack import docker_hub_credentials

STAGES = tuple(STAGE_STACKS)
# cdk-assets publishing one asset to one destination (account-region and a hash of the role)
PUBLISH = re.compile(
    r'cdk-assets --path "[^"]+" --verbose publish '
    r'"(?P<hash>[0-9a-f]{64}):(?P<destination>\d{12}-[a-z]+-[a-z]+-\d)-[0-9a-f]{8}"'
)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineAssembly:
    return pipeline_assembly(tmp_path_factory)


def _pipeline_stages(pipeline: PipelineAssembly) -> dict[str, list[dict[str, Any]]]:
    resources = pipeline.templates[PIPELINE_STACK]["Resources"].values()
    (code_pipeline,) = [r for r in resources if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return {stage["Name"]: stage["Actions"] for stage in code_pipeline["Properties"]["Stages"]}


def _buildspec(pipeline: PipelineAssembly, action: dict[str, Any]) -> dict[str, Any]:
    project = action["Configuration"]["ProjectName"]["Ref"]
    source = pipeline.templates[PIPELINE_STACK]["Resources"][project]["Properties"]["Source"]
    return json.loads(source["BuildSpec"])


def test_the_pipeline_deploys_staging_then_an_approved_wave_of_production_regions(
    pipeline: PipelineAssembly,
) -> None:
    # GIVEN the pipeline app with a staging account and two production regions
    assert pipeline.synth_error is None, pipeline.synth_error
    stages = _pipeline_stages(pipeline)
    # THEN it runs source, synth, self-update, the assets, staging, then production
    assert list(stages) == ["Source", "Build", "UpdatePipeline", "Assets", "Staging", "Production"]
    # AND production starts with a manual approval, before both regions deploy together
    production = sorted(stages["Production"], key=lambda action: action["RunOrder"])
    assert production[0]["ActionTypeId"] == {
        "Category": "Approval",
        "Owner": "AWS",
        "Provider": "Manual",
        "Version": "1",
    }
    deploys = [a for a in production if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert {a.get("Region", "us-east-1") for a in deploys} == set(PRODUCTION_REGIONS)
    assert min(a["RunOrder"] for a in deploys) > production[0]["RunOrder"]
    # AND every stage's stack is bound to its account and region
    for stage, artifact in STAGE_STACKS.items():
        manifest = json.loads(
            (pipeline.outdir / f"assembly-{PIPELINE_STACK}-{stage}" / "manifest.json").read_text()
        )
        account = STAGING_ACCOUNT if stage == "Staging" else PRODUCTION_ACCOUNT
        region = "us-east-1" if stage == "Staging" else stage.removeprefix("Production-")
        assert manifest["artifacts"][artifact]["environment"] == f"aws://{account}/{region}"
    # (the cost of the one synthesis, for the report: three platforms and the pipeline)
    print(f"pipeline app synthesized in {pipeline.synth_seconds:.1f} s")


def test_each_image_is_built_once_and_every_stage_runs_that_build(
    pipeline: PipelineAssembly,
) -> None:
    # GIVEN the images every stage's asset manifest asks for
    images = {stage: pipeline.assets(stage)["dockerImages"] for stage in STAGES}
    hashes = set(images["Staging"])
    assert len(hashes) == 3
    # THEN every stage asks for the same builds (same content hashes, same one build context)
    assert all(set(found) == hashes for found in images.values())
    assert {json.dumps(images[stage][h]["source"]) for stage in STAGES for h in hashes} == {
        json.dumps(images["Staging"][h]["source"]) for h in hashes
    }
    # AND the pipeline has one publishing action per image, which builds it once and pushes
    # that build to every stage's account and region
    assets = _pipeline_stages(pipeline)["Assets"]
    docker_actions = [a for a in assets if a["Name"].endswith("Image_Asset")]
    assert len(docker_actions) == len(hashes)
    for action in docker_actions:
        commands = _buildspec(pipeline, action)["phases"]["build"]["commands"]
        published = [PUBLISH.fullmatch(command) for command in commands]
        assert all(published), commands
        assert len({m.group("hash") for m in published if m}) == 1
        assert {m.group("hash") for m in published if m} <= hashes
        destinations = {m.group("destination") for m in published if m}
        assert destinations == {
            f"{STAGING_ACCOUNT}-us-east-1",
            *(f"{PRODUCTION_ACCOUNT}-{region}" for region in PRODUCTION_REGIONS),
        }
    # AND no stage builds anything: its actions only create and run change sets
    for stage in ("Staging", "Production"):
        providers = {a["ActionTypeId"]["Provider"] for a in _pipeline_stages(pipeline)[stage]}
        assert providers <= {"CloudFormation", "Manual"}
    for artifact in STAGE_STACKS.values():
        kinds = {r["Type"] for r in pipeline.templates[artifact]["Resources"].values()}
        assert "AWS::CodeBuild::Project" not in kinds
    # AND each service runs the image of its hash, copied into the stage's scanned repository
    for artifact in STAGE_STACKS.values():
        body = json.dumps(pipeline.templates[artifact])
        assert {h for h in hashes if f":cdk-{h}" in body} == hashes


def _normalized(pipeline: PipelineAssembly, stage: str) -> str:
    """A stage's template with its account, region and stage name taken out: each logical ID
    (which hashes a construct path holding the stage's name) becomes that path less the
    stage."""
    account = STAGING_ACCOUNT if stage == "Staging" else PRODUCTION_ACCOUNT
    region = "us-east-1" if stage == "Staging" else stage.removeprefix("Production-")
    stack = pipeline.stacks[STAGE_STACKS[stage]]
    body = json.dumps(stack.template, sort_keys=True)
    for logical_id in sorted(stack.resource_paths, key=len, reverse=True):
        path = stack.resource_paths[logical_id].replace(f"{PIPELINE_STACK}/{stage}/", "")
        for form in ('"{}"', "${{{}}}", "${{{}."):
            body = body.replace(form.format(logical_id), form.format(path))
    email = PIPELINE_CONTEXT[
        "staging_alarm_email" if stage == "Staging" else "production_alarm_email"
    ]
    for value, placeholder in (
        (email, "EMAIL"),
        (stage, "STAGE"),
        (stage.replace("-", ""), "STAGE"),
        (stage.lower(), "STAGE"),
        (account, "ACCOUNT"),
        (region, "REGION"),
    ):
        body = body.replace(value, placeholder)
    # the region's Elastic Load Balancing account, which writes the access logs
    body = re.sub(r"arn:aws:iam::\d{12}:root", "ELB_ACCOUNT", body)
    # construct ids that name another construct by its unique id end in that id's hash
    return re.sub(r"(?<=[A-Za-z])[0-9A-F]{8}(?=[:\"/ ])", "", body)


def test_cfn_lint_finds_nothing_in_the_pipeline_and_its_stages(
    pipeline: PipelineAssembly,
) -> None:
    # GIVEN the production stages: the staging template but for account, region and name
    assert _normalized(pipeline, "Production-us-east-1") == _normalized(pipeline, "Staging")
    assert _normalized(pipeline, "Production-us-west-2") == _normalized(pipeline, "Staging")
    # WHEN cfn-lint reads the pipeline's stacks and the staging stage, each in its region
    linted = {
        PIPELINE_STACK: "us-east-1",
        SUPPORT_STACK: "us-west-2",
        STAGE_STACKS["Staging"]: "us-east-1",
    }
    findings = {
        name: [str(m) for m in lint(json.dumps(pipeline.templates[name]), regions=[region])]
        for name, region in linted.items()
    }
    # THEN there is not one finding (errors and warnings)
    assert findings == {name: [] for name in linted}


def test_cdk_nag_and_deploy_readiness_find_nothing_open(pipeline: PipelineAssembly) -> None:
    # GIVEN the pipeline app synthesized with the three packs and the deploy-readiness plugin,
    # each stage serving HTTPS with its certificate
    assert pipeline.validation_report is not None, "the validation plugins did not run"
    violations = sorted(
        f"{v['ruleName']} at {c['constructPath']}"
        for report in pipeline.validation_report["pluginReports"]
        for v in report.get("violations", [])
        for c in v["violatingConstructs"]
    )
    # THEN nothing is open on any stack, the pipeline's or a stage's, not even a warning
    assert violations == []
    assert {r["pluginName"] for r in pipeline.validation_report["pluginReports"]} >= {
        "AwsSolutions",
        "NIST.800.53.R5",
        "PCI.DSS.321",
        "DeployReadiness",
    }


def _artifact_key(template: dict[str, Any]) -> dict[str, Any]:
    """The key that encrypts the one artifact bucket of a pipeline stack or support stack."""
    resources = template["Resources"]
    (bucket,) = [r for r in resources.values() if r["Type"] == "AWS::S3::Bucket"]
    (key,) = [r for r in resources.values() if r["Type"] == "AWS::KMS::Key"]
    rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    return dict(key["Properties"])


def test_the_artifacts_are_encrypted_with_keys_the_stage_accounts_may_use(
    pipeline: PipelineAssembly,
) -> None:
    # GIVEN the artifact stores: the pipeline's bucket, and the support stack's in us-west-2
    stores = {"us-east-1": PIPELINE_STACK, "us-west-2": SUPPORT_STACK}
    for region, stack in stores.items():
        key = _artifact_key(pipeline.templates[stack])
        # THEN each is encrypted with a customer managed key, rotated yearly
        assert key["EnableKeyRotation"] is True
        # AND the deploy roles of the stages in its region may use it, nobody else's
        policy = json.dumps(key["KeyPolicy"])
        roles = set(re.findall(r"cdk-hnb659fds-deploy-role-(\d{12}-[a-z0-9-]+)", policy))
        expected = {f"{PRODUCTION_ACCOUNT}-{region}"}
        if region == "us-east-1":
            expected.add(f"{STAGING_ACCOUNT}-us-east-1")
        assert roles == expected
        principals = [statement["Principal"] for statement in key["KeyPolicy"]["Statement"]]
        assert "*" not in principals and {"AWS": "*"} not in principals


def test_the_synth_step_runs_the_readme_commands_with_the_pipeline_context(
    pipeline: PipelineAssembly, readme_text: str
) -> None:
    # GIVEN the synth action of the pipeline
    (synth,) = _pipeline_stages(pipeline)["Build"]
    commands = _buildspec(pipeline, synth)["phases"]["build"]["commands"]
    # THEN it installs, tests, synthesizes (packs and readiness fail it) and runs the readiness
    # command over every stage, as the README says
    assert commands[:2] == ["npm ci", "npm test"]
    assert commands[2].startswith(
        'npx cdk synth -a ".venv/bin/python examples/trading_platform/pipeline_app.py"'
    )
    for key, value in PIPELINE_CONTEXT.items():
        if not key.startswith("@"):
            assert f"-c {key}={value}" in commands[2]
    assert commands[3] == ".venv/bin/python -m trading_constructs.readiness cdk.out"
    for command in commands:
        assert command.split(" -c ")[0] in readme_text
    # AND its role may assume each stage's CDK lookup role (the Availability Zones), by name
    resources = pipeline.templates[PIPELINE_STACK]["Resources"]
    role = resources[synth["Configuration"]["ProjectName"]["Ref"]]["Properties"]["ServiceRole"]
    assumed = [
        statement["Resource"]
        for policy in resources.values()
        if policy["Type"] == "AWS::IAM::Policy"
        and {"Ref": role["Fn::GetAtt"][0]} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "sts:AssumeRole"
    ]
    assert [[part["Fn::Join"][1][-1] for part in found] for found in assumed] == [
        [
            f":iam::{STAGING_ACCOUNT}:role/cdk-hnb659fds-lookup-role-{STAGING_ACCOUNT}-us-east-1",
            *(
                f":iam::{PRODUCTION_ACCOUNT}:role/cdk-hnb659fds-lookup-role-"
                f"{PRODUCTION_ACCOUNT}-{region}"
                for region in PRODUCTION_REGIONS
            ),
        ]
    ]


@pytest.fixture(scope="module")
def readme_text() -> str:
    from conftest import ROOT

    return (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"staging_account": None}, "context staging_account missing"),
        ({"production_account": "12345"}, "production_account='12345' is not an account"),
        ({"pipeline_region": "useast1"}, "pipeline_region='useast1' is not a region"),
        ({"production_regions": "us-east-1,us-east-1"}, "names a region twice"),
        ({"production_regions": "us-east-1,mars-1"}, "'mars-1' is not a region"),
        (
            {"production_certificate_arns": "arn:aws:acm:eu-west-1:333333333333:certificate/a"},
            "is not the one certificate of a production region",
        ),
        (
            {"staging_certificate_arn": "arn:aws:acm:us-east-1:333333333333:certificate/a"},
            "is not an ACM certificate of the staging account and region",
        ),
        (
            {"staging_account": PRODUCTION_ACCOUNT},
            "staging_region='us-east-1' is a production region of the same account",
        ),
    ],
)
def test_bad_context_names_the_value_and_what_is_needed(
    change: dict[str, Any], words: str, tmp_path: Any
) -> None:
    context = {k: v for k, v in (PIPELINE_CONTEXT | change).items() if v is not None}
    with pytest.raises(ValueError, match=re.escape(words)):
        create_pipeline_app(context=context, outdir=str(tmp_path))


def test_the_image_builds_alone_read_the_docker_hub_secret() -> None:
    # GIVEN the secret of the tooling account that ECR's Docker Hub cache uses too
    arn = (
        f"arn:aws:secretsmanager:us-east-1:{PIPELINE_ACCOUNT}:secret:"
        "ecr-pullthroughcache/docker-hub-AbCdEf"
    )
    stack = Stack(App(), "Credentials")
    (credential,) = docker_hub_credentials(stack, arn)
    publishing = iam.Role(stack, "Publishing", assumed_by=iam.AccountRootPrincipal())
    synth = iam.Role(stack, "Synth", assumed_by=iam.AccountRootPrincipal())
    # WHEN CDK Pipelines grants it for each use
    credential.grant_read(publishing, pipelines.DockerCredentialUsage.ASSET_PUBLISHING)
    credential.grant_read(synth, pipelines.DockerCredentialUsage.SYNTH)
    # THEN the image builds may read that one secret, and the synth step may not
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    (policy,) = policies.values()
    assert policy["Properties"]["Roles"] == [
        {"Ref": stack.get_logical_id(publishing.node.default_child)}
    ]  # type: ignore[arg-type]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == arn
    assert "secretsmanager:GetSecretValue" in statement["Action"]
    # AND without the context value there is no login
    assert docker_hub_credentials(stack, None) == []
