"""The rules, each with its id, severity, the AWS behaviour it encodes and where AWS says so."""

from __future__ import annotations

from ..model import ReadinessRule
from . import alarms, databases, iam, network, order, quotas, rollback

_CFN = "https://docs.aws.amazon.com/AWSCloudFormation/latest"

RULES: tuple[ReadinessRule, ...] = (
    ReadinessRule(
        id="policy-before-use",
        severity="error",
        summary="CloudFormation orders only what Ref, GetAtt, Sub and DependsOn say: what runs "
        "as a role (a function, an ECS service, a custom resource, a rotation) can start before "
        "a policy of that role exists, and fail or be refused",
        url=f"{_CFN}/TemplateReference/aws-attribute-dependson.html",
        check=order.policies_created_after_their_users,
    ),
    ReadinessRule(
        id="service-after-database",
        severity="error",
        summary="ECS starts tasks as soon as the service exists: tasks that start before the "
        "database's instances and its secret's endpoint fail their health checks, and the "
        "deployment circuit breaker rolls the deployment back",
        url="https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html",
        check=order.services_started_before_their_database,
    ),
    ReadinessRule(
        id="service-after-capacity-providers",
        severity="error",
        summary="ECS refuses a service whose capacity provider strategy (its own, or the "
        "cluster's default) names providers the cluster is not associated with yet: "
        "CloudFormation creates the service and the association in parallel unless ordered",
        url="https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html",
        check=order.services_before_capacity_providers,
    ),
    ReadinessRule(
        id="no-dependency-cycle",
        severity="error",
        summary="CloudFormation refuses a template whose resources wait for each other in a "
        "circle (circular dependency)",
        url=f"{_CFN}/UserGuide/troubleshooting.html",
        check=order.dependency_cycles,
    ),
    ReadinessRule(
        id="no-stack-cycle",
        severity="error",
        summary="Stacks that import each other's exports (or depend on each other) cannot be "
        "deployed in any order, nor deleted",
        url=f"{_CFN}/UserGuide/walkthrough-crossstackref.html",
        check_stacks=order.stack_cycles,
    ),
    ReadinessRule(
        id="no-reserved-concurrency",
        severity="warning",
        summary="Lambda keeps at least 100 concurrent executions unreserved, and new accounts "
        "may have only 10: a reservation can fail the deploy",
        url="https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html",
        check=quotas.reserved_concurrency,
    ),
    ReadinessRule(
        id="lambda-runtime-supported",
        severity="error",
        summary="Lambda stops patching a deprecated runtime, then blocks creating and updating "
        "functions on it",
        url="https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html",
        check=quotas.deprecated_runtimes,
    ),
    ReadinessRule(
        id="lambda-runtime-dated",
        severity="warning",
        summary="A runtime whose deprecation date the rules do not know cannot be judged "
        "supported on the build date",
        url="https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html",
        check=quotas.undated_runtimes,
    ),
    ReadinessRule(
        id="task-definition-size",
        severity="error",
        summary="ECS refuses to register a task definition larger than 64 KiB",
        url="https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html",
        check=quotas.oversized_task_definitions,
    ),
    ReadinessRule(
        id="fixed-name-retained-on-failed-create",
        severity="error",
        summary="DeletionPolicy Retain keeps a resource when a first create rolls back: with a "
        "fixed name, the retry fails because the name exists (as does the stack deployed "
        "again after a delete)",
        url=f"{_CFN}/TemplateReference/aws-attribute-deletionpolicy.html",
        check=rollback.retained_with_fixed_names,
    ),
    ReadinessRule(
        id="fixed-name-outlives-stack",
        severity="error",
        summary="A resource kept when its stack is deleted (RetainExceptOnCreate) or when it is "
        "replaced keeps its name: a fixed name makes the stack deployed again, or the "
        "replacement, fail because the name exists",
        url=f"{_CFN}/TemplateReference/aws-properties-name.html",
        check=rollback.outliving_fixed_names,
    ),
    ReadinessRule(
        id="empty-on-failed-create",
        severity="error",
        summary="CloudFormation cannot delete a bucket that holds objects or a repository that "
        "holds images: one filled during the create and deleted by its rollback leaves the "
        "stack in ROLLBACK_FAILED",
        url=f"{_CFN}/TemplateReference/aws-attribute-deletionpolicy.html",
        check=rollback.filled_and_deleted_on_failed_create,
    ),
    ReadinessRule(
        id="retain-except-on-create",
        severity="warning",
        summary="DeletionPolicy Retain keeps the stateful resources of a failed first create, "
        "outside any stack and still billed; RetainExceptOnCreate deletes them on that path only",
        url=f"{_CFN}/TemplateReference/aws-attribute-deletionpolicy.html",
        check=rollback.stateful_retained_on_failed_create,
    ),
    ReadinessRule(
        id="no-deletion-protection-on-create",
        severity="warning",
        summary="Deletion protection stops the rollback of a failed first create "
        "(ROLLBACK_FAILED): turn it on once the first create has succeeded",
        url="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_DeleteCluster.html",
        check=rollback.deletion_protection_on,
    ),
    ReadinessRule(
        id="no-tls-on-load-balancer-target",
        severity="error",
        summary="A load balancer health-checks and forwards plain HTTP to its target port: a "
        "mesh TLS listener on that port fails every health check",
        url="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html",
        check=network.tls_on_load_balancer_targets,
    ),
    ReadinessRule(
        id="load-balancer-egress-limited",
        severity="warning",
        summary="A load balancer only connects to its targets' ports: a security group that "
        "lets it reach anything (EC2's default egress) is wider than it needs",
        url="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-update-security-groups.html",
        check=network.open_load_balancer_egress,
    ),
    ReadinessRule(
        id="custom-resource-managed-policies",
        severity="warning",
        summary="A role a custom resource runs as holds an inline policy: NIST 800-53 and PCI "
        "DSS checks (IAMNoInlinePolicy) refuse it, and it cannot be audited or reused on its own",
        url="https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html",
        check=iam.inline_policies_of_custom_resources,
    ),
    ReadinessRule(
        id="database-reachable",
        severity="error",
        summary="A database accepts connections only from security groups its own security "
        "group admits on its port: a service that uses it without that rule times out",
        url="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.RDSSecurityGroups.html",
        check=databases.unreachable_databases,
    ),
    ReadinessRule(
        id="database-used",
        severity="warning",
        summary="A database no service of its stack uses is billed by the hour and reached by "
        "nothing",
        url="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.RDSSecurityGroups.html",
        check=databases.unused_databases,
    ),
    ReadinessRule(
        id="alarm-can-notify",
        severity="error",
        summary="CloudWatch publishes an alarm to a topic only if the topic policy and the "
        "topic's KMS key policy let cloudwatch.amazonaws.com do so (an AWS managed key never "
        "does): otherwise the notification is dropped",
        url="https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
        check=alarms.undeliverable_alarm_actions,
    ),
    ReadinessRule(
        id="metric-emitted",
        severity="error",
        summary="A CloudWatch metric is its namespace, name and dimensions: an alarm or "
        "scaling policy that reads a combination nothing emits has no data and never acts",
        url="https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html",
        check=alarms.unemitted_metrics,
    ),
    ReadinessRule(
        id="metric-emitter-known",
        severity="warning",
        summary="An alarm or scaling policy reads a custom namespace that no metric filter of "
        "the template writes and no declared emitter emits: nothing shows it has data",
        url="https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html",
        check=alarms.metrics_of_unknown_emitters,
    ),
)
"""Every rule, each with its id, severity, summary and documentation link (README.md, "Deploy
readiness", lists them)."""

ACKNOWLEDGEMENT_REASON = ReadinessRule(
    id="acknowledgement-reason",
    severity="error",
    summary="An acknowledgement of a rule says why the finding is acceptable: one without a "
    "reason is refused, and the finding it names stays open",
    url="https://docs.aws.amazon.com/cdk/v2/guide/policy-validation-synthesis.html",
)
"""Not a check of templates: what a blank acknowledgement reports."""
