"""The last listing of a target's folder, kept beside its log (`simple/.index-listing`), so
that an incremental run compares the folder's listing with it as bytes, not name by name.

A folder lists its entries in the same order from one run to the next where nothing moved
(ext4 in hash order, tmpfs newest first, ...): the listing's names, joined, and its inode
numbers, packed, are mostly the snapshot's, shifted where entries came and went
(`listdiff.diff` finds those places).

The snapshot names the log it was written with (its token: inode, size and mtime, as the
state does; any other log, and it is ignored) and carries a CRC-32 of each of its parts:
one that is lost, stale, cut short or damaged only costs a run the slow path. It is always
a new file, renamed into place (`publish`: the kernel copies the parts of the run's own
listing, `spool.Spool`, into it): a run that still maps the last one reads it unchanged.
After a head padded to a page, each part starts at a page of its own (each is mapped
apart, where it lies, and none is read into memory whole): the names (the file system's
bytes, each after a NUL, a NUL at the end); where each starts (uint32, one more at the
end: the names' length); every entry's inode (uint64); every entry's mark (uint32: its
project's number when it is a wheel of the log, else NONE, TEMP or LOOK); the project
names (NUL-separated) and the number of wheels of each (uint32). Numbers in this
machine's byte order.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import mmap
import os
import struct
import sys
import zlib
from array import array
from itertools import accumulate, islice
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeAlias

from wheelhouse.fsutil import TMP

if TYPE_CHECKING:
    from wheelhouse.index.spool import Spool

SNAPSHOT_NAME = ".index-listing"
NONE = 0xFFFFFFFF  # an entry that is no wheel of the log: a sidecar, anything else
TEMP = 0xFFFFFFFE  # a temp file a live process had there: looked at again by the next run
LOOK = 0xFFFFFFFD  # a wheel's name that came after the run listed it: the next run looks
_MAGIC = f"wheelhouse index-listing 4 {sys.byteorder}\n".encode()
# the log's lines, the entries, the bytes of their names, the projects, the bytes of their
# names, the wheels; the CRC-32 of the names, starts, inodes, marks, and projects with
# their counts; the log's token (its length: then the token)
_HEAD = struct.Struct("<QQQQQQIIIIIH")
_PAGE = mmap.ALLOCATIONGRANULARITY  # where each part starts: a map's offset is one of these
_BODY = _PAGE  # the head, padded
STRETCH = 1 << 20  # bytes of names copied, split or compared before pages are let go of


# names as `encode_names` gives them (a listing's in a buffer, a snapshot's mapped)
Blob = bytes | bytearray | mmap.mmap
# numbers per entry: in an array, or cast from a map ("I", "Q")
Ints: TypeAlias = "array[int] | memoryview"


class Snapshot(NamedTuple):
    names: Blob  # NUL, then each entry's name followed by a NUL
    starts: Ints  # "I": where each name starts, and one more: the names' length
    inos: Ints  # "Q": per entry
    marks: Ints  # "I": per entry, its project's number in `table`, NONE, TEMP, LOOK
    table: list[str]  # the projects
    counts: array[int]  # "I": the wheels of each project
    lines: int  # the log's
    wheels: int


def encode_names(names: list[bytes]) -> bytes:
    """The entries' names as a snapshot holds them."""
    return b"\0".join([b"", *names, b""]) if names else b"\0"


class _Layout(NamedTuple):
    """Where each part of a snapshot starts, and where it ends."""

    names: int
    starts: int
    inos: int
    marks: int
    table: int
    counts: int
    end: int

    @classmethod
    def of(cls, entries: int, name_bytes: int, projects: int, project_bytes: int) -> _Layout:
        names = _BODY
        starts = _align(names + name_bytes)
        inos = _align(starts + 4 * (entries + 1))
        marks = _align(inos + 8 * entries)
        table = _align(marks + 4 * entries)
        counts = table + project_bytes
        return cls(names, starts, inos, marks, table, counts, counts + 4 * projects)


