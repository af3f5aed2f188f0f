"""Documents built in code for the data-plane tests: minimal but valid OOXML zips and PDFs, and hostile variants.
Tests never read the shared corpus; only the benchmark does."""

from __future__ import annotations

import functools
import io
import zipfile
import zlib

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W_STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


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
    return pdf_from_objects(objects)


def pdf_from_objects(objects: list[bytes]) -> bytes:
    """Objects 1..n (1 is the catalog) written with an exact xref table."""
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


def _flate_stream(content: bytes, dictionary: bytes = b"") -> bytes:
    packed = zlib.compress(content, 9)
    return b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(packed), dictionary) + packed + b"\nendstream"


_HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_text_bomb(operators: int) -> bytes:
    """One page whose flate content stream is ``operators`` x ``(ab) Tj`` (issue 11: 1.5M of them in 44 KB take
    pdfium past a gigabyte)."""
    content = b"BT /F1 1 Tf " + b"(ab) Tj\n" * operators + b"ET"
    return pdf_from_objects(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            _flate_stream(content),
            _HELVETICA,
        ]
    )


def pdf_xobject_chain(levels: int, draws: int) -> bytes:
    """A page drawing form X(levels), each form drawing the one below ``draws`` times, the last one a text line:
    draws ** (levels - 1) text objects from a file of a few KB (issue 11: 4 x 100 aborts pdfium)."""
    first_form = 6
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /XObject << /X %d 0 R >> >> >>" % (first_form + levels - 1),
        _flate_stream(b"/X Do"),
        _HELVETICA,
    ]
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
    objects.append(_flate_stream(b"BT /F1 1 Tf (ab) Tj ET", form + b"/Resources << /Font << /F1 5 0 R >> >> "))
    for level in range(1, levels):
        body = b"".join(b"q 1 0 0 1 %d %d cm /X Do Q\n" % (i % 50, i // 50) for i in range(draws))
        below = first_form + level - 1
        objects.append(_flate_stream(body, form + b"/Resources << /XObject << /X %d 0 R >> >> " % below))
    return pdf_from_objects(objects)


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


# Hostile archives (reference/hostile-inputs.md), built at a small scale.


@functools.cache  # 20,000 records take ~1 s to write; several tests use the same bomb
def directory_bomb(records: int, declared: int | None = None, name: str = "f{}.txt") -> bytes:
    """A zip of ``records`` empty members (nothing but central-directory records, in effect); the end record claims
    ``declared`` entries when given (ZipFile trusts the directory's size, not that count)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for index in range(records):
            zf.writestr(name.format(index), b"")
    data = bytearray(buf.getvalue())
    if declared is not None:
        end = data.rindex(b"PK\x05\x06")
        data[end + 8 : end + 12] = declared.to_bytes(2, "little") * 2  # entries on this disk, entries in total
    return bytes(data)


def rename_member(data: bytes, old: bytes, new: bytes, *, utf8_flag: bool = False) -> bytes:
    """Rewrite a member name in its local and central headers (same length): names zipfile cannot write, such as
    ones holding NUL or invalid UTF-8. ``utf8_flag`` marks the names UTF-8 (general-purpose bit 11)."""
    assert len(old) == len(new)
    out = bytearray(data.replace(old, new))
    if utf8_flag:
        for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            position = out.find(signature)
            while position >= 0:
                flags = int.from_bytes(out[position + flag_offset : position + flag_offset + 2], "little") | 0x800
                out[position + flag_offset : position + flag_offset + 2] = flags.to_bytes(2, "little")
                position = out.find(signature, position + 4)
    return bytes(out)


def symlink_member(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return info, target


def nested_xml(depth: int, root: str = "w:document", ns: str = W) -> bytes:
    """An XML part of ``depth`` nested elements under ``root`` (the fuzzer's had 4M: the same refusal, sooner)."""
    prefix = root.split(":")[0]
    return (f'{DECL}<{root} xmlns:{prefix}="{ns}">' + "<x>" * depth + "</x>" * depth + f"</{root}>").encode()


def lying_size_zip(name: str, payload: bytes, declared: int) -> bytes:
    """A member whose central directory declares ``declared`` uncompressed bytes while its stream inflates to
    ``len(payload)``."""
    data = bytearray(make_zip({name: payload}))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = declared.to_bytes(4, "little")
    return bytes(data)
