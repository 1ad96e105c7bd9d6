"""Wheel inspection: the one place that opens a wheel and says whether it is one.

`inspect_wheel(path)` hashes the file, refuses a member that could write outside the
install folder (an absolute path, a `..` part, a backslash, a drive letter) or whose bytes
fail their CRC (pip would refuse both at install), finds its top-level
`*.dist-info/METADATA`, reads Name, Version and Requires-Python from it and checks them
against the file name; a wheel that fails any of that raises `WheelRefused` (a message
that starts with the verb, to follow the file's name, and a hint). The index writer, the
server's uploads and the build's checks all ask here, so a wheel one of them accepts the
others accept too.

Speed (an index reads thousands of new wheels in a run): a small wheel is read in one
read() and unzipped from memory; a digest the caller vouches for is not computed again
and METADATA the caller already has (a cache by sha256, written only for a wheel that
passed) means the wheel is not opened at all. The CRC check inflates every member: for a
small wheel, read from memory, each member is inflated straight from the buffer (about a
third more than the inspection without it; zipfile's testzip() would near double it). A
usual file name is parsed with packaging's own checks, each version and tag string once
per run (they repeat across an index); any other name, and every refusal, by packaging.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.tags import parse_tag
from packaging.utils import (
    BuildTag,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    import zipfile

    from packaging.tags import Tag

_READ_WHOLE = 32 << 20  # wheels up to this size are read once (hash + zip from memory)


class WheelRefused(Exception):
    """Not a wheel an index can publish. `message` follows the file's name ("is not a
    readable zip file …"); `hint` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelInfo:
    """What a valid wheel says of itself. `project` and `version` are the file name's
    (METADATA's Name and Version were checked to be the same release)."""

    filename: str
    project: NormalizedName
    version: Version
    build: BuildTag
    tags: frozenset[Tag]
    size: int
    sha256: str
    metadata: bytes  # the exact bytes of .dist-info/METADATA (PEP 658 serves them as is)
    requires_python: str | None

    @property
    def metadata_sha256(self) -> str:
        return hashlib.sha256(self.metadata).hexdigest()


def inspect_wheel(
    path: Path | str,
    *,
    filename: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
    metadata: bytes | None = None,
    check_crc: bool = True,
) -> WheelInfo:
    """Read and check the wheel at `path`; raise WheelRefused if it is not a valid one.

    `filename`: the wheel's name when the file has another (an upload's temp file);
    `size`: the size stat() saw, when the caller has it (else stat() here); `sha256`: a
    digest the caller vouches for, not computed again; `metadata`: the wheel's METADATA,
    when the caller has it (a cache by `sha256`, which must then be given): the wheel is
    not opened; `check_crc`: read every member and check its CRC (off only where the
    bytes were checked before)."""
    # (a str path from the index: pathlib interns every part it parses, a table that
    # grows by one entry per wheel of a big index)
    name = filename or os.path.basename(path)  # noqa: PTH119
    project, version_text, version, build, tags = _parse_name(name)
    if size is None:
        try:
            size = os.stat(path).st_size  # noqa: PTH116
        except OSError as exc:
            raise _unreadable(exc) from None
    if metadata is None or sha256 is None:
        sha256, metadata = _read(path, project, size, sha256, check_crc=check_crc)
    headers = read_headers(metadata)
    _check_release(headers, project, version, version_text)
    return WheelInfo(
        filename=name,
        project=project,
        version=version,
        build=build,
        tags=tags,
        size=size,
        sha256=sha256,
        metadata=metadata,
        requires_python=headers.get("Requires-Python"),
    )


# Versions and tags repeat across a big index (a release's wheels for each platform,
# versions like 1.0.0 in many projects): each is parsed once. Both are immutable.
parse_version = functools.lru_cache(maxsize=8192)(Version)
_parse_tags = functools.lru_cache(maxsize=1024)(parse_tag)
_WHEEL_NAME = re.compile(r"[\w.]+").fullmatch  # packaging's escaped project name


_RENAME = "rename it to name-version-python-abi-platform.whl, or remove it from the folder"


