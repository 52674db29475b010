"""Rollback and retry: a failed first create rolls back to nothing that blocks a retry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ..graph import (
    Template,
    as_list,
    created_before,
    dependency_graph,
    is_custom_resource,
    of_type,
    properties,
    references,
    resources,
)
from ..model import ReadinessOptions

NAME_PROPERTIES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Backup::BackupVault": "BackupVaultName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::RDS::DBCluster": "DBClusterIdentifier",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::S3::Bucket": "BucketName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::ServiceDiscovery::PrivateDnsNamespace": "Name",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Events::EventBus": "Name",
}
"""The property that fixes a resource's physical name, by type."""

STATEFUL_TYPES = (
    "AWS::Logs::LogGroup",
    "AWS::SecretsManager::Secret",
    "AWS::KMS::Key",
    "AWS::ECR::Repository",
    "AWS::S3::Bucket",
    "AWS::Backup::BackupVault",
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::DynamoDB::Table",
    "AWS::EFS::FileSystem",
)
"""Types whose resources hold data, and are therefore kept on delete."""


def fixed_name(resource: Mapping[str, Any], template: Template) -> Any:
    """The resource's physical name when a new stack would get the same one: a literal, or
    built from parameters and pseudo parameters only. A name built from another resource's
    generated name changes with it, and one built from ``AWS::StackId`` changes with every
    stack created."""
    name = properties(resource).get(NAME_PROPERTIES.get(resource.get("Type", ""), ""))
    if name is None or references(name) & set(resources(template)):
        return None
    if "AWS::StackId" in json.dumps(name):
        return None
    return name


