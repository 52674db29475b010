"""TradingEdge: the internet-facing load balancer in front of the platform's public service."""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field

import jsii
from aws_cdk import (
    Annotations,
    ArnFormat,
    Aws,
    Duration,
    Fn,
    IResolvable,
    IResolveContext,
    Names,
    RemovalPolicy,
    Stack,
    Token,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Certificates, DNS and WAF are imported where an edge uses them: a platform without them
# does not pay for loading their modules (about 0.4 s of a synthesis).
if typing.TYPE_CHECKING:
    from aws_cdk import aws_certificatemanager as acm
    from aws_cdk import aws_route53 as route53

from ._validation import (
    CERTIFICATE,
    HOSTED_ZONE,
    Problems,
    check_removal_policy,
    check_type,
    claim,
    construct_owner,
    is_token,
    region_of,
)
from .access_logs import log_access
from .cluster import TradingCluster
from .compliance import acknowledge, acknowledge_control
from .limits import ALB_RULES, QUOTA_CONTEXT, SECURITY_GROUP_RULES, quota, watch_stack_limits
from .policies import ecs_infrastructure_role
from .service import MeshedFargateService

# ALB quotas (Elastic Load Balancing, "Quotas for your Application Load Balancers"): at most 5
# condition values and 5 condition wildcards per rule, neither adjustable; path patterns of up
# to 128 characters of this set, where * and ? are the wildcards (ListenerRule
# PathPatternConfig). A pattern is matched against the URL's path, which starts with '/'.
_MAX_PATTERNS_PER_RULE = 5
_MAX_WILDCARDS_PER_RULE = 5
_PATH_PATTERN = r"[/*?][A-Za-z0-9_\-.$/~\"'@:+?*&]{0,127}"
_HTTP_CODES = r"\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*"
_MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
_THIRTY_SECONDS = Duration.seconds(30)
FIRST_RULE_PRIORITY = 10
RULE_PRIORITY_STEP = 10


@dataclass(frozen=True, kw_only=True)
class TargetHealthOptions:
    """How the load balancer decides a task is healthy (on the service's health path).

    Attributes:
        interval: Time between checks, 5 to 300 s. Default: 15 seconds.
        timeout: Time a check may take, 2 to 120 s, shorter than the interval. Default: 5 seconds.
        healthy_threshold: Passes in a row that make a target healthy, 2 to 10. Default: 2.
        unhealthy_threshold: Failures in a row that make it unhealthy, 2 to 10. Default: 3.
        healthy_http_codes: Codes that count as healthy, 200 to 499, like '200' or '200-299'.
            Default: '200'.
    """

    interval: Duration = field(default_factory=lambda: Duration.seconds(15))
    timeout: Duration = field(default_factory=lambda: Duration.seconds(5))
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    healthy_http_codes: str = "200"

    def __post_init__(self) -> None:
        problems = Problems("TargetHealthOptions")
        for prop, low, high in (("interval", 5, 300), ("timeout", 2, 120)):
            problems.seconds(prop, getattr(self, prop), low, high)
        problems.int_range("healthy_threshold", self.healthy_threshold, 2, 10)
        problems.int_range("unhealthy_threshold", self.unhealthy_threshold, 2, 10)
        problems.pattern(
            "healthy_http_codes", self.healthy_http_codes, _HTTP_CODES, "codes like '200,202-299'"
        )
        if not problems.problems and not is_token(self.healthy_http_codes):
            codes = [int(c) for c in re.findall(r"\d{3}", self.healthy_http_codes)]
            ranges = re.findall(r"(\d{3})-(\d{3})", self.healthy_http_codes)
            if any(not 200 <= c <= 499 for c in codes) or any(
                int(low) > int(high) for low, high in ranges
            ):
                problems.add(
                    "healthy_http_codes",
                    self.healthy_http_codes,
                    "codes 200 to 499, ranges low-high",
                )
        if not problems.problems:
            problems.timeout_below_interval(self.timeout, self.interval)
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class DomainOptions:
    """A public DNS name for the platform: a certificate is issued for it through ACM with DNS
    validation in the hosted zone, and an alias record points it at the load balancer.

    Attributes:
        domain_name: The name, e.g. 'api.trading.example.com'.
        hosted_zone: The public hosted zone the name is in.
    """

    domain_name: str
    hosted_zone: route53.IHostedZone

    def __post_init__(self) -> None:
        problems = Problems("DomainOptions")
        problems.dns_name("domain_name", self.domain_name)
        zone_given = problems.of_kind("hosted_zone", self.hosted_zone, HOSTED_ZONE)
        if zone_given and not problems.problems and not is_token(self.domain_name):
            # a zone name may be written with its root dot: 'example.com.' holds api.example.com
            zone = self.hosted_zone.zone_name.rstrip(".")
            if not is_token(zone) and not (
                self.domain_name == zone or self.domain_name.endswith(f".{zone}")
            ):
                problems.add("domain_name", self.domain_name, f"a name in the zone {zone}")
        problems.raise_if_any()


class TradingEdge(Construct):
    """An internet-facing ALB in the public subnets that routes paths to one service: HTTPS
    with TLS 1.2+ (HTTP redirected) when it has a certificate, access logs to an encrypted,
    retained bucket, invalid header fields dropped, an optional AWS WAF web ACL, and a security
    group that reaches only the service's port.

    A service released with ``Release.blue_green()`` gets ECS native blue/green: an alternate
    target group, the production rule, and a test rule on ``test_port`` open only to
    ``test_cidrs``. Its listeners only forward, every path to the service (whose own 404s
    answer unknown paths): ECS native blue/green does not support a listener whose rules mix
    forward and fixed-response actions.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: TradingCluster,
        service: MeshedFargateService,
        path_patterns: Sequence[str] | None = None,
        certificate: acm.ICertificate | None = None,
        domain: DomainOptions | None = None,
        ingress_cidrs: Sequence[str] = ("0.0.0.0/0",),
        test_port: int = 9443,
        test_cidrs: Sequence[str] = (),
        health: TargetHealthOptions | None = None,
        deregistration_delay: Duration = _THIRTY_SECONDS,
        waf: bool = False,
        deletion_protection: bool = False,
        access_log_days: int = 90,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        """
        :param cluster: the platform (its VPC's public subnets and alarm topic).
        :param service: the public service, e.g. api-gateway.
        :param path_patterns: paths routed to the service (a rolling release), ALB patterns
            of up to 128 characters; other paths get a 404 from the load balancer. A service
            released blue/green takes every path instead, so leave them out: ECS native
            blue/green does not support listeners whose rules mix forward and fixed-response
            actions (Amazon ECS Developer Guide, Application Load Balancer resources for
            blue/green deployments, limitations), so its listeners only forward.
            :default: ``('/api/*', '/health')``; every path (``'/*'``) with blue/green
        :param certificate: the TLS certificate; HTTPS on 443, HTTP redirected.
            :default: none (see ``domain``)
        :param domain: a name to issue a certificate for, with DNS validation, and to alias to
            the load balancer. :default: none; with neither, HTTP only and a synth warning
        :param ingress_cidrs: IPv4 ranges that may reach 80/443. :default: the internet
        :param test_port: the blue/green test listener's port. :default: 9443
        :param test_cidrs: IPv4 ranges that may reach the test listener.
            :default: none (the test listener is closed until ranges are given)
        :param health: the target group's health check on the service's health path.
            :default: ``TargetHealthOptions()``
        :param deregistration_delay: how long a stopping task drains, 0 to 3600 s.
            :default: 30 seconds (fast deploys; requests are short)
        :param waf: attach an AWS WAF web ACL with AWS managed rule groups. :default: False
        :param deletion_protection: protect the load balancer from deletion. Off by default:
            on a failed first create CloudFormation could not delete a protected load balancer
            and the rollback would end in ROLLBACK_FAILED. Turn it on with a second deploy once
            the first succeeded, and keep it on in production. :default: False
        :param access_log_days: days access logs are kept, 1 to 3650. :default: 90
        :param removal_policy: what happens to the WAF log group when the stack is deleted:
            kept once created, removed by a failed first create. The access log bucket, which
            the load balancer writes to at once, is always kept (CloudFormation cannot delete
            a bucket holding objects; its name is generated, so a retry never meets it).
            :default: RETAIN_ON_UPDATE_OR_DELETE
        """
        _validate(
            scope,
            construct_owner("TradingEdge", scope.node.path, id),
            cluster=cluster,
            service=service,
            path_patterns=path_patterns,
            certificate=certificate,
            domain=domain,
            ingress_cidrs=ingress_cidrs,
            test_cidrs=test_cidrs,
            test_port=test_port,
            health=health,
            deregistration_delay=deregistration_delay,
            flags={"waf": waf, "deletion_protection": deletion_protection},
            access_log_days=access_log_days,
            removal_policy=removal_policy,
        )
        patterns = _routed_paths(path_patterns, service)
        ingress_cidrs, test_cidrs = _listed(ingress_cidrs), _listed(test_cidrs)
        super().__init__(scope, id)
        if domain is not None:
            claim(self, domain_key(domain))
        watch_stack_limits(self)
        self.service = service
        blue_green = service.release.behind_load_balancer

        self.security_group: ec2.SecurityGroup = self._security_group(cluster)
        """The load balancer's security group."""
        self.load_balancer: elb.ApplicationLoadBalancer = self._load_balancer(
            cluster, deletion_protection
        )
        """The application load balancer."""
        self.access_logs: s3.Bucket = self._access_log_bucket(access_log_days, removal_policy)
        """The encrypted, retained bucket access logs go to."""
        log_access(self.load_balancer, self.access_logs, "alb")
        if domain is not None:
            certificate = self._certificate(domain)
        self.target_groups: list[elb.ApplicationTargetGroup] = self._target_groups(
            cluster, health or TargetHealthOptions(), deregistration_delay, blue_green
        )
        """The target groups: production (blue), and the alternate (green) for blue/green."""
        self.target_group = self.target_groups[0]
        self.listener: elb.ApplicationListener = self._listeners(certificate, ingress_cidrs)
        """The production listener (443 with a certificate, else 80)."""
        self.dns_record: route53.ARecord | None = (
            self._alias_record(domain) if domain is not None else None
        )
        """The alias record of ``domain`` pointing at the load balancer; None without one."""
        self.rules: list[elb.ApplicationListenerRule] = self._path_rules(patterns)
        """The path rules, priorities 10, 20, ... in pattern order."""
        self.test_listener: elb.ApplicationListener | None = None
        """The blue/green test listener, on ``test_port``."""
        self._target_the_service(
            self._blue_green(test_port, test_cidrs, patterns, certificate) if blue_green else None
        )
        self.alarms: dict[str, cloudwatch.Alarm] = self._alarms(cluster)
        """Load balancer alarms: target 5xx, unhealthy hosts, p99 latency."""
        if waf:
            self._web_acl(cluster.key, removal_policy)
        else:
            acknowledge(
                self.load_balancer,
                "The user chose waf=False for this TradingEdge.",
                "NIST.800.53.R5::NIST.800.53.R5-ALBWAFEnabled",
                "PCI.DSS.321::PCI.DSS.321-ALBWAFEnabled",
            )

    # -- the steps of the constructor ---------------------------------------------------------

    def _security_group(self, cluster: TradingCluster) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=cluster.vpc,
            description="Public load balancer: reaches only the public service port",
            allow_all_outbound=False,
        )
        resource = group.node.default_child
        assert isinstance(resource, ec2.CfnSecurityGroup)
        resource.security_group_egress = _EgressOrNone(resource.security_group_egress)
        return group

    def _load_balancer(
        self, cluster: TradingCluster, deletion_protection: bool
    ) -> elb.ApplicationLoadBalancer:
        return elb.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=cluster.vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=self.security_group,
            drop_invalid_header_fields=True,
            deletion_protection=deletion_protection,
        )

    def _certificate(self, domain: DomainOptions) -> acm.ICertificate:
        from aws_cdk import aws_certificatemanager as acm

        return acm.Certificate(
            self,
            "Certificate",
            domain_name=domain.domain_name,
            validation=acm.CertificateValidation.from_dns(domain.hosted_zone),
        )

    def _target_groups(
        self,
        cluster: TradingCluster,
        health: TargetHealthOptions,
        deregistration_delay: Duration,
        blue_green: bool,
    ) -> list[elb.ApplicationTargetGroup]:
        target_health = elb.HealthCheck(
            path=self.service.health_check.path,
            interval=health.interval,
            timeout=health.timeout,
            healthy_threshold_count=health.healthy_threshold,
            unhealthy_threshold_count=health.unhealthy_threshold,
            healthy_http_codes=health.healthy_http_codes,
        )
        return [
            elb.ApplicationTargetGroup(
                self,
                f"{slot}TargetGroup",
                vpc=cluster.vpc,
                port=self.service.port,
                protocol=elb.ApplicationProtocol.HTTP,
                target_type=elb.TargetType.IP,
                health_check=target_health,
                deregistration_delay=deregistration_delay,
            )
            for slot in (["Blue", "Green"] if blue_green else ["Blue"])
        ]

    def _both_groups(self) -> elb.ListenerAction:
        """Blue and green, blue live: the action of the production rule ECS moves, and of the
        blue/green listener's default, which the catch-all rule leaves unused."""
        return elb.ListenerAction.weighted_forward(
            [
                elb.WeightedTargetGroup(target_group=group, weight=100 if i == 0 else 0)
                for i, group in enumerate(self.target_groups)
            ]
        )

    def _path_rules(self, patterns: list[str]) -> list[elb.ApplicationListenerRule]:
        return [
            elb.ApplicationListenerRule(
                self,
                f"PathRule{index + 1}",
                listener=self.listener,
                priority=FIRST_RULE_PRIORITY + index * RULE_PRIORITY_STEP,
                conditions=[elb.ListenerCondition.path_patterns(chunk)],
                # ECS moves these weights during blue/green; declaring both keeps a later
                # stack update from sending traffic back to an empty group.
                action=self._both_groups(),
            )
            for index, chunk in enumerate(_rules_of(patterns))
        ]

    def _target_the_service(self, alternate: ecs.AlternateTarget | None) -> None:
        """The service's port behind the production target group (and, with blue/green, the
        alternate ECS shifts to), reachable from the load balancer on that port alone. The
        service writes the rules in its own stack, so the edge may live in another."""
        self.service.attach_to_target_group(
            self.target_group, load_balancer=self.security_group, alternate_target=alternate
        )

    def _listeners(
        self, certificate: acm.ICertificate | None, ingress_cidrs: Sequence[str]
    ) -> elb.ApplicationListener:
        not_found = (
            self._both_groups()
            if len(self.target_groups) > 1
            else elb.ListenerAction.fixed_response(
                404, content_type="application/json", message_body='{"error": "not found"}'
            )
        )
        if any(cidr in ("0.0.0.0/0",) for cidr in ingress_cidrs):
            acknowledge(
                self.security_group,
                "An internet-facing load balancer: the world may reach ports 80 and 443 only "
                "(ingress_cidrs narrows it).",
                "AwsSolutions::AwsSolutions-EC23",
            )
        for cidr in ingress_cidrs:
            ports = (80, 443) if certificate is not None else (80,)
            for port in ports:
                self.security_group.add_ingress_rule(
                    ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"clients on {port}"
                )
        if certificate is None:
            Annotations.of(self).add_warning_v2(
                "trading-constructs:edge-without-https",
                "TradingEdge serves plain HTTP: pass certificate= (an ACM certificate in the "
                "stack's region) or domain=DomainOptions(domain_name=..., hosted_zone=...) (a "
                "DNS-validated certificate is issued for the name) to serve HTTPS with TLS 1.2+ "
                "and redirect HTTP to it.",
            )
            listener = self.load_balancer.add_listener(
                "Http", port=80, open=False, default_action=not_found
            )
            self._acknowledge_plain_http(self)
            acknowledge_control(
                listener,
                "No certificate was given (the edge-without-https warning says how): there is "
                "no HTTPS listener to redirect to.",
                "CT.ELASTICLOADBALANCING.PR.1",
            )
            return listener
        redirect = self.load_balancer.add_redirect(source_port=80, target_port=443, open=False)
        acknowledge(
            redirect,
            "Port 80 serves nothing: it only redirects to HTTPS on 443.",
            "NIST.800.53.R5::NIST.800.53.R5-ELBv2ACMCertificateRequired",
            "PCI.DSS.321::PCI.DSS.321-ELBv2ACMCertificateRequired",
        )
        return self.load_balancer.add_listener(
            "Https",
            port=443,
            open=False,
            certificates=[elb.ListenerCertificate.from_certificate_manager(certificate)],
            ssl_policy=elb.SslPolicy.RECOMMENDED_TLS,
            default_action=not_found,
        )

    @staticmethod
    def _acknowledge_plain_http(scope: Construct) -> None:
        reason = (
            "No certificate was given to this TradingEdge, so it serves HTTP only, and says "
            "so in a synth warning with the way to add one."
        )
        acknowledge(
            scope,
            reason,
            "NIST.800.53.R5::NIST.800.53.R5-ALBHttpToHttpsRedirection",
            "NIST.800.53.R5::NIST.800.53.R5-ELBTlsHttpsListenersOnly",
            "NIST.800.53.R5::NIST.800.53.R5-ELBv2ACMCertificateRequired",
            "PCI.DSS.321::PCI.DSS.321-ALBHttpToHttpsRedirection",
            "PCI.DSS.321::PCI.DSS.321-ELBTlsHttpsListenersOnly",
            "PCI.DSS.321::PCI.DSS.321-ELBv2ACMCertificateRequired",
            "AwsSolutions::AwsSolutions-ELB1",
        )

    def _blue_green(
        self,
        test_port: int,
        test_cidrs: Sequence[str],
        patterns: list[str],
        certificate: acm.ICertificate | None,
    ) -> ecs.AlternateTarget:
        """ECS swaps the production rule between blue and green; the test rule sends test
        traffic to the new revision before it takes production."""
        secure = certificate is not None
        test_listener = self.load_balancer.add_listener(
            "Test",
            port=test_port,
            protocol=elb.ApplicationProtocol.HTTPS if secure else elb.ApplicationProtocol.HTTP,
            certificates=[elb.ListenerCertificate.from_certificate_manager(certificate)]
            if certificate is not None
            else None,
            ssl_policy=elb.SslPolicy.RECOMMENDED_TLS if secure else None,
            open=False,
            # forward only, as the production listener (the test rule catches every path)
            default_action=elb.ListenerAction.forward([self.target_groups[1]]),
        )
        for cidr in test_cidrs:
            self.security_group.add_ingress_rule(
                ec2.Peer.ipv4(cidr), ec2.Port.tcp(test_port), "blue/green test traffic"
            )
        if not secure:
            acknowledge_control(
                test_listener,
                "The blue/green test listener forwards only (ECS native blue/green refuses "
                "listeners that mix forward and redirect actions), and without a certificate "
                "there is no HTTPS listener to redirect to.",
                "CT.ELASTICLOADBALANCING.PR.1",
            )
        self.test_listener = test_listener
        test_rule = elb.ApplicationListenerRule(
            self,
            "TestRule",
            listener=test_listener,
            priority=FIRST_RULE_PRIORITY,
            conditions=[elb.ListenerCondition.path_patterns(patterns)],
            action=elb.ListenerAction.forward([self.target_groups[1]]),
        )
        return ecs.AlternateTarget(
            "Alternate",
            role=self._blue_green_role(),
            alternate_target_group=self.target_groups[1],
            production_listener=ecs.ListenerRuleConfiguration.application_listener_rule(
                self.rules[0]
            ),
            test_listener=ecs.ListenerRuleConfiguration.application_listener_rule(test_rule),
        )

    def _blue_green_role(self) -> iam.Role:
        """The role ECS assumes to move the production rule between the target groups."""
        return ecs_infrastructure_role(
            self,
            "BlueGreenRole",
            policy_name="AmazonECSInfrastructureRolePolicyForLoadBalancers",
            description="Lets ECS shift the load balancer's rules between blue and green",
            reason="The role ECS assumes to swap listener rules between blue and green target "
            "groups",
        )

    def _alias_record(self, domain: DomainOptions) -> route53.ARecord:
        from aws_cdk import aws_route53 as route53
        from aws_cdk import aws_route53_targets as route53_targets

        """The domain's A record, an alias of the load balancer (no charge for alias queries,
        and it follows the load balancer's changing addresses)."""
        return route53.ARecord(
            self,
            "AliasRecord",
            zone=domain.hosted_zone,
            record_name=domain.domain_name,
            target=route53.RecordTarget.from_alias(
                route53_targets.LoadBalancerTarget(self.load_balancer)
            ),
        )

    def _access_log_bucket(self, days: int, removal_policy: RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            # ALB access log delivery writes with SSE-S3 only; KMS keys are not supported.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
            # Always kept, even by a failed first create: the load balancer writes a test
            # object at once, and CloudFormation cannot delete a bucket that holds one (the
            # rollback, or a DESTROY stack delete, would end in ROLLBACK_FAILED/DELETE_FAILED).
            # Its name is generated, so a retry never meets it.
            removal_policy=RemovalPolicy.RETAIN,
        )
        reasons = {
            "AwsSolutions::AwsSolutions-S1": "This bucket is where access logs are written; "
            "logging its own access would write logs about logs.",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled": "This bucket is the access "
            "log destination; logging its own access would write logs about logs.",
            "PCI.DSS.321::PCI.DSS.321-S3BucketLoggingEnabled": "This bucket is the access log "
            "destination; logging its own access would write logs about logs.",
            "NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS": "Load balancer access log "
            "delivery supports SSE-S3 only; the bucket is encrypted with SSE-S3.",
            "PCI.DSS.321::PCI.DSS.321-S3DefaultEncryptionKMS": "Load balancer access log "
            "delivery supports SSE-S3 only; the bucket is encrypted with SSE-S3.",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled": "Access logs expire "
            "after their retention; a second copy in another region is not kept for them.",
            "PCI.DSS.321::PCI.DSS.321-S3BucketReplicationEnabled": "Access logs expire after "
            "their retention; a second copy in another region is not kept for them.",
        }
        for rule, reason in reasons.items():
            acknowledge(bucket, reason, rule)
        # Control Tower CT.S3.PR.4: object events to EventBridge, set on the bucket itself
        # (CDK's event_bridge_enabled would add a notifications function outside the VPC).
        cfn = bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        for control, reason in (
            (
                "CT.S3.PR.2",
                "The access-log destination; logging its own access would write logs about logs.",
            ),
            (
                "CT.S3.PR.9",
                "Object Lock would keep the load balancer's first objects for its "
                "whole retention, past any cleanup; logs expire by the lifecycle rule instead.",
            ),
            (
                "CT.S3.PR.10",
                "Load balancer access log delivery supports SSE-S3 only; the "
                "bucket is encrypted with SSE-S3.",
            ),
        ):
            acknowledge_control(bucket, reason, control)
        return bucket

    def _alarms(self, cluster: TradingCluster) -> dict[str, cloudwatch.Alarm]:
        alb = self.load_balancer.metrics
        five = Duration.minutes(5)
        specs: dict[str, tuple[cloudwatch.IMetric, float]] = {
            "Target5xx": (
                alb.http_code_target(
                    elb.HttpCodeTarget.TARGET_5XX_COUNT, period=five, statistic="Sum"
                ),
                10,
            ),
            # blue or green, whichever is live
            "UnhealthyHosts": (self._across_groups(self.metric_unhealthy_hosts()), 1),
            "LatencyP99": (alb.target_response_time(period=five, statistic="p99"), 1.0),
        }
        alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (metric, threshold) in specs.items():
            alarm = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                metric=metric,
                threshold=threshold,
                evaluation_periods=3 if name == "UnhealthyHosts" else 1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"Public load balancer: {name} reached {threshold}",
            )
            cluster.alarms.notify(alarm)
            alarms[name] = alarm
        return alarms

    def metric_healthy_hosts(self) -> list[cloudwatch.Metric]:
        """Healthy targets per target group (blue, then green), the minimum per minute."""
        return self._host_metrics("HealthyHostCount", "Minimum")

    def metric_unhealthy_hosts(self) -> list[cloudwatch.Metric]:
        """Unhealthy targets per target group (blue, then green), the maximum per minute."""
        return self._host_metrics("UnHealthyHostCount", "Maximum")  # CloudWatch spells it so

    def _host_metrics(self, metric_name: str, statistic: str) -> list[cloudwatch.Metric]:
        """Named by the load balancer's and groups' full names, attributes CloudFormation
        returns as they are: CDK's own target-group metrics cut the load balancer's name out
        of the listener's ARN (Fn::Split), which a dashboard or alarm in another stack cannot
        do on a value read with Fn::GetStackOutput."""
        return [
            cloudwatch.Metric(
                namespace="AWS/ApplicationELB",
                metric_name=metric_name,
                dimensions_map={
                    "LoadBalancer": self.load_balancer.load_balancer_full_name,
                    "TargetGroup": group.target_group_full_name,
                },
                statistic=statistic,
                period=Duration.minutes(1),
            )
            for group in self.target_groups
        ]

    def _across_groups(self, metrics: list[cloudwatch.Metric]) -> cloudwatch.IMetric:
        """A target group metric over blue and green, whichever is live."""
        if len(metrics) == 1:
            return metrics[0]
        return cloudwatch.MathExpression(
            expression=f"MAX([{', '.join(f'g{i}' for i in range(len(metrics)))}])",
            using_metrics={f"g{i}": metric for i, metric in enumerate(metrics)},
            period=Duration.minutes(1),
        )

    def _web_acl(self, key: kms.IKey, removal_policy: RemovalPolicy) -> None:
        from aws_cdk import aws_wafv2 as wafv2

        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=index,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group
                    )
                ),
                visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                    cloud_watch_metrics_enabled=True,
                    metric_name=group,
                    sampled_requests_enabled=True,
                ),
            )
            for index, group in enumerate(_MANAGED_RULE_GROUPS)
        ]
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True,
                metric_name="TradingEdge",
                sampled_requests_enabled=True,
            ),
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.load_balancer.load_balancer_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        # WAF logs only to a group whose name starts aws-waf-logs-, so CloudFormation cannot
        # generate it; the group is retained, so its name ends in a part of the stack's ID:
        # a stack deleted and deployed again gets a new one and never meets the old group.
        waf_logs = logs.LogGroup(
            self,
            "WebAclLogs",
            log_group_name=Fn.join(
                "-",
                [
                    f"aws-waf-logs-{Names.unique_resource_name(self, max_length=80)}",
                    _stack_id_suffix(),
                ],
            ),
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=key,
            removal_policy=removal_policy,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "WebAclLogging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[
                Stack.of(self).format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=waf_logs.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                    single_header={"Name": "authorization"}
                )
            ],
        )


