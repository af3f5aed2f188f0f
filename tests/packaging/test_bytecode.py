"""Bytecode in the artifact: compiled for the target interpreter, deterministic, and what the import system loads.

Most tests inject the test interpreter as the compiler (the step is the same for Lambda's 3.13; only the cache tag
differs); the last one uses a real CPython 3.13 when this machine has one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from infra import artifacts
from tools.build_lambdas import (
    _PYC_MEMO,
    BuildError,
    BytecodeCompiler,
    build_function,
    find_lambda_python,
    main,
)

TAG = sys.implementation.cache_tag


def _pyc_name(source: str, tag: str = TAG) -> str:
    folder, _, file = source.rpartition("/")
    return f"{folder + '/' if folder else ''}__pycache__/{file[:-3]}.{tag}.pyc"


def _extract(zip_path: str | Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(into)
    return into


def test_every_module_ships_unchecked_hash_bytecode_next_to_its_source(project):
    entry = build_function("fn_one", project)
    with zipfile.ZipFile(entry["artifact"]) as zf:
        names = set(zf.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert {"fn_one/handler.py", "core/db.py", "tinydep/__init__.py", "tinysub_extra.py"} <= set(sources)
        assert {n for n in names if n.endswith(".pyc")} == {_pyc_name(n) for n in sources}
        for source in sources:
            header = zf.read(_pyc_name(source))[:16]
            assert header[:4] == importlib.util.MAGIC_NUMBER, source
            # flags 0b01: hash-based and not checked against the source, so no mtime is stored and none is compared.
            assert int.from_bytes(header[4:8], "little") == 0b01, source
            assert header[8:16] == importlib.util.source_hash(zf.read(source)), source
    assert entry["bytecode"] == {
        "python": f"CPython {'.'.join(map(str, sys.version_info[:3]))}",
        "cache_tag": TAG,
        "invalidation_mode": "unchecked-hash",
        "uncompiled": [],
    }


def test_the_import_system_loads_the_shipped_bytecode_and_points_tracebacks_at_the_source(project, tmp_path):
    task = _extract(build_function("fn_one", project)["artifact"], tmp_path / "task")
    # Unchecked-hash bytecode is used without reading the source: a changed source proves the .pyc was loaded.
    (task / "core" / "db.py").write_text("NAME = 'from source'\n")
    code = (
        f"import sys; sys.path.insert(0, {str(task)!r}); import fn_one.handler as h, core.db as d; "
        "print(h.handler({}, None)['db'], h.handler.__code__.co_filename, d.__cached__)"
    )
    result = subprocess.run([sys.executable, "-I", "-B", "-c", code], capture_output=True, text=True, check=True)
    value, filename, cached = result.stdout.split()
    assert value == "pg"
    assert filename == str(task / "fn_one" / "handler.py")  # not the /var/task name baked in at build time
    assert cached == str(task / "core" / "__pycache__" / f"db.{TAG}.pyc")


def test_bytecode_bytes_do_not_depend_on_hash_seed_build_dir_or_batch(this_python, monkeypatch):
    source = b"def f(x):\n    return x in {'alpha', 'beta', 'gamma', 'delta'}, {1: 'a', 2: 'b'}\n"
    sources = {"pkg/__init__.py": b"", "pkg/sets.py": source, "pkg/other.py": b"import os\nX = os.sep * 3\n"}
    results = []
    for seed in ("1", "2", "random"):
        monkeypatch.setenv("PYTHONHASHSEED", seed)  # the compiler must not inherit it
        _PYC_MEMO.clear()
        results.append(this_python.compile("fn", sources))
    _PYC_MEMO.clear()
    alone = this_python.compile("fn", {"pkg/sets.py": source})  # the memo relies on this: no cross-file effects
    assert results[0] == results[1] == results[2]
    assert alone[0][_pyc_name("pkg/sets.py")] == results[0][0][_pyc_name("pkg/sets.py")]
    assert results[0][1] == {} and len(results[0][0]) == 3


def test_own_code_that_does_not_compile_is_an_error_naming_the_file(project):
    (project.lambdas_dir / "core" / "broken.py").write_text("def broken(:\n")
    with pytest.raises(
        BuildError, match=r"'fn_one': core/broken\.py does not compile under Python 3\.[\d.]+: SyntaxError"
    ):
        build_function("fn_one", project)


def test_third_party_file_that_does_not_compile_ships_as_source_and_is_listed(project, make_wheel):
    wheel = make_wheel(
        project.cache_dir, "tinydep", "1.0", "py3-none-any",
        {"tinydep/__init__.py": "VALUE = 1\n", "tinydep/py2_example.py": "print 'old'\n"},
        ["tinysub==2.0"],
    )  # fmt: skip
    assert wheel.is_file()
    entry = build_function("fn_one", project)
    assert entry["bytecode"]["uncompiled"] == ["tinydep/py2_example.py"]
    names = set(zipfile.ZipFile(entry["artifact"]).namelist())
    assert "tinydep/py2_example.py" in names and _pyc_name("tinydep/__init__.py") in names


def test_no_bytecode_build_ships_sources_only_and_reports_stale(project):
    entry = build_function("fn_one", replace(project, compiler=None))
    names = zipfile.ZipFile(entry["artifact"]).namelist()
    assert "fn_one/handler.py" in names and not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert entry["bytecode"] is None
    deployable = artifacts.source_hash("fn_one", project.lambdas_dir, project.constraints_path)
    assert entry["source_hash"] != deployable
    assert entry["source_hash"] == artifacts.source_hash("fn_one", project.lambdas_dir, project.constraints_path, None)


def _fake_python(path: Path, output: str, exit_code: int = 0) -> Path:
    """A script that answers the probe like an interpreter would (or fails like a pyenv shim, on stderr)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    redirect = " >&2" if exit_code else ""
    path.write_text(f"#!/bin/sh\necho '{output}'{redirect}\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_finder_skips_a_broken_shim_then_uses_pyenv_and_names_the_flags_when_nothing_fits(tmp_path, monkeypatch):
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    _fake_python(bin_dir / "python3.13", "pyenv: python3.13: command not found", 127)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    find_lambda_python.cache_clear()
    try:
        with pytest.raises(BuildError) as failure:
            find_lambda_python()
        message = str(failure.value)
        assert "--python PATH" in message and "--no-bytecode" in message and "command not found" in message

        pyenv = _fake_python(home / ".pyenv/versions/3.13.9/bin/python3.13", "cpython-313 3.13.9")
        _fake_python(home / ".pyenv/versions/3.12.1/bin/python3.12", "cpython-312 3.12.1")
        find_lambda_python.cache_clear()
        found = find_lambda_python()
        assert (found.python, found.cache_tag, found.version) == (str(pyenv), "cpython-313", "3.13.9")
    finally:
        find_lambda_python.cache_clear()


def test_cli_rejects_a_python_that_is_not_the_lambda_version(project, capsys):
    wrong = _fake_python(project.out_dir.parent / "py311", "cpython-311 3.11.7")
    common = ["--lambdas", str(project.lambdas_dir), "--out", str(project.out_dir), "--cache", str(project.cache_dir)]
    common += ["--constraints", str(project.constraints_path), "--offline"]
    assert main([*common, "--python", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert f"--python {wrong} is cpython-311" in err and "cpython-313" in err and "--no-bytecode" in err
    assert not artifacts.artifact_path("fn_one", project.out_dir).exists()

    assert main([*common, "--no-bytecode"]) == 0
    manifest = json.loads((project.out_dir / "manifest.json").read_text())
    assert manifest["functions"]["fn_one"]["bytecode"] is None
    assert "bytecode: none (--no-bytecode)" in capsys.readouterr().out


def _lambda_python() -> BytecodeCompiler | None:
    try:
        return find_lambda_python()
    except BuildError:
        return None


@pytest.mark.skipif(_lambda_python() is None, reason="no CPython 3.13 on PATH or in ~/.pyenv (install one to run)")
def test_real_python313_bytecode_is_loaded_by_python313(project, tmp_path):
    python313 = _lambda_python()
    assert python313 is not None
    entry = build_function("fn_one", replace(project, compiler=python313))
    assert entry["bytecode"]["cache_tag"] == "cpython-313"
    assert entry["source_hash"] == artifacts.source_hash("fn_one", project.lambdas_dir, project.constraints_path)
    task = _extract(entry["artifact"], tmp_path / "task")
    assert (task / "core" / "__pycache__" / "db.cpython-313.pyc").is_file()
    (task / "core" / "db.py").write_text("NAME = 'from source'\n")
    code = f"import sys; sys.path.insert(0, {str(task)!r}); import fn_one.handler as h; print(h.handler({{}}, None))"
    result = subprocess.run([python313.python, "-I", "-B", "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "{'value': 'arm', 'db': 'pg'}"
    again = build_function("fn_one", replace(project, compiler=python313, out_dir=tmp_path / "again"))
    assert Path(again["artifact"]).read_bytes() == Path(entry["artifact"]).read_bytes()
