"""Speed of the offline plan: evaluating one stack vs the bare import of the pulumi_aws submodules the program uses.

Target (issue 2): evaluating a stack costs at most 1.5x that import. Each measurement is a fresh interpreter (imports
are what dominates), median of N runs. ``--suite`` also times the whole test suite (target: under 90 s on 2 cores).
Run: ``.venv/bin/python bench/plan_bench.py [--runs 5] [--suite]``; results go to bench/results/plan.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBMODULES = (
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecs",
    "elasticache",
    "iam",
    "kms",
    "lambda_",
    "opensearch",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "vpc",
)
# A submodule loads on the first attribute looked up inside it, not when it is named.
# One fresh interpreter per run: it times the bare import of what the program uses (a submodule loads on the first
# attribute looked up inside it), then the evaluation of one stack, and prints both.
RUN = """
import sys, time
sys.path.insert(0, {root!r})
started = time.perf_counter()
import pulumi, pulumi_aws, pulumi_random
for name in {submodules!r}:
    getattr(getattr(pulumi_aws, name), "__loaded__", None)
imported = time.perf_counter()
from plan.evaluate import evaluate_stack
records = evaluate_stack({stack!r})
done = time.perf_counter()
print(imported - started, done - imported, len(records))
"""


def run(stack: str) -> tuple[float, float, int]:
    code = RUN.format(root=str(ROOT), submodules=SUBMODULES, stack=stack)
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True)
    imported, evaluated, count = out.stdout.split()
    return float(imported), float(evaluated), int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite")
    opts = parser.parse_args()
    rows = [
        "| stack | resources | bare import s | evaluation s | evaluation / import | total / import |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for stack in ("dev", "prod"):
        runs = [run(stack) for _ in range(opts.runs)]
        imported = statistics.median(r[0] for r in runs)
        evaluated = statistics.median(r[1] for r in runs)
        worst = max(worst, evaluated / imported)
        rows.append(
            f"| {stack} | {runs[0][2]} | {imported:.2f} | {evaluated:.2f} | {evaluated / imported:.2f} | "
            f"{(imported + evaluated) / imported:.2f} |"
        )
    rows += [
        "",
        f"Target: evaluating a stack costs at most 1.5x the bare import of the pulumi_aws submodules it uses: "
        f"{'met' if worst <= 1.5 else 'MISSED'} (worst {worst:.2f}x). Medians of {opts.runs} fresh "
        f"interpreters, Python {sys.version.split()[0]}.",
    ]
    if opts.suite:
        seconds = timed_suite()
        rows.append(f"Whole test suite (`pytest -n 2 tests`): {seconds:.1f} s (target: under 90 s on 2 cores).")
    text = "\n".join(rows)
    print(text)
    out = ROOT / "bench" / "results" / "plan.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Offline plan speed\n\n" + text + "\n")


def timed_suite() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "tests"], check=True, cwd=ROOT, capture_output=True
    )
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
