"""The last listing of a target's folder, kept beside its log (`simple/.index-listing`), so
that an incremental run compares the folder's listing with it as bytes, not name by name.

A folder lists its entries in the same order from one run to the next where nothing moved
(ext4 in hash order, tmpfs newest first, ...): the listing's names, joined, and its inode
numbers, packed, are mostly the snapshot's, shifted where entries came and went
(`listdiff.diff` finds those places).

The snapshot names the log it was written with (its token: inode, size and mtime, as the
state does; any other log, and it is ignored) and carries a CRC-32 of its own body: one
that is lost, stale, cut short or damaged only costs a run the slow path. It is a cache
that only a run holding the index's lock reads, so it is written over in place (its head
made invalid first and written last: a write cut short is no snapshot), which costs a
tenth of a new file's pages; what lies past its body is ignored. Its body, after
a head padded to a page (so that the names are mapped apart, where they lie): the names
(the file system's bytes, each after a NUL, a NUL at the end); every entry's inode
(uint64), then every entry's mark (uint32: its project's number when it is a wheel of the
log, else NONE, TEMP or LOOK), in this machine's byte order; the project names
(NUL-separated) and the number of wheels of each (uint32).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import mmap
import os
import stat
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable
from itertools import accumulate, islice
from pathlib import Path
from typing import NamedTuple

from wheelhouse.fsutil import TMP

SNAPSHOT_NAME = ".index-listing"
NONE = 0xFFFFFFFF  # an entry that is no wheel of the log: a sidecar, anything else
TEMP = 0xFFFFFFFE  # a temp file a live process had there: looked at again by the next run
LOOK = 0xFFFFFFFD  # a wheel's name that came after the run listed it: the next run looks
_MAGIC = f"wheelhouse index-listing 3 {sys.byteorder}\n".encode()
# the log's lines, the body's CRC, the entries, the bytes of their names, the projects,
# the bytes of their names, the wheels, the log's token (its length: then the token)
_HEAD = struct.Struct("<QIQQQQQH")
_BODY = mmap.ALLOCATIONGRANULARITY  # where the names start: the head, padded (mapped apart)
STRETCH = 1 << 20  # bytes of names copied, split or compared before pages are let go of


# names as `encode_names` gives them (a listing's in a buffer, a snapshot's mapped)
Blob = bytes | bytearray | mmap.mmap


class Snapshot(NamedTuple):
    names: Blob  # NUL, then each entry's name followed by a NUL
    inos: array[int]  # "Q": per entry
    marks: array[int]  # "I": per entry, its project's number in `table`, NONE, TEMP, LOOK
    table: list[str]  # the projects
    counts: array[int]  # "I": the wheels of each project
    lines: int  # the log's
    wheels: int


def encode_names(names: list[bytes]) -> bytes:
    """The entries' names as a snapshot holds them."""
    return b"\0".join([b"", *names, b""]) if names else b"\0"


def read_snapshot(simple: Path, token: str) -> Snapshot | None:
    """The snapshot beside the log of the index in `simple`; None where there is none
    written with the log as it is now (`token`: `upkeep.log_stamp`, which changes with
    every write of the log). Mapped, not read: its names are compared where they lie."""
    try:
        with open(simple / SNAPSHOT_NAME, "rb") as f:  # noqa: PTH123
            return _parse(f.fileno(), token.encode())
    except (OSError, ValueError):  # (ValueError: an empty file, a map past the end)
        return None


def _parse(fd: int, token: bytes) -> Snapshot | None:
    data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    if len(data) < _BODY or data[: len(_MAGIC)] != _MAGIC:
        return None
    lines, body_crc, entries, name_bytes, projects, project_bytes, wheels, size = _HEAD.unpack_from(
        data, len(_MAGIC)
    )
    key = len(_MAGIC) + _HEAD.size
    ino_at = _BODY + name_bytes
    marks_at = ino_at + 8 * entries
    table_at = marks_at + 4 * entries
    counts_at = table_at + project_bytes
    end = counts_at + 4 * projects
    if size > _BODY - key or data[key : key + size] != token or len(data) < end:
        return None
    if _crc(data, _BODY, end) != body_crc or not name_bytes:
        return None
    names = mmap.mmap(fd, name_bytes, access=mmap.ACCESS_READ, offset=_BODY)
    inos, marks, counts = array("Q"), array("I"), array("I")
    inos.frombytes(data[ino_at:marks_at])
    marks.frombytes(data[marks_at:table_at])
    counts.frombytes(data[counts_at:end])
    table = data[table_at:counts_at].decode().split("\0") if projects else []
    if len(table) != projects or names[:1] != b"\0" or names[-1:] != b"\0":
        return None
    if sum(counts) != wheels or len(marks) != entries:
        return None
    return Snapshot(names, inos, marks, list(map(sys.intern, table)), counts, lines, wheels)


