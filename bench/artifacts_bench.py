"""Artifact size and cold import time per Lambda function: `.venv/bin/python bench/artifacts_bench.py [--runs N]`.

Targets (issue 4): each zip <= 3 MB excluding pdfium's binary, each handler's cold import <= 150 ms.

Import time is measured in a fresh interpreter per run (median of N), two ways:
- "artifact": the zip unpacked into a temp dir and imported with `-B`, so every module shipped in the zip is compiled
  from source on each run, as on Lambda (the zip holds no .pyc and /var/task is read-only); the standard library and
  boto3 keep their bytecode, as the runtime's do. This machine is x86_64 and the artifacts are arm64, so the one
  native library in them (pdfium, in pypdfium2_raw) is swapped for the venv's x86_64 build of the same version.
- "venv": `lambdas/` on sys.path and the venv's packages with their cached bytecode (the best case; the gap to
  "artifact" is what precompiled bytecode in the zip would save).
The interpreter is this venv's (CPython 3.11), not Lambda's 3.13, and the CPU is not Graviton: read the numbers as
relative costs. Attribution per package comes from one extra `-X importtime` run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import artifacts  # noqa: E402
from tools.build_lambdas import BuildError, BuildSettings, build_function, write_manifest  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "artifacts.md"
SIZE_TARGET_MB = 3.0
IMPORT_TARGET_MS = 150.0
PDFIUM_PREFIX = "pypdfium2_raw/"
# Packages whose import cost the table attributes (cumulative, inside the handler import).
ATTRIBUTED = ("aws_lambda_powertools", "pg8000", "pypdfium2", "boto3", "defusedxml")
# Import must not reach AWS: a handler that calls AWS at import time fails fast against a dead local endpoint.
IMPORT_ENV = {
    "ENVIRONMENT": "bench",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_MAX_ATTEMPTS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# Modules timed on their own (artifact mode) so the cost of each dependency choice is visible.
COMPONENTS = (
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.batch",
    "pg8000.dbapi",
    "pypdfium2",
    "defusedxml.ElementTree",
    "boto3",
)
# CPU time by default: on a shared 2-core machine wall time mostly measures the neighbours (the same import varies
# 3x); CPU time of the importing process is what a dedicated Lambda sandbox would spend. `--clock wall` for wall time.
CLOCK = "cpu"
SNIPPET = (
    "import sys, time\n"
    "sys.path[:0] = {paths!r}\n"
    "t, c = time.perf_counter(), time.process_time()\n"
    "import {module}\n"
    "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)\n"
)


@dataclass
class Row:
    function: str
    zip_bytes: int = 0
    pdfium_bytes: int = 0
    unzipped_bytes: int = 0
    artifact_ms: float | None = None
    artifact_min_ms: float | None = None
    venv_ms: float | None = None
    parts_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""


def sizes(zip_path: Path) -> tuple[int, int, int]:
    """(zip size, compressed bytes of pdfium's binary, unzipped size)."""
    with zipfile.ZipFile(zip_path) as zf:
        infos = zf.infolist()
    pdfium = sum(i.compress_size for i in infos if i.filename.startswith(PDFIUM_PREFIX) and ".so" in i.filename)
    return zip_path.stat().st_size, pdfium, sum(i.file_size for i in infos)


def run_import(module: str, paths: list[str], importtime: bool = False) -> tuple[float, str]:
    cmd = [sys.executable, "-B"] + (["-X", "importtime"] if importtime else []) + ["-c"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))} | IMPORT_ENV
    env["POWERTOOLS_SERVICE_NAME"] = module.split(".", 1)[0]
    result = subprocess.run(
        cmd + [SNIPPET.format(paths=paths, module=module)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    if result.returncode != 0:
        tail = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("import time:")]
        raise RuntimeError(tail[-1] if tail else f"exit {result.returncode}")
    wall, cpu = (float(v) for v in result.stdout.strip().splitlines()[-1].split())
    return (cpu if CLOCK == "cpu" else wall), result.stderr


def attribute(importtime_log: str) -> dict[str, float]:
    """Cumulative ms of the first import of each attributed package (nested imports included)."""
    found: dict[str, float] = {}
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if name in ATTRIBUTED and name not in found and cumulative.isdigit():
            found[name] = int(cumulative) / 1000
    return found


def timed_imports(module: str, paths: list[str], runs: int) -> list[float]:
    run_import(module, paths)  # warm the OS file cache; not counted
    return [run_import(module, paths)[0] for _ in range(runs)]


def median_import(module: str, paths: list[str], runs: int) -> float:
    return statistics.median(timed_imports(module, paths, runs))


def unpack_for_this_machine(zip_path: Path, into: Path) -> None:
    """Unpack like Lambda does; swap the arm64 pdfium for the venv's x86_64 build of the same package."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(into)
    raw = into / "pypdfium2_raw"
    if raw.is_dir():
        import pypdfium2_raw  # the venv's copy, same version as pinned (checked by tests/packaging)

        for native in raw.glob("*.so*"):
            native.unlink()
        for native in Path(pypdfium2_raw.__file__).parent.glob("*.so*"):
            shutil.copy2(native, raw / native.name)


def measure(function: str, zip_path: Path, runs: int) -> Row:
    row = Row(function)
    row.zip_bytes, row.pdfium_bytes, row.unzipped_bytes = sizes(zip_path)
    module = f"{function}.handler"
    try:
        with tempfile.TemporaryDirectory(prefix=f"task-{function}-") as task:
            unpack_for_this_machine(zip_path, Path(task))
            times = timed_imports(module, [task], runs)
            row.artifact_ms, row.artifact_min_ms = statistics.median(times), min(times)
            row.parts_ms = attribute(run_import(module, [task], importtime=True)[1])
        row.venv_ms = median_import(module, [str(artifacts.LAMBDAS_DIR)], runs)
    except RuntimeError as exc:
        row.error = str(exc)
    return row


def measure_components(zip_path: Path, runs: int) -> list[tuple[str, float | None]]:
    """Median import time of each component alone, from one unpacked artifact (what it lacks is reported as —)."""
    found: list[tuple[str, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="task-components-") as task:
        unpack_for_this_machine(zip_path, Path(task))
        for module in COMPONENTS:
            top = module.split(".", 1)[0]
            if top != "boto3" and not (Path(task) / top).exists():
                found.append((module, None))
                continue
            found.append((module, median_import(module, [task], runs)))
    return found


BYTECODE_SNIPPET = (
    "import sys, time\n"
    "sys.path[:0] = {paths!r}\n"
    "sys.path.append({site!r})\n"
    "import boto3\n"
    "c = time.process_time()\n"
    "import {module}\n"
    "print((time.process_time() - c) * 1000)\n"
)


def find_python313() -> str | None:
    """A real CPython 3.13 binary (pyenv shims need PYENV_VERSION, which the clean benchmark env drops)."""
    candidates = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    return str(candidates[-1]) if candidates else shutil.which("python3.13")


def bytecode_effect(python313: str, zip_path: Path, function: str, runs: int) -> tuple[float, float]:
    """CPU ms of the handler import after boto3 under CPython 3.13: (zip as shipped, zip plus compiled bytecode)."""
    import sysconfig

    site = sysconfig.get_paths()["purelib"]  # boto3 from this venv stands in for the runtime's
    code = BYTECODE_SNIPPET.format(module=f"{function}.handler", site=site, paths=["TASK"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))} | IMPORT_ENV
    results = []
    with tempfile.TemporaryDirectory(prefix="task-313-") as task:
        unpack_for_this_machine(zip_path, Path(task))
        snippet = code.replace("'TASK'", repr(task))
        for compiled in (False, True):
            if compiled:
                subprocess.run(
                    [python313, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", task],
                    check=True,
                    capture_output=True,
                )
            times = []
            for _ in range(runs + 1):
                out = subprocess.run([python313, "-B", "-c", snippet], capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    raise RuntimeError(out.stderr.strip().splitlines()[-1])
                times.append(float(out.stdout.split()[-1]))
            results.append(statistics.median(times[1:]))
    return results[0], results[1]


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def table(rows: list[Row], runs: int, boto3_ms: float) -> str:
    mb = 1e6
    lines = [
        "| function | zip MB | zip MB excl. pdfium | unzipped MB | import ms (artifact, no .pyc): median (min) "
        "| same minus boto3 alone | import ms (venv, .pyc) | of which powertools | pg8000 | pypdfium2 | boto3 "
        "| targets |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        size_ok = (r.zip_bytes - r.pdfium_bytes) / mb <= SIZE_TARGET_MB
        time_ok = r.artifact_ms is not None and r.artifact_ms <= IMPORT_TARGET_MS
        verdict = f"size {'ok' if size_ok else 'OVER'}, import {'ok' if time_ok else 'OVER'}"
        if not r.zip_bytes:
            verdict = r.error
        elif r.error:
            verdict = f"size {'ok' if size_ok else 'OVER'}, import failed: {r.error}"
        own = None if r.artifact_ms is None else r.artifact_ms - (boto3_ms if "boto3" in r.parts_ms else 0)
        parts = [fmt_ms(r.parts_ms.get(p)) for p in ("aws_lambda_powertools", "pg8000", "pypdfium2", "boto3")]
        lines.append(
            f"| {r.function} | {r.zip_bytes / mb:.2f} | {(r.zip_bytes - r.pdfium_bytes) / mb:.2f} "
            f"| {r.unzipped_bytes / mb:.2f} | {fmt_ms(r.artifact_ms)} ({fmt_ms(r.artifact_min_ms)}) | {fmt_ms(own)} "
            f"| {fmt_ms(r.venv_ms)} | {' | '.join(parts)} | {verdict} |"
        )
    header = (
        f"# Lambda artifacts: size and cold import time\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/artifacts_bench.py --runs {runs}` on "
        f"{platform.machine()} ({os.cpu_count()} cores, shared), CPython {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f} at the end; median of {runs} fresh interpreters per cell, "
        f"**{CLOCK} time** of the import. Targets: <= {SIZE_TARGET_MB:g} MB excluding pdfium's "
        f"binary, <= {IMPORT_TARGET_MS:g} ms import.\n\n"
        "- *artifact*: the zip unpacked and imported with `-B`, so everything in it compiles from source as on "
        "Lambda (no .pyc in the zip, read-only /var/task); arm64 pdfium swapped for the venv's x86_64 build.\n"
        "- *venv*: `lambdas/` (compiled each run) plus the venv's packages with their cached bytecode.\n"
        "- Package columns: cumulative wall ms of that package's first import inside the handler import (artifact "
        "mode, one `-X importtime` run; `—` = not imported); they overlap when one package imports another "
        "(boto3 is charged to whichever imports it first). boto3 comes from the runtime and is not in the zip; "
        f"`import boto3` alone takes {boto3_ms:.0f} ms here (median), subtracted in *same minus boto3 alone*.\n"
        "- This machine is x86_64 running Python 3.11; Lambda is arm64 (Graviton) running 3.13: compare rows "
        "with each other, not with Lambda's INIT duration.\n\n"
    )
    return header + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per measurement (median)")
    parser.add_argument("--no-build", action="store_true", help="measure the artifacts already in dist/lambdas")
    parser.add_argument("--only", action="append", metavar="NAME", help="measure only this function (repeatable)")
    parser.add_argument(
        "--python313", default=find_python313(), help="a CPython 3.13 to measure precompiled bytecode with"
    )
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="what an import's time means")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    functions = args.only or artifacts.discover_functions()
    settings = BuildSettings()
    rows: list[Row] = []
    built: dict[str, dict] = {}
    for function in functions:
        if not args.no_build:
            try:
                built[function] = build_function(function, settings)
            except BuildError as exc:
                rows.append(Row(function, error=f"build failed: {exc}"))
                continue
        zip_path = artifacts.artifact_path(function)
        if not zip_path.is_file():
            rows.append(Row(function, error="no artifact; run tools/build_lambdas.py"))
            continue
        rows.append(measure(function, zip_path, args.runs))
        print(f"measured {function}", file=sys.stderr)
    if built:
        write_manifest(settings.out_dir, built)
    boto3_ms = median_import("boto3", [], args.runs)
    report = table(rows, args.runs, boto3_ms)
    zips = [artifacts.artifact_path(r.function) for r in rows if r.zip_bytes]
    if zips:
        biggest = max(zips, key=lambda p: p.stat().st_size)
        report += (
            f"\n## Import cost of each dependency alone (artifact mode, from `{biggest.name}`, median of {args.runs})"
            "\n\n| module | import ms |\n|---|--:|\n"
        )
        report += "".join(f"| `{m}` | {fmt_ms(ms)} |\n" for m, ms in measure_components(biggest, args.runs))
    if zips and args.python313:
        report += (
            "\n## What bytecode in the zip would save (CPython 3.13, CPU ms of the handler import after boto3, "
            f"median of {args.runs})\n\nThe artifacts ship no .pyc, so Lambda compiles every module on each cold "
            "start. Measured with `" + args.python313 + "` on the unpacked artifact, before and after "
            "`compileall --invalidation-mode unchecked-hash`.\n\n| function | as shipped | with .pyc |\n|---|--:|--:|\n"
        )
        for zip_path in sorted({min(zips, key=lambda p: p.stat().st_size), biggest}):
            try:
                plain, compiled = bytecode_effect(args.python313, zip_path, zip_path.stem, args.runs)
                report += f"| {zip_path.stem} | {plain:.0f} | {compiled:.0f} |\n"
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                report += f"| {zip_path.stem} | failed: {exc} | — |\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
