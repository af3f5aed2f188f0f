"""Plain text out of untrusted document bytes: PDF, DOCX, PPTX, XLSX, HTML, Markdown and plain text.

Pure (no AWS, no database) so the handler, the benchmark and other tools share it:
``extract_text(data, filename)`` returns one string; ``extract_pages`` returns the text per page (PDF page, slide,
sheet; one page for flowing formats), which the handler cuts into parts.

Every refusal is an ``ExtractionError`` subclass with a ``reason`` fit for a status row, so the caller can record
"skipped" instead of retrying a file that will never work: ``UnsupportedFormat``, ``EncryptedDocument``,
``CorruptDocument`` (and its ``UnsafeDocument`` for hostile input: DTDs/entities, zip bombs) and ``LimitExceeded``.

OOXML text is read by a lexical scanner (one compiled regular expression over each part's UTF-8 bytes), not a tree
parser. Measured on the corpus (bench/README.md): building an ElementTree is barely faster than python-docx, and
expat alone, with no handlers, already costs more than the 5x target allows; the scanner is ~5.8-6.6x python-docx's
paragraphs-only idiom, ~10-11.5x python-docx reading the same scope (tables, headers) and ~16-18x docx2txt,
finding 100 % of their words. Every scanner runs in time linear in its part: no pattern can rescan the rest of a
part from each occurrence of an unterminated construct (tag bodies stop at the next ``<``, element bodies at the
next start of the same element, comments and CDATA are cut by one forward pass), and tests pin that on inputs built
to be quadratic. It is safe because it only ever *reads* character data: a part with a DTD (the
only way to declare entities, internal or external) is refused before scanning, only the five predefined
entities and character references are expanded, and archives go through ``core.safe_zip`` (ratio, size, entry and
path checks; reads capped by the declared size). Malformed XML yields best-effort text rather than an error, which
is what a search index wants; small structural parts (relationships, workbook, presentation) are parsed with
``core.safe_zip.scan_xml`` (expat, streaming: no DTD, bounded depth and encodings, no tree).
``extract_pages`` lets nothing but an ``ExtractionError`` out, whatever the input.
"""

from __future__ import annotations

import codecs
import functools
import html
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from core.safe_zip import ArchiveLimits, UnsafeArchive, open_checked, read_member, scan_xml

# Defaults used when the caller (or the handler's environment) gives no limit.
DEFAULT_MAX_OBJECT_BYTES = 100 * 1024 * 1024  # MAX_OBJECT_BYTES: the whole file is held in memory.
DEFAULT_MAX_PAGES = 2_000  # MAX_PAGES: PDF pages, slides or sheets.
DEFAULT_MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024  # MAX_DECOMPRESSED_BYTES: OOXML parts we read, summed.
# MAX_TEXT_CHARS: text one document may produce. Text is never longer than the bytes it comes from, except spreadsheet
# cells, which can each repeat one large shared string (a 25-byte cell referencing a 1 MB string).
DEFAULT_MAX_TEXT_CHARS = 64 * 1024 * 1024
# MAX_HTML_TAGS: tags one HTML page may hold. The tokenizer is linear but pays ~2.5 µs a tag; a page of nothing but
# tags (30 MB, 6M tags) would hold the function for 15 s. Real pages hold far fewer than a million.
DEFAULT_MAX_HTML_TAGS = 1_000_000


class ExtractionError(Exception):
    """The document cannot be extracted and retrying will not help; ``reason`` says why (safe to store)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsupportedFormat(ExtractionError):
    """No extractor for this file type (images, legacy binary Office files, ...)."""


class EncryptedDocument(ExtractionError):
    """Password-protected PDF or OOXML package."""


class CorruptDocument(ExtractionError):
    """The bytes are not a readable document of the claimed type."""


class UnsafeDocument(CorruptDocument):
    """Hostile structure refused on purpose: DTD/entity declarations, zip bomb, zip slip."""


class LimitExceeded(ExtractionError):
    """Object size, page count or decompressed size above the configured limit."""


@dataclass(frozen=True)
class ExtractLimits:
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    max_pages: int = DEFAULT_MAX_PAGES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_html_tags: int = DEFAULT_MAX_HTML_TAGS

    @classmethod
    def from_env(cls) -> ExtractLimits:
        """MAX_OBJECT_BYTES, MAX_PAGES, MAX_DECOMPRESSED_BYTES, MAX_TEXT_CHARS, MAX_HTML_TAGS; invalid values raise
        ConfigError."""
        from core.config import env_int

        return cls(
            max_object_bytes=env_int("MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, minimum=1),
            max_pages=env_int("MAX_PAGES", DEFAULT_MAX_PAGES, minimum=1),
            max_decompressed_bytes=env_int("MAX_DECOMPRESSED_BYTES", DEFAULT_MAX_DECOMPRESSED_BYTES, minimum=1),
            max_text_chars=env_int("MAX_TEXT_CHARS", DEFAULT_MAX_TEXT_CHARS, minimum=1),
            max_html_tags=env_int("MAX_HTML_TAGS", DEFAULT_MAX_HTML_TAGS, minimum=1),
        )


# --------------------------------------------------------------------------------------------------------------------
# Entry points


def extract_text(data: bytes, filename: str, *, limits: ExtractLimits | None = None) -> str:
    """The document's text, pages separated by a blank line. Raises ExtractionError subclasses."""
    return "\n\n".join(page for page in extract_pages(data, filename, limits=limits) if page)


