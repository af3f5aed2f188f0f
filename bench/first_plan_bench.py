"""Time from a fresh clone to the first plan, and warm runs, for one or more commits of this repository.

For each ref: ``git clone`` into a temporary folder (uv's download cache stays warm, as on any machine that installed
once; the clone has no ``.venv`` and no ``dist/``), then in that clone, with this machine's environment
(``PYTHONDONTWRITEBYTECODE=1`` here):

- ``make plan`` on the fresh clone (virtualenv + install + the dev plan with its prod diff), then warm ``make plan``;
- the import floor: a fresh interpreter importing pulumi, pulumi_aws, pulumi_random and the pulumi_aws submodules the
  program uses (``plan_bench.SUBMODULES``), with that clone's virtualenv;
- the first ``make test`` after the plan, then warm ``make test``, on the test files every ref has (``PYTEST_ADDOPTS``
  ignores the others), so added tests do not pass for a slower suite.

Refs are measured interleaved (all refs' fresh runs, then all refs' warm runs) so machine load falls on each alike;
the load average is printed next to every run because the machine's 2 cores are shared.
Run: ``.venv/bin/python bench/first_plan_bench.py --ref before=8f388b7 --ref after=HEAD [--runs 3] [--no-test]``;
results go to ``bench/results/first_plan.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from plan_bench import SUBMODULES  # noqa: E402

FLOOR = """
import time
started, cpu = time.perf_counter(), time.process_time()
import pulumi, pulumi_aws, pulumi_random
for name in {submodules!r}:
    getattr(getattr(pulumi_aws, name), "__loaded__", None)
print(time.perf_counter() - started, time.process_time() - cpu)
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Clone:
    label: str
    ref: str
    path: Path
    commit: str = ""
    timings: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    """measurement → [(wall seconds, CPU seconds of the processes it ran, 1-minute load average when it started)]"""

    pytest_ignores: list[str] = field(default_factory=list)
    """Test files only this ref has: ignored by ``make test`` so every ref runs the same tests."""

    def time(self, what: str, command: list[str]) -> float:
        load = os.getloadavg()[0]
        started, cpu = time.perf_counter(), children_cpu()
        env = dict(os.environ)
        if self.pytest_ignores:
            env["PYTEST_ADDOPTS"] = " ".join(f"--ignore={path}" for path in self.pytest_ignores)
        done = subprocess.run(command, cwd=self.path, capture_output=True, text=True, env=env)
        seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
        if done.returncode not in (0, 1):  # make plan exits 1 on a rule violation: still a printed plan
            sys.exit(f"{self.label}: {' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}"
                     f"{done.stderr[-2000:]}")
        self.timings.setdefault(what, []).append((seconds, cpu, load))
        print(f"  {self.label:8s} {what:22s} {seconds:6.1f} s  cpu {cpu:6.1f} s  (load {load:.1f})", flush=True)
        return seconds

    def floor(self) -> None:
        load = os.getloadavg()[0]
        out = subprocess.run([str(self.path / ".venv/bin/python"), "-c", FLOOR.format(submodules=SUBMODULES)],
                             cwd=self.path, check=True, capture_output=True, text=True)
        seconds, cpu = (float(x) for x in out.stdout.split())
        self.timings.setdefault("import floor", []).append((seconds, cpu, load))
        print(f"  {self.label:8s} {'import floor':22s} {seconds:6.2f} s  cpu {cpu:6.2f} s  (load {load:.1f})",
              flush=True)


def clone(label: str, ref: str, into: Path) -> Clone:
    path = into / label
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True)
    subprocess.run(["git", "checkout", "--quiet", ref], cwd=path, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, check=True, capture_output=True,
                            text=True).stdout.strip()
    return Clone(label=label, ref=ref, path=path, commit=commit)


def test_files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in (path / "tests").rglob("test_*.py")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", action="append", required=True, metavar="LABEL=REF",
                        help="a commit to measure, e.g. before=8f388b7 (repeatable)")
    parser.add_argument("--runs", type=int, default=3, help="warm runs of make plan and import floors per ref")
    parser.add_argument("--test-runs", type=int, default=1, help="warm runs of make test per ref")
    parser.add_argument("--no-test", action="store_true", help="skip make test")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "first_plan.md")
    opts = parser.parse_args()
    # Clones resolve uncommitted refs against this repository: measure commits only.
    refs = [spec.split("=", 1) for spec in opts.ref]
    tmp = Path(tempfile.mkdtemp(prefix="first-plan-"))
    try:
        clones = [clone(label, ref, tmp) for label, ref in refs]
        common = set.intersection(*(test_files(c.path) for c in clones))
        for c in clones:
            c.pytest_ignores = sorted(test_files(c.path) - common)
        print("fresh clones: make plan")
        for c in clones:
            c.time("make plan (fresh)", ["make", "plan"])
        print("warm: import floor and make plan")
        for _ in range(opts.runs):
            for c in clones:
                c.floor()
                c.time("make plan (warm)", ["make", "plan"])
        if not opts.no_test:
            print("make test: first after the plan, then warm")
            for c in clones:
                c.time("make test (first)", ["make", "test"])
            for _ in range(opts.test_runs):
                for c in clones:
                    c.time("make test (warm)", ["make", "test"])
        report = render(clones, opts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(report)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(report)


def render(clones: list[Clone], opts: argparse.Namespace) -> str:
    whats = list(dict.fromkeys(what for c in clones for what in c.timings))
    lines = [
        "# From a fresh clone to the first plan",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/first_plan_bench.py` on the project "
        f"machine ({os.cpu_count()} cores shared with other work), Python {sys.version.split()[0]}, "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}. Each ref is a `git clone` into a "
        "temporary folder (no `.venv`, no `dist/`); uv's download cache was warm (the wheels were already downloaded "
        "once on this machine), so no network time is included. Each cell: wall seconds / CPU seconds of the "
        "processes run (user + system, all cores) / the 1-minute load average when the run started; medians when "
        "there are several runs. Wall time grows with the load other work puts on the 2 cores; CPU time much less.",
        "",
        "| measurement | " + " | ".join(f"{c.label} (`{c.commit}`)" for c in clones) + " |",
        "|---|" + "---:|" * len(clones),
    ]
    for what in whats:
        cells = []
        for c in clones:
            runs = c.timings.get(what, [])
            if not runs:
                cells.append("—")
                continue
            wall, cpu, load = (statistics.median(r[i] for r in runs) for i in range(3))
            digits = 2 if what == "import floor" else 1
            cells.append(f"{wall:.{digits}f} s / {cpu:.{digits}f} s cpu / load {load:.1f}"
                         + (f" (n={len(runs)})" if len(runs) > 1 else ""))
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    ignored = {c.label: c.pytest_ignores for c in clones if c.pytest_ignores}
    lines += ["", "`make plan` = the dev stack's plan with its diff against prod (two evaluations) and the rule set; "
              "`make test` = the suite with 2 workers, on the test files every ref has (ignored: "
              f"{ignored or 'none'}). Warm runs are interleaved between refs.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
