"""A full run's listing of a source folder (`wholerun`): the names of its wheels, and of the
wheels its sidecars are for, each in one buffer, with inode and project numbers in arrays;
each project's entries found by one sort of their positions, made when the folder is
listed. Some 60 bytes a wheel, 50 a sidecar and 100 a project (~140 a wheel with its
sidecar, at 5 wheels a project), where a dict of the names with their inodes and
projects, and a set of the sidecars, held 300-500: what a full run holds besides one
chunk of projects. A project's sidecars tell its lost and stale ones apart
(no set of every sidecar).
"""

from __future__ import annotations

import contextlib
import os
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, MutableSet, Sequence
from itertools import accumulate

from wheelhouse.fsutil import TMP
from wheelhouse.index.fileops import stale_temp
from wheelhouse.index.scan import Catalog, Found, Source, missing_folder, project_of
from wheelhouse.index.state import METADATA_SUFFIX

_SIDECAR = os.fsencode(".whl" + METADATA_SUFFIX)
_SIDE, _CUT = len(_SIDECAR), len(METADATA_SUFFIX)
_TMP = os.fsencode(TMP)
_FS, _ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class Names:
    """Names in one buffer (each after a NUL, as a snapshot's), each with its project's
    number; once `close`d, each project's positions (`of`), in the listing's order."""

    __slots__ = ("blob", "first", "marks", "order", "starts")

    def __init__(self) -> None:
        self.blob = bytearray(b"\0")
        self.starts = array("I")  # where each name starts (one more at the end, once closed)
        self.marks = array("I")  # each name's project: its number in the table
        self.order = array("I")  # the positions, grouped by project
        self.first = array("I")  # where each project's positions start in `order`

    def add(self, name: bytes, number: int) -> None:
        self.starts.append(len(self.blob))
        self.blob += name
        self.blob += b"\0"
        self.marks.append(number)

    def close(self, projects: int) -> None:
        """Group the positions by project, in the listing's order in each (a counting sort:
        no list of them all, as sorted() would make)."""
        self.starts.append(len(self.blob))
        marks = self.marks
        counts = Counter(marks)
        self.first = array("I", accumulate((counts[n] for n in range(projects)), initial=0))
        place = self.first.tolist()
        order = self.order = array("I", bytes(4 * len(marks)))
        for i, number in enumerate(marks):
            order[place[number]] = i
            place[number] += 1

    def __len__(self) -> int:
        return len(self.marks)

    def name(self, i: int) -> str:
        # (os.fsdecode, without a copy of the bytes first)
        return self.blob[self.starts[i] : self.starts[i + 1] - 1].decode(_FS, _ERRORS)

    def of(self, number: int) -> array[int]:
        """The positions of a project's names."""
        return self.order[self.first[number] : self.first[number + 1]]

    def count(self, number: int) -> int:
        return self.first[number + 1] - self.first[number]


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
        inos: array[int],
        sidecars: Names,
        table: list[str],
        numbers: dict[str, int],
    ) -> None:
        super().__init__(source, {}, {})
        self.names, self.inos, self.sidecars = names, inos, sidecars
        self.table, self.numbers = table, numbers
        self.listed = True

    @classmethod
    def of(cls, wheels: Sequence[Found], source: Source) -> Grouped:
        """The same for wheels another index of the run found (no sidecar is known)."""
        rows: Iterable[tuple[str, int, str]]
        if isinstance(wheels, Catalog):
            rows = wheels.wheel_rows()
        else:
            rows = ((f.filename, f.ino, f.project or project_of(f.filename)) for f in wheels)
        table: list[str] = []
        numbers: dict[str, int] = {}
        names, inos = Names(), array("Q")
        for name, ino, project in rows:
            number = numbers.setdefault(project, len(table))
            if number == len(table):
                table.append(project)
            names.add(os.fsencode(name), number)
            inos.append(ino)
        names.close(len(table))
        sidecars = Names()
        sidecars.close(len(table))
        grouped = cls(source, names, inos, sidecars, table, numbers)
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
        names, inos, prefix, source = self.names, self.inos, self.source.prefix, self.source
        out = []
        for i in names.of(n):
            name = names.name(i)
            item = Found(prefix + name, source, name, inos[i])
            item.project = project
            out.append(item)
        return out

    def wheel_name(self, project: str, j: int) -> str:
        """The name of the `j`th of a project's wheels (as `project_wheels` gives them)."""
        names = self.names
        return names.name(names.order[names.first[self.numbers[project]] + j])

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
        names, inos, table = self.names, self.inos, self.table
        for i, number in enumerate(names.marks):
            yield names.name(i), inos[i], table[number]

    def every(self) -> list[Found]:
        if self._all is None:
            self._all = [self._at(i) for i in range(len(self.names))]
        return self._all

    def select(self, projects: set[str]) -> dict[str, list[Found]]:
        files: dict[str, list[Found]] = {}
        for project in projects:
            n = self.numbers.get(project)
            files[project] = [] if n is None else [self._at(i) for i in self.names.of(n)]
        return files

    def _at(self, i: int) -> Found:
        return self._kept(self.names.name(i), self.inos[i], self.table[self.names.marks[i]])

    def is_wheel(self, name: str) -> bool:
        """(One search of the names: for the rare caller.)"""
        return self.names.blob.find(b"\0" + os.fsencode(name) + b"\0") >= 0

    def handed(self, source: Source) -> Grouped:
        new = Grouped(source, self.names, self.inos, self.sidecars, self.table, self.numbers)
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


def list_grouped(src: Source) -> Grouped:
    """One listing of a source folder (names and inode numbers from the directory entries,
    as bytes: none is decoded, no stat): its wheels (those of `src.only`, where it is set),
    and the wheels its sidecars are for (a wheel left out keeps its sidecar: old pages list
    it). Removes the temp files of dead runs' sidecars."""
    only = None if src.only is None else {os.fsencode(n) for n in src.only}
    names, sidecars, inos = Names(), Names(), array("Q")
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
                    names.add(name, number(name))
                    inos.append(entry.inode())
            elif name[-_SIDE:] == _SIDECAR:
                base = name[:-_CUT]
                if only is None or base in only:
                    sidecars.add(base, number(base))
            elif name[:1] == b"." and name[-4:] == _TMP and stale_temp(os.fsdecode(name)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)  # noqa: PTH108
    names.close(len(table))
    sidecars.close(len(table))
    return Grouped(src, names, inos, sidecars, table, numbers)
