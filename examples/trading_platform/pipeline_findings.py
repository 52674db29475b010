"""What the gates find in the resources CDK Pipelines generates, and why each finding stands.

The stages are the platform as ``cdk synth`` builds it, gated as before; these reasons concern
the pipeline's own stack and the cross-region support stacks CodePipeline adds for the
production regions outside the pipeline's region.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from trading_constructs.compliance import acknowledge

IAM5 = "AwsSolutions::AwsSolutions-IAM5"
INLINE_POLICY = (
    "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
    "PCI.DSS.321::PCI.DSS.321-IAMNoInlinePolicy",
)
BUCKET_RULES = (
    "AwsSolutions::AwsSolutions-S1",
    "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
    "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
    "NIST.800.53.R5::NIST.800.53.R5-S3BucketVersioningEnabled",
    "PCI.DSS.321::PCI.DSS.321-S3BucketLoggingEnabled",
    "PCI.DSS.321::PCI.DSS.321-S3BucketReplicationEnabled",
    "PCI.DSS.321::PCI.DSS.321-S3BucketVersioningEnabled",
)


def order_build_projects(pipeline: pipelines.CodePipeline) -> None:
    """The pipeline is created after every build project's role policy: it starts a run as
    soon as it exists, and a build whose role has no policy yet fails. (A project cannot wait
    for its own policy: the policy names the project's log group and report groups.)"""
    pipeline_resource = pipeline.pipeline.node.default_child
    assert pipeline_resource is not None
    for construct in pipeline.node.find_all():
        if isinstance(construct, codebuild.Project) and isinstance(construct.role, iam.Role):
            policy = construct.role.node.try_find_child("DefaultPolicy")
            if policy is not None:
                pipeline_resource.node.add_dependency(policy)
                acknowledge(
                    construct,
                    "A build project runs only when the pipeline starts a build, and the "
                    "pipeline is created after this project's role policy (DependsOn).",
                    "DeployReadiness::policy-before-use",
                )


def acknowledge_pipeline(stack: Stack, pipeline: pipelines.CodePipeline) -> None:
    """The findings on the pipeline's generated roles, buckets and build projects."""
    resource = pipeline.pipeline.node.default_child
    assert isinstance(resource, CfnResource)
    # cfn-lint on what aws-cdk-lib writes into the pipeline resource: the role it both
    # references and depends on (W3005, harmless), and the stages' execution role ARNs it
    # builds with Fn::Join, not Fn::Sub (E3703, a style cfn-lint prefers; CloudFormation
    # resolves either to the same string).
    resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005", "E3703"]}})
    acknowledge(
        pipeline,
        "CDK Pipelines grants each role through its default policy (an inline policy of that "
        "role alone), generated from the actions the role runs.",
        *INLINE_POLICY,
    )
    acknowledge(
        pipeline,
        "The build projects' source is the pipeline's artifact (CODEPIPELINE): no repository URL, "
        "so no credentials in one.",
        "PCI.DSS.321::PCI.DSS.321-CodeBuildProjectSourceRepoUrl",
    )
    _acknowledge_artifact_grants(pipeline)
    _acknowledge_account_scoped(stack, pipeline)
    acknowledge(
        pipeline.pipeline.artifact_bucket,
        "Pipeline artifacts: each run writes new, KMS-encrypted objects under its own keys and "
        "never rewrites one, and the stages' deploy roles read them within the run; access goes "
        "through CloudTrail data events if wanted. Versioning, replication and server access "
        "logs would keep copies of transient build output.",
        *BUCKET_RULES,
        "DeployReadiness::retain-except-on-create",
    )
    for support in pipeline.pipeline.cross_region_support.values():
        _acknowledge_support_stack(support.stack)


def _acknowledge_artifact_grants(pipeline: pipelines.CodePipeline) -> None:
    """aws-cdk-lib's grants on the artifact bucket and its key use S3's and KMS's action groups
    (``s3:GetObject*``, ``kms:GenerateDataKey*``) and the bucket's objects (``<arn>/*``)."""
    bucket = pipeline.pipeline.artifact_bucket
    bucket_arn = Stack.of(pipeline).resolve(bucket.bucket_arn)
    logical_id = bucket_arn["Fn::GetAtt"][0]
    acknowledge(
        pipeline,
        "The pipeline's artifact bucket and its key only: aws-cdk-lib's read/write grants name "
        "S3's and KMS's action groups, on this bucket's objects and this key.",
        *(
            f"{IAM5}[Action::{action}]"
            for action in (
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
                "s3:Abort*",
                "s3:DeleteObject*",
                "s3:GetBucket*",
                "s3:GetObject*",
                "s3:List*",
            )
        ),
        f"{IAM5}[Resource::<{logical_id}.Arn>/*]",
    )


def _acknowledge_account_scoped(stack: Stack, pipeline: pipelines.CodePipeline) -> None:
    """Wildcards CDK Pipelines writes for names that exist only at run time."""
    account, region = stack.account, stack.region
    resources = [
        f"arn:aws:codebuild:{region}:{account}:report-group/*",
        f"arn:aws:logs:{region}:{account}:log-group:/aws/codebuild/*",
        f"arn:*:iam::{account}:role/*",
        "*",
    ]
    for child in pipeline.node.find_all():
        if isinstance(child, codebuild.CfnProject):
            logical_id = stack.get_logical_id(child)
            resources.append(f"arn:aws:codebuild:{region}:{account}:report-group/<{logical_id}>-*")
            resources.append(
                f"arn:aws:logs:{region}:{account}:log-group:/aws/codebuild/<{logical_id}>:*"
            )
    for support in pipeline.pipeline.cross_region_support.values():
        bucket_name = stack.resolve(support.replication_bucket.bucket_name)
        resources.append(f"arn:aws:s3:::{bucket_name}/*")
    acknowledge(
        pipeline,
        "Names known only when the pipeline runs: CodeBuild's log streams and report groups of "
        "these projects, the cross-region artifact buckets' objects, the CDK bootstrap roles "
        "of the stage accounts (sts:AssumeRole only where the role's aws-cdk:bootstrap-role tag "
        "says image-publishing, file-publishing or deploy), codebuild:StartBuild for the asset "
        "projects CDK generates, cloudformation:DescribeStacks for the CDK CLI, and KMS on the "
        "replication buckets' keys, which CodePipeline knows by alias only.",
        *(f"{IAM5}[Resource::{resource}]" for resource in resources),
    )


def _acknowledge_support_stack(stack: Stack) -> None:
    """The replication bucket CodePipeline creates in each other region: it holds the
    pipeline's artifacts there, under the same rules as the artifact bucket."""
    bucket: IConstruct | None = stack.node.try_find_child("Default")
    acknowledge(
        bucket or stack,
        "CodePipeline's cross-region artifact bucket: transient, KMS-encrypted build output "
        "written once per run; versioning, replication and access logs would keep copies of "
        "it. Its fixed name is CodePipeline's: if this stack's first create fails, delete the "
        "bucket before the retry (README, Delivery across accounts).",
        *BUCKET_RULES,
        "DeployReadiness::retain-except-on-create",
        "DeployReadiness::fixed-name-retained-on-failed-create",
    )
