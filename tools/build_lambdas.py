"""Build one deterministic zip per Lambda function: `.venv/bin/python tools/build_lambdas.py [--only NAME] [--out DIR]`.

Each artifact holds `<function>/`, the shared `core/` and the function's third-party wheels for the Lambda platform
(CPython 3.13, manylinux, arm64), unpacked, plus `__pycache__/*.cpython-313.pyc` for every module. The same sources
always give the same bytes (sorted entries, fixed timestamps and permissions, bytecode without timestamps), so Pulumi
sees an unchanged hash and does not redeploy an unchanged function.

Why ship bytecode: Lambda's /var/task is read-only, so without it the runtime compiles every module at every cold start
(measured: 277 -> 67 ms for text_extractor's import). The .pyc are compiled by a CPython 3.13 (`--python PATH`, else
`python3.13` on PATH, else pyenv's) as "unchecked-hash" pycs: no mtime inside and no source check at import. The .py
files stay in the zip for tracebacks. `--no-bytecode` builds without (the artifact then shows as stale).

Why resolve dependencies here instead of letting pip do it: pip would pick the newest version of every unpinned
dependency of a dependency, so the artifact would change whenever PyPI does. The direct pins come from each function's
`requirements.txt`, the pins of their dependencies from `tools/lambda-constraints.txt`; every wheel is fetched with
`--no-deps` into `dist/wheel-cache/` (reused, so rebuilds are offline) and the dependency graph is walked from the
wheels' own metadata, evaluated for the Lambda platform rather than for this machine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser
from functools import cache
from pathlib import Path, PurePosixPath

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.artifacts import (  # noqa: E402
    CONSTRAINTS_FILE,
    DIST_DIR,
    LAMBDA_CACHE_TAG,
    LAMBDAS_DIR,
    MANIFEST_NAME,
    ROOT,
    discover_functions,
    source_files,
    source_hash,
)

# --- The Lambda platform ------------------------------------------------------------------------------------------
PYTHON_VERSION = (3, 13)
# python3.13 runs on Amazon Linux 2023 (glibc 2.34); best tags first so a choice between two wheels is stable.
PLATFORMS = [f"manylinux_2_{minor}_aarch64" for minor in range(34, 16, -1)] + ["manylinux2014_aarch64"]
PLATFORM_LABEL = "CPython 3.13 manylinux aarch64"
SUPPORTED_TAGS: list[Tag] = list(
    cpython_tags(python_version=PYTHON_VERSION, abis=["cp313"], platforms=PLATFORMS)
) + list(compatible_tags(python_version=PYTHON_VERSION, interpreter="cp313", platforms=PLATFORMS))
_TAG_RANK = {tag: rank for rank, tag in enumerate(SUPPORTED_TAGS)}
MARKER_ENV = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "implementation_version": "3.13.0",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "sys_platform": "linux",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_release": "",
    "platform_version": "",
}
# The runtime provides these; packaging them would shadow the runtime's tested copy and add ~20 MB.
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer"}

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644 << 16
WHEEL_SKIP_TOP = {"tests", "test"}
# Wheel files no function loads, dropped to keep each zip under the 3 MB target once bytecode doubles the code:
# (archive prefix, why it is safe). Remove a line if a function starts to need it.
WHEEL_EXCLUDE = (
    (
        "aws_lambda_powertools/event_handler/openapi/swagger_ui/",
        "Swagger UI's JS/CSS (444 kB zipped), read only when a REST resolver serves its own /swagger page",
    ),
    ("pypdfium2_cli/", "pypdfium2's command line (66 kB zipped with bytecode), only run by `python -m pypdfium2`"),
    (
        "aws_lambda_powertools/utilities/parser/",
        "Powertools' pydantic parser (155 kB): pydantic is not shipped, so it could not even be imported",
    ),
)

Downloader = Callable[[list[str], Path], None]


class BuildError(Exception):
    """A build problem a person must fix; the message names the function and the file or requirement."""


class UnpinnedDependency(BuildError):
    def __init__(self, function: str, name: str, parent: str, constraints: Path):
        self.name = name
        super().__init__(
            f"function {function!r}: dependency {name!r} (required by {parent}) has no pin; add '{name}==<version>' to "
            f"{constraints} or run tools/build_lambdas.py --lock to pin the version installed in this venv"
        )


class DownloadFailed(Exception):
    """pip could not fetch a requirement; carries pip's explanation."""


