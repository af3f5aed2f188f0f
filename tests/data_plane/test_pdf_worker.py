"""pdfium in its worker process (issue 11 §2): the two abort classes end in a refusal with a reason, the test process
and the next document are unharmed, budgets refuse big-but-legal pages, and the worker is reused."""

from __future__ import annotations

import os
import signal

import pytest
from core.config import ConfigError
from text_extractor import pdf_worker
from text_extractor.extract import LimitExceeded, extract_pages
from text_extractor.pdf_worker import PdfWorker, PdfWorkerAborted, WorkerLimits

from tests.data_plane.documents import make_pdf, pdf_text_bomb, pdf_xobject_chain

UNLIMITED = {"max_page_objects": 10**9, "max_page_chars": 10**9, "max_document_chars": 10**9}


@pytest.fixture
def worker_factory():
    workers: list[PdfWorker] = []

    def make(**limits) -> PdfWorker:
        workers.append(PdfWorker(WorkerLimits(**limits)))
        return workers[-1]

    yield make
    for worker in workers:
        worker.close()


# The two abort classes, at sizes that need ~100-150 MB of pdfium memory (the real ones need > 1 GB).
BOMBS = {
    "flate stream of 100k '(ab) Tj'": lambda: pdf_text_bomb(100_000),
    "form-XObject chain 4 levels x 30 draws": lambda: pdf_xobject_chain(4, 30),
}


@pytest.mark.parametrize("build", BOMBS.values(), ids=BOMBS.keys())
def test_native_abort_is_a_refusal_with_a_reason_and_the_next_pdf_reads(worker_factory, build):
    worker = worker_factory(memory_bytes=80 * 1024 * 1024, **UNLIMITED)
    assert len(build()) < 3000  # a few KB of file is all it takes

    with pytest.raises(PdfWorkerAborted, match=r"killed by SIGABRT .*80 MiB memory limit") as refusal:
        worker.pages(build(), max_pages=10)

    assert isinstance(refusal.value, LimitExceeded)  # the handler records every ExtractionError as skipped
    assert worker.pid is None  # the dead worker was reaped...
    assert worker.pages(make_pdf(["after the abort"]), max_pages=10) == ["after the abort"]  # ...and replaced


def test_text_operator_bomb_is_stopped_by_the_object_budget_before_the_text_page(worker_factory):
    worker = worker_factory(max_page_objects=10_000)
    worker.pages(make_pdf(["warm"]), max_pages=10)
    pid = worker.pid

    with pytest.raises(LimitExceeded, match="page 1 has more than 10000 drawing objects"):
        worker.pages(pdf_text_bomb(20_000), max_pages=10)

    assert worker.pid == pid  # a budget refusal is an ordinary answer: the worker lives on


def test_character_budgets_per_page_and_per_document(worker_factory):
    per_page = worker_factory(max_page_chars=50)
    with pytest.raises(LimitExceeded, match="page 2 has 60 characters, more than the limit 50"):
        per_page.pages(make_pdf(["short", "x" * 60]), max_pages=10)
    per_document = worker_factory(max_document_chars=100)
    with pytest.raises(LimitExceeded, match="more than 100 characters"):
        per_document.pages(make_pdf(["y" * 60, "z" * 60]), max_pages=10)


def test_time_limit_stops_the_worker(worker_factory):
    worker = worker_factory(timeout_seconds=0.3, page_seconds=60, **UNLIMITED)
    worker.pages(make_pdf(["warm"]), max_pages=10)  # start-up is not part of a document's time

    with pytest.raises(PdfWorkerAborted, match=r"longer than 0.3 s"):
        worker.pages(pdf_text_bomb(400_000), max_pages=10)  # ~1-2 s of pdfium work

    assert worker.pid is None
    assert worker.pages(make_pdf(["next"]), max_pages=10) == ["next"]


def test_a_worker_killed_between_documents_is_replaced_transparently(worker_factory):
    worker = worker_factory()
    assert worker.pages(make_pdf(["one"]), max_pages=10) == ["one"]
    first = worker.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    os.waitid(os.P_PID, first, os.WEXITED | os.WNOWAIT)  # dead (not yet reaped), as after a freeze in Lambda

    assert worker.pages(make_pdf(["two"]), max_pages=10) == ["two"]
    assert worker.pid not in (None, first)


def test_extract_pages_reuses_one_worker_per_process():
    assert extract_pages(make_pdf(["a"]), "a.pdf") == ["a"]
    pid = pdf_worker.shared_worker().pid
    assert extract_pages(make_pdf(["b"]), "b.pdf") == ["b"]
    assert pdf_worker.shared_worker().pid == pid is not None


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("PDF_WORKER_MEMORY_MB", "256")
    monkeypatch.setenv("PDF_WORKER_TIMEOUT_SECONDS", "30")
    assert WorkerLimits.from_env() == WorkerLimits(memory_bytes=256 * 1024 * 1024, timeout_seconds=30)
    monkeypatch.delenv("PDF_WORKER_TIMEOUT_SECONDS")
    assert WorkerLimits.from_env().timeout_seconds == pdf_worker.DEFAULT_TIMEOUT_SECONDS
    monkeypatch.setenv("PDF_WORKER_MEMORY_MB", "lots")
    with pytest.raises(ConfigError, match="PDF_WORKER_MEMORY_MB"):
        WorkerLimits.from_env()


def test_a_page_that_takes_too_long_is_refused_by_the_page_clock(worker_factory):
    worker = worker_factory(page_seconds=0.2, **UNLIMITED)
    worker.pages(make_pdf(["warm"]), max_pages=10)

    with pytest.raises(LimitExceeded, match=r"more than 0.2 s on page 1") as refusal:
        worker.pages(pdf_text_bomb(400_000), max_pages=10)

    assert not isinstance(refusal.value, PdfWorkerAborted)  # the worker answered before it ended itself
    assert worker.pages(make_pdf(["next"]), max_pages=10) == ["next"]
