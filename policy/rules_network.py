"""VPC, security group, CloudWatch and cross-cutting naming rules."""

from __future__ import annotations

from collections.abc import Iterator

from infra.records import ResourceRecord, StackRecords
from policy import types as T
from policy.engine import PROD, resource_rule, stack_rule
from policy.helpers import MISSING, as_list, get, is_true, known_str, num, resolve

Found = Iterator[tuple[ResourceRecord | None, str]]

OPEN = {"0.0.0.0/0", "::/0"}
ADMIN_PORTS = (22, 3389)


def _sg_rules(r: ResourceRecord) -> Iterator[tuple[str, dict]]:
    """(direction, rule) for inline SG blocks and standalone rule resources, in one shape."""
    if r.type in (T.SECURITY_GROUP, T.DEFAULT_SECURITY_GROUP):
        for direction in ("ingress", "egress"):
            for rule in as_list(r.inputs.get(direction)):
                if isinstance(rule, dict):
                    yield direction, {**rule, "cidrs": as_list(rule.get("cidrBlocks"))
                                      + as_list(rule.get("ipv6CidrBlocks"))}
    elif r.type == T.SG_RULE:
        yield r.inputs.get("type", ""), {**r.inputs, "cidrs": as_list(r.inputs.get("cidrBlocks"))
                                         + as_list(r.inputs.get("ipv6CidrBlocks"))}
    elif r.type in (T.SG_INGRESS, T.SG_EGRESS):
        yield ("ingress" if r.type == T.SG_INGRESS else "egress"), {
            **r.inputs, "protocol": r.inputs.get("ipProtocol"),
            "cidrs": [c for c in (r.inputs.get("cidrIpv4"), r.inputs.get("cidrIpv6")) if c]}


SG_TYPES = [T.SECURITY_GROUP, T.DEFAULT_SECURITY_GROUP, T.SG_RULE, T.SG_INGRESS, T.SG_EGRESS]


@resource_rule("EC2.18", "No ingress from 0.0.0.0/0 or ::/0", types=SG_TYPES,
               fix="admit traffic from security group IDs only")
def open_ingress(r: ResourceRecord, stack: str) -> Iterator[str]:
    for direction, rule in _sg_rules(r):
        if direction == "ingress" and OPEN & set(rule["cidrs"]):
            yield f"ingress {rule.get('fromPort')}-{rule.get('toPort')} is open to the internet"


def _all_traffic(rule: dict) -> bool:
    proto = str(rule.get("protocol", ""))
    lo, hi = num(rule.get("fromPort")), num(rule.get("toPort"))
    return proto in ("-1", "all") or (lo in (None, 0) and hi in (None, 0, 65535) and proto != "icmp")


@resource_rule("CKV_AWS_382", "No all-traffic egress to the internet", types=SG_TYPES,
               fix="allow egress per port (e.g. tcp 443 for NAT-bound AWS API calls) or to security groups")
def open_egress(r: ResourceRecord, stack: str) -> Iterator[str]:
    for direction, rule in _sg_rules(r):
        if direction == "egress" and OPEN & set(rule["cidrs"]) and _all_traffic(rule):
            yield "allows all egress to the internet"


@resource_rule("CKV_AWS_23", "Security groups and their rules are described", types=SG_TYPES,
               fix="set description= on the group and every rule")
def described(r: ResourceRecord, stack: str) -> Iterator[str]:
    if r.type == T.SECURITY_GROUP and not r.inputs.get("description", MISSING) and \
            r.inputs.get("description", MISSING) is not None:
        yield "has no description"
    if r.type == T.DEFAULT_SECURITY_GROUP:
        return
    for direction, rule in _sg_rules(r):
        if rule.get("description", MISSING) is not None and not rule.get("description"):
            yield f"an {direction} rule has no description"


@stack_rule("EC2.2", "Each VPC's default security group has no rules", types=[T.VPC],
            fix="adopt it with ec2.DefaultSecurityGroup(vpc_id=...) and no ingress/egress")
def default_sg_closed(stack: StackRecords) -> Found:
    for vpc in stack.of_type(T.VPC):
        sgs = [g for g in stack.of_type(T.DEFAULT_SECURITY_GROUP)
               if resolve(stack, g.inputs.get("vpcId"), [T.VPC], via=g) is vpc]
        if not sgs:
            yield vpc, "does not manage its default security group"
        for g in sgs:
            if as_list(g.inputs.get("ingress")) or as_list(g.inputs.get("egress")):
                yield vpc, f"default security group {g.name} has rules"


@stack_rule("EC2.6", "VPC flow logs capture all traffic", types=[T.VPC], stacks=PROD,
            fix="add ec2.FlowLog(vpc_id=..., traffic_type='ALL')")
