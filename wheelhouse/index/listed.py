"""A folder's wheels as its listing and snapshot hold them (`snapshot`, `spool`): names,
inodes and project numbers mapped where they lie (a name decoded where an object is made),
an object only for the files a run looks at; and which of them have their sidecar, from
what the listing changed.
"""

from __future__ import annotations

import mmap
import os
import struct
from array import array
from collections.abc import Iterable, Iterator, MutableSet
from itertools import compress
from typing import overload

from wheelhouse.index.scan import Catalog, Found, Source
from wheelhouse.index.snapshot import LOOK, Blob, Entries, Ints, let_go, raw
from wheelhouse.index.spool import Spool
from wheelhouse.index.state import METADATA_SUFFIX

_SEARCHES = 16  # names looked up one by one (a search of the listing each): then a dict


class Listed(Catalog):
    """The wheels of one folder: the entries of its listing (`entries`) whose mark is a
    project's number in `table` (see snapshot.py). `fresh`: the wheels that were not in
    the snapshot (no sidecar is known of them)."""

    __slots__ = (
        "_bytes",
        "_index",
        "_lookups",
        "counts",
        "differs",
        "entries",
        "fresh",
        "marks",
        "spool",
        "table",
    )

    def __init__(
        self,
        source: Source,
        entries: Entries,
        marks: Ints,
        table: list[str],
        counts: array[int],
    ) -> None:
        super().__init__(source, {}, {})
        self.entries, self.marks, self.table, self.counts = entries, marks, table, counts
        self.fresh: set[str] = set()
        self.differs = False  # from the snapshot it was made from
        self._bytes: Blob | None = None
        self.spool: Spool | None = None  # the listing's files: the next snapshot's (delta.py)
        self._index: dict[bytes, int] | None = None
        self._lookups = 0

    def __len__(self) -> int:
        return sum(self.counts)

    @overload
    def __getitem__(self, index: int) -> Found: ...

    @overload
    def __getitem__(self, index: slice) -> list[Found]: ...

    def __getitem__(self, index: int | slice) -> Found | list[Found]:
        return self.every()[index]

    def projects(self) -> set[str]:
        return set(compress(self.table, self.counts))  # (those with a wheel)

    def positions(self, number: int) -> Iterator[int]:
        """The entries marked `number` (found in the marks' bytes where they lie, C's
        speed; a map's pages let go of after)."""
        if self._bytes is None:
            self._bytes = raw(self.marks)
        data, pattern = self._bytes, struct.pack("=I", number)
        at = data.find(pattern)
        while at >= 0:
            if at % 4 == 0:
                yield at // 4
                at = data.find(pattern, at + 4)
            else:
                at = data.find(pattern, at + 1)
        if isinstance(data, mmap.mmap):
            let_go(data, 0, len(data))

    def forget(self) -> None:
        """The marks changed: `positions` reads them again (a copy's; a map is theirs)."""
        self._bytes = None

    def indexes(self, names: set[str]) -> dict[str, int]:
        """The entries of these names that are here (many looked up in one pass)."""
        if self._index is not None:
            return {n: i for n in names if (i := self._index.get(os.fsencode(n))) is not None}
        found = self.entries.indexes({os.fsencode(n) for n in names})
        return {os.fsdecode(n): i for n, i in found.items()}

    def select(self, projects: set[str]) -> dict[str, list[Found]]:
        files: dict[str, list[Found]] = {p: [] for p in projects}
        numbers = {p: n for n, p in enumerate(self.table) if p in files}
        for project, number in numbers.items():
            files[project] = [self._at(i) for i in self.positions(number)]
        return files

    def every(self) -> list[Found]:
        if self._all is None:
            self._all = [self._at(i) for i, m in enumerate(self.marks) if m < LOOK]
        return self._all

    def wheel_rows(self) -> Iterator[tuple[str, int, str]]:
        inos, table = self.entries.inos, self.table
        return ((self.name(i), inos[i], table[m]) for i, m in enumerate(self.marks) if m < LOOK)

    def wheel_names(self) -> set[str]:
        return {f.filename for f in self.every()}

    def stale_sidecars(self, present: MutableSet[str]) -> Iterable[str]:
        if isinstance(present, Present):
            return present.stale
        return present - self.wheel_names()

    def name(self, i: int) -> str:
        return os.fsdecode(self.entries.name(i))

    def index_of(self, name: str) -> int | None:
        """The entry of this name: a search of the names for the first few, then a dict of
        them all (a run that looks up many one at a time; many at once: `indexes`)."""
        key = os.fsencode(name)
        if self._index is None:
            self._lookups += 1
            if self._lookups <= _SEARCHES:
                return self.entries.find(key)
            names = bytes(self.entries.blob[1:-1]).split(b"\0") if self.entries.inos else []
            self._index = {n: i for i, n in enumerate(names)}
        return self._index.get(key)

    def is_wheel(self, name: str) -> bool:
        if name in self._made:  # (an object is made for a wheel only)
            return True
        i = self.index_of(name)
        return i is not None and self.marks[i] < LOOK

    def wheels_of(self, names: set[str]) -> set[str]:
        """Those of `names` that are wheels here (one pass for them all: see `indexes`)."""
        found = self.indexes(names - self._made.keys())
        return (names & self._made.keys()) | {n for n, i in found.items() if self.marks[i] < LOOK}

    def _at(self, i: int) -> Found:
        return self._kept(self.name(i), self.entries.inos[i], self.table[self.marks[i]])

    def handed(self, source: Source) -> Catalog:
        new = Listed(source, self.entries, self.marks, self.table, self.counts)
        new.fresh, new.differs, new.spool = self.fresh, self.differs, self.spool
        new._made = self._made
        self._hand_over(source)
        return new


class Present(MutableSet[str]):
    """The wheels of a `Listed` whose sidecar is there: every wheel of the snapshot's (the
    run that wrote it left each with its sidecar, and kept those it wrote), but those
    whose sidecar the listing lost; and the wheels whose sidecar the listing gained.
    `created`: the sidecars this run wrote where there was none (the next snapshot keeps
    them); `stale`: wheels gone whose sidecar may be left."""

    def __init__(self, listed: Listed, gone: set[str], gained: set[str], stale: set[str]) -> None:
        self.listed = listed
        self.gone = gone - gained
        self.gained = gained
        self.stale = stale
        self.created: list[str] = []

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or name in self.gone:
            return False
        if name in self.gained:
            return True
        return name not in self.listed.fresh and self.listed.is_wheel(name)

    def __iter__(self) -> Iterator[str]:
        return iter([*(n for n in self.listed.wheel_names() if n in self), *self.stale])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def add(self, value: str) -> None:
        if value not in self:
            self.created.append(value + METADATA_SUFFIX)
        self.gone.discard(value)
        self.gained.add(value)

    def discard(self, value: str) -> None:
        self.gained.discard(value)
        self.gone.add(value)
