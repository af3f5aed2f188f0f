"""The ``coparse_api_vpc``: public subnets for load balancers, private subnets for data stores and VPC functions."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import child
from infra import iam

VPC_NAME = "coparse_api_vpc"
ZONE_COUNT = 3
# Pinned layout of the /16: /20 blocks 0-2 are public, 8-10 private; the gaps leave room for more tiers.
PUBLIC_BLOCKS = (0, 1, 2)
PRIVATE_BLOCKS = (8, 9, 10)


def subnet_layout(cidr: str) -> tuple[list[str], list[str]]:
    """(public, private) subnet CIDRs, one per zone, carved deterministically from the VPC CIDR."""
    blocks = list(ipaddress.ip_network(cidr).subnets(new_prefix=20))
    return [str(blocks[i]) for i in PUBLIC_BLOCKS], [str(blocks[i]) for i in PRIVATE_BLOCKS]


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    stack: str
    cidr: str = "10.0.0.0/16"
    """Private /16; see :func:`subnet_layout`."""
    nat_gateways: str = "perAz"
    """``single`` NAT gateway (dev, cheap) or ``perAz`` (prod, no cross-zone dependency)."""
    flow_logs: bool = True
    log_retention_days: int = 365
    log_kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the log groups (CKV_AWS_158)."""
    zone_ids: tuple[str, ...] = ()
    """Availability zone IDs (``use1-az1``) to use; empty = the region's first three available zone IDs. IDs name
    the same physical zone in every account (zone names are shuffled per account), so subnets, the data stores'
    zone spread and a peer account's view agree."""