# --- Requirements ---------------------------------------------------------------------------------------------------
def _marker_ok(marker: Marker | None, extra: str = "") -> bool:
    return marker is None or marker.evaluate({**MARKER_ENV, "extra": extra})


def parse_pins(path: Path, owner: str) -> list[Requirement]:
    """Read `name[extras]==version` lines; anything looser is an error, because it would make the build drift."""
    pins: list[Requirement] = []
    if not path.is_file():
        return pins
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{owner}: {path.name} line {number} ({line!r})"
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise BuildError(f"{where}: not a requirement: {exc}") from exc
        specs = list(req.specifier)
        if req.url or len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            raise BuildError(f"{where}: must be pinned exactly as 'name==version'")
        if _marker_ok(req.marker):
            pins.append(req)
    return pins


def _pin_version(req: Requirement) -> str:
    return next(iter(req.specifier)).version


@dataclass
class Package:
    name: str  # canonical
    version: str
    wheel: Path
    extras: set[str] = field(default_factory=set)


# --- The wheel cache and pip ----------------------------------------------------------------------------------------
class WheelCache:
    def __init__(self, directory: Path):
        self.directory = directory

    def find(self, name: str, version: str) -> Path | None:
        """The best cached wheel of exactly name==version that runs on the Lambda platform."""
        best: tuple[int, str, Path] | None = None
        if not self.directory.is_dir():
            return None
        for path in self.directory.glob("*.whl"):
            try:
                wheel_name, wheel_version, _build, wheel_tags = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            if wheel_name != canonicalize_name(name) or wheel_version != Version(version):
                continue
            ranks = [_TAG_RANK[t] for t in wheel_tags if t in _TAG_RANK]
            if ranks and (best is None or (min(ranks), path.name) < best[:2]):
                best = (min(ranks), path.name, path)
        return None if best is None else best[2]


def pip_download(requirements: list[str], dest: Path) -> None:
    """Fetch exactly these wheels (no dependencies: the resolver walks those itself) for the Lambda platform."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(dest)]
    cmd += ["--python-version", "3.13", "--implementation", "cp", "--abi", "cp313", "--abi", "abi3", "--abi", "none"]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    result = subprocess.run(cmd + requirements, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
        raise DownloadFailed("\n".join(lines[-5:]) or f"pip exited with {result.returncode}")


# --- Resolution -----------------------------------------------------------------------------------------------------
def wheel_metadata(wheel: Path) -> tuple[str, list[Requirement]]:
    """(top-level .dist-info name, Requires-Dist) of a wheel."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise BuildError(f"wheel {wheel.name}: expected one .dist-info/METADATA, found {len(names)}")
        headers = HeaderParser().parsestr(zf.read(names[0]).decode("utf-8"))
    requires = [Requirement(value) for value in headers.get_all("Requires-Dist") or []]
    return names[0].split("/", 1)[0], requires


