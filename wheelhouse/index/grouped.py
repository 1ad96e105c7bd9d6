"""A full run's listing of a source folder (`wholerun`): the names of its wheels, and of the
wheels its sidecars are for, with inode and project numbers; each project's entries found
by one sort of their positions, made when the folder is listed. A small folder's is held
(buffers and arrays: some 60 bytes a wheel, 50 a sidecar, where a dict of the names with
their inodes and projects, and a set of the sidecars, held 300-500); a big one's goes to
unnamed files as it is listed (`Names`), walked in the listing's order through maps whose
pages are let go of, and read where it lies project by project (a map's pages come in
big folios: a chunk's names looked up at random would map most of it). What a full run
holds besides one chunk of projects is then the projects. A project's sidecars tell its
lost and stale ones apart (no set of every sidecar).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, MutableSet, Sequence
from itertools import accumulate
from pathlib import Path

from wheelhouse.fsutil import TMP
from wheelhouse.index.fileops import stale_temp
from wheelhouse.index.scan import Catalog, Found, Source, missing_folder, project_of
from wheelhouse.index.snapshot import Blob, Ints, let_go, map_of, put, search
from wheelhouse.index.spool import ints_of, map_file, unnamed
from wheelhouse.index.state import METADATA_SUFFIX

_SIDECAR = os.fsencode(".whl" + METADATA_SUFFIX)
_SIDE, _CUT = len(_SIDECAR), len(METADATA_SUFFIX)
_TMP = os.fsencode(TMP)
_FS, _ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_BATCH = 2048  # names listed between two writes to the files (see Names)
_EVERY = (1 << 16) - 1  # rows walked between two lets-go of the maps' pages
_PAIR = struct.Struct("=II")  # a name's start and the next one's


class Names:
    """Names in one buffer (each after a NUL, as a snapshot's), each with its project's
    number (and its inode, where `add` is given one); once `close`d, each project's
    positions (`of`), in the listing's order. A listing of more than a batch, where it has
    a place for files (`where`), goes to unnamed files a batch at a time as it comes
    (`spool.unnamed`) and is mapped once closed: a run holds none of it, only the pages it
    looks at, let go of (`let_go`) as it moves on. Else (a small folder) it is held."""

    __slots__ = (
        "_blob",
        "_files",
        "_inos",
        "_marks",
        "_order",
        "_sizes",
        "_starts",
        "_where",
        "blob",
        "first",
        "inos",
        "marks",
        "order",
        "starts",
    )

    def __init__(self, where: Path | None = None) -> None:
        self._blob = bytearray(b"\0")  # the batch being listed
        self._starts, self._marks, self._inos = array("I"), array("I"), array("Q")
        self._where = where
        self._files: list[int] = []  # names, starts, marks, inodes, once a batch is written
        self._order = -1  # the file of `order`, once closed (spooled)
        self._sizes = [0, 0, 0, 0]  # the bytes written to each
        self.blob: Blob = self._blob  # (from here on: once closed)
        self.starts: Ints = self._starts  # where each name starts (and one more: the end)
        self.marks: Ints = self._marks  # each name's project: its number in the table
        self.inos: Ints = self._inos  # each name's inode (none where none was given)
        self.order: Ints = array("I")  # the positions, grouped by project
        self.first = array("I")  # where each project's positions start in `order`

    def add(self, name: bytes, number: int, ino: int = -1) -> None:
        blob = self._blob
        self._starts.append(self._sizes[0] + len(blob))
        blob += name
        blob += b"\0"
        self._marks.append(number)
        if ino >= 0:
            self._inos.append(ino)
        if len(self._marks) >= _BATCH and self._where is not None:
            self._write()

    def _write(self) -> None:
        """The batch to the files (made at the first): where they cannot be made or
        written, the listing is held instead, what was written before read back."""
        parts: tuple[bytearray | array[int], ...] = (
            self._blob,
            self._starts,
            self._marks,
            self._inos,
        )
        before = list(self._sizes)
        try:
            if not self._files:
                assert self._where is not None
                for _ in parts:
                    self._files.append(unnamed(self._where))
            for k, part in enumerate(parts):
                self._sizes[k] = put(self._files[k], part, self._sizes[k])
        except OSError:  # (a full disk: this run holds its listing, as small ones do)
            self._sizes = before
            self._hold()
            return
        self._blob.clear()
        for numbers in parts[1:]:
            del numbers[:]

    def _hold(self) -> None:
        """Read back what the files hold before the batch: held from here on."""
        written = [_read(fd, size) for fd, size in zip(self._files, self._sizes, strict=False)]
        self._close_files()
        self._where, self._sizes = None, [0, 0, 0, 0]
        if not any(written):  # (then every file was made before any was written)
            return
        self._blob[:0] = written[0]
        rest = (self._starts, self._marks, self._inos)
        for numbers, data in zip(rest, written[1:], strict=True):
            held = array(numbers.typecode)
            held.frombytes(data)
            numbers[:0] = held

    def _close_files(self) -> None:
        for fd in (*self._files, self._order):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._files, self._order = [], -1

    def close(self, projects: int) -> None:
        """Group the positions by project, in the listing's order in each (a counting sort:
        no list of them all, as sorted() would make)."""
        if self._files:
            self._write()
        self._starts.append(self._sizes[0] + len(self._blob))
        count = len(self._marks) + self._sizes[2] // 4
        if self._files:
            self._write()
        if self._files:
            try:
                self._map(count)
            except OSError:  # (no descriptor or map left: this run holds its listing)
                self._hold()
                self.blob, self.starts = self._blob, self._starts
                self.marks, self.inos, self.order = self._marks, self._inos, array("I")
        marks = self.marks
        counts = Counter(marks)
        self.first = array("I", accumulate((counts[n] for n in range(projects)), initial=0))
        place = self.first.tolist()
        if len(self.order) != count:  # (held)
            self.order = array("I", bytes(4 * count))
        order = self.order
        for i, number in enumerate(marks):
            order[place[number]] = i
            place[number] += 1
        if self._order < 0:  # (held: the maps keep what they map)
            self._close_files()
        self.let_go()

    def _map(self, count: int) -> None:
        files, sizes = self._files, self._sizes
        self.blob = map_file(files[0], sizes[0]) or bytearray(b"\0")
        self.starts = ints_of(map_file(files[1], sizes[1]), "I")
        self.marks = ints_of(map_file(files[2], sizes[2]), "I")
        self.inos = ints_of(map_file(files[3], sizes[3]), "Q")
        self.order = self._new_order(count)

    def _new_order(self, count: int) -> Ints:
        assert self._where is not None
        fd = unnamed(self._where)
        try:
            os.ftruncate(fd, 4 * count)
            order = ints_of(map_file(fd, 4 * count, write=True), "I")
        except BaseException:
            os.close(fd)
            raise
        self._order = fd
        return order

    def __del__(self) -> None:
        self._close_files()

    def let_go(self) -> None:
        """Let go of the pages of the maps (read again from the page cache if wanted)."""
        if isinstance(self.blob, mmap.mmap):
            let_go(self.blob, 0, len(self.blob))
        for numbers in (self.starts, self.marks, self.inos, self.order):
            data = map_of(numbers)
            if data is not None:
                let_go(data, 0, len(data))

    def __len__(self) -> int:
        return len(self.marks)

    def name(self, i: int) -> str:
        """The `i`th name: read where it lies, where the listing is in files (a map's pages
        come in big folios: a few names looked up at random would map most of it)."""
        if self._order >= 0:
            start, end = _PAIR.unpack(os.pread(self._files[1], 8, 4 * i))
            return os.pread(self._files[0], end - start - 1, start).decode(_FS, _ERRORS)
        # (os.fsdecode, without a copy of the bytes first)
        return self.blob[self.starts[i] : self.starts[i + 1] - 1].decode(_FS, _ERRORS)

    def ino(self, i: int) -> int:
        if self._order >= 0:
            return int.from_bytes(os.pread(self._files[3], 8, 8 * i), sys.byteorder)
        return self.inos[i]

    def mark(self, i: int) -> int:
        if self._order >= 0:
            return int.from_bytes(os.pread(self._files[2], 4, 4 * i), sys.byteorder)
        return self.marks[i]

    def of(self, number: int) -> Ints:
        """The positions of a project's names."""
        start, end = self.first[number], self.first[number + 1]
        if self._order >= 0:
            positions = array("I")
            positions.frombytes(os.pread(self._order, 4 * (end - start), 4 * start))
            return positions
        return self.order[start:end]

    def rows(self) -> Iterator[tuple[str, int, int]]:
        """Each name, its inode (0 where none is kept) and its mark, in the listing's order
        (walked through the maps, their pages let go of as it goes)."""
        blob, starts, marks, inos = self.blob, self.starts, self.marks, self.inos
        kept = len(inos) == len(marks)
        for i, number in enumerate(marks):
            name = blob[starts[i] : starts[i + 1] - 1].decode(_FS, _ERRORS)
            yield name, inos[i] if kept else 0, number
            if not i & _EVERY:
                self.let_go()
        self.let_go()

    def count(self, number: int) -> int:
        return self.first[number + 1] - self.first[number]


