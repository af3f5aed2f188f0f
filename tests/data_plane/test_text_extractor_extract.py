"""extract_text on documents built here (OOXML zips written with zipfile, PDFs written by hand): every format, the
structures that trip naive extractors, and hostile input that must end in a typed refusal, never a crash."""

from __future__ import annotations

import io
import random
import re
import zipfile

import pytest
from text_extractor import extract
from text_extractor.extract import (
    CorruptDocument,
    EncryptedDocument,
    ExtractLimits,
    LimitExceeded,
    UnsafeDocument,
    UnsupportedFormat,
    extract_pages,
    extract_text,
)

from tests.data_plane.documents import (
    DECL,
    ENTITY_BOMB,
    EXTERNAL_ENTITY,
    PKG,
    W_STRICT,
    S,
    W,
    encrypt_pdf,
    make_docx,
    make_pdf,
    make_pptx,
    make_xlsx,
    make_zip,
    para,
    t,
    zip_bomb_docx,
)

# ---------------------------------------------------------------------------------------------------------------------
# Formats


def test_docx_paragraphs_tabs_breaks_and_entities():
    body = para(t("Hello"), t(" world")) + para(t("A &amp; B &lt;c&gt; &#233;t&#xE9;"), "<w:tab/>", t("tabbed"))
    body += para(t("line one"), "<w:br/>", t("line two"))
    assert extract_text(make_docx(body), "x.docx") == "Hello world\nA & B <c> été\ttabbed\nline one\nline two"


def test_docx_tab_stops_deleted_text_and_field_codes_are_not_text():
    body = para(t("kept"), "<w:delText>deleted</w:delText>", "<w:instrText>PAGE</w:instrText>")
    assert extract_text(make_docx(body), "x.docx") == "kept"


def test_docx_headers_and_footnotes_follow_the_body():
    data = make_docx(
        para(t("Body text")),
        headers={"header1.xml": para(t("Running head"))},
        footnotes='<w:footnote w:id="1">' + para(t("A footnote")) + "</w:footnote>",
    )
    assert extract_text(data, "x.docx") == "Body text\nRunning head\nA footnote"


def test_docx_text_box_fallback_is_not_duplicated():
    box = para(t("In the box"))
    body = para(
        t("Before"),
        f'<mc:AlternateContent><mc:Choice Requires="wps"><w:txbxContent>{box}</w:txbxContent></mc:Choice>'
        f"<mc:Fallback><w:pict><w:txbxContent>{box}</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent>",
    )
    assert extract_text(make_docx(body), "x.docx").split().count("box") == 1


def test_docx_comments_and_cdata():
    body = para("<!-- <w:t>hidden</w:t> -->", t("visible"), "<w:t><![CDATA[a<b & c]]></w:t>")
    assert extract_text(make_docx(body), "x.docx") == "visiblea<b & c"


def test_docx_strict_namespaces():
    data = make_docx(
        para(t("Strict text")), namespace=W_STRICT, rel_ns="http://purl.oclc.org/ooxml/officeDocument/relationships"
    )
    assert extract_text(data, "strict.docx") == "Strict text"


def test_docx_other_prefix_and_missing_package_rels():
    document = f'{DECL}<x:document xmlns:x="{W}"><x:body>{para(t("Prefixed", w="x"), w="x")}</x:body></x:document>'
    assert extract_text(make_zip({"word/document.xml": document}), "x.docx") == "Prefixed"


def test_pptx_slides_in_presentation_order_with_notes():
    data = make_pptx(["First slide", "Second slide\nmore"], order=[2, 1], notes={1: "Speaker note"})
    assert extract_pages(data, "deck.pptx") == ["Second slide\nmore", "First slide\nSpeaker note"]


def test_xlsx_cells_rows_and_sheets():
    sheet1 = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2"><v>42.5</v></c><c r="B2" t="b"><v>1</v></c><c r="C2" t="inlineStr"><is><t>inline</t></is>'
        '</c><c r="D2" t="e"><v>#REF!</v></c><c r="E2" t="str"><f>A2*2</f><v>85</v></c></row>'
    )
    sheet2 = '<row r="1"><c r="A1" t="s"><v>2</v></c><c r="B1" t="s"><v>99</v></c></row>'
    data = make_xlsx([("Data", sheet1), ("Other", sheet2)], ["Name", "Value &amp; more", "second sheet"])
    assert extract_pages(data, "book.xlsx") == ["Name\tValue & more\n42.5\tTRUE\tinline\t85", "second sheet"]


