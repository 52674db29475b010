"""Certificates for mutual TLS in the mesh: a platform CA whose key never leaves KMS, one
certificate per service, issued before the services start and renewed on a schedule. Shared by
the Envoy mutual-TLS mesh (the core) and the App Mesh plug-in.

Envoy on Fargate takes mTLS certificates from files (App Mesh's SDS needs a SPIRE agent, which
does not run on ECS; ACM certificates cannot be exported to a sidecar). So each service's
certificate, key and the CA bundle live in a secret of its own, and a task's init container
writes them into a task volume that Envoy mounts read-only; Envoy starts only after that
container succeeded. A renewal redeploys the service, one task at a time (the issuer calls ECS
UpdateService on every service tagged with its name). No key appears in a template, in code or
in a log.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import (
    Duration,
    IStableStringProducer,
    Lazy,
    RemovalPolicy,
    Stack,
    triggers,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from ..assets import MESH_CERTIFICATE_ISSUER
from ..compliance import (
    TRIGGER_PROVIDER,
    acknowledge,
    acknowledge_control,
    acknowledge_wildcard_resource,
    deny_grants_but_for_aws_resources,
    drop_provider_depends_on,
    ignore_redundant_depends_on,
    vpc_lambda_network_statement,
)
from ..notifications import AlarmNotifications
from .options import MeshTlsOptions

CERT_DIR = "/etc/mesh-tls"
CERT_FILE = f"{CERT_DIR}/cert.pem"
KEY_FILE = f"{CERT_DIR}/key.pem"
CA_FILE = f"{CERT_DIR}/ca.pem"
CERT_VOLUME = "mesh-tls"
CERT_VARIABLE, KEY_VARIABLE, CA_VARIABLE = "MESH_TLS_CERT", "MESH_TLS_KEY", "MESH_TLS_CA"
"""The environment variables a service's certificate, key and CA bundle arrive in (ECS secrets
of the init container, or of Envoy itself under the Control Tower profile)."""
CERT_INIT_CONTAINER = "mesh-tls-init"
SERVICE_TAG = "trading-constructs:mesh-service"


CA_CERTIFICATE_ID = "CaCertificate"
CERT_INIT_MEMORY_MIB = 32
"""Memory the certificate init container reserves (it writes three files and exits)."""


def certificate_id(service: str) -> str:
    """The construct id of a service's certificate secret: 'order-book' -> 'OrderBookCertificate'.
    A hyphen before a letter becomes the capital, one before anything else an underscore
    ('feed-2' -> 'Feed_2Certificate', 'feed2' -> 'Feed2Certificate'), so two service names
    never share an id; only 'ca' gives the CA's, and services check theirs."""
    first, *rest = service.split("-")
    return (
        first.capitalize()
        + "".join(p.capitalize() if p[:1].isalpha() else f"_{p}" for p in rest)
        + "Certificate"
    )


