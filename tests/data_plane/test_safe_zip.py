"""core.safe_zip against every hostile archive we know of; all inputs are built here, in memory."""

import io
import struct
import zipfile

import pytest
from core.safe_zip import (
    RATIO_CHECK_MIN_BYTES,
    ArchiveLimits,
    UnsafeArchive,
    open_checked,
    parse_xml,
    read_member,
)

LIMITS = ArchiveLimits(
    max_entries=50, max_entry_bytes=8 * 1024 * 1024, max_total_bytes=16 * 1024 * 1024, max_ratio=100, max_depth=4
)


def make_zip(
    entries: dict[str, bytes] | list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buf = io.BytesIO()
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return buf.getvalue()


def patch_central(data: bytes, index: int, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite a field of the index-th central directory record (offsets per APPNOTE 4.3.12)."""
    pos = -1
    for _ in range(index + 1):
        pos = data.index(b"PK\x01\x02", pos + 1)
    out = bytearray(data)
    struct.pack_into(fmt, out, pos + offset, value)
    return bytes(out)


def reasons(data: bytes, limits: ArchiveLimits = LIMITS) -> str:
    with pytest.raises(UnsafeArchive) as err, open_checked(data, limits) as zf:
        for info in zf.infolist():
            read_member(zf, info, limits)
    return err.value.reason


def test_normal_archive_reads_every_member():
    data = make_zip({"word/document.xml": b"<w:document/>", "docProps/app.xml": b"<a/>" * 1000, "empty.txt": b""})
    with open_checked(data, LIMITS) as zf:
        got = {i.filename: read_member(zf, i, LIMITS) for i in zf.infolist()}
    assert got == {"word/document.xml": b"<w:document/>", "docProps/app.xml": b"<a/>" * 1000, "empty.txt": b""}


def test_accepts_path_and_file_object(tmp_path):
    data = make_zip({"a.txt": b"hello"})
    path = tmp_path / "a.zip"
    path.write_bytes(data)
    for source in (str(path), path.open("rb")):
        with open_checked(source, LIMITS) as zf:
            assert read_member(zf, zf.getinfo("a.txt"), LIMITS) == b"hello"


def test_small_repetitive_entries_are_not_treated_as_bombs():
    # 512 KiB of zeros compresses ~1000x but stays under RATIO_CHECK_MIN_BYTES.
    data = make_zip({"styles.xml": b"\0" * (RATIO_CHECK_MIN_BYTES // 2)})
    with open_checked(data, LIMITS) as zf:
        assert len(read_member(zf, zf.infolist()[0], LIMITS)) == RATIO_CHECK_MIN_BYTES // 2


def test_zip_bomb_high_ratio():
    reason = reasons(make_zip({"bomb.xml": b"\0" * (4 * 1024 * 1024)}))
    assert "bomb.xml" in reason and "compression ratio" in reason and "100" in reason


def test_zip_bomb_huge_total():
    # Each entry is incompressible-ish and under the per-entry limit; together they exceed the total.
    entries = [(f"part{i}.bin", bytes(range(256)) * 4096 * 5) for i in range(4)]  # 5 MiB each, ratio low
    limits = ArchiveLimits(
        max_entries=50, max_entry_bytes=8 << 20, max_total_bytes=16 << 20, max_ratio=1000, max_depth=4
    )
    reason = reasons(make_zip(entries, method=zipfile.ZIP_STORED), limits)
    assert "total uncompressed size" in reason and str(16 << 20) in reason and "part3.bin" in reason


def test_entry_over_per_entry_limit():
    reason = reasons(make_zip({"big.bin": b"x" * 2048}), ArchiveLimits(max_entry_bytes=1024))
    assert "big.bin" in reason and "per-entry limit 1024" in reason


def test_too_many_entries():
    reason = reasons(make_zip({f"f{i}.txt": b"x" for i in range(51)}))
    assert "51 entries" in reason and "limit 50" in reason


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../evil.txt", "zip slip"),
        ("docs/../../evil.txt", "zip slip"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "drive letter"),
        ("..\\evil.txt", "backslash"),
        ("a/b/c/d/e/f.txt", "nesting limit 4"),
    ],
)
def test_hostile_paths(name, expected):
    reason = reasons(make_zip([(name, b"x")]))
    assert expected in reason and name[:3] in reason


def test_symlink_entry_rejected():
    info = zipfile.ZipInfo("link")
    info.external_attr = 0o120777 << 16
    info.create_system = 3
    reason = reasons(make_zip([(info, b"/etc/passwd")]))
    assert "'link'" in reason and "symbolic link" in reason


def test_encrypted_entry_rejected():
    data = patch_central(make_zip({"secret.txt": b"x"}), 0, 8, "<H", 0x1)
    assert "secret.txt" in reasons(data) and "encrypted" in reasons(data)


def test_duplicate_entries_rejected():
    with pytest.warns(UserWarning):
        data = make_zip([("a.txt", b"one"), ("a.txt", b"two")])
    assert "duplicate" in reasons(data)


def test_overlapping_entries_rejected():
    data = make_zip([("a.txt", b"a" * 100), ("b.txt", b"b" * 100)], method=zipfile.ZIP_STORED)
    data = patch_central(data, 1, 42, "<I", 0)  # b.txt's local header offset -> a.txt's
    assert "overlaps" in reasons(data)


def test_nested_zip_is_not_expanded_and_inner_is_checked_on_its_own():
    inner = make_zip({"bomb.xml": b"\0" * (4 * 1024 * 1024)})
    outer = make_zip({"inner.zip": inner}, method=zipfile.ZIP_STORED)
    with open_checked(outer, LIMITS) as zf:
        assert [i.filename for i in zf.infolist()] == ["inner.zip"]
        body = read_member(zf, zf.getinfo("inner.zip"), LIMITS)
    assert body == inner
    assert "compression ratio" in reasons(body)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"this is not a zip at all", "not a valid zip"),
        (b"PK\x03\x04" + b"\0" * 100, "not a valid zip"),
    ],
)
def test_garbage_archives(data, expected):
    assert expected in reasons(data)


def test_truncated_archive():
    data = make_zip({"word/document.xml": b"<doc>" + b"text " * 5000 + b"</doc>"})
    assert "not a valid zip" in reasons(data[: len(data) // 2])


def test_corrupt_member_data():
    payload = bytes(range(256)) * 64
    data = bytearray(make_zip({"a.bin": payload}, method=zipfile.ZIP_STORED))
    data[40:60] = b"\xff" * 20  # inside a.bin's stored bytes
    reason = reasons(bytes(data))
    assert "a.bin" in reason and "corrupt" in reason


def test_lying_header_cannot_exceed_declared_size():
    # A 4 MiB entry whose central directory claims 100 bytes (ratio then looks harmless): reading stops at the cap.
    payload = b"A" * (4 * 1024 * 1024)
    data = patch_central(make_zip({"liar.xml": payload}), 0, 24, "<I", 100)
    with open_checked(data, LIMITS) as zf:
        info = zf.getinfo("liar.xml")
        assert info.file_size == 100
        with pytest.raises(UnsafeArchive) as err:
            read_member(zf, info, LIMITS)
    assert "liar.xml" in err.value.reason


def test_lying_header_beyond_limit_is_capped():
    # Declared size larger than the real data: the stream ends early and the mismatch is reported.
    data = patch_central(make_zip({"short.txt": b"abc"}, method=zipfile.ZIP_STORED), 0, 24, "<I", 10)
    reason = reasons(data)
    assert "short.txt" in reason


def test_parse_xml_accepts_plain_xml():
    root = parse_xml(b'<?xml version="1.0"?><w:document xmlns:w="urn:w"><w:t>hi</w:t></w:document>')
    assert root.tag == "{urn:w}document" and root[0].text == "hi"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, b'<!DOCTYPE r SYSTEM "http://example.com/r.dtd"><r/>'])
def test_parse_xml_rejects_dtd_and_entities(data):
    with pytest.raises(UnsafeArchive) as err:
        parse_xml(data, "word/document.xml")
    assert "word/document.xml" in err.value.reason and "forbidden" in err.value.reason


def test_parse_xml_malformed():
    with pytest.raises(UnsafeArchive) as err:
        parse_xml(b"<a><b></a>", "word/styles.xml")
    assert "word/styles.xml" in err.value.reason and "malformed" in err.value.reason


def test_limits_reject_nonsense():
    with pytest.raises(ValueError, match="max_ratio"):
        ArchiveLimits(max_ratio=0)


def test_limits_from_env(monkeypatch):
    pytest.importorskip("core.config", reason="core.config is written by the core helper")
    monkeypatch.setenv("MAX_ARCHIVE_ENTRIES", "7")
    monkeypatch.setenv("MAX_COMPRESSION_RATIO", "20")
    monkeypatch.delenv("MAX_ENTRY_BYTES", raising=False)
    limits = ArchiveLimits.from_env()
    assert limits.max_entries == 7 and limits.max_ratio == 20
    assert limits.max_entry_bytes == ArchiveLimits().max_entry_bytes
    monkeypatch.setenv("MAX_TOTAL_BYTES", "lots")
    with pytest.raises(Exception, match="MAX_TOTAL_BYTES"):
        ArchiveLimits.from_env()
    monkeypatch.setenv("MAX_TOTAL_BYTES", "0")
    with pytest.raises(ValueError, match="MAX_TOTAL_BYTES"):
        ArchiveLimits.from_env()


# ---------------------------------------------------------------------------------------------------------------------
# Classes from reference/hostile-inputs.md and the archive list of issue 11


def test_central_directory_bomb_is_refused_before_zipfile_parses_it(monkeypatch):
    from tests.data_plane.documents import directory_bomb

    def never(*args, **kwargs):
        raise AssertionError("zipfile.ZipFile must not parse a directory over the limit")

    for data in (directory_bomb(500), directory_bomb(500, declared=3)):  # honest count, and a count that lies
        monkeypatch.setattr("core.safe_zip.zipfile.ZipFile", never)
        with pytest.raises(UnsafeArchive) as err:
            open_checked(data, LIMITS)
        assert "entries" in err.value.reason and "50" in err.value.reason
        monkeypatch.undo()


def test_central_directory_walk_is_bounded_by_the_limit_not_the_archive():
    """The walk reads max_entries + 1 record headers whatever the archive holds: 4x the records, the same reads."""
    from tests.data_plane.documents import directory_bomb

    reads = []

    class Counting(io.BytesIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    for records in (2_000, 8_000):
        reads.clear()
        with pytest.raises(UnsafeArchive):
            open_checked(Counting(directory_bomb(records, declared=1)), LIMITS)
        assert sum(1 for size in reads if size == 46) == LIMITS.max_entries + 1


def test_tens_of_thousands_of_entries_are_refused():
    from tests.data_plane.documents import directory_bomb

    assert "20000 entries" in reasons(directory_bomb(20_000), ArchiveLimits())


@pytest.mark.parametrize(
    ("old", "new", "utf8", "expected"),
    [(b"aXb.txt", b"a\x00b.txt", False, "NUL"), (b"ab.txt", b"\xff\xfe.txt", True, "not valid UTF-8")],
)
def test_names_with_nul_or_invalid_utf8_are_refused(old, new, utf8, expected):
    from tests.data_plane.documents import rename_member

    data = rename_member(make_zip({old.decode(): b"x"}), old, new, utf8_flag=utf8)
    assert expected in reasons(data)


def test_long_member_names_are_refused():
    reason = reasons(make_zip({"d/" + "n" * 3000 + ".xml": b"x"}))
    assert "3006 bytes" in reason and "1024" in reason
    assert "bytes" in reasons(make_zip({"\u00e9" * 600: b"x"}))  # 600 characters, 1200 bytes


def test_declared_size_that_lies_is_enforced_while_streaming(monkeypatch):
    """2 MiB that declare 1000 bytes: the stream stops at the declared size (then fails its CRC); never more."""
    from tests.data_plane.documents import lying_size_zip

    data = lying_size_zip("liar.bin", b"\0" * (2 * 1024 * 1024), declared=1000)
    inflated = []
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        chunk = real_read(self, n)
        inflated.append(len(chunk))
        return chunk

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    with open_checked(data, LIMITS) as zf, pytest.raises(UnsafeArchive) as err:
        read_member(zf, zf.getinfo("liar.bin"), LIMITS)
    assert "liar.bin" in err.value.reason and "corrupt" in err.value.reason
    assert sum(inflated) <= 1000


@pytest.mark.parametrize("encoding", ["x", "bogus", "rot13", "undefined", "idna", "utf-7", "utf32", "zlib", "hex"])
def test_xml_declaration_naming_an_unusable_encoding_is_refused(encoding):
    with pytest.raises(UnsafeArchive) as err:
        parse_xml(f'<?xml version="1.0" encoding="{encoding}"?><a/>'.encode(), "ppt/presentation.xml")
    assert "ppt/presentation.xml" in err.value.reason and "encoding" in err.value.reason


@pytest.mark.parametrize("encoding", ["UTF-8", "utf-16", "ISO-8859-1", "us-ascii"])
def test_xml_declarations_in_the_known_list_are_read(encoding):
    codec = "utf-16" if encoding == "utf-16" else "latin-1"
    assert parse_xml(f'<?xml version="1.0" encoding="{encoding}"?><a>ok</a>'.encode(codec)).text == "ok"


def test_deep_nesting_is_refused_before_memory_grows():
    from core.safe_zip import MAX_XML_DEPTH, scan_xml

    from tests.data_plane.documents import nested_xml

    for depth in (MAX_XML_DEPTH + 1, 4 * MAX_XML_DEPTH):
        with pytest.raises(UnsafeArchive, match=f"nested deeper than the limit {MAX_XML_DEPTH}"):
            scan_xml(nested_xml(depth), "word/document.xml")
    assert scan_xml(nested_xml(MAX_XML_DEPTH - 2)) == MAX_XML_DEPTH - 1


def test_trees_are_bounded_by_an_element_count():
    with pytest.raises(UnsafeArchive, match="more than 100 elements"):
        parse_xml(b"<r>" + b"<x/>" * 150 + b"</r>", "xl/workbook.xml", max_elements=100)
