"""The project's packages depend on each other one way only; an import that points back up fails here.

Arrows that may exist (from the README): the program (``__main__.py``) → ``components`` → ``infra``; ``plan`` →
``policy`` → ``infra``; ``tools``/``bench`` use anything; nothing imports ``fuzz``. ``lambdas`` is runtime code
and imports no project package (and never ``pulumi``). Every ``import`` statement is read from the source, including
those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("components", "infra", "plan", "policy", "lambdas", "tools", "bootstrap", "fuzz")

# package -> project packages it may import. Anything not listed is forbidden.
ALLOWED: dict[str, set[str]] = {
    "infra": set(),
    "components": {"infra"},
    "policy": {"infra"},
    "plan": {"infra", "policy"},
    "lambdas": set(),
    "tools": {"infra", "plan", "policy"},
    "bootstrap": {"components", "infra"},  # the account bootstrap program reuses the main program's building blocks
    "fuzz": set(),  # a test tool: it drives lambdas' modules (by their own names) and the test builders
}


def imported_packages(path: Path) -> set[str]:
    """Top-level project packages a module imports (absolute imports only; relative ones stay in the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES or top == "pulumi":
                found.add(top)
    return found


def package_imports(package: str) -> dict[Path, set[str]]:
    return {
        path: imported_packages(path) - {package}
        for path in sorted((ROOT / package).rglob("*.py"))
        if ".venv" not in path.parts
    }


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_lies_below_it(package: str) -> None:
    allowed = ALLOWED[package] | ({"pulumi"} if package != "lambdas" else set())
    wrong = {str(path.relative_to(ROOT)): sorted(found - allowed)
             for path, found in package_imports(package).items() if found - allowed}
    assert not wrong, f"{package} imports packages it must not: {wrong}"


def test_no_two_packages_import_each_other() -> None:
    edges = {(pkg, dep) for pkg in ALLOWED for found in package_imports(pkg).values() for dep in found
             if dep in ALLOWED}
    cycles = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    assert not cycles, f"packages importing each other: {cycles}"


def test_the_checker_sees_a_back_edge(tmp_path: Path) -> None:
    """The rule can fail: a module of ``policy`` importing ``plan`` is reported."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from plan.evaluate import evaluate_stack\n    import infra.records\n")
    assert imported_packages(module) == {"plan", "infra"}
