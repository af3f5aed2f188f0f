"""Every hostile-input class found by fuzzing extract_text (reference/hostile-inputs.md), built here at a small scale.

Each input ends in text or an ExtractionError. Linearity is asserted by comparing N and 8N copies of the hostile
construct (CPU time of this process, best of five, so other processes on the machine do not count): linear work
grows ~8x, the quadratic scans these inputs used to trigger ~64x, and the bound (20x plus 50 ms) sits between the
two with room for noise. Wall-clock targets live in bench/, not here."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable

import pytest
from text_extractor import extract
from text_extractor.extract import (
    CorruptDocument,
    ExtractionError,
    ExtractLimits,
    LimitExceeded,
    extract_pages,
    extract_text,
)

from tests.data_plane.documents import (
    DECL,
    PKG,
    A,
    P,
    R,
    S,
    W,
    make_docx,
    make_pptx,
    make_xlsx,
    make_zip,
    para,
    rels,
    t,
)


def _outcome(data: bytes, name: str, limits: ExtractLimits | None = None) -> str | ExtractionError:
    try:
        return "\n\n".join(extract_pages(data, name, limits=limits))
    except ExtractionError as exc:  # anything else fails the test
        return exc


def _best_time(data: bytes, name: str) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        _outcome(data, name)
        best = min(best, time.process_time() - start)
    return best


def assert_linear(build: Callable[[int], bytes], name: str, n: int = 1000) -> None:
    """Work for 8N copies stays within 20x the work for N (quadratic would be 64x)."""
    small, large = build(n), build(8 * n)
    t_small, t_large = _best_time(small, name), _best_time(large, name)
    assert t_large <= 20 * t_small + 0.05, f"{name}: {n} -> {t_small:.4f}s, {8 * n} -> {t_large:.4f}s"


def _docx(document: str | None = None, package_rels: str | None = None, document_rels: str | None = None) -> bytes:
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": f"{DECL}<Types/>",
        "_rels/.rels": package_rels or rels(("rId1", "officeDocument", "word/document.xml")),
        "word/document.xml": document
        or f'{DECL}<w:document xmlns:w="{W}"><w:body>{para(t("kept"))}</w:body></w:document>',
    }
    if document_rels is not None:
        parts["word/_rels/document.xml.rels"] = document_rels
    return make_zip(parts)


def _replace(data: bytes, part: str, body: str | bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    parts[part] = body.encode() if isinstance(body, str) else body
    return make_zip(parts)


def _document(inner: str) -> str:
    return f'{DECL}<w:document xmlns:w="{W}"><w:body>{para(t("kept"))}{inner}'


# ---------------------------------------------------------------------------------------------------------------------
# HANG classes: each repeated construct, once in the part it was found in, scales linearly.

HANGS: dict[str, tuple[Callable[[int], bytes], str]] = {
    "docx: N x '<!--' never closed": (lambda n: _docx(_document("<!--" * n)), "x.docx"),
    "docx: N x '<![CDATA[' never closed": (lambda n: _docx(_document("<![CDATA[" * n)), "x.docx"),
    ".rels: N x '<!--' never closed": (
        lambda n: _docx(package_rels=f'<Relationships xmlns="{PKG}">' + "<!--" * n),
        "x.docx",
    ),
    ".rels: a Relationship holding a long run of word characters": (
        lambda n: _docx(package_rels=f'<Relationships xmlns="{PKG}"><Relationship ' + "w" * (10 * n) + "/>"),
        "x.docx",
    ),
    "docx: N x '<w:t ' with no '>'": (lambda n: _docx(_document("<w:t " * n)), "x.docx"),
    "docx: a part of N x '<a' with no '>'": (lambda n: _docx("<a" * n), "x.docx"),
    "pptx: N x '<a:t ' with no '>'": (
        lambda n: _replace(
            make_pptx(["kept"]), "ppt/slides/slide1.xml", f'<p:sld xmlns:p="{P}" xmlns:a="{A}">' + "<a:t " * n
        ),
        "x.pptx",
    ),
    "xlsx: N x '<c>' after the last '</c>'": (
        lambda n: make_xlsx([("S", '<row><c t="s"><v>0</v></c></row>' + "<c>" * n)], ["kept"]),
        "x.xlsx",
    ),
    "xlsx: N x '<si>' after the last '</si>'": (
        lambda n: _replace(
            make_xlsx([("S", '<row><c t="s"><v>0</v></c></row>')], ["kept"]),
            "xl/sharedStrings.xml",
            f'<sst xmlns="{S}"><si><t>kept</t></si>' + "<si>" * n,
        ),
        "x.xlsx",
    ),
    "xlsx: N x unclosed '<rPh>' in a string item": (
        lambda n: _replace(
            make_xlsx([("S", '<row><c t="s"><v>0</v></c></row>')], ["kept"]),
            "xl/sharedStrings.xml",
            f'<sst xmlns="{S}"><si><t>kept</t>' + "<rPh>" * n + "</si></sst>",
        ),
        "x.xlsx",
    ),
    "xlsx: N x '<!--' in a worksheet": (
        lambda n: make_xlsx([("S", '<row><c t="s"><v>0</v></c></row>' + "<!--" * n)], ["kept"]),
        "x.xlsx",
    ),
    "html: N x '<a x' never closed": (lambda n: b"<p>kept</p>" + b"<a x" * n, "x.html"),
    "html: N x '<!--' never closed": (lambda n: b"<p>kept</p>" + b"<!--x" * n, "x.html"),
    "html: N x '<![CDATA[' never closed": (lambda n: b"<p>kept</p>" + b"<![CDATA[x" * n, "x.html"),
    "html: N table cells (whitespace runs)": (lambda n: b"<table><tr>" + b"<td>" * n + b"kept", "x.html"),
    # Found by `make fuzz` (seed 1, mutant 233): a tag name running to the end of the input, never closed.
    "html: a tag name of N characters never closed": (lambda n: b"<p>kept</p><met" + b"\xed\xa0\x80" * n,
                                                        "x.html"),
}


@pytest.mark.parametrize("case", list(HANGS))
def test_hostile_repetition_is_linear(case):
    build, name = HANGS[case]
    result = _outcome(build(200), name)
    assert isinstance(result, ExtractionError) or "kept" in result or result == ""
    assert_linear(build, name)


def test_strip_special_matches_the_regex_it_replaced():
    import random
    import re

    before = re.compile(rb"<!--.*?-->|<!\[CDATA\[(.*?)\]\]>", re.DOTALL)

    def replaced(match: re.Match[bytes]) -> bytes:
        cdata = match.group(1)
        return b"" if cdata is None else cdata.replace(b"&", b"&amp;").replace(b"<", b"&lt;")

    pieces = [b"<!--", b"-->", b"<![CDATA[", b"]]>", b"<!", b"a&b", b"<w:t>", b"-", b"]", b">", b"x"]
    rng = random.Random(11)
    for _ in range(2000):
        xml = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert extract._strip_special(xml, "p") == before.sub(replaced, xml), xml


# ---------------------------------------------------------------------------------------------------------------------
# CRASH classes: a typed refusal or text, never another exception.


@pytest.mark.parametrize("markup", [b"<![", b"<![foo[", b"<p>a<![ b</p>", b"<![if !supportLists]>x<![endif]>"])
def test_html_marked_sections_do_not_crash(markup):
    result = _outcome(markup + b"<p>after</p>", "x.html")
    assert not isinstance(result, ExtractionError) and "after" in result


@pytest.mark.parametrize("charset", ["undefined", "punycode", "idna", "rot13", "hex", "zlib", "no-such-charset"])
def test_html_charset_outside_the_known_text_encodings_is_refused(charset):
    result = _outcome(f'<html><head><meta charset="{charset}"></head><body>text</body></html>'.encode(), "x.html")
    assert isinstance(result, CorruptDocument) and charset in result.reason


@pytest.mark.parametrize(("charset", "text"), [("windows-1252", "caf\xe9"), ("iso-8859-8-i", "abc"), ("utf-16", "x")])
def test_html_known_charsets_are_honoured(charset, text):
    data = f'<meta charset="{charset}"><p>{text}</p>'.encode("latin-1")
    assert _outcome(data, "x.html") == text


@pytest.mark.parametrize(("digits", "expected"), [("1\u00b22", "body\nodd\ntwo"), ("9" * 1000, "body\ntwo\nodd")])
def test_part_names_with_odd_digit_runs_sort(digits, expected):
    data = make_docx(para(t("body")), headers={f"header{digits}.xml": para(t("odd")), "header2.xml": para(t("two"))})
    assert _outcome(data, "x.docx") == expected


def test_natural_order_needs_no_int_conversion():
    """Digit runs past int()'s 4300-digit limit (names that long are refused by safe_zip's name limit anyway)."""
    names = ["slide10.xml", "slide2.xml", "slide" + "9" * 5000 + ".xml", "slide02.xml", "slide1\u00b2.xml"]
    ordered = sorted(names, key=extract._natural)
    assert ordered.index("slide2.xml") < ordered.index("slide10.xml") < ordered.index("slide" + "9" * 5000 + ".xml")


@pytest.mark.parametrize("encoding", ["x", "bogus", "rot13", "undefined", "idna", "utf-7", "utf32", "zlib", "hex"])
@pytest.mark.parametrize("fmt", ["pptx", "xlsx"])
def test_xml_declaration_naming_an_unusable_encoding_is_refused(encoding, fmt):
    main = "ppt/presentation.xml" if fmt == "pptx" else "xl/workbook.xml"
    data = make_pptx(["a"]) if fmt == "pptx" else make_xlsx([("S", "")], [])
    body = f'<?xml version="1.0" encoding="{encoding}"?><p:presentation xmlns:p="{P}" xmlns:r="{R}"/>'
    result = _outcome(_replace(data, main, body), f"x.{fmt}")
    assert isinstance(result, CorruptDocument) and "encoding" in result.reason


def test_unexpected_exceptions_become_corrupt_document(monkeypatch):
    def broken(data: bytes, limits: ExtractLimits) -> list[str]:
        raise KeyError("surprise")

    monkeypatch.setitem(extract._EXTRACTORS, "text", broken)
    result = _outcome(b"hello", "x.txt")
    assert isinstance(result, CorruptDocument) and "KeyError" in result.reason


# ---------------------------------------------------------------------------------------------------------------------
# OOM and amplification classes: refused before memory grows.


@pytest.mark.parametrize("fmt", ["pptx", "xlsx"])
def test_deeply_nested_main_part_is_refused_without_building_a_tree(fmt):
    main = "ppt/presentation.xml" if fmt == "pptx" else "xl/workbook.xml"
    data = make_pptx(["a"]) if fmt == "pptx" else make_xlsx([("S", "")], [])
    depth = 5000  # the fuzzer's file had 4M; the limit (1024) refuses both at the same element
    body = f'<p:presentation xmlns:p="{P}" xmlns:r="{R}">' + "<x>" * depth + "</x>" * depth + "</p:presentation>"
    result = _outcome(_replace(data, main, body), f"x.{fmt}")
    assert isinstance(result, LimitExceeded) and "nested deeper" in result.reason


def test_repeated_shared_string_is_bounded_by_the_text_limit():
    cells = '<row><c t="s"><v>0</v></c></row>' * 200
    data = make_xlsx([("S", cells)], ["x" * 10_000])
    result = _outcome(data, "x.xlsx", ExtractLimits(max_text_chars=1_000_000))
    assert isinstance(result, LimitExceeded) and "1000000" in result.reason
    assert len(_outcome(data, "x.xlsx")) > 2_000_000  # under the default limit it is text


# ---------------------------------------------------------------------------------------------------------------------
# The HTML tokenizer gives html.parser's text on well-formed pages (the reference below is the extractor before it).


class _HtmlParserReference:
    """extract.py's html.parser-based text extraction, kept verbatim as the reference for well-formed HTML."""

    @staticmethod
    def text(markup: str) -> str:
        from html.parser import HTMLParser

        class Reference(HTMLParser):
            def __init__(self) -> None:
                super().__init__(convert_charrefs=True)
                self.out: list[str] = []
                self.skipping = 0

            def handle_starttag(self, tag: str, attrs: list) -> None:
                if tag in extract._SKIP:
                    self.skipping += 1
                elif tag in extract._BLOCK:
                    self.out.append("\n")
                elif tag in ("td", "th"):
                    self.out.append("\t")

            def handle_startendtag(self, tag: str, attrs: list) -> None:
                if tag in extract._BLOCK:
                    self.out.append("\n")

            def handle_endtag(self, tag: str) -> None:
                if tag in extract._SKIP:
                    self.skipping = max(0, self.skipping - 1)
                elif tag in extract._BLOCK:
                    self.out.append("\n")

            def handle_data(self, data: str) -> None:
                if not self.skipping:
                    self.out.append(data.replace("\t", " "))

        parser = Reference()
        parser.feed(markup)
        parser.close()
        return "".join(parser.out)


