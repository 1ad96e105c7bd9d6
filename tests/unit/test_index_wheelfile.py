"""inspect_wheel's quick paths answer as the plain ones do: file names accepted and
refused as packaging's parse_wheel_filename accepts and refuses them (same messages, same
project, version, build and tags), METADATA's headers read as the line-by-line reading
reads them, a member name in cp437 or UTF-8 read as zipfile reads it."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from wheelhouse.index.wheelfile import WheelRefused, inspect_wheel, read_headers

NAMES = [
    "foo-1.0-py3-none-any.whl",
    "Foo_Bar-01.00-py2.py3-none-any.whl",
    "foo.bar-1.0+local.7-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "foo-1!2.0rc1.post2.dev3-py3-none-any.whl",
    "foo-1.0-7build-py3-none-any.whl",
    "foo-1.0-PY3-NONE-ANY.whl",
    "f\u00e9e-1.0-py3-none-any.whl",  # \w is Unicode: a valid escaped name
    "foo-1.0_post1-py3-none-any.whl",
    # refused: each with packaging's own message
    "foo__bar-1.0-py3-none-any.whl",
    "foo bar-1.0-py3-none-any.whl",
    "-1.0-py3-none-any.whl",
    "foo-bad-py3-none-any.whl",
    "foo-v1.0-py3-none-any.whl",
    "foo-1.0-py3-none.whl",
    "foo-1.0-3py-none-any.whl",
    "foo-1.0-py3..py2-none-any.whl",
    "foo-1.0-py3-none-.whl",
    "foo-1.0-x-py3-none-any.whl",
    "foo-1.0-py3-none-any.zip",
    "foo-1.0-1-2-py3-none-any.whl",
    "foo-1.0-\u0661py-none-any.whl",
]


def _wheel(path: Path, name: str, version: str, member_names: list[str] | None = None) -> None:
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nText.\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in member_names or []:
            zf.writestr(member, b"x" * 40)
        zf.writestr(f"{name}-{version}.dist-info/METADATA", metadata)


@pytest.mark.parametrize("filename", NAMES)
def test_file_names_are_read_as_packaging_reads_them(tmp_path: Path, filename: str) -> None:
    stem = filename[:-4].split("-")
    path = tmp_path / "upload.tmp"
    _wheel(path, stem[0] or "x", stem[1] if len(stem) > 1 else "1.0")
    try:
        project, version, build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        with pytest.raises(WheelRefused) as refused:
            inspect_wheel(path, filename=filename)
        assert refused.value.message == f"is not a valid wheel file name ({exc})"
        return
    info = inspect_wheel(path, filename=filename)
    assert (info.project, info.version, info.build, info.tags) == (project, version, build, tags)
    assert str(info.version) == str(version)


@pytest.mark.parametrize(
    ("spelled", "accepted"),
    [("1.0", True), ("1.0.0", True), ("01.0", True), ("1.1", False), ("bogus", False)],
)
def test_metadata_version_is_the_file_names_by_pep_440(
    tmp_path: Path, spelled: str, accepted: bool
) -> None:
    """METADATA spelling the version as the file name does is not parsed again; spelled
    otherwise, it is compared as a version."""
    path = tmp_path / "foo-1.0-py3-none-any.whl"
    _wheel(path, "foo", spelled)
    if accepted:
        assert str(inspect_wheel(path).version) == "1.0"
        return
    with pytest.raises(WheelRefused) as refused:
        inspect_wheel(path)
    assert refused.value.message == (
        f"its file name says foo 1.0 but its METADATA says Name: foo, Version: {spelled}"
    )


@pytest.mark.parametrize(
    ("metadata", "headers"),
    [
        (b"Name: a\nVersion: 1\n\nName: b\n", {"Name": "a", "Version": "1"}),
        (
            b"NAME:  a \nClassifier: x\n  more\nrequires-python : >=3\n\t,<4\nVersion:1",
            {"Name": "a", "Requires-Python": ">=3 ,<4", "Version": "1"},
        ),
        # all three read: later lines change nothing, continuation lines of the last do
        (
            b"Name: a\nVersion: 1\nRequires-Python: >=3\n more\nName: b\nVersion: 2\n x",
            {"Name": "a", "Version": "1", "Requires-Python": ">=3 more"},
        ),
        # a key's leading whitespace other than space and tab is stripped: \x1f, NBSP
        (
            "\x1fName: a\n\u00a0Version: 1\nRequires-Python: 3".encode(),
            {"Name": "a", "Version": "1", "Requires-Python": "3"},
        ),
        # a line of blanks ends the headers; \r\n and \x0c split lines too
        (b"Name: a\r\n \r\nVersion: 1\n", {"Name": "a"}),
        (b"Name: a\x0cVersion: 1\n", {"Name": "a", "Version": "1"}),
        (b"Name a\n more\nVersion: 1\n", {"Version": "1"}),
        (b"Summary: x\n Name: no\nVersion: 1\n", {"Version": "1"}),
        (b"Name: \xff\nVersion: \xc3\xa9\n", {"Name": "\ufffd", "Version": "\u00e9"}),
    ],
)
def test_metadata_headers(metadata: bytes, headers: dict[str, str]) -> None:
    assert read_headers(metadata) == headers


def _rename_member(data: bytes, old: bytes, new: bytes, *, utf8: bool) -> bytes:
    """The zip with member `old` named `new` (as long), its UTF-8 flag set or cleared."""
    out = bytearray(data)
    for sig, flags_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = out.find(sig)
        while at >= 0:
            if out[at + name_at : at + name_at + len(old)] == old:
                out[at + name_at : at + name_at + len(old)] = new
                bits = int.from_bytes(out[at + flags_at : at + flags_at + 2], "little")
                bits = bits | 0x800 if utf8 else bits & ~0x800
                out[at + flags_at : at + flags_at + 2] = bits.to_bytes(2, "little")
            at = out.find(sig, at + 4)
    return bytes(out)


@pytest.mark.parametrize(
    ("raw", "utf8", "name"),
    [
        ("donn\u00e9es".encode(), True, "donn\u00e9es"),
        # not valid UTF-8: cp437 (0x82 is \u00e9 there)
        (b"donn\x82\x82es", False, "donn\u00e9\u00e9es"),
    ],
)
def test_non_ascii_member_names_are_read_as_zipfile_reads_them(
    tmp_path: Path, raw: bytes, utf8: bool, name: str
) -> None:
    """A member name flagged UTF-8 is UTF-8; unflagged, it is cp437 (zipfile reads it so):
    the quick reader's ASCII shortcut changes neither."""
    path = tmp_path / "foo-1.0-py3-none-any.whl"
    _wheel(path, "foo", "1.0", ["foo/donn\u00e9es"])
    data = _rename_member(path.read_bytes(), "foo/donn\u00e9es".encode(), b"foo/" + raw, utf8=utf8)
    path.write_bytes(data)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == f"foo/{name}"
        metadata = zf.read(names[1])
    assert inspect_wheel(path).metadata == metadata


