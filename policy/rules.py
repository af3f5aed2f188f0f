"""The public face of the rule set: every rule registered, and ``evaluate(stack) -> Report``.

Rules live in one module per area; importing them here registers them. Add a rule with ``@resource_rule`` or
``@stack_rule`` in the matching module and give it a violating and a passing example in ``tests/policy``.
"""

from __future__ import annotations

from infra.records import StackRecords
from policy import rules_compute, rules_data, rules_iam, rules_network, rules_s3  # noqa: F401  (registration)
from policy.engine import (
    ADVISORY,
    MANDATORY,
    REGISTRY,
    Report,
    Rule,
    Violation,
    Waiver,
    run_resource_rule,
    run_rule,
)
from policy.engine import evaluate as _evaluate

RULES: dict[str, Rule] = REGISTRY


def evaluate(stack: StackRecords) -> Report:
    """Every rule over one recorded stack, with the exceptions of ``policy/exceptions.py`` applied."""
    return _evaluate(stack)


__all__ = ["ADVISORY", "MANDATORY", "RULES", "Report", "Rule", "Violation", "Waiver", "evaluate", "run_resource_rule",
           "run_rule"]