def _crc(data: mmap.mmap, start: int, end: int) -> int:
    """The CRC-32 of a stretch of the mapped file, its pages let go of as it is read."""
    crc = 0
    with memoryview(data) as view:
        for at in range(start, end, STRETCH):
            crc = zlib.crc32(view[at : min(at + STRETCH, end)], crc)
            let_go(data, at, STRETCH)
    return crc


def write_snapshot(simple: Path, snap: Snapshot, token: str, extra: list[str]) -> None:
    """Keep `snap`, with the entries `extra` after its own (no inode: a sidecar this run
    wrote, see delta.py), as the listing the log describes now (`token`): over the last
    one in place (see the module doc), else through a temp file renamed into place. One
    that cannot be written only costs the next run the slow path."""
    more = encode_names([os.fsencode(n) for n in extra])[1:] if extra else b""
    zeros, nones = array("Q", [0]) * len(extra), array("I", [NONE]) * len(extra)
    tail = "\0".join(snap.table).encode()
    parts = (snap.names, more, snap.inos, zeros, snap.marks, nones, tail, snap.counts)
    body_crc = 0
    for part in parts:
        body_crc = zlib.crc32(part, body_crc)
    key = token.encode()
    head = _MAGIC + _HEAD.pack(
        snap.lines,
        body_crc,
        len(snap.marks) + len(extra),
        len(snap.names) + len(more),
        len(snap.table),
        len(tail),
        snap.wheels,
        len(key),
    )
    if len(head) + len(key) > _BODY:  # (a token is some 40 bytes)
        return
    block = head + key + bytes(_BODY - len(head) - len(key))
    body = sum(memoryview(part).nbytes for part in parts)
    path = simple / SNAPSHOT_NAME
    tmp = f"{simple}/{SNAPSHOT_NAME}.{os.getpid()}{TMP}"
    try:
        if not isinstance(snap.names, mmap.mmap) and _overwrite(path, block, parts, body):
            return
        with open(tmp, "wb") as f:  # noqa: PTH123
            f.write(block)
            for part in parts:
                f.write(part)
        os.replace(tmp, path)  # noqa: PTH105
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # noqa: PTH108


def write_streamed(
    simple: Path,
    token: str,
    entries: Iterable[tuple[bytes, int, int]],
    rest: Callable[[], tuple[list[str], array[int], int]],
) -> None:
    """Keep a snapshot of a listing as it comes (`entries`: each name, inode and mark; then
    `rest()`: the projects, the wheels of each and the log's lines): the names go to a
    temp file a stretch at a time, only the inodes and marks are held; renamed into place
    once whole. As write_snapshot, one that cannot be written (a folder gone meanwhile
    too) only costs the next run the slow path."""
    key = token.encode()
    if len(_MAGIC) + _HEAD.size + len(key) > _BODY:  # (a token is some 40 bytes)
        return
    tmp = f"{simple}/{SNAPSHOT_NAME}.{os.getpid()}{TMP}"
    try:
        with open(tmp, "wb") as f:  # noqa: PTH123
            f.write(bytes(_BODY))  # (the head, once the body is written)
            names, inos, marks = bytearray(b"\0"), array("Q"), array("I")
            size = crc = 0
            for name, ino, mark in entries:
                names += name
                names += b"\0"
                inos.append(ino)
                marks.append(mark)
                if len(names) >= STRETCH:
                    f.write(names)
                    size, crc = size + len(names), zlib.crc32(names, crc)
                    names.clear()
            f.write(names)
            size, crc = size + len(names), zlib.crc32(names, crc)
            table, counts, lines = rest()
            tail = "\0".join(table).encode()
            for part in (inos, marks, tail, counts):
                f.write(part)
                crc = zlib.crc32(part, crc)
            f.seek(0)
            f.write(
                _MAGIC
                + _HEAD.pack(
                    lines, crc, len(marks), size, len(table), len(tail), sum(counts), len(key)
                )
                + key
            )
        os.replace(tmp, simple / SNAPSHOT_NAME)  # noqa: PTH105
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # noqa: PTH108
        if not isinstance(exc, OSError):
            raise


