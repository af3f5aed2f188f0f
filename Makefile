# Every target bootstraps the virtualenv from pyproject.toml itself, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: bootstrap plan test lint typecheck build bench workflows audit docs demo fuzz fuzz-long clean

# These machines set PYTHONDONTWRITEBYTECODE=1; the virtualenv is the project's own, so runs started by make write the
# bytecode of what they import (once), and later runs load it instead of compiling again.
export PYTHONDONTWRITEBYTECODE =

# No ensurepip (~6 s of CPU): uv comes from the interpreter's own pip when it has one; uv then adds pip (Pulumi's pip
# toolchain lists packages with it). No --compile-bytecode (~40 s for all of pulumi_aws): compile_bytecode.py compiles
# the part of pulumi_aws the project uses, on every core; the rest compiles on first import.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(PY) install --quiet --disable-pip-version-check uv 2>/dev/null \
	  || { $(PY) -m ensurepip --default-pip >/dev/null && $(VENV)/bin/pip install --quiet --disable-pip-version-check uv; }
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r pyproject.toml --group dev pip
	$(PY) tools/compile_bytecode.py
	touch $@

## The virtualenv alone (CI workflows call it before pulumi runs)
bootstrap: $(VENV)/.installed

## Offline plan of a stack under Pulumi mocks (no AWS account, no Pulumi CLI): make plan STACK=prod
plan: $(VENV)/.installed
	$(PY) -m plan $(STACK) --diff $(if $(filter prod,$(STACK)),dev,prod)

## Every test: program records for both stacks, rule set, policy pack, handlers on moto and PostgreSQL, packaging
test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist worksteal -q -m "not checkov" tests

## The data plane end to end on moto and an embedded PostgreSQL, wired from the dev stack's records (tools/demo.py)
demo: $(VENV)/.installed
	$(PY) -m tools.demo

lint: $(VENV)/.installed
	$(PY) -m ruff check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

## Deterministic Lambda artifacts in dist/lambdas (run before pulumi up); BUILD_FLAGS="--python /path/to/python3.13"
build: $(VENV)/.installed
	$(PY) tools/build_lambdas.py $(BUILD_FLAGS)

bench: $(VENV)/.installed
	$(PY) bench/extract_bench.py
	$(PY) bench/artifacts_bench.py
	$(PY) bench/plan_bench.py
	$(PY) bench/suite_bench.py

## Rewrite the README's generated blocks (dev's architecture diagram, both stacks' fixed costs) from the records
docs: $(VENV)/.installed
	$(PY) -m plan.docs

## Mutation fuzzer, short seeded run (CI; fails on any crash, hang, out-of-memory or abort); see README "Fuzzing"
FUZZ_ARGS ?= --seed 1 --budget 45
fuzz: $(VENV)/.installed
	$(PY) -m fuzz $(FUZZ_ARGS)

## Long run: 10,000 mutants over every format, findings minimised into tests/, report in bench/results/fuzz.md
FUZZ_LONG_ARGS ?= --seed 11 --mutants 10000 --minimise-budget 60
fuzz-long: $(VENV)/.installed
	$(PY) -m fuzz $(FUZZ_LONG_ARGS) --report bench/results/fuzz.md

workflows: $(VENV)/.installed
	bash tools/check_workflows.sh

AUDIT_VENV := .venv-audit
$(AUDIT_VENV)/.installed: tools/audit/requirements.txt | $(VENV)/.installed
	$(PYTHON) -m venv $(AUDIT_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(AUDIT_VENV)/bin/python --compile-bytecode -r tools/audit/requirements.txt
	touch $@

## Outside judges: checkov on both stacks rendered as Terraform plans, parliament on every policy (dist/audit/)
audit: $(VENV)/.installed $(AUDIT_VENV)/.installed
	$(PY) -m tools.audit --checkov $(AUDIT_VENV)/bin/checkov
	$(PY) -m pytest -q -m checkov tests/audit

clean:
	rm -rf $(VENV) $(AUDIT_VENV) dist .pytest_cache .mypy_cache .ruff_cache