def _stack_id_suffix() -> str:
    """The last part of the stack's ID, a GUID CloudFormation draws when it creates the
    stack (12 lower-case hex digits): unique to this stack's life, for a name AWS fixes the
    shape of on a resource that outlives the stack."""
    guid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.select(4, Fn.split("-", guid))


# CDK's placeholder rule: it matches no traffic (no address is 255.255.255.255, ICMP type 252
# does not exist), and its presence keeps EC2 from adding its allow-all egress rule.
_NO_TRAFFIC = {
    "cidrIp": "255.255.255.255/32",
    "description": "Disallow all traffic",
    "ipProtocol": "icmp",
    "fromPort": 252,
    "toPort": 86,
}


@jsii.implements(IResolvable)
class _EgressOrNone:
    """A security group's inline egress rules as CDK renders them, or the no-traffic rule when
    it renders none.

    EC2 gives a security group created without inline egress rules an allow-all egress rule
    (AWS::EC2::SecurityGroup: "if you do not add egress rules, we add egress rules that allow
    all outbound IPv4 and IPv6 traffic"). CDK removes its no-traffic placeholder as soon as a
    rule is added, even one it writes as a separate AWS::EC2::SecurityGroupEgress (every rule
    to another security group), which leaves the group with none inline and so open to all.
    """

    def __init__(self, rules: object) -> None:
        self._rules = rules

    @property
    def creation_stack(self) -> list[str]:
        return []

    @property
    def type_hint(self) -> None:
        return None

    def resolve(self, context: IResolveContext) -> object:
        return context.resolve(self._rules) or [_NO_TRAFFIC]

    def to_string(self) -> str:
        return Token.as_string(self)


