# Every target bootstraps the virtualenv from pyproject.toml itself, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: bootstrap plan test lint typecheck build bench workflows clean fuzz fuzz-long

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	# --compile-bytecode: these machines set PYTHONDONTWRITEBYTECODE, and an uncompiled pulumi_aws costs ~6 s per process.
	$(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode -r pyproject.toml --group dev
	touch $@

## The virtualenv alone (CI workflows call it before pulumi runs)
bootstrap: $(VENV)/.installed

## Offline plan of a stack under Pulumi mocks (no AWS account, no Pulumi CLI): make plan STACK=prod
plan: $(VENV)/.installed
	$(PY) -m plan $(STACK) --diff $(if $(filter prod,$(STACK)),dev,prod)

## Every test: program records for both stacks, rule set, policy pack, handlers on moto and PostgreSQL, packaging
test: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q tests

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

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
