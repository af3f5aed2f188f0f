"""Where the Lambda artifacts live and whether they match the sources, without building anything.

The Pulumi program imports this module (it must never import pulumi, and must work on a fresh clone where nothing has
been built yet), and `tools/build_lambdas.py` uses the same file selection and hash, so "stale" means exactly
"the build would produce a different artifact".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS_DIR = ROOT / "lambdas"
DIST_DIR = ROOT / "dist" / "lambdas"
MANIFEST_NAME = "manifest.json"
CONSTRAINTS_FILE = ROOT / "tools" / "lambda-constraints.txt"
CORE_PACKAGE = "core"

# Bump when the build changes what it writes for the same sources (file selection, zip settings, platform), so that
# every existing artifact is reported stale. 2: the zip ships unchecked-hash bytecode for the Lambda runtime.
BUILD_FORMAT = "2:cp313:manylinux_aarch64:pyc-unchecked-hash"
# The bytecode a deployable artifact carries: Lambda's python3.13 only reads `__pycache__/*.cpython-313.pyc`.
LAMBDA_CACHE_TAG = "cpython-313"

# Folders and files that never belong in an artifact nor in the source hash: the working tree's bytecode is for
# whichever interpreter ran last (the build compiles its own), tests and tool caches are not runtime code.
_SKIP_DIRS = {"__pycache__", "tests", "test", "node_modules"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_SKIP_FILES = {"conftest.py", "Thumbs.db"}


def _skip_dir(name: str) -> bool:
    return name in _SKIP_DIRS or name.startswith(".") or name.endswith(".egg-info")


def _skip_file(name: str) -> bool:
    return (
        name in _SKIP_FILES
        or name.startswith(".")
        or name.endswith(_SKIP_SUFFIXES)
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
    )


def iter_source_files(folder: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """(archive name, path) for every shippable file under `folder`, sorted by archive name."""
    found: list[tuple[str, Path]] = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(_skip_dir(part) for part in rel.parts[:-1]):
            continue
        if path.is_dir() or _skip_file(path.name):
            continue
        found.append((f"{prefix}/{rel.as_posix()}", path))
    yield from sorted(found)


def discover_functions(lambdas_dir: Path = LAMBDAS_DIR) -> list[str]:
    """Function folders are the subfolders of lambdas/ that have a handler.py (core has none)."""
    if not lambdas_dir.is_dir():
        return []
    return sorted(
        p.name for p in lambdas_dir.iterdir() if p.is_dir() and p.name != CORE_PACKAGE and (p / "handler.py").is_file()
    )


FUNCTIONS: list[str] = discover_functions()


def source_files(function: str, lambdas_dir: Path = LAMBDAS_DIR) -> list[tuple[str, Path]]:
    """The function's own files then the shared core, as they are laid out in the artifact."""
    folder = lambdas_dir / function
    if not (folder / "handler.py").is_file():
        raise FileNotFoundError(f"function {function!r}: {folder / 'handler.py'} does not exist")
    files = list(iter_source_files(folder, function))
    core = lambdas_dir / CORE_PACKAGE
    if core.is_dir():
        files += list(iter_source_files(core, CORE_PACKAGE))
    return files