def _parse_name(name: str) -> tuple[NormalizedName, str, Version, BuildTag, frozenset[Tag]]:
    """parse_wheel_filename's answer (and the version as the name spells it): the usual
    name (no build tag) parsed here with the same checks, its version and tags parsed
    once per run; any other name, and every refusal, by packaging itself."""
    if not name.isascii() and any("\udc80" <= c <= "\udcff" for c in name):  # (no URL)
        raise WheelRefused("is not a valid wheel file name (bytes that are not UTF-8)", _RENAME)
    stem = name[:-4]
    if name[-4:] == ".whl" and stem.count("-") == 4:
        project, version_text, tags = stem.split("-", 2)
        if "__" not in project and _WHEEL_NAME(project):
            try:
                return (
                    canonicalize_name(project),
                    version_text,
                    parse_version(version_text),
                    (),
                    _parse_tags(tags),
                )
            except ValueError:  # an invalid version or tag: packaging says which
                pass
    try:
        parsed_project, version, build, parsed_tags = parse_wheel_filename(name)
    except InvalidWheelFilename as exc:
        raise WheelRefused(f"is not a valid wheel file name ({exc})", _RENAME) from None
    return parsed_project, stem.split("-")[1], version, build, parsed_tags


def _read(
    path: Path | str, project: str, size: int, vouched: str | None, *, check_crc: bool
) -> tuple[str, bytes]:
    """(sha256, METADATA) of the wheel at `path`; raises WheelRefused."""
    import zlib

    try:
        archive: Any
        data: bytes | None = None
        if size <= _READ_WHOLE and (vouched is None or check_crc):
            data = _read_small(str(path), size)
            digest = vouched or hashlib.sha256(data).hexdigest()
            archive = io.BytesIO(data)
        elif vouched is not None:
            digest, archive = vouched, path  # zipfile reads the central directory only
        else:
            with open(path, "rb") as f:  # noqa: PTH123
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            archive = path
        if data is not None and check_crc:
            metadata = _read_clean_zip(data, project)
            if metadata is not None:
                return digest, metadata
    except (zlib.error, ValueError) as exc:
        raise _not_a_zip(exc) from None
    except OSError as exc:
        raise _unreadable(exc) from None
    return digest, _read_archive(archive, data, project, check_crc=check_crc)


def _read_archive(archive: Any, data: bytes | None, project: str, *, check_crc: bool) -> bytes:
    """METADATA of a wheel zipfile reads (`data`: its bytes, where they are in memory);
    raises WheelRefused. (zipfile is imported here: a clean small wheel needs none of its
    ~3 ms.)"""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(archive) as zf:
            _check_members(zf.infolist())
            member = zf.getinfo(metadata_member(zf, project))
            _check_metadata_size(member)  # before the CRC check inflates a bomb
            if check_crc:
                bad = zf.testzip() if data is None else _bad_member(data, zf)
                if bad is not None:
                    raise WheelRefused(
                        f"has a corrupt member {bad} (CRC mismatch)",
                        "rebuild the wheel, or copy it again",
                    )
            return zf.read(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError) as exc:
        raise _not_a_zip(exc) from None
    except OSError as exc:
        raise _unreadable(exc) from None


def _not_a_zip(exc: Exception) -> WheelRefused:
    return WheelRefused(
        f"is not a readable zip file ({exc}): truncated or corrupt",
        "delete it and run `wheelhouse build` again to fetch or rebuild it",
    )


def _bad_member(data: bytes, zf: zipfile.ZipFile) -> str | None:
    """The first member whose bytes fail their CRC (or size), as zipfile's testzip()
    finds it, at less than half its cost for a wheel in memory: each member is inflated straight
    from `data`, without a file object per member."""
    import zipfile
    import zlib

    infos = zf.infolist()
    if any(zi.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) for zi in infos):
        return zf.testzip()  # bzip2, lzma: rare in wheels; zipfile's own way
    view = memoryview(data)
    for zi in infos:
        start = zi.header_offset
        if data[start : start + 4] != b"PK\x03\x04":
            return zi.filename
        name_len, extra_len = struct.unpack_from("<HH", view, start + 26)
        start += 30 + name_len + extra_len
        raw = view[start : start + zi.compress_size]
        if zi.compress_type == zipfile.ZIP_STORED:
            crc, size = zlib.crc32(raw), len(raw)
        else:
            crc, size = _inflate_crc(raw, zi.file_size)
        if crc != zi.CRC or size != zi.file_size:
            return zi.filename
    return None


def _inflate_crc(raw: memoryview, expected: int) -> tuple[int, int]:
    """CRC-32 and size of a deflated member, inflated in bounded steps: a member that
    inflates past the size it declares stops there (a bomb is not inflated whole)."""
    import zlib

    inflate = zlib.decompressobj(-15)
    crc = size = 0
    pending: bytes | memoryview = raw
    while True:
        out = inflate.decompress(pending, _INFLATE_STEP)
        crc, size = zlib.crc32(out, crc), size + len(out)
        pending = inflate.unconsumed_tail
        if size > expected or not (out or pending):
            return crc, size


_INFLATE_STEP = 1 << 20
_UNSAFE = re.compile(r"^/|\\|^[A-Za-z]:|(^|/)\.\.(/|$)")


