"""``make audit``: both stacks judged by checkov (rendered as Terraform plans) and parliament (every policy).

    .venv/bin/python -m tools.audit --checkov .venv-audit/bin/checkov [--stacks dev prod] [--out audit-out]

Exits 1 when a finding is not declared in ``policy/exceptions.py``; the plans stay in ``--out`` for reading.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from plan.evaluate import REGION, evaluate_stack
from policy.exceptions import Judge
from tools.audit.judges import Finding, checkov_findings, judge, parliament_findings, policy_documents
from tools.audit.terraform import render_plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", help="checkov executable (its own virtualenv: make audit builds .venv-audit); "
                                          "without it only parliament runs")
    parser.add_argument("--stacks", nargs="+", default=["dev", "prod"])
    parser.add_argument("--out", type=Path, default=Path("dist/audit"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ok = True
    for stack in args.stacks:
        started = time.monotonic()
        records = evaluate_stack(stack)
        plan_file = args.out / f"{stack}.tfplan.json"
        plan_file.write_text(json.dumps(render_plan(records, REGION), indent=1))
        findings: list[Finding] = parliament_findings(records)
        counts = {"policies checked by parliament": sum(1 for _ in policy_documents(records))}
        judges: tuple[Judge, ...] = ("parliament",)
        if args.checkov:
            checkov, checkov_counts = checkov_findings(plan_file, records, args.checkov)
            findings += checkov
            counts.update(checkov_counts)
            judges = ("parliament", "checkov")
        verdict = judge(stack, findings, judges)
        verdict.counts = {**counts, "seconds": round(time.monotonic() - started)}
        print(verdict.render())
        ok &= verdict.ok
    if not args.checkov:
        print("checkov did not run (no --checkov); make audit runs it", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
