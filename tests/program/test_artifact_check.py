"""Missing Lambda artifacts: the offline plan says so once, in one line; a real preview/up stops before any resource.

Which of the two runs it is comes from the evaluator (``evaluate_program(offline=...)`` sets
``infra.artifacts.offline_evaluation``), so both paths run here under the same mocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.function import MissingArtifactsError
from infra import artifacts
from plan import __main__ as plan_cli
from plan.evaluate import PlatformMocks, evaluate_program, read_stack_config


class CountingMocks(PlatformMocks):
    """Counts every resource the program asks the engine to create."""

    def __init__(self) -> None:
        super().__init__()
        self.registered: list[str] = []

    def new_resource(self, args):  # type: ignore[no-untyped-def]
        self.registered.append(args.name)
        return super().new_resource(args)


@pytest.fixture
def empty_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout where `make build` never ran."""
    dist = tmp_path / "dist" / "lambdas"
    monkeypatch.setattr(artifacts, "DIST_DIR", dist)
    return dist


def built_dist(dist: Path, *, stale: str | None = None) -> None:
    """Every artifact present with a manifest matching the sources (``stale``: one built from other sources)."""
    dist.mkdir(parents=True)
    entries = {}
    for function in artifacts.FUNCTIONS:
        artifacts.artifact_path(function, dist).write_bytes(b"not a real zip")
        entries[function] = {"source_hash": "old" if function == stale else artifacts.source_hash(function),
                             "sha256_base64": "AAAA"}
    (dist / artifacts.MANIFEST_NAME).write_text(json.dumps({"functions": entries}))


def evaluate(stack: str, *, offline: bool, mocks: PlatformMocks | None = None):  # type: ignore[no-untyped-def]
    project, config, secret_keys = read_stack_config(stack)
    return evaluate_program(stack, config, secret_keys, project=project, offline=offline, mocks=mocks)


def test_the_offline_plan_evaluates_without_artifacts(empty_dist: Path) -> None:
    records = evaluate("dev", offline=True)
    assert records.of_type("aws:lambda/function:Function"), "the functions are still planned"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_real_run_stops_before_any_resource_with_one_error_naming_make_build(stack: str, empty_dist: Path) -> None:
    mocks = CountingMocks()
    with pytest.raises(MissingArtifactsError) as raised:
        evaluate(stack, offline=False, mocks=mocks)
    message = str(raised.value)
    assert "make build" in message and "\n" not in message
    assert all(f"{function}.zip" in message for function in artifacts.FUNCTIONS)
    assert mocks.registered == [], "nothing may be registered before the artifact check"


def test_a_real_run_with_every_artifact_built_deploys_them(empty_dist: Path) -> None:
    built_dist(empty_dist)
    assert artifacts.missing_artifacts() == [] and artifacts.stale_artifacts() == []
    records = evaluate("dev", offline=False)
    assert len(records.of_type("aws:lambda/function:Function")) == 9


def test_the_plan_reports_missing_artifacts_once_in_one_line(empty_dist: Path, capsys: pytest.CaptureFixture) -> None:
    plan_cli.main(["dev", "--no-compliance"])
    out, err = capsys.readouterr()
    lines = [line for line in (out + err).splitlines() if "artifact" in line.lower()]
    assert len(lines) == 1, lines
    assert "make build" in lines[0]
    assert all(f"{function}.zip" in lines[0] for function in artifacts.FUNCTIONS)


def test_the_plan_names_stale_artifacts_in_one_line_and_says_nothing_when_all_are_current(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale, current = tmp_path / "stale", tmp_path / "current"
    built_dist(stale, stale="docx_unzip")
    built_dist(current)
    monkeypatch.setattr(artifacts, "DIST_DIR", stale)
    assert plan_cli.artifact_report() == [f"Note: {artifacts.stale_message(['docx_unzip'])}."]
    monkeypatch.setattr(artifacts, "DIST_DIR", current)
    assert plan_cli.artifact_report() == []