def _read(fd: int, size: int) -> bytes:
    data = os.pread(fd, size, 0)
    if len(data) != size:
        raise OSError(errno.EIO, "a listing's file cut short")
    return data


class Grouped(Catalog):
    """The wheels of one source folder (`names`, with `inos`) and the wheels its sidecars
    are for (`sidecars`; empty where the wheels came from another index of the run, which
    listed them: `listed` is False), by project (`table`). A Found is made for the wheels a
    run walks (a combined index that compares every file), else none is kept."""

    __slots__ = ("inos", "listed", "names", "numbers", "sidecars", "table")

    def __init__(
        self,
        source: Source,
        names: Names,
        sidecars: Names,
        table: list[str],
        numbers: dict[str, int],
    ) -> None:
        super().__init__(source, {}, {})
        self.names, self.inos, self.sidecars = names, names.inos, sidecars
        self.table, self.numbers = table, numbers
        self.listed = True

    @classmethod
    def of(cls, wheels: Sequence[Found], source: Source, where: Path | None = None) -> Grouped:
        """The same for wheels another index of the run found (no sidecar is known); its
        files in `where` (see Names)."""
        rows: Iterable[tuple[str, int, str]]
        if isinstance(wheels, Catalog):
            rows = wheels.wheel_rows()
        else:
            rows = ((f.filename, f.ino, f.project or project_of(f.filename)) for f in wheels)
        table: list[str] = []
        numbers: dict[str, int] = {}
        names = Names(where)
        for name, ino, project in rows:
            number = numbers.setdefault(project, len(table))
            if number == len(table):
                table.append(project)
            names.add(os.fsencode(name), number, ino)
        names.close(len(table))
        sidecars = Names()
        sidecars.close(len(table))
        grouped = cls(source, names, sidecars, table, numbers)
        grouped.listed = False
        return grouped

    def __len__(self) -> int:
        return len(self.names)

    def projects(self) -> set[str]:
        """The projects with a wheel here."""
        names = self.names
        return {p for n, p in enumerate(self.table) if names.count(n)}

    def count(self, project: str) -> int:
        n = self.numbers.get(project)
        return 0 if n is None else self.names.count(n)

    def project_wheels(self, project: str) -> list[Found]:
        """A project's wheels, as objects this catalog does not keep."""
        n = self.numbers.get(project)
        if n is None:
            return []
        names, prefix, source = self.names, self.source.prefix, self.source
        out = []
        for i in names.of(n):
            name = names.name(i)
            item = Found(prefix + name, source, name, names.ino(i))
            item.project = project
            out.append(item)
        return out

    def wheel_name(self, project: str, j: int) -> str:
        """The name of the `j`th of a project's wheels (as `project_wheels` gives them)."""
        names = self.names
        return names.name(names.of(self.numbers[project])[j])

    def project_sidecars(self, project: str) -> set[str]:
        """The wheels of a project whose sidecar is there (or a stale one's)."""
        n = self.numbers.get(project)
        if n is None:
            return set()
        return {self.sidecars.name(i) for i in self.sidecars.of(n)}

    def orphan_sidecars(self) -> list[str]:
        """The sidecars of projects with no wheel here (all stale)."""
        names, sidecars = self.names, self.sidecars
        return [
            sidecars.name(i)
            for n in range(len(self.table))
            if sidecars.count(n) and not names.count(n)
            for i in sidecars.of(n)
        ]

    def wheel_rows(self) -> Iterator[tuple[str, int, str]]:
        table = self.table
        for name, ino, number in self.names.rows():
            yield name, ino, table[number]

    def every(self) -> list[Found]:
        if self._all is None:
            self._all = [self._kept(name, ino, project) for name, ino, project in self.wheel_rows()]
        return self._all

    def select(self, projects: set[str]) -> dict[str, list[Found]]:
        files: dict[str, list[Found]] = {}
        for project in projects:
            n = self.numbers.get(project)
            files[project] = [] if n is None else [self._at(i) for i in self.names.of(n)]
        return files

    def _at(self, i: int) -> Found:
        names = self.names
        return self._kept(names.name(i), names.ino(i), self.table[names.mark(i)])

    def is_wheel(self, name: str) -> bool:
        """(One search of the names: for the rare caller.)"""
        return search(self.names.blob, b"\0" + os.fsencode(name) + b"\0") >= 0

    def handed(self, source: Source) -> Grouped:
        new = Grouped(source, self.names, self.sidecars, self.table, self.numbers)
        new.listed = self.listed
        new._made = self._made
        self._hand_over(source)
        return new

    def stale_sidecars(self, present: MutableSet[str]) -> Iterable[str]:
        if isinstance(present, Sidecars):
            return present.stale
        if len(present) <= len(self):  # (every wheel has its sidecar by now)
            return ()
        return present - {name for name, _, _ in self.wheel_rows()}