def flow_logs(stack: StackRecords) -> Found:
    for vpc in stack.of_type(T.VPC):
        logs = [f for f in stack.of_type(T.FLOW_LOG) if resolve(stack, f.inputs.get("vpcId"), [T.VPC], via=f) is vpc]
        if not any(f.inputs.get("trafficType") in ("ALL", None) for f in logs):
            yield vpc, "has no ALL-traffic flow log"


@resource_rule("EC2.15", "Subnets do not assign public IPs", types=[T.SUBNET], fix="set map_public_ip_on_launch=False")
def no_public_ip(r: ResourceRecord, stack: str) -> Iterator[str]:
    if is_true(r.inputs.get("mapPublicIpOnLaunch")):
        yield "assigns public IPs on launch"


@resource_rule("EC2.21", "Network ACLs do not open admin ports to the internet",
               types=[T.NETWORK_ACL, T.NETWORK_ACL_RULE, T.DEFAULT_NETWORK_ACL],
               fix="deny (or do not allow) 22/3389 from 0.0.0.0/0 and ::/0")
def nacl_admin(r: ResourceRecord, stack: str) -> Iterator[str]:
    entries = [r.inputs] if r.type == T.NETWORK_ACL_RULE else as_list(r.inputs.get("ingress"))
    for e in entries:
        if not isinstance(e, dict) or (r.type == T.NETWORK_ACL_RULE and is_true(e.get("egress"))):
            continue
        cidrs = {e.get("cidrBlock"), e.get("ipv6CidrBlock")}
        lo, hi = num(e.get("fromPort")) or 0, num(e.get("toPort")) or 65535
        if (e.get("ruleAction") or e.get("action")) == "allow" and OPEN & cidrs and \
                any(lo <= p <= hi for p in ADMIN_PORTS):
            yield f"allows {lo:g}-{hi:g} (admin ports) from the internet"


@stack_rule("CKV2_AWS_19", "Elastic IPs are attached", types=[T.EIP],
            fix="use each ec2.Eip in a NAT gateway (allocation_id) or delete it")
def eip_attached(stack: StackRecords) -> Found:
    for eip in stack.of_type(T.EIP):
        if eip.inputs.get("instance") or eip.inputs.get("networkInterface"):
            continue
        if not any(eip.urn in r.dependencies for r in stack if r.type != T.EIP):
            yield eip, "is not used by any resource"


@stack_rule("CKV2_AWS_5", "Security groups are attached", types=[T.SECURITY_GROUP],
            fix="attach the group to a function, database, cache, domain or endpoint, or delete it")
def sg_attached(stack: StackRecords) -> Found:
    rule_types = {T.SG_RULE, T.SG_INGRESS, T.SG_EGRESS}
    for sg in stack.of_type(T.SECURITY_GROUP):
        users = [r for r in stack if sg.urn in r.dependencies and r.type not in rule_types]
        if not users:
            yield sg, "is not attached to anything"


@stack_rule("SG.RULE-STYLE", "One rule style per security group (AWSGuard security-group-no-rule-management-"
            "conflicts)", types=[T.SECURITY_GROUP],
            fix="use either inline ingress/egress or separate rule resources, not both")
def sg_rule_style(stack: StackRecords) -> Found:
    for sg in stack.of_type(T.SECURITY_GROUP):
        if not (as_list(sg.inputs.get("ingress")) or as_list(sg.inputs.get("egress"))):
            continue
        separate = [r for r in stack.matching([T.SG_RULE, T.SG_INGRESS, T.SG_EGRESS])
                    if resolve(stack, r.inputs.get("securityGroupId"), [T.SECURITY_GROUP], via=r) is sg]
        if separate:
            yield sg, f"has inline rules and {[r.name for r in separate]}"


# ---------------------------------------------------------------- CloudWatch

@resource_rule("CloudWatch.15", "Alarms notify someone", types=[T.METRIC_ALARM],
               fix="set alarm_actions=[<alarm topic ARN>] and leave actions_enabled True")
def alarm_actions(r: ResourceRecord, stack: str) -> Iterator[str]:
    acts = r.inputs.get("alarmActions", MISSING)
    if acts is not None and not as_list(acts):
        yield "has no alarm actions"
    if r.inputs.get("actionsEnabled") is False:
        yield "has actions disabled"


ALLOWED_RETENTION = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                     3288, 3653}


@resource_rule("CKV_AWS_66", "Log groups set a retention", types=[T.LOG_GROUP],
               fix="set retention_in_days (14-30 in dev, 365 in prod)")
def log_retention_set(r: ResourceRecord, stack: str) -> Iterator[str]:
    raw = r.inputs.get("retentionInDays", MISSING)
    if raw is MISSING or num(raw) == 0:
        yield "keeps logs forever"


