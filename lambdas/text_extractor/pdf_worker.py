"""PDF text from pdfium in a child process, so a native abort or memory exhaustion is a refusal, not a dead Lambda.

pdfium aborts (SIGABRT) when an allocation fails: a 44 KB flate content stream of 1.5M ``(ab) Tj`` operators, or a
3 KB form-XObject chain (a form drawing a form 100 times, four levels deep), each wants more than a gigabyte while the
page loads or its text page is built. In the handler's own process that kills the runtime: no status row, no reason,
a retry of the same fate. Here pdfium runs in a worker process with its own address-space limit
(``RLIMIT_AS``) and a wall-clock limit; when the worker dies or overruns, ``PdfWorkerAborted`` (a ``LimitExceeded``)
names what happened and the handler records the document as skipped.

The worker is a plain ``subprocess`` speaking length-prefixed frames over its stdin/stdout: Lambda has no
``/dev/shm``, so ``multiprocessing`` queues and pools are out, and a fresh interpreter (not a fork of the handler)
does not inherit the parent's heap. It starts on the first PDF and is reused by every later PDF of this process,
across warm invocations (~0.1 s to start and import pdfium, paid once); after a death the next PDF starts a new one.
A worker whose resident memory passed a third of its limit is replaced before the next document, so a heap grown by
earlier documents cannot turn a readable file into a refusal (and a death is always the document's own doing: no
retry, which would double the time a bomb costs).

Inside the worker, a clock limits each step (opening the document, each page: ``PageClock``) and budgets turn
big-but-legal pages into ``LimitExceeded`` before pdfium builds their text page
(~400 bytes of pdfium memory per character) or before the text is copied out: drawing objects on the page, characters
per page and per document. The memory limit is the backstop for what the budgets cannot see in advance, such as a
form-XObject chain, which pdfium expands while it loads the page.

Environment (defaults in code): PDF_WORKER_MEMORY_MB (address space of the worker, default 640: the function has
1024 MB, of which the handler process needs up to ~300 with a 100 MiB document in hand), PDF_WORKER_TIMEOUT_SECONDS
(per document, default 120, well inside the function's 300 s).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from text_extractor.extract import CorruptDocument, EncryptedDocument, ExtractionError, LimitExceeded

DEFAULT_MEMORY_MB = 640  # PDF_WORKER_MEMORY_MB
DEFAULT_TIMEOUT_SECONDS = 120  # PDF_WORKER_TIMEOUT_SECONDS
DEFAULT_PAGE_SECONDS = 5.0  # opening the document, and each page: legal pages take milliseconds
DEFAULT_MAX_PAGE_OBJECTS = 250_000  # drawing objects on one page (~330 bytes of pdfium memory each)
DEFAULT_MAX_PAGE_CHARS = 2_000_000  # a dense legal page holds ~10k characters
DEFAULT_MAX_DOCUMENT_CHARS = 64_000_000  # ~2000 pages of dense text
STARTUP_SECONDS = 30
PIPE_BYTES = 1024 * 1024

_FRAME = struct.Struct(">QQ")  # (JSON header length, payload length)
_ERRORS: dict[str, type[ExtractionError]] = {
    cls.__name__: cls for cls in (CorruptDocument, EncryptedDocument, LimitExceeded)
}


class PdfWorkerAborted(LimitExceeded):
    """The pdfium worker died (native abort, memory limit) or overran its time limit on this document."""


@dataclass(frozen=True)
class WorkerLimits:
    memory_bytes: int = DEFAULT_MEMORY_MB * 1024 * 1024
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    page_seconds: float = DEFAULT_PAGE_SECONDS
    max_page_objects: int = DEFAULT_MAX_PAGE_OBJECTS
    max_page_chars: int = DEFAULT_MAX_PAGE_CHARS
    max_document_chars: int = DEFAULT_MAX_DOCUMENT_CHARS

    def budget(self) -> dict[str, int]:
        """The budgets ``read_pdf`` enforces inside the worker."""
        return {
            "max_page_objects": self.max_page_objects,
            "max_page_chars": self.max_page_chars,
            "max_document_chars": self.max_document_chars,
        }

    @classmethod
    def from_env(cls) -> WorkerLimits:
        """PDF_WORKER_MEMORY_MB and PDF_WORKER_TIMEOUT_SECONDS; invalid values raise ConfigError naming them."""
        from core.config import env_int

        return cls(
            memory_bytes=env_int("PDF_WORKER_MEMORY_MB", DEFAULT_MEMORY_MB, minimum=128) * 1024 * 1024,
            timeout_seconds=env_int("PDF_WORKER_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, minimum=1),
        )


class _Gone(Exception):
    """The worker was already dead when the document was sent."""


class _Died(Exception):
    """The worker went away mid-request (EOF, broken pipe); ``PdfWorker`` turns it into a refusal."""


@dataclass
class PdfWorker:
    """One pdfium worker process, started on demand and restarted after it dies. Not thread-safe."""

    limits: WorkerLimits = field(default_factory=WorkerLimits)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def pages(self, data: bytes, max_pages: int) -> list[str]:
        """The text of each page; raises ExtractionError subclasses (PdfWorkerAborted when the worker failed)."""
        try:
            try:
                return self._request(data, max_pages)
            except _Gone:  # died before it could read this document (between invocations): not the document's doing
                self.close()
                return self._request(data, max_pages)
        except (_Died, _Gone):
            raise self._aborted() from None
        finally:
            if self._process is not None and _resident_bytes(self._process.pid) > self.limits.memory_bytes // 3:
                self.close()  # a heap grown by this document must not cost the next one its memory

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop(process)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    # ----------------------------------------------------------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self.close()
        env = dict(os.environ)
        # The worker imports this package the way the handler did (Lambda: /var/task; tests: lambdas/).
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else os.getcwd() for p in sys.path)
        env["PDF_WORKER_ADDRESS_SPACE"] = str(self.limits.memory_bytes)
        env["PDF_WORKER_PAGE_SECONDS"] = str(self.limits.page_seconds)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "text_extractor.pdf_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        for stream in (self._process.stdin, self._process.stdout):
            _widen_pipe(stream)
        # The worker says it is ready once pdfium is imported, so that cost is not taken from the first document's
        # time limit; a worker that cannot start is a broken deployment (retry, then the DLQ), not a bad document.
        assert self._process.stdout is not None
        try:
            ready = _read_frame(self._process.stdout, time.monotonic() + STARTUP_SECONDS, self)[0]
        except (_Died, PdfWorkerAborted):
            ready = b""
        if ready != b"ready":
            self.close()
            raise RuntimeError(f"the pdfium worker did not start within {STARTUP_SECONDS} s (see its stderr above)")
        return self._process

    def _request(self, data: bytes, max_pages: int) -> list[str]:
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        header = json.dumps({"max_pages": max_pages, **self.limits.budget()}).encode()
        deadline = time.monotonic() + self.limits.timeout_seconds
        try:
            process.stdin.write(_FRAME.pack(len(header), len(data)) + header)
            process.stdin.write(data)
            process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            raise _Gone() from None
        reply_header, payload = _read_frame(process.stdout, deadline, self)
        reply = json.loads(reply_header)
        if reply.get("exiting"):
            self.close()  # it stopped mid-page and ends itself: the next document gets a new worker
        if reply.get("ok"):
            text = payload.decode("utf-8", "surrogatepass")
            pages, start = [], 0
            for length in reply["lengths"]:
                pages.append(text[start : start + length])
                start += length
            return pages
        error = _ERRORS.get(reply.get("error", ""), CorruptDocument)
        raise error(str(reply.get("reason", "unreadable PDF"))[:2000])

    def _timed_out(self) -> PdfWorkerAborted:
        self.close()
        return PdfWorkerAborted(
            f"PDF extraction took longer than {self.limits.timeout_seconds:g} s; the pdfium worker was stopped"
        )

    def _aborted(self) -> PdfWorkerAborted:
        process, self._process = self._process, None
        status = process.wait() if process is not None else None
        limit = f"{self.limits.memory_bytes // (1024 * 1024)} MiB"
        if status is not None and status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            how = f"was killed by {name}"
        else:
            how = f"exited with status {status}"
        return PdfWorkerAborted(
            f"pdfium {how} while reading this PDF (out of its {limit} memory limit or a native abort)"
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Close a worker's pipes, kill it if it still runs, and reap it."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    if process.poll() is None:
        process.kill()
    process.wait()


def _resident_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _widen_pipe(stream: IO[bytes] | None) -> None:
    """1 MiB pipes instead of 64 KiB: a 3 MB PDF then crosses in 3 wake-ups of the other process, not 48."""
    if stream is None:
        return
    import fcntl

    with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: the default size still works
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)


def _read_frame(stream: IO[bytes], deadline: float, worker: PdfWorker) -> tuple[bytes, bytes]:
    """One reply frame, waiting at most until ``deadline`` (monotonic); raises _Died on EOF."""
    fd = stream.fileno()
    buffer = bytearray()
    need = _FRAME.size
    lengths: tuple[int, int] | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if len(buffer) >= need:
                if lengths is None:
                    lengths = _FRAME.unpack_from(buffer)
                    need = _FRAME.size + lengths[0] + lengths[1]
                    continue
                header_end = _FRAME.size + lengths[0]
                return bytes(buffer[_FRAME.size : header_end]), bytes(buffer[header_end:need])
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise worker._timed_out()
            chunk = os.read(fd, max(need - len(buffer), 1 << 16))
            if not chunk:
                raise _Died()
            buffer += chunk


_shared: PdfWorker | None = None


def shared_worker() -> PdfWorker:
    """The process-wide worker (limits from the environment when it is first needed), kept across invocations."""
    global _shared
    if _shared is None:
        _shared = PdfWorker(WorkerLimits.from_env())
        atexit.register(_shared.close)
    return _shared


# --------------------------------------------------------------------------------------------------------------------
# Inside the worker process


class PageClock:
    """Limits the time of each step (opening the document, each page) from a thread of the worker: pdfium's calls
    release the GIL, so the thread can answer with a refusal and end the worker while pdfium is still busy. Legal
    pages take milliseconds; a page of form-XObject expansion can take minutes."""

    def __init__(self, seconds: float, expire: Callable[[str], None]):
        self.seconds = seconds
        self._expire = expire
        self._step: str | None = None
        self._deadline = 0.0
        self._changed = threading.Condition()
        threading.Thread(target=self._watch, name="page-clock", daemon=True).start()

    def start(self, step: str | None) -> None:
        """Begin timing ``step``; None stops the clock."""
        with self._changed:
            self._step, self._deadline = step, time.monotonic() + self.seconds
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while True:
                if self._step is None:
                    self._changed.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._expire(self._step)
                    return
                self._changed.wait(remaining)


def read_pdf(data: bytes, max_pages: int, budget: dict[str, int], clock: PageClock | None = None) -> list[str]:
    """Text per page with pdfium, under the page-object and character budgets; raises ExtractionError subclasses."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    start = clock.start if clock is not None else (lambda step: None)
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise CorruptDocument("not a PDF file (no %PDF header)")
    start("opening the document")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise EncryptedDocument("PDF is password-protected") from exc
        raise CorruptDocument(f"unreadable PDF: {exc}") from exc
    try:
        count = len(pdf)
        if count > max_pages:
            raise LimitExceeded(f"PDF has {count} pages, more than the limit {max_pages}")
        pages: list[str] = []
        total = 0
        for index in range(count):
            start(f"page {index + 1}")
            try:
                page = pdf[index]
                # Top-level objects only: a ctypes walk into form XObjects cost ~25 % of the corpus time, and pdfium
                # expands forms while loading the page, before any budget could act (the memory limit catches them).
                if pdfium_c.FPDFPage_CountObjects(page.raw) > budget["max_page_objects"]:
                    raise LimitExceeded(
                        f"PDF page {index + 1} has more than {budget['max_page_objects']} drawing objects"
                    )
                textpage = page.get_textpage()
                chars = textpage.count_chars()
                if chars > budget["max_page_chars"]:
                    raise LimitExceeded(
                        f"PDF page {index + 1} has {chars} characters, more than the limit {budget['max_page_chars']}"
                    )
                total += chars
                if total > budget["max_document_chars"]:
                    raise LimitExceeded(f"PDF has more than {budget['max_document_chars']} characters of text")
                pages.append(textpage.get_text_range())
                textpage.close()
                page.close()
            except pdfium.PdfiumError as exc:
                raise CorruptDocument(f"unreadable PDF page {index + 1}: {exc}") from exc
        return pages
    finally:
        pdf.close()
        start(None)


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def _serve(stdin: IO[bytes], stdout: IO[bytes], page_seconds: float) -> None:
    """Answer requests until the parent closes the pipe."""
    writing = threading.Lock()
    answered = [True]

    def send(reply: dict[str, Any], payload: bytes) -> None:
        with writing:
            if answered[0]:
                return
            encoded = json.dumps(reply).encode()
            stdout.write(_FRAME.pack(len(encoded), len(payload)) + encoded + payload)
            stdout.flush()
            answered[0] = True

    def expire(step: str) -> None:
        reason = f"PDF extraction spent more than {page_seconds:g} s on {step}"
        send({"ok": False, "error": "LimitExceeded", "reason": reason, "exiting": True}, b"")
        os._exit(0)  # pdfium is still busy in the main thread: the parent starts a new worker for the next PDF

    clock = PageClock(page_seconds, expire)
    while True:
        frame = _read_exact(stdin, _FRAME.size)
        if frame is None:
            return
        header_length, data_length = _FRAME.unpack(frame)
        header = _read_exact(stdin, header_length)
        data = _read_exact(stdin, data_length)
        if header is None or data is None:
            return
        request = json.loads(header)
        max_pages = request.pop("max_pages")
        answered[0] = False
        try:
            pages = read_pdf(data, max_pages, request, clock)
            reply: dict[str, Any] = {"ok": True, "lengths": [len(page) for page in pages]}
            payload = "".join(pages).encode("utf-8", "surrogatepass")
        except ExtractionError as exc:
            reply, payload = {"ok": False, "error": type(exc).__name__, "reason": exc.reason}, b""
        except MemoryError:
            reason = "PDF needs more memory than the pdfium worker has"
            reply, payload = {"ok": False, "error": "LimitExceeded", "reason": reason}, b""
        except Exception as exc:  # pdfium/pypdfium2 surprises on hostile input: a refusal with the type, not a crash
            reason = f"unreadable PDF ({type(exc).__name__}: {exc})"
            reply, payload = {"ok": False, "error": "CorruptDocument", "reason": reason}, b""
        send(reply, payload)


def _main() -> None:
    import resource

    limit = int(os.environ.get("PDF_WORKER_ADDRESS_SPACE", DEFAULT_MEMORY_MB * 1024 * 1024))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not write a core file of the whole heap
    import pypdfium2  # noqa: F401  (imported before the first request, so its cost is part of the start)

    # Replies go to a private copy of stdout; anything a library prints lands on stderr, not in the protocol.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    replies.write(_FRAME.pack(5, 0) + b"ready")
    replies.flush()
    _serve(sys.stdin.buffer, replies, float(os.environ.get("PDF_WORKER_PAGE_SECONDS", DEFAULT_PAGE_SECONDS)))


if __name__ == "__main__":
    _main()