def file_format(filename: str) -> str:
    """The extractor name for a file name (by extension), or raise UnsupportedFormat."""
    base = posixpath.basename(filename)
    extension = base.rpartition(".")[2].lower() if "." in base else ""
    fmt = _FORMATS.get(extension)
    if fmt is None:
        raise UnsupportedFormat(f"no text extractor for file type {extension or '(none)'!r}")
    return fmt


def extract_pages(data: bytes, filename: str, *, limits: ExtractLimits | None = None) -> list[str]:
    """The text per page (PDF page, slide, sheet; a single page for flowing formats)."""
    limits = limits or ExtractLimits()
    fmt = file_format(filename)
    if len(data) > limits.max_object_bytes:
        raise LimitExceeded(f"file is {len(data)} bytes, more than the limit {limits.max_object_bytes}")
    if not data:
        raise CorruptDocument("file is empty (0 bytes)")
    try:
        pages = _EXTRACTORS[fmt](bytes(data), limits)
        if sum(map(len, pages)) > limits.max_text_chars:
            raise LimitExceeded(f"document produces more than {limits.max_text_chars} characters of text (the limit)")
        return [_clean(page) for page in pages]
    except ExtractionError:
        raise
    except MemoryError as exc:
        raise LimitExceeded(f"{fmt} document needs more memory than this function has") from exc
    except Exception as exc:  # last resort: every known class is mapped at its source; this keeps the contract
        raise CorruptDocument(f"unreadable {fmt} document ({type(exc).__name__}: {str(exc)[:200]})") from exc


# --------------------------------------------------------------------------------------------------------------------
# Output hygiene: PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded to UTF-8.

_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_SURROGATES = re.compile("[\ud800-\udfff]+")


