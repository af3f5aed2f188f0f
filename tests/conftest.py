"""Session-wide test settings: fake AWS credentials so no test can reach a real account, each stack evaluated once
per run (``tests/shared_stacks.py``), and moto's patching set up once per test process.

Starting ``mock_aws`` registers ~1,300 URL patterns per HTTP method (~11 ms); a test process keeps one started for its
whole session, so the ``mock_aws()`` a fixture or test enters is nested and costs nothing. Nested starts do not reset
moto's state, so every test starts with empty backends here, as a first start would give it.
"""

import gc
import os
import uuid
from collections.abc import Iterator

import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict
from moto.core.model_instances import reset_model_data

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("PYTEST_XDIST_TESTRUNUID"):
    # An xdist worker, before any conftest or test module below imports it: ``evaluate_stack`` shared by the run.
    import plan.evaluate
    from tests import shared_stacks

    plan.evaluate.evaluate_stack = shared_stacks.shared(plan.evaluate.evaluate_stack,
                                                        os.environ["PYTEST_XDIST_TESTRUNUID"])


def pytest_configure(config: pytest.Config) -> None:
    """The controller of an xdist run names the run, so that it can remove what the workers shared at its end."""
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "testrunuid", "") is None:
        config.option.testrunuid = uuid.uuid4().hex


def pytest_collection_finish(session: pytest.Session) -> None:
    """The cyclic collector: what collection imported lives to the end, so it is frozen (never rescanned), and full
    collections, which rescan every module, stack record and moto backend a process holds (~0.3 s each), run a
    hundred times less often. Was ~4 s of each process's CPU; the garbage cycles they would free are small."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 1000)


def pytest_unconfigure(config: pytest.Config) -> None:
    run_id = getattr(config.option, "testrunuid", None)
    if run_id and not hasattr(config, "workerinput"):
        from tests import shared_stacks

        shared_stacks.remove(run_id)


@pytest.fixture(scope="session", autouse=True)
def _moto_patching() -> Iterator[None]:
    # boto3's default session is kept: reloading its service models costs ~0.15 s a test.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):  # type: ignore[arg-type]
        yield


@pytest.fixture(autouse=True)
def _empty_moto_backends(_moto_patching: None) -> None:
    BackendDict.reset()
    reset_model_data()
