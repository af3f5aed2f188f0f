"""Both stacks of the program pass every mandatory rule (exceptions are listed in policy/exceptions.py)."""

from __future__ import annotations

import pytest

from plan.evaluate import evaluate_stack
from policy.rules import evaluate


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_has_no_violations(stack):
    report = evaluate(evaluate_stack(stack))
    assert report.ok, "\n" + report.render()
