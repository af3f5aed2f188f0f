"""The monthly estimate: arithmetic on hand-computed examples, the price table's provenance, the costs config section,
both stacks against their budgets, and the README's generated blocks matching the records."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from infra.config import ConfigError, CostConfig, costs_section
from infra.costs import SOURCE_KINDS, Price, PriceTable, estimate, load_prices, stack_cost_config
from infra.records import ResourceRecord, StackRecords
from plan import cost as cost_view
from plan import docs
from policy.rules import evaluate


def prices(**usd: float) -> PriceTable:
    """A price table with round numbers, so every expected figure below is computed by hand."""
    return PriceTable(hours_per_month=730, vcpus={"db.t4g.micro": 2},
                      prices={(k.replace("__", "."), "us-east-1"): Price(key=k.replace("__", "."), region="us-east-1",
                                                                          usd=v, unit="u", source="https://x", read="d",
                                                                          source_kind="third-party")
                              for k, v in usd.items()})


def rec(type_: str, name: str, /, **inputs: object) -> ResourceRecord:
    return ResourceRecord(type=type_, name=name, urn=f"urn:pulumi:dev::p::{type_}::{name}", inputs=dict(inputs),
                          outputs={"arn": f"arn:{name}", **inputs})


def stack(*records: ResourceRecord) -> StackRecords:
    return StackRecords(stack="dev", records=records)


def monthly(est: object, resource: str, item_start: str) -> float | None:
    found = [line for line in est.lines if line.resource == resource and line.item.startswith(item_start)]  # type: ignore[attr-defined]
    assert len(found) == 1, [line.item for line in est.lines]  # type: ignore[attr-defined]
    return found[0].monthly


def test_database_instance_storage_and_proxy_by_hand() -> None:
    table = prices(**{"rds__postgres__db__t4g__micro__multi-az": 0.03, "rds__storage__gp3": 0.1,
                      "rds__proxy__vcpu": 0.01})
    records = stack(
        rec("aws:rds/instance:Instance", "db", identifier="db", instanceClass="db.t4g.micro", engine="postgres",
            multiAz=True, allocatedStorage=20.0, storageType="gp3"),
        rec("aws:rds/proxy:Proxy", "proxy", name="db-proxy"),
        rec("aws:rds/proxyTarget:ProxyTarget", "target", dbProxyName="db-proxy", dbInstanceIdentifier="db"))
    est = estimate(records, CostConfig(), table)
    assert monthly(est, "db", "db.t4g.micro multi-az") == pytest.approx(730 * 0.03)  # 21.90
    assert monthly(est, "db", "gp3 storage") == pytest.approx(20 * 2 * 0.1)  # standby pays storage too: 4.00
    assert monthly(est, "proxy", "proxy over db.t4g.micro") == pytest.approx(2 * 730 * 0.01)  # 14.60
    assert est.total(fixed=True) == pytest.approx(21.9 + 4.0 + 14.6)


def test_search_cache_network_keys_secrets_alarms_by_hand() -> None:
    table = prices(**{"opensearch__r7g.large.search": 0.2, "opensearch__storage__gp3": 0.1,
                      "elasticache__redis__cache.r7g.large": 0.25, "vpc__nat-gateway__hour": 0.05,
                      "vpc__public-ipv4__hour": 0.005, "vpc__interface-endpoint__hour": 0.01, "kms__key": 1.0,
                      "secretsmanager__secret": 0.4, "cloudwatch__alarm__standard": 0.1})
    records = stack(
        rec("aws:opensearch/domain:Domain", "search",
            clusterConfig={"instanceType": "r7g.large.search", "instanceCount": 3.0, "dedicatedMasterEnabled": True,
                           "dedicatedMasterType": "r7g.large.search", "dedicatedMasterCount": 3.0},
            ebsOptions={"ebsEnabled": True, "volumeType": "gp3", "volumeSize": 100.0}),
        rec("aws:elasticache/replicationGroup:ReplicationGroup", "cache", nodeType="cache.r7g.large",
            engine="redis", numCacheClusters=2.0),
        rec("aws:ec2/natGateway:NatGateway", "nat"), rec("aws:ec2/eip:Eip", "eip"),
        rec("aws:ec2/vpcEndpoint:VpcEndpoint", "sm-endpoint", vpcEndpointType="Interface", subnetIds=["a", "b"]),
        rec("aws:ec2/vpcEndpoint:VpcEndpoint", "s3-endpoint", vpcEndpointType="Gateway"),
        rec("aws:kms/key:Key", "key"), rec("aws:secretsmanager/secret:Secret", "secret", replicas=[{"region": "x"}]),
        rec("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm", period=60.0))
    est = estimate(records, CostConfig(), table)
    assert monthly(est, "search", "3 x r7g.large.search data") == pytest.approx(3 * 730 * 0.2)  # 438.00
    assert monthly(est, "search", "3 x r7g.large.search master") == pytest.approx(3 * 730 * 0.2)  # 438.00
    assert monthly(est, "search", "gp3 storage") == pytest.approx(100 * 3 * 0.1)  # 30.00
    assert monthly(est, "cache", "2 x cache.r7g.large") == pytest.approx(2 * 730 * 0.25)  # 365.00
    assert monthly(est, "nat", "NAT gateway-hours") == pytest.approx(36.5)
    assert monthly(est, "eip", "public IPv4") == pytest.approx(3.65)
    assert monthly(est, "sm-endpoint", "interface endpoint") == pytest.approx(2 * 730 * 0.01)  # 14.60
    assert not [line for line in est.lines if line.resource == "s3-endpoint"], "gateway endpoints are free"
    assert monthly(est, "secret", "secret") == pytest.approx(0.8), "a replica is billed as a second secret"
    assert est.total(fixed=True) == pytest.approx(438 + 438 + 30 + 365 + 36.5 + 3.65 + 14.6 + 1 + 0.8 + 0.1)


def test_a_cache_node_is_priced_for_its_engine_only() -> None:
    """Valkey nodes bill below Redis OSS nodes of the same type: a Redis price never prices a Valkey group."""
    table = prices(**{"elasticache__redis__cache.t4g.micro": 0.016})
    records = stack(
        rec("aws:elasticache/replicationGroup:ReplicationGroup", "redis", nodeType="cache.t4g.micro", engine="redis",
            numCacheClusters=1.0),
        rec("aws:elasticache/replicationGroup:ReplicationGroup", "valkey", nodeType="cache.t4g.micro", engine="valkey",
            numCacheClusters=1.0))
    est = estimate(records, CostConfig(), table)
    assert monthly(est, "redis", "1 x cache.t4g.micro redis") == pytest.approx(730 * 0.016)  # 11.68
    assert monthly(est, "valkey", "1 x cache.t4g.micro valkey") is None, "no Valkey price in this table: unpriced"
    assert [line.key for line in est.unpriced(fixed=True)] == ["elasticache.valkey.cache.t4g.micro"]


def test_usage_follows_the_assumptions_and_dead_letter_queues_are_idle() -> None:
    table = prices(**{"lambda__arm64__gb-second": 0.00001, "lambda__request__million": 0.2,
                      "sqs__standard__request__million": 0.4, "vpc__nat-gateway__gb": 0.05})
    usage = CostConfig(function_invocations=200_000, function_average_ms=500, queue_requests=3_000_000,
                       nat_processed_gb=10)
    records = stack(
        rec("aws:lambda/function:Function", "fn", memorySize=2048.0, architectures=["arm64"]),
        rec("aws:sqs/queue:Queue", "dlq"),
        rec("aws:sqs/queue:Queue", "q", redrivePolicy='{"deadLetterTargetArn": "arn:dlq"}'),
        rec("aws:ec2/natGateway:NatGateway", "nat"))
    est = estimate(records, usage, table)
    # 200,000 x 0.5 s x 2 GB = 200,000 GB-s
    assert monthly(est, "fn", "arm64 compute") == pytest.approx(200_000 * 0.00001)  # 2.00
    assert monthly(est, "fn", "requests") == pytest.approx(0.2 * 0.2)  # 0.04
    assert monthly(est, "q", "standard requests") == pytest.approx(3 * 0.4)  # 1.20
    assert not [line for line in est.lines if line.resource == "dlq"]
    assert monthly(est, "nat", "NAT data processed") == pytest.approx(0.5)
    assert est.total(fixed=False) == pytest.approx(2.0 + 0.04 + 1.2 + 0.5)


def test_bucket_requests_and_replication_transfer_by_hand() -> None:
    table = prices(**{"s3__put__thousand": 0.005, "s3__get__thousand": 0.0004, "s3__inter-region-transfer__gb": 0.02})
    usage = CostConfig(bucket_stored_gb=50, bucket_put_requests=100_000, bucket_get_requests=1_000_000)
    records = stack(rec("aws:s3/bucket:Bucket", "docs"),
                    rec("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "replication"))
    est = estimate(records, usage, table)
    assert monthly(est, "docs", "PUT/COPY/POST/LIST") == pytest.approx(100 * 0.005)  # 100 thousand PUTs: 0.50
    assert monthly(est, "docs", "GET") == pytest.approx(1_000 * 0.0004)  # 1,000 thousand GETs: 0.40
    assert monthly(est, "docs", "Standard storage") is None, "no storage price in this table: unpriced"
    assert monthly(est, "replication", "cross-region") == pytest.approx(50 * 0.02)  # every stored GB once: 1.00
    assert est.total(fixed=False) == pytest.approx(0.5 + 0.4 + 1.0)


def test_a_resource_without_a_price_is_unpriced_not_zero() -> None:
    est = estimate(stack(rec("aws:ec2/natGateway:NatGateway", "nat")), CostConfig(), prices())
    [line] = [line for line in est.lines if line.fixed]
    assert line.price is None and line.monthly is None
    assert est.unpriced(fixed=True) == [line]
    text = "\n".join(cost_view.render(est, CostConfig()))
    assert "unpriced  nat: NAT gateway-hours = 730 x unpriced" in text
    assert "(+ 1 unpriced)" in text


def test_diff_shows_the_change_in_dollars() -> None:
    table = prices(**{"vpc__nat-gateway__hour": 0.05})
    one = estimate(stack(rec("aws:ec2/natGateway:NatGateway", "nat-0")), CostConfig(), table)
    three = estimate(stack(*(rec("aws:ec2/natGateway:NatGateway", f"nat-{i}") for i in range(3))), CostConfig(), table)
    assert cost_view.diff(one, three)[0] == "fixed: $36.50 -> $109.50 (+73.00 USD/month)"


def test_every_price_names_an_https_source_and_the_date_it_was_read() -> None:
    table = load_prices()
    assert table.prices
    for price in table.prices.values():
        assert re.match(r"https://\S+", price.source), price
        assert date.fromisoformat(price.read) <= date(2026, 12, 31), price
        assert price.usd > 0
        assert price.source_kind in SOURCE_KINDS, price
        on_aws = price.source.startswith("https://aws.amazon.com/")
        assert on_aws == (price.source_kind == "aws"), f"{price.key}: source_kind says {price.source_kind}"
    regions = {region for _, region in table.prices}
    assert regions == {"us-east-1", "us-west-1"}


def test_a_price_without_its_source_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("hours_per_month: 730\nprices:\n  - {key: kms.key, regions: [us-east-1], usd: 1, unit: key-month,"
                    " source: 'https://example.com', read: 2026-12-03}\n")
    with pytest.raises(ValueError, match=r"prices.yaml: kms.key needs source_kind, one of aws, third-party"):
        load_prices(path)


def test_the_plan_says_how_much_rests_on_third_party_pages() -> None:
    table = prices(**{"vpc__nat-gateway__hour": 0.05, "kms__key": 1.0})
    aws_kms = Price(key="kms.key", region="us-east-1", usd=1.0, unit="u", source="https://aws.amazon.com/kms/pricing/",
                    read="d", source_kind="aws")
    table.prices[("kms.key", "us-east-1")] = aws_kms
    est = estimate(stack(rec("aws:ec2/natGateway:NatGateway", "nat"), rec("aws:kms/key:Key", "key")), CostConfig(),
                   table)
    text = "\n".join(cost_view.render(est, CostConfig()))
    # the NAT gateway (730 x 0.05 = 36.50) is third-party, the key ($1) is read on AWS's page
    assert "Priced from third-party pages quoting AWS: $36.50 of $37.50" in text
    assert "| `kms.key` | us-east-1 | 1 | 1 | $1/u | aws | $1.00 |" in cost_view.summary_table(est)


def test_stack_totals_are_the_sum_of_their_priced_lines(stack: StackRecords) -> None:
    """No stack total is pinned: the table moves as prices are sourced; what must hold is that totals add up."""
    est = estimate(stack, stack_cost_config(stack.stack))
    fixed = [line for line in est.lines if line.fixed]
    usage = [line for line in est.lines if not line.fixed]
    fixed_sum = sum(line.monthly for line in fixed if line.monthly is not None)
    usage_sum = sum(line.monthly for line in usage if line.monthly is not None)
    assert est.total(fixed=True) == pytest.approx(fixed_sum)
    assert est.total(fixed=False) == pytest.approx(usage_sum)
    assert est.total() == pytest.approx(fixed_sum + usage_sum)
    assert sum(f + u for f, u in est.by_group().values()) == pytest.approx(fixed_sum + usage_sum)
    for line in est.unpriced():
        assert line.monthly is None, "an unpriced line adds nothing and says so"
    table = cost_view.summary_table(est)
    assert table[-2].startswith(f"| **fixed total** | | | | | | **{cost_view.money(fixed_sum)}** "
                                f"(+ {len(est.unpriced(fixed=True))} unpriced)")
    total_line = [line for line in cost_view.render(est, stack_cost_config(stack.stack)) if line.startswith("Total:")]
    assert total_line == [f"Total: fixed {cost_view.money(fixed_sum)} (+ {len(est.unpriced(fixed=True))} unpriced), "
                          f"usage {cost_view.money(usage_sum)} (+ {len(est.unpriced(fixed=False))} unpriced), all "
                          f"{cost_view.money(fixed_sum + usage_sum)} per month"]


def test_costs_config_section_is_validated_like_the_others() -> None:
    assert costs_section("dev", None) == CostConfig()
    assert costs_section("dev", {"fixedBudgetUsd": 250, "queueRequests": 5}).queue_requests == 5
    with pytest.raises(ConfigError, match=r"macro-infra:costs.queueRequestz is not a known setting \(stack dev"):
        costs_section("dev", {"queueRequestz": 5})
    with pytest.raises(ConfigError, match=r"macro-infra:costs.bucketStoredGb must be at least 0"):
        costs_section("dev", {"bucketStoredGb": -1})
    with pytest.raises(ConfigError, match=r"macro-infra:costs.fixedBudgetUsd must be at least 1"):
        costs_section("dev", {"fixedBudgetUsd": 0})


def test_dev_fixed_cost_is_within_its_budget_and_prod_costs_more(dev: StackRecords, prod: StackRecords) -> None:
    dev_usage, prod_usage = stack_cost_config("dev"), stack_cost_config("prod")
    assert dev_usage.fixed_budget_usd == 250
    dev_est, prod_est = estimate(dev, dev_usage), estimate(prod, prod_usage)
    assert 0 < dev_est.total(fixed=True) <= dev_usage.fixed_budget_usd
    assert prod_est.total(fixed=True) > dev_est.total(fixed=True)
    nat = [line for line in dev_est.lines if line.key == "vpc.nat-gateway.hour"]
    assert len(nat) == 1 and nat[0].monthly == pytest.approx(730 * 0.045), "dev runs one NAT gateway"
    assert len([line for line in prod_est.lines if line.key == "vpc.nat-gateway.hour"]) == 3
    report = evaluate(dev)
    assert "COST-BUDGET" in report.passed and not [a for a in report.advisories if a.rule_id == "COST-BUDGET"]


def test_dev_fixed_cost_is_fully_priced_and_proxies_bill_their_targets_vcpus(dev: StackRecords,
                                                                          prod: StackRecords) -> None:
    """Dev's budget verdict covers its whole fixed cost; the proxy line follows the target's class in both stacks."""
    dev_est, prod_est = estimate(dev, stack_cost_config("dev")), estimate(prod, stack_cost_config("prod"))
    assert [line.key for line in dev_est.unpriced(fixed=True)] == []
    table = load_prices()
    for est, records in ((dev_est, dev), (prod_est, prod)):
        classes = {r.inputs.get("identifier"): r.inputs.get("instanceClass")
                   for r in records.of_type("aws:rds/instance:Instance")}
        targets = [classes[t.inputs.get("dbInstanceIdentifier")]
                   for t in records.of_type("aws:rds/proxyTarget:ProxyTarget")]
        proxies = [line for line in est.lines if line.key == "rds.proxy.vcpu"]
        assert targets and len(proxies) == len(targets)
        for line, cls in zip(proxies, targets, strict=True):
            assert line.price is not None, f"{est.stack}: vCPUs of {cls} unsourced"
            assert line.quantity == max(table.vcpus[cls], 2) * table.hours_per_month


def test_readme_generated_blocks_match_the_records(dev: StackRecords, prod: StackRecords) -> None:
    text = docs.README.read_text()
    for name, body in docs.generated({"dev": dev, "prod": prod}.__getitem__).items():
        assert docs.read_block(text, name) == body, f"README block {name} is stale: run make docs"


FIXED_TYPES = ("aws:rds/instance:Instance", "aws:opensearch/domain:Domain",
               "aws:elasticache/replicationGroup:ReplicationGroup", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
               "aws:kms/key:Key", "aws:secretsmanager/secret:Secret", "aws:cloudwatch/metricAlarm:MetricAlarm",
               "aws:rds/proxy:Proxy")


def test_every_fixed_billable_record_has_a_line_priced_or_unpriced(stack: StackRecords) -> None:
    """Read generically from the records, so keys, secrets or alarms other changes add are costed without edits."""
    est = estimate(stack, stack_cost_config(stack.stack))
    costed = {line.resource for line in est.lines if line.fixed}
    for rec in stack:
        if rec.type in FIXED_TYPES:
            assert rec.name in costed, f"{rec.type} {rec.name} has no cost line"
    assert all(line.monthly is None or line.monthly > 0 for line in est.lines)


def test_the_plan_prints_diagram_costs_and_both_diffs(capsys: pytest.CaptureFixture[str], dev: StackRecords,
                                                      prod: StackRecords, tmp_path: Path) -> None:
    from plan.__main__ import main

    out_file = tmp_path / "records.json"
    main(["dev", "--diff", "prod", "--diagram", "--no-compliance", "--json", str(out_file)])
    out = capsys.readouterr().out
    for heading in ("Architecture diagram of dev", "```mermaid", "Monthly estimate for stack dev",
                    "Fixed (billed whether used or not):", "Usage (under the assumptions shown):",
                    "Per component (fixed / usage):", "Diagram differences dev -> prod", "Cost change dev -> prod"):
        assert heading in out, heading
    assert "+ node only in prod: network-nat-1 (gateway)" in out
    assert re.search(r"fixed: \$[\d,.]+ -> \$[\d,.]+ \(\+[\d,.]+ USD/month\)", out)
    written = json.loads(out_file.read_text())
    assert written["diagram"]["mermaid"].startswith("flowchart LR")
    assert written["cost"]["fixed"] == round(estimate(dev, stack_cost_config("dev")).total(fixed=True), 2)
