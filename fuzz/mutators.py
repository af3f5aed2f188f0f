"""Mutation families. Each takes (rng, data, fmt) and returns (mutant, description) or None when it does not apply.

Families (issue 11 §3 and the hostile-inputs notes): byte-level (truncate, flip, chunk insert/delete/repeat),
zip-level (a member's payload mutated and recompressed, duplicate/renamed/symlink/encrypted entries, lying sizes,
unsupported methods, overlapping entries, nested archives, ratio bombs, central-directory bombs), XML-level inside a
member (unterminated constructs repeated N times, unquoted words in .rels, declared encodings, deep nesting,
character references, DTDs), HTML (marked sections, meta charsets, unclosed comments/scripts, nesting), text
(byte-order marks, NULs, invalid UTF-8), PDF (stream bombs: text operators and form-XObject chains, mutated content
streams, broken xref, page-tree loops, deep arrays).
"""

from __future__ import annotations

import functools
import io
import random
import re
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable

from tests.data_plane.documents import pdf_text_bomb, pdf_xobject_chain

Mutation = tuple[bytes, str]
MAX_GROWTH = 8 << 20  # a repeat never adds more than this
MAX_MUTANT_BYTES = 48 << 20  # stacking stops above this (and the 100 MiB object limit is never the finding)
Mutator = Callable[[random.Random, bytes, str], Mutation | None]

ENCODINGS = ["rot13", "zlib", "hex", "undefined", "idna", "punycode", "utf-7", "utf32", "utf-16", "bogus", "x",
             "base64"]
UNTERMINATED = [b"<![CDATA[", b"<!--", b"<w:t ", b"<a:t ", b"<a", b"<c>", b"<si>", b"<rPh>", b"<![", b"<?", b"<w:r>",
                b"<p:sp>", b"<t>", b"<v>", b"&#", b"<!DOCTYPE x [", b"<mc:Fallback>", b"</w:p"]
HTML_TOKENS = [b"<![", b"<![foo[", b"<![if !supportLists]>", b"<!", b"<!--", b"<script>", b"<style>", b"<title>",
               b"<textarea>", b"<?php", b"</", b"<a href='", b"&#", b"&#x110000;", b"&#xD800;", b"<svg>", b"<math>"]
PART_NAMES = ["header1\u00b22.xml", "slide" + "9" * 5000 + ".xml", "../evil.xml", "/abs.xml", "C:/drive.xml",
              "a\\b.xml", "x" * 3000, "/".join(["d"] * 40) + "/deep.xml", "caf\u00e9.xml", "sp ace.xml", "%41.xml"]


def _count(rng: random.Random) -> int:
    """How many times to repeat a construct: mostly small, sometimes large enough to show super-linear scans."""
    return rng.choice([1, 2, 10, 100, 1_000, 5_000, 20_000, 50_000, 100_000])


