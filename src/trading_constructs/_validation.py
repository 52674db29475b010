"""Shared input checks: every construct and options class reports bad props the same way.

Problems are collected, not raised one by one, so a user fixes a whole call in one pass.
Unresolved tokens are skipped: CloudFormation checks those at deploy time, we cannot. Where
CDK itself needs a value at synth time (a count of NAT gateways, a port it checks), a token is
rejected with the reason instead.

Names AWS keeps unique (per account and region, per VPC, per mesh) are claimed in an app-wide
registry as constructs are built, so that a second claim fails at synth, naming both
constructs, instead of at deploy time.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk.region_info import RegionInfo
from constructs import Dependable, IConstruct

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

# CloudWatch metric names and namespaces: 1 to 255 printable ASCII characters, spaces
# included, at least one of them not a space; a namespace does not start with ':' (CloudWatch
# API reference, Metric and MetricStreamFilter) nor with 'AWS/', which AWS keeps for its own
# services (CloudWatch concepts, Namespaces).
CLOUDWATCH_NAME = r"(?=[ -~]*[!-~])[ -~]{1,255}"
CLOUDWATCH_NAMESPACE = r"(?!AWS/)(?!:)" + CLOUDWATCH_NAME


class InvalidPropType(TypeError, ValueError):
    """A prop of the wrong type. It is a ``TypeError``, and also the ``ValueError`` that every
    other bad prop raises, so ``except ValueError`` catches all bad input."""


@dataclass(frozen=True)
class ObjectKind:
    """A kind of CDK object a prop takes, and how to make one from the string a user may
    have instead (an ARN, an ID, an alias)."""

    attribute: str
    """An attribute every object of the kind has (jsii interfaces cannot be isinstance-d)."""
    allowed: str
    from_string: str
    """How to build one from a string, suggested when a string is given."""
    prefixes: tuple[str, ...] = ("arn:",)
    """Strings that look like one: they get the suggestion."""


KEY = ObjectKind(
    "key_arn",
    "an aws_kms.IKey",
    "kms.Key.from_key_arn(scope, id, arn), or kms.Alias.from_alias_name(scope, id, 'alias/...')",
    ("arn:", "alias/"),
)
CERTIFICATE = ObjectKind(
    "certificate_arn",
    "an aws_certificatemanager.ICertificate",
    "acm.Certificate.from_certificate_arn(scope, id, arn)",
)
VPC = ObjectKind(
    "vpc_id", "an aws_ec2.IVpc", "ec2.Vpc.from_lookup(scope, id, vpc_id=...)", ("vpc-",)
)
SECRET = ObjectKind(
    "secret_arn",
    "an aws_secretsmanager.ISecret",
    "sm.Secret.from_secret_complete_arn(scope, id, arn)",
)
FUNCTION = ObjectKind(
    "function_arn", "an aws_lambda.IFunction", "lambda_.Function.from_function_arn(scope, id, arn)"
)
SECURITY_GROUP = ObjectKind(
    "security_group_id",
    "an aws_ec2.ISecurityGroup",
    "ec2.SecurityGroup.from_security_group_id(scope, id, 'sg-...')",
    ("sg-",),
)
HOSTED_ZONE = ObjectKind(
    "hosted_zone_id",
    "an aws_route53.IHostedZone",
    "route53.HostedZone.from_hosted_zone_attributes(scope, id, hosted_zone_id=..., zone_name=...)",
    ("Z", "/hostedzone/"),
)
TARGET_GROUP = ObjectKind(
    "target_group_arn",
    "an aws_elasticloadbalancingv2.IApplicationTargetGroup",
    "elb.ApplicationTargetGroup.from_target_group_attributes(scope, id, target_group_arn=arn)",
)
CONNECTABLE = ObjectKind(
    "connections",
    "an aws_ec2.IConnectable (the load balancer or its security group)",
    "ec2.SecurityGroup.from_security_group_id(scope, id, 'sg-...')",
    ("sg-",),
)
ALARM = ObjectKind(
    "add_alarm_action",
    "an aws_cloudwatch.Alarm",
    "cloudwatch.Alarm.from_alarm_arn(scope, id, arn) cannot take actions: notify an Alarm "
    "of this app",
)
SECRET_ATTACHMENT_TARGET = ObjectKind(
    "as_secret_attachment_target",
    "an aws_secretsmanager.ISecretAttachmentTarget (an aws_rds.DatabaseInstance or "
    "DatabaseCluster)",
    "rds.DatabaseInstance.from_database_instance_attributes(...) has no endpoint to attach: "
    "attach the database of this app",
)


def is_token(value: object) -> bool:
    """True for a value CDK resolves later (a token string, number or list)."""
    if isinstance(value, float) and not math.isfinite(value):
        return False  # NaN and infinities are never tokens, and jsii cannot carry them
    if isinstance(value, (tuple, set, frozenset, dict)):
        return False  # never a token, and jsii cannot carry a tuple or a set
    if isinstance(value, list):
        # A list token is one encoded string; other lists may hold what jsii cannot carry.
        return len(value) == 1 and isinstance(value[0], str) and Token.is_unresolved(value)
    if value is None or isinstance(value, bool):
        return False
    if not isinstance(value, (str, int, float)) and not _jsii_carries(value):
        return False  # a plain Python object (a dataclass, a function) is never a token
    return Token.is_unresolved(value)


def _jsii_carries(value: object) -> bool:
    """Whether jsii can pass the object to CDK: one of CDK's, or a class implementing a CDK
    interface (an IResolvable of the user's, for example)."""
    return hasattr(value, "__jsii_ref__") or hasattr(type(value), "__jsii_ifaces__")


@dataclass
class Problems:
    """The bad props of one call, raised together as one ``ValueError``."""

    owner: str
    problems: list[str] = field(default_factory=list)

    def add(self, prop: str, value: object, allowed: str) -> None:
        if isinstance(value, (int, float)) and is_token(value):
            # A number token is a huge negative number; its string form says what it is.
            value = Token.as_string(value)
        self.problems.append(f"{prop}={value!r} is not allowed (allowed: {allowed})")

    def note(self, message: str) -> None:
        self.problems.append(message)

    def extend(self, other: Iterable[str]) -> None:
        self.problems.extend(other)

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        if len(self.problems) == 1:
            raise ValueError(f"{self.owner}: {self.problems[0]}")
        lines = "\n".join(f"  - {p}" for p in self.problems)
        raise ValueError(f"{self.owner}: {len(self.problems)} invalid props:\n{lines}")

    # -- checks that skip tokens ---------------------------------------------------------

    def seconds(self, prop: str, value: object, low: int, high: int) -> None:
        """A Duration of whole seconds within a range (ECS and scaling take whole seconds)."""
        self.duration(prop, value, low, high, "seconds")

    def millis(self, prop: str, value: object, low: int, high: int) -> None:
        """A Duration of whole milliseconds within a range (Envoy and App Mesh timeouts)."""
        self.duration(prop, value, low, high, "ms")

    def duration(self, prop: str, value: object, low: int, high: int, unit: str) -> None:
        """A Duration that is a whole number of ``unit`` ('ms', 'seconds', 'minutes') from
        ``low`` to ``high``: a fraction would otherwise fail inside CDK's conversion, with no
        prop named."""
        if not isinstance(value, Duration):
            self.add(prop, value, "an aws_cdk.Duration")
            return
        if value.is_unresolved():
            return
        amount = _DURATION_UNITS[unit](value)
        if amount % 1:
            self.add(prop, value.to_human_string(), f"whole {_WHOLE_NAMES[unit]}")
        elif not low <= amount <= high:
            shown = f"{low} ms to {high} ms" if unit == "ms" else f"{low} to {high} {unit}"
            self.add(prop, value.to_human_string(), shown)

    def int_range(self, prop: str, value: int | float, low: int, high: int) -> None:
        if is_token(value):
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(prop, value, f"an integer from {low} to {high}")

    def one_of(self, prop: str, value: object, allowed: Sequence[object]) -> None:
        if is_token(value):
            return
        if value not in allowed:
            self.add(prop, value, ", ".join(repr(a) for a in allowed))

    def pattern(self, prop: str, value: str, regex: str, allowed: str) -> None:
        if is_token(value):
            return
        if not isinstance(value, str) or re.fullmatch(regex, value) is None:
            self.add(prop, value, allowed)

    def timeout_below_interval(self, timeout: Duration, interval: Duration) -> None:
        """A health check's timeout must end before the next check starts."""
        if timeout.is_unresolved() or interval.is_unresolved():
            return
        if timeout.to_seconds() >= interval.to_seconds():
            self.note(
                f"timeout={timeout.to_human_string()} is not shorter than "
                f"interval={interval.to_human_string()} (allowed: timeout < interval)"
            )

    def dns_name(self, prop: str, value: str, max_length: int = 253) -> None:
        """A lower-case DNS name of dot-separated labels, as Route 53 and Cloud Map take."""
        if is_token(value):
            return
        ok = (
            isinstance(value, str)
            and 0 < len(value) <= max_length
            and all(_DNS_LABEL.match(label) for label in value.split("."))
        )
        if not ok:
            self.add(
                prop,
                value,
                "a lower-case DNS name: dot-separated labels of 1-63 letters, digits or "
                f"hyphens, not starting or ending with a hyphen, at most {max_length} "
                "characters in all",
            )

    def cidr(
        self, prop: str, value: str, min_prefix: int, max_prefix: int, *, concrete: bool = True
    ) -> None:
        """An IPv4 CIDR. ``concrete``: CDK subdivides it at synth time, so a token cannot pass;
        otherwise a token is left to CloudFormation."""
        if is_token(value):
            if concrete:
                self.add(prop, value, "a concrete CIDR string; CDK splits it into subnets at synth")
            return
        if isinstance(value, str) and "/" not in value and _is_address(value):
            # ipaddress reads a bare address as a /32; CDK and EC2 refuse it without a mask
            self.add(prop, value, f"a CIDR with its mask, such as '{value}/{max_prefix}'")
            return
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except (ValueError, TypeError):
            self.add(prop, value, "an IPv4 CIDR block such as '10.0.0.0/16'")
            return
        if not min_prefix <= network.prefixlen <= max_prefix:
            self.add(prop, value, f"a prefix length from /{min_prefix} to /{max_prefix}")

    # -- types -----------------------------------------------------------------------------

    def of_kind(self, prop: str, value: object, kind: ObjectKind) -> bool:
        """An object of ``kind``; a string that looks like one gets the way to build one."""
        if value is not None and hasattr(value, kind.attribute):
            return True
        allowed = kind.allowed
        if isinstance(value, str) and value.startswith(kind.prefixes):
            allowed = f"{allowed}; from a string: {kind.from_string}"
        self.add(prop, value, allowed)
        return False

    def boolean(self, prop: str, value: object) -> None:
        """True or False: a string such as 'false' would count as true."""
        if not isinstance(value, bool) and not is_token(value):
            self.add(prop, value, "True or False")

    def sequence(self, prop: str, values: object, item: str) -> list[Any]:
        """A list or tuple prop, as a list; a lone item, a string, None, a set or a list token
        (whose items CDK cannot count at synth) is noted and gives an empty list."""
        if isinstance(values, (list, tuple)) and not is_token(values):
            return list(values)
        if is_token(values):
            self.add(prop, values, f"a list of {item}; a list token has no items at synth")
        else:
            self.add(prop, values, f"a list of {item}, such as [{item}, ...]")
        return []

    def mapping(self, prop: str, value: object, what: str) -> dict[Any, Any]:
        """A mapping prop, as a dict; anything else (a list of pairs, None) is noted."""
        if isinstance(value, Mapping):
            return dict(value)
        allowed = f"a mapping of {what}, such as {{'NAME': value}}"
        if isinstance(value, (list, tuple)):
            allowed += ", not a list of pairs (wrap it in dict(...))"
        self.add(prop, value, allowed)
        return {}

    def at_most(self, prop: str, value: object, limit: object, why: str) -> None:
        """A number no greater than another prop's (both skipped when either is a token or
        not a number: their own checks name those)."""
        numbers = [v for v in (value, limit) if isinstance(v, (int, float)) and not is_token(v)]
        if len(numbers) == 2 and not isinstance(value, bool) and value > limit:  # type: ignore[operator]
            self.add(prop, value, f"at most {limit}: {why}")

    def metric_period(self, prop: str, value: object) -> None:
        """A CloudWatch period: 1, 5, 10, 30 or a multiple of 60 seconds."""
        if not isinstance(value, Duration):
            self.add(prop, value, "an aws_cdk.Duration")
            return
        if value.is_unresolved():
            return
        seconds = value.to_seconds(integral=False)
        if not (seconds in (1, 5, 10, 30) or (seconds >= 60 and seconds % 60 == 0)):
            self.add(prop, value.to_human_string(), "1, 5, 10 or 30 seconds, or a multiple of 60")

    def encoded_size(self, prop: str, value: object, limit: int, why: str) -> None:
        """A value whose JSON encoding fits in ``limit`` bytes (a token counts as its
        placeholder): a size CloudFormation or the service would refuse at deploy time."""
        try:
            size = len(json.dumps(value, default=str).encode())
        except (TypeError, ValueError):
            return  # not data: its own check names it
        if size > limit:
            self.add(prop, f"<{size} bytes as JSON>", f"at most {limit} bytes: {why}")

    def concrete(self, prop: str, value: object, why: str) -> bool:
        """A value synthesis needs: a token is rejected, saying why."""
        if is_token(value):
            self.add(prop, value, f"a concrete value, not a token: {why}")
            return False
        return True

    # -- relations ---------------------------------------------------------------------------

    def unique(
        self, prop: str, value: object, scope: IConstruct, key: tuple[object, ...], where: str
    ) -> None:
        """A name no other construct of the app holds under ``key`` (``where`` says where
        AWS keeps it unique)."""
        if is_token(value):
            return
        holder = holder_of(scope, key)
        if holder is not None:
            self.add(prop, value, f"a name unique {where}; {holder.node.path!r} already has it")

    def in_region(self, prop: str, shown: object, region: str | None, scope: IConstruct) -> None:
        """A resource in the stack's own region, when both regions are known at synth."""
        home = stack_region(scope)
        if region is None or home is None or region == home:
            return
        self.add(prop, shown, f"one in the stack's region {home} (this one is in {region})")

    def at_home(self, prop: str, arn: object, scope: IConstruct, *, regional: bool = True) -> None:
        """An ARN of the stack's partition (``aws``, ``aws-cn``, ``aws-us-gov``...) and, for a
        regional resource, of its region: IAM, KMS and the services that call each other never
        cross a partition, and most never cross a region. Skipped where synth knows neither."""
        partition = partition_of_arn(arn)
        home_region = stack_region(scope)
        home = _partition_of_region(home_region)
        if partition is not None and home is not None and partition != home:
            self.add(
                prop,
                arn,
                f"an ARN of the stack's partition {home!r} (region {home_region}); this one is "
                f"of {partition!r}",
            )
        elif regional:
            self.in_region(prop, arn, region_of_arn(arn), scope)

    def free_id(self, scope: IConstruct, id: object) -> None:
        """An id no child of ``scope`` has yet: a factory that builds under ``scope`` would
        otherwise fail inside the constructs library, naming neither its call nor the prop."""
        if isinstance(id, str) and scope.node.try_find_child(id) is not None:
            where = scope.node.path or "the app's root"
            self.add("id", id, f"an id no other construct under {where!r} has")

    def dependable(self, prop: str, value: object) -> None:
        """Something a construct can depend on (a construct, a ``DependencyGroup``); None is
        left to the caller's default."""
        if value is not None and not is_dependable(value):
            self.add(
                prop,
                value,
                "a construct or constructs.DependencyGroup (an IDependable), not its name",
            )

    def argument(self, prop: str, value: object, kind: ObjectKind | type) -> bool:
        """A method argument of ``kind`` (None too is wrong here: it has no default)."""
        if isinstance(kind, ObjectKind):
            return self.of_kind(prop, value, kind)
        if isinstance(value, kind):
            return True
        self.add(prop, value, f"a {kind.__name__}")
        return False


_DURATION_UNITS = {
    "ms": lambda d: d.to_milliseconds(integral=False),
    "seconds": lambda d: d.to_seconds(integral=False),
    "minutes": lambda d: d.to_minutes(integral=False),
}
_WHOLE_NAMES = {"ms": "milliseconds", "seconds": "seconds", "minutes": "minutes"}

# The removal policies every resource type takes; SNAPSHOT is only for the types that keep
# a snapshot (RDS, EBS, ElastiCache, Neptune, Redshift, DocumentDB): CloudFormation refuses it
# on a repository, key, log group, secret or bucket.
REMOVAL_POLICIES = (
    RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    RemovalPolicy.RETAIN,
    RemovalPolicy.DESTROY,
)


def check_removal_policy(owner: str, value: object) -> None:
    """A removal policy every resource of the construct supports: its type, then no
    SNAPSHOT (none of our stateful resources can be snapshotted)."""
    check_type(owner, "removal_policy", value, RemovalPolicy)
    if value is not None and value not in REMOVAL_POLICIES:
        names = ", ".join(f"RemovalPolicy.{p.name}" for p in REMOVAL_POLICIES)
        raise ValueError(
            f"{owner}: removal_policy=RemovalPolicy.{getattr(value, 'name', value)} is not "
            f"allowed (allowed: {names}; the repositories, keys, log groups and secrets it "
            "keeps cannot be snapshotted)"
        )


def check_argument(owner: str, prop: str, value: object, kind: ObjectKind | type) -> None:
    """A method's argument of the right kind, checked before it reaches jsii (where a wrong
    type fails as a SerializationError) or Python (an AttributeError), neither naming it."""
    problems = Problems(owner)
    if not problems.argument(prop, value, kind):
        raise InvalidPropType(f"{owner}: {problems.problems[0]}")


def is_dependable(value: object) -> bool:
    """Whether a construct can depend on it (a construct, a dependency group)."""
    if value is None or isinstance(value, (str, int, float, bool, list, tuple, dict)):
        return False
    try:
        Dependable.of(value)
    except Exception:  # jsii raises a bare Exception for what is not an IDependable
        return False
    return True


def _is_address(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def check_type(owner: str, prop: str, value: Any, expected: type | tuple[type, ...]) -> None:
    """Raise early, when a wrong type would otherwise fail deep inside jsii (``None`` passes:
    it means the default)."""
    if value is None or isinstance(value, expected):
        return
    names = (
        " or ".join(t.__name__ for t in expected)
        if isinstance(expected, tuple)
        else expected.__name__
    )
    raise InvalidPropType(f"{owner}: {prop}={value!r} is not allowed (allowed: {names})")


def check_items(problems: Problems, prop: str, values: object, expected: type) -> list[Any]:
    """A sequence prop (a list or tuple, not a lone item or a string) of ``expected`` items;
    returns the good items."""
    listed = problems.sequence(prop, values, expected.__name__)
    good = []
    for index, value in enumerate(listed):
        if isinstance(value, expected):
            good.append(value)
        else:
            problems.add(f"{prop}[{index}]", value, expected.__name__)
    return good


def region_of_arn(arn: object) -> str | None:
    """The region field of a concrete ARN (None for a token, a global ARN or not an ARN)."""
    if not isinstance(arn, str) or is_token(arn):
        return None
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[3]:
        return None
    return parts[3]


def partition_of_arn(arn: object) -> str | None:
    """The partition field of a concrete ARN (None for a token or not an ARN)."""
    if not isinstance(arn, str) or is_token(arn):
        return None
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[1]:
        return None
    return parts[1]


def _partition_of_region(region: str | None) -> str | None:
    """The partition of a known region (None for a region CDK does not know)."""
    if region is None:
        return None
    partition = RegionInfo.get(region).partition
    return str(partition) if partition else None


def region_of(resource: Any, arn_attribute: str) -> str | None:
    """Where a resource lives, if synth knows: its ARN's region, else its environment's."""
    region = region_of_arn(getattr(resource, arn_attribute, None))
    if region is None:
        env = getattr(resource, "env", None)
        region = getattr(env, "region", None)
    return None if region is None or is_token(region) else str(region)


def check_key(problems: Problems, scope: IConstruct, key: Any, prop: str = "key") -> None:
    """A KMS key (a string gets the way to import one) in the stack's region: a KMS key lives
    in one region, and a multi-Region key's replica has an ARN of its own region (KMS
    Developer Guide, Multi-Region keys), so a key ARN of another region is a mistake."""
    if problems.of_kind(prop, key, KEY):
        shown = key.key_arn if not is_token(key.key_arn) else key.node.path
        before = len(problems.problems)
        problems.at_home(prop, key.key_arn, scope, regional=False)
        if len(problems.problems) == before:
            problems.in_region(prop, shown, region_of(key, "key_arn"), scope)


# -- names AWS keeps unique, claimed across one app --------------------------------------

# The root of each app (an App, or a bare Stack) -> claimed key -> the construct holding it.
_CLAIMS: weakref.WeakKeyDictionary[Any, dict[tuple[object, ...], IConstruct]] = (
    weakref.WeakKeyDictionary()
)


def environment_of(scope: IConstruct, *, regional: bool = True) -> tuple[str, ...] | None:
    """Where a name must be unique, as part of its registry key: the account and region of
    the construct's stack (the account alone for a global name). A stack that leaves either to
    deploy time may go anywhere, so its names are compared within that stack only. None
    outside a stack."""
    stack = _stack_of(scope)
    if stack is None:
        return None
    where = (stack.account, stack.region) if regional else (stack.account,)
    if any(is_token(part) for part in where):
        return ("stack", stack.node.path)
    return where


def stack_region(scope: IConstruct) -> str | None:
    """The region of the construct's stack, when known at synth."""
    stack = _stack_of(scope)
    return None if stack is None or is_token(stack.region) else stack.region


def _stack_of(scope: IConstruct) -> Stack | None:
    try:
        return Stack.of(scope)
    except RuntimeError:  # a construct outside any stack
        return None


def holder_of(scope: IConstruct, key: tuple[object, ...]) -> IConstruct | None:
    """The construct of ``scope``'s app that claimed ``key``, if it is still in the tree."""
    claims = _CLAIMS.get(scope.node.root)
    holder = claims.get(key) if claims else None
    if holder is None or not _in_tree(holder):
        return None
    return holder


def claim(construct: IConstruct, *keys: tuple[object, ...]) -> None:
    """Record that ``construct`` holds ``keys`` in its app (the first holder keeps a key)."""
    claims = _CLAIMS.setdefault(construct.node.root, {})
    for key in keys:
        holder = claims.get(key)
        if holder is None or not _in_tree(holder):
            claims[key] = construct


def _in_tree(construct: IConstruct) -> bool:
    """Whether the construct is still reachable from its root (a removed child is not)."""
    node: IConstruct | None = construct.node.root
    for part in construct.node.path.split("/") if construct.node.path else []:
        node = node.node.try_find_child(part) if node is not None else None
    return node is construct


def construct_owner(kind: str, scope_path: str, id: str) -> str:
    """How errors name a construct: ``TradingCluster 'Stack/Cluster'``."""
    path = f"{scope_path}/{id}" if scope_path else id
    return f"{kind} {path!r}"
