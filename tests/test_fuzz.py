"""The fuzzer itself (fuzz/): its runner classifies every outcome, mutants are reproducible from (seed, index), each
mutation family applies to the seeds of its formats, and the minimiser shrinks while the class holds."""

from __future__ import annotations

import random
import zipfile
from io import BytesIO

import pytest

from fuzz import mutators
from fuzz.__main__ import build
from fuzz.minimise import cut, minimise
from fuzz.runner import Runner
from fuzz.seeds import Seed
from tests.data_plane.documents import make_docx, make_pdf, para, t


@pytest.fixture(scope="module")
def runner():
    with Runner(timeout=2) as runner:
        yield runner


def test_runner_classifies_each_outcome_and_survives_them(runner):
    outcomes = {probe: runner.run("probe", probe, "x.txt") for probe in (b"fine", b"crash", b"oom", b"abort")}
    outcomes[b"hang"] = runner.run("probe", b"hang", "x.txt", timeout=0.5)  # a hang waits out its whole limit
    assert {probe: result.outcome for probe, result in outcomes.items()} == {
        b"fine": "ok", b"crash": "crash", b"oom": "oom", b"abort": "abort", b"hang": "hang"
    }
    assert outcomes[b"crash"].detail.startswith("KeyError at child.py")
    assert outcomes[b"abort"].detail.startswith("SIGABRT at child.py")  # faulthandler says where it died
    assert outcomes[b"hang"].detail.startswith("at child.py")  # asked with SIGUSR1 before the kill
    assert runner.run("extract", b"after all that", "x.txt").outcome == "ok"


def test_runner_runs_the_real_targets(runner):
    assert runner.run("extract", make_pdf(["hello"]), "a.pdf").detail == "5 characters"
    refused = runner.run("extract", b"%PDF-1.4 nothing", "a.pdf")
    assert refused.outcome == "refused" and refused.detail.startswith("CorruptDocument")
    archive = runner.run("archive", make_docx(para(t("x"))), "a.zip")
    assert archive.outcome == "ok" and "docx_unzip: " in archive.detail and "bulk_upload: " in archive.detail


def _corpus() -> dict[str, list[Seed]]:
    docx = make_docx(para(t("seed text")) * 20)
    return {
        "docx": [Seed("docx", "a.docx", docx)],
        "pdf": [Seed("pdf", "a.pdf", make_pdf(["one", "two"]))],
        "html": [Seed("html", "a.html", b"<html><body><p>x</p></body></html>")],
        "zip": [Seed("zip", "a.zip", docx)],
    }


def test_mutants_are_reproducible_from_seed_and_index():
    corpus = _corpus()
    first = [build(3, index, corpus) for index in range(12)]
    assert first == [build(3, index, corpus) for index in range(12)]
    assert [build(4, index, corpus)[1] for index in range(12)] != [data for _, data, _ in first]
    assert {seed.fmt for seed, _, _ in first} == set(corpus)  # formats take turns


@pytest.mark.parametrize("fmt", ["docx", "pdf", "html", "zip"])
def test_every_family_of_a_format_applies_to_its_seeds(fmt):
    seed = _corpus()[fmt][0]
    for mutator, _ in mutators.FAMILIES[fmt]:
        applied = [mutator(random.Random(n), seed.data, fmt) for n in range(6)]
        assert any(result is not None and result[0] != seed.data for result in applied), mutator.__name__


def test_zip_member_mutation_recompresses_a_readable_package():
    data, description = mutators.zip_member(random.Random(5), make_docx(para(t("x"))), "docx")
    with zipfile.ZipFile(BytesIO(data)) as zf:
        assert zf.testzip() is None
    assert " in " in description


def test_cut_shrinks_to_what_the_predicate_needs():
    data = b"a" * 300 + b"NEEDLE" + b"b" * 300
    assert cut(data, lambda candidate: b"NEEDLE" in candidate, deadline=float("inf")) == b"NEEDLE"


def test_minimise_keeps_the_class_of_a_finding(runner):
    seed = Seed("text", "probe.txt", b"")
    found = runner.run("probe", b"crash", "x.txt")
    small, result = minimise(runner, seed, b"crash", found, budget=20)
    assert small == b"crash" and result.outcome == "crash"  # every shorter input is "ok": nothing can go