class Sidecars(MutableSet[str]):
    """The wheels of a listed `Grouped` whose sidecar is there once its full run has
    written the missing ones: every wheel (adding one changes nothing), and `stale`: the
    sidecars whose wheel is not there, found project by project."""

    def __init__(self, grouped: Grouped) -> None:
        self.grouped = grouped
        self.stale: set[str] = set(grouped.orphan_sidecars())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.stale or self.grouped.is_wheel(name))

    def __iter__(self) -> Iterator[str]:
        yield from (name for name, _, _ in self.grouped.wheel_rows())
        yield from self.stale

    def __len__(self) -> int:
        return len(self.grouped) + len(self.stale)

    def add(self, value: str) -> None:
        pass

    def discard(self, value: str) -> None:
        self.stale.discard(value)


def list_grouped(src: Source, where: Path | None = None) -> Grouped:
    """One listing of a source folder (names and inode numbers from the directory entries,
    as bytes: none is decoded, no stat): its wheels (those of `src.only`, where it is set),
    and the wheels its sidecars are for (a wheel left out keeps its sidecar: old pages list
    it); in unnamed files in `where` where it is big (see Names). Removes the temp files
    of dead runs' sidecars."""
    only = None if src.only is None else {os.fsencode(n) for n in src.only}
    names, sidecars = Names(where), Names(where)
    table: list[str] = []
    numbers: dict[str, int] = {}
    by_prefix: dict[bytes, int] = {}  # a name's part before its first "-" -> its project's

    def number(name: bytes) -> int:
        prefix = name.partition(b"-")[0]
        n = by_prefix.get(prefix)
        if n is None:
            project = project_of(os.fsdecode(name))
            n = by_prefix[prefix] = numbers.setdefault(project, len(table))
            if n == len(table):
                table.append(project)
        return n

    try:
        entries = os.scandir(os.fsencode(src.folder))
    except FileNotFoundError:  # (removed since its stamp was taken)
        raise missing_folder(src) from None
    with entries:  # (the one loop over every entry: kept to plain operations)
        for entry in entries:
            name = entry.name
            if name[-4:] == b".whl":
                if name[:1] != b"." and (only is None or name in only) and entry.is_file():
                    names.add(name, number(name), entry.inode())
            elif name[-_SIDE:] == _SIDECAR:
                base = name[:-_CUT]
                if only is None or base in only:
                    sidecars.add(base, number(base))
            elif name[:1] == b"." and name[-4:] == _TMP and stale_temp(os.fsdecode(name)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)  # noqa: PTH108
    names.close(len(table))
    sidecars.close(len(table))
    return Grouped(src, names, sidecars, table, numbers)
