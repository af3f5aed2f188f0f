"""extract_text on documents built here (OOXML zips written with zipfile, PDFs written by hand): every format, the
structures that trip naive extractors, and hostile input that must end in a typed refusal, never a crash."""

from __future__ import annotations

import io
import zipfile

import pytest
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

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W_STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


# ---------------------------------------------------------------------------------------------------------------------
# Builders (the handler tests import these too)


def make_zip(parts: dict[str, str | bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, body in parts.items():
            zf.writestr(name, body)
    return buf.getvalue()


def rels(*targets: tuple[str, str, str], rel_ns: str = R) -> str:
    """(id, type, target) relationships."""
    items = "".join(f'<Relationship Id="{i}" Type="{rel_ns}/{t}" Target="{target}"/>' for i, t, target in targets)
    return f'{DECL}<Relationships xmlns="{PKG}">{items}</Relationships>'


def para(*runs: str, w: str = "w") -> str:
    return (
        f'<{w}:p><{w}:pPr><{w}:tabs><{w}:tab {w}:val="left" {w}:pos="720"/></{w}:tabs></{w}:pPr>'
        + "".join(f"<{w}:r><{w}:rPr><{w}:b/></{w}:rPr>{run}</{w}:r>" for run in runs)
        + f"</{w}:p>"
    )


def t(text: str, w: str = "w") -> str:
    return f'<{w}:t xml:space="preserve">{text}</{w}:t>'


def make_docx(
    body: str,
    *,
    namespace: str = W,
    headers: dict[str, str] | None = None,
    footnotes: str | None = None,
    prolog: str = "",
    rel_ns: str = R,
) -> bytes:
    doc_rels = []
    parts: dict[str, str | bytes] = {}
    for index, (name, xml) in enumerate((headers or {}).items(), start=1):
        doc_rels.append((f"rIdH{index}", "header", name))
        parts[f"word/{name}"] = f'{DECL}<w:hdr xmlns:w="{namespace}">{xml}</w:hdr>'
    if footnotes is not None:
        doc_rels.append(("rIdF", "footnotes", "footnotes.xml"))
        parts["word/footnotes.xml"] = f'{DECL}<w:footnotes xmlns:w="{namespace}">{footnotes}</w:footnotes>'
    return make_zip(
        {
            "[Content_Types].xml": f'{DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
            "_rels/.rels": rels(("rId1", "officeDocument", "word/document.xml"), rel_ns=rel_ns),
            "word/_rels/document.xml.rels": rels(*doc_rels, rel_ns=rel_ns),
            "word/document.xml": f'{DECL}{prolog}<w:document xmlns:w="{namespace}" xmlns:mc="{MC}">'
            f"<w:body>{body}</w:body></w:document>",
            **parts,
        }
    )


def make_pptx(slides: list[str], order: list[int] | None = None, notes: dict[int, str] | None = None) -> bytes:
    """Slides as lists of paragraph texts; ``order`` = slide numbers in presentation order."""
    order = order or list(range(1, len(slides) + 1))
    parts: dict[str, str | bytes] = {
        "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
        "ppt/_rels/presentation.xml.rels": rels(*[(f"rId{n}", "slide", f"slides/slide{n}.xml") for n in order]),
        "ppt/presentation.xml": f'{DECL}<p:presentation xmlns:p="{P}" xmlns:r="{R}"><p:sldIdLst>'
        + "".join(f'<p:sldId id="{255 + n}" r:id="rId{n}"/>' for n in order)
        + "</p:sldIdLst></p:presentation>",
    }
    for number, text in enumerate(slides, start=1):
        paragraphs = "".join(f"<a:p><a:r><a:t>{line}</a:t></a:r></a:p>" for line in text.split("\n"))
        parts[f"ppt/slides/slide{number}.xml"] = (
            f'{DECL}<p:sld xmlns:p="{P}" xmlns:a="{A}"><p:cSld><p:spTree><p:sp><p:txBody>{paragraphs}'
            "</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
        )
        slide_rels = []
        if notes and number in notes:
            slide_rels.append(("rIdN", "notesSlide", f"../notesSlides/notesSlide{number}.xml"))
            parts[f"ppt/notesSlides/notesSlide{number}.xml"] = (
                f'{DECL}<p:notes xmlns:p="{P}" xmlns:a="{A}"><a:p><a:r><a:t>{notes[number]}</a:t></a:r></a:p></p:notes>'
            )
        parts[f"ppt/slides/_rels/slide{number}.xml.rels"] = rels(*slide_rels)
    return make_zip(parts)


def make_xlsx(sheets: list[tuple[str, str]], shared: list[str]) -> bytes:
    """(sheet name, sheetData inner XML); ``shared`` is the shared-string table."""
    workbook = "".join(f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>' for i, (n, _) in enumerate(sheets, 1))
    targets = [(f"rId{i}", "worksheet", f"worksheets/sheet{i}.xml") for i in range(1, len(sheets) + 1)]
    parts: dict[str, str | bytes] = {
        "_rels/.rels": rels(("rId1", "officeDocument", "xl/workbook.xml")),
        "xl/_rels/workbook.xml.rels": rels(*targets, ("rIdS", "sharedStrings", "sharedStrings.xml")),
        "xl/workbook.xml": f'{DECL}<workbook xmlns="{S}" xmlns:r="{R}"><sheets>{workbook}</sheets></workbook>',
        "xl/sharedStrings.xml": f'{DECL}<sst xmlns="{S}">' + "".join(f"<si><t>{s}</t></si>" for s in shared) + "</sst>",
    }
    for i, (_, data) in enumerate(sheets, 1):
        parts[f"xl/worksheets/sheet{i}.xml"] = f'{DECL}<worksheet xmlns="{S}"><sheetData>{data}</sheetData></worksheet>'
    return make_zip(parts)


def make_pdf(pages: list[str]) -> bytes:
    """A PDF with one text line per page line (Helvetica); xref offsets computed so pdfium needs no repair."""
    count = len(pages)
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    font = 3 + 2 * count
    for index, text in enumerate(pages):
        page_obj, content_obj = 3 + 2 * index, 4 + 2 * index
        kids.append(b"%d 0 R" % page_obj)
        lines = text.split("\n")
        ops = b" ".join(b"0 -20 Td (%s) Tj" % line.encode("latin-1") for line in lines)
        stream = b"BT /F1 12 Tf 72 760 Td " + ops + b" ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content_obj, font)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % count
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encrypt_pdf(data: bytes, password: str = "secret") -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=password, owner_password=password + "-owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


ENTITY_BOMB = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)
EXTERNAL_ENTITY = '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def zip_bomb_docx(uncompressed_bytes: int = 4 * 1024 * 1024) -> bytes:
    """A DOCX whose document.xml is megabytes of one repeated run: compresses about 1000:1."""
    run = para(t("a")) * (uncompressed_bytes // len(para(t("a"))))
    return make_docx(run)


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
