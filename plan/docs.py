"""``make docs``: rewrite the README's generated blocks (dev's diagram, both stacks' fixed costs) from the records.

Each block sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; ``tests/program/test_docs.py`` fails when a
block differs from what the program records, so the README cannot drift from the program.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from infra.costs import estimate, stack_cost_config
from infra.records import StackRecords
from plan import cost, diagram

README = Path(__file__).resolve().parent.parent / "README.md"


def _diagram(stack: StackRecords) -> str:
    return "```mermaid\n" + diagram.render(diagram.derive(stack)) + "\n```"


def _cost(stack: StackRecords) -> str:
    return "\n".join(cost.summary_table(estimate(stack, stack_cost_config(stack.stack))))


BLOCKS: dict[str, tuple[str, Callable[[StackRecords], str]]] = {
    "diagram:dev": ("dev", _diagram),
    "cost:dev": ("dev", _cost),
    "cost:prod": ("prod", _cost),
}


def generated(load: Callable[[str], StackRecords]) -> dict[str, str]:
    return {name: render(load(stack)) for name, (stack, render) in BLOCKS.items()}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {re.escape(name)}:start -->)(.*?)(<!-- {re.escape(name)}:end -->)", re.S)


def read_block(text: str, name: str) -> str:
    found = _pattern(name).search(text)
    if found is None:
        raise KeyError(f"README.md has no block <!-- {name}:start --> ... <!-- {name}:end -->")
    return found.group(2).strip("\n")


def write_block(text: str, name: str, body: str) -> str:
    read_block(text, name)
    return _pattern(name).sub(lambda m: f"{m.group(1)}\n{body}\n{m.group(3)}", text)


def main() -> int:
    from plan.evaluate import evaluate_stack

    text = README.read_text()
    updated = text
    for name, body in generated(evaluate_stack).items():
        updated = write_block(updated, name, body)
    if updated != text:
        README.write_text(updated)
        print(f"README.md: generated blocks rewritten ({', '.join(BLOCKS)})")
    else:
        print("README.md: generated blocks already match the records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
