"""A stack's monthly cost, estimated from its records and the price table ``infra/prices.yaml``.

Fixed costs follow from what the program declares (instance classes and counts, NAT gateways and their public IPv4
addresses, interface endpoints, keys, secrets, alarms, proxies, provisioned storage). Usage costs follow from the
stated assumptions of the stack's ``costs`` section (``infra.config.CostConfig``). Every price names the page it was
read from and the date; a billable item without a price in the table is reported as unpriced, never as zero. Free tiers
are not subtracted (they are per account, not per stack), so the estimate errs high.

It lives in ``infra`` so both the plan (which prints it) and the rule set (which compares dev's fixed cost with its
budget) can use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.config import PROJECT, CostConfig, costs_section
from infra.records import ResourceRecord, StackRecords

ROOT = Path(__file__).resolve().parent.parent
PRICES_FILE = Path(__file__).with_name("prices.yaml")
SOURCE_KINDS = ("aws", "third-party")
"""``aws``: read on an AWS page; ``third-party``: a page quoting AWS's price (re-check it on the AWS calculator)."""


@dataclass(frozen=True, kw_only=True)
class Price:
    key: str
    region: str
    usd: float
    unit: str
    source: str
    read: str
    source_kind: str
    note: str = ""
    """What the page says besides the number (its region wording, a disagreeing source), when it matters."""


@dataclass(frozen=True, kw_only=True)
class PriceTable:
    hours_per_month: float
    prices: dict[tuple[str, str], Price]
    vcpus: dict[str, int]
    """vCPUs per database instance class (RDS Proxy bills per vCPU of its target)."""

    def get(self, key: str, region: str) -> Price | None:
        return self.prices.get((key, region))


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    data = yaml.safe_load(path.read_text())
    prices: dict[tuple[str, str], Price] = {}
    for entry in data["prices"]:
        if entry.get("source_kind") not in SOURCE_KINDS:
            raise ValueError(f"{path.name}: {entry['key']} needs source_kind, one of {', '.join(SOURCE_KINDS)}")
        for region in entry["regions"]:
            price = Price(key=entry["key"], region=region, usd=float(entry["usd"]), unit=entry["unit"],
                          source=entry["source"], read=str(entry["read"]), source_kind=entry["source_kind"],
                          note=entry.get("note", ""))
            if (price.key, region) in prices:
                raise ValueError(f"{path.name}: {price.key} is priced twice for {region}")
            prices[(price.key, region)] = price
    return PriceTable(hours_per_month=float(data["hours_per_month"]), prices=prices,
                      vcpus={k: int(v) for k, v in (data.get("vcpus") or {}).items()})


@cache
def default_prices() -> PriceTable:
    return load_prices()


@dataclass(frozen=True, kw_only=True)
class CostLine:
    group: str
    """The component the resource belongs to (``name (Type)``)."""
    resource: str
    item: str
    """What is billed, e.g. ``db.t4g.micro single-AZ instance-hours``."""
    fixed: bool
    quantity: float
    unit: str
    key: str
    region: str
    price: Price | None
    """None: no price in the table for this key and region (shown as unpriced, not zero)."""
    assumption: str = ""

    @property
    def monthly(self) -> float | None:
        return None if self.price is None else self.quantity * self.price.usd


@dataclass(frozen=True)
class Estimate:
    stack: str
    lines: tuple[CostLine, ...]

    def total(self, *, fixed: bool | None = None) -> float:
        return sum(line.monthly or 0.0 for line in self.lines if fixed is None or line.fixed == fixed)

    def unpriced(self, *, fixed: bool | None = None) -> list[CostLine]:
        return [line for line in self.lines if line.price is None and (fixed is None or line.fixed == fixed)]

    def by_group(self) -> dict[str, tuple[float, float]]:
        """Component -> (fixed, usage) monthly dollars."""
        out: dict[str, tuple[float, float]] = {}
        for line in self.lines:
            fixed, usage = out.get(line.group, (0.0, 0.0))
            cost = line.monthly or 0.0
            out[line.group] = (fixed + cost, usage) if line.fixed else (fixed, usage + cost)
        return out