def _clean(text: str) -> str:
    """Normalise newlines and drop control characters and lone surrogates.

    Done on the UTF-8 bytes (encode + translate are C loops; a regex character class over str measured ~8x slower).
    Deleting ASCII control bytes cannot break a multi-byte sequence: those bytes are all >= 0x80.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: from PDF text layers or character references
        text = _SURROGATES.sub("", text)
        encoded = text.encode("utf-8")
    stripped = encoded.translate(None, _CONTROL_BYTES)
    if len(stripped) != len(encoded):
        text = stripped.decode("utf-8")
    if "\ufffe" in text or "\uffff" in text:  # noncharacters: pdfium's marker for glyphs without a code point
        text = text.replace("\ufffe", "").replace("\uffff", "")
    return text.strip()


# --------------------------------------------------------------------------------------------------------------------
# PDF (pdfium via pypdfium2)


def _extract_pdf(data: bytes, limits: ExtractLimits) -> list[str]:
    """pdfium runs in a reused worker process (``pdf_worker``): its native aborts become a refusal, not our death."""
    from text_extractor import pdf_worker

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise CorruptDocument("not a PDF file (no %PDF header)")
    return pdf_worker.shared_worker().pages(data, limits.max_pages)


# --------------------------------------------------------------------------------------------------------------------
# OOXML packages

_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")

# Namespaces: transitional (ECMA/ISO) and strict (ISO 29500 strict) spellings.
_NS_W = (
    b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    b"http://purl.oclc.org/ooxml/wordprocessingml/main",
)
_NS_A = (b"http://schemas.openxmlformats.org/drawingml/2006/main", b"http://purl.oclc.org/ooxml/drawingml/main")
_NS_S = (b"http://schemas.openxmlformats.org/spreadsheetml/2006/main", b"http://purl.oclc.org/ooxml/spreadsheetml/main")
_NS_MC = (b"http://schemas.openxmlformats.org/markup-compatibility/2006",)


class _Package:
    """An opened, validated OOXML zip plus a running budget for the bytes of the parts we decompress."""

    def __init__(self, data: bytes, limits: ExtractLimits):
        if data.startswith(_CFB_MAGIC):
            if _ENCRYPTION_INFO in data:
                raise EncryptedDocument("Office file is password-protected (encrypted OLE container)")
            raise UnsupportedFormat("legacy binary Office file (OLE container), not OOXML")
        if not data.startswith(b"PK"):
            raise CorruptDocument("not an OOXML package (no zip header)")
        # Size checks per part come from our own budget; the archive-wide checks (ratio, entry count, paths,
        # overlaps) from safe_zip. Its total limit covers images we never decompress, so it stays at its default.
        self.archive_limits = ArchiveLimits(max_entry_bytes=limits.max_decompressed_bytes)
        self.budget = limits.max_decompressed_bytes
        self.limits = limits
        try:
            self.zf = open_checked(data, self.archive_limits)
        except UnsafeArchive as exc:
            raise _archive_error(exc) from exc
        self.names = {info.filename: info for info in self.zf.infolist()}

    def close(self) -> None:
        self.zf.close()

    def read(self, name: str) -> bytes:
        info = self.names.get(name)
        if info is None:
            raise CorruptDocument(f"package part {name!r} is missing")
        if info.file_size > self.budget:
            raise LimitExceeded(
                f"OOXML parts exceed the decompressed-size limit {self.limits.max_decompressed_bytes} bytes "
                f"(at part {name!r})"
            )
        self.budget -= info.file_size
        try:
            return read_member(self.zf, info, self.archive_limits)
        except UnsafeArchive as exc:
            raise _archive_error(exc) from exc

    def xml_bytes(self, name: str) -> bytes:
        """A part for the scanners: UTF-8, DTD-free (see ``_xml_bytes``)."""
        return _xml_bytes(self.read(name), name)

    def relationships(self, part: str) -> list[tuple[str, str, str]]:
        """(type, target part, id) of a part's internal relationships ("" = the package); type is the URI's last
        segment, so transitional and strict spellings match alike. Targets outside the package are dropped.

        Read with the lexical scanner like the text parts: a tree parse of these tiny files was ~10 % of the
        time of a typical small DOCX."""
        folder, base = posixpath.split(part)
        rels_name = posixpath.join(folder, "_rels", base + ".rels")
        if rels_name not in self.names:
            return []
        xml = self.xml_bytes(rels_name)
        if b"<!" in xml:
            xml = _strip_special(xml, rels_name)
        found = []
        for attributes in _RELATIONSHIP.findall(xml):
            attrs = {
                name.decode("ascii", "replace"): _decode(v1 or v2) for name, v1, v2 in _ATTRIBUTE.findall(attributes)
            }
            if attrs.get("TargetMode") == "External":
                continue
            target = attrs.get("Target", "")
            joined = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            resolved = posixpath.normpath(joined)
            if resolved not in self.names:
                resolved = unquote(resolved)  # part names are URIs: "my%20part.xml" is stored as "my part.xml"
            if resolved in self.names:
                found.append((attrs.get("Type", "").rsplit("/", 1)[-1], resolved, attrs.get("Id", "")))
        if not found and b"Relationship" not in xml and xml.strip():
            raise CorruptDocument(f"part {rels_name!r} is not a relationships part")
        return found

    def main_part(self, conventional: str) -> str:
        for rel_type, target, _ in self.relationships(""):
            if rel_type == "officeDocument":
                return target
        if conventional in self.names:
            return conventional
        raise CorruptDocument(f"package has no main document part (expected {conventional!r})")

    def ordered_by_id(self, name: str, local_name: str, targets_by_id: dict[str, str]) -> list[str]:
        """Targets in the order the main part lists them (``<sldId r:id>``, ``<sheet r:id>``), each once.

        One streaming expat pass (no tree: a part of millions of nested elements cannot grow memory), with
        safe_zip's limits: no DTD, bounded nesting, declared encodings from a known list."""
        raw = self.read(name)
        if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
            raise UnsafeDocument(f"part {name!r} declares a DTD or entities (not allowed in OOXML)")
        remaining = dict(targets_by_id)
        order = []
        suffix = "}" + local_name

        def start(tag: str, attrs: dict[str, str]) -> None:
            if tag.endswith(suffix) or tag == local_name:
                rid = next((value for key, value in attrs.items() if key.endswith("}id")), None)
                if rid in remaining:
                    order.append(remaining.pop(rid))

        try:
            scan_xml(raw, name, on_start=start)
        except UnsafeArchive as exc:
            if "forbidden" in exc.reason:
                raise UnsafeDocument(exc.reason) from exc
            if "limit" in exc.reason:
                raise LimitExceeded(exc.reason) from exc
            raise CorruptDocument(exc.reason) from exc
        return order


def _archive_error(exc: UnsafeArchive) -> ExtractionError:
    """Map safe_zip's single error type onto ours by its reason, so the status row says what kind of refusal."""
    reason = exc.reason
    if "zip bomb" in reason:
        return UnsafeDocument(reason)
    if "encrypted" in reason:
        return EncryptedDocument(reason)
    if "limit" in reason:
        return LimitExceeded(reason)
    if any(marker in reason for marker in ("not a valid zip", "unreadable zip", "corrupt data", "header declares")):
        return CorruptDocument(reason)
    return UnsafeDocument(reason)  # paths (zip slip), symlinks, overlapping or duplicate entries


def _with_package(data: bytes, limits: ExtractLimits, body: Callable[[_Package], list[str]]) -> list[str]:
    package = _Package(data, limits)
    try:
        return body(package)
    finally:
        package.close()


# --------------------------------------------------------------------------------------------------------------------
# XML part decoding and the lexical scanner's shared pieces