def _align(at: int) -> int:
    return -(-at // _PAGE) * _PAGE


def read_snapshot(simple: Path, token: str) -> Snapshot | None:
    """The snapshot beside the log of the index in `simple`; None where there is none
    written with the log as it is now (`token`: `upkeep.log_stamp`, which changes with
    every write of the log). Mapped, not read: its parts are compared where they lie."""
    try:
        with open(simple / SNAPSHOT_NAME, "rb") as f:  # noqa: PTH123
            return _parse(f.fileno(), token.encode())
    except (OSError, ValueError):  # (ValueError: an empty file, a map past the end)
        return None


def _parse(fd: int, token: bytes) -> Snapshot | None:
    data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    if len(data) < _BODY or data[: len(_MAGIC)] != _MAGIC:
        return None
    lines, entries, name_bytes, projects, project_bytes, wheels, *crcs, size = _HEAD.unpack_from(
        data, len(_MAGIC)
    )
    key = len(_MAGIC) + _HEAD.size
    at = _Layout.of(entries, name_bytes, projects, project_bytes)
    if size > _BODY - key or data[key : key + size] != token or len(data) < at.end:
        return None
    parts = (
        (at.names, name_bytes),
        (at.starts, 4 * (entries + 1)),
        (at.inos, 8 * entries),
        (at.marks, 4 * entries),
        (at.table, at.end - at.table),
    )
    if [_crc(data, start, start + n) for start, n in parts] != crcs or not name_bytes:
        return None
    names = mmap.mmap(fd, name_bytes, access=mmap.ACCESS_READ, offset=at.names)
    starts = _ints(fd, "I", entries + 1, at.starts)
    counts = array("I", data[at.counts : at.end])
    table = data[at.table : at.counts].decode().split("\0") if projects else []
    if len(table) != projects or names[:1] != b"\0" or names[-1:] != b"\0":
        return None
    if sum(counts) != wheels or starts[-1] != name_bytes or (entries and starts[0] != 1):
        return None
    inos, marks = _ints(fd, "Q", entries, at.inos), _ints(fd, "I", entries, at.marks)
    return Snapshot(names, starts, inos, marks, list(map(sys.intern, table)), counts, lines, wheels)


def _ints(fd: int, kind: Literal["I", "Q"], count: int, at: int) -> Ints:
    """A part of numbers, mapped where it lies."""
    if not count:
        return array(kind)
    size = count * array(kind).itemsize
    return memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_READ, offset=at)).cast(kind)


def _crc(data: mmap.mmap, start: int, end: int) -> int:
    """The CRC-32 of a stretch of the mapped file, its pages let go of as it is read."""
    crc = 0
    with memoryview(data) as view:
        for at in range(start, end, STRETCH):
            crc = zlib.crc32(view[at : min(at + STRETCH, end)], crc)
            let_go(data, at, STRETCH)
    return crc


def publish(
    simple: Path,
    token: str,
    spool: Spool,
    table: list[str],
    counts: array[int],
    lines: int,
) -> None:
    """Keep the listing in `spool` (its marks written: the run's own, or `spool.new_marks`)
    with its projects and their counts as the snapshot the log describes now (`token`,
    `lines` in it): a new file, each part copied into it by the kernel, renamed into place
    once whole (see the module doc). One that cannot be written (a full disk, a folder
    gone meanwhile) only costs the next run the slow path."""
    key = token.encode()
    if len(_MAGIC) + _HEAD.size + len(key) > _BODY:  # (a token is some 40 bytes)
        return
    n = spool.entries
    tail = "\0".join(table).encode()
    at = _Layout.of(n, spool.name_bytes, len(table), len(tail))
    tmp = f"{simple}/{SNAPSHOT_NAME}.{os.getpid()}{TMP}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _copy(spool.names, fd, spool.name_bytes, at.names)
            _copy(spool.starts, fd, 4 * (n + 1), at.starts)
            _copy(spool.inos, fd, 8 * n, at.inos)
            marks_crc = _copy(spool.marks, fd, 4 * n, at.marks, crc=True)
            put(fd, tail, at.table)
            put(fd, counts, at.counts)
            crcs = (*spool.crcs[:3], marks_crc, zlib.crc32(counts, zlib.crc32(tail)))
            head = _HEAD.pack(
                lines, n, spool.name_bytes, len(table), len(tail), sum(counts), *crcs, len(key)
            )
            put(fd, _MAGIC + head + key, 0)
        finally:
            os.close(fd)
        os.replace(tmp, simple / SNAPSHOT_NAME)  # noqa: PTH105
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # noqa: PTH108
        if not isinstance(exc, OSError):
            raise


def _copy(src: int, dst: int, size: int, at: int, *, crc: bool = False) -> int:
    """Copy the first `size` bytes of `src` to `dst` at `at`, in the kernel where it can
    (no byte of them in this process); their CRC-32 where `crc` (then read a stretch at a
    time). Raises OSError (ENOSPC: `src` is shorter, or the disk is full)."""
    if crc:
        value, done = 0, 0
        while done < size:
            data = os.pread(src, min(STRETCH, size - done), done)
            if not data:
                raise OSError(errno.ENOSPC, "a listing cut short")
            put(dst, data, at + done)
            value, done = zlib.crc32(data, value), done + len(data)
        return value
    os.lseek(dst, at, os.SEEK_SET)
    done = 0
    while done < size:
        try:
            n = os.sendfile(dst, src, done, size - done)
        except OSError as exc:  # (not Linux: a stretch at a time)
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP):
                raise
            _copy(src, dst, size, at, crc=True)
            return 0
        if n <= 0:
            raise OSError(errno.ENOSPC, "a listing cut short")
        done += n
    return 0