def stack_cost_config(stack: str, root: Path = ROOT) -> CostConfig:
    """The ``costs`` section of ``Pulumi.<stack>.yaml``, validated (defaults when the file or section is absent)."""
    path = root / f"Pulumi.{stack}.yaml"
    raw = (yaml.safe_load(path.read_text()) or {}).get("config") or {} if path.exists() else {}
    return costs_section(stack, raw.get(f"{PROJECT}:costs"))


# -------------------------------------------------------------------------------------------------------- derivation


def _num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class _Lines:
    def __init__(self, stack: StackRecords, prices: PriceTable, usage: CostConfig, region: str):
        self.stack, self.prices, self.usage, self.region = stack, prices, usage, region
        self.by_urn = {r.urn: r for r in stack}
        self.out: list[CostLine] = []

    def group(self, rec: ResourceRecord) -> str:
        parent = self.by_urn.get(rec.parent or "")
        while parent is not None and parent.custom:
            parent = self.by_urn.get(parent.parent or "")
        return f"{parent.name} ({parent.type.rsplit(':', 1)[-1]})" if parent is not None else "stack"

    def region_of(self, rec: ResourceRecord) -> str:
        region = rec.inputs.get("region")
        return region if isinstance(region, str) and region else self.region

    def add(self, rec: ResourceRecord, item: str, key: str, quantity: float, *, fixed: bool,
            assumption: str = "") -> None:
        if quantity <= 0:
            return
        region = self.region_of(rec)
        price = self.prices.get(key, region)
        self.out.append(CostLine(group=self.group(rec), resource=rec.name, item=item, fixed=fixed, quantity=quantity,
                                 unit=price.unit if price else key.rsplit(".", 1)[-1], key=key, region=region,
                                 price=price, assumption=assumption))

    def find(self, type_token: str, value: Any) -> ResourceRecord | None:
        for r in self.stack.of_type(type_token):
            if value is not None and value in (r.inputs.get("identifier"), r.inputs.get("name"), r.name,
                                               r.outputs.get("id"), r.outputs.get("arn")):
                return r
        return None