def test_an_unsafe_non_ascii_member_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foo-1.0-py3-none-any.whl"
    _wheel(path, "foo", "1.0", ["foo/../../\u00e9t\u00e9.pth"])
    with pytest.raises(WheelRefused, match="unsafe member"):
        inspect_wheel(path)


def test_a_duplicate_member_name_goes_to_zipfiles_path(tmp_path: Path) -> None:
    """Two members of one name: not read quickly; zipfile's path reads the wheel."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("foo/a.py", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("foo/a.py", b"2")
        zf.writestr("foo-1.0.dist-info/METADATA", "Name: foo\nVersion: 1.0\n")
    path = tmp_path / "foo-1.0-py3-none-any.whl"
    path.write_bytes(buf.getvalue())
    assert inspect_wheel(path).metadata == b"Name: foo\nVersion: 1.0\n"


def test_a_clean_small_wheel_is_read_without_zipfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick path needs none of zipfile (its import, with bz2 and lzma, is some 3 ms
    of an incremental index run); a damaged wheel still gets zipfile's answer."""
    clean, damaged = tmp_path / "foo-1.0-py3-none-any.whl", tmp_path / "bar-1.0-py3-none-any.whl"
    _wheel(clean, "foo", "1.0", ["foo/__init__.py"])
    damaged.write_bytes(clean.read_bytes()[:-30])
    monkeypatch.setitem(sys.modules, "zipfile", None)  # (an import of it raises)
    assert inspect_wheel(clean).metadata.startswith(b"Metadata-Version: 2.1\nName: foo")
    with pytest.raises(ImportError):
        inspect_wheel(damaged)
    monkeypatch.undo()
    with pytest.raises(WheelRefused, match="not a readable zip file"):
        inspect_wheel(damaged)