def _validate(
    scope: Construct,
    owner: str,
    *,
    cluster: TradingCluster,
    service: MeshedFargateService,
    path_patterns: object,
    certificate: acm.ICertificate | None,
    domain: DomainOptions | None,
    ingress_cidrs: object,
    test_cidrs: object,
    test_port: int,
    health: TargetHealthOptions | None,
    deregistration_delay: Duration,
    flags: dict[str, object],
    access_log_days: int,
    removal_policy: RemovalPolicy,
) -> None:
    """Every prop of one edge, checked together: types, values, then the service it fronts
    and the quotas of its load balancer and security group."""
    check_type(owner, "cluster", cluster, TradingCluster)
    check_type(owner, "service", service, MeshedFargateService)
    check_type(owner, "domain", domain, DomainOptions)
    check_type(owner, "health", health, TargetHealthOptions)
    check_removal_policy(owner, removal_policy)
    problems = Problems(owner)
    if cluster is None or service is None:
        problems.note("cluster and service are required")
    blue_green = service is not None and service.release.behind_load_balancer
    if blue_green and path_patterns is not None:
        problems.add(
            "path_patterns",
            path_patterns,
            "None with blue/green: ECS native blue/green does not support a listener whose "
            "rules mix forward and fixed-response actions, so every path goes to the service",
        )
    if blue_green:
        patterns: list[str] | None = [EVERY_PATH]
    elif path_patterns is None:
        patterns = list(DEFAULT_PATHS)
    else:
        patterns = _strings(problems, "path_patterns", path_patterns, "path patterns")
    if patterns is not None:
        _check_patterns(problems, scope, patterns, blue_green)
    if service is not None:
        _check_service(problems, cluster, service)
    if certificate is not None and problems.of_kind("certificate", certificate, CERTIFICATE):
        # "Certificates in ACM are regional resources": an ALB takes one of its own region
        # (ACM User Guide, Supported Regions).
        shown = certificate.certificate_arn
        problems.in_region("certificate", shown, region_of(certificate, "certificate_arn"), scope)
    if certificate is not None and domain is not None:
        problems.note("certificate and domain were both given (allowed: one of them)")
    if domain is not None:
        # a second alias record of one name in one zone fails the deployment
        problems.unique(
            "domain", domain.domain_name, scope, domain_key(domain), "in its hosted zone"
        )
    if cluster is not None and not cluster.vpc.public_subnets:
        problems.add(
            "cluster",
            f"{cluster.vpc.node.path} without public subnets",
            "a cluster whose VPC has public subnets: the load balancer is internet-facing",
        )
    ingress = _strings(problems, "ingress_cidrs", ingress_cidrs, "IPv4 CIDRs")
    tests = _strings(problems, "test_cidrs", test_cidrs, "IPv4 CIDRs")
    if not blue_green and tests:
        problems.note("test_cidrs apply to blue/green only (allowed: () with rolling)")
    _check_cidrs(problems, ingress, tests)
    ingress, tests = ingress or [], tests or []
    problems.int_range("test_port", test_port, 1024, 65535)
    problems.seconds("deregistration_delay", deregistration_delay, 0, 3600)
    for prop, flag in flags.items():
        problems.boolean(prop, flag)
    problems.int_range("access_log_days", access_log_days, 1, 3650)
    if not problems.problems:
        _check_security_groups(problems, scope, service, ingress, tests, certificate or domain)
    problems.raise_if_any()