def _check_members(infos: list[zipfile.ZipInfo]) -> None:
    """No member may name a place outside the folder it is installed into, or be
    encrypted (pip cannot install it, and its CRC cannot be checked)."""
    for zi in infos:
        if _UNSAFE.search(zi.filename):
            raise WheelRefused(
                f"has an unsafe member {zi.filename!r} (an absolute path, a '..' part, a "
                "backslash or a drive letter: it could write outside site-packages)",
                "pip refuses it at install: rebuild the wheel, or remove it from the folder",
            )
        if zi.flag_bits & 1:
            raise WheelRefused(
                f"has an encrypted member {zi.filename!r}",
                "pip cannot install it: rebuild the wheel, or remove it from the folder",
            )


MAX_METADATA = 16 << 20  # bytes: PyPI's largest METADATA (long READMEs) are a few MB
_MAX_RATIO = 100  # a big METADATA compressed past this is a bomb, not a README


_FAST_MEMBER_MAX = 16 << 20  # bytes a member may inflate to in memory (_read_clean_zip)


def _metadata_too_big(size: int, compressed: int) -> bool:
    return size > MAX_METADATA or (size > 1 << 20 and size / max(compressed, 1) > _MAX_RATIO)


def _check_metadata_size(zi: zipfile.ZipInfo) -> None:
    """METADATA is read whole into memory and kept as a sidecar: a small wheel whose
    METADATA inflates to hundreds of MB is refused before it is inflated."""
    if _metadata_too_big(zi.file_size, zi.compress_size):
        raise WheelRefused(
            f"has a METADATA of {zi.file_size} bytes ({zi.compress_size} compressed): over "
            f"the {MAX_METADATA}-byte limit or compressed {_MAX_RATIO}x past what text allows",
            "rebuild the wheel with a shorter long description, or remove it from the folder",
        )


def _unreadable(exc: OSError) -> WheelRefused:
    return WheelRefused(f"cannot be read: {exc}", "check the file and its permissions")


def _check_release(
    headers: dict[str, str], project: str, version: Version, version_text: str
) -> None:
    """METADATA names the release the file name does: a renamed wheel is refused.
    `version_text`: the version as the file name spells it (METADATA mostly spells it the
    same: then it is the same version, not parsed again)."""
    meta_name, meta_version = headers.get("Name"), headers.get("Version")
    if not meta_name or not meta_version:
        raise WheelRefused(
            "has a METADATA without Name or Version",
            "rebuild the wheel with a PEP 517 build backend, or remove it from the folder",
        )
    try:
        same_version = meta_version == version_text or parse_version(meta_version) == version
    except InvalidVersion:
        same_version = False
    if canonicalize_name(meta_name) != project or not same_version:
        raise WheelRefused(
            f"its file name says {project} {version} but its METADATA says "
            f"Name: {meta_name}, Version: {meta_version}",
            "a renamed or mislabelled wheel would install something else than its name "
            "promises: rebuild it, or rename it to match its METADATA "
            f"({canonicalize_name(meta_name).replace('-', '_')}-{meta_version}-…), or remove it",
        )


def metadata_member(zf: zipfile.ZipFile, project: str) -> str:
    """The name of the wheel's top-level `<project>-<version>.dist-info/METADATA` (its
    own, where a wheel vendors another's .dist-info); raises WheelRefused."""
    return _pick_metadata(zf.namelist(), project)


def _pick_metadata(members: list[str], project: str) -> str:
    names = [n for n in members if n.endswith(".dist-info/METADATA") and n.count("/") == 1]
    if len(names) > 1:  # pick the .dist-info of this project
        names = [
            n
            for n in names
            if canonicalize_name(n.split("/")[0][:-10].rsplit("-", 1)[0]) == project
        ]
    if len(names) != 1:
        raise WheelRefused(
            "has no single top-level *.dist-info/METADATA "
            f"(found {len(names)}), so it is not a valid wheel",
            "rebuild the wheel, or remove it from the folder",
        )
    return names[0]


_WANTED = {"name": "Name", "version": "Version", "requires-python": "Requires-Python"}
# what a line whose key could be one of _WANTED starts with (a key's leading whitespace
# is stripped: \x1f, and any non-ASCII character, which only the full look can tell)
_MAYBE_WANTED = frozenset("NnVvRr\x1f")


