"""Opening untrusted ZIP archives (DOCX/PPTX/XLSX parts, bulk-upload zips) without letting them hurt us.

The system we replace unzipped whatever it was given, in memory. Here every archive is judged from its central
directory *before* a byte is decompressed (entry count, declared sizes, compression ratio, paths, symlinks,
encryption, overlapping entries), and members are then read with a hard cap, so an archive whose headers lie
still cannot make us hold more than the limit. Failures raise `UnsafeArchive` whose `reason` names the entry and
the limit, so callers can record it where users see it.

The central directory itself is counted before ``zipfile`` parses it (``zipfile.ZipFile()`` builds one ZipInfo per
record, ~0.5 KB each, so a 98 MB archive of 2M records would cost a gigabyte before any check could run). XML parts
are parsed by expat in one streaming pass with no DTD, no entities, a nesting-depth limit and (for trees) an
element-count limit, and only in a known list of text encodings.

Usage::

    limits = ArchiveLimits.from_env()
    with open_checked(data_or_file, limits) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                body = read_member(zf, info, limits)
"""

from __future__ import annotations

import io
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

# Defaults used when the environment variable is absent (names are the data-plane contract's).
DEFAULT_MAX_ENTRIES = 10_000  # MAX_ARCHIVE_ENTRIES: a DOCX has tens of parts; a bulk zip a few thousand files.
DEFAULT_MAX_ENTRY_BYTES = 100 * 1024 * 1024  # MAX_ENTRY_BYTES: one member, read into memory by callers.
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # MAX_TOTAL_BYTES: all members together, as declared.
DEFAULT_MAX_RATIO = 100  # MAX_COMPRESSION_RATIO: uncompressed/compressed per entry.
DEFAULT_MAX_DEPTH = 16  # MAX_NESTING_DEPTH: folder levels in a member path.
# A member name longer than this (UTF-8 bytes) is refused: names become S3 keys, database keys and index entries
# (PostgreSQL's btree refuses entries above ~2.7 KB), and no real document or folder needs more.
MAX_NAME_BYTES = 1024
# XML parts: nesting deeper than this is refused (Word nests a table in ~4 levels, so 1024 allows ~250 nested
# tables); trees built by parse_xml hold at most MAX_XML_ELEMENTS elements (~300 bytes each in memory).
MAX_XML_DEPTH = 1024
MAX_XML_ELEMENTS = 200_000
# Encodings an XML declaration may name (compared lower-case): what expat decodes natively. OOXML parts are UTF-8 or
# UTF-16 by specification; anything else (rot13, zlib, idna, utf-7, multi-byte legacy sets) is refused.
XML_ENCODINGS = frozenset({"utf-8", "utf8", "utf-16", "utf16", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"})

# Entries smaller than this are exempt from the ratio check: a few KB of repetitive XML legitimately compresses
# more than 100x, and a small entry cannot be a bomb because the size limits still apply to it.
RATIO_CHECK_MIN_BYTES = 1024 * 1024

# Compression methods zipfile can stream; anything else (deflate64, PPMd, ...) is rejected up front.
_SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_CHUNK = 64 * 1024
_LOCAL_HEADER_BYTES = 30  # fixed part of a local file header; name/extra come on top.


class UnsafeArchive(Exception):
    """An archive (or XML part) we refuse to process; `reason` is safe to show to the user and to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits one archive must respect; `max_depth` bounds folder nesting of member paths."""

    max_entries: int = DEFAULT_MAX_ENTRIES
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_ratio: int = DEFAULT_MAX_RATIO
    max_depth: int = DEFAULT_MAX_DEPTH

    def __post_init__(self) -> None:
        for field_name in ("max_entries", "max_entry_bytes", "max_total_bytes", "max_ratio", "max_depth"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ArchiveLimits.{field_name} must be a positive integer, got {value!r}")

    @classmethod
    def from_env(cls, **defaults: int) -> ArchiveLimits:
        """Limits from MAX_ARCHIVE_ENTRIES, MAX_ENTRY_BYTES, MAX_TOTAL_BYTES, MAX_COMPRESSION_RATIO, MAX_NESTING_DEPTH.

        ``defaults`` (field names) replace the module defaults for an absent variable, so a function with tighter
        needs (DOCX parts vs bulk zips) keeps one code path.
        """
        # Imported here so this module stays usable (and testable) on its own.
        from core.config import env_int

        base = cls(**defaults)
        return cls(
            max_entries=env_int("MAX_ARCHIVE_ENTRIES", base.max_entries, minimum=1),
            max_entry_bytes=env_int("MAX_ENTRY_BYTES", base.max_entry_bytes, minimum=1),
            max_total_bytes=env_int("MAX_TOTAL_BYTES", base.max_total_bytes, minimum=1),
            max_ratio=env_int("MAX_COMPRESSION_RATIO", base.max_ratio, minimum=1),
            max_depth=env_int("MAX_NESTING_DEPTH", base.max_depth, minimum=1),
        )


def _check_name(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    # zipfile cuts names at NUL and (on Windows) rewrites separators; judge the raw name too.
    for name in {info.filename, info.orig_filename}:
        shown = name[:200]
        size = len(name.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            raise UnsafeArchive(f"entry {shown!r}: name of {size} bytes exceeds the limit {MAX_NAME_BYTES}")
        if "\x00" in name:
            raise UnsafeArchive(f"entry {shown!r}: NUL byte in path")
        if "\\" in name:
            raise UnsafeArchive(f"entry {shown!r}: backslash in path")
        if name.startswith("/"):
            raise UnsafeArchive(f"entry {shown!r}: absolute path")
        if _DRIVE.match(name):
            raise UnsafeArchive(f"entry {shown!r}: drive letter in path")
        parts = name.rstrip("/").split("/")
        if any(part == ".." for part in parts):
            raise UnsafeArchive(f"entry {shown!r}: '..' in path (zip slip)")
        if not name.strip("/"):
            raise UnsafeArchive(f"entry {shown!r}: empty path")
        folders = len(parts) - 1
        if folders > limits.max_depth:
            raise UnsafeArchive(f"entry {shown!r}: {folders} folder levels exceed the nesting limit {limits.max_depth}")


def _check_entry(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    _check_name(info, limits)
    name = info.filename[:200]
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchive(f"entry {name!r}: symbolic link")
    if info.flag_bits & 0x1:
        raise UnsafeArchive(f"entry {name!r}: encrypted")
    if info.compress_type not in _SUPPORTED_METHODS:
        raise UnsafeArchive(f"entry {name!r}: unsupported compression method {info.compress_type}")
    if info.file_size > limits.max_entry_bytes:
        raise UnsafeArchive(
            f"entry {name!r}: {info.file_size} bytes uncompressed exceed the per-entry limit {limits.max_entry_bytes}"
        )
    if info.file_size >= RATIO_CHECK_MIN_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise UnsafeArchive(
                f"entry {name!r}: compression ratio {ratio:.0f} exceeds the limit {limits.max_ratio} (zip bomb)"
            )


def _check_overlap(infos: list[zipfile.ZipInfo]) -> None:
    """Overlapping entries are how non-recursive zip bombs reuse one compressed blob many times."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for current, following in zip(ordered, ordered[1:], strict=False):
        end = current.header_offset + _LOCAL_HEADER_BYTES + current.compress_size
        if end > following.header_offset:
            raise UnsafeArchive(f"entry {following.filename[:200]!r}: overlaps entry {current.filename[:200]!r}")


ArchiveSource = bytes | bytearray | memoryview | str | IO[bytes]

_zipfile: Any = zipfile  # its end-record helpers are private; using them keeps our view of the directory its own
_CENTRAL_RECORD = struct.Struct(_zipfile.structCentralDir)


def _central_directory_start(endrec: list[Any]) -> int:
    """Where ZipFile will start reading the central directory (the same computation, per Python version)."""
    if hasattr(_zipfile, "_handle_prepended_data"):
        offset_cd, concat = _zipfile._handle_prepended_data(endrec)
        return int(offset_cd + concat)
    concat = endrec[_zipfile._ECD_LOCATION] - endrec[_zipfile._ECD_SIZE] - endrec[_zipfile._ECD_OFFSET]
    if endrec[_zipfile._ECD_SIGNATURE] == _zipfile.stringEndArchive64:
        concat -= _zipfile.sizeEndCentDir64 + _zipfile.sizeEndCentDir64Locator
    return int(endrec[_zipfile._ECD_OFFSET] + concat)


def _check_central_directory(fp: IO[bytes], limits: ArchiveLimits) -> None:
    """Count the central-directory records before ZipFile parses them, reading only their fixed headers.

    The end record's entry count can lie (ZipFile reads records until the directory's *size* is used up), so the
    records are walked exactly as ZipFile will walk them, stopping at ``max_entries + 1``: constant memory, and
    time bounded by the limit rather than by the archive.
    """
    try:
        endrec = _zipfile._EndRecData(fp)
    except (OSError, zipfile.BadZipFile, struct.error, ValueError):
        return  # ZipFile reports it with its own message
    if not endrec:
        return
    declared = int(endrec[_zipfile._ECD_ENTRIES_TOTAL])
    if declared > limits.max_entries:
        raise UnsafeArchive(f"archive has {declared} entries, more than the limit {limits.max_entries}")
    size_cd = int(endrec[_zipfile._ECD_SIZE])
    start = _central_directory_start(endrec)
    if start < 0:
        return  # ZipFile refuses a negative directory offset
    fp.seek(start)
    total = count = 0
    while total < size_cd:
        header = fp.read(_CENTRAL_RECORD.size)
        if len(header) != _CENTRAL_RECORD.size or header[:4] != _zipfile.stringCentralDir:
            # ZipFile reads the same bytes and fails on them; refusing here keeps the bound if our views differ.
            raise UnsafeArchive("not a valid zip archive: corrupt central directory")
        fields = _CENTRAL_RECORD.unpack(header)
        extra = fields[12] + fields[13] + fields[14]  # name, extra field, comment lengths
        count += 1
        if count > limits.max_entries:
            raise UnsafeArchive(
                f"archive has more than {limits.max_entries} entries (the limit) in its central directory"
            )
        total += _CENTRAL_RECORD.size + extra
        fp.seek(extra, io.SEEK_CUR)


def open_checked(file_or_bytes: ArchiveSource, limits: ArchiveLimits) -> zipfile.ZipFile:
    """Open an archive and validate every entry from the central directory; nothing is decompressed yet.

    Accepts bytes, a path, or a seekable binary file. The caller closes the returned ZipFile (it is a context
    manager). Raises UnsafeArchive for corrupt or hostile archives.
    """
    source: Any = file_or_bytes
    if isinstance(file_or_bytes, bytes | bytearray | memoryview):
        if len(file_or_bytes) == 0:
            raise UnsafeArchive("archive is empty (0 bytes)")
        source = io.BytesIO(bytes(file_or_bytes))
    if isinstance(source, str):
        with open(source, "rb") as fp:
            _check_central_directory(fp, limits)
    else:
        position = source.tell()
        _check_central_directory(source, limits)
        source.seek(position)
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchive(f"not a valid zip archive: {exc}") from exc
    except UnicodeDecodeError as exc:  # a name flagged UTF-8 that is not
        raise UnsafeArchive(f"not a valid zip archive: a member name is not valid UTF-8 ({exc.reason})") from exc
    except (zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError, OSError) as exc:
        raise UnsafeArchive(f"unreadable zip archive: {exc}") from exc
    try:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise UnsafeArchive(f"archive has {len(infos)} entries, more than the limit {limits.max_entries}")
        seen: set[str] = set()
        total = 0
        for info in infos:
            _check_entry(info, limits)
            if info.filename in seen:
                raise UnsafeArchive(f"entry {info.filename[:200]!r}: duplicate path")
            seen.add(info.filename)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise UnsafeArchive(
                    f"entry {info.filename[:200]!r}: total uncompressed size exceeds the limit {limits.max_total_bytes}"
                )
        _check_overlap(infos)
    except BaseException:
        zf.close()
        raise
    return zf


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits) -> bytes:
    """Read one member, streaming, and stop as soon as it passes its declared size or the per-entry limit.

    Because every read is capped by the declared size (and zipfile checks the CRC at the end) and open_checked
    bounded the sum of declared sizes, reading all members can never exceed `limits.max_total_bytes`.
    """
    name = info.filename[:200]
    cap = min(info.file_size, limits.max_entry_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        with zf.open(info) as stream:
            while True:
                chunk = stream.read(min(_READ_CHUNK, cap + 1 - size))
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise UnsafeArchive(f"entry {name!r}: more data than its declared size {info.file_size} bytes")
                chunks.append(chunk)
    except UnsafeArchive:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: zipfile's "encrypted, password required"; BadZipFile: CRC mismatch / bad local header.
        raise UnsafeArchive(f"entry {name!r}: corrupt data ({exc})") from exc
    except Exception as exc:  # lzma/bz2 raise their own error types on corrupt streams
        raise UnsafeArchive(f"entry {name!r}: corrupt data ({type(exc).__name__}: {exc})") from exc
    if size != info.file_size:
        raise UnsafeArchive(f"entry {name!r}: {size} bytes read, header declares {info.file_size}")
    return b"".join(chunks)


def _xml_encoding_check(data: bytes, name: str) -> None:
    """Refuse an XML declaration naming an encoding outside XML_ENCODINGS before expat looks it up."""
    head = data[:1024]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:2] in (b"<\x00", b"\x00<"):
        codec = "utf-16-be" if head.startswith(b"\xfe\xff") or head[:1] == b"\x00" else "utf-16-le"
        head = head.decode(codec, "ignore").encode("ascii", "ignore")
    match = _XML_DECLARED_ENCODING.match(head.removeprefix(b"\xef\xbb\xbf"))
    if match is None:
        return
    declared = match.group(1).decode("ascii", "replace").lower()
    if declared not in XML_ENCODINGS:
        raise UnsafeArchive(f"XML part {name!r}: unsupported encoding {declared[:40]!r} in its XML declaration")


_XML_DECLARED_ENCODING = re.compile(rb"""<\?xml\s[^<>]{0,200}?encoding\s*=\s*["']([^"'<>]{0,64})["']""")


def _forbid(name: str, construct: str) -> Callable[..., None]:
    def refuse(*_: Any) -> None:
        raise UnsafeArchive(f"XML part {name!r}: forbidden construct ({construct})")

    return refuse


def scan_xml(
    data: bytes,
    name: str = "<xml>",
    *,
    on_start: Callable[[str, dict[str, str]], None] | None = None,
    on_end: Callable[[str], None] | None = None,
    on_text: Callable[[str], None] | None = None,
    max_depth: int = MAX_XML_DEPTH,
    max_elements: int | None = None,
) -> int:
    """Check one XML part in a single streaming expat pass and return its element count; nothing is kept.

    No DTD (so no entity of any kind: billion laughs, XXE), nesting at most ``max_depth``, at most ``max_elements``
    elements when given, and only the encodings of XML_ENCODINGS. Element names are ``uri}local`` (expat's
    namespace processing, as in ElementTree without the leading brace). Raises UnsafeArchive naming the part.
    """
    _xml_encoding_check(data, name)
    parser = expat.ParserCreate(namespace_separator="}")
    depth = 0
    elements = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth, elements
        depth += 1
        elements += 1
        if depth > max_depth:
            raise UnsafeArchive(f"XML part {name!r}: elements nested deeper than the limit {max_depth}")
        if max_elements is not None and elements > max_elements:
            raise UnsafeArchive(f"XML part {name!r}: more than {max_elements} elements (the limit)")
        if on_start is not None:
            on_start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        if on_end is not None:
            on_end(tag)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    if on_text is not None:
        parser.CharacterDataHandler = on_text
    parser.StartDoctypeDeclHandler = _forbid(name, "DTD")
    parser.EntityDeclHandler = _forbid(name, "entity declaration")
    parser.UnparsedEntityDeclHandler = _forbid(name, "entity declaration")
    parser.ExternalEntityRefHandler = _forbid(name, "external entity")  # type: ignore[assignment]
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise UnsafeArchive(f"XML part {name!r}: malformed XML ({exc})") from exc
    except (LookupError, UnicodeError, ValueError) as exc:  # an encoding expat could not use
        raise UnsafeArchive(f"XML part {name!r}: unsupported encoding ({type(exc).__name__}: {exc})") from exc
    return elements


def parse_xml(data: bytes, name: str = "<xml>", *, max_elements: int = MAX_XML_ELEMENTS) -> Element:
    """Parse an XML part into a tree with scan_xml's guarantees and at most ``max_elements`` elements.

    Tags are ElementTree's ``{uri}local``. Raises UnsafeArchive naming the part for forbidden constructs, limits,
    unsupported encodings and malformed XML.
    """
    builder = TreeBuilder()

    def qualified(tag: str) -> str:
        return "{" + tag if "}" in tag else tag

    def start(tag: str, attrs: dict[str, str]) -> None:
        builder.start(qualified(tag), {qualified(key): value for key, value in attrs.items()})

    def end(tag: str) -> None:
        builder.end(qualified(tag))

    scan_xml(
        data,
        name,
        on_start=start,
        on_end=end,
        on_text=builder.data,
        max_elements=max_elements,
    )
    return builder.close()
