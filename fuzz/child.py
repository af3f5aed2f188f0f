"""The process that runs mutants: ``python -m fuzz.child``, one per fuzzing job, reused until a mutant kills it.

It speaks the frame protocol of ``text_extractor.pdf_worker`` (big-endian lengths of a JSON header and a payload) on
its stdin/stdout and answers each mutant with its class: ``ok`` (text), ``refused`` (the refusal the handler records),
``crash`` (any other exception: the handler would retry it and leave no status) or ``oom`` (MemoryError under the
address-space limit). Hangs and aborts are seen by the parent (``fuzz.runner``): a reply that does not come in time,
a process that dies.

Targets:
- ``extract``: ``extract_text(data, filename)`` with the extractor's default limits (what text_extractor runs).
- ``archive``: what docx_unzip and bulk_upload do with an archive before storing anything: ``inspect_docx`` with the
  DOCX limits, then bulk upload's ``open_checked`` + ``plan_documents`` + ``read_member`` of every planned document.
- ``probe``: the runner's own tests (b"crash", b"hang", b"abort", b"oom", anything else is ok).
"""

from __future__ import annotations

import faulthandler
import json
import os
import re
import signal
import struct
import sys
import time
import traceback
from typing import IO, Any

LAMBDAS = os.sep + "lambdas" + os.sep
FRAME = struct.Struct(">QQ")  # (JSON header length, payload length), as text_extractor.pdf_worker frames


def stack_place(dump: str) -> str:
    """The innermost frame of our code in a faulthandler dump (most recent call first), else the innermost frame."""
    frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', dump)
    ours = [frame for frame in frames if LAMBDAS in frame[0]]
    if not (ours or frames):
        return ""
    path, line, name = (ours or frames)[0]
    return f"{path.split(LAMBDAS, 1)[-1] if LAMBDAS in path else os.path.basename(path)}:{line} {name}"


def where(exc: BaseException) -> str:
    """The innermost frame of our own code (lambdas/...) the exception passed through: its signature for dedup."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if LAMBDAS in f.filename]
    if not (ours or frames):
        return "?"
    frame = (ours or frames)[-1]
    path = frame.filename.split(LAMBDAS, 1)[-1] if LAMBDAS in frame.filename else os.path.basename(frame.filename)
    return f"{path}:{frame.lineno} {frame.name}"


def _extract(data: bytes, filename: str) -> str:
    from text_extractor.extract import extract_text

    return f"{len(extract_text(data, filename))} characters"


def _archive(data: bytes, filename: str) -> str:
    from bulk_upload.handler import plan_documents
    from core.safe_zip import ArchiveLimits, UnsafeArchive, open_checked, read_member
    from docx_unzip.handler import DOCX_LIMIT_DEFAULTS, InvalidUpload, inspect_docx

    outcomes = []
    try:
        outcomes.append(f"docx_unzip: {len(inspect_docx(data, ArchiveLimits(**DOCX_LIMIT_DEFAULTS)))} parts")
    except (UnsafeArchive, InvalidUpload) as exc:
        outcomes.append(f"docx_unzip refused: {exc}")
    limits = ArchiveLimits()
    with open_checked(data, limits) as zf:
        documents = plan_documents(zf, "fuzz")
        for document in documents:
            if document.error is None:
                read_member(zf, zf.getinfo(document.member), limits)
    outcomes.append(f"bulk_upload: {len(documents)} documents")
    return "; ".join(outcomes)


def _probe(data: bytes, filename: str) -> str:
    if data == b"crash":
        raise KeyError("probe")
    if data == b"hang":
        time.sleep(3600)
    if data == b"abort":
        os.abort()
    if data == b"oom":
        hog = [bytes(1 << 28) for _ in range(64)]  # calloc: address space, no touched pages
        return str(len(hog))
    return "ok"


TARGETS = {"extract": _extract, "archive": _archive, "probe": _probe}


def refusal_types(target: str) -> tuple[type[BaseException], ...]:
    """Exceptions that are a clean refusal: the handlers record them with a reason and do not retry."""
    if target == "archive":
        from bulk_upload.handler import RequestFailed
        from core.safe_zip import UnsafeArchive
        from docx_unzip.handler import InvalidUpload

        return (UnsafeArchive, InvalidUpload, RequestFailed)
    from text_extractor.extract import ExtractionError

    return (ExtractionError,)


def run(target: str, data: bytes, filename: str) -> dict[str, Any]:
    refusals = refusal_types(target)
    started = time.perf_counter()
    try:
        detail = TARGETS[target](data, filename)
        outcome = "ok"
    except refusals as exc:
        outcome, detail = "refused", f"{type(exc).__name__}: {str(exc)[:300]}"
    except MemoryError as exc:
        outcome, detail = "oom", f"MemoryError at {where(exc)}"
    except RecursionError as exc:
        outcome, detail = "crash", f"RecursionError at {where(exc)}"
    except Exception as exc:
        outcome, detail = "crash", f"{type(exc).__name__} at {where(exc)}: {str(exc)[:200]}"
    return {"outcome": outcome, "detail": detail, "seconds": round(time.perf_counter() - started, 3)}


def _read(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def main() -> None:
    import resource
    import warnings

    warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
    limit = int(os.environ.get("FUZZ_ADDRESS_SPACE", 3 << 29))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    stacks = os.environ.get("FUZZ_STACK_FILE")
    if stacks:  # where a hang or an abort happened: the parent signals SIGUSR1 before it kills a hung child
        dump = open(stacks, "w")  # noqa: SIM115 (open for the life of the process)
        faulthandler.enable(dump)
        faulthandler.register(signal.SIGUSR1, dump)
    for target in TARGETS:
        refusal_types(target)  # imports (boto3 for the archive handlers) are not a mutant's time
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    stdin = sys.stdin.buffer
    replies.write(FRAME.pack(5, 0) + b"ready")
    replies.flush()
    while True:
        frame = _read(stdin, FRAME.size)
        if frame is None:
            return
        header_length, data_length = FRAME.unpack(frame)
        header, data = _read(stdin, header_length), _read(stdin, data_length)
        if header is None or data is None:
            return
        request = json.loads(header)
        reply = json.dumps(run(request["target"], data, request["filename"])).encode()
        replies.write(FRAME.pack(len(reply), 0) + reply)
        replies.flush()


if __name__ == "__main__":
    main()