def domain_key(domain: DomainOptions) -> tuple[object, ...]:
    """The registry key of a domain's alias record: its zone (by id, or by construct when
    the id is a token) and its name, without the root dot."""
    zone = domain.hosted_zone
    zone_id = zone.node.path if is_token(zone.hosted_zone_id) else zone.hosted_zone_id
    return ("alias record", zone_id, domain.domain_name.rstrip("."))


def _strings(problems: Problems, prop: str, values: object, what: str) -> list[str] | None:
    """A list of strings, or one string as a list of one (not its characters); None when
    it is neither (and noted)."""
    if isinstance(values, str) and not is_token(values):
        return [values]
    before = len(problems.problems)
    listed = problems.sequence(prop, values, what)
    return listed if len(problems.problems) == before else None


def _check_cidrs(problems: Problems, ingress: list[str] | None, tests: list[str] | None) -> None:
    """IPv4 ranges (a token is left to CloudFormation), each once; an edge nobody may reach
    is a mistake."""
    if ingress == []:
        problems.add("ingress_cidrs", ingress, "at least one IPv4 CIDR, such as '0.0.0.0/0'")
    for cidr in [*(ingress or []), *(tests or [])]:
        problems.cidr("ingress_cidrs/test_cidrs", cidr, 0, 32, concrete=False)
    for prop, cidrs in (("ingress_cidrs", ingress or []), ("test_cidrs", tests or [])):
        if len(set(cidrs)) != len(cidrs):
            problems.add(prop, cidrs, "each CIDR once")