def test_html_skips_scripts_and_styles():
    html = (
        b'<html><head><meta charset="windows-1252"><title>T\x92s</title><style>p{}</style>'
        b"<script>var secret = 1;</script></head><body><p>Caf\xe9 &amp; bar</p><table><tr><td>a</td><td>b</td>"
        b"</tr></table></body></html>"
    )
    text = extract_text(html, "page.html")
    assert "secret" not in text and "p{}" not in text
    assert text.split("\n") == ["T\u2019s", "Café & bar", "a\tb"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"# Title\n\nSome *markdown*", "# Title\n\nSome *markdown*"),
        ("\ufeffBOM utf-8".encode(), "BOM utf-8"),
        ("utf-16 text é".encode("utf-16"), "utf-16 text é"),
        (b"caf\xe9 cp1252 \x93quoted\x94", "café cp1252 \u201cquoted\u201d"),
    ],
)
def test_text_and_markdown_decoding(data, expected):
    assert extract_text(data, "notes.md") == expected


def test_pdf_pages():
    data = make_pdf(["Page one line\nsecond line", "Page two"])
    pages = extract_pages(data, "doc.pdf")
    assert [p.split("\n") for p in pages] == [["Page one line", "second line"], ["Page two"]]


def test_output_has_no_nul_control_characters_or_lone_surrogates():
    text = extract_text(make_docx(para(t("a&#0;b&#1;c\x7f&#xD800;d\r\ne"))), "x.docx")
    assert text == "abcd\ne"
    text.encode("utf-8")  # storable in PostgreSQL


# ---------------------------------------------------------------------------------------------------------------------
# Refusals: typed, with a reason naming the problem


