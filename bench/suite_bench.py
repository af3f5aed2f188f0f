"""What the test suite and the wiring harness cost (issue 10: the whole suite within 60 s on 2 cores).

Two parts, written to bench/results/suite.md:
- the suite as `make test` (it runs that command), wall and CPU per run, with the load average around it;
- the harness's own costs, each the median of many repetitions in this process: building a stack's world in moto the
  first time, restoring it from that first build (what every later test does), starting `mock_aws` fresh vs nested
  (the suite keeps one started per process), and one AWS call made by a function under its recorded policies vs the
  same call unchecked.

Run: ``.venv/bin/python bench/suite_bench.py [--runs 3] [--no-suite]``.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
SUITE = ["make", "-s", "test"]  # the README's test command itself, so its pytest arguments live in one place


def median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def suite_run() -> tuple[float, float, int, tuple[float, float]]:
    before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(SUITE, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    passed = int(re.search(r"(\d+) passed", out).group(1))  # type: ignore[union-attr]
    return wall, cpu, passed, (before, os.getloadavg()[0])


def harness_costs() -> list[str]:
    import boto3
    from moto import mock_aws
    from moto.core.base_backend import BackendDict

    from infra.records import StackRecords
    from plan.evaluate import evaluate_stack
    from tools.harness import world as world_module
    from tools.harness.world import World

    rows = ["| harness step | dev ms | prod ms |", "|---|---:|---:|"]
    measured: dict[str, list[float]] = {}
    url = "postgresql://bench:bench@127.0.0.1:5432/bench"  # never connected to: the build only stores it
    keep = {"core": {"reset_boto3_session": False}}
    with mock_aws(config=keep):  # type: ignore[arg-type]
        for stack in ("dev", "prod"):
            records = evaluate_stack(stack)

            def fresh(records: StackRecords = records) -> None:
                BackendDict.reset()
                world_module._TEMPLATES.clear()
                World.build(records, database_url=url)

            def restored(records: StackRecords = records) -> None:
                BackendDict.reset()
                World.build(records, database_url=url)

            measured.setdefault("world built from the records (a stack's first test)", []).append(
                median_ms(fresh, 15))
            measured.setdefault("world restored from that first build (every later test)", []).append(
                median_ms(restored, 50))
        BackendDict.reset()
        world = World.build(evaluate_stack("dev"), database_url=url)
        bucket = world.bucket("documents")
        world.s3.put_object(Bucket=bucket, Key="u/d/1.txt", Body=b"x")
        with world:
            client = boto3.client("s3", region_name="us-east-1")
            unchecked = median_ms(lambda: client.head_object(Bucket=bucket, Key="u/d/1.txt"), 300)
            with world.acting_as("text_extractor"):
                authorised = median_ms(lambda: client.head_object(Bucket=bucket, Key="u/d/1.txt"), 300)
    fresh_start = median_ms(lambda: mock_aws().__enter__().__exit__(None, None, None), 30)
    with mock_aws(config=keep):  # type: ignore[arg-type]
        nested = median_ms(lambda: mock_aws().__enter__().__exit__(None, None, None), 300)
    for step, (dev, prod) in measured.items():
        rows.append(f"| {step} | {dev:.1f} | {prod:.1f} |")
    rows += [
        "",
        "| per test or call | ms |",
        "|---|---:|",
        f"| `mock_aws` started fresh (what each test paid before) | {fresh_start:.1f} |",
        f"| `mock_aws` nested in the process's own (what each test pays now) | {nested:.3f} |",
        f"| S3 HeadObject on moto, unchecked | {unchecked:.2f} |",
        f"| the same call made by text_extractor, authorised against its recorded policies | {authorised:.2f} |",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-suite", action="store_true")
    opts = parser.parse_args()
    lines = ["# Test suite and harness cost", ""]
    if not opts.no_suite:
        lines += ["| run | tests | wall s | CPU s (all processes) | load average before → after |",
                  "|---:|---:|---:|---:|---|"]
        walls = []
        for n in range(1, opts.runs + 1):
            wall, cpu, passed, (before, after) = suite_run()
            walls.append(wall)
            lines.append(f"| {n} | {passed} | {wall:.1f} | {cpu:.1f} | {before:.2f} → {after:.2f} |")
            print(lines[-1], flush=True)
        lines += ["", f"`{' '.join(SUITE)}` on {os.cpu_count()} cores: median {statistics.median(walls):.1f} s "
                      "(target: at most 60 s on 2 cores).", ""]
    lines += harness_costs()
    text = "\n".join(lines) + "\n"
    print(text)
    if not opts.no_suite:  # the results file keeps the suite's timings
        (ROOT / "bench" / "results" / "suite.md").write_text(text)


if __name__ == "__main__":
    main()