def _check_patterns(
    problems: Problems, scope: Construct, patterns: list[str], blue_green: bool
) -> None:
    if not patterns:
        problems.add("path_patterns", patterns, "at least one path pattern")
    for pattern in patterns:
        problems.pattern(
            "path_patterns",
            pattern,
            _PATH_PATTERN,
            "1 to 128 of A-Z a-z 0-9 _-.$/~\"'@:+?*&, starting with '/' (or a wildcard)",
        )
        if _wildcards([pattern]) > _MAX_WILDCARDS_PER_RULE:
            problems.add(
                "path_patterns", pattern, f"at most {_MAX_WILDCARDS_PER_RULE} wildcards (* ?)"
            )
    if len(set(patterns)) != len(patterns):
        problems.add("path_patterns", patterns, "each pattern once")
    limit = quota(scope, "alb-rules", ALB_RULES)
    rules = len(_rules_of(patterns)) + int(blue_green)  # the production rules, the test rule
    if rules > limit:
        problems.add(
            "path_patterns",
            f"{len(patterns)} patterns",
            f"patterns that fit {limit} listener rules of at most {_MAX_PATTERNS_PER_RULE} "
            f"patterns and {_MAX_WILDCARDS_PER_RULE} wildcards each (they need {rules}; raise "
            f"the account's quota and set the context {QUOTA_CONTEXT}alb-rules)",
        )


