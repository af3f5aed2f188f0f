"""Fixture function folders and tiny wheels built on the fly, so packaging tests need neither network nor the real
functions (which other people are writing)."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from tools.build_lambdas import BuildSettings, BytecodeCompiler


def make_wheel(directory: Path, name: str, version: str, tag: str, files: dict[str, str], requires: list[str]) -> Path:
    """A minimal but well-formed wheel: package files plus .dist-info/{METADATA,WHEEL,RECORD}."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    members = {
        **files,
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
        f"{dist_info}/RECORD": "".join(f"{n},,\n" for n in files) + f"{dist_info}/RECORD,,\n",
    }
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in members.items():
            zf.writestr(member, text)
    return path


@pytest.fixture(name="make_wheel")
def make_wheel_fixture():
    return make_wheel


@pytest.fixture(scope="session")
def this_python() -> BytecodeCompiler:
    """The test interpreter stands in for Lambda's 3.13: the bytecode step is the same, only the cache tag differs."""
    return BytecodeCompiler.probe(sys.executable, expect_tag=sys.implementation.cache_tag)


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    make_wheel(
        directory,
        "tinydep",
        "1.0",
        "py3-none-any",
        {
            "tinydep/__init__.py": "from tinysub import VALUE\n",
            "tinydep/__pycache__/__init__.cpython-313.pyc": "bytecode",
            "tinydep/legacy.pyc": "python 2 style bytecode",
            "tests/test_tinydep.py": "assert False\n",
        },
        [
            "tinysub==2.0",
            "boto3>=1.0",
            'winonly==1.0; sys_platform == "win32"',
            'fancy-extra==1.0; extra == "fancy"',
        ],
    )
    make_wheel(
        directory,
        "tinysub",
        "2.0",
        "cp313-cp313-manylinux_2_17_aarch64",
        {
            "tinysub/__init__.py": "VALUE = 'arm'\n",
            "tinysub-2.0.data/purelib/tinysub_extra.py": "EXTRA = 1\n",
            "tinysub-2.0.data/scripts/tinysub-cli": "#!/bin/sh\n",
        },
        [],
    )
    # Same name and version for the wrong platform: the build must never pick it.
    make_wheel(directory, "tinysub", "2.0", "cp313-cp313-win_amd64", {"tinysub/__init__.py": "VALUE = 'win'\n"}, [])
    return directory


@pytest.fixture
def project(tmp_path: Path, wheel_dir: Path, this_python: BytecodeCompiler) -> BuildSettings:
    """lambdas/ with one function and the core, the noise a working tree accumulates, and a pre-seeded wheel cache."""
    lambdas = tmp_path / "lambdas"
    fn = lambdas / "fn_one"
    (fn / "__pycache__").mkdir(parents=True)
    (fn / "tests").mkdir()
    (fn / "handler.py").write_text(
        "import tinydep\nfrom core import db\n\n\ndef handler(event, context):\n"
        "    return {'value': tinydep.VALUE, 'db': db.NAME}\n"
    )
    (fn / "requirements.txt").write_text("# runtime deps\ntinydep==1.0\n")
    (fn / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"noise")
    (fn / "tests" / "test_handler.py").write_text("def test_x():\n    pass\n")
    (fn / "test_inline.py").write_text("def test_y():\n    pass\n")
    (fn / "tests" / "fixture.json").write_text("{}\n")
    (fn / ".pytest_cache").mkdir()
    (fn / ".pytest_cache" / "README.md").write_text("cache\n")
    core = lambdas / "core"
    (core / "__pycache__").mkdir(parents=True)
    (core / "__init__.py").write_text("")
    (core / "db.py").write_text("NAME = 'pg'\n")
    (core / "__pycache__" / "db.cpython-311.pyc").write_bytes(b"noise")
    (lambdas / "not_a_function").mkdir()
    (lambdas / "not_a_function" / "README.md").write_text("no handler here\n")
    cache = tmp_path / "wheel-cache"
    shutil.copytree(wheel_dir, cache)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# transitive pins\ntinysub==2.0\n")
    return BuildSettings(
        lambdas_dir=lambdas,
        out_dir=tmp_path / "dist" / "lambdas",
        cache_dir=cache,
        constraints_path=constraints,
        downloader=None,
        compiler=this_python,
    )
