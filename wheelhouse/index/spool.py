"""A folder's listing streamed into unnamed files (a `Spool`): its names, where each starts,
its inodes and, where a run marks its entries, their marks, each in a file of its own and
a stretch at a time. No buffer of them all is held: they are mapped where they are
compared (the pages let go of behind the compare, see listdiff.py), and the kernel copies
them into the snapshot the next run compares with (`snapshot.publish`). So what a run
holds of a folder's listing does not grow with the folder.

The files have no name: O_TMPFILE in the index's `simple/` (on disk, so their pages are
the page cache's, given back under pressure; nothing is left by a run that is killed;
`simple/`'s stamp does not move), else a memfd, else a temp file unlinked at once.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import struct
import tempfile
import zlib
from array import array
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Literal

from wheelhouse.index.snapshot import Entries, Ints, put

_BATCH = 4096  # entries listed between two writes of the buffers (~200-400 KB)
# the figures of a listing: its entries, the bytes of its names, and the CRC-32 of its
# names, starts and inodes as written (sent down a pipe by `ahead`'s child)
FIGURES = struct.Struct("<QQIII")
Mark = Callable[[bytes, int], int]  # an entry's mark, from its name and inode


class Spool:
    """A listing in unnamed files (see the module doc): `names` (as `encode_names` gives
    them), `starts` (uint32, one more at the end), `inos` (uint64), `marks` (uint32: where
    the listing was marked as it came, or by `marked`). Its figures once listed."""

    def __init__(self, where: Path, *, marked: bool = False) -> None:
        self._files: list[int] = []
        try:
            for _ in range(4 if marked else 3):
                self._files.append(unnamed(where))
        except BaseException:
            self.close()
            raise
        self.where = where
        self.entries = self.name_bytes = 0
        # the names', starts' and inodes' as written (the marks' is taken as the snapshot is
        # published: a run writes them in place)
        self.crcs = [0, 0, 0]

    @property
    def names(self) -> int:
        return self._files[0]

    @property
    def starts(self) -> int:
        return self._files[1]

    @property
    def inos(self) -> int:
        return self._files[2]

    @property
    def marks(self) -> int:
        return self._files[3] if len(self._files) > 3 else -1

    def figures(self) -> bytes:
        return FIGURES.pack(self.entries, self.name_bytes, *self.crcs)

    def take_figures(self, data: bytes) -> None:
        """The figures another process listed this spool with (`figures`)."""
        self.entries, self.name_bytes, *crcs = FIGURES.unpack(data)
        self.crcs = crcs
        sizes = (self.name_bytes, 4 * (self.entries + 1), 8 * self.entries)
        for fd, size in zip((self.names, self.starts, self.inos), sizes, strict=True):
            if os.fstat(fd).st_size != size:  # (a map past a file's end would kill)
                raise ValueError("a listing cut short")

    def mapped(self) -> Entries:
        """The listing, mapped (nothing read yet)."""
        n = self.entries
        blob = map_file(self.names, self.name_bytes)
        starts = map_file(self.starts, 4 * (n + 1))
        assert blob is not None and starts is not None  # (a NUL, and one start at least)
        return Entries(blob, ints_of(starts, "I"), ints_of(map_file(self.inos, 8 * n), "Q"))

    def new_marks(self, fill: int) -> Ints:
        """A file of the listing's marks, each `fill`, mapped to be written (see delta.py)."""
        if len(self._files) < 4:
            self._files.append(unnamed(self.where))
        size = 4 * self.entries
        os.ftruncate(self.marks, size)
        data = map_file(self.marks, size, write=True)
        if data is None:
            return array("I")
        pattern = struct.pack("=I", fill)
        for at in range(0, size, 1 << 16):
            n = min(1 << 16, size - at)
            data[at : at + n] = pattern * (n // 4)
        return ints_of(data, "I")

    def close(self) -> None:
        for fd in self._files:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._files = [-1] * len(self._files)

    def __del__(self) -> None:
        if self._files and self._files[0] >= 0:
            self.close()


def unnamed(where: Path) -> int:
    """A new file with no name (see the module doc)."""
    with contextlib.suppress(OSError, AttributeError):  # (not Linux, not this file system)
        return os.open(where, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    with contextlib.suppress(OSError, AttributeError):
        return os.memfd_create("wheelhouse-listing", os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix=".wheelhouse-listing.")
    os.unlink(path)  # noqa: PTH108
    return fd


def list_into(spool: Spool, folder: Path, mark: Mark | None = None) -> None:
    """Every entry of `folder` in the order the file system lists them, into `spool`
    (names as bytes: none decoded; inodes from the directory entries: no stat), each
    marked by `mark` where given (`spool` made `marked`), a batch at a time. Raises
    FileNotFoundError."""
    writer = _Writer(spool)
    with os.scandir(os.fsencode(folder)) as listing:  # (the one loop over every entry)
        while True:
            blob, starts, inos = writer.buffers()
            start, ino, base = starts.append, inos.append, writer.size
            for entry in islice(listing, _BATCH):
                start(base + len(blob))
                blob += entry.name
                blob += b"\0"
                ino(entry.inode())
            count = len(inos)
            if mark is not None:
                writer.mark_batch(mark, count)
            writer.flush()
            if count < _BATCH:
                break
    writer.close()


def spool_more(spool: Spool, entries: list[tuple[bytes, int, int]]) -> None:
    """Entries added after a listing (name, inode, mark): `spool` made `marked`, its
    figures those of its listing so far."""
    writer = _Writer(spool, more=True)
    blob, starts, inos = writer.buffers()
    for name, ino, mark in entries:
        blob += name
        blob += b"\0"
        starts.append(writer.size + len(blob))  # (its end: the last start was its start)
        inos.append(ino)
        writer.marks.append(mark)
    writer.flush()
    writer.close()


class _Writer:
    """A spool's files written a batch at a time, with their CRCs."""

    def __init__(self, spool: Spool, *, more: bool = False) -> None:
        self.spool = spool
        self.blob = bytearray()
        self.starts, self.inos, self.marks = array("I"), array("Q"), array("I")
        n = spool.entries
        self.more = more  # after the listing: its last start, its end, is the next name's
        self.size, self.count = (spool.name_bytes, n) if more else (0, 0)
        self.at = [self.size, 4 * (n + 1), 8 * n, 4 * n] if more else [0, 0, 0, 0]
        self.crcs = list(spool.crcs) if more else [0, 0, 0]
        if not more:
            self.blob += b"\0"

    def buffers(self) -> tuple[bytearray, array[int], array[int]]:
        return self.blob, self.starts, self.inos

    def mark_batch(self, mark: Mark, count: int) -> None:
        """Mark the batch just listed (its names cut from the buffer)."""
        blob, starts, base = self.blob, self.starts, self.size
        for k in range(len(starts) - count, len(starts)):
            at = starts[k] - base
            end = blob.index(0, at)
            self.marks.append(mark(bytes(blob[at:end]), self.inos[k]))

    def flush(self) -> None:
        spool = self.spool
        parts: tuple[bytearray | array[int], ...] = (self.blob, self.starts, self.inos, self.marks)
        files = (spool.names, spool.starts, spool.inos, spool.marks)
        for k, (part, fd) in enumerate(zip(parts, files, strict=True)):
            if not part:
                continue
            if fd < 0:
                raise OSError(errno.EBADF, "a spool with no file for its marks")
            self.at[k] = put(fd, part, self.at[k])
            if k < len(self.crcs):  # (not the marks': see Spool)
                self.crcs[k] = zlib.crc32(part, self.crcs[k])
        self.size += len(self.blob)
        self.count += len(self.inos)
        self.blob.clear()
        for part in parts[1:]:
            del part[:]

    def close(self) -> None:
        """The last start (the names' end), and the figures."""
        spool = self.spool
        if not self.more:
            end = array("I", [self.size])
            self.at[1] = put(spool.starts, end, self.at[1])
            self.crcs[1] = zlib.crc32(end, self.crcs[1])
        spool.entries, spool.name_bytes = self.count, self.size
        spool.crcs = self.crcs


def map_file(fd: int, size: int, *, write: bool = False) -> mmap.mmap | None:
    """The first `size` bytes of a file, mapped (None: there are none)."""
    if not size:  # (a map of nothing cannot be made)
        return None
    access = mmap.ACCESS_WRITE if write else mmap.ACCESS_READ
    return mmap.mmap(fd, size, access=access)


def ints_of(data: mmap.mmap | None, kind: Literal["I", "Q"]) -> Ints:
    """A map's numbers (none: an empty array)."""
    return memoryview(data).cast(kind) if data is not None else array(kind)
