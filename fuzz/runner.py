"""Runs mutants in a ``fuzz.child`` process with a time and an address-space limit and classifies what happened.

Classes: ``ok``, ``refused`` (a clean, recorded refusal), ``crash`` (another exception), ``hang`` (no answer within
the time limit: the child is killed), ``oom`` (MemoryError under the limit), ``abort`` (the child died: a signal such
as SIGABRT from native code, or an exit). The child is reused until it dies or hangs, then started again.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from text_extractor.pdf_worker import stop

from fuzz.child import FRAME, stack_place

REPO = Path(__file__).resolve().parents[1]
FAILURES = ("crash", "hang", "oom", "abort")
DEFAULT_TIMEOUT = 10.0
DEFAULT_MEMORY = 3 << 29  # 1.5 GiB of address space


@dataclass(frozen=True)
class Result:
    outcome: str
    detail: str
    seconds: float

    @property
    def signature(self) -> str:
        """What makes two findings the same bug: the class and where (exception type and our innermost frame)."""
        if self.outcome in ("ok", "refused"):
            return self.outcome
        return f"{self.outcome}: {self.detail.split(': ', 1)[0] if self.outcome == 'crash' else self.detail}"[:160]


class _Gone(Exception):
    pass


class Runner:
    """One child process; ``run`` never raises for anything the mutant does."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY):
        self.timeout = timeout
        self.memory = memory
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        handle, path = tempfile.mkstemp(prefix="fuzz-stack-")
        os.close(handle)
        self.stack_file = Path(path)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self.stack_file.unlink(missing_ok=True)

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop(process)

    def _start(self) -> subprocess.Popen[bytes]:
        if self.process is not None and self.process.poll() is None:
            return self.process
        self.close()
        self.stack_file.write_text("")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "lambdas")])
        env["FUZZ_ADDRESS_SPACE"] = str(self.memory)
        env["FUZZ_STACK_FILE"] = str(self.stack_file)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fuzz.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # pdfium and the extractor's logging would drown the report
            env=env,
            cwd=REPO,
        )
        self.starts += 1
        self._reply(time.monotonic() + 60)  # "ready": imports are not a mutant's time
        return self.process

    def _reply(self, deadline: float) -> bytes:
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        buffer = bytearray()
        need = FRAME.size
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(buffer) < need:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise TimeoutError
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise _Gone
                buffer += chunk
                if need == FRAME.size and len(buffer) >= FRAME.size:
                    header, payload = FRAME.unpack_from(buffer)
                    need += header + payload
        return bytes(buffer[FRAME.size : need])

    def run(self, target: str, data: bytes, filename: str, timeout: float | None = None) -> Result:
        """Run one input; ``timeout`` replaces the runner's limit for this run."""
        limit = self.timeout if timeout is None else timeout
        process = self._start()
        assert process.stdin is not None
        header = json.dumps({"target": target, "filename": filename}).encode()
        started = time.monotonic()
        try:
            process.stdin.write(FRAME.pack(len(header), len(data)) + header + data)
            process.stdin.flush()
            reply = json.loads(self._reply(started + limit))
            return Result(reply["outcome"], reply["detail"], reply["seconds"])
        except TimeoutError:
            seconds = round(time.monotonic() - started, 3)
            place = self._stack(process, signal.SIGUSR1)
            self.close()
            return Result("hang", f"at {place}" if place else f"no answer within {limit:g} s", seconds)
        except (_Gone, BrokenPipeError, ConnectionResetError):
            status = process.wait()
            self.process = None
            if status < 0:
                try:
                    how = signal.Signals(-status).name
                except ValueError:
                    how = f"signal {-status}"
            else:
                how = f"exit status {status}"
            place = self._stack(process, None)
            return Result("abort", f"{how}" + (f" at {place}" if place else ""), round(time.monotonic() - started, 3))

    def _stack(self, process: subprocess.Popen[bytes], ask: signal.Signals | None) -> str:
        """Where the child is (hang: it is asked with a signal) or was (abort: faulthandler wrote it as it died)."""
        if ask is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(ask)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not stack_place(self.stack_file.read_text(errors="replace")):
                time.sleep(0.05)
        return stack_place(self.stack_file.read_text(errors="replace"))
