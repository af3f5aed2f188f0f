"""The real functions' pins: exact, complete for the Lambda platform, and the versions the test suite runs.

Checked offline against this venv's installed metadata, so a pin that drifts from what the tests exercised, or a new
dependency of a dependency that nobody pinned, fails here instead of at deploy time.
"""

from __future__ import annotations

import importlib.metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import artifacts
from tools.build_lambdas import MARKER_ENV, PROVIDED_BY_RUNTIME, parse_pins, read_constraints


@pytest.mark.parametrize("function", artifacts.FUNCTIONS)
def test_pins_are_exact_complete_and_tested(function):
    folder = artifacts.LAMBDAS_DIR / function
    assert (folder / "requirements.txt").is_file(), f"{function}: requirements.txt missing"
    direct = parse_pins(folder / "requirements.txt", f"function {function!r}")
    pins = read_constraints(artifacts.CONSTRAINTS_FILE)
    pins.update({canonicalize_name(r.name): next(iter(r.specifier)).version for r in direct})
    assert not PROVIDED_BY_RUNTIME & {canonicalize_name(r.name) for r in direct}, f"{function}: boto3 is in the runtime"

    problems: list[str] = []
    queue = [(r, "requirements.txt") for r in direct]
    seen: set[str] = set()
    while queue:
        req, parent = queue.pop()
        name = canonicalize_name(req.name)
        if name in seen or name in PROVIDED_BY_RUNTIME:
            continue
        seen.add(name)
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} (via {parent}) is not installed in the test venv")
            continue
        if name not in pins:
            problems.append(f"{name} (via {parent}) has no pin")
        elif pins[name] != installed:
            problems.append(f"{name} is pinned {pins[name]} but the tests run {installed}")
        for dep in importlib.metadata.requires(name) or []:
            dep_req = Requirement(dep)
            if dep_req.marker is None or dep_req.marker.evaluate({**MARKER_ENV, "extra": ""}):
                queue.append((dep_req, f"{name}=={installed}"))
    assert problems == [], f"function {function!r}: " + "; ".join(problems)


@pytest.mark.parametrize("function", artifacts.FUNCTIONS)
def test_source_hash_is_computable_without_building(function):
    digest = artifacts.source_hash(function)
    assert len(digest) == 64 and digest == artifacts.source_hash(function)
