"""Compile, on every core, the bytecode of the part of pulumi_aws this project imports; run by the Makefile's install.

pulumi_aws ships ~3100 modules for ~260 AWS services. ``import pulumi_aws`` loads the package root and every service's
``__init__`` (lazy stubs); a service's own modules load only when the program or a test touches it (``aws.s3.Bucket``).
Compiling all of it at install (``uv pip install --compile-bytecode``) cost ~40 s on these machines, for modules no run
imports. This compiles the roots and the services the project's sources name, in parallel; every other module a run
imports writes its bytecode on first use (the Makefile lets Python write bytecode even where the machine sets
``PYTHONDONTWRITEBYTECODE``). ``tests/packaging/test_install_bytecode.py`` checks that the services found here cover
every service both stacks load.
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where the project's Python lives (the program, its packages, its tests and tools).
SOURCES = ("__main__.py", "components", "infra", "plan", "policy", "tests", "tools", "bench", "bootstrap")
SERVICE_REFERENCE = re.compile(r"\b(?:aws|pulumi_aws)\.([a-z][a-z0-9_]*)\b")


def referenced_services(root: Path = ROOT) -> set[str]:
    """Names after ``aws.`` / ``pulumi_aws.`` anywhere in the project's Python sources (not all are services)."""
    found: set[str] = set()
    for entry in SOURCES:
        path = root / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py")) if path.is_dir() else []
        for file in files:
            found |= set(SERVICE_REFERENCE.findall(file.read_text(encoding="utf-8")))
    return found


def modules_to_compile(package_dir: Path, services: set[str]) -> list[Path]:
    """The package root's modules, every service's ``__init__``, and all modules of the referenced services."""
    files = sorted(package_dir.glob("*.py"))
    for sub in sorted(p for p in package_dir.iterdir() if (p / "__init__.py").is_file()):
        files += sorted(sub.rglob("*.py")) if sub.name in services else [sub / "__init__.py"]
    return files


def _compile(path: Path) -> bool:
    return bool(compileall.compile_file(path, quiet=2))


def main() -> int:
    spec = importlib.util.find_spec("pulumi_aws")  # located, not imported: importing would compile it serially
    if spec is None or not spec.submodule_search_locations:
        print("compile_bytecode: pulumi_aws is not installed", file=sys.stderr)
        return 1
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    files = modules_to_compile(package_dir, referenced_services())
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        failed = [f for f, ok in zip(files, pool.map(_compile, files, chunksize=32), strict=True) if not ok]
    if failed:
        print(f"compile_bytecode: {len(failed)} modules failed to compile, e.g. {failed[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
