"""Artifact size and cold import time per Lambda function: `.venv/bin/python bench/artifacts_bench.py [--runs N]`.

Targets (issue 4): each zip <= 3 MB excluding pdfium's binary, each handler's cold import <= 150 ms.

Import time is measured in a fresh interpreter per run (median of N) on the zip unpacked into a temp dir (as Lambda
does into /var/task), with the interpreter Lambda runs: CPython 3.13 (`--python`, default as tools/build_lambdas.py
finds it), two ways:
- "shipped": the artifact as built, with its `__pycache__/*.cpython-313.pyc` (what a cold start pays);
- "sources only": the same tree with every .pyc removed, so each module compiles at import (the old artifacts).
boto3 comes from the runtime, not the zip: the venv's boto3 stack is copied to a temp dir and compiled for 3.13 once, as
the runtime's is. This machine is x86_64 and the artifacts are arm64, so the one native library in them (pdfium, in
pypdfium2_raw) is swapped for the venv's x86_64 build of the same version, and the CPU is not Graviton: read the numbers
as relative costs. Attribution per package comes from one extra `-X importtime` run. Without a 3.13 the venv's
interpreter measures sources only (its cache tag differs, so it cannot read the shipped bytecode); the report says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra import artifacts  # noqa: E402
from tools.build_lambdas import (  # noqa: E402
    BuildError,
    BuildSettings,
    BytecodeCompiler,
    build_function,
    find_lambda_python,
    write_manifest,
)

RESULTS = ROOT / "bench" / "results" / "artifacts.md"
# Hand-written analysis below this line in RESULTS survives a re-run; the tables above it are regenerated.
NOTES_MARKER = "<!-- notes: kept across runs -->"
SIZE_TARGET_MB = 3.0
IMPORT_TARGET_MS = 150.0
PDFIUM_PREFIX = "pypdfium2_raw/"
# Packages whose import cost the table attributes (cumulative, inside the handler import).
ATTRIBUTED = ("aws_lambda_powertools", "pg8000", "pypdfium2", "boto3", "defusedxml")
# What the Lambda runtime provides next to the artifact (boto3 and its dependencies), copied from the venv.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "urllib3", "jmespath", "dateutil", "six.py", "certifi")
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
    "{before}"
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
    own_ms: float | None = None  # shipped, timed after `import boto3` (the runtime's share)
    source_own_ms: float | None = None  # the same without bytecode
    parts_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""


def sizes(zip_path: Path) -> tuple[int, int, int]:
    """(zip size, compressed bytes of pdfium's binary, unzipped size)."""
    with zipfile.ZipFile(zip_path) as zf:
        infos = zf.infolist()
    pdfium = sum(i.compress_size for i in infos if i.filename.startswith(PDFIUM_PREFIX) and ".so" in i.filename)
    return zip_path.stat().st_size, pdfium, sum(i.file_size for i in infos)


@dataclass
class Interpreter:
    """Who measures: the binary and the folders that stand in for the runtime's own packages (boto3)."""

    python: str
    version: str
    runtime_paths: list[str]
    reads_shipped_bytecode: bool


PY = Interpreter(sys.executable, platform.python_version(), [], False)


def run_import(module: str, paths: list[str], importtime: bool = False, after_boto3: bool = False) -> tuple[float, str]:
    paths = paths + PY.runtime_paths
    cmd = [PY.python, "-B"] + (["-X", "importtime"] if importtime else []) + ["-c"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))} | IMPORT_ENV
    env["POWERTOOLS_SERVICE_NAME"] = module.split(".", 1)[0]
    result = subprocess.run(
        cmd + [SNIPPET.format(paths=paths, module=module, before="import boto3\n" if after_boto3 else "")],
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


def timed_imports(module: str, paths: list[str], runs: int, after_boto3: bool = False) -> list[float]:
    run_import(module, paths)  # warm the OS file cache; not counted
    return [run_import(module, paths, after_boto3=after_boto3)[0] for _ in range(runs)]


def median_import(module: str, paths: list[str], runs: int, after_boto3: bool = False) -> float:
    return statistics.median(timed_imports(module, paths, runs, after_boto3))


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


def strip_bytecode(task: Path) -> None:
    for cache in sorted(task.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)


def measure(function: str, zip_path: Path, runs: int) -> Row:
    row = Row(function)
    row.zip_bytes, row.pdfium_bytes, row.unzipped_bytes = sizes(zip_path)
    module = f"{function}.handler"
    try:
        with tempfile.TemporaryDirectory(prefix=f"task-{function}-") as task:
            unpack_for_this_machine(zip_path, Path(task))
            times = timed_imports(module, [task], runs)
            row.artifact_ms, row.artifact_min_ms = statistics.median(times), min(times)
            row.own_ms = median_import(module, [task], runs, after_boto3=True)
            row.parts_ms = attribute(run_import(module, [task], importtime=True)[1])
            strip_bytecode(Path(task))
            row.source_own_ms = median_import(module, [task], runs, after_boto3=True)
    except RuntimeError as exc:
        row.error = str(exc)
    return row


def prepare_runtime(compiler: BytecodeCompiler, into: Path) -> list[str]:
    """The venv's boto3 stack, compiled for the measuring interpreter like the Lambda runtime's (botocore's 30 MB of
    service data is linked, not copied)."""
    site = Path(sysconfig.get_paths()["purelib"])
    for name in RUNTIME_PACKAGES:
        source = site / name
        if source.is_file():
            shutil.copy2(source, into / name)
        elif name == "botocore":
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("data", "__pycache__"))
            (into / name / "data").symlink_to(source / "data")
        else:
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [compiler.python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(into)],
        check=True,
        capture_output=True,
    )
    return [str(into)]


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


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def table(rows: list[Row], runs: int, boto3_ms: float) -> str:
    mb = 1e6
    shipped = "shipped .pyc" if PY.reads_shipped_bytecode else "sources (no usable .pyc)"
    lines = [
        f"| function | zip MB | zip MB excl. pdfium | unzipped MB | cold import ms ({shipped}): median (min) "
        "| handler's own ms after boto3 | same, sources only (before) | of which powertools | pg8000 | pypdfium2 "
        "| boto3 | targets (size; own import) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        size_ok = (r.zip_bytes - r.pdfium_bytes) / mb <= SIZE_TARGET_MB
        time_ok = r.own_ms is not None and r.own_ms <= IMPORT_TARGET_MS
        verdict = f"size {'ok' if size_ok else 'OVER'}, import {'ok' if time_ok else 'OVER'}"
        if not r.zip_bytes:
            verdict = r.error
        elif r.error:
            verdict = f"size {'ok' if size_ok else 'OVER'}, import failed: {r.error}"
        parts = [fmt_ms(r.parts_ms.get(p)) for p in ("aws_lambda_powertools", "pg8000", "pypdfium2", "boto3")]
        lines.append(
            f"| {r.function} | {r.zip_bytes / mb:.2f} | {(r.zip_bytes - r.pdfium_bytes) / mb:.2f} "
            f"| {r.unzipped_bytes / mb:.2f} | {fmt_ms(r.artifact_ms)} ({fmt_ms(r.artifact_min_ms)}) "
            f"| {fmt_ms(r.own_ms)} | {fmt_ms(r.source_own_ms)} | {' | '.join(parts)} | {verdict} |"
        )
    runtime = (
        "boto3 and its dependencies copied from the venv and compiled for this interpreter, as in the runtime"
        if PY.runtime_paths
        else "the venv's boto3 with its bytecode"
    )
    header = (
        f"# Lambda artifacts: size and cold import time\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/artifacts_bench.py --runs {runs}` on "
        f"{platform.machine()} ({os.cpu_count()} cores, shared); imports run by **CPython {PY.version}** "
        f"(`{PY.python}`); load average {os.getloadavg()[0]:.1f} at the end; median of {runs} fresh interpreters "
        f"per cell, **{CLOCK} time** of the import. Targets: <= {SIZE_TARGET_MB:g} MB excluding pdfium's "
        f"binary, <= {IMPORT_TARGET_MS:g} ms import, judged on the handler's own import (after `import boto3`: "
        "boto3 is the runtime's, paid by every Python function that calls AWS, and this artifact cannot change it); "
        "the cold import column includes it.\n\n"
        "- *shipped .pyc*: the zip unpacked as Lambda does and imported as built: every module loads its "
        "`__pycache__/*.cpython-313.pyc` (unchecked-hash), nothing compiles; arm64 pdfium swapped for the venv's "
        "x86_64 build.\n"
        "- *handler's own*: the same, timed after `import boto3` in the same process. *sources only*: the same again "
        "with every `__pycache__` removed from the artifact, i.e. what the artifacts cost before they shipped bytecode "
        "(each cold start compiled every module).\n"
        "- Package columns: cumulative wall ms of that package's first import inside the handler import (shipped "
        "mode, one `-X importtime` run; `—` = not imported); they overlap when one package imports another "
        f"(boto3 is charged to whichever imports it first). boto3 is not in the zip: {runtime}; "
        f"`import boto3` alone takes {boto3_ms:.0f} ms here (median).\n"
        "- This machine is x86_64; Lambda is arm64 (Graviton): compare rows with each other, not with Lambda's "
        "INIT duration.\n\n"
    )
    return header + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per measurement (median)")
    parser.add_argument("--no-build", action="store_true", help="measure the artifacts already in dist/lambdas")
    parser.add_argument("--only", action="append", metavar="NAME", help="measure only this function (repeatable)")
    parser.add_argument("--python", metavar="PATH", help="the CPython 3.13 that measures (default: as the build finds)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="what an import's time means")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    functions = args.only or artifacts.discover_functions()
    try:
        compiler: BytecodeCompiler | None = BytecodeCompiler.probe(args.python) if args.python else find_lambda_python()
    except BuildError as exc:
        if args.python:
            raise SystemExit(f"error: {exc}") from exc
        print(f"warning: {exc}\nmeasuring sources only with {sys.executable}", file=sys.stderr)
        compiler = None
    runtime_dir = tempfile.TemporaryDirectory(prefix="lambda-runtime-")
    global PY
    if compiler is not None:
        PY = Interpreter(compiler.python, compiler.version, prepare_runtime(compiler, Path(runtime_dir.name)), True)
    settings = BuildSettings(compiler=compiler)
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
            f"\n## Import cost of each dependency alone (shipped .pyc, from `{biggest.name}`, median of {args.runs})"
            "\n\n| module | import ms |\n|---|--:|\n"
        )
        report += "".join(f"| `{m}` | {fmt_ms(ms)} |\n" for m, ms in measure_components(biggest, args.runs))
    runtime_dir.cleanup()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    old = RESULTS.read_text() if RESULTS.is_file() else ""
    if NOTES_MARKER in old:
        report += "\n" + old[old.index(NOTES_MARKER) :]
    RESULTS.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