def read_headers(metadata: bytes) -> dict[str, str]:
    """Name, Version and Requires-Python from METADATA's header block: RFC 822 syntax, as
    email.parser reads it (`Key: value`, case-insensitive keys, continuation lines start
    with whitespace, a blank line ends the headers), at a third of email.parser's cost."""
    end = metadata.find(b"\n\n")
    out: dict[str, str] = {}
    last: str | None = None
    for line in (metadata if end < 0 else metadata[:end]).decode("utf-8", "replace").splitlines():
        if not line or line.isspace():
            break
        first = line[0]
        if first == " " or first == "\t":
            if last is not None:
                out[last] += " " + line.strip()
            continue
        if len(out) == 3:
            break  # all read: a later line changes none of them
        if first not in _MAYBE_WANTED and first < "\x80":  # (most lines: Classifier, …)
            last = None
            continue
        key, sep, value = line.partition(":")
        last = _WANTED.get(key.strip().lower()) if sep else None
        if last is not None and last in out:
            last = None  # the first one counts
        elif last is not None:
            out[last] = value.strip()
    return out


def _read_small(path: str, size: int) -> bytes:
    """The whole file in one read() where it still has the size stat() saw: no buffering,
    no isatty() and seek() calls that open() adds (thousands of small wheels add up)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data
        parts = [data]  # it grew since: read the rest
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


_EOCD = struct.Struct("<4s4H2LH")
_LOCAL_SIZES = struct.Struct("<HH")  # a local header's name and extra field lengths
# a central directory entry, only the fields read: signature, flags, method, CRC,
# compressed and file size, name, extra and comment lengths, local header offset
_CENTRAL = struct.Struct("<4s4xHH4x3L3H8xL")


def _central_directory(data: bytes) -> tuple[int, int, int] | None:
    """(members, offset, end) of the zip's central directory, where it is a plain one
    (one disk, no comment, no zip64, right before its end record); else None."""
    end = len(data) - _EOCD.size
    if end < 0 or data[end : end + 4] != b"PK\x05\x06":
        return None  # a comment, zip64, not a zip
    _, disk, cd_disk, _, count, cd_size, cd_offset, comment = _EOCD.unpack_from(data, end)
    if disk or cd_disk or comment or cd_offset + cd_size != end:
        return None
    return count, cd_offset, end


def _read_clean_zip(data: bytes, project: str) -> bytes | None:
    """METADATA of a small wheel in memory, read with a few struct calls instead of
    zipfile's objects (which cost most of an index's full run): every member named safely,
    stored or deflated and matching its CRC. None at anything else (zip64, a comment, an
    encrypted or odd member, any damage): zipfile's path then reads it, or says why not."""
    import zlib

    directory = _central_directory(data)
    if directory is None:
        return None
    count, pos, end = directory
    view = memoryview(data)
    seen: set[str] = set()
    metadata: dict[str, bytes | memoryview] = {}  # the .dist-info/METADATA members
    unpack, unpack_local, local_sig = _CENTRAL.unpack_from, _LOCAL_SIZES.unpack_from, b"PK\x03\x04"
    inflate, crc32, entry_size = zlib.decompressobj, zlib.crc32, _CENTRAL.size
    for _ in range(count):
        if pos + entry_size > end:
            return None
        sig, flags, method, crc, csize, usize, nlen, elen, clen, local = unpack(data, pos)
        if (
            sig != b"PK\x01\x02"
            or flags & 1
            or method not in (0, 8)
            or 0xFFFFFFFF in (csize, usize, local)
        ):
            return None
        raw_name = data[pos + 46 : pos + 46 + nlen]
        # (cp437 and UTF-8 agree on ASCII, which Python decodes fastest: most names)
        name = (
            raw_name.decode() if flags & 0x800 or raw_name.isascii() else raw_name.decode("cp437")
        )
        pos += 46 + nlen + elen + clen
        # the pattern only where a cheap look finds a character it could match
        if name in seen or (
            (".." in name or "\\" in name or name[:1] == "/" or name[1:2] == ":")
            and _UNSAFE.search(name)
        ):
            return None
        seen.add(name)
        is_metadata = name.endswith(".dist-info/METADATA")
        # a member that would inflate big (a bomb, or a METADATA past its limits) goes to
        # zipfile's path, which inflates in steps and refuses with the reason
        if usize > _FAST_MEMBER_MAX or (is_metadata and _metadata_too_big(usize, csize)):
            return None
        if not data.startswith(local_sig, local) or not data.startswith(raw_name, local + 30):
            return None
        lnlen, lelen = unpack_local(data, local + 26)
        if lnlen != nlen:
            return None
        start = local + 30 + nlen + lelen
        raw = view[start : start + csize]
        # one bounded inflate per member: a bomb stops one byte past the size it declares
        out = raw if method == 0 else inflate(-15).decompress(raw, usize + 1)
        if len(out) != usize or crc32(out) != crc:
            return None
        if is_metadata:
            metadata[name] = out
    if pos != end:
        return None
    return bytes(metadata[_pick_metadata(list(metadata), project)])
