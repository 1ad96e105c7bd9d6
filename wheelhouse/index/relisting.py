"""The snapshot of a folder listed again after a run that compared every file (a full run,
or an incremental one against the log's dicts): the listing goes to unnamed files as it
comes (`spool`), each entry marked with its wheel's project as the run found it (in the
run's order where the folder lists in it: no lookup), then into the snapshot the next run
compares with (`snapshot.publish`).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

from wheelhouse.fsutil import TMP
from wheelhouse.index.scan import Catalog, Found
from wheelhouse.index.snapshot import LOOK, NONE, TEMP, publish
from wheelhouse.index.spool import Spool, list_into, spool_more

_TMP = os.fsencode(TMP)


def listing_of(simple: Path, folder: Path, found: Sequence[Found], lines: int, token: str) -> None:
    """Keep the snapshot of a folder listed again after a run that compared every file (a
    full run, or one against the log's dicts), whose log now has `lines` lines (`token`)
    and lists the wheels of `found`: the listing goes to unnamed files as it comes (no
    buffer of it, see spool.py), then into the snapshot. An entry that came or changed
    since the run listed the folder is marked LOOK (the next run looks at it as new); a
    wheel of the log that went meanwhile goes at the end (the next run finds it gone). One
    that cannot be written (the folder gone meanwhile, a full disk) only costs the next
    run the slow path."""
    marking = _Marking(found)
    try:
        spool = Spool(simple, marked=True)
    except OSError:
        return
    try:
        list_into(spool, folder, marking.mark)
        gone = marking.left()
        number = marking.number
        spool_more(spool, [(os.fsencode(name), i, number(p)) for name, i, p in gone])
        publish(simple, token, spool, marking.table, marking.counts, lines)
    except OSError:
        pass
    finally:
        spool.close()


class _Marking:
    """Marks a listing's entries with the projects of the log's wheels: in the order of
    `found` (a full run's, listed in the same order: no lookup), by a dict of them from
    the first entry that is not."""

    def __init__(self, found: Sequence[Found]) -> None:
        self.rows: Iterator[tuple[str, int, str]]  # (name, inode, project) in found's order
        if isinstance(found, Catalog):  # (a full run's, in the listing's order: no object)
            self.rows = found.wheel_rows()
        else:
            self.rows = ((f.filename, f.ino, f.project) for f in found)
        self.by_name: dict[str, tuple[int, str]] | None = None
        self.table: list[str] = []
        self.numbers: dict[str, int] = {}
        self.counts = array("I")
        self.gone: list[tuple[str, int, str]] = []
        self.row = next(self.rows, None)  # the next wheel of `found`, and its name
        self.want = os.fsencode(self.row[0]) if self.row is not None else None

    def number(self, project: str) -> int:
        n = self.numbers.get(project)
        if n is None:
            n = self.numbers[project] = len(self.table)
            self.table.append(project)
            self.counts.append(0)
        self.counts[n] += 1
        return n

    def mark(self, name: bytes, ino: int) -> int:
        """The mark of the listing's next entry."""
        row = self.row
        if name == self.want:
            assert row is not None
            mark = self.number(row[2]) if row[1] == ino else self.moved(row)
            self.row = row = next(self.rows, None)
            self.want = os.fsencode(row[0]) if row is not None else None
            return mark
        if name[-4:] == b".whl":
            if row is not None:  # out of order: by name from here
                self.by_name = {row[0]: (row[1], row[2])}
                self.by_name.update((n, (node, p)) for n, node, p in self.rows)
                self.want = self.row = None
            return self.other(os.fsdecode(name), ino)
        return TEMP if name[-4:] == _TMP and name[:1] == b"." else NONE

    def moved(self, row: tuple[str, int, str]) -> int:
        """A wheel of the log whose name is another file now: looked at by the next run,
        which also finds the log's gone."""
        self.gone.append(row)
        return LOOK

    def other(self, name: str, ino: int) -> int:
        """A wheel's name met out of `found`'s order: by name (LOOK: none of the log's)."""
        wheel = self.by_name.pop(name, None) if self.by_name is not None else None
        if wheel is None:
            return LOOK
        if wheel[0] == ino:
            return self.number(wheel[1])
        self.gone.append((name, *wheel))
        return LOOK

    def left(self) -> list[tuple[str, int, str]]:
        """The wheels of the log not listed with their inode (gone or replaced since)."""
        if self.row is not None:  # (the rest of them: gone since)
            self.gone.append(self.row)
            self.row = self.want = None
        if self.by_name is None:
            rest = list(self.rows)
        else:
            rest = [(name, ino, project) for name, (ino, project) in self.by_name.items()]
        return self.gone + rest