def source_hash(
    function: str,
    lambdas_dir: Path = LAMBDAS_DIR,
    constraints_file: Path | None = CONSTRAINTS_FILE,
    bytecode: str | None = LAMBDA_CACHE_TAG,
) -> str:
    """sha256 over what decides the artifact's bytes: contents and names (never mtimes) of the function folder (with its
    requirements.txt), the core, the transitive pins, the build format and the bytecode tag (None = built with
    --no-bytecode). Cheap: nothing is downloaded or zipped. `is_stale` compares against the default tag, so an artifact
    built without Lambda bytecode shows as stale."""
    digest = hashlib.sha256()
    digest.update(f"format {BUILD_FORMAT}\n".encode())
    digest.update(f"bytecode {bytecode or 'none'}\n".encode())
    for arcname, path in source_files(function, lambdas_dir):
        digest.update(f"file {arcname} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    if constraints_file is not None and constraints_file.is_file():
        digest.update(f"constraints {hashlib.sha256(constraints_file.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def artifact_path(function: str, dist_dir: Path = DIST_DIR) -> Path:
    """Where `tools/build_lambdas.py` writes the function's zip (it may not exist yet on a fresh clone)."""
    return dist_dir / f"{function}.zip"


def read_manifest(dist_dir: Path = DIST_DIR) -> dict:
    """The build manifest, or an empty one when nothing has been built."""
    path = dist_dir / MANIFEST_NAME
    if not path.is_file():
        return {"functions": {}}
    return json.loads(path.read_text())


def manifest_entry(function: str, dist_dir: Path = DIST_DIR) -> dict | None:
    """The function's manifest entry (artifact, sha256, sha256_base64, size, source_hash, requirements, packages)."""
    entry = read_manifest(dist_dir).get("functions", {}).get(function)
    if entry is None or not artifact_path(function, dist_dir).is_file():
        return None
    return entry


def is_stale(
    function: str,
    lambdas_dir: Path = LAMBDAS_DIR,
    dist_dir: Path = DIST_DIR,
    constraints_file: Path | None = CONSTRAINTS_FILE,
) -> bool:
    """True when the artifact is missing or was built from other sources than those on disk now."""
    entry = manifest_entry(function, dist_dir)
    if entry is None:
        return True
    return entry.get("source_hash") != source_hash(function, lambdas_dir, constraints_file)


def code_sha256_base64(function: str, dist_dir: Path = DIST_DIR) -> str | None:
    """The built zip's base64 sha256 (Lambda's `source_code_hash`), or None when not built."""
    entry = manifest_entry(function, dist_dir)
    return None if entry is None else entry["sha256_base64"]


# --- Whether the program may run without its artifacts ---------------------------------------------------------------
# The offline plan (plan/evaluate.py) runs the program under Pulumi mocks, where no artifact is read: a fresh clone must
# plan without `make build`, and the plan reports missing artifacts itself, once. Every other run (pulumi preview/up)
# needs them. The evaluator says which it is explicitly; the program never guesses from the engine it runs against.
_offline_evaluation = False


@contextmanager
def offline_evaluation() -> Iterator[None]:
    """While active, the program is being evaluated by the offline plan: missing or stale artifacts are not its
    error to raise."""
    global _offline_evaluation
    previous, _offline_evaluation = _offline_evaluation, True
    try:
        yield
    finally:
        _offline_evaluation = previous


def in_offline_evaluation() -> bool:
    return _offline_evaluation


def missing_artifacts(functions: list[str] | None = None, dist_dir: Path | None = None) -> list[Path]:
    """The zips `make build` would write that are not there (every function folder; one build makes them all)."""
    dist = dist_dir or DIST_DIR
    return [artifact_path(f, dist) for f in (FUNCTIONS if functions is None else functions)
            if not artifact_path(f, dist).is_file()]


def stale_artifacts(functions: list[str] | None = None, dist_dir: Path | None = None) -> list[str]:
    """Functions whose zip exists but was built from other sources than those on disk now."""
    dist = dist_dir or DIST_DIR
    return [f for f in (FUNCTIONS if functions is None else functions)
            if artifact_path(f, dist).is_file() and is_stale(f, dist_dir=dist)]


def missing_message(missing: list[Path]) -> str:
    """One line naming every missing artifact and the command that makes them."""
    names = ", ".join(p.name for p in missing)
    where = _shown(missing[0].parent) if missing else "dist/lambdas"
    return f"{len(missing)} Lambda artifact(s) missing in {where}/ ({names}): run `make build`"


def stale_message(stale: list[str]) -> str:
    return (f"{len(stale)} Lambda artifact(s) built from other sources than those on disk ({', '.join(stale)}): "
            "run `make build` again, or this deploys the old code")


def _shown(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)