@dataclass(frozen=True, kw_only=True)
class EgressRule:
    port: int
    cidr: pulumi.Input[str]
    description: str


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    nat_gateways: list[aws.ec2.NatGateway]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:network:Network", name, None, opts)
        self._name = name
        self.args = args
        # Standard zones only (no Local or Wavelength zones), chosen and placed by zone ID.
        available = aws.get_availability_zones(
            state="available", filters=[{"name": "zone-type", "values": ["availability-zone"]}]).zone_ids
        unknown = [z for z in args.zone_ids if z not in available]
        if unknown:
            raise ValueError(f"zone IDs {unknown} are not available availability zones of this region "
                             f"(available: {sorted(available)})")
        zones = list(args.zone_ids) or sorted(available)[:ZONE_COUNT]
        if len(zones) != ZONE_COUNT:
            raise ValueError(f"{VPC_NAME} needs {ZONE_COUNT} availability zones; got {len(zones)} ({zones})")
        self.zones = zones
        public_cidrs, private_cidrs = subnet_layout(args.cidr)

        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_hostnames=True,
                               enable_dns_support=True, tags={"Name": VPC_NAME}, opts=child(self))
        # EC2.2: the default security group admits nothing, so nothing can fall back to it.
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=self.vpc.id, tags={"Name": f"{VPC_NAME}-default-deny"}, opts=child(self))
        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": f"{VPC_NAME}-igw"}, opts=child(self))

        self.public_subnets = [
            aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=self.vpc.id, cidr_block=cidr, availability_zone_id=zone,
                           map_public_ip_on_launch=False, tags={"Name": f"{VPC_NAME}-public-{zone}", "tier": "public"},
                           opts=child(self))
            for i, (zone, cidr) in enumerate(zip(zones, public_cidrs, strict=True))
        ]
        self.private_subnets = [
            aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=self.vpc.id, cidr_block=cidr, availability_zone_id=zone,
                           map_public_ip_on_launch=False,
                           tags={"Name": f"{VPC_NAME}-private-{zone}", "tier": "private"}, opts=child(self))
            for i, (zone, cidr) in enumerate(zip(zones, private_cidrs, strict=True))
        ]

        self.public_route_table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=self.internet_gateway.id)],
            tags={"Name": f"{VPC_NAME}-public"}, opts=child(self))
        for i, subnet in enumerate(self.public_subnets):
            aws.ec2.RouteTableAssociation(f"{name}-public-rta-{i}", subnet_id=subnet.id,
                                          route_table_id=self.public_route_table.id, opts=child(self))

        nat_count = ZONE_COUNT if args.nat_gateways == "perAz" else 1
        self.nat_gateways = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"{name}-nat-eip-{i}", domain="vpc", tags={"Name": f"{VPC_NAME}-nat-{i}"},
                              opts=child(self))
            self.nat_gateways.append(aws.ec2.NatGateway(
                f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=self.public_subnets[i].id,
                tags={"Name": f"{VPC_NAME}-nat-{zones[i]}"}, opts=child(self, depends_on=[self.internet_gateway])))

        self.private_route_tables = []
        for i, subnet in enumerate(self.private_subnets):
            nat = self.nat_gateways[i % nat_count]
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}", vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={"Name": f"{VPC_NAME}-private-{zones[i]}"}, opts=child(self))
            aws.ec2.RouteTableAssociation(f"{name}-private-rta-{i}", subnet_id=subnet.id, route_table_id=table.id,
                                          opts=child(self))
            self.private_route_tables.append(table)

        # Free gateway endpoints keep S3 and DynamoDB traffic off the NAT gateways.
        region = aws.get_region().region
        for service in ("s3", "dynamodb"):
            aws.ec2.VpcEndpoint(f"{name}-{service}-endpoint", vpc_id=self.vpc.id,
                                service_name=f"com.amazonaws.{region}.{service}", vpc_endpoint_type="Gateway",
                                route_table_ids=[t.id for t in self.private_route_tables],
                                tags={"Name": f"{VPC_NAME}-{service}"}, opts=child(self))

        self.flow_log_group: aws.cloudwatch.LogGroup | None = None
        if args.flow_logs:
            self.flow_log_group = aws.cloudwatch.LogGroup(
                f"{name}-flow-logs", name=f"/vpc/{VPC_NAME}-{args.stack}/flow-logs",
                retention_in_days=args.log_retention_days, kms_key_id=args.log_kms_key_arn, opts=child(self))
            role = aws.iam.Role(f"{name}-flow-logs-role", name=f"vpc-flow-logs-role-{args.stack}",
                                assume_role_policy=iam.assume_role_policy("vpc-flow-logs.amazonaws.com"),
                                opts=child(self))
            grants = iam.Grants(f"{name}-flow-logs-role")
            grants.allow("write flow logs", ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                         [self.flow_log_group.arn, pulumi.Output.concat(self.flow_log_group.arn, ":*")])
            policy = aws.iam.RolePolicy(f"{name}-flow-logs-policy", role=role.id, policy=grants.document(),
                                        opts=child(self))
            aws.ec2.FlowLog(f"{name}-flow-log", vpc_id=self.vpc.id, traffic_type="ALL",
                            log_destination_type="cloud-watch-logs", log_destination=self.flow_log_group.arn,
                            iam_role_arn=role.arn, max_aggregation_interval=60,
                            opts=child(self, depends_on=[policy]))

        self.register_outputs({
            "vpc_id": self.vpc.id,
            "private_subnet_ids": [s.id for s in self.private_subnets],
            "public_subnet_ids": [s.id for s in self.public_subnets],
        })

    @property
    def private_subnet_ids(self) -> list[pulumi.Output[str]]:
        return [s.id for s in self.private_subnets]

    def security_group(self, name: str, *, description: str, port: int | None = None,
                       allowed_from: Sequence[aws.ec2.SecurityGroup] = (), egress: Sequence[EgressRule] = (),
                       parent: pulumi.Resource | None = None) -> aws.ec2.SecurityGroup:
        """A security group that admits ``port`` only from the named groups (never from a CIDR) and sends only the
        listed egress. Rules are separate resources, never inline, so the two styles are not mixed."""
        owner = parent or self
        # The logical name carries the owner's prefix (children are named after their component); the physical
        # name stays as given.
        logical = name if name.startswith(owner._name) else f"{owner._name}-{name}"
        group = aws.ec2.SecurityGroup(logical, name=name, description=description, vpc_id=self.vpc.id,
                                      tags={"Name": name}, opts=child(owner))
        for source in allowed_from:
            if port is None:
                raise ValueError(f"security group {name}: allowed_from needs a port")
            self.admit(group, source, port, owner=owner)
        for i, rule in enumerate(egress):
            aws.vpc.SecurityGroupEgressRule(
                f"{logical}-egress-{i}", security_group_id=group.id, ip_protocol="tcp", from_port=rule.port,
                to_port=rule.port, cidr_ipv4=rule.cidr, description=rule.description, opts=child(owner))
        return group

    def admit(self, target: aws.ec2.SecurityGroup, source: aws.ec2.SecurityGroup, port: int, *,
              owner: pulumi.Resource | None = None) -> aws.vpc.SecurityGroupIngressRule:
        """Let ``source`` reach ``target`` on ``port``."""
        rule_name = f"{target._name}-from-{source._name}-{port}"
        return aws.vpc.SecurityGroupIngressRule(
            rule_name, security_group_id=target.id, referenced_security_group_id=source.id, ip_protocol="tcp",
            from_port=port, to_port=port, description=f"{port} from {source._name}", opts=child(owner or self))