def _overwrite(path: Path, block: bytes, parts: tuple[Blob | array[int], ...], body: int) -> bool:
    """Write the snapshot over the last one, in place: False (nothing written) where there
    is none, where it has another link (a copy's, which would change too), or where it is
    a quarter bigger than this one (then a new file gives the space back)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > _BODY + body * 5 // 4:
            return False
        put(fd, bytes(len(_MAGIC)), 0)  # (no snapshot until the head is written again)
        at = _BODY
        for part in parts:
            at = put(fd, part, at)
        put(fd, block, 0)
        return True
    finally:
        os.close(fd)


def put(fd: int, data: Blob | array[int], at: int) -> int:
    """Write all of `data` at offset `at` of `fd`: the offset after it. (A snapshot here,
    a listing in a memfd in `ahead`.)"""
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, at)
        if n <= 0:  # (a full disk: an OSError, or no progress)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, at = view[n:], at + n
    return at


class Entries:
    """A listing: its names as `encode_names` gives them (`blob`), where each starts in it
    (`starts`: one more at the end, the blob's length), and their inodes. No object per
    entry: a name is cut out of the blob where it is wanted. A snapshot's starts are found
    where first wanted (a run over a folder that did not change may want none)."""

    __slots__ = ("_starts", "blob", "inos")

    def __init__(self, blob: bytes | bytearray, starts: array[int] | None, inos: array[int]):
        self.blob, self._starts, self.inos = blob, starts, inos

    @property
    def starts(self) -> array[int]:
        if self._starts is None:
            self._starts = _starts_of(self.blob)
        return self._starts

    def name(self, i: int) -> bytes:
        return bytes(self.blob[self.starts[i] : self.starts[i + 1] - 1])

    def find(self, name: bytes) -> int | None:
        """The entry of this name (one search of the blob)."""
        at = self.blob.find(b"\0" + name + b"\0") + 1
        if not at:
            return None
        i = bisect.bisect_left(self.starts, at)
        return i if self.starts[i] == at else None


def list_entries(folder: Path) -> Entries:
    """Every entry of `folder` in the order the file system lists them: names (as bytes,
    into one buffer: none is decoded) and inode numbers (from the directory entries: no
    stat). Raises FileNotFoundError."""
    blob = bytearray(b"\0")
    starts, inos = array("I"), array("Q")
    start, ino = starts.append, inos.append
    with os.scandir(os.fsencode(folder)) as entries:  # (the one loop over every entry)
        for entry in entries:
            start(len(blob))
            blob += entry.name
            blob += b"\0"
            ino(entry.inode())
    start(len(blob))
    return Entries(blob, starts, inos)


def entries_of(blob: Blob, inos: array[int]) -> Entries:
    """The entries of a snapshot's names: a copy (the snapshot is written over in place by
    a later run, which may come while this one still uses them), the mapped pages let go
    of as they are copied."""
    if not isinstance(blob, mmap.mmap):
        return Entries(bytes(blob), None, inos)
    data = bytearray(len(blob))
    for at in range(0, len(blob), STRETCH):
        data[at : at + STRETCH] = blob[at : at + STRETCH]
        let_go(blob, at, STRETCH)
    return Entries(data, None, inos)


def _starts_of(blob: bytes | bytearray) -> array[int]:
    """Where each name starts (found in C, a stretch of the names at a time: no list of
    them all)."""
    starts = array("I", [1])
    at, end = 1, len(blob) - 1  # (the names lie between the first NUL and the last)
    while at < end:
        stop = blob.find(b"\0", min(at + STRETCH, end))
        lengths = map((1).__add__, map(len, blob[at:stop].split(b"\0")))
        starts.extend(islice(accumulate(lengths, initial=at), 1, None))
        at = stop + 1
    return starts


def let_go(data: Blob, at: int, size: int) -> None:
    """Drop the pages of a mapped snapshot from `at` (a page's start), `size` bytes, out of
    this process's memory: they are read again (from the page cache) if looked at."""
    if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            data.madvise(mmap.MADV_DONTNEED, at, min(size, len(data) - at))