def put(fd: int, data: Blob | Ints, at: int) -> int:
    """Write all of `data` at offset `at` of `fd`: the offset after it. (A snapshot and a
    spool's files here, a folder's names in a memfd in `ahead`.)"""
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, at)
        if n <= 0:  # (a full disk: an OSError, or no progress)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, at = view[n:], at + n
    return at


class Entries:
    """A listing: its names as `encode_names` gives them (`blob`), where each starts in it
    (`starts`: one more at the end, the blob's length), and their inodes; in buffers, or
    mapped (a spool's, a snapshot's). No object per entry: a name is cut out of the blob
    where it is wanted. Starts not given are found where first wanted."""

    __slots__ = ("_starts", "blob", "inos")

    def __init__(self, blob: Blob, starts: Ints | None, inos: Ints):
        self.blob, self._starts, self.inos = blob, starts, inos

    @property
    def starts(self) -> Ints:
        if self._starts is None:
            self._starts = _starts_of(self.blob)
        return self._starts

    def name(self, i: int) -> bytes:
        return bytes(self.blob[self.starts[i] : self.starts[i + 1] - 1])

    def find(self, name: bytes) -> int | None:
        """The entry of this name (one search of the blob)."""
        at = search(self.blob, b"\0" + name + b"\0") + 1
        if not at:
            return None
        i = bisect.bisect_left(self.starts, at)
        return i if self.starts[i] == at else None

    def indexes(self, names: set[bytes]) -> dict[bytes, int]:
        """The entries of these names that are here: one pass over the blob, a stretch at a
        time, where there are many (no index of every name is made)."""
        if len(names) <= _SEARCHES:
            return {n: i for n in names if (i := self.find(n)) is not None}
        found: dict[bytes, int] = {}
        blob, at, i, end = self.blob, 1, 0, len(self.blob) - 1
        while at < end:
            stop = blob.find(b"\0", min(at + STRETCH, end))
            for name in bytes(blob[at:stop]).split(b"\0"):
                if name in names:
                    found[name] = i
                i += 1
            let_go(blob, at // mmap.PAGESIZE * mmap.PAGESIZE, stop - at + mmap.PAGESIZE)
            at = stop + 1
        return found


_SEARCHES = 16  # names looked up one search of the blob each: then one pass for them all


def search(blob: Blob, pattern: bytes) -> int:
    """Where `pattern` first is in `blob` (-1: nowhere): a map is searched a stretch at a
    time, each stretch's pages let go of after it (a search of all of a big listing would
    map all of it at once)."""
    if not isinstance(blob, mmap.mmap):
        return blob.find(pattern)
    at, overlap = 0, len(pattern) - 1
    while at < len(blob):
        end = min(at + STRETCH, len(blob))
        found = blob.find(pattern, at, min(end + overlap, len(blob)))
        let_go(blob, at, end - at)
        if found >= 0:
            return found
        at = end
    return -1


def raw(ints: Ints) -> Blob:
    """The bytes of numbers per entry, for compares: the map they are cast from (no copy),
    else a copy."""
    data = map_of(ints)
    return data if data is not None else ints.tobytes()


def map_of(ints: Ints) -> mmap.mmap | None:
    """The map numbers per entry are cast from, whole (None: they are in memory)."""
    if not isinstance(ints, memoryview):
        return None
    data = ints.obj
    return data if isinstance(data, mmap.mmap) and len(data) == ints.nbytes else None


def _starts_of(blob: Blob) -> array[int]:
    """Where each name starts (found in C, a stretch of the names at a time: no list of
    them all)."""
    starts = array("I", [1])
    at, end = 1, len(blob) - 1  # (the names lie between the first NUL and the last)
    while at < end:
        stop = blob.find(b"\0", min(at + STRETCH, end))
        lengths = map((1).__add__, map(len, bytes(blob[at:stop]).split(b"\0")))
        starts.extend(islice(accumulate(lengths, initial=at), 1, None))
        at = stop + 1
    return starts


def let_go(data: Blob, at: int, size: int) -> None:
    """Drop the pages of a map from `at` (a page's start), `size` bytes, out of this
    process's memory: they are read again (from the page cache) if looked at."""
    if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") and at < len(data):
        with contextlib.suppress(OSError, ValueError):
            data.madvise(mmap.MADV_DONTNEED, at, min(size, len(data) - at))
