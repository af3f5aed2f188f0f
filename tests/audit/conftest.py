"""The stacks' records, evaluated once per test process (the same fixtures as the program tests)."""

from tests.program.conftest import dev, prod, stack

__all__ = ["dev", "prod", "stack"]