_HTML_FRAGMENTS = [
    "<p>",
    "</p>",
    "<P class='x'>",
    '<div id="a>b">',
    "</div>",
    "<br>",
    "<br/>",
    "<hr />",
    "<td>",
    "</td>",
    "<TH>",
    "<tr>",
    "</tr>",
    "<script>var a = '<p>' < 1;</script>",
    "<style>p > a {}</style>",
    "<Script type=x>if (a</b) {}</SCRIPT>",
    "<template><p>no</p></template>",
    "<noscript>no</noscript>",
    "<!-- comment <p> -->",
    "<!DOCTYPE html>",
    "<?php echo 1 ?>",
    "<a href='x'>",
    "</a>",
    '<img src=x alt="y">',
    "<span title=a=b>",
    "</span>",
    "&amp;",
    "&lt;tag&gt;",
    "&#233;",
    "&eacute;",
    "&nbsp;",
    "text",
    "more words",
    " ",
    "\n",
    "\t",
    "caf\u00e9",
]


def test_html_text_matches_html_parser_on_well_formed_pages():
    import random

    rng = random.Random(1903)
    for _ in range(1500):
        markup = "".join(rng.choice(_HTML_FRAGMENTS) for _ in range(rng.randint(1, 20)))
        assert extract._html_text(markup) == _HtmlParserReference.text(markup), markup


def test_an_html_page_of_more_tags_than_the_limit_is_refused():
    """Found by `make fuzz` (seed 1): 3M nested tags are linear but cost ~2.5 µs each; the page is refused instead."""
    limits = ExtractLimits(max_html_tags=1000)
    assert "kept" in extract_text(b"<p>kept</p>" + b"<b>" * 998, "x.html", limits=limits)
    with pytest.raises(LimitExceeded, match="more than 1000 tags"):
        extract_text(b"<p>kept</p>" + b"<w:p>" * 1000, "x.html", limits=limits)
