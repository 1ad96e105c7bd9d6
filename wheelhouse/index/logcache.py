"""The log's parsed form, kept beside it (`simple/.index-files.cache`), so that an
incremental run makes its dicts from two arrays and one split of the names instead of
splitting every line of the log, then parses only the lines appended since.

The log stays the record and this file a cache: it names the bytes of the log it describes
(their length and CRC-32) and carries a CRC-32 of its own body, so one that is lost, stale,
cut short, damaged or left from another log is ignored, and the run that then parses the
log whole writes it again. Its body: every file's inode (uint64) and project number
(uint32) in this machine's byte order, then the file names and the project names, UTF-8,
NUL-separated.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from wheelhouse.fsutil import TMP

CACHE_NAME = ".index-files.cache"
MIN_SIZE = 1 << 18  # bytes of log (some 4,000 files) below which it is parsed whole
_MAGIC = f"wheelhouse index-files cache 1 {sys.byteorder}\n".encode()
# the log's bytes described, its lines, their CRC, the body's CRC, the number of files,
# the bytes of their names, the number of projects, the bytes of their names
_HEAD = struct.Struct("<QQIIQQQQ")
_START = len(_MAGIC) + _HEAD.size
_SLICE = 4096  # file names encoded and written at a time


class Cached(NamedTuple):
    """What the log's first `size` bytes say (`state.load_log` parses the rest)."""

    ino: dict[str, int]
    project: dict[str, str]
    size: int
    lines: int


def read_cache(simple: Path, log: bytes) -> Cached | None:
    """The cache of `log` (the log of the index in `simple`, as read); None where there is
    none that describes the start of these bytes."""
    try:
        blob = (simple / CACHE_NAME).read_bytes()
    except OSError:
        return None
    if len(blob) < _START or not blob.startswith(_MAGIC):
        return None
    size, lines, crc, body_crc, files, name_bytes, projects, project_bytes = _HEAD.unpack_from(
        blob, len(_MAGIC)
    )
    body = memoryview(blob)[_START:]
    numbers = 12 * files
    if (
        size > len(log)
        or len(body) != numbers + name_bytes + project_bytes
        or zlib.crc32(body) != body_crc
        or zlib.crc32(memoryview(log)[:size]) != crc
    ):
        return None
    inos, index = array("Q"), array("I")
    inos.frombytes(body[: 8 * files])
    index.frombytes(body[8 * files : numbers])
    try:
        names = _split(body[numbers : numbers + name_bytes], files)
        table = list(map(sys.intern, _split(body[numbers + name_bytes :], projects)))
    except ValueError:  # (UnicodeDecodeError too)
        return None
    ino = dict(zip(names, inos, strict=True))
    if len(ino) != files or (files and max(index) >= projects):
        return None
    return Cached(ino, dict(zip(names, map(table.__getitem__, index), strict=True)), size, lines)


def _split(data: memoryview, count: int) -> list[str]:
    items = str(data, "utf-8").split("\0") if count else []
    if len(items) != count:
        raise ValueError(CACHE_NAME)
    return items


def write_cache(
    simple: Path,
    names: Iterable[str],
    inos: Iterable[int],
    projects: Iterable[str],
    *,
    size: int,
    lines: int,
    crc: int,
) -> None:
    """Describe the log's first `size` bytes (`lines` lines, CRC-32 `crc`), which say that
    the `i`th of `names` is the file with the `i`th of `inos`, of the `i`th of `projects`.
    Streamed through a temp file (the names a slice at a time: no list of them) and
    renamed into place. A cache that cannot be written only costs the next run its parse."""
    table: dict[str, int] = {}
    numbers = (table.setdefault(p, len(table)) for p in projects)
    tmp = f"{simple}/{CACHE_NAME}.{os.getpid()}{TMP}"
    try:
        with open(tmp, "wb") as f:  # noqa: PTH123
            f.write(_MAGIC + bytes(_HEAD.size))  # the head, once the body is written
            body_crc = name_bytes = 0
            counts = []
            for kind, values in (("Q", inos), ("I", numbers)):  # (a slice at a time)
                counts.append(0)
                every = iter(values)
                while values_part := array(kind, islice(every, _SLICE)):
                    f.write(values_part)
                    body_crc = zlib.crc32(values_part, body_crc)
                    counts[-1] += len(values_part)
            if counts[0] != counts[1]:
                raise ValueError("the rows changed as they were written")
            for part in _pieces(names):
                f.write(part)
                body_crc, name_bytes = zlib.crc32(part, body_crc), name_bytes + len(part)
            projects_blob = "\0".join(table).encode()
            f.write(projects_blob)
            f.seek(len(_MAGIC))
            f.write(
                _HEAD.pack(
                    size,
                    lines,
                    crc,
                    zlib.crc32(projects_blob, body_crc),
                    counts[0],
                    name_bytes,
                    len(table),
                    len(projects_blob),
                )
            )
        os.replace(tmp, simple / CACHE_NAME)  # noqa: PTH105
    except (OSError, OverflowError, ValueError):  # (a number past an inode's range: by hand)
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # noqa: PTH108


def _pieces(names: Iterable[str]) -> Iterator[bytes]:
    """The file names, a slice at a time."""
    every, sep = iter(names), ""
    while part := list(islice(every, _SLICE)):
        yield (sep + "\0".join(part)).encode()
        sep = "\0"


def stale(size: int, cached: int) -> bool:
    """Whether a run that read `size` bytes of log, `cached` of them from the cache, writes
    the cache again: when the lines it parsed are an eighth of the log or more (what a run
    parses stays small; the cache is written once per that many appended lines)."""
    return size >= MIN_SIZE and size - cached >= size // 8
