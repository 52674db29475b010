"""Rollback and retry: a failed first create rolls back to nothing that blocks a retry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..graph import Template, as_list, of_type, properties, references, resources
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
    """The resource's physical name when a retry would get the same one: a literal, or built
    from parameters and pseudo parameters only (a name built from another resource's generated
    name changes with it)."""
    name = properties(resource).get(NAME_PROPERTIES.get(resource.get("Type", ""), ""))
    if name is None or references(name) & set(resources(template)):
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
    failed first create leaves nothing behind."""
    for logical_id, r in sorted(of_type(template, *STATEFUL_TYPES).items()):
        if r.get("DeletionPolicy") == "Retain":
            yield logical_id, f"{r['Type']} has DeletionPolicy Retain, not RetainExceptOnCreate"