class Resolver:
    def __init__(
        self,
        function: str,
        cache: WheelCache,
        constraints: dict[str, str],
        constraints_path: Path,
        downloader: Downloader | None,
    ):
        self.function = function
        self.cache = cache
        self.constraints = constraints
        self.constraints_path = constraints_path
        self.downloader = downloader

    def _wheel(self, name: str, version: str, parent: str) -> Path:
        wheel = self.cache.find(name, version)
        if wheel is None and self.downloader is not None:
            try:
                self.downloader([f"{name}=={version}"], self.cache.directory)
            except DownloadFailed as exc:
                raise BuildError(
                    f"function {self.function!r}: no wheel for requirement {name}=={version} (required by {parent}) "
                    f"for {PLATFORM_LABEL}:\n{exc}"
                ) from exc
            wheel = self.cache.find(name, version)
        if wheel is None:
            how = "offline build" if self.downloader is None else "pip found none"
            raise BuildError(
                f"function {self.function!r}: no wheel for requirement {name}=={version} (required by {parent}) "
                f"for {PLATFORM_LABEL} in {self.cache.directory} ({how})"
            )
        return wheel

    def resolve(self, direct: list[Requirement]) -> list[Package]:
        """Walk the dependency graph from the wheels' metadata; every package must be pinned somewhere."""
        direct_pins = {canonicalize_name(r.name): _pin_version(r) for r in direct}
        packages: dict[str, Package] = {}
        queue: list[tuple[Requirement, str]] = [(r, "requirements.txt") for r in direct]
        while queue:
            req, parent = queue.pop(0)
            name = canonicalize_name(req.name)
            if name in PROVIDED_BY_RUNTIME:
                continue
            version = direct_pins.get(name) or self.constraints.get(name)
            if version is None:
                raise UnpinnedDependency(self.function, name, parent, self.constraints_path)
            if not req.specifier.contains(version, prereleases=True):
                raise BuildError(
                    f"function {self.function!r}: {parent} requires {req}, but the pin is {name}=={version}"
                )
            package = packages.get(name)
            new_extras = set(req.extras) - (package.extras if package else set())
            if package is not None and not new_extras:
                continue
            if package is None:
                package = packages[name] = Package(name, version, self._wheel(name, version, parent))
            package.extras |= new_extras
            _dist_info, requires = wheel_metadata(package.wheel)
            # Re-queueing a dependency already seen is harmless: it is skipped unless it brings new extras.
            wanted = [""] + sorted(package.extras)
            for dep in requires:
                if any(_marker_ok(dep.marker, extra) for extra in wanted):
                    queue.append((dep, f"{name}=={version}"))
        return sorted(packages.values(), key=lambda p: p.name)


# --- Unpacking and zipping ------------------------------------------------------------------------------------------
def wheel_entries(wheel: Path) -> Iterable[tuple[str, bytes]]:
    """The files a wheel installs into site-packages, without RECORD, bytecode or tests."""
    with zipfile.ZipFile(wheel) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            parts = PurePosixPath(info.filename).parts
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers and data files are not importable
                parts = parts[2:]
            if not parts or parts[0] in WHEEL_SKIP_TOP or any(p == "__pycache__" or p == ".." for p in parts):
                continue
            name = "/".join(parts)
            if any(name.startswith(prefix) for prefix, _why in WHEEL_EXCLUDE):
                continue
            if name.endswith((".pyc", ".pyo")) or (parts[0].endswith(".dist-info") and parts[-1] == "RECORD"):
                continue
            yield name, zf.read(info)


