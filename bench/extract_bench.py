"""Benchmark ``extract_text`` against docx2txt, python-docx, pypdf and bare pypdfium2 on the shared corpus.

Run from the repository root: ``.venv/bin/python bench/extract_bench.py`` (``--help`` for options). Prints a
markdown report and writes it to ``bench/results/extract.md``. Definitions (also in bench/README.md):

- MB/s: input bytes / extraction time, over the files *every* extractor of that format read without error, each
  file timed as the best of ``--repeats`` runs (so the comparison is like for like; failures are counted apart).
- peak memory: the largest tracemalloc peak of one file (Python allocations only; pdfium's C heap is invisible).
- word agreement with X: words are lower-cased ``\\w+`` tokens counted as a multiset; agreement is the share of X's
  words that ``extract_text`` also produced (|ours ∩ X| / |X|), summed over the common files. Dice
  (2|ours ∩ X| / (|ours| + |X|)) is shown next to it because extracting *more* text (footnotes, speaker notes) lowers
  Dice without losing anything.
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import re
import sys
import time
import tracemalloc
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "lambdas")]

from text_extractor.extract import ExtractionError, extract_text  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
RESULTS = REPO / "bench" / "results" / "extract.md"
OURS = "extract_text"
TARGETS = {  # format -> (competitor, minimum speed ratio ours/competitor)
    # python-docx twice: its common idiom (body paragraphs only: no tables, headers or notes, ~25 % fewer words) and
    # the same scope as extract_text (paragraphs, tables, headers, footers).
    "docx": [("python-docx", 5.0), ("python-docx (full scope)", 5.0), ("docx2txt", 2.0)],
    "pdf": [("pypdfium2", 0.9)],
}
MIN_AGREEMENT = 0.98
_WORD = re.compile(r"\w+")


def _docx2txt(data: bytes, name: str) -> str:
    import docx2txt

    return docx2txt.process(io.BytesIO(data))


def _python_docx(data: bytes, name: str) -> str:
    import docx

    # The common idiom: body paragraphs (tables and headers are not in ``paragraphs``; agreement is measured as
    # the share of *its* words we find, so its smaller scope cannot inflate our score).
    return "\n".join(paragraph.text for paragraph in docx.Document(io.BytesIO(data)).paragraphs)


def _python_docx_full(data: bytes, name: str) -> str:
    """python-docx reading the scope extract_text reads: body paragraphs and tables (recursively), headers, footers."""
    import docx
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    texts: list[str] = []
    seen: set[int] = set()  # a merged cell appears once per grid column it spans in row.cells

    def block(container) -> None:
        for item in container.iter_inner_content():
            if isinstance(item, Paragraph):
                texts.append(item.text)
                continue
            for row in item.rows:
                for cell in row.cells:
                    if id(cell._tc) not in seen:
                        seen.add(id(cell._tc))
                        block(cell)

    for section in document.sections:
        for part in (
            section.header,
            section.footer,
            section.first_page_header,
            section.first_page_footer,
            section.even_page_header,
            section.even_page_footer,
        ):
            if not part.is_linked_to_previous:
                block(part)
    block(document)
    return "\n".join(texts)


def _pypdf(data: bytes, name: str) -> str:
    import pypdf

    return "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def _pypdfium2(data: bytes, name: str) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        texts = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(texts)
    finally:
        pdf.close()


def _pdf_in_process(data: bytes, name: str) -> str:
    """extract_text's own PDF reader called in this process, without the worker: the ratio to it is what the
    isolation (a child process, its pipe and its page clock) costs."""
    from text_extractor.pdf_worker import WorkerLimits, read_pdf

    return "\n".join(read_pdf(data, 2000, WorkerLimits().budget()))


def _ours(data: bytes, name: str) -> str:
    return extract_text(data, name)


COMPETITORS: dict[str, list[tuple[str, Callable[[bytes, str], str]]]] = {
    "docx": [("docx2txt", _docx2txt), ("python-docx", _python_docx), ("python-docx (full scope)", _python_docx_full)],
    "pdf": [("pypdf", _pypdf), ("pypdfium2", _pypdfium2), ("same reader in-process", _pdf_in_process)],
    "pptx": [],
    "xlsx": [],
    "md": [],
}


@dataclass
class Result:
    seconds: dict[str, float] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)


def _time(fn: Callable[[bytes, str], str], data: bytes, name: str) -> tuple[float, str]:
    gc.collect()
    start = time.perf_counter()
    text = fn(data, name)
    return time.perf_counter() - start, text


def _peak(fn: Callable[[bytes, str], str], data: bytes, name: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn(data, name)
        return tracemalloc.get_traced_memory()[1]
    except Exception:
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.lower()))


def bench_format(fmt: str, files: list[Path], repeats: int, memory: bool) -> tuple[list[str], list[str]]:
    """Markdown table rows for one format and the target verdict lines."""
    extractors = [(OURS, _ours), *COMPETITORS[fmt]]
    results: dict[Path, Result] = {}
    for path in files:
        data = path.read_bytes()
        result = Result()
        # Round-robin repeats (not all of one extractor, then the next) so cache and machine-load effects fall on
        # every extractor alike; the best time per file counts.
        for _ in range(repeats):
            for label, fn in extractors:
                if label in result.error:
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        seconds, result.text[label] = _time(fn, data, path.name)
                    result.seconds[label] = min(seconds, result.seconds.get(label, float("inf")))
                except ExtractionError as exc:  # a typed refusal is an answer, but not a success
                    result.error[label] = f"{type(exc).__name__}: {exc.reason}"
                except Exception as exc:
                    result.error[label] = f"{type(exc).__name__}: {str(exc)[:80]}"
        if memory:
            for label, fn in extractors:
                result.peak[label] = _peak(fn, data, path.name)
        results[path] = result

    common = [p for p, r in results.items() if not r.error]
    common_bytes = sum(p.stat().st_size for p in common)
    rows, verdicts = [], []
    speed: dict[str, float] = {}
    for label, _ in extractors:
        seconds = sum(results[p].seconds[label] for p in common)
        speed[label] = common_bytes / 1e6 / seconds if seconds else float("nan")
    for label, _ in extractors:
        failures = sum(1 for r in results.values() if label in r.error)
        peak = max((r.peak.get(label, 0) for r in results.values()), default=0) / 2**20
        ratio = speed[OURS] / speed[label] if speed[label] else float("nan")
        if label == OURS:
            agreement = dice = "—"
        else:
            inter = theirs = ours = 0
            for p in common:
                a, b = _words(results[p].text[OURS]), _words(results[p].text[label])
                inter += sum((a & b).values())
                theirs += sum(b.values())
                ours += sum(a.values())
            agreement = f"{inter / theirs:.1%}" if theirs else "n/a"
            dice = f"{2 * inter / (ours + theirs):.1%}" if ours + theirs else "n/a"
        mem = f"{peak:.1f}" if memory else "—"
        rows.append(
            f"| {fmt} | {label} | {len(files) - failures}/{len(files)} | {failures} | {speed[label]:.2f} | "
            f"{ratio:.2f}× | {mem} | {agreement} | {dice} |"
        )
    for competitor, minimum in TARGETS.get(fmt, []):
        ratio = speed[OURS] / speed[competitor]
        inter = theirs = 0
        for p in common:
            a, b = _words(results[p].text[OURS]), _words(results[p].text[competitor])
            inter += sum((a & b).values())
            theirs += sum(b.values())
        agreement = inter / theirs if theirs else 1.0
        ok = ratio >= minimum and (agreement >= MIN_AGREEMENT or competitor == "pypdfium2")
        verdicts.append(
            f"- {fmt.upper()}: extract_text is {ratio:.2f}× {competitor} (target ≥ {minimum}×)"
            + ("" if competitor == "pypdfium2" else f", word agreement {agreement:.1%} (target ≥ 98 %)")
            + f": **{'PASS' if ok else 'FAIL'}**"
        )
    failures = [
        f"  - {p.name}: " + "; ".join(f"{k}: {v}" for k, v in sorted(r.error.items()))
        for p, r in results.items()
        if r.error
    ]
    header = f"- {fmt}: {len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.2f} MB; "
    header += f"speed over the {len(common)} files all extractors read ({common_bytes / 1e6:.2f} MB)"
    return [header, *failures], rows + ["VERDICTS", *verdicts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus root (default ../shared/corpus)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per file and extractor; best counts")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--formats", default="docx,pdf,pptx,xlsx,md")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every font it cannot fully parse

    if not args.corpus.is_dir():
        print(f"corpus directory {args.corpus} not found (see bench/README.md)", file=sys.stderr)
        return 2
    notes, table, verdicts = [], [], []
    for fmt in args.formats.split(","):
        files = sorted(p for p in (args.corpus / fmt).glob("*") if p.is_file())
        if not files:
            continue
        fmt_notes, rows = bench_format(fmt, files, args.repeats, not args.no_memory)
        split = rows.index("VERDICTS")
        table += rows[:split]
        verdicts += rows[split + 1 :]
        notes += fmt_notes
    import pypdf
    import pypdfium2

    report = [
        "# Text extraction benchmark",
        "",
        f"Corpus `{args.corpus.name}/` (see its SOURCES.md), best of {args.repeats} runs per file, Python "
        f"{sys.version.split()[0]}, pypdfium2 {pypdfium2.PYPDFIUM_INFO}, pypdf {pypdf.__version__}.",
        "Ratio = extract_text speed / this extractor's speed. Agreement = share of this extractor's words that "
        "extract_text also produced; Dice = symmetric overlap.",
        "",
        "| format | extractor | files ok | failures | MB/s | ours vs this | peak MiB | word agreement | Dice |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *table,
        "",
        "## Targets",
        "",
        *verdicts,
        "",
        "## Files and failures",
        "",
        *notes,
        "",
    ]
    text = "\n".join(report)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0 if all("PASS" in v for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
