"""The CI workflows work on a fresh backend: every job that runs pulumi can create its stack, uses the stacks' KMS
secrets provider (the one bootstrap/ creates), and builds the Lambda artifacts before pulumi runs.

Read from the workflow files and the stack files as GitHub and Pulumi read them; each of the three mistakes is fed to
the check as a mutated copy of the real workflows, so the check is shown to fail on it.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PULUMI_ACTION = "pulumi/actions@"
SECRETS_ENV = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_ACCESS_TOKEN")
BOOTSTRAP_ALIAS = "alias/macro-infra-pulumi"


def load(path: Path) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True; the check never needs it.
    return yaml.safe_load(path.read_text())


def stack_files() -> dict[str, dict[str, Any]]:
    return {p.name[len("Pulumi."):-len(".yaml")]: yaml.safe_load(p.read_text())
            for p in sorted(ROOT.glob("Pulumi.*.yaml"))}


def runs_pulumi(step: dict[str, Any]) -> bool:
    uses = step.get("uses", "")
    if uses.startswith(PULUMI_ACTION):
        return bool((step.get("with") or {}).get("command"))
    return bool(re.search(r"(^|[\s;&|(])pulumi\s", step.get("run", "")))


def builds_artifacts(step: dict[str, Any]) -> bool:
    return bool(re.search(r"\bmake\b[^\n;&|]*\bbuild\b", step.get("run", "")))


def job_stacks(job: dict[str, Any], name: str) -> list[str]:
    """Stack names a pulumi step works on, with a matrix expression expanded to the matrix's values."""
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    found = re.fullmatch(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", name)
    return [str(v) for v in matrix.get(found.group(1), [])] if found else [name]


def workflow_problems(workflow: dict[str, Any], stacks: dict[str, dict[str, Any]]) -> list[str]:
    """Every way a workflow could not run pulumi on a fresh backend."""
    problems: list[str] = []
    for job_id, job in (workflow.get("jobs") or {}).items():
        steps = job.get("steps") or []
        env = {**(workflow.get("env") or {}), **(job.get("env") or {})}
        for step in steps:
            env |= step.get("env") or {}
        for key in SECRETS_ENV:
            if key in env:
                problems.append(f"{job_id}: sets {key}; the stacks need no passphrase or token")
        built = False
        for index, step in enumerate(steps):
            built = built or builds_artifacts(step)
            if not runs_pulumi(step):
                continue
            where = f"{job_id} step {index + 1}"
            if not built:
                problems.append(f"{where}: runs pulumi before `make build` (the program needs dist/lambdas)")
            problems += _stack_problems(where, job, steps[:index], step, stacks)
    return problems


def _stack_problems(where: str, job: dict[str, Any], before: list[dict[str, Any]], step: dict[str, Any],
                    stacks: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    if step.get("uses", "").startswith(PULUMI_ACTION):
        inputs = step.get("with") or {}
        name = str(inputs.get("stack-name", ""))
        creates = inputs.get("upsert") is True or any(
            re.search(r"pulumi stack (select\s.*--create|init)\b", s.get("run", "")) for s in before)
        provider = inputs.get("secrets-provider")
        if provider is None:  # then it must come from an explicit select --create / init step
            provider = next((m.group(1) for s in before
                             for m in [re.search(r"--secrets-provider[= ](\S+)", s.get("run", ""))] if m), None)
    else:
        run = step.get("run", "")
        found = re.search(r"(?:--stack|-s)[= ](\$\{\{.*?\}\}|\S+)", run)
        name = found.group(1) if found else ""
        creates = bool(re.search(r"pulumi stack (select\s.*--create|init)\b", run))
        found = re.search(r"--secrets-provider[= ](\S+)", run)
        provider = found.group(1) if found else None
    if not name:
        return [f"{where}: names no stack"]
    if not creates:
        problems.append(f"{where}: cannot create stack {name} on a fresh backend (no upsert, no select --create)")
    for stack in job_stacks(job, name):
        if stack not in stacks:
            problems.append(f"{where}: stack {stack} has no Pulumi.{stack}.yaml")
            continue
        expected = stacks[stack].get("secretsprovider")
        if provider != expected:
            problems.append(f"{where}: creates {stack} with secrets provider {provider!r}, "
                            f"Pulumi.{stack}.yaml names {expected!r}")
    return problems


def test_the_workflows_can_create_their_stacks_with_the_kms_provider_after_make_build() -> None:
    assert {p.name for p in WORKFLOWS} == {"preview.yml", "deploy.yml"}
    stacks = stack_files()
    problems = [f"{p.name}: {problem}" for p in WORKFLOWS for problem in workflow_problems(load(p), stacks)]
    assert problems == []
    pulumi_steps = [s for p in WORKFLOWS for job in load(p)["jobs"].values() for s in job["steps"] if runs_pulumi(s)]
    assert len(pulumi_steps) == 3  # preview (a matrix over both stacks), deploy dev, deploy prod


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_files_name_the_bootstraps_kms_key_in_the_stacks_region(stack: str) -> None:
    stack_file = stack_files()[stack]
    region = stack_file["config"]["aws:region"]
    assert stack_file["secretsprovider"] == f"awskms://{BOOTSTRAP_ALIAS}?region={region}"
    assert "encryptionsalt" not in stack_file, "a passphrase provider's salt next to a KMS provider"


def test_the_bootstrap_creates_the_alias_the_stacks_name() -> None:
    from bootstrap.ci_access import SECRETS_KEY_ALIAS

    assert SECRETS_KEY_ALIAS == BOOTSTRAP_ALIAS


# --- The check fails on each mistake --------------------------------------------------------------------------------

def pulumi_step(workflow: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    for job in workflow["jobs"].values():
        for index, step in enumerate(job["steps"]):
            if runs_pulumi(step):
                return job["steps"], index
    raise AssertionError("no pulumi step")


@pytest.fixture(params=[p.name for p in WORKFLOWS])
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    return copy.deepcopy(load(ROOT / ".github" / "workflows" / request.param))


def test_a_workflow_that_cannot_create_its_stack_fails(workflow: dict[str, Any]) -> None:
    steps, index = pulumi_step(workflow)
    del steps[index]["with"]["upsert"]
    assert any("cannot create stack" in p for p in workflow_problems(workflow, stack_files()))


def test_an_explicit_select_create_step_is_enough(workflow: dict[str, Any]) -> None:
    steps, index = pulumi_step(workflow)
    inputs = steps[index]["with"]
    del inputs["upsert"]
    provider = inputs.pop("secrets-provider")
    steps.insert(index, {"run": f"pulumi stack select --create --stack {inputs['stack-name']} "
                                f"--secrets-provider {provider}"})
    assert workflow_problems(workflow, stack_files()) == []


@pytest.mark.parametrize("provider", ["passphrase", "awskms://alias/another-key?region=us-east-1", None])
def test_a_workflow_naming_another_secrets_provider_fails(workflow: dict[str, Any], provider: str | None) -> None:
    steps, index = pulumi_step(workflow)
    steps[index]["with"]["secrets-provider"] = provider
    assert any("secrets provider" in p for p in workflow_problems(workflow, stack_files()))


def test_a_workflow_with_a_passphrase_fails(workflow: dict[str, Any]) -> None:
    steps, index = pulumi_step(workflow)
    steps[index]["env"] = {"PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PASSPHRASE }}"}
    assert any("PULUMI_CONFIG_PASSPHRASE" in p for p in workflow_problems(workflow, stack_files()))


def test_a_workflow_running_pulumi_before_make_build_fails(workflow: dict[str, Any]) -> None:
    steps, index = pulumi_step(workflow)
    build = next(i for i, s in enumerate(steps) if builds_artifacts(s))
    steps.append(steps.pop(build))
    assert any("before `make build`" in p for p in workflow_problems(workflow, stack_files()))


def test_a_stack_file_naming_another_provider_fails() -> None:
    stacks = stack_files()
    stacks["prod"]["secretsprovider"] = "passphrase"
    problems = [p for path in WORKFLOWS for p in workflow_problems(load(path), stacks)]
    assert problems and all("prod" in p for p in problems)