def retained_with_fixed_names(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """DeletionPolicy Retain keeps a resource when a first create fails and rolls back; with a
    fixed name, the retry then collides with the leftover."""
    for logical_id, r in sorted(resources(template).items()):
        name = fixed_name(r, template)
        if r.get("DeletionPolicy") == "Retain" and name is not None:
            yield (
                logical_id,
                f"{r['Type']} is retained on a failed create with the fixed "
                f"{NAME_PROPERTIES[r['Type']]} {name!r}",
            )


def _is_true(value: Any) -> bool:
    return value in (True, "true", "True")


def deletion_protection_on(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """Deletion protection turns the rollback of a failed first create into ROLLBACK_FAILED:
    it is for production, turned on once a first create has succeeded."""
    for logical_id, r in sorted(resources(template).items()):
        props = properties(r)
        for name in ("DeletionProtection", "DeletionProtectionEnabled"):
            if _is_true(props.get(name)):
                yield logical_id, f"{r['Type']} has {name} on"
        for attribute in as_list(props.get("LoadBalancerAttributes")):
            if attribute.get("Key") == "deletion_protection.enabled" and _is_true(
                attribute.get("Value")
            ):
                yield logical_id, f"{r['Type']} has deletion_protection.enabled"


def stateful_retained_on_failed_create(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """Stateful resources kept on delete are RetainExceptOnCreate (or Snapshot for RDS), so a
    failed first create leaves nothing behind; except a bucket or repository that something
    fills during the create and that has a generated name: the rollback could not delete it
    once filled, so Retain is the one shape that rolls back cleanly (``empty-on-failed-create``)."""
    for logical_id, r in sorted(of_type(template, *STATEFUL_TYPES).items()):
        if r.get("DeletionPolicy") != "Retain":
            continue
        kept_because_filled = (
            r.get("Type") in ("AWS::S3::Bucket", "AWS::ECR::Repository")
            and fixed_name(r, template) is None
            and bool(fillers(template, logical_id))
        )
        if not kept_because_filled:
            yield logical_id, f"{r['Type']} has DeletionPolicy Retain, not RetainExceptOnCreate"


def outliving_fixed_names(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """A resource kept when its stack is deleted (DeletionPolicy RetainExceptOnCreate) or when
    it is replaced (UpdateReplacePolicy Retain) still holds its name: with a fixed name, the
    stack deployed again, or the replacement, fails because the name exists. (DeletionPolicy
    Retain with a fixed name is ``fixed-name-retained-on-failed-create``'s, which fails sooner.)"""
    for logical_id, r in sorted(resources(template).items()):
        name = fixed_name(r, template)
        if name is None or r.get("DeletionPolicy") == "Retain":
            continue
        prop = NAME_PROPERTIES[r["Type"]]
        if r.get("DeletionPolicy") == "RetainExceptOnCreate":
            yield (
                logical_id,
                f"{r['Type']} outlives its stack (DeletionPolicy RetainExceptOnCreate) with the "
                f"fixed {prop} {name!r}: the stack deployed again collides with it",
            )
        elif r.get("UpdateReplacePolicy") == "Retain":
            yield (
                logical_id,
                f"{r['Type']} outlives a replacement (UpdateReplacePolicy Retain) with the fixed "
                f"{prop} {name!r}: the replacement collides with it",
            )


# -- filled during the create, deleted by its rollback ---------------------------------------

_LOG_BUCKET_SOURCES = {
    # what writes into a bucket as soon as it is created: Elastic Load Balancing writes a test
    # object when access logs are turned on; log deliveries write within minutes
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("LoadBalancerAttributes",),
    "AWS::ElasticLoadBalancing::LoadBalancer": ("AccessLoggingPolicy",),
    "AWS::CloudTrail::Trail": ("S3BucketName",),
    "AWS::EC2::FlowLog": ("LogDestination",),
    "AWS::S3::Bucket": ("LoggingConfiguration",),
}
_EMPTIERS = ("Custom::S3AutoDeleteObjects", "Custom::ECRAutoDeleteImages")
"""aws-cdk-lib's custom resources that empty a bucket or a repository when they are deleted."""
_NOT_FILLERS = (*_EMPTIERS, "Custom::S3BucketNotifications")


def _names(value: Any, bucket_id: str, literal: Any) -> bool:
    """Whether a value names the bucket: a reference, or the bucket's literal name."""
    if bucket_id in references(value):
        return True
    text = json.dumps(value)
    return isinstance(literal, str) and (f'"{literal}"' in text or f":::{literal}" in text)


def fillers(template: Template, target: str) -> set[str]:
    """What writes into a bucket or repository while the stack is created: log deliveries to a
    bucket, and custom resources that name it (an image copy, a bucket deployment), except one
    that empties it."""
    all_resources = resources(template)
    resource = all_resources[target]
    literal = properties(resource).get(NAME_PROPERTIES.get(resource["Type"], ""))
    found = set()
    for logical_id, other in all_resources.items():
        if logical_id == target or other.get("Type") in _NOT_FILLERS:
            continue
        props = properties(other)
        if is_custom_resource(other):
            value: Any = props
        elif resource["Type"] == "AWS::S3::Bucket":
            value = [props.get(p) for p in _LOG_BUCKET_SOURCES.get(other.get("Type", ""), ())]
            if other.get("Type") == "AWS::ElasticLoadBalancingV2::LoadBalancer":
                value = [
                    a.get("Value")
                    for a in as_list(props.get("LoadBalancerAttributes"))
                    if str(a.get("Key", "")).endswith(".s3.bucket")
                ]
        else:
            continue
        if _names(value, target, literal):
            found.add(logical_id)
    return found


def _emptied_before(template: Template, target: str, filler: str) -> bool:
    """A custom resource that empties the bucket or repository exists before ``filler`` writes
    into it, so a rollback deletes the emptier (which empties it) before it."""
    graph = dependency_graph(template)
    before = created_before(graph, filler)
    return any(
        r.get("Type") in _EMPTIERS and target in references(properties(r)) and k in before
        for k, r in resources(template).items()
    )


def filled_and_deleted_on_failed_create(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """A bucket or repository that the rollback of a failed first create deletes (DeletionPolicy
    Delete, the default, or RetainExceptOnCreate) must be empty by then: CloudFormation cannot
    delete one that holds objects or images, and the stack ends in ROLLBACK_FAILED. Emptied on
    that path: a repository with EmptyOnDelete, a bucket whose auto-delete custom resource is
    created before what fills it; or kept (DeletionPolicy Retain, with a generated name)."""
    kinds = ("AWS::S3::Bucket", "AWS::ECR::Repository")
    for target, resource in sorted(of_type(template, *kinds).items()):
        if resource.get("DeletionPolicy") == "Retain":
            continue
        repository = resource["Type"] == "AWS::ECR::Repository"
        if repository and properties(resource).get("EmptyOnDelete") in (True, "true"):
            continue
        policy = resource.get("DeletionPolicy", "Delete")
        deleted = f"deleted by a failed create (DeletionPolicy {policy})"
        for filler in sorted(fillers(template, target)):
            if _emptied_before(template, target, filler):
                continue
            unemptied = (
                f"it has no EmptyOnDelete (nor an auto-delete custom resource created before "
                f"{filler})"
                if repository
                else f"no auto-delete custom resource empties it before {filler} writes"
            )
            yield target, f"{deleted} after {filler} filled it, and {unemptied}"