def _check_security_groups(
    problems: Problems,
    scope: Construct,
    service: MeshedFargateService,
    ingress: list[str],
    tests: list[str],
    secure: object,
) -> None:
    """The load balancer's group admits each ingress CIDR on 80 (and 443 with HTTPS) and each
    test CIDR on the test port; the service's group admits the load balancer too. Each stays
    within the account's quota of inbound rules per security group (60 by default)."""
    limit = quota(scope, "security-group-rules", SECURITY_GROUP_RULES)
    edge_rules = len(ingress) * (2 if secure is not None else 1) + len(tests)
    service_rules = service._security_group_rules()[0] + 1
    for prop, group, count in (
        ("ingress_cidrs/test_cidrs", "the load balancer's", edge_rules),
        ("service", f"{service.node.path!r}'s", service_rules),
    ):
        if count > limit:
            problems.add(
                prop,
                f"{count} inbound rules",
                f"at most {limit} inbound rules in {group} security group (raise the account's "
                f"quota and set the context {QUOTA_CONTEXT}security-group-rules)",
            )


def _check_service(
    problems: Problems, cluster: TradingCluster | None, service: MeshedFargateService
) -> None:
    """The fronted service: on this cluster, public, one slot, and no other edge's."""
    if service.port is None:
        problems.add(
            "service",
            service.name,
            f"a service with a port; {service.node.path!r} is a worker (port=None), which "
            "listens on nothing a load balancer could reach",
        )
        return
    if cluster is not None and service.cluster is not cluster:
        problems.add("service", service.name, "a service on this cluster")
    if service.behind_load_balancer:
        problems.add("service", service.name, "a service no other TradingEdge fronts")
    if not service.public:
        problems.add(
            "service",
            service.name,
            "a service with public=True (its mesh listener then takes the load balancer's "
            "plain HTTP; on the mutual-TLS mesh, mutual TLS still guards its listener for "
            "declared callers)",
        )
    if len(service.services) > 1:
        problems.add(
            "service",
            service.name,
            "a single-slot service (Release.rolling() or Release.blue_green()); weighted "
            "slots are routed by the mesh, not by a load balancer",
        )


