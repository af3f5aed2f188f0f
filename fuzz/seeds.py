"""Seeds: the shared corpus (read in place, never copied) plus documents built here for formats it lacks (HTML, text,
bulk-upload zips)."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORMATS = ("docx", "pptx", "xlsx", "pdf", "html", "md", "text", "zip")
MAX_SEED_BYTES = 1_500_000  # bigger corpus files make every mutant slow to rebuild and add no new structure


@dataclass(frozen=True)
class Seed:
    fmt: str
    name: str
    data: bytes

    @property
    def target(self) -> str:
        return "archive" if self.fmt == "zip" else "extract"

    @property
    def filename(self) -> str:
        extension = {"text": "txt", "md": "md"}.get(self.fmt, self.fmt)
        return f"mutant.{extension}"


def corpus_dir(explicit: str | None = None) -> Path:
    """``--corpus``, else $FUZZ_CORPUS, else ``<repo>/../shared/corpus`` (CI), else ``/work/shared/corpus``."""
    for candidate in (explicit, os.environ.get("FUZZ_CORPUS"), REPO.parent / "shared" / "corpus"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path("/work/shared/corpus")


def load(corpus: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, list[Seed]]:
    if not corpus.is_dir():
        raise SystemExit(f"corpus directory {corpus} not found: pass --corpus DIR or set FUZZ_CORPUS")
    files: dict[str, list[Seed]] = {}
    for fmt in ("docx", "pptx", "xlsx", "pdf", "md"):
        folder = corpus / fmt
        paths = sorted(folder.glob("*")) if folder.is_dir() else []
        files[fmt] = [
            Seed(fmt, path.name, path.read_bytes())
            for path in paths
            if path.is_file() and 0 < path.stat().st_size <= MAX_SEED_BYTES
        ]
    files["html"] = [Seed("html", name, data) for name, data in _html().items()]
    files["text"] = [Seed("text", name, data) for name, data in _text(files["md"]).items()]
    files["zip"] = _archives(files)
    return {fmt: files[fmt] for fmt in formats if files.get(fmt)}


def _html() -> dict[str, bytes]:
    body = (
        "<h1>Quarterly report</h1><p>Revenue grew <b>12&nbsp;%</b> &amp; costs fell.</p>"
        "<table><tr><th>Region</th><th>Sales</th></tr><tr><td>North</td><td>1,200</td></tr></table>"
        "<ul><li>first</li><li>second<ol><li>nested</li></ol></li></ul>"
        "<script>var x = '<p>not text</p>';</script><style>p { color: red }</style>"
        "<!-- a comment --><svg><![CDATA[ignored]]></svg><pre>  kept   spacing </pre>"
    )
    return {
        "report.html": f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report</title></head>"
        f"<body>{body}</body></html>".encode(),
        "latin1.html": "<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'></head>"
        "<body><p>Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e</p></body></html>".encode("latin-1"),
        "bom-utf16.html": "\ufeff<html><body><p>\u00bfQu\u00e9 tal? \u65e5\u672c\u8a9e</p></body></html>".encode(
            "utf-16-le"
        ),
        "xhtml.xhtml": b'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        b"<body><p>x&#233;&#x4E2D;</p><![CDATA[raw]]></body></html>",
    }


def _text(markdown: list[Seed]) -> dict[str, bytes]:
    lines = "\n".join(f"line {n}: the quick brown fox \u2014 jumps" for n in range(40))
    seeds = {
        "utf8.txt": lines.encode(),
        "utf16.txt": ("\ufeff" + lines).encode("utf-16-le"),
        "cp1252.txt": "smart \u201cquotes\u201d and \u20ac".encode("cp1252"),
        "data.csv": b"id,name,amount\r\n1,alpha,3.5\r\n2,\"b,eta\",-1\r\n",
        "data.json": b'{"a": [1, 2, {"b": "\\u00e9"}], "c": null}',
    }
    seeds.update({seed.name: seed.data for seed in markdown[:1]})
    return seeds


def _archives(files: dict[str, list[Seed]]) -> list[Seed]:
    """Bulk-upload zips (a folder of small documents) and DOCX packages for docx_unzip."""
    small = {fmt: sorted(files.get(fmt, []), key=lambda seed: len(seed.data))[:2] for fmt in ("docx", "pdf", "md")}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for fmt, seeds in small.items():
            for seed in seeds:
                zf.writestr(f"Upload/{fmt}/{seed.name}", seed.data)
        zf.writestr("Upload/notes.txt", b"plain notes")
        zf.writestr("Upload/.DS_Store", b"junk")
        zf.writestr("__MACOSX/Upload/._notes.txt", b"junk")
    flat = io.BytesIO()
    with zipfile.ZipFile(flat, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", b"first")
        zf.writestr("b/c.md", b"# second")
    docx = sorted(files.get("docx", []), key=lambda seed: len(seed.data))
    return [
        Seed("zip", "bulk-folder.zip", out.getvalue()),
        Seed("zip", "bulk-flat.zip", flat.getvalue()),
        *(Seed("zip", seed.name, seed.data) for seed in docx[: len(docx) // 2]),
    ]