def _fixed(lines: _Lines) -> None:
    hours = lines.prices.hours_per_month
    for rec in lines.stack:
        t, i = rec.type, rec.inputs
        if t == "aws:rds/instance:Instance":
            az = "multi-az" if i.get("multiAz") is True else "single-az"
            cls, engine = i.get("instanceClass"), i.get("engine", "postgres")
            lines.add(rec, f"{cls} {az} instance-hours", f"rds.{engine}.{cls}.{az}", hours, fixed=True)
            storage = i.get("storageType", "gp2")
            copies = 2 if az == "multi-az" else 1
            lines.add(rec, f"{storage} storage, {copies} cop{'ies' if copies > 1 else 'y'}", f"rds.storage.{storage}",
                      _num(i.get("allocatedStorage")) * copies, fixed=True)
        elif t == "aws:rds/proxyTarget:ProxyTarget":
            proxy = lines.find("aws:rds/proxy:Proxy", i.get("dbProxyName"))
            target = lines.find("aws:rds/instance:Instance", i.get("dbInstanceIdentifier"))
            cls = target.inputs.get("instanceClass") if target else None
            vcpus = lines.prices.vcpus.get(str(cls))
            if proxy is not None and vcpus is not None:
                lines.add(proxy, f"proxy over {cls} ({vcpus} vCPU)", "rds.proxy.vcpu", max(vcpus, 2) * hours,
                          fixed=True)
            elif proxy is not None:
                lines.out.append(CostLine(group=lines.group(proxy), resource=proxy.name, item=f"proxy over {cls}",
                                          fixed=True, quantity=0, unit="vCPU-hour", key="rds.proxy.vcpu",
                                          region=lines.region_of(proxy), price=None,
                                          assumption=f"vCPUs of {cls} unknown"))
        elif t == "aws:opensearch/domain:Domain":
            cc, ebs = i.get("clusterConfig") or {}, i.get("ebsOptions") or {}
            nodes = _num(cc.get("instanceCount"), 1)
            lines.add(rec, f"{nodes:g} x {cc.get('instanceType')} data node-hours",
                      f"opensearch.{cc.get('instanceType')}", nodes * hours, fixed=True)
            if cc.get("dedicatedMasterEnabled") is True:
                masters = _num(cc.get("dedicatedMasterCount"))
                lines.add(rec, f"{masters:g} x {cc.get('dedicatedMasterType')} master node-hours",
                          f"opensearch.{cc.get('dedicatedMasterType')}", masters * hours, fixed=True)
            if ebs.get("ebsEnabled", True) is not False:
                lines.add(rec, f"{ebs.get('volumeType', 'gp3')} storage on {nodes:g} node(s)",
                          f"opensearch.storage.{ebs.get('volumeType', 'gp3')}", _num(ebs.get("volumeSize")) * nodes,
                          fixed=True)
        elif t == "aws:elasticache/replicationGroup:ReplicationGroup":
            nodes = _num(i.get("numCacheClusters")) or _num(i.get("numNodeGroups"), 1) * (
                _num(i.get("replicasPerNodeGroup")) + 1)
            # The engine is part of the key: a Valkey node is billed below a Redis OSS node of the same type.
            engine = str(i.get("engine") or "redis").lower()
            lines.add(rec, f"{nodes:g} x {i.get('nodeType')} {engine} node-hours",
                      f"elasticache.{engine}.{i.get('nodeType')}", nodes * hours, fixed=True)
        elif t == "aws:ec2/natGateway:NatGateway":
            lines.add(rec, "NAT gateway-hours", "vpc.nat-gateway.hour", hours, fixed=True)
        elif t == "aws:ec2/eip:Eip":
            lines.add(rec, "public IPv4 address-hours", "vpc.public-ipv4.hour", hours, fixed=True)
        elif t == "aws:ec2/vpcEndpoint:VpcEndpoint" and i.get("vpcEndpointType") == "Interface":
            azs = len(i.get("subnetIds") or []) or 1
            lines.add(rec, f"interface endpoint-hours in {azs} AZ(s)", "vpc.interface-endpoint.hour", azs * hours,
                      fixed=True)
        elif t in ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
            lines.add(rec, "customer managed key", "kms.key", 1, fixed=True)
        elif t == "aws:secretsmanager/secret:Secret":
            lines.add(rec, "secret (+ replicas)", "secretsmanager.secret", 1 + len(i.get("replicas") or []),
                      fixed=True)
        elif t == "aws:cloudwatch/metricAlarm:MetricAlarm":
            resolution = "high-resolution" if 0 < _num(i.get("period"), 60) < 60 else "standard"
            lines.add(rec, f"{resolution} alarm", f"cloudwatch.alarm.{resolution}", 1, fixed=True)
        elif t == "aws:route53/healthCheck:HealthCheck":
            lines.add(rec, "health check", "route53.health-check", 1, fixed=True)


