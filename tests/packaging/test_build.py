"""The artifact build: deterministic bytes, the layout Lambda imports from, and errors that name what to fix."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from infra import artifacts
from tools.build_lambdas import (
    PLATFORM_LABEL,
    BuildError,
    DownloadFailed,
    UnpinnedDependency,
    build_function,
    lock_missing,
    main,
    pip_download,
)


def _zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def _touch_all(folder: Path, when: float) -> None:
    for path in folder.rglob("*"):
        os.utime(path, (when, when))


def test_same_sources_give_identical_bytes_even_after_touching_mtimes(project, tmp_path):
    first = build_function("fn_one", project)
    bytes_one = Path(first["artifact"]).read_bytes()

    other = replace(project, out_dir=tmp_path / "other-out")
    _touch_all(project.lambdas_dir, 1_700_000_000)
    _touch_all(project.cache_dir, 1_600_000_000)
    (project.lambdas_dir / "fn_one" / "__pycache__" / "extra.cpython-313.pyc").write_bytes(b"more noise")
    second = build_function("fn_one", other)

    assert Path(second["artifact"]).read_bytes() == bytes_one
    assert second["sha256"] == first["sha256"] == hashlib.sha256(bytes_one).hexdigest()
    assert base64.b64decode(first["sha256_base64"]) == hashlib.sha256(bytes_one).digest()
    assert first["size"] == len(bytes_one)


def test_a_source_change_changes_the_artifact(project):
    before = build_function("fn_one", project)["sha256"]
    (project.lambdas_dir / "core" / "db.py").write_text("NAME = 'postgres'\n")
    assert build_function("fn_one", project)["sha256"] != before


def test_layout_holds_function_core_and_unpacked_wheels_without_noise(project):
    entry = build_function("fn_one", project)
    path = Path(entry["artifact"])
    names = _zip_names(path)

    assert names == sorted(names)
    for expected in (
        "fn_one/handler.py",
        "fn_one/requirements.txt",
        "core/__init__.py",
        "core/db.py",
        "tinydep/__init__.py",
        "tinysub/__init__.py",
        "tinysub_extra.py",
        "tinydep-1.0.dist-info/METADATA",
        "tinysub-2.0.dist-info/WHEEL",
    ):
        assert expected in names
    tag = sys.implementation.cache_tag
    own_bytecode = {
        f"{n.rsplit('/', 1)[0]}/__pycache__/{n.rsplit('/', 1)[1][:-3]}.{tag}.pyc"
        if "/" in n
        else f"__pycache__/{n[:-3]}.{tag}.pyc"
        for n in names
        if n.endswith(".py")
    }
    assert own_bytecode <= set(names)
    noise = [
        n
        for n in names
        if (("__pycache__" in n or n.endswith(".pyc")) and n not in own_bytecode)
        or n.endswith("/RECORD")
        or "/tests/" in f"/{n}"
        or "test_" in n.rsplit("/", 1)[-1]
        or ".data/" in n
        or "not_a_function" in n
        or ".pytest_cache" in n
    ]
    assert noise == []
    assert not any(n.startswith(("boto3", "winonly", "fancy")) for n in names)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
            assert info.external_attr >> 16 == 0o100644, info.filename
            assert info.compress_type == zipfile.ZIP_DEFLATED
        assert zf.read("tinysub/__init__.py") == b"VALUE = 'arm'\n"  # the aarch64 wheel, not the win_amd64 one
        # The working tree's stale bytecode never ships: the build compiled its own.
        assert zf.read(f"fn_one/__pycache__/handler.{tag}.pyc") != b"noise"
    assert entry["packages"] == ["tinydep==1.0", "tinysub==2.0"]
    assert entry["requirements"] == ["tinydep==1.0"]
    assert entry["handler"] == "fn_one.handler.handler"


def test_lambda_can_import_the_handler_from_the_artifact_root(project, tmp_path):
    """Lambda unpacks the zip into /var/task, puts it on sys.path and imports `fn_one.handler`; do the same."""
    task = tmp_path / "var-task"
    with zipfile.ZipFile(build_function("fn_one", project)["artifact"]) as zf:
        zf.extractall(task)
    code = f"import sys; sys.path.insert(0, {str(task)!r}); import fn_one.handler as h; print(h.handler({{}}, None))"
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "{'value': 'arm', 'db': 'pg'}"


def test_missing_wheel_names_the_function_and_the_requirement(project):
    (project.lambdas_dir / "fn_one" / "requirements.txt").write_text("tinydep==1.0\nabsent-lib==9.9\n")
    calls: list[list[str]] = []

    def downloader(requirements: list[str], dest: Path) -> None:
        calls.append(requirements)
        raise DownloadFailed("ERROR: No matching distribution found for absent-lib==9.9")

    with pytest.raises(BuildError) as failure:
        build_function("fn_one", replace(project, downloader=downloader))
    message = str(failure.value)
    assert "'fn_one'" in message and "absent-lib==9.9" in message and PLATFORM_LABEL in message
    assert "No matching distribution" in message
    assert calls == [["absent-lib==9.9"]]  # cached wheels are not fetched again

    with pytest.raises(BuildError, match=r"'fn_one'.*absent-lib==9\.9.*offline"):
        build_function("fn_one", project)
    assert not artifacts.artifact_path("fn_one", project.out_dir).exists()


def test_downloader_fills_the_cache_once(project, wheel_dir):
    (project.cache_dir / "tinysub-2.0-cp313-cp313-manylinux_2_17_aarch64.whl").unlink()
    calls: list[list[str]] = []

    def downloader(requirements: list[str], dest: Path) -> None:
        calls.append(requirements)
        (dest / "tinysub-2.0-cp313-cp313-manylinux_2_17_aarch64.whl").write_bytes(
            (wheel_dir / "tinysub-2.0-cp313-cp313-manylinux_2_17_aarch64.whl").read_bytes()
        )

    with_download = replace(project, downloader=downloader)
    build_function("fn_one", with_download)
    build_function("fn_one", with_download)
    assert calls == [["tinysub==2.0"]]


def test_unpinned_dependency_of_a_dependency_is_an_error(project):
    project.constraints_path.write_text("")
    with pytest.raises(UnpinnedDependency) as failure:
        build_function("fn_one", project)
    message = str(failure.value)
    assert "'fn_one'" in message and "'tinysub'" in message and "tinydep==1.0" in message
    assert str(project.constraints_path) in message


def test_pin_that_contradicts_a_dependency_is_an_error(project):
    project.constraints_path.write_text("tinysub==3.0\n")
    with pytest.raises(BuildError, match=r"'fn_one'.*tinydep==1\.0 requires tinysub==2\.0.*tinysub==3\.0"):
        build_function("fn_one", project)


@pytest.mark.parametrize("line", ["tinydep>=1.0", "tinydep", "tinydep==1.*", "not a requirement!"])
def test_loose_requirement_is_rejected_with_its_line(project, line):
    (project.lambdas_dir / "fn_one" / "requirements.txt").write_text(f"# deps\n{line}\n")
    with pytest.raises(BuildError, match=r"'fn_one'.*requirements\.txt line 2"):
        build_function("fn_one", project)


def test_source_hash_follows_contents_not_mtimes(project):
    base = artifacts.source_hash("fn_one", project.lambdas_dir, project.constraints_path)
    _touch_all(project.lambdas_dir, 1_500_000_000)
    (project.lambdas_dir / "core" / "__pycache__" / "new.cpython-313.pyc").write_bytes(b"x")
    (project.lambdas_dir / "fn_one" / "tests" / "test_more.py").write_text("# not shipped\n")
    assert artifacts.source_hash("fn_one", project.lambdas_dir, project.constraints_path) == base

    seen = {base}
    for path, text in [
        (project.lambdas_dir / "fn_one" / "handler.py", "def handler(e, c):\n    return 1\n"),
        (project.lambdas_dir / "core" / "db.py", "NAME = 'other'\n"),
        (project.lambdas_dir / "fn_one" / "requirements.txt", "tinydep==1.0\nsomething==1.0\n"),
        (project.constraints_path, "tinysub==2.0\nsix==1.17.0\n"),
        (project.lambdas_dir / "core" / "new_module.py", ""),
    ]:
        path.write_text(text)
        current = artifacts.source_hash("fn_one", project.lambdas_dir, project.constraints_path)
        assert current not in seen, path
        seen.add(current)


def test_manifest_reports_staleness_and_merges_only_builds(project, capsys):
    common = [
        "--lambdas",
        str(project.lambdas_dir),
        "--out",
        str(project.out_dir),
        "--cache",
        str(project.cache_dir),
        "--constraints",
        str(project.constraints_path),
        "--offline",
    ]
    other = project.lambdas_dir / "fn_two"
    other.mkdir()
    (other / "handler.py").write_text("def handler(event, context):\n    return None\n")
    assert artifacts.discover_functions(project.lambdas_dir) == ["fn_one", "fn_two"]

    def stale(function: str) -> bool:
        return artifacts.is_stale(function, project.lambdas_dir, project.out_dir, project.constraints_path)

    assert main([*common, "--only", "fn_two"]) == 0
    assert main([*common, "--only", "fn_one"]) == 0

    manifest = json.loads((project.out_dir / "manifest.json").read_text())
    assert sorted(manifest["functions"]) == ["fn_one", "fn_two"]
    entry = artifacts.manifest_entry("fn_one", project.out_dir)
    assert entry is not None
    zip_bytes = artifacts.artifact_path("fn_one", project.out_dir).read_bytes()
    assert entry["sha256"] == hashlib.sha256(zip_bytes).hexdigest()
    assert artifacts.code_sha256_base64("fn_one", project.out_dir) == entry["sha256_base64"]
    assert not stale("fn_one") and not stale("fn_two")

    (project.lambdas_dir / "core" / "db.py").write_text("NAME = 'changed'\n")
    assert stale("fn_one") and stale("fn_two")
    assert artifacts.code_sha256_base64("absent", project.out_dir) is None and stale("fn_missing")
    assert main([*common, "--only", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_pip_download_asks_for_the_lambda_platform_without_deps(monkeypatch, tmp_path):
    seen: list[list[str]] = []

    class Result:
        returncode = 1
        stderr = "WARNING: Location 'x' is ignored\nERROR: No matching distribution found for nope==1\n"

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        return Result()

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(DownloadFailed, match="No matching distribution found for nope==1") as failure:
        pip_download(["nope==1"], tmp_path)
    assert "WARNING" not in str(failure.value)
    cmd = seen[0]
    assert cmd[-1] == "nope==1" and "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.13" and cmd[cmd.index("--implementation") + 1] == "cp"
    platforms = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--platform"]
    assert "manylinux2014_aarch64" in platforms and all(p.endswith("aarch64") for p in platforms)


def test_lock_pins_missing_dependencies_to_the_installed_version(project, monkeypatch):
    project.constraints_path.write_text("# header stays first\n")
    with pytest.raises(BuildError, match=r"'tinysub'.*not installed in this venv"):
        lock_missing("fn_one", project)

    monkeypatch.setattr(importlib.metadata, "version", lambda name: {"tinysub": "2.0"}[name])
    assert lock_missing("fn_one", project) == ["tinysub==2.0"]
    assert project.constraints_path.read_text() == "# header stays first\ntinysub==2.0\n"
    assert lock_missing("fn_one", project) == []
