"""What a VPC's subnets must hold for what a construct puts in them.

A function in a VPC reaches AWS APIs through a NAT gateway or an interface endpoint: in a
public subnet it gets no public address (so no way out), and in isolated subnets only an
endpoint of the API's service takes its calls. CDK's own refusal of a public subnet names
a Lambda prop our users never see; this names the prop they gave.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2

from ._validation import Problems


def check_function_subnets(
    problems: Problems,
    prop: str,
    vpc: ec2.IVpc,
    selection: ec2.SubnetSelection,
    *,
    service: str,
) -> None:
    """Subnets a VPC function can call ``service`` (an endpoint's short name, such as
    'secretsmanager') from: no public subnet, and isolated subnets only where the VPC has
    that service's interface endpoint in this app."""
    try:
        selected = vpc.select_subnets(
            availability_zones=selection.availability_zones,
            one_per_az=selection.one_per_az,
            subnet_filters=selection.subnet_filters,
            subnet_group_name=selection.subnet_group_name,
            subnets=selection.subnets,
            subnet_type=selection.subnet_type,
        ).subnets
    except RuntimeError as error:  # a subnet group the VPC does not have
        problems.add(prop, _shown(selection), f"subnets of the VPC {vpc.node.path!r}: {error}")
        return
    ids = {subnet.subnet_id for subnet in selected}
    public = {subnet.subnet_id for subnet in vpc.public_subnets}
    isolated = {subnet.subnet_id for subnet in vpc.isolated_subnets}
    if ids & public:
        problems.add(
            prop,
            _shown(selection),
            "private subnets with egress (SubnetType.PRIVATE_WITH_EGRESS): a function in a "
            "public subnet gets no public address, so it reaches no AWS API",
        )
    elif ids and ids <= isolated and not _has_endpoint(vpc, service):
        problems.add(
            prop,
            _shown(selection),
            "private subnets with egress (SubnetType.PRIVATE_WITH_EGRESS), or isolated ones in "
            f"a VPC with a {service} interface endpoint (TradingCluster(interface_endpoints="
            "[...])): from isolated subnets alone the function cannot reach the API",
        )


def check_vpc_cidr(problems: Problems, prop: str, vpc: ec2.IVpc, why: str) -> None:
    """A VPC whose CIDR synth knows: an imported one without ``vpc_cidr_block`` fails inside
    CDK, naming neither the prop nor the way to import it."""
    try:
        vpc.vpc_cidr_block  # noqa: B018 - reading it is the check
    except RuntimeError:
        problems.add(
            prop,
            f"{vpc.node.path} without a CIDR",
            f"a VPC imported with vpc_cidr_block=... (ec2.Vpc.from_vpc_attributes): {why}",
        )


def _has_endpoint(vpc: ec2.IVpc, service: str) -> bool:
    """Whether the app has an interface endpoint of ``service`` in ``vpc``."""
    stack = Stack.of(vpc)
    vpc_id = stack.resolve(vpc.vpc_id)
    for node in vpc.node.root.node.find_all():
        if not isinstance(node, ec2.CfnVPCEndpoint):
            continue
        at = Stack.of(node)
        if (
            f".{service}" in str(at.resolve(node.service_name))
            and at.resolve(node.vpc_id) == vpc_id
        ):
            return True
    return False


def _shown(selection: ec2.SubnetSelection) -> str:
    subnet_type = selection.subnet_type
    if subnet_type is not None:
        return f"SubnetSelection(subnet_type=SubnetType.{subnet_type.name})"
    if selection.subnet_group_name is not None:
        return f"SubnetSelection(subnet_group_name={selection.subnet_group_name!r})"
    return "SubnetSelection(...)"