def _usage(lines: _Lines) -> None:
    u = lines.usage
    dead_letters = _dead_letter_targets(lines.stack)
    for rec in lines.stack:
        t, i = rec.type, rec.inputs
        if t == "aws:lambda/function:Function":
            arch = (i.get("architectures") or ["x86_64"])[0]
            gb_seconds = u.function_invocations * u.function_average_ms / 1000 * _num(i.get("memorySize"), 128) / 1024
            said = f"{u.function_invocations:,} invocations x {u.function_average_ms} ms"
            lines.add(rec, f"{arch} compute", f"lambda.{arch}.gb-second", gb_seconds, fixed=False, assumption=said)
            lines.add(rec, "requests", "lambda.request.million", u.function_invocations / 1e6, fixed=False,
                      assumption=said)
        elif t == "aws:s3/bucket:Bucket":
            lines.add(rec, "Standard storage", "s3.standard.gb-month", u.bucket_stored_gb, fixed=False,
                      assumption=f"{u.bucket_stored_gb} GB stored")
            lines.add(rec, "PUT/COPY/POST/LIST requests", "s3.put.thousand", u.bucket_put_requests / 1000,
                      fixed=False, assumption=f"{u.bucket_put_requests:,} requests")
            lines.add(rec, "GET requests", "s3.get.thousand", u.bucket_get_requests / 1000, fixed=False,
                      assumption=f"{u.bucket_get_requests:,} requests")
        elif t == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
            lines.add(rec, "cross-region replication transfer", "s3.inter-region-transfer.gb", u.bucket_stored_gb,
                      fixed=False, assumption=f"{u.bucket_stored_gb} GB replicated (upper bound: all of it)")
        elif t == "aws:sqs/queue:Queue" and rec.urn not in dead_letters:
            kind = "fifo" if i.get("fifoQueue") is True else "standard"
            lines.add(rec, f"{kind} requests", f"sqs.{kind}.request.million", u.queue_requests / 1e6, fixed=False,
                      assumption=f"{u.queue_requests:,} requests")
        elif t == "aws:dynamodb/table:Table" and i.get("billingMode") == "PAY_PER_REQUEST":
            lines.add(rec, "on-demand reads", "dynamodb.read.million", u.table_reads / 1e6, fixed=False,
                      assumption=f"{u.table_reads:,} read units")
            lines.add(rec, "on-demand writes", "dynamodb.write.million", u.table_writes / 1e6, fixed=False,
                      assumption=f"{u.table_writes:,} write units")
            lines.add(rec, "storage", "dynamodb.storage.gb-month", u.table_stored_gb, fixed=False,
                      assumption=f"{u.table_stored_gb} GB")
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            months = min(_num(i.get("retentionInDays"), 365) / 30, 12)
            lines.add(rec, "log ingestion", "logs.ingest.gb", u.log_ingest_gb, fixed=False,
                      assumption=f"{u.log_ingest_gb} GB/month")
            lines.add(rec, "log storage", "logs.storage.gb-month", u.log_ingest_gb * months, fixed=False,
                      assumption=f"{u.log_ingest_gb} GB/month kept {months:.1f} months")
        elif t == "aws:ec2/natGateway:NatGateway":
            lines.add(rec, "NAT data processed", "vpc.nat-gateway.gb", u.nat_processed_gb, fixed=False,
                      assumption=f"{u.nat_processed_gb} GB")
        elif t == "aws:secretsmanager/secret:Secret":
            lines.add(rec, "API calls", "secretsmanager.api.10k", u.secret_reads / 10_000, fixed=False,
                      assumption=f"{u.secret_reads:,} calls")
        elif t in ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
            lines.add(rec, "requests", "kms.request.10k", u.key_requests / 10_000, fixed=False,
                      assumption=f"{u.key_requests:,} requests")


def _dead_letter_targets(stack: StackRecords) -> set[str]:
    """Queues that only receive failures (redrive targets, rule-target DLQs, on-failure destinations): idle."""
    arns: set[str] = set()
    for rec in stack:
        i = rec.inputs
        redrive = i.get("redrivePolicy")
        if isinstance(redrive, str) and redrive:
            arns.update(q.outputs.get("arn", "") for q in stack.of_type("aws:sqs/queue:Queue")
                        if q.outputs.get("arn") and q.outputs["arn"] in redrive)
        dead: dict[str, Any] = i.get("deadLetterConfig") or {}
        failure: dict[str, Any] = (i.get("destinationConfig") or {}).get("onFailure") or {}
        arns.update(v for v in (dead.get("arn"), dead.get("targetArn"), failure.get("destination")) if v)
    return {q.urn for q in stack.of_type("aws:sqs/queue:Queue") if q.outputs.get("arn") in arns}


def estimate(stack: StackRecords, usage: CostConfig | None = None, prices: PriceTable | None = None, *,
             region: str = "us-east-1") -> Estimate:
    """Every billable line of ``stack``: fixed lines first, then usage lines under ``usage``'s assumptions."""
    lines = _Lines(stack, prices or default_prices(), usage or CostConfig(), region)
    _fixed(lines)
    _usage(lines)
    return Estimate(stack=stack.stack, lines=tuple(lines.out))
