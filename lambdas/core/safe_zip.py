"""Opening untrusted ZIP archives (DOCX/PPTX/XLSX parts, bulk-upload zips) without letting them hurt us.

The system we replace unzipped whatever it was given, in memory. Here every archive is judged from its central
directory *before* a byte is decompressed (entry count, declared sizes, compression ratio, paths, symlinks,
encryption, overlapping entries), and members are then read with a hard cap, so an archive whose headers lie
still cannot make us hold more than the limit. Failures raise `UnsafeArchive` whose `reason` names the entry and
the limit, so callers can record it where users see it.

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
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _defused_fromstring

# Defaults used when the environment variable is absent (names are the data-plane contract's).
DEFAULT_MAX_ENTRIES = 10_000  # MAX_ARCHIVE_ENTRIES: a DOCX has tens of parts; a bulk zip a few thousand files.
DEFAULT_MAX_ENTRY_BYTES = 100 * 1024 * 1024  # MAX_ENTRY_BYTES: one member, read into memory by callers.
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # MAX_TOTAL_BYTES: all members together, as declared.
DEFAULT_MAX_RATIO = 100  # MAX_COMPRESSION_RATIO: uncompressed/compressed per entry.
DEFAULT_MAX_DEPTH = 16  # MAX_NESTING_DEPTH: folder levels in a member path.

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
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchive(f"not a valid zip archive: {exc}") from exc
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


def parse_xml(data: bytes, name: str = "<xml>") -> Element:
    """Parse an XML part with no DTD, no entity expansion and no external entities (billion laughs, XXE).

    Raises UnsafeArchive naming the part for forbidden constructs and for malformed XML.
    """
    try:
        return _defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeArchive(f"XML part {name!r}: forbidden construct ({type(exc).__name__})") from exc
    except ParseError as exc:
        raise UnsafeArchive(f"XML part {name!r}: malformed XML ({exc})") from exc