def collect_entries(function: str, lambdas_dir: Path, packages: list[Package]) -> tuple[dict[str, bytes], set[str]]:
    """(archive name -> bytes, the top-level names that are our own code rather than a wheel's)."""
    entries: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    for arcname, path in source_files(function, lambdas_dir):
        entries[arcname] = path.read_bytes()
        origin[arcname] = "sources"
    own_tops = {name.split("/", 1)[0] for name in entries}
    for package in packages:
        label = package.wheel.name
        for arcname, data in wheel_entries(package.wheel):
            top = arcname.split("/", 1)[0]
            if top in own_tops:
                raise BuildError(f"function {function!r}: wheel {label} ships {top!r}, which shadows lambdas/{top}")
            if arcname in entries and entries[arcname] != data:
                raise BuildError(f"function {function!r}: {arcname} differs between {origin[arcname]} and {label}")
            entries[arcname] = data
            origin[arcname] = label
    return entries, own_tops


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on names and contents: sorted, 1980 timestamps, 0644, fixed compression."""
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buffer:
        with zipfile.ZipFile(buffer, "w") as zf:
            for name in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.create_system = 3
                info.external_attr = ZIP_FILE_MODE
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, entries[name], compresslevel=9)
        buffer.seek(0)
        return buffer.read()


# --- Bytecode -------------------------------------------------------------------------------------------------------
# Where Lambda unpacks the zip; recorded as the code's file name so the bytes do not depend on the build's temp dir
# (the import system replaces it with the real path at load time anyway).
TASK_ROOT = "/var/task"
# Runs inside the target interpreter (any CPython 3.8+): compile the listed files in order, report what failed.
_COMPILE_WORKER = r"""
import importlib.util, json, os, py_compile, sys
request = json.load(sys.stdin)
root, task_root, done, failed = request["root"], request["task_root"], [], {}
for name in request["files"]:
    source = os.path.join(root, *name.split("/"))
    cfile = importlib.util.cache_from_source(source, optimization="")
    try:
        py_compile.compile(source, cfile=cfile, dfile=task_root + "/" + name, doraise=True, optimize=0,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError as exc:
        failed[name] = exc.msg.strip().splitlines()[-1]
        continue
    done.append([name, os.path.relpath(cfile, root).replace(os.sep, "/")])
json.dump({"compiled": done, "failed": failed}, sys.stdout)
"""


# (interpreter, version, archive name, sha256 of source) -> (pyc archive name, bytes) or the compile error. A .pyc's
# bytes depend only on its source and interpreter, not on what the process compiled before (checked across all
# artifacts), so the core and shared wheels are compiled once per build run rather than once per function.
_PYC_MEMO: dict[tuple[str, str, str, str], tuple[str, bytes] | str] = {}


@dataclass(frozen=True)
class BytecodeCompiler:
    """Compiles an artifact's modules with one interpreter into unchecked-hash .pyc, whose bytes depend only on the
    source and the interpreter version (no mtime, fixed file name, fixed hash seed)."""

    python: str
    cache_tag: str
    version: str

    @classmethod
    def probe(cls, python: str, expect_tag: str = LAMBDA_CACHE_TAG) -> BytecodeCompiler:
        """Check that `python` runs and writes bytecode the target reads (`expect_tag`, e.g. cpython-313)."""
        code = "import platform, sys; print(sys.implementation.cache_tag, platform.python_version())"
        try:
            result = subprocess.run([python, "-S", "-c", code], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(f"{python}: cannot run it: {exc}") from exc
        if result.returncode != 0 or len(result.stdout.split()) != 2:
            why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[0]
            raise BuildError(f"{python}: cannot run it: {why}")
        tag, version = result.stdout.split()
        if tag != expect_tag:
            raise BuildError(
                f"--python {python} is {tag} (Python {version}), but the Lambda runtime reads {expect_tag} bytecode; "
                "pass a CPython 3.13 interpreter with --python, or build without bytecode with --no-bytecode"
            )
        return cls(python, tag, version)

    def compile(self, function: str, sources: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, str]]:
        """({pyc archive name: bytes}, {source that does not compile: error}) for the given .py entries."""
        keys = {
            name: (self.python, self.version, name, hashlib.sha256(data).hexdigest()) for name, data in sources.items()
        }
        todo = {name: data for name, data in sources.items() if keys[name] not in _PYC_MEMO}
        if todo:
            compiled, failed = self._compile_now(function, todo)
            for name in todo:
                _PYC_MEMO[keys[name]] = failed[name] if name in failed else compiled[name]
        done: dict[str, bytes] = {}
        errors: dict[str, str] = {}
        for name, key in keys.items():
            result = _PYC_MEMO[key]
            if isinstance(result, str):
                errors[name] = result
            else:
                done[result[0]] = result[1]
        return done, errors

    def _compile_now(
        self, function: str, sources: dict[str, bytes]
    ) -> tuple[dict[str, tuple[str, bytes]], dict[str, str]]:
        with tempfile.TemporaryDirectory(prefix="lambda-pyc-") as tmp:
            root = Path(tmp)
            for name, data in sources.items():
                path = root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            request = json.dumps({"root": tmp, "task_root": TASK_ROOT, "files": sorted(sources)})
            # Fixed hash seed: nothing the compiler iterates may vary between runs (marshal already sorts frozensets).
            env = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUTF8": "1"}
            env["PATH"] = os.environ.get("PATH", "")
            result = subprocess.run(
                [self.python, "-S", "-c", _COMPILE_WORKER], input=request, capture_output=True, text=True, env=env
            )
            if result.returncode != 0:
                tail = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
                raise BuildError(f"function {function!r}: compiling bytecode with {self.python} failed: {tail}")
            report = json.loads(result.stdout)
            compiled = {source: (pyc, (root / pyc).read_bytes()) for source, pyc in report["compiled"]}
        return compiled, report["failed"]

    def describe(self) -> dict:
        return {"python": f"CPython {self.version}", "cache_tag": self.cache_tag, "invalidation_mode": "unchecked-hash"}


def _runs_as_lambda_python(python: str) -> BytecodeCompiler | str:
    try:
        return BytecodeCompiler.probe(python)
    except BuildError as exc:
        return str(exc)


@cache
def find_lambda_python() -> BytecodeCompiler:
    """`python3.13` on PATH, else pyenv's newest 3.13; each candidate must actually run (a pyenv shim may not)."""
    candidates = [shutil.which("python3.13")]
    candidates += [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"), reverse=True)]
    tried: list[str] = []
    for candidate in filter(None, candidates):
        found = _runs_as_lambda_python(candidate)
        if isinstance(found, BytecodeCompiler):
            return found
        tried.append(found)
    detail = ("; tried: " + "; ".join(tried)) if tried else ""
    raise BuildError(
        "no CPython 3.13 found to compile the artifacts' bytecode for the Lambda runtime (python3.13 on PATH or "
        "~/.pyenv/versions/3.13*/bin/python3.13): pass one with --python PATH, or build without bytecode "
        f"(slower cold starts) with --no-bytecode{detail}"
    )


def add_bytecode(function: str, entries: dict[str, bytes], own_tops: set[str], compiler: BytecodeCompiler) -> list[str]:
    """Add a .pyc next to every .py entry; returns the third-party files left uncompiled. Our own code must compile."""
    sources = {name: data for name, data in entries.items() if name.endswith(".py")}
    compiled, failed = compiler.compile(function, sources)
    own_failures = {n: why for n, why in failed.items() if n.split("/", 1)[0] in own_tops}
    if own_failures:
        name, why = sorted(own_failures.items())[0]
        raise BuildError(f"function {function!r}: {name} does not compile under Python {compiler.version}: {why}")
    for name in compiled:
        if name in entries:
            raise BuildError(f"function {function!r}: bytecode {name} would overwrite a file of the same name")
    entries.update(compiled)
    # A wheel may carry .py files that are not Python 3 (templates, examples); pip skips them too.
    return sorted(failed)


# --- Build ----------------------------------------------------------------------------------------------------------
AUTO = "auto"


@dataclass
class BuildSettings:
    lambdas_dir: Path = LAMBDAS_DIR
    out_dir: Path = DIST_DIR
    cache_dir: Path = ROOT / "dist" / "wheel-cache"
    constraints_path: Path = CONSTRAINTS_FILE
    downloader: Downloader | None = pip_download
    # AUTO = find a CPython 3.13 (error if none); None = no bytecode (--no-bytecode).
    compiler: BytecodeCompiler | None | str = AUTO

    def bytecode_compiler(self) -> BytecodeCompiler | None:
        return find_lambda_python() if self.compiler == AUTO else self.compiler  # type: ignore[return-value]


def read_constraints(path: Path) -> dict[str, str]:
    return {canonicalize_name(r.name): _pin_version(r) for r in parse_pins(path, "constraints")}


def build_function(function: str, settings: BuildSettings) -> dict:
    """Build one artifact and return its manifest entry; rewrites the zip only when its bytes change."""
    folder = settings.lambdas_dir / function
    if not (folder / "handler.py").is_file():
        raise BuildError(f"function {function!r}: {folder}/handler.py not found")
    direct = parse_pins(folder / "requirements.txt", f"function {function!r}")
    constraints = read_constraints(settings.constraints_path)
    resolver = Resolver(
        function, WheelCache(settings.cache_dir), constraints, settings.constraints_path, settings.downloader
    )
    packages = resolver.resolve(direct)
    compiler = settings.bytecode_compiler()
    entries, own_tops = collect_entries(function, settings.lambdas_dir, packages)
    uncompiled = add_bytecode(function, entries, own_tops, compiler) if compiler is not None else []
    data = zip_bytes(entries)
    path = settings.out_dir / f"{function}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_bytes() != data:
        tmp = path.with_suffix(".zip.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    digest = hashlib.sha256(data).digest()
    try:
        artifact = path.relative_to(ROOT).as_posix()
    except ValueError:
        artifact = path.as_posix()
    return {
        "artifact": artifact,
        "handler": f"{function}.handler.handler",
        "sha256": digest.hex(),
        "sha256_base64": base64.b64encode(digest).decode(),
        "size": len(data),
        "source_hash": source_hash(
            function, settings.lambdas_dir, settings.constraints_path, compiler.cache_tag if compiler else None
        ),
        "bytecode": None if compiler is None else {**compiler.describe(), "uncompiled": uncompiled},
        "requirements": [str(r) for r in direct],
        "packages": [f"{p.name}=={p.version}" for p in packages],
        "wheels": [p.wheel.name for p in packages],
    }


def write_manifest(out_dir: Path, entries: dict[str, dict]) -> Path:
    """Merge into the existing manifest so `--only` keeps the other functions' entries."""
    path = out_dir / MANIFEST_NAME
    functions: dict[str, dict] = {}
    if path.is_file():
        functions = json.loads(path.read_text()).get("functions", {})
    functions.update(entries)
    manifest = {"platform": PLATFORM_LABEL, "functions": dict(sorted(functions.items()))}
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def lock_missing(function: str, settings: BuildSettings) -> list[str]:
    """Pin every unpinned dependency of `function` to the version installed here (what the tests ran against)."""
    added: list[str] = []
    while True:
        try:
            build_function(function, settings)
            return added
        except UnpinnedDependency as exc:
            try:
                version = importlib.metadata.version(exc.name)
            except importlib.metadata.PackageNotFoundError:
                raise BuildError(f"{exc}; {exc.name} is not installed in this venv, so pin it by hand") from exc
            lines = settings.constraints_path.read_text().splitlines() if settings.constraints_path.is_file() else []
            lines.append(f"{exc.name}=={version}")
            header = [ln for ln in lines if ln.startswith("#")]
            body = sorted({ln for ln in lines if ln.strip() and not ln.startswith("#")})
            settings.constraints_path.write_text("\n".join(header + body) + "\n")
            added.append(f"{exc.name}=={version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="build only this function (repeatable)")
    parser.add_argument("--out", type=Path, default=DIST_DIR, help="artifact folder (default dist/lambdas)")
    parser.add_argument("--cache", type=Path, default=ROOT / "dist" / "wheel-cache", help="wheel cache folder")
    parser.add_argument("--lambdas", type=Path, default=LAMBDAS_DIR, help="folder holding the function folders")
    parser.add_argument("--constraints", type=Path, default=CONSTRAINTS_FILE, help="pins of transitive deps")
    parser.add_argument("--offline", action="store_true", help="use only the wheel cache, never call pip")
    parser.add_argument("--lock", action="store_true", help="pin unpinned transitive deps to this venv's versions")
    bytecode = parser.add_mutually_exclusive_group()
    bytecode.add_argument(
        "--python", metavar="PATH", help="CPython 3.13 that compiles the bytecode (default: python3.13 on PATH, pyenv)"
    )
    bytecode.add_argument("--no-bytecode", action="store_true", help="ship sources only (slower cold starts)")
    args = parser.parse_args(argv)
    try:
        if args.no_bytecode:
            compiler = None
        elif args.python:
            compiler = BytecodeCompiler.probe(args.python)
        else:
            compiler = find_lambda_python()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = BuildSettings(
        lambdas_dir=args.lambdas,
        out_dir=args.out,
        cache_dir=args.cache,
        constraints_path=args.constraints,
        downloader=None if args.offline else pip_download,
        compiler=compiler,
    )
    available = discover_functions(settings.lambdas_dir)
    functions = args.only or available
    unknown = sorted(set(functions) - set(available))
    if unknown:
        print(f"error: no function folder with handler.py for {unknown} in {settings.lambdas_dir}", file=sys.stderr)
        return 2
    built: dict[str, dict] = {}
    failures: list[str] = []
    for function in functions:
        try:
            if args.lock:
                for pin in lock_missing(function, settings):
                    print(f"pinned {pin} in {settings.constraints_path}")
            built[function] = build_function(function, settings)
        except BuildError as exc:
            failures.append(str(exc))
            continue
        entry = built[function]
        print(f"{function:<26} {entry['size'] / 1e6:6.2f} MB  sha256 {entry['sha256'][:16]}  {entry['artifact']}")
    if built:
        print(f"manifest: {write_manifest(settings.out_dir, built)}")
        print("bytecode: " + (f"{compiler.cache_tag} by {compiler.python}" if compiler else "none (--no-bytecode)"))
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