DEFAULT_PATHS = ("/api/*", "/health")
"""The paths a rolling release's load balancer routes to its service by default."""
EVERY_PATH = "/*"
"""The one pattern of a blue/green edge: its listeners forward every path to the service."""


def _routed_paths(path_patterns: Sequence[str] | None, service: MeshedFargateService) -> list[str]:
    """The patterns the production rules match: every path with blue/green."""
    if service.release.behind_load_balancer:
        return [EVERY_PATH]
    return _listed(DEFAULT_PATHS if path_patterns is None else path_patterns)


def _listed(values: Sequence[str] | str | None) -> list[str]:
    """A sequence prop as a list; a bare string is one value, not its characters."""
    if values is None:
        return []
    return [values] if isinstance(values, str) else list(values)


def _wildcards(patterns: list[str]) -> int:
    """Wildcards of the patterns (a token's text, '${Token[...]}', has none)."""
    return sum(p.count("*") + p.count("?") for p in patterns if isinstance(p, str))


def _rules_of(patterns: list[str]) -> list[list[str]]:
    """Patterns in rule order, as few to a rule as ALB allows: up to 5 values and 5 wildcards
    per rule (so patterns that fit 5 to a rule split as they always did)."""
    rules: list[list[str]] = []
    for pattern in patterns:
        if (
            rules
            and len(rules[-1]) < _MAX_PATTERNS_PER_RULE
            and _wildcards([*rules[-1], pattern]) <= _MAX_WILDCARDS_PER_RULE
        ):
            rules[-1].append(pattern)
        else:
            rules.append([pattern])
    return rules
