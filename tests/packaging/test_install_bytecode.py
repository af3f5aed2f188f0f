"""The install compiles the part of pulumi_aws the project uses (``tools/compile_bytecode.py``): that part must cover
every service both stacks load, or each run would compile the rest again where bytecode is not written."""

from __future__ import annotations

import sys
from pathlib import Path

from plan.evaluate import evaluate_stack
from tools.compile_bytecode import modules_to_compile, referenced_services


def loaded_services() -> set[str]:
    """pulumi_aws services with more than their lazy ``__init__`` loaded in this process."""
    return {name.split(".")[1] for name in sys.modules if name.startswith("pulumi_aws.") and name.count(".") >= 2}


def test_the_compiled_services_cover_every_service_the_stacks_load() -> None:
    evaluate_stack("dev"), evaluate_stack("prod")
    loaded = loaded_services()
    assert {"s3", "ec2", "iam", "lambda_"} <= loaded  # the check itself sees what loads
    missing = loaded - referenced_services()
    assert not missing, f"the stacks load pulumi_aws services the install does not compile: {sorted(missing)}"


def test_only_roots_and_referenced_services_are_compiled(tmp_path: Path) -> None:
    package = tmp_path / "pulumi_aws"
    for module in ("__init__.py", "_utilities.py", "s3/__init__.py", "s3/bucket.py", "xray/__init__.py",
                   "xray/group.py", "xray/nested/deep.py"):
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_text("")
    chosen = {p.relative_to(package).as_posix() for p in modules_to_compile(package, {"s3"})}
    assert chosen == {"__init__.py", "_utilities.py", "s3/__init__.py", "s3/bucket.py", "xray/__init__.py"}
