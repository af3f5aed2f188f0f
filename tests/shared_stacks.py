"""Each stack evaluated once per test run, not once per test process.

Under ``pytest -n 2`` both processes need both stacks' records (~2 s of evaluation each). Here the first process to
ask for a stack evaluates it and leaves the records (pickled) in a folder of this run; a process that finds the stack
being evaluated evaluates another one meanwhile, then loads the first. The records are the same data either way:
``evaluate_stack`` runs unchanged, only where it runs differs. Nothing outlives the run (the folder is named by
xdist's run id and removed at its end).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from infra.records import StackRecords

STACKS = ("dev", "prod")


def folder(run_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"macro-infra-stacks-{run_id}"


def remove(run_id: str) -> None:
    shutil.rmtree(folder(run_id), ignore_errors=True)


def shared(evaluate: Callable[[str], StackRecords], run_id: str) -> Callable[[str], StackRecords]:
    """``evaluate`` (``plan.evaluate.evaluate_stack``) with its results shared between the processes of one run."""
    where = folder(run_id)
    where.mkdir(exist_ok=True)

    @contextlib.contextmanager
    def claimed(stack: str, *, wait: bool) -> Iterator[bool]:
        with open(where / f"{stack}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load_or_evaluate(stack: str) -> StackRecords:
        """Holding the stack's lock: the records another process left, or evaluated and left here."""
        path = where / f"{stack}.pickle"
        if path.exists():
            with open(path, "rb") as stored:
                records: StackRecords = pickle.load(stored)
            return records
        records = evaluate(stack)
        partial = path.with_suffix(f".{os.getpid()}")
        partial.write_bytes(pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(path)
        return records

    remembered: dict[str, StackRecords] = {}

    def evaluate_stack(stack: str) -> StackRecords:
        if stack not in remembered:
            with claimed(stack, wait=False) as mine:
                if mine:
                    remembered[stack] = load_or_evaluate(stack)
                    return remembered[stack]
            for other in STACKS:  # another process is evaluating it: do one nobody has started, meanwhile
                if other not in (stack, *remembered) and not (where / f"{other}.pickle").exists():
                    # A failure there belongs to the other stack's tests (they raise it when they ask), not to
                    # this one's: it is left unrecorded.
                    with claimed(other, wait=False) as free, contextlib.suppress(Exception):
                        if free:
                            remembered[other] = load_or_evaluate(other)
                    break
            with claimed(stack, wait=True):
                remembered[stack] = load_or_evaluate(stack)
        return remembered[stack]

    return evaluate_stack