@jsii.implements(IStableStringProducer)
class _ServicesJson:
    """The issuer's SERVICES setting, produced at synthesis once every service has joined."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.entries: list[dict[str, object]] = []

    def produce(self) -> str:
        return str(self.stack.to_json_string(self.entries))


class MeshCertificates(Construct):
    """The platform CA (an asymmetric KMS key), a secret per service certificate, and the
    function that issues them: once at deployment, before any service starts, and daily after,
    reissuing what is within ``renew_before_days`` of expiry and redeploying its services."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        vpc: ec2.IVpc,
        cluster_name: str,
        alarms: AlarmNotifications,
        options: MeshTlsOptions | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        """
        :param key: the platform KMS key the certificate secrets and the issuer's logs are
            encrypted with.
        :param vpc: the VPC the issuer runs in (its private subnets with egress).
        :param cluster_name: the ECS cluster whose services the issuer redeploys after a
            renewal.
        :param alarms: where the issuer's error alarm notifies.
        :param options: the certificates' lifetimes and the issuer's reserved concurrency.
            :default: ``MeshTlsOptions()``
        :param removal_policy: what happens to the CA key, the secrets and the issuer's log
            group when the stack is deleted: kept once created, removed by a failed first
            create. :default: RETAIN_ON_UPDATE_OR_DELETE
        """
        super().__init__(scope, id)
        options = options or MeshTlsOptions()
        self.key = key
        self.removal_policy = removal_policy
        self.ca_key: kms.Key = self._ca_key()
        """The CA's private key, in KMS."""
        self.ca_secret: sm.Secret = self._secret(CA_CERTIFICATE_ID, "mesh CA certificate")
        """The CA certificate (public), for anyone who needs to trust the mesh."""
        self._services = _ServicesJson(Stack.of(self))
        log_group = logs.LogGroup(
            self,
            "IssuerLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=key,
            removal_policy=removal_policy,
        )
        role = iam.Role(
            self,
            "IssuerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Issues the mesh's service certificates and nothing else",
        )
        self._only_issuer_signs(role)
        self.function: lambda_.Function = self._issuer(vpc, cluster_name, options, log_group, role)
        """The issuing function (``trading_constructs/handlers/mesh_certificate_issuer/``)."""
        self.policy: iam.ManagedPolicy = self._issuer_policy(role, log_group, cluster_name)
        """What the issuer may do: sign with the CA key, write certificates, redeploy."""
        # A VPC function is created only once its role may create network interfaces.
        self.function.node.add_dependency(self.policy)
        self._acknowledge_issuer(options)
        self.schedule: events.Rule = events.Rule(
            self,
            "Daily",
            description="Renew mesh certificates nearing expiry",
            schedule=events.Schedule.rate(Duration.days(1)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        """Runs the issuer daily."""
        self.first_issue: triggers.Trigger = triggers.Trigger(
            self,
            "FirstIssue",
            handler=self.function,
            timeout=Duration.minutes(3),
            execute_on_handler_change=True,
        )
        """Runs the issuer during deployment, before the services that need certificates."""
        drop_provider_depends_on(Stack.of(self), TRIGGER_PROVIDER)
        self._acknowledge_trigger_provider()
        self.alarm: cloudwatch.Alarm = self.function.metric_errors(
            period=Duration.hours(1), statistic="Sum"
        ).create_alarm(
            self,
            "IssuerErrors",
            threshold=1,
            evaluation_periods=1,
            alarm_description="Mesh certificate issuing failed: certificates may expire",
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        """Fires when an issuing run fails."""
        alarms.notify(self.alarm)

    def _acknowledge_trigger_provider(self) -> None:
        """aws-cdk-lib's trigger runs the issuer through a provider function of its own, one per
        stack, which it offers no way to place in a VPC (CT.LAMBDA.PR.3)."""
        provider = Stack.of(self).node.try_find_child(TRIGGER_PROVIDER)
        if provider is None:
            return
        acknowledge_control(
            provider,
            "aws-cdk-lib's trigger provider (one per stack) only invokes the mesh certificate "
            "issuer during a deploy, through the Lambda API; aws-cdk-lib gives it no VPC "
            "setting. The issuer it invokes runs in the VPC's private subnets.",
            "CT.LAMBDA.PR.3",
        )
        acknowledge(
            provider,
            "aws-cdk-lib's trigger provider builds its role with an inline policy and takes no "
            "role of ours; the policy only lets it invoke this stack's trigger handlers, and "
            "it runs only while CloudFormation deploys.",
            "DeployReadiness::custom-resource-managed-policies",
        )

    def _only_issuer_signs(self, role: iam.IRole) -> None:
        """The CA key's own policy refuses kms:Sign to every principal but the issuer's role:
        the account's IAM policies alone (what the key's default statement defers to) could
        otherwise let any role of the account sign a mesh certificate."""
        self.ca_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheIssuerSigns",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:Sign"],
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": role.role_arn}},
            )
        )

    def _ca_key(self) -> kms.Key:
        key = kms.Key(
            self,
            "CaKey",
            description="trading platform mesh CA: signs service certificates, never leaves KMS",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=self.removal_policy,
        )
        key.add_to_resource_policy(deny_grants_but_for_aws_resources())
        acknowledge(
            key,
            "KMS rotates symmetric keys only; this asymmetric CA key is replaced by issuing a "
            "new CA, which the issuer's CA checks handle.",
            "AwsSolutions::AwsSolutions-KMS5",
            "NIST.800.53.R5::NIST.800.53.R5-KMSBackingKeyRotationEnabled",
            "PCI.DSS.321::PCI.DSS.321-KMSBackingKeyRotationEnabled",
        )
        return key

    def _issuer(
        self,
        vpc: ec2.IVpc,
        cluster_name: str,
        options: MeshTlsOptions,
        log_group: logs.ILogGroup,
        role: iam.Role,
    ) -> lambda_.Function:
        group = ec2.SecurityGroup(
            self,
            "IssuerSecurityGroup",
            vpc=vpc,
            description="Mesh certificate issuer: AWS APIs over HTTPS only",
            allow_all_outbound=False,
        )
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "KMS, Secrets Manager, ECS")
        function = lambda_.Function(
            self,
            "Issuer",
            description="Issues and renews the mesh's mutual-TLS certificates",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler=MESH_CERTIFICATE_ISSUER.handler,
            code=lambda_.Code.from_asset(str(MESH_CERTIFICATE_ISSUER.build())),
            timeout=Duration.minutes(2),
            memory_size=256,
            environment={
                "CA_KEY_ID": self.ca_key.key_arn,
                "DATA_KEY_ID": self.key.key_arn,
                "CA_SECRET_ARN": self.ca_secret.secret_arn,
                "SERVICES": Lazy.string(self._services),
                "CERT_DAYS": str(options.cert_days),
                "RENEW_BEFORE_DAYS": str(options.renew_before_days),
                "ECS_CLUSTER": cluster_name,
            },
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[group],
            reserved_concurrent_executions=options.issuer_reserved_concurrency,
            log_group=log_group,
            role=role.without_policy_updates(),
        )
        ignore_redundant_depends_on(function)
        return function

    def _issuer_policy(
        self, role: iam.Role, log_group: logs.ILogGroup, cluster_name: str
    ) -> iam.ManagedPolicy:
        stack = Stack.of(self)
        services = stack.format_arn(
            service="ecs", resource="service", resource_name=f"{cluster_name}/*"
        )
        policy = iam.ManagedPolicy(
            self,
            "IssuerPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["kms:GetPublicKey", "kms:Sign"], resources=[self.ca_key.key_arn]
                ),
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKeyPair"],
                    resources=[self.key.key_arn],
                    conditions={"StringEquals": {"kms:DataKeyPairSpec": "ECC_NIST_P256"}},
                ),
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[self.key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"
                        }
                    },
                ),
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                    resources=[self.ca_secret.secret_arn],
                ),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    actions=["ecs:ListServices"],
                    resources=["*"],
                    conditions={"ArnEquals": {"ecs:cluster": self._cluster_arn(cluster_name)}},
                ),
                iam.PolicyStatement(
                    actions=["ecs:ListTagsForResource", "ecs:UpdateService"], resources=[services]
                ),
                vpc_lambda_network_statement(),
            ],
        )
        acknowledge_wildcard_resource(
            policy,
            "*",
            reason="ecs:ListServices (limited by the ecs:cluster condition) and the network "
            "interface actions of a VPC Lambda have no resource-level permissions.",
        )
        acknowledge_wildcard_resource(
            policy,
            services,
            reason="The issuer redeploys the services of this one cluster whose certificates "
            "it renewed; their names are generated.",
        )
        return policy

    def _acknowledge_issuer(self, options: MeshTlsOptions) -> None:
        if options.issuer_reserved_concurrency is None:
            acknowledge(
                self.function,
                "Runs daily and at deployment; reserving concurrency would need an account "
                "quota above the 10 a new account may have, so it is opt-in "
                "(MeshTlsOptions.issuer_reserved_concurrency).",
                "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
            )
        acknowledge(
            self.function,
            "The issuer runs on a daily schedule and at deployment; a failed run is an ERROR "
            "log line and an error metric, and the next run repeats the work.",
            "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
        )
        acknowledge(
            self.function,
            "Only the trigger invokes a version of the issuer, and its role's identity policy "
            "allows the function's versions (<arn>:*); nothing relies on a resource policy for "
            "a qualifier.",
            "Annotation::@aws-cdk/aws-lambda:addPermissionsToVersionOrAlias",
        )

    def _cluster_arn(self, cluster_name: str) -> str:
        return Stack.of(self).format_arn(
            service="ecs", resource="cluster", resource_name=cluster_name
        )

    def _secret(self, id: str, what: str) -> sm.Secret:
        secret = sm.Secret(
            self,
            id,
            description=f"{what} (written by the mesh certificate issuer)",
            encryption_key=self.key,
            # A placeholder the issuer replaces; CloudFormation needs some value.
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template=json.dumps({"state": "pending"}),
                generate_string_key="placeholder",
            ),
            removal_policy=self.removal_policy,
        )
        acknowledge(
            secret,
            "Renewed by the mesh certificate issuer on its own daily schedule (before expiry), "
            "not by Secrets Manager rotation.",
            "AwsSolutions::AwsSolutions-SMG4",
            "NIST.800.53.R5::NIST.800.53.R5-SecretsManagerRotationEnabled",
            "PCI.DSS.321::PCI.DSS.321-SecretsManagerRotationEnabled",
        )
        return secret

    def issue_for(self, service: str, sans: list[str]) -> sm.Secret:
        """A secret that will hold ``service``'s certificate, key and the CA bundle."""
        secret = self._secret(certificate_id(service), f"mesh certificate of {service}")
        self._services.entries.append(
            {"name": service, "secret_arn": secret.secret_arn, "sans": sans}
        )
        self.policy.add_statements(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                resources=[secret.secret_arn],
            )
        )
        return secret

    @staticmethod
    def environment(
        task_definition: ecs.TaskDefinition, secret: sm.ISecret
    ) -> dict[str, ecs.Secret]:
        """The certificate, key and CA bundle of ``secret`` as ECS secrets of a container."""
        # Read without its key: ECS would grant the key through the key's own policy, which
        # for a service in another stack would point the platform's stack back at it. The
        # service's execution policy allows the decrypt (through Secrets Manager) instead.
        secret = sm.Secret.from_secret_attributes(
            task_definition, "MeshCertificate", secret_complete_arn=secret.secret_arn
        )
        return {
            CERT_VARIABLE: ecs.Secret.from_secrets_manager(secret, "cert"),
            KEY_VARIABLE: ecs.Secret.from_secrets_manager(secret, "key"),
            CA_VARIABLE: ecs.Secret.from_secrets_manager(secret, "ca"),
        }

    def add_to_task(
        self,
        task_definition: ecs.FargateTaskDefinition,
        envoy: ecs.ContainerDefinition,
        secret: sm.ISecret,
        image: ecs.ContainerImage,
        logging: ecs.LogDriver,
        uid: int = 1337,
    ) -> ecs.ContainerDefinition:
        """The init container that writes the certificate files, and Envoy's read-only mount.
        The values arrive as ECS secrets in the init container's environment only; the files
        belong to ``uid``, the user Envoy runs as, and only it may read them."""
        task_definition.add_volume(name=CERT_VOLUME)
        init = task_definition.add_container(
            CERT_INIT_CONTAINER,
            container_name=CERT_INIT_CONTAINER,
            image=image,
            essential=False,
            # Fargate bind mounts belong to root: write as root, then hand the files to Envoy.
            user="0",
            memory_reservation_mib=CERT_INIT_MEMORY_MIB,
            # the task's memory is the hard limit (CT.ECS.PR.7 asks for one on every container)
            memory_limit_mib=task_definition.memory_mib,
            # it writes only into the task volume
            readonly_root_filesystem=True,
            entry_point=["sh", "-c"],
            command=[
                "umask 077 && "
                f'printf "%s" "${CERT_VARIABLE}" > {CERT_FILE} && '
                f'printf "%s" "${KEY_VARIABLE}" > {KEY_FILE} && '
                f'printf "%s" "${CA_VARIABLE}" > {CA_FILE} && '
                f"chown {uid}:{uid} {CERT_FILE} {KEY_FILE} {CA_FILE} && "
                f"chmod 0400 {CERT_FILE} {KEY_FILE} {CA_FILE}"
            ],
            secrets=self.environment(task_definition, secret),
            logging=logging,
        )
        init.add_mount_points(
            ecs.MountPoint(container_path=CERT_DIR, source_volume=CERT_VOLUME, read_only=False)
        )
        envoy.add_mount_points(
            ecs.MountPoint(container_path=CERT_DIR, source_volume=CERT_VOLUME, read_only=True)
        )
        envoy.add_container_dependencies(
            ecs.ContainerDependency(
                container=init, condition=ecs.ContainerDependencyCondition.SUCCESS
            )
        )
        acknowledge_control(
            task_definition,
            f"Only {CERT_INIT_CONTAINER} runs as root, for a moment at task start: Fargate makes "
            "a task volume root-owned (0755), so writing the certificate files into it and "
            f"handing them to Envoy's user (uid {uid}) needs root. It has a read-only root "
            "filesystem and exits before the app starts; the app and Envoy run as their own "
            "users.",
            "CT.ECS.PR.3",
        )
        return init