@resource_rule("CloudWatch.16", "Log groups keep at least a year", types=[T.LOG_GROUP], stacks=PROD,
               fix="set retention_in_days=365 in prod")
def log_retention_year(r: ResourceRecord, stack: str) -> Iterator[str]:
    days = num(r.inputs.get("retentionInDays"))
    if days is not None and 0 < days < 365:
        yield f"keeps logs {days:g} days"


@resource_rule("CKV_AWS_158", "Log groups are encrypted with a CMK", types=[T.LOG_GROUP], stacks=PROD,
               fix="set kms_key_id=<CMK ARN whose policy admits logs.<region>.amazonaws.com>")
def log_kms(r: ResourceRecord, stack: str) -> Iterator[str]:
    if r.inputs.get("kmsKeyId", MISSING) is MISSING:
        yield "has no kms_key_id"


@resource_rule("DEPLOY-LOG-RETENTION", "Retention is one of the values CloudWatch accepts", types=[T.LOG_GROUP],
               source="deploy", fix=f"use one of {sorted(ALLOWED_RETENTION)}")
def log_retention_allowed(r: ResourceRecord, stack: str) -> Iterator[str]:
    days = num(r.inputs.get("retentionInDays"))
    if days is not None and days != 0 and days not in ALLOWED_RETENTION:
        yield f"retention {days:g} is not an allowed value"


def _alarm_periods(r: ResourceRecord) -> list[float]:
    periods = [num(r.inputs.get("period"))]
    for q in as_list(r.inputs.get("metricQueries")):
        periods += [num(get(q, "metric.period")), num(get(q, "period"))]
    return [p for p in periods if p is not None]


@resource_rule("DEPLOY-ALARM-PERIOD", "Alarm period 10/20/30 or n*60; evaluation range within limits",
               types=[T.METRIC_ALARM], source="deploy",
               fix="use period 10, 20, 30 or a multiple of 60; keep period*evaluation_periods <= 1 day (7 days for "
                   "periods >= 1 h) and datapoints_to_alarm <= evaluation_periods")
def alarm_period(r: ResourceRecord, stack: str) -> Iterator[str]:
    evals = num(r.inputs.get("evaluationPeriods"))
    for p in _alarm_periods(r):
        if p not in (10, 20, 30) and (p < 60 or p % 60):
            yield f"period {p:g} is not 10, 20, 30 or a multiple of 60"
        if evals is not None:
            limit = 86_400 if p < 3600 else 604_800
            if p * evals > limit:
                yield f"period {p:g} x {evals:g} evaluations exceeds {limit} s"
    dp = num(r.inputs.get("datapointsToAlarm"))
    if dp is not None and evals is not None and dp > evals:
        yield f"datapoints_to_alarm {dp:g} > evaluation_periods {evals:g}"


# ---------------------------------------------------------------- physical name lengths (autonaming adds 8 chars)

NAME_LIMITS: dict[str, tuple[str, int]] = {
    T.FUNCTION: ("name", 64),
    T.EVENT_RULE: ("name", 64),
    T.RDS_INSTANCE: ("identifier", 63),
    T.RDS_PROXY: ("name", 60),
    T.REPLICATION_GROUP: ("replicationGroupId", 40),
    T.TOPIC: ("name", 256),
    T.TABLE: ("name", 255),
    T.LOG_GROUP: ("name", 512),
    T.SECRET: ("name", 512),
    T.RDS_PARAMETER_GROUP: ("name", 255),
    T.RDS_SUBNET_GROUP: ("name", 255),
    T.CACHE_SUBNET_GROUP: ("name", 255),
    T.SECURITY_GROUP: ("name", 255),
    T.METRIC_ALARM: ("name", 255),
}


@resource_rule("DEPLOY-NAME-LENGTH", "Physical names (explicit or autonamed) fit the service's limit",
               types=list(NAME_LIMITS), source="deploy",
               fix="shorten the logical or physical name (autonaming appends '-' and 7 random characters)")
def name_length(r: ResourceRecord, stack: str) -> Iterator[str]:
    key, limit = NAME_LIMITS[r.type]
    name = r.inputs.get(key, MISSING)
    if name is None:
        return
    if name is MISSING:
        prefix = known_str(r.inputs.get("namePrefix")) or known_str(r.inputs.get("identifierPrefix"))
        length = len(prefix) + 26 if prefix else len(r.name) + 8
        if length > limit:
            yield f"autonamed {key} would be {length} characters (limit {limit})"
    elif isinstance(name, str) and len(name) > limit:
        yield f"{key} {name!r} is {len(name)} characters (limit {limit})"
