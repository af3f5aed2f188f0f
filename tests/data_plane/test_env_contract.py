"""The contract between the program and its handlers' configuration: every environment variable name a function's
code reads is set in the function's recorded environment, in both stacks.

The reads come from parsing the code the function imports (``tools/harness/env_reads.py``: ``env_str``/``env_int``,
``os.environ[...]``, ``os.environ.get``, ``os.getenv``, names given as module constants resolved); the environment
from its ``aws:lambda/function:Function`` record. A read with a default in code is no exception: an optional
tunable the program does not declare is a name that lives only in the handler, and a rename on either side would
pass silently. Only the variables the Lambda runtime sets itself are exempt.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from infra.records import StackRecords
from plan.evaluate import evaluate_stack
from tools.harness.env_reads import EnvRead, UnresolvedRead, environment_reads

STACKS = ("dev", "prod")
RUNTIME = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ",
    "LANG", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS",
})
"""What the Lambda runtime sets in every execution environment, reserved and unreserved: "Runtime environment
variables" in the AWS Lambda Developer Guide (docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
#configuration-envvars-runtime; its source is awsdocs/aws-lambda-developer-guide, doc_source/configuration-envvars.md).
``AWS_LAMBDA_INITIALIZATION_TYPE`` is from the guide's later revision of the same list."""


def unset_reads(records: StackRecords) -> dict[str, list[EnvRead]]:
    """Function (``record name (function name)``) -> the reads of its code whose name its environment lacks."""
    found = {}
    for record in records.of_type("aws:lambda/function:Function"):
        environment = set((record.inputs.get("environment") or {}).get("variables") or {})
        missing = [read for read in environment_reads(record.inputs["handler"])
                   if read.name not in environment and read.name not in RUNTIME]
        if missing:
            found[f"{record.name} ({record.outputs.get('name') or record.inputs.get('name')})"] = missing
    return found


def assert_environment_covers_reads(records: StackRecords) -> None:
    unset = unset_reads(records)
    assert not unset, f"stack {records.stack}: functions read variables their recorded environment does not set: " + \
        "; ".join(f"{function} reads {', '.join(map(str, reads))}" for function, reads in sorted(unset.items()))


@pytest.mark.parametrize("stack", STACKS)
def test_every_variable_a_handler_reads_is_in_its_recorded_environment(stack: str) -> None:
    assert_environment_covers_reads(evaluate_stack(stack))


@pytest.mark.parametrize("stack", STACKS)
def test_the_scan_sees_each_function_read_its_own_wiring(stack: str) -> None:
    """The scan is not vacuous: each function's code reads most of what the program sets on it (all but the
    Powertools and stack-name variables the libraries read), through literals, constants and ``core``."""
    records = evaluate_stack(stack)
    for record in records.of_type("aws:lambda/function:Function"):
        environment = set((record.inputs.get("environment") or {}).get("variables") or {})
        read = {r.name for r in environment_reads(record.inputs["handler"])}
        unused = environment - read - {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "ENVIRONMENT"}
        assert not unused, f"{record.name}: the program sets {sorted(unused)} and the scan finds no read of them"


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def test_the_scan_follows_imports_constants_and_calls(tmp_path: Path) -> None:
    files = {
        "core/__init__.py": "",
        "core/config.py": """
            import os
            def env_str(name, default=None):
                return os.environ.get(name, default)
            """,
        "core/db.py": """
            from core.config import env_str
            SECRET_ENV = "SECRET_ARN"
            def connect():
                return env_str(SECRET_ENV)
            def unused():
                return env_str("NEVER_CALLED")
            class Limits:
                @classmethod
                def from_env(cls):
                    return env_str("LIMIT")
            """,
        "core/other.py": 'import os\nVALUE = os.environ["NOT_IMPORTED"]\n',
        "fn/__init__.py": "",
        "fn/handler.py": """
            import os
            from core import db
            from core.db import SECRET_ENV
            from fn.worker import start
            QUEUE = "QUEUE_URL"
            def handler(event, context):
                db.connect()
                start()
                return os.getenv(QUEUE), [os.environ.get(n, "") for n in ("A", "B")], os.environ[SECRET_ENV]
            """,
        "fn/worker.py": """
            import os
            def start():
                return os.environ.get("WORKER_LIMIT")
            def _main():
                return os.environ["SET_BY_THE_PARENT"]
            if __name__ == "__main__":
                _main()
            """,
    }
    root = _package(tmp_path / "first", files)
    reads = {(r.name, r.module) for r in environment_reads("fn.handler.handler", root)}
    assert reads == {("QUEUE_URL", "fn.handler"), ("A", "fn.handler"), ("B", "fn.handler"),
                     ("SECRET_ARN", "fn.handler"), ("SECRET_ARN", "core.db"), ("WORKER_LIMIT", "fn.worker")}

    calling_from_env = textwrap.dedent(files["fn/handler.py"]) + "db.Limits.from_env()\n"
    calling = _package(tmp_path / "second", {**files, "fn/handler.py": calling_from_env})
    assert "LIMIT" in {r.name for r in environment_reads("fn.handler.handler", calling)}


def test_a_read_the_scan_cannot_name_fails(tmp_path: Path) -> None:
    root = _package(tmp_path, {"fn/__init__.py": "", "fn/handler.py": """
        import os
        def handler(event, context):
            return os.environ.get(event["variable"])
        """})
    with pytest.raises(UnresolvedRead, match=r"fn.handler:4: environment read of event\['variable'\]"):
        environment_reads("fn.handler.handler", root)


@pytest.mark.parametrize("source", [
    "from os import getenv\nLIMIT = getenv('LIMIT')\n",
    "import os\nENV = os.environ\nLIMIT = ENV.get('LIMIT')\n",
    "import os\nLIMITS = {k: v for k, v in os.environ.items() if k.startswith('MAX_')}\n",
], ids=["from-os-import", "alias", "items"])
def test_an_environment_use_the_scan_cannot_follow_fails(tmp_path: Path, source: str) -> None:
    """Forms the scan does not name reads in are refused wherever they are, so none can hide a variable."""
    root = _package(tmp_path, {"fn/__init__.py": "", "fn/handler.py": source + "def handler(event, context):\n"
                                                                             "    return LIMIT\n"})
    with pytest.raises(UnresolvedRead, match="fn.handler:"):
        environment_reads("fn.handler.handler", root)
