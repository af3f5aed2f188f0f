"""Cost guardrail: a stack's fixed monthly cost against the budget its ``costs`` config section sets (advisory)."""

from __future__ import annotations

from collections.abc import Iterator

from infra.costs import estimate, stack_cost_config
from infra.records import ResourceRecord, StackRecords
from policy.engine import ADVISORY, stack_rule

Found = Iterator[tuple[ResourceRecord | None, str]]


@stack_rule("COST-BUDGET", "The stack's fixed monthly cost stays within its configured budget",
            types=["pulumi:pulumi:Stack"], severity=ADVISORY,
            fix="cut the largest fixed lines (the plan's Cost section lists them) or raise costs.fixedBudgetUsd")
def fixed_cost_budget(stack: StackRecords) -> Found:
    budget = stack_cost_config(stack.stack).fixed_budget_usd
    if budget is None:
        return
    est = estimate(stack)
    fixed = est.total(fixed=True)
    if fixed > budget:
        top = sorted((line for line in est.lines if line.fixed and line.monthly), key=lambda line: -(line.monthly or 0))
        biggest = ", ".join(f"{line.resource} ${line.monthly:,.2f}" for line in top[:3])
        unpriced = len(est.unpriced(fixed=True))
        yield None, (f"fixed cost ${fixed:,.2f}/month exceeds the budget ${budget:,}"
                     f"{f' (and {unpriced} fixed lines are unpriced)' if unpriced else ''}; largest: {biggest}")