_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES = {"utf-8", "utf8", "us-ascii", "ascii"}
# Tag bodies stop at the next "<" ([^<>], not [^>]): the same on well-formed XML, where "<" cannot stand inside a
# tag, and it bounds what one candidate can scan, so N unterminated tags cost N, not N squared.
_ROOT_TAG = re.compile(rb"<[A-Za-z_][^<>]*>")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _xml_bytes(raw: bytes, name: str) -> bytes:
    """One XML part as UTF-8 bytes, refusing DTDs (entity bombs, external entities) and exotic encodings.

    A DTD, and so any entity declaration, can only stand in the prolog (before the root element), so only the
    prolog is searched here; ``_strip_special`` refuses a stray one later in the part. The scanners work on bytes:
    decoding only the extracted text, not the markup around it, is measurably faster.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    elif raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raw = _reencode(raw, "utf-16", name)
    else:
        match = _XML_ENCODING.match(raw[:256])
        declared = match.group(1).decode("ascii").lower() if match else "utf-8"
        if declared in {"iso-8859-1", "latin-1", "latin1"}:
            raw = _reencode(raw, "latin-1", name)
        elif declared not in _UTF8_NAMES:
            raise CorruptDocument(f"part {name!r}: unsupported XML encoding {declared!r}")
    root = _ROOT_TAG.search(raw)
    prolog = raw[: root.start()] if root else raw
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise UnsafeDocument(f"part {name!r} declares a DTD or entities (entity expansion / external entity refused)")
    return raw


_SPECIAL_END = {b"<!--": b"-->", b"<![CDATA[": b"]]>"}


def _strip_special(xml: bytes, name: str) -> bytes:
    """Drop comments (they could hide tag-like text) and turn CDATA into escaped text; refuse stray DTD syntax.

    One forward pass: each ``<!`` is resolved with a search from the current position, and a search that fails
    is remembered (no later comment can end if no ``-->`` follows this one), so unterminated constructs repeated
    through a part cost one scan in total. The result is the one the regex ``<!--.*?-->|<!.CDATA.(.*?)..>`` (with
    its brackets) gives; tests compare the two.
    """
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise UnsafeDocument(f"part {name!r} contains DTD or entity declarations (refused)")
    out: list[bytes] = []
    kept = 0  # xml[kept:] is not yet copied
    position = 0
    terminated = {b"<!--": True, b"<![CDATA[": True}  # False once a search for the construct's end failed
    find = xml.find
    while True:
        start = find(b"<!", position)
        if start < 0:
            break
        position = start + 1
        opener = (
            b"<!--" if xml.startswith(b"<!--", start) else b"<![CDATA[" if xml.startswith(b"<![CDATA[", start) else None
        )
        if opener is None or not terminated[opener]:
            continue
        end = find(_SPECIAL_END[opener], start + len(opener))
        if end < 0:
            terminated[opener] = False
            continue
        out.append(xml[kept:start])
        if opener == b"<![CDATA[":
            out.append(xml[start + len(opener) : end].replace(b"&", b"&amp;").replace(b"<", b"&lt;"))
        kept = position = end + 3
    if not out:
        return xml
    out.append(xml[kept:])
    return b"".join(out)


def _reencode(raw: bytes, encoding: str, name: str) -> bytes:
    try:
        return raw.decode(encoding).encode("utf-8")
    except UnicodeError as exc:
        raise CorruptDocument(f"part {name!r}: not valid {encoding} ({exc})") from exc


def _entity_repl(match: re.Match[str]) -> str:
    named, decimal, hexadecimal = match.groups()
    if named:
        return _NAMED[named]
    try:
        return chr(int(decimal) if decimal else int(hexadecimal, 16))
    except (ValueError, OverflowError):
        return ""


def _decode(text: bytes) -> str:
    """Extracted character data to str: invalid UTF-8 becomes U+FFFD (best effort), entities are expanded (only
    XML's predefined five and character references: a DTD was already refused)."""
    decoded = text.decode("utf-8", "replace")
    return _ENTITY.sub(_entity_repl, decoded) if "&" in decoded else decoded


_RELATIONSHIP = re.compile(rb"<(?:[\w.-]+:)?Relationship\s([^<>]*)>")
# A name starts only where no name character precedes it and is taken whole (possessive): a run of N name
# characters without "=" is then rejected once, not once per position with N steps of backtracking each.
_ATTRIBUTE = re.compile(rb"""(?<![\w:.-])([\w:.-]++)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_XMLNS = re.compile(rb"""xmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*["']([^"']*)["']""")


def _prefixes(xml: bytes, namespaces: tuple[bytes, ...], *, deep: bool = True) -> tuple[bytes, ...]:
    """The prefixes (b'' = default namespace) bound to one of ``namespaces`` on the root element, where every
    OOXML producer declares them; only when the root declares none (and ``deep``) is the whole part searched."""
    root = _ROOT_TAG.search(xml)
    if root is None:
        return ()
    found = {prefix for prefix, uri in _XMLNS.findall(root.group(0)) if uri in namespaces}
    if not found and deep:
        found = {prefix for prefix, uri in _XMLNS.findall(xml, root.end()) if uri in namespaces}
    return tuple(sorted(found))


def _prefix_pattern(prefixes: tuple[bytes, ...]) -> bytes:
    alternatives = [re.escape(p) + b":" if p else b"" for p in prefixes]
    if len(alternatives) == 1:  # the usual case; a literal keeps the scanner fast
        return alternatives[0]
    return b"(?:" + b"|".join(alternatives) + b")"


# --------------------------------------------------------------------------------------------------------------------
# WordprocessingML (DOCX) and DrawingML (PPTX) paragraphs: runs of <x:t>text</x:t>, <x:tab/>, <x:br/>, </x:p>


@functools.lru_cache(maxsize=64)
def _runs_regex(prefixes: tuple[bytes, ...], mc_prefixes: tuple[bytes, ...]) -> re.Pattern[bytes]:
    p = _prefix_pattern(prefixes)
    mc = _prefix_pattern(mc_prefixes)
    # One pass over the part; every "<" is a candidate (~500k in a 12 MB table-heavy part), so what the engine does
    # per candidate is the cost. sre skips an alternative without entering it only if the alternative *starts with a
    # literal or a character class*; one that starts with a group is entered (a costly jump) for every tag. So each
    # alternative starts with a literal and its capture comes after it. Only the truthiness of groups 2-7 is used,
    # so each captures one character of its token. Measured: 40 -> 23 ms on that part versus capturing whole tokens.
    # tests/data_plane/test_text_extractor_extract.py pins the token stream against the plain spelling of this
    # grammar (`<w:t[ attrs]>text</w:t>` | `<w:tab/>` | `<w:br`/`<w:cr` | `</w:p>` | `</mc:Fallback>` |
    # `<mc:Fallback[ attrs]>` | `<!`). Attributes are `[^<>]*`: see _ROOT_TAG.
    return re.compile(
        b"<(?:"
        + p
        + b"(?:t(?:"
        + rb"(?:>|\s[^<>]*>)([^<]*)</"  # 1: run text (a self-closing <w:t/> never reaches "</w:t>")
        + p
        + rb"t>|a(b)\s*/>)"  # 2: a tab character; <w:tab w:val=.. w:pos=../> are tab *stops* and do not match
        + rb"|[bc](r)\b)"  # 3: line break (<w:br>, <w:cr>)
        + b"|/(?:"
        + p
        + b"p(>)|"  # 4: end of paragraph
        + mc
        + b"Fallback(>))|"  # 5: end of a markup-compatibility fallback
        + mc
        + rb"Fallback(?:\s[^<>]*)?(>)"  # 6: start of a fallback: it repeats the Choice content (text box as VML)
        # 7: comment, CDATA or DTD syntax: handled by a second, slower pass. The lookbehind captures the "!" just
        # matched, so the group is non-empty even when "<!" ends the part.
        + b"|!(?<=(!)))"
    )


def _scan_runs(xml: bytes, namespaces: tuple[bytes, ...], name: str = "part") -> str:
    """Paragraph text of WordprocessingML (w:) or DrawingML (a:) parts: runs, tabs, breaks, paragraph ends."""
    prefixes = _prefixes(xml, namespaces)
    if not prefixes:
        return ""
    # mc is declared on the root or, in some producers, on each AlternateContent: accept the usual name too.
    mc_prefixes = tuple(sorted({*_prefixes(xml, _NS_MC, deep=False), b"mc"}))
    regex = _runs_regex(prefixes, mc_prefixes)
    out, special = _collect_runs(regex.findall(xml))
    if special:
        out, _ = _collect_runs(regex.findall(_strip_special(xml, name)))
    return _decode(b"".join(out))


def _collect_runs(tokens: list[tuple[bytes, ...]]) -> tuple[list[bytes], bool]:
    out: list[bytes] = []
    append = out.append
    skipping = 0
    special = False
    for run_text, tab, line_break, paragraph_end, fallback_end, fallback_start, bang in tokens:
        if skipping:
            if fallback_start:
                skipping += 1
            elif fallback_end:
                skipping -= 1
        elif run_text:
            append(run_text)
        elif tab:
            append(b"\t")
        elif line_break or paragraph_end:
            append(b"\n")
        elif fallback_start:
            skipping = 1
        elif bang:
            special = True
    return out, special


def _extract_docx(data: bytes, limits: ExtractLimits) -> list[str]:
    def body(package: _Package) -> list[str]:
        main = package.main_part("word/document.xml")
        texts = [_scan_runs(package.xml_bytes(main), _NS_W, main)]
        # Headers, footers and notes are the document's text too; comments are annotations and stay out.
        wanted = ("header", "footer", "footnotes", "endnotes")
        related = sorted(
            {target for rel_type, target, _ in package.relationships(main) if rel_type in wanted},
            key=lambda name: (wanted.index(_rel_kind(name, wanted)), _natural(name)),
        )
        texts.extend(_scan_runs(package.xml_bytes(name), _NS_W, name) for name in related)
        return ["\n".join(t.strip("\n") for t in texts if t.strip())]

    return _with_package(data, limits, body)


def _rel_kind(name: str, kinds: tuple[str, ...]) -> str:
    base = posixpath.basename(name)
    return next((kind for kind in kinds if base.startswith(kind)), kinds[0])


_DIGITS = re.compile(r"([0-9]+)")


def _natural(name: str) -> tuple:
    """slide2 before slide10: ASCII digit runs compare by value (length of the run without leading zeros, then the
    digits), with no int() conversion, so neither other Unicode digits ('1²2') nor 5000-digit runs can raise."""
    return tuple(
        (len(piece.lstrip("0")), piece.lstrip("0")) if index % 2 else (-1, piece)
        for index, piece in enumerate(_DIGITS.split(name))
    )


def _extract_pptx(data: bytes, limits: ExtractLimits) -> list[str]:
    def body(package: _Package) -> list[str]:
        main = package.main_part("ppt/presentation.xml")
        slides_by_id = {rid: target for kind, target, rid in package.relationships(main) if kind == "slide"}
        # Presentation order is p:sldIdLst, which need not match the part names; name order is the fallback.
        slides = package.ordered_by_id(main, "sldId", slides_by_id) or sorted(slides_by_id.values(), key=_natural)
        if len(slides) > limits.max_pages:
            raise LimitExceeded(f"presentation has {len(slides)} slides, more than the limit {limits.max_pages}")
        pages = []
        for slide in slides:
            texts = [_scan_runs(package.xml_bytes(slide), _NS_A, slide)]
            for kind, target, _ in package.relationships(slide):
                if kind == "notesSlide":  # speaker notes are searchable content too
                    texts.append(_scan_runs(package.xml_bytes(target), _NS_A, target))
            pages.append("\n".join(t.strip("\n") for t in texts if t.strip()))
        return pages

    return _with_package(data, limits, body)


# --------------------------------------------------------------------------------------------------------------------
# SpreadsheetML (XLSX): shared strings + cells, one page per sheet, cells tab-separated, rows on lines


def _body(p: bytes, local: bytes) -> bytes:
    """The content of element ``local`` up to its end tag, never past the start of another ``local`` element.

    The lazy ``(.*?)</x>`` this replaces searched to the end of the part from every unclosed start tag (quadratic);
    this body stops at the next ``<x`` or ``</x``, so each byte is scanned from one start tag at most. Identical on
    valid SpreadsheetML, where these elements never nest."""
    return rb"((?:[^<]++|<(?!/?" + p + local + rb"\b))*+)</" + p + local + b">"


@functools.lru_cache(maxsize=64)
def _sheet_regexes(prefixes: tuple[bytes, ...]) -> tuple[re.Pattern[bytes], ...]:
    p = _prefix_pattern(prefixes)
    string_item = re.compile(b"<" + p + rb"si\b[^<>]*?(?:/>|>" + _body(p, b"si") + b")")
    phonetic = re.compile(b"<" + p + rb"rPh\b" + _body(p, b"rPh"))
    text = re.compile(b"<" + p + rb"t(?:\s[^<>]*)?>([^<]*)</" + p + b"t>")
    cell = re.compile(b"<(?:" + p + rb"c\b([^<>]*?)(?:/>|>" + _body(p, b"c") + b")|(/" + p + b"row>))")
    value = re.compile(b"<" + p + rb"v(?:\s[^<>]*)?>([^<]*)</" + p + b"v>")
    return string_item, phonetic, text, cell, value


_CELL_TYPE = re.compile(rb"""\bt\s*=\s*["'](\w+)["']""")


def _shared_strings(xml: bytes) -> list[bytes]:
    """The workbook's string table, still XML-escaped (sheets decode once, at the end)."""
    prefixes = _prefixes(xml, _NS_S)
    if not prefixes:
        return []
    if b"<!" in xml:
        xml = _strip_special(xml, "shared strings")
    string_item, phonetic, text, _, _ = _sheet_regexes(prefixes)
    strings = []
    for inner in string_item.findall(xml):
        if b"rPh" in inner:  # phonetic guides repeat the reading of East Asian text
            inner = phonetic.sub(b"", inner)
        strings.append(b"".join(text.findall(inner)).replace(b"\t", b" ").replace(b"\n", b" "))
    return strings


def _scan_sheet(xml: bytes, shared: list[bytes], max_bytes: int = DEFAULT_MAX_TEXT_CHARS) -> str:
    """Cell values, tab-separated, one row per line: shared and inline strings, numbers, booleans.

    Shared strings are the one place where output can outgrow input (every cell may name the same long string), so
    the bytes produced are counted and more than ``max_bytes`` raise LimitExceeded before they are joined."""
    prefixes = _prefixes(xml, _NS_S)
    if not prefixes:
        return ""
    if b"<!" in xml:
        xml = _strip_special(xml, "worksheet")
    _, _, text, cell, value = _sheet_regexes(prefixes)
    rows: list[bytes] = []
    row: list[bytes] = []
    produced = 0
    for attrs, inner, row_end in cell.findall(xml):
        if row_end:
            if row:
                rows.append(b"\t".join(row))
                row = []
            continue
        if not inner:
            continue
        type_match = _CELL_TYPE.search(attrs)
        cell_type = type_match.group(1) if type_match else b"n"
        if cell_type == b"inlineStr":
            row.append(b"".join(text.findall(inner)))
            continue
        v = value.search(inner)
        if v is None:
            continue
        raw = v.group(1)
        if cell_type == b"s":
            try:
                string = shared[int(raw)]
            except (ValueError, IndexError):
                continue  # a dangling shared-string index loses one cell, not the sheet
            produced += len(string)
            if produced > max_bytes:
                raise LimitExceeded(f"sheet text exceeds the limit of {max_bytes} characters (repeated shared strings)")
            row.append(string)
        elif cell_type == b"b":
            row.append(b"TRUE" if raw.strip() == b"1" else b"FALSE")
        elif cell_type != b"e":  # numbers, formula strings; error values (#REF!) are not content
            row.append(raw)
    if row:
        rows.append(b"\t".join(row))
    return _decode(b"\n".join(rows))


def _extract_xlsx(data: bytes, limits: ExtractLimits) -> list[str]:
    def body(package: _Package) -> list[str]:
        main = package.main_part("xl/workbook.xml")
        rels = package.relationships(main)
        sheets_by_id = {rid: target for kind, target, rid in rels if kind == "worksheet"}
        sheets = package.ordered_by_id(main, "sheet", sheets_by_id) or sorted(sheets_by_id.values(), key=_natural)
        if len(sheets) > limits.max_pages:
            raise LimitExceeded(f"workbook has {len(sheets)} sheets, more than the limit {limits.max_pages}")
        shared_parts = [target for kind, target, _ in rels if kind == "sharedStrings"]
        shared = _shared_strings(package.xml_bytes(shared_parts[0])) if shared_parts else []
        pages = []
        left = limits.max_text_chars
        for sheet in sheets:
            pages.append(_scan_sheet(package.xml_bytes(sheet), shared, left))
            left -= len(pages[-1])
            if left < 0:
                raise LimitExceeded(f"workbook text exceeds the limit of {limits.max_text_chars} characters")
        return pages

    return _with_package(data, limits, body)


# --------------------------------------------------------------------------------------------------------------------
# Text, Markdown, HTML


def _decode_text(data: bytes) -> str:
    """BOM first, then UTF-8, then Windows-1252 (what most non-UTF-8 text files are), then Latin-1 (never fails)."""
    for bom, encoding in (
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding.removesuffix("-sig"))
            except UnicodeDecodeError as exc:
                raise CorruptDocument(
                    f"text file has a {encoding} byte-order mark but is not valid {encoding}"
                ) from exc
    if b"\x00" in data[:8192]:
        raise CorruptDocument("binary data (NUL bytes) in a text file")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _extract_plain(data: bytes, limits: ExtractLimits) -> list[str]:
    return [_decode_text(data)]


_META_CHARSET = re.compile(rb"""<meta[^<>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# Charsets a page may declare: text encodings browsers and Python share (by Python's canonical codec name). A name
# outside this list (unknown, or a codec that is not a text encoding: rot13, punycode, idna, undefined, zlib) is
# refused, never looked up and run. WHATWG labels Python spells differently are mapped first.
_HTML_CHARSET_ALIASES = {
    "iso-8859-8-i": "iso-8859-8",
    "x-sjis": "shift_jis",
    "x-mac-roman": "mac-roman",
    "unicode": "utf-8",  # a meta prescan can only find ASCII-compatible bytes: WHATWG reads UTF-16 labels as UTF-8
    "utf-16": "utf-8",
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
}
_HTML_CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8",
        "ascii",
        "latin-1",
        *(f"iso-8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)),
        *(f"windows-{n}" for n in range(1250, 1259)),
        "cp866",
        "cp874",
        "koi8-r",
        "koi8-u",
        "mac-roman",
        "mac-cyrillic",
        "shift_jis",
        "cp932",
        "euc-jp",
        "iso-2022-jp",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "big5hkscs",
        "euc-kr",
        "cp949",
    )
)


def _html_charset(label: str) -> str:
    """The Python codec for a declared charset, or CorruptDocument naming it."""
    key = label.strip().lower()
    key = _HTML_CHARSET_ALIASES.get(key, key)
    try:
        codec = codecs.lookup(key).name
    except LookupError:
        codec = ""
    if codec not in _HTML_CHARSETS:
        raise CorruptDocument(f"HTML declares charset {label[:40]!r}, which is not a supported text encoding")
    return codec


_SKIP = frozenset({"script", "style", "template", "noscript", "svg", "math"})
_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "title",
        "tr",
        "ul",
    ]
)
# A start or end tag. Quotes only matter in a value after "=" (a stray quote is an ordinary character), and every
# repetition is possessive, so a tag is matched or refused in one pass to its ">" with no backtracking.
_HTML_TAG = re.compile(r"""</?([A-Za-z][^\t\n\r\f />\x00]*+)((?:[^>"'=]++|=\s*+"[^"]*+"|=\s*+'[^']*+'|[="'])*+)>""")
_HTML_TAG_OPEN = re.compile(r"</?[A-Za-z]")
# script and style hold raw text up to their end tag (as in html.parser and browsers).
_RAW_TEXT_END = {name: re.compile(rf"</{name}[\s/>]", re.IGNORECASE) for name in ("script", "style")}


def _html_text(text: str, max_tags: int = DEFAULT_MAX_HTML_TAGS) -> str:
    """Visible text: script/style/template skipped, block elements become line breaks, cells tab-separated.

    One forward pass over the markup (html.parser rescans the rest of the input from every unterminated tag or
    comment, quadratic, and raises AssertionError on some marked sections). A construct left open at the end of
    the input (tag, comment, raw text, declaration) ends it, as in an HTML5 browser, which drops the open tag or
    comment and everything after it; so nothing is ever scanned twice."""
    out: list[str] = []
    skipping = tags = 0
    position = 0
    length = len(text)
    find = text.find

    def data(chunk: str) -> None:
        if not skipping and chunk:
            out.append(html.unescape(chunk).replace("\t", " "))  # tabs in the output separate table cells only

    while position < length:
        lt = find("<", position)
        if lt < 0:
            data(text[position:])
            break
        data(text[position:lt])
        following = text[lt + 1 : lt + 2]
        if _HTML_TAG_OPEN.match(text, lt):
            tag = _HTML_TAG.match(text, lt)
            if tag is None:
                break  # the input ends inside this tag
            tags += 1
            if tags > max_tags:
                raise LimitExceeded(f"HTML page holds more than {max_tags} tags (MAX_HTML_TAGS)")
            position = tag.end()
            name = tag.group(1).lower()
            if following == "/":
                if name in _SKIP:
                    skipping = max(0, skipping - 1)
                elif name in _BLOCK:
                    out.append("\n")
            elif tag.group(2).rstrip().endswith("/"):
                if name in _BLOCK:
                    out.append("\n")
            else:
                if name in _SKIP:
                    skipping += 1
                elif name in _BLOCK:
                    out.append("\n")
                elif name in ("td", "th"):
                    out.append("\t")
                if name in _RAW_TEXT_END:
                    raw_end = _RAW_TEXT_END[name].search(text, position)
                    if raw_end is None:
                        break  # raw text to the end of the input
                    data(text[position : raw_end.start()])
                    position = raw_end.start()
            continue
        if text.startswith("<!--", lt):
            end, skip = find("-->", lt + 4), 3
        elif text.startswith("<![CDATA[", lt):
            end, skip = find("]]>", lt + 9), 3
        elif following in ("!", "?", "/"):
            end, skip = find(">", lt + 2), 1  # declaration, processing instruction, bogus end tag: ignored
        else:
            data("<")
            position = lt + 1
            continue
        if end < 0:
            break  # the input ends inside this comment or declaration
        position = end + skip
    return "".join(out)


_WHITESPACE = re.compile(r"\s+")
_INLINE_SPACE = re.compile(r"[ \f\v\xa0]+")


def _collapse(run: re.Match[str]) -> str:
    """One whitespace run: a line break if it holds one, else its spaces collapsed (runs matched whole: linear)."""
    space = run.group()
    return "\n" if "\n" in space else _INLINE_SPACE.sub(" ", space)


def _extract_html(data: bytes, limits: ExtractLimits) -> list[str]:
    text = None
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        match = _META_CHARSET.search(data[:4096])
        if match:
            try:
                text = data.decode(_html_charset(match.group(1).decode("ascii")))
            except UnicodeDecodeError:
                text = None  # the declaration is wrong about the bytes: detect as for plain text
    if text is None:
        text = _decode_text(data)
    return [_WHITESPACE.sub(_collapse, _html_text(text, limits.max_html_tags))]


# --------------------------------------------------------------------------------------------------------------------

_EXTRACTORS: dict[str, Callable[[bytes, ExtractLimits], list[str]]] = {
    "pdf": _extract_pdf,
    "docx": _extract_docx,
    "pptx": _extract_pptx,
    "xlsx": _extract_xlsx,
    "html": _extract_html,
    "text": _extract_plain,
}

_FORMATS = {
    "pdf": "pdf",
    **dict.fromkeys(("docx", "docm", "dotx", "dotm"), "docx"),
    **dict.fromkeys(("pptx", "pptm", "potx", "ppsx"), "pptx"),
    **dict.fromkeys(("xlsx", "xlsm", "xltx"), "xlsx"),
    **dict.fromkeys(("html", "htm", "xhtml"), "html"),
    # Markdown is read as plain text: its markup is mostly punctuation that search tokenisers drop anyway.
    **dict.fromkeys(
        [
            "md",
            "markdown",
            "txt",
            "text",
            "csv",
            "tsv",
            "log",
            "json",
            "yaml",
            "yml",
            "toml",
            "ini",
            "xml",
            "rst",
            "tex",
            "py",
            "js",
            "ts",
            "tsx",
            "jsx",
            "java",
            "c",
            "h",
            "cc",
            "cpp",
            "hpp",
            "cs",
            "go",
            "rs",
            "rb",
            "php",
            "swift",
            "kt",
            "sql",
            "sh",
            "css",
            "scss",
        ],
        "text",
    ),
}

__all__ = [
    "CorruptDocument",
    "EncryptedDocument",
    "ExtractLimits",
    "ExtractionError",
    "LimitExceeded",
    "UnsafeDocument",
    "UnsupportedFormat",
    "extract_pages",
    "extract_text",
    "file_format",
]