def _position(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


# --------------------------------------------------------------------------------------------------------------------
# Byte level (every format)


def truncate(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    at = rng.randrange(len(data)) if data else 0
    return data[:at], f"truncate at {at}/{len(data)}"


def flip(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    if not data:
        return None
    out = bytearray(data)
    n = rng.choice([1, 2, 4, 16, 64])
    for _ in range(n):
        i = rng.randrange(len(out))
        out[i] = rng.randrange(256) if rng.random() < 0.5 else out[i] ^ (1 << rng.randrange(8))
    return bytes(out), f"flip {n} bytes"


def chunks(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    if not data:
        return None
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.choice([1, 8, 64, 512, 4096]))
    kind = rng.choice(["delete", "repeat", "insert"])
    if kind == "delete":
        return data[:start] + data[end:], f"delete bytes {start}:{end}"
    if kind == "repeat":
        n = rng.choice([2, 10, 100, 1000])
        return data[:end] + data[start:end] * n + data[end:], f"repeat bytes {start}:{end} x{n}"
    blob = rng.randbytes(end - start)
    return data[:start] + blob + data[start:], f"insert {len(blob)} random bytes at {start}"


# --------------------------------------------------------------------------------------------------------------------
# Text/XML payload mutations (applied to a zip member's payload, or to HTML/text documents)


def _repeat_token(rng: random.Random, data: bytes, tokens: list[bytes], label: str) -> Mutation:
    token = rng.choice(tokens)
    n = _count(rng)
    at = _position(rng, data)
    return data[:at] + token * n + data[at:], f"{label} {token.decode()!r} x{n} at {at}"


def unterminated(rng: random.Random, text: bytes, fmt: str) -> Mutation | None:
    return _repeat_token(rng, text, UNTERMINATED, "unterminated")


def rels_words(rng: random.Random, text: bytes, fmt: str) -> Mutation | None:
    n = _count(rng)
    words = b" ".join([b"word"] * n)
    if b"<Relationship " in text:
        return text.replace(b"<Relationship ", b"<Relationship " + words + b" ", 1), f"{n} unquoted words in a rel"
    return text + b"<Relationship " + words, f"{n} unquoted words after the part"


def declared_encoding(rng: random.Random, text: bytes, fmt: str) -> Mutation | None:
    name = rng.choice(ENCODINGS)
    declaration = b'<?xml version="1.0" encoding="%s"?>' % name.encode()
    if text.startswith(b"<?xml"):
        end = text.find(b"?>")
        text = text[end + 2 :] if end >= 0 else text
    return declaration + text, f"XML declaration encoding={name}"


def deep_nesting(rng: random.Random, text: bytes, fmt: str) -> Mutation | None:
    n = rng.choice([100, 10_000, 200_000, 1_000_000, 3_000_000])
    tag = rng.choice([b"x", b"w:p", b"a:p", b"c", b"div"])
    at = text.rfind(b"</")
    at = at if at > 0 else len(text)
    closing = b"</" + tag + b">" if rng.random() < 0.5 else b""
    return text[:at] + (b"<" + tag + b">") * n + closing * n + text[at:], f"nesting <{tag.decode()}> x{n}"


def references(rng: random.Random, text: bytes, fmt: str) -> Mutation | None:
    ref = rng.choice(
        [b"&#0;", b"&#xD800;", b"&#x110000;", b"&#99999999999;", b"&lol;", b"&amp", b"&#x;", b"\xed\xa0\x80"]
    )
    n = _count(rng)
    at = _position(rng, text)
    return text[:at] + ref * n + text[at:], f"reference {ref!r} x{n}"


def dtd(rng: random.Random, text: bytes, fmt: str) -> Mutation | None:
    decl = rng.choice([b'<!DOCTYPE x [<!ENTITY a "aaaa">]>', b'<!DOCTYPE x SYSTEM "file:///etc/passwd">', b"<!DOCTYPE"])
    at = text.find(b"?>") + 2 if text.startswith(b"<?xml") else 0
    return text[:at] + decl + text[at:], f"DTD {decl[:20]!r}"


XML_MUTATORS: list[Mutator] = [unterminated, unterminated, rels_words, declared_encoding, deep_nesting, references, dtd,
                               truncate, flip, chunks]


# --------------------------------------------------------------------------------------------------------------------
# Zip level


def _members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]] | None:
    """The archive's members (fresh ZipInfo objects, so callers may edit them), or None when zipfile cannot read it."""
    cached = _read_members(data)
    if cached is None:
        return None
    members = []
    for name, external_attr, payload in cached:
        info = zipfile.ZipInfo(name)
        info.external_attr = external_attr
        members.append((info, payload))
    return members


@functools.lru_cache(maxsize=12)
def _read_members(data: bytes) -> tuple[tuple[str, int, bytes], ...] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > 2000:
                return None
            return tuple((info.filename, info.external_attr, zf.read(info)) for info in infos)
    except Exception:
        return None


def _build(members: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        for info, payload in members:
            copy = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            # Level 1, media stored: recompressing is most of the cost of a mutant and changes nothing we test.
            textual = info.filename.endswith((".xml", ".rels")) or len(payload) < 65536
            copy.compress_type = zipfile.ZIP_DEFLATED if textual else zipfile.ZIP_STORED
            copy.external_attr = info.external_attr
            zf.writestr(copy, payload, compresslevel=1)
    return out.getvalue()


# Parts the extractor reads (the others are only checked by safe_zip and parsed by docx_unzip).
_SCANNED = re.compile(
    r"(document|header\d*|footer\d*|footnotes|endnotes|slide\d*|notesSlide\d*|sharedStrings|sheet\d*|workbook|"
    r"presentation)\.xml$|\.rels$"
)


def _pick_member(
    rng: random.Random, data: bytes
) -> tuple[list[tuple[zipfile.ZipInfo, bytes]], int, zipfile.ZipInfo, bytes] | None:
    """The archive's members and one of them (mostly an XML part): index, info, payload; None for an unreadable zip."""
    members = _members(data)
    if not members:
        return None
    xml = [i for i, (info, _) in enumerate(members) if info.filename.endswith((".xml", ".rels"))]
    scanned = [i for i in xml if _SCANNED.search(members[i][0].filename)]
    draw = rng.random()
    if scanned and draw < 0.7:
        index = rng.choice(scanned)
    elif xml and draw < 0.9:
        index = rng.choice(xml)
    else:
        index = rng.randrange(len(members))
    return members, index, *members[index]


def zip_member(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    picked = _pick_member(rng, data)
    if picked is None:
        return None
    members, index, info, payload = picked
    mutator = rels_words if info.filename.endswith(".rels") and rng.random() < 0.3 else rng.choice(XML_MUTATORS)
    mutated = mutator(rng, payload, fmt)
    if mutated is None:
        return None
    members[index] = (info, mutated[0])
    return _build(members), f"{mutator.__name__} in {info.filename}: {mutated[1]}"


def zip_entries(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    picked = _pick_member(rng, data)
    if picked is None:
        return None
    members, index, info, payload = picked
    kind = rng.choice(["duplicate", "rename", "symlink", "nested", "ratio", "drop"])
    if kind == "duplicate":
        members.insert(rng.randrange(len(members) + 1), (info, payload[: len(payload) // 2]))
    elif kind == "rename":
        new = rng.choice(PART_NAMES)
        folder = info.filename.rpartition("/")[0]
        target = f"{folder}/{new}" if folder and not new.startswith("/") else new
        old_base = info.filename.rpartition("/")[2].encode()
        members = [(i, p.replace(old_base, new.encode("utf-8"))) if i.filename.endswith(".rels") else (i, p)
                   for i, p in members]
        renamed = zipfile.ZipInfo(target)
        members[index] = (renamed, members[index][1])
        return _build(members), f"rename {info.filename} -> {target[:60]}"
    elif kind == "symlink":
        info.external_attr = (0o120777 << 16) | info.external_attr
    elif kind == "nested":
        members.append((zipfile.ZipInfo("inner/archive.zip"), data))
    elif kind == "ratio":
        size = rng.choice([1, 8, 40]) << 20
        members.append((zipfile.ZipInfo("word/media/zeros.xml"), bytes(size)))  # .xml: deflated by _build
        return _build(members), f"ratio bomb: {size >> 20} MiB of zeros"
    else:
        del members[index]
    return _build(members), f"{kind} {info.filename}"


_CD = b"PK\x01\x02"


def zip_headers(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    """Edit the raw central directory or local headers: sizes that lie, methods, flags, offsets, NUL in names."""
    entries = [m.start() for m in re.finditer(re.escape(_CD), data) if m.start() + 46 <= len(data)]
    if not entries:
        return None
    at = rng.choice(entries)
    out = bytearray(data)
    kind = rng.choice(["uncompressed", "compressed", "method", "flags", "offset", "name-nul", "local-size"])
    if kind in ("uncompressed", "compressed"):
        field = at + (24 if kind == "uncompressed" else 20)
        value = rng.choice([0, 1, 100, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)])
        struct.pack_into("<I", out, field, value)
        return bytes(out), f"central directory {kind} size = {value}"
    if kind == "method":
        method = rng.choice([9, 12, 14, 95, 98, 99, 1])
        struct.pack_into("<H", out, at + 10, method)
        return bytes(out), f"compression method = {method}"
    if kind == "flags":
        flags = rng.choice([0x1, 0x8, 0x800, 0x41, 0xFFFF])
        struct.pack_into("<H", out, at + 8, flags)
        return bytes(out), f"flags = {flags:#x}"
    if kind == "offset":
        other = rng.choice(entries)
        struct.pack_into("<I", out, at + 42, struct.unpack_from("<I", data, other + 42)[0])
        return bytes(out), "local header offset of another entry (overlap)"
    if kind == "name-nul":
        name_length = min(struct.unpack_from("<H", data, at + 28)[0], len(data) - at - 46)
        if name_length > 0:
            out[at + 46 + rng.randrange(name_length)] = 0
        return bytes(out), "NUL byte in a central-directory name"
    local = data.find(b"PK\x03\x04")
    if local < 0:
        return None
    struct.pack_into("<I", out, local + 22, rng.choice([0, 1, 0xFFFFFFFF]))
    return bytes(out), "local header uncompressed size"


def cd_bomb(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    """Many empty entries, written raw (zipfile.writestr is too slow): entry-count limits and parse cost."""
    count = rng.choice([1_001, 10_001, 50_000, 200_000])
    local, central = bytearray(), bytearray()
    for n in range(count):
        name = b"e/%d" % n
        offset = len(local)
        local += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        central += struct.pack("<4s6H3I5H2I", _CD, 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset)
        central += name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(central),
                      len(local), 0)
    return bytes(local + central + end), f"central-directory bomb: {count} entries"


# --------------------------------------------------------------------------------------------------------------------
# HTML and text


def html_tokens(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    return _repeat_token(rng, data, HTML_TOKENS, "HTML")


def meta_charset(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    name = rng.choice([*ENCODINGS, "utf-16", "utf-32", "cp1252", "shift_jis"])
    return b"<meta charset=%s>" % name.encode() + data, f"<meta charset={name}>"


def text_encoding(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    kind = rng.choice(["bom", "nul", "invalid", "surrogate", "lines"])
    if kind == "bom":
        bom = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"])
        return bom + data[: len(data) - rng.randrange(2)], f"byte-order mark {bom!r}"
    if kind == "nul":
        at = _position(rng, data)
        return data[:at] + b"\x00" * rng.choice([1, 100]) + data[at:], "NUL bytes"
    if kind == "invalid":
        at = _position(rng, data)
        return data[:at] + rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\xf4\x90\x80\x80"]) + data[at:], "invalid UTF-8"
    if kind == "surrogate":
        at = _position(rng, data)
        return data[:at] + b"\xed\xa0\x80" * _count(rng) + data[at:], "encoded surrogates"
    n = _count(rng)
    return data + b"x" * (n * 50) + b"\r" * n, f"{n * 50}-character line and {n} CRs"


# --------------------------------------------------------------------------------------------------------------------
# PDF


def pdf_bomb(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    if rng.random() < 0.5:
        n = rng.choice([10_000, 100_000, 300_000, 1_500_000])
        return pdf_text_bomb(n), f"PDF text bomb: {n} Tj operators"
    levels, draws = rng.choice([(2, 1000), (3, 100), (3, 300), (4, 30), (4, 60), (4, 100), (5, 20)])
    return pdf_xobject_chain(levels, draws), f"PDF form-XObject chain {levels} levels x {draws} draws"


_STREAM = re.compile(rb"stream\r?\n")


def pdf_stream(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    """Mutate one content stream (a flate one is decompressed and compressed again); pdfium repairs the lengths."""
    starts = [m.end() for m in _STREAM.finditer(data)]
    rng.shuffle(starts)
    for start in starts[:10]:
        end = data.find(b"endstream", start)
        if end < 0:
            continue
        raw = data[start:end]
        try:
            content, flate = zlib.decompressobj().decompress(raw, 4 << 20), True
        except zlib.error:
            content, flate = raw, False
        if not content:
            continue
        kind = rng.choice(["repeat", "truncate", "flip", "operators"])
        if kind == "repeat":
            n = min(rng.choice([10, 100, 1000, 10_000]), max(1, MAX_GROWTH // len(content)))
            content = content * n
        elif kind == "truncate":
            content = content[: rng.randrange(len(content))]
        elif kind == "flip":
            content = flip(rng, content, fmt)[0]  # type: ignore[index]
        else:
            op = rng.choice([b"q ", b"Q ", b"BT ", b"(x) Tj ", b"[(a) 1 (b)] TJ ", b"/Fm0 Do ", b"1 0 0 1 0 0 cm "])
            n = _count(rng)
            content = op * n + content
        packed = zlib.compress(content) + b"\n" if flate else content
        return data[:start] + packed + data[end:], f"content stream at {start}: {kind}"
    return None


def pdf_structure(rng: random.Random, data: bytes, fmt: str) -> Mutation | None:
    kind = rng.choice(["xref", "endobj", "kids-loop", "count", "arrays", "length"])
    if kind == "xref":
        at = data.rfind(b"startxref")
        if at < 0:
            return None
        return data[:at] + b"startxref\n%d\n%%%%EOF\n" % rng.randrange(len(data)), "startxref points anywhere"
    if kind == "endobj":
        return data.replace(b"endobj", b"", rng.choice([1, 10, 1000])), "endobj removed"
    if kind == "kids-loop":
        return re.sub(rb"/Kids\s*\[", b"/Kids [1 0 R 2 0 R 3 0 R ", data, count=1), "page tree refers to itself"
    if kind == "count":
        return re.sub(rb"/Count\s+\d+", b"/Count 99999999", data, count=1), "page count 99999999"
    if kind == "arrays":
        n = rng.choice([100, 10_000, 100_000])
        at = data.find(b"obj") + 3
        return data[:at] + b"[" * n + data[at:], f"{n} nested arrays"
    return re.sub(rb"/Length\s+\d+", b"/Length 999999999", data), "every /Length 999999999"


# --------------------------------------------------------------------------------------------------------------------

BYTES: list[tuple[Mutator, int]] = [(truncate, 1), (flip, 2), (chunks, 2)]
FAMILIES: dict[str, list[tuple[Mutator, int]]] = {
    "docx": [*BYTES, (zip_member, 10), (zip_entries, 2), (zip_headers, 2), (cd_bomb, 1)],
    "pptx": [*BYTES, (zip_member, 10), (zip_entries, 2), (zip_headers, 2)],
    "xlsx": [*BYTES, (zip_member, 10), (zip_entries, 2), (zip_headers, 2)],
    "zip": [*BYTES, (zip_member, 4), (zip_entries, 5), (zip_headers, 5), (cd_bomb, 1)],
    "pdf": [*BYTES, (pdf_stream, 5), (pdf_structure, 3), (pdf_bomb, 1)],
    "html": [*BYTES, (html_tokens, 6), (meta_charset, 3), (unterminated, 2), (deep_nesting, 1), (references, 1),
             (text_encoding, 2)],
    "md": [*BYTES, (text_encoding, 3), (html_tokens, 1), (references, 1)],
    "text": [*BYTES, (text_encoding, 4)],
}


def mutate(rng: random.Random, data: bytes, fmt: str) -> tuple[bytes, list[str]]:
    """One to three mutations stacked; the descriptions say how to rebuild the mutant."""
    families = FAMILIES[fmt]
    steps = rng.choices([1, 2, 3], weights=[7, 2, 1])[0]
    done: list[str] = []
    for _ in range(steps):
        for _attempt in range(5):
            mutator = rng.choices([f for f, _ in families], weights=[w for _, w in families])[0]
            result = mutator(rng, data, fmt)
            if result is not None and len(result[0]) <= MAX_MUTANT_BYTES:
                data = result[0]
                done.append(f"{mutator.__name__}: {result[1]}")
                break
    return data, done
