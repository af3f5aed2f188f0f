#!/usr/bin/env bash
# Validate the GitHub workflows offline: schema (check-jsonschema) and security audit (zizmor). Non-zero on problems.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ ${#workflows[@]} -eq 0 ]; then
  echo "check_workflows: no workflows in .github/workflows" >&2
  exit 1
fi
"$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
"$VENV/bin/zizmor" --offline .github/workflows/
