"""The trading analytics platform: what ``cdk synth`` and ``cdk deploy`` build from this repo."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Aws,
    CfnOutput,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_backup as backup
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from constructs import Construct

from trading_constructs import (
    AlarmSubscription,
    ApiKeySecret,
    CustomMetricTarget,
    DbEngine,
    DbSchema,
    DbUser,
    DomainOptions,
    HealthCheckOptions,
    Mesh,
    MeshedFargateService,
    PlatformDashboard,
    RegistryScanning,
    Release,
    RotatingDbSecret,
    ScalingOptions,
    ScannedRepository,
    ServiceImage,
    ServiceSecret,
    TableGrant,
    TradingCluster,
    TradingEdge,
    VpcOptions,
    acknowledge_wildcard_resource,
)
from trading_constructs.compliance import CFN_GUARD_PLUGIN

from .services.common import schema as market_data

SERVICES_DIR = Path(__file__).resolve().parent / "services"


@dataclass(frozen=True)
class ServiceSpec:
    """One example microservice: its name, code folder and container port."""

    name: str
    folder: str
    port: int


SERVICES = (
    ServiceSpec("data-ingestion", "data_ingestion", 8080),
    ServiceSpec("analytics-engine", "analytics_engine", 8081),
    ServiceSpec("api-gateway", "api_gateway", 8082),
)

DB_PORT = 5433  # not the engine default, so scans for 5432 find nothing
DB_USERS = tuple(market_data.GRANTS)  # data-ingestion, analytics-engine; api-gateway has none
DB_CA_FILE = "/app/certs/rds-global-bundle.pem"  # the Amazon RDS CA bundle in the images
# Copied images are tagged by their content: a rollback may push the same tag again.
ASSET_TAG_PREFIX = "cdk-"


@dataclass(frozen=True)
class DomainContext:
    """A public name for the platform, in a Route 53 hosted zone of this account."""

    domain_name: str
    hosted_zone_id: str
    hosted_zone_name: str


def _stack_id_suffix() -> str:
    """The last part of the stack's ID, a GUID CloudFormation draws when it creates the stack
    (12 lower-case hex digits)."""
    return Fn.select(4, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))


def _identifier_prefix(stack_name: str) -> str:
    """'<stack>-marketdata' as an RDS identifier begins: lower-case letters, digits and single
    hyphens, starting with a letter, short enough that '-' and the 12-digit stack suffix keep
    it within 63 characters."""
    stack = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", stack_name.lower())).strip("-")
    stack = stack[:38].rstrip("-")
    return f"{stack}-marketdata" if stack[:1].isalpha() else "marketdata"


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


class TradingPlatformStack(Stack):
    """The whole platform in one stack: cluster, supply chain, secrets, data, services."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        nat_gateways: int = 3,
        mesh: Mesh | None = None,
        image_tag: str | None = None,
        registry_scanning: bool = True,
        deletion_protection: bool = False,
        alarm_subscriptions: Sequence[AlarmSubscription] = (),
        certificate_arn: str | None = None,
        domain: DomainContext | None = None,
        green_weight: int = 0,
        green_image_tag: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.platform = TradingCluster(
            self,
            "Platform",
            # No interface endpoints: every private subnet reaches AWS APIs through its NAT
            # gateway already, and three Secrets Manager endpoints would add $21.90 a month
            # for traffic of a few kilobytes (TradingCluster(interface_endpoints=...) is there
            # for a VPC without NAT).
            vpc_options=VpcOptions(nat_gateways=nat_gateways),
            mesh=mesh or Mesh.mutual_tls(),
            alarm_subscriptions=alarm_subscriptions,
        )
        key, vpc = self.platform.key, self.platform.vpc

        # Supply chain: a scanned repository per service; public images come through the
        # cluster's pull-through cache.
        if registry_scanning:
            # One per account and region: deploying this replaces the account's setting.
            RegistryScanning(self, "RegistryScanning")
        self.images = {spec.name: self._image(spec, image_tag) for spec in SERVICES}

        # Credentials: the market-data database's master user (read only by its rotation and
        # the function that creates the schema and users), each database service's own user,
        # and the market-data feed's API key.
        self.db_secret = RotatingDbSecret(
            self,
            "MarketDataDbSecret",
            key=key,
            vpc=vpc,
            engine=DbEngine.POSTGRES,
            dbname="marketdata",
            port=DB_PORT,
            alarms=self.platform.alarms,
        )
        self.database = self._database(deletion_protection)
        # The attachment writes the endpoint into the secret; services wait for it.
        self.db_attachment = self.db_secret.attach(self.database)
        self.schema = DbSchema(
            self,
            "MarketDataSchema",
            master=self.db_secret,
            owner=market_data.OWNER,
            statements=market_data.SCHEMA,
        )
        self.db_users = {
            name: DbUser(
                self,
                f"{_construct_id(name)}DbUser",
                master=self.db_secret,
                schema=self.schema,
                username=market_data.USERNAMES[name],
                grants=[
                    TableGrant(table=table, privileges=privileges)
                    for table, privileges in market_data.GRANTS[name].items()
                ],
            )
            for name in DB_USERS
        }
        self.api_key = ApiKeySecret(self, "MarketDataApiKey", key=key, vpc=vpc)

        # On App Mesh, internal services run blue and green slots; see the README's release
        # procedure for moving green_weight from 0 to 100. Service Connect has no weighted
        # routes: there, a new revision rolls out instead.
        self.weighted = (mesh or Mesh.mutual_tls()).kind == "appmesh"
        self.green_weight = green_weight
        self.green_tag = green_image_tag
        self.services = self._services()
        for name in DB_USERS:
            self._use_database(self.services[name])
        self.edge = TradingEdge(
            self,
            "Edge",
            cluster=self.platform,
            service=self.services["api-gateway"],
            certificate=(
                acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
                if certificate_arn
                else None
            ),
            domain=self._domain(domain),
            waf=True,
            deletion_protection=deletion_protection,
        )
        if not deletion_protection:
            self._acknowledge_first_deploy(self.edge.load_balancer, self.database)
        CfnOutput(self, "LoadBalancerDns", value=self.edge.load_balancer.load_balancer_dns_name)
        self.dashboard = PlatformDashboard(
            self, "Dashboard", services=list(self.services.values()), edge=self.edge
        )

    def _services(self) -> dict[str, MeshedFargateService]:
        """The three services; api-gateway calls both others, which share their data through
        the database. Each scales on CPU, memory and a per-task load figure it writes in
        Embedded Metric Format (see services/README.md for why each falls as tasks are added)."""
        health = HealthCheckOptions(
            path="/health", command=["CMD", "python", "-m", "services.common.healthcheck"]
        )
        ingestion = MeshedFargateService(
            self,
            "DataIngestion",
            cluster=self.platform,
            name="data-ingestion",
            image=self.images["data-ingestion"],
            port=8080,
            health_check=health,
            environment={"PORT": "8080", **self._database_environment("data-ingestion")},
            release=self._internal_release("data-ingestion"),
            secrets={
                "MARKET_DATA_API_KEY": ServiceSecret(secret=self.api_key.secret, field="api_key")
            },
            scaling=ScalingOptions(
                # ticks this task stored per minute; tasks split the symbols between them, so
                # another task lowers every task's figure (about 1000 ticks/s per task)
                custom_metric=CustomMetricTarget(metric_name="TicksIngested", target=60_000)
            ),
        )
        analytics = MeshedFargateService(
            self,
            "AnalyticsEngine",
            cluster=self.platform,
            name="analytics-engine",
            image=self.images["analytics-engine"],
            port=8081,
            cpu=1024,
            memory_mib=2048,
            health_check=health,
            environment={
                "PORT": "8081",
                **self._database_environment("analytics-engine", reads_ticks=True),
            },
            release=self._internal_release("analytics-engine"),
            scaling=ScalingOptions(
                # unanalysed ticks per live engine task: the backlog per worker of a queue
                custom_metric=CustomMetricTarget(metric_name="AnalysisBacklog", target=500)
            ),
        )
        gateway = MeshedFargateService(
            self,
            "ApiGateway",
            cluster=self.platform,
            name="api-gateway",
            image=self.images["api-gateway"],
            port=8082,
            health_check=health,
            environment={"PORT": "8082"},
            backends=[ingestion, analytics],
            release=Release.blue_green(bake_time=Duration.minutes(10)),
            public=True,
            scaling=ScalingOptions(
                min_capacity=3,
                max_capacity=20,
                custom_metric=CustomMetricTarget(metric_name="RequestsInFlight", target=25),
            ),
        )
        return {s.name: s for s in (ingestion, analytics, gateway)}

    def _domain(self, domain: DomainContext | None) -> DomainOptions | None:
        if domain is None:
            return None
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self,
            "HostedZone",
            hosted_zone_id=domain.hosted_zone_id,
            zone_name=domain.hosted_zone_name,
        )
        return DomainOptions(domain_name=domain.domain_name, hosted_zone=zone)

    @staticmethod
    def _acknowledge_first_deploy(
        load_balancer: elb.ApplicationLoadBalancer, database: rds.DatabaseCluster
    ) -> None:
        """Deletion protection is off until a first create succeeded: a failed first create
        must be able to delete what it made, or its rollback ends in ROLLBACK_FAILED."""
        reason = (
            "Off for a first deploy so that a failed create rolls back cleanly; the README's "
            "Deploy section turns it on (-c deletion_protection=true) once the stack exists, "
            "and production keeps it on."
        )
        for construct, rules in (
            (
                load_balancer,
                (
                    "NIST.800.53.R5::NIST.800.53.R5-ELBDeletionProtectionEnabled",
                    # CT.ELASTICLOADBALANCING.PR.5, as the cfn-guard validator names it
                    f"{CFN_GUARD_PLUGIN}::elbv2_deletion_protection_enabled_check",
                ),
            ),
            (
                database,
                (
                    "AwsSolutions::AwsSolutions-RDS10",
                    "NIST.800.53.R5::NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled",
                    # CT.RDS.PR.3
                    f"{CFN_GUARD_PLUGIN}::rds_cluster_deletion_protection_enabled_check",
                ),
            ),
        ):
            Validations.of(construct).acknowledge(
                *(Acknowledgment(id=rule, reason=reason) for rule in rules)
            )

    def _database_environment(self, name: str, *, reads_ticks: bool = False) -> dict[str, str]:
        """Where a service finds the database: its own user's rotating secret, read at run time
        (and re-read when a rotation changed the login; the secret's host is the writer), the
        RDS CA bundle in its image, and for a service that reads many ticks the cluster's
        reader endpoint."""
        environment = {
            "DB_SECRET_ARN": self.db_users[name].secret.secret_arn,
            "DB_CA_FILE": DB_CA_FILE,
        }
        if reads_ticks:
            environment["DB_READ_HOST"] = self.database.cluster_read_endpoint.hostname
        return environment

    def _use_database(self, service: MeshedFargateService) -> None:
        """Let a service reach the database: its port through both security groups, its own
        user's secret through the task role (never the master secret), and its tasks start
        only once the database is up, the schema and the user exist and the endpoint is in
        the user's secret."""
        self.database.connections.allow_from(
            service.connections,
            ec2.Port.tcp(DB_PORT),
            f"{service.name} reads and writes market data",
        )
        service.grant_secret_read(self.db_users[service.name].secret)
        for ecs_service in service.services.values():
            # every secret attached to the database, the users' and the master's: a deploy
            # creates them together, and a task starts on a database that is all there
            ecs_service.node.add_dependency(
                self.database, self.db_attachment, *self.db_users.values()
            )

    def _internal_release(self, name: str) -> Release:
        """Weighted blue and green slots on App Mesh, the green slot running the tag being
        released from the same repository; a rolling release on Service Connect."""
        if not self.weighted:
            return Release.rolling()
        repository = self.images[name].repository
        assert repository is not None  # every image here is in a scanned repository of ours
        green = (
            ServiceImage.from_repository(repository, tag=self.green_tag)
            if self.green_tag is not None
            else None
        )
        return Release.weighted(
            blue=100 - self.green_weight, green=self.green_weight, green_image=green
        )

    def _image(self, spec: ServiceSpec, image_tag: str | None) -> ServiceImage:
        """A scanned repository, and the image: built from this repo and copied in, or a tag
        the user's own CI pushed (``-c image_tag=...``)."""
        construct_id = _construct_id(spec.name)
        repository = ScannedRepository(
            self,
            f"{construct_id}Repository",
            key=self.platform.key,
            content_addressed_tag_prefix=ASSET_TAG_PREFIX,
        )
        CfnOutput(self, f"{construct_id}RepositoryUri", value=repository.repository_uri)
        if image_tag is not None:
            return ServiceImage.from_repository(repository, tag=image_tag)
        return ServiceImage.from_asset(
            self,
            f"{construct_id}Image",
            directory=SERVICES_DIR,
            file=f"{spec.folder}/Dockerfile",
            # One build context for all three; each image hashes only its own code.
            exclude=[other.folder for other in SERVICES if other is not spec],
            repository=repository,
            vpc=self.platform.vpc,
            key=self.platform.key,
        )

    def _database(self, deletion_protection: bool) -> rds.DatabaseCluster:
        """Aurora PostgreSQL Serverless v2 in the isolated subnets, encrypted, TLS only,
        monitored, and in a daily AWS Backup plan."""
        engine = rds.DatabaseClusterEngine.aurora_postgres(
            version=rds.AuroraPostgresEngineVersion.VER_17_9
        )
        parameters = rds.ParameterGroup(
            self,
            "MarketDataDbParameters",
            engine=engine,
            parameters={"rds.force_ssl": "1", "log_connections": "1", "log_disconnections": "1"},
        )
        # RDS exports to /aws/rds/cluster/<identifier>/postgresql, a name known before the
        # cluster only if the identifier is: so it is ours, and it ends in a part of the stack's
        # ID. The log group outlives the stack; a stack deployed again under the same name
        # gets a new identifier, so its group never meets the kept one.
        identifier = Fn.join("-", [_identifier_prefix(self.stack_name), _stack_id_suffix()])
        # Created before the cluster, so RDS exports into an encrypted group we keep.
        db_logs = logs.LogGroup(
            self,
            "MarketDataDbLogs",
            log_group_name=Fn.join("", ["/aws/rds/cluster/", identifier, "/postgresql"]),
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=self.platform.key,
            # kept once created, gone with a failed first create
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        monitoring_role, monitoring_policy = self._monitoring_role()
        cluster = rds.DatabaseCluster(
            self,
            "MarketDataDb",
            cluster_identifier=identifier,
            engine=engine,
            parameter_group=parameters,
            credentials=rds.Credentials.from_secret(self.db_secret.secret),
            default_database_name="marketdata",
            port=DB_PORT,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            serverless_v2_min_capacity=0.5,
            serverless_v2_max_capacity=8,
            vpc=self.platform.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            storage_encrypted=True,
            storage_encryption_key=self.platform.key,
            # IAM database authentication is on though every client logs in with the rotated
            # password: it costs nothing, opens nothing (no principal holds rds-db:connect), and
            # is what cdk-nag's AwsSolutions-RDS6 asks of an Aurora cluster.
            iam_authentication=True,
            backup=rds.BackupProps(retention=Duration.days(14)),
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=Duration.seconds(60),
            monitoring_role=monitoring_role,
            deletion_protection=deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        cluster.node.add_dependency(db_logs)
        for instance in ("Writer", "Reader"):
            # RDS checks the monitoring role's permissions when it creates the instance.
            cluster.node.find_child(instance).node.add_dependency(monitoring_policy)
            Validations.of(cluster.node.find_child(instance)).acknowledge(
                Acknowledgment(
                    id="NIST.800.53.R5::NIST.800.53.R5-RDSInBackupPlan",
                    reason="Aurora is backed up per cluster, not per instance: the cluster is "
                    "in the daily AWS Backup plan (BackupPlan/MarketDataDb).",
                )
            )
        self._back_up(cluster)
        return cluster

    def _monitoring_role(self) -> tuple[iam.Role, iam.ManagedPolicy]:
        """Enhanced monitoring writes OS metrics to the RDSOSMetrics log group, and only there:
        the role, and the policy the instances wait for."""
        role = iam.Role(
            self,
            "MarketDataDbMonitoringRole",
            assumed_by=iam.ServicePrincipal("monitoring.rds.amazonaws.com"),
            description="RDS enhanced monitoring of the market-data database",
        )
        metrics_group = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="RDSOSMetrics",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        policy = iam.ManagedPolicy(
            self,
            "MarketDataDbMonitoringPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
                    resources=[metrics_group],
                ),
                iam.PolicyStatement(
                    actions=[
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:GetLogEvents",
                        "logs:PutLogEvents",
                    ],
                    resources=[f"{metrics_group}:log-stream:*"],
                ),
            ],
        )
        acknowledge_wildcard_resource(
            policy,
            f"{metrics_group}:log-stream:*",
            reason="Enhanced monitoring names a stream per DB instance resource ID, unknown "
            "until the instance exists; the grant is limited to the RDSOSMetrics log group.",
        )
        return role, policy

    def _back_up(self, cluster: rds.DatabaseCluster) -> None:
        """Daily backups kept 35 days, in a vault encrypted with the platform key."""
        vault = backup.BackupVault(
            self,
            "BackupVault",
            # A vault must be named, and it outlives the stack: the name ends in a part of the
            # stack's ID, so a stack deployed again never meets the kept vault.
            backup_vault_name=Fn.join("-", ["marketdata", _stack_id_suffix()]),
            encryption_key=self.platform.key,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        plan = backup.BackupPlan.daily35_day_retention(self, "BackupPlan", vault)
        selection = plan.add_selection(
            "MarketDataDb", resources=[backup.BackupResource.from_rds_database_cluster(cluster)]
        )
        Validations.of(selection).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "service-role/AWSBackupServiceRolePolicyForBackup]",
                reason="AWS Backup's own service-role policy, maintained by AWS as backup "
                "features change; the selection limits it to the market-data cluster.",
            )
        )


__all__ = ["SERVICES", "DomainContext", "ServiceSpec", "TradingPlatformStack"]