@pytest.mark.parametrize(
    ("data", "name", "error", "reason"),
    [
        (b"", "empty.pdf", CorruptDocument, "empty"),
        (b"", "empty.docx", CorruptDocument, "empty"),
        (b"hello", "picture.png", UnsupportedFormat, "'png'"),
        (b"hello", "noextension", UnsupportedFormat, "(none)"),
        (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", "truncated.pdf", CorruptDocument, "PDF"),
        (b"this is not a pdf", "fake.pdf", CorruptDocument, "%PDF"),
        (b"PK\x03\x04 truncated zip", "truncated.docx", CorruptDocument, "zip"),
        (b"plain words", "renamed.docx", CorruptDocument, "zip"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptionInfo".encode("utf-16-le"),
            "locked.docx",
            EncryptedDocument,
            "",
        ),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 legacy", "old.docx", UnsupportedFormat, "legacy"),
        (b"text\x00with\x00nul" * 10, "binary.txt", CorruptDocument, "NUL"),
    ],
)
def test_bad_files_raise_typed_errors(data, name, error, reason):
    with pytest.raises(error) as caught:
        extract_text(data, name)
    assert reason in caught.value.reason


def test_truncated_docx_is_corrupt():
    data = make_docx(para(t("x" * 5000)))
    with pytest.raises(CorruptDocument):
        extract_text(data[: len(data) // 2], "cut.docx")


def test_corrupt_member_data_is_corrupt():
    data = bytearray(make_docx(para(t("abcdefgh" * 200))))
    start = data.index(b"word/document.xml") + len("word/document.xml") + 10
    data[start : start + 40] = b"\xff" * 40  # inside the first member's compressed stream
    with pytest.raises(CorruptDocument):
        extract_text(bytes(data), "bad.docx")


def test_encrypted_pdf():
    with pytest.raises(EncryptedDocument):
        extract_text(encrypt_pdf(make_pdf(["secret text"])), "locked.pdf")


def test_too_many_pages():
    with pytest.raises(LimitExceeded, match="3 pages"):
        extract_text(make_pdf(["a", "b", "c"]), "long.pdf", limits=ExtractLimits(max_pages=2))
    with pytest.raises(LimitExceeded, match="slides"):
        extract_text(make_pptx(["a", "b"]), "long.pptx", limits=ExtractLimits(max_pages=1))


def test_object_size_limit():
    with pytest.raises(LimitExceeded, match="bytes"):
        extract_text(b"x" * 101, "big.txt", limits=ExtractLimits(max_object_bytes=100))


def test_decompressed_size_limit():
    data = make_docx(para(t("word " * 4000)))
    with pytest.raises(LimitExceeded, match="limit 5000"):
        extract_text(data, "x.docx", limits=ExtractLimits(max_decompressed_bytes=5000))


def test_zip_bomb_docx_is_refused():
    with pytest.raises(UnsafeDocument, match="ratio"):
        extract_text(zip_bomb_docx(), "bomb.docx")


def test_zip_slip_member_is_refused():
    data = make_zip({"word/document.xml": f'<w:document xmlns:w="{W}"/>', "../../evil.xml": "x"})
    with pytest.raises(UnsafeDocument, match=r"\.\."):
        extract_text(data, "slip.docx")


@pytest.mark.parametrize("prolog", [ENTITY_BOMB, EXTERNAL_ENTITY])
def test_dtd_in_document_part_is_refused(prolog):
    data = make_docx(para(t("&lol3;&xxe;")), prolog=prolog)
    with pytest.raises(UnsafeDocument, match="DTD"):
        extract_text(data, "x.docx")


def test_dtd_in_shared_strings_is_refused():
    data = make_xlsx([("S", '<row><c t="s"><v>0</v></c></row>')], ["x"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    parts["xl/sharedStrings.xml"] = (DECL + ENTITY_BOMB + f'<sst xmlns="{S}"><si><t>&lol3;</t></si></sst>').encode()
    with pytest.raises(UnsafeDocument):
        extract_text(make_zip(parts), "bomb.xlsx")


def test_dtd_in_relationships_is_refused():
    data = make_zip(
        {
            "_rels/.rels": DECL + EXTERNAL_ENTITY + f'<Relationships xmlns="{PKG}"/>',
            "word/document.xml": f'<w:document xmlns:w="{W}"/>',
        }
    )
    with pytest.raises(UnsafeDocument):
        extract_text(data, "x.docx")


def test_unsupported_xml_encoding_is_refused():
    data = make_zip({"word/document.xml": '<?xml version="1.0" encoding="cp037"?><w:document/>'})
    with pytest.raises(CorruptDocument, match="encoding"):
        extract_text(data, "x.docx")


# ---------------------------------------------------------------------------------------------------------------------
# The run scanner's regex is spelled for speed (every alternative starts with a literal, captures are one character);
# these pin it to the plain spelling of the same grammar, token for token.


def _plain_runs_regex(
    prefixes: tuple[bytes, ...], mc_prefixes: tuple[bytes, ...], attributes: bytes = rb"[^<>]"
) -> re.Pattern[bytes]:
    """The readable reference: one capture group per whole token, in _collect_runs' order. ``attributes`` is what a
    tag body may hold: ``[^<>]`` (linear, what the scanner uses) or ``[^>]`` (the spelling before it, quadratic on
    unterminated tags; the same tokens on well-formed XML)."""
    p = extract._prefix_pattern(prefixes)
    mc = extract._prefix_pattern(mc_prefixes)
    return re.compile(
        b"<(?:" + p + rb"(?:t(?:\s" + attributes + rb"*)?>([^<]*)</" + p + rb"t>|(tab\s*/>)|((?:br|cr)\b))"
        b"|/(?:(" + p + b"p>)|(" + mc + b"Fallback>))"
        b"|(" + mc + rb"Fallback(?:\s" + attributes + rb"*)?>)"
        b"|(!))"
    )


_FRAGMENTS = [
    "<{w}t>word</{w}t>",
    '<{w}t xml:space="preserve"> spaced </{w}t>',
    "<{w}t\t>tab attr</{w}t>",
    "<{w}t >",
    "<{w}t/>",
    "<{w}t>",
    "</{w}t>",
    "<{w}t a='<'>",
    "<{w}tbl>",
    "<{w}tc>",
    "<{w}tabs>",
    "</{w}tabs>",
    "<{w}tab/>",
    "<{w}tab />",
    "<{w}tab>",
    '<{w}tab {w}val="left" {w}pos="720"/>',
    "<{w}br/>",
    '<{w}br {w}type="page"/>',
    "<{w}cr/>",
    "<{w}brx/>",
    "<{w}p>",
    "</{w}p>",
    "</{w}pPr>",
    "<{w}r>",
    "</{w}r>",
    "<{m}AlternateContent>",
    "<{m}Choice>",
    "</{m}Choice>",
    "<{m}Fallback>",
    '<{m}Fallback x="1">',
    "</{m}Fallback>",
    "<{m}Fallbacks>",
    "<!-- <{w}t>hidden</{w}t> -->",
    "<![CDATA[a<b]]>",
    "<!",
    "<",
    ">",
    "&amp;",
    "text",
    " ",
    "\n",
]


def _tokens(regex: re.Pattern[bytes], xml: bytes) -> list[tuple]:
    return [(groups[0], *map(bool, groups[1:])) for groups in regex.findall(xml)]


@pytest.mark.parametrize(
    ("prefixes", "mc_prefixes"),
    [((b"w",), (b"mc",)), ((b"",), (b"mc",)), ((b"a", b"w"), (b"mc", b"ve")), ((b"w",), (b"", b"mc"))],
)
def test_run_regex_tokens_match_the_plain_spelling(prefixes, mc_prefixes):
    fast, plain = extract._runs_regex(prefixes, mc_prefixes), _plain_runs_regex(prefixes, mc_prefixes)
    rng = random.Random(65649)
    for _ in range(400):
        xml = "".join(
            rng.choice(_FRAGMENTS).format(w=_qualified(rng.choice(prefixes)), m=_qualified(rng.choice(mc_prefixes)))
            for _ in range(rng.randint(1, 16))
        ).encode()
        assert _tokens(fast, xml) == _tokens(plain, xml), xml
    assert _tokens(fast, b"<w:t>x</w:t><!") == _tokens(plain, b"<w:t>x</w:t><!")  # "<!" ending the part


def test_run_regex_tokens_are_unchanged_on_well_formed_fragments():
    """Bounding tag bodies at "<" changes nothing where "<" cannot stand inside a tag (well-formed XML)."""
    well_formed = [f for f in _FRAGMENTS if f not in ("<{w}t a='<'>", "<", "<!")]
    prefixes, mc_prefixes = (b"w",), (b"mc",)
    linear, before = extract._runs_regex(prefixes, mc_prefixes), _plain_runs_regex(prefixes, mc_prefixes, rb"[^>]")
    rng = random.Random(4242)
    for _ in range(400):
        xml = "".join(rng.choice(well_formed).format(w="w:", m="mc:") for _ in range(rng.randint(1, 16))).encode()
        assert _tokens(linear, xml) == _tokens(before, xml), xml


def _qualified(prefix: bytes) -> str:
    return prefix.decode() + ":" if prefix else ""


def test_docx_text_is_the_same_through_the_plain_regex(monkeypatch):
    box = para(t("in the box"))
    body = (
        para(t("one"), "<w:tab/>", t("two"), "<w:br/>", t("three"))
        + para(
            f'<mc:AlternateContent><mc:Choice Requires="wps"><w:txbxContent>{box}</w:txbxContent></mc:Choice>'
            f"<mc:Fallback><w:pict><w:txbxContent>{box}</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent>"
        )
        + para("<!-- <w:t>hidden</w:t> -->", t("visible"), "<w:t><![CDATA[a<b & c]]></w:t>")
    )
    data = make_docx(body, headers={"header1.xml": para(t("head"))})
    fast = extract_text(data, "x.docx")
    monkeypatch.setattr(extract, "_runs_regex", _plain_runs_regex)
    assert extract_text(data, "x.docx") == fast == "one\ttwo\nthree\nin the box\n\nvisiblea<b & c\nhead"
