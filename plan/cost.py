"""The plan's cost section: the monthly estimate of ``infra.costs`` as tables, and its change between two stacks."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from infra.config import CostConfig
from infra.costs import CostLine, Estimate


def money(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:,.2f}"


def number(value: float) -> str:
    """Plain decimals, never exponents: 100,000 and 0.0000133334."""
    return f"{value:,.10f}".rstrip("0").rstrip(".")


def _unit_price(line: CostLine) -> str:
    return "unpriced" if line.price is None else f"${number(line.price.usd)}/{line.price.unit}"


def _source_kind(line: CostLine) -> str:
    return "—" if line.price is None else line.price.source_kind


def render(est: Estimate, usage: CostConfig) -> list[str]:
    """Fixed lines, then usage lines with their assumptions, then totals per component and for the stack."""
    out = [f"Monthly estimate for stack {est.stack} (on-demand list prices of infra/prices.yaml; free tiers not "
           f"subtracted; unpriced = no sourced price, counted as nothing)"]
    for fixed, title in ((True, "Fixed (billed whether used or not)"), (False, "Usage (under the assumptions shown)")):
        lines = sorted((line for line in est.lines if line.fixed == fixed),
                       key=lambda line: (-(line.monthly or 0), line.group, line.resource, line.item))
        out.append(f"{title}:")
        for line in lines:
            said = f"  [{line.assumption}]" if line.assumption else ""
            out.append(f"  {money(line.monthly):>12}  {line.resource}: {line.item} = {number(line.quantity)} x "
                       f"{_unit_price(line)} ({line.region}){said}")
    out.append("Per component (fixed / usage):")
    for group, (fixed_usd, usage_usd) in sorted(est.by_group().items(), key=lambda kv: -sum(kv[1])):
        out.append(f"  {money(fixed_usd):>12} / {money(usage_usd):>10}  {group}")
    unpriced_fixed, unpriced_usage = est.unpriced(fixed=True), est.unpriced(fixed=False)
    out.append(f"Total: fixed {money(est.total(fixed=True))} (+ {len(unpriced_fixed)} unpriced), usage "
               f"{money(est.total(fixed=False))} (+ {len(unpriced_usage)} unpriced), all "
               f"{money(est.total())} per month")
    if unpriced_fixed:
        out.append("Unpriced fixed items: " + ", ".join(sorted({line.key for line in unpriced_fixed})))
    third_party = sum(line.monthly or 0 for line in est.lines if line.price and line.price.source_kind != "aws")
    if third_party:
        out.append(f"Priced from third-party pages quoting AWS: {money(third_party)} of {money(est.total())} "
                   f"(re-check those prices against the AWS Pricing Calculator)")
    if usage.fixed_budget_usd is not None:
        verdict = "within" if est.total(fixed=True) <= usage.fixed_budget_usd else "OVER"
        out.append(f"Fixed-cost budget: ${usage.fixed_budget_usd:,} ({verdict}, priced lines only)")
    return out


def diff(a: Estimate, b: Estimate) -> list[str]:
    """The change in dollars from ``a`` to ``b``: totals, then per component."""
    lines = []
    for label, fixed in (("fixed", True), ("usage", False), ("all", None)):
        before, after = a.total(fixed=fixed), b.total(fixed=fixed)
        lines.append(f"{label}: {money(before)} -> {money(after)} ({after - before:+,.2f} USD/month)")
    groups_a, groups_b = a.by_group(), b.by_group()
    for group in sorted(groups_a.keys() | groups_b.keys()):
        before, after = sum(groups_a.get(group, (0, 0))), sum(groups_b.get(group, (0, 0)))
        if round(after - before, 2):
            lines.append(f"  {after - before:+,.2f}  {group}")
    count_a, count_b = len(a.unpriced()), len(b.unpriced())
    if count_a or count_b:
        lines.append(f"unpriced lines: {count_a} -> {count_b}")
    return lines


def summary_table(est: Estimate) -> list[str]:
    """A Markdown table of the fixed lines grouped by what is billed (the README's cost block)."""
    grouped: dict[tuple[str, str], list[CostLine]] = defaultdict(list)
    for line in est.lines:
        if line.fixed:
            grouped[(line.key, line.region)].append(line)
    rows = []
    for (key, region), lines in grouped.items():
        monthly = None if lines[0].price is None else sum(line.monthly or 0 for line in lines)
        quantity = sum(line.quantity for line in lines)
        rows.append((-(monthly or 0), key, region, len(lines), quantity, lines[0], monthly))
    out = ["| Fixed item | Region | Lines | Quantity | Unit price | Source | Monthly |",
           "|---|---|---|---|---|---|---|"]
    for _, key, region, count, quantity, first, monthly in sorted(rows):
        out.append(f"| `{key}` | {region} | {count} | {number(quantity)} | {_unit_price(first)} | "
                   f"{_source_kind(first)} | {money(monthly)} |")
    out.append(f"| **fixed total** | | | | | | **{money(est.total(fixed=True))}** "
               f"(+ {len(est.unpriced(fixed=True))} unpriced) |")
    out.append(f"| usage total (stack's assumptions) | | | | | | {money(est.total(fixed=False))} "
               f"(+ {len(est.unpriced(fixed=False))} unpriced) |")
    return out


def to_json(est: Estimate) -> dict[str, Any]:
    return {"fixed": round(est.total(fixed=True), 2), "usage": round(est.total(fixed=False), 2),
            "lines": [{"group": line.group, "resource": line.resource, "item": line.item, "fixed": line.fixed,
                       "quantity": line.quantity, "unit": line.unit, "key": line.key, "region": line.region,
                       "unitPrice": line.price.usd if line.price else None,
                       "source": line.price.source if line.price else None,
                       "sourceKind": line.price.source_kind if line.price else None,
                       "monthly": None if line.monthly is None else round(line.monthly, 4),
                       "assumption": line.assumption} for line in est.lines]}
