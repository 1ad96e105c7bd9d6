"""A target index's incremental run, at a cost that follows what changed rather than the
size of the index. Where the folder's last listing is kept beside a log it agrees with
(`snapshot`), the listing is compared with it as bytes (`plan_listed`): only the entries
that came, went or changed are looked at, and the wheels are a `listed.Listed` (arrays, an
object only for the files of the projects the run checks). Else (`plan_changes`) its
entries are compared with the log (a dict of file name -> inode number) as the folder is
listed (nothing is kept of a wheel the log lists with the same inode, and counts prove
that none of the log's is gone), the wheels are a `Catalog`; and the listing is kept for
the next run. Same plan as `plan.plan_run`, which compares every file (full runs,
combined indexes that cannot take a target's changes).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time
from array import array
from collections.abc import Mapping, MutableSet, Sequence
from pathlib import Path
from typing import NamedTuple

from wheelhouse.fsutil import TMP
from wheelhouse.index.fileops import stale_temp
from wheelhouse.index.listdiff import Diff, diff
from wheelhouse.index.listed import Listed, Present
from wheelhouse.index.plan import Plan
from wheelhouse.index.relisting import listing_of
from wheelhouse.index.scan import (
    Catalog,
    Found,
    Listing,
    Seen,
    Source,
    compare_listing,
    list_wheels,
    missing_folder,
    project_of,
    source_stamp,
)
from wheelhouse.index.snapshot import (
    LOOK,
    NONE,
    STRETCH,
    TEMP,
    Entries,
    Ints,
    Snapshot,
    let_go,
    map_of,
    publish,
    read_snapshot,
)
from wheelhouse.index.spool import Spool, list_into, spool_more
from wheelhouse.index.state import (
    METADATA_SUFFIX,
    FolderStamp,
    Log,
    empty_log,
    load_log,
    log_entry,
)

SIDECAR = ".whl" + METADATA_SUFFIX
_TMP = os.fsencode(TMP)
_SEARCHES = 16  # projects looked up one by one in the table (a search each): then a dict
LIMIT = 256  # entries that differ from the snapshot, plus a sixteenth of them: else the slow path


class Delta(NamedTuple):
    found: Catalog
    sidecars: dict[str, MutableSet[str]]  # per source prefix (one here): wheels with a sidecar
    seen: dict[str, Seen | None]  # the folder's stamp before it was listed (None: not listed)
    plan: Plan
    added: dict[str, str]  # the log's new lines: file name -> log entry
    removed: set[str]  # file names the pages stop listing


def plan_changes(
    src: Source, known: Log, existing: set[str], *, unchanged: FolderStamp | None
) -> Delta:
    """The plan of an incremental run over one folder this index owns (no `only`, no
    prefix), against a log that describes its pages (`known`, taken over: its dicts become
    the catalog's). `unchanged`: the folder's recorded stamp; while it holds, the folder is
    not listed (see writer.py)."""
    stamp = source_stamp(src)
    ino, project = known.ino, known.project
    touched: set[str] = set()
    new: dict[str, int] = {}
    removed: set[str] = set()
    if unchanged is not None and stamp == unchanged:
        seen = None
        present = set(ino)  # (every sidecar: the run that recorded the stamp saw them)
    else:
        seen = Seen(stamp, time.time_ns())
        compared = compare_listing(src, ino)
        new = compared.new  # new, or replaced (another inode)
        if compared.whole:  # (the usual run: files added or replaced, none removed)
            present = set(ino)  # (each has its sidecar)
            present.update(compared.extra)
            ino.update(new)
            lost = [name for name in new if name not in present]
        else:  # a wheel is gone, or a sidecar: listed again, to learn which
            listed, present = list_wheels(src)
            new = {name: i for name, i in listed.items() if ino.get(name) != i}
            removed = ino.keys() - listed.keys()
            touched.update(project.pop(name) for name in removed)
            lost = list(listed.keys() - present)
            ino = listed
        for name in new:
            project[name] = project_of(name)
        touched.update(project[name] for name in (*new, *lost))
    added = {name: log_entry(project[name], i) for name, i in new.items()}
    catalog = Catalog(src, ino, project)
    return _delta(catalog, set(project.values()), touched, existing, present, seen, added, removed)


def plan_listed(
    simple: Path,
    src: Source,
    snap: Snapshot,
    existing: set[str],
    *,
    unchanged: FolderStamp | None,
) -> Delta | None:
    """The plan of the same run as `plan_changes`, against the snapshot of the folder's last
    listing, which agrees with the log (see snapshot.py); None when the listing differs
    from it in too many places, or cannot be written down (then plan_changes). The
    listing goes to unnamed files in `simple` (`spool`): compared and marked where it
    lies, then the next snapshot."""
    stamp = source_stamp(src)
    if unchanged is not None and stamp == unchanged:  # not listed: the snapshot's entries
        entries = Entries(snap.names, snap.starts, snap.inos)  # (a snapshot is never rewritten)
        listed = Listed(src, entries, snap.marks, snap.table, snap.counts)
        present = Present(listed, set(), set(), set())
        return _delta(listed, listed.projects(), set(), existing, present, None, {}, set())
    ahead = src.ahead
    spool = ahead.take(stamp) if ahead is not None else None
    if ahead is not None and spool is not None:  # (listed after this stamp and time)
        seen = Seen(stamp, ahead.at)
    else:
        seen = Seen(stamp, time.time_ns())
        try:
            spool = Spool(simple)
        except OSError:
            return None
        try:
            list_into(spool, src.folder)
        except OSError as exc:  # (its files not written: a full disk, say; the slow path)
            spool.close()
            if isinstance(exc, FileNotFoundError) and not src.folder.is_dir():
                raise missing_folder(src) from None
            return None
    try:
        compared = _compared(src, spool, snap)
    except OSError:  # (no descriptor or map left: the slow path lists the folder itself)
        compared = None
    except BaseException:
        spool.close()
        raise
    if compared is None:
        spool.close()
        return None
    found, listed = compared
    changes = _Changes(listed)
    changes.settle(found, snap)
    present = Present(listed, changes.gone, changes.gained, changes.stale())
    return _delta(
        listed,
        listed.projects(),
        changes.touched,
        existing,
        present,
        seen,
        changes.added,
        changes.removed,
    )


def _compared(src: Source, spool: Spool, snap: Snapshot) -> tuple[Diff, Listed] | None:
    """The listing in `spool` compared with the snapshot, its marks the snapshot's where
    the two agree (NONE elsewhere, settled next); None where they differ too much."""
    entries = spool.mapped()
    found = diff(entries, snap.names, snap.inos, limit=LIMIT + len(entries.inos) // 16)
    if found is None:
        return None
    marks = spool.new_marks(NONE)
    for ei, ej, k in found.runs:
        _copy_marks(marks, ei, snap.marks, ej, k)
    listed = Listed(src, entries, marks, list(snap.table), array("I", snap.counts))
    listed.spool = spool
    listed.differs = bool(found.inserted or found.deleted or found.replaced)
    return found, listed


def _copy_marks(marks: Ints, at: int, old: Ints, start: int, count: int) -> None:
    """Copy `count` of the snapshot's marks from `start` into the listing's from `at`, a
    stretch at a time, the pages of each map let go of after each."""
    step, page = STRETCH // 4, mmap.PAGESIZE
    with memoryview(marks) as to, memoryview(old) as of:
        for k in range(0, count, step):
            n = min(step, count - k)
            to[at + k : at + k + n] = of[start + k : start + k + n]
            for data, first in ((map_of(marks), at + k), (map_of(old), start + k)):
                if data is not None:
                    let_go(data, 4 * first // page * page, 4 * n + page)


class _Changes:
    """What a listing changed against the snapshot, entry by entry."""

    def __init__(self, listed: Listed) -> None:
        self.listed = listed
        self.numbers: dict[str, int] | None = None  # project -> its number in the table
        self.searches = 0
        self.added: dict[str, str] = {}  # wheels new or replaced: name -> log entry
        self.removed: set[str] = set()
        self.touched: set[str] = set()
        self.gone: set[str] = set()  # wheels whose sidecar the listing lost
        self.gained: set[str] = set()  # wheels whose sidecar it gained

    def settle(self, found: Diff, snap: Snapshot) -> None:
        inos = self.listed.entries.inos
        for i, j in found.replaced:  # (the same name at its place, another inode)
            self.look(i, snap.marks[j])
        inserted = {self.listed.name(i): i for i in found.inserted}
        for j, name in found.deleted:
            i = inserted.pop(name, -1)
            if i < 0:
                self.deleted(name, snap.marks[j])
                continue
            self.listed.marks[i] = snap.marks[j]  # moved in the listing's order
            if inos[i] != snap.inos[j]:
                self.look(i, snap.marks[j])
        for i in inserted.values():
            self.look(i, NONE)
        for i in list(self.listed.positions(LOOK)):  # come or changed as a full run ended
            self.listed.marks[i] = NONE
            self.look(i, NONE)
        self.listed.forget()  # (the marks changed: found again from here on)
        self.removed -= self.added.keys()  # (gone from the log and back: one line says it)
        lost = self.gone - self.gained - self.removed
        marks, table = self.listed.marks, self.listed.table
        for i in self.listed.indexes(lost).values():  # (the wheels whose sidecar was lost)
            if marks[i] < LOOK:
                self.touched.add(table[marks[i]])
        for i in self.listed.positions(TEMP):  # temp files a live run had here before
            self.temp(i)

    def look(self, i: int, old: int) -> None:
        """An entry new in the listing, or another file under a name: `old`, its mark in
        the snapshot (a wheel's project, or NONE)."""
        listed = self.listed
        name = listed.name(i)
        path = f"{listed.source.folder}/{name}"
        if name[-4:] == ".whl" and name[0] != "." and os.path.isfile(path):  # noqa: PTH113
            project = listed.table[old] if old < LOOK else project_of(name)
            number = old if old < LOOK else self.number(project)
            if old >= LOOK:
                listed.counts[number] += 1
                listed.fresh.add(name)  # (no sidecar known of it)
            listed.marks[i] = number
            self.added[name] = log_entry(project, listed.entries.inos[i])
            self.touched.add(project)
        elif old < LOOK:  # a wheel of the log that is a file no more
            listed.marks[i] = NONE
            self.deleted(name, old)
        elif name.endswith(SIDECAR):
            self.gained.add(name[: -len(METADATA_SUFFIX)])
        elif name[0] == "." and name.endswith(TMP):
            listed.marks[i] = TEMP  # (looked at once the marks are settled)

    def number(self, project: str) -> int:
        """The project's number in the table (a new one is added): a search of the table
        for the first few, then a dict of it (a run that adds wheels by the hundred)."""
        table = self.listed.table
        if self.numbers is None:
            self.searches += 1
            if self.searches <= _SEARCHES:
                with contextlib.suppress(ValueError):
                    return table.index(project)
            else:
                self.numbers = {p: n for n, p in enumerate(table)}
        n = self.numbers.get(project) if self.numbers is not None else None
        if n is None:
            n = len(table)
            table.append(project)
            self.listed.counts.append(0)
            if self.numbers is not None:
                self.numbers[project] = n
        return n

    def deleted(self, name: str, old: int) -> None:
        """An entry of the snapshot that the listing no longer has."""
        if old < LOOK:
            self.listed.counts[old] -= 1
            self.removed.add(name)
            self.touched.add(self.listed.table[old])
        elif name.endswith(SIDECAR):
            self.gone.add(name[: -len(METADATA_SUFFIX)])

    def temp(self, i: int) -> None:
        name = self.listed.name(i)
        if stale_temp(name):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.listed.source.folder}/{name}")  # noqa: PTH108

    def stale(self) -> set[str]:
        """Wheels whose sidecar may be left: those gone, and sidecars gained by no wheel."""
        names = self.gained | (self.removed - self.gone)
        return names - self.listed.wheels_of(names)


def _delta(
    found: Catalog,
    projects: set[str],
    touched: set[str],
    existing: set[str],
    present: MutableSet[str],
    seen: Seen | None,
    added: dict[str, str],
    removed: set[str],
) -> Delta:
    """The plan: the projects the run checks (and those whose page is missing)."""
    touched = touched | (projects - existing)
    plan = Plan(
        touched=found.select(touched),
        changed={p: p not in existing for p in touched},
        projects=projects,
        found=found,
        keys=set(),
    )
    prefix = found.source.prefix
    return Delta(found, {prefix: present}, {prefix: seen}, plan, added, removed)


def _snapshot_after(simple: Path, delta: Delta, lines: int, token: str) -> bool:
    """Keep the snapshot the next run compares its listing with, once the log has this
    run's lines (`lines` in all, `token` its stamp), where the run compared its listing
    with the last snapshot: its listing (the spool's files, marked), and the sidecars this
    run wrote after it (their place in it is unknown: they go at the end in name order,
    with no inode; the next run finds them by name, see listdiff.py). False where the run
    compared its listing with the log's dicts (see `listing_of`)."""
    found = delta.found
    present = delta.sidecars[found.source.prefix]
    if not isinstance(found, Listed) or not isinstance(present, Present):
        return False
    spool = found.spool
    if spool is None:
        return False
    try:
        created = set(present.created)
        tail = sorted(created - found.indexes(created).keys())
        spool_more(spool, [(os.fsencode(name), 0, NONE) for name in tail])
        publish(simple, token, spool, found.table, found.counts, lines)
    except OSError:  # (a full disk: the next run takes the slow path)
        pass
    finally:
        spool.close()
        found.spool = None
    return True


def plan_target(
    simple: Path,
    src: Source,
    existing: set[str],
    token: str | None,
    unchanged: FolderStamp | None,
) -> tuple[Delta, int]:
    """The plan of an incremental run over one folder this index owns (see `covers`), and
    the lines in its log: against the snapshot of its last listing where there is one
    written with the log as it is (`token`: `upkeep.log_stamp`; None: there is no log, or
    no state), else against the log. `unchanged`: see plan_changes."""
    snap = read_snapshot(simple, token) if token is not None else None
    if snap is not None:
        try:
            delta = plan_listed(simple, src, snap, existing, unchanged=unchanged)
        except (IndexError, OverflowError):  # (marks that do not add up: edited by hand)
            delta = None
        if delta is not None:
            return delta, snap.lines
    known = load_log(simple) if token is not None else empty_log()
    return plan_changes(src, known, existing, unchanged=unchanged), known.lines


def keep_listing(
    simple: Path, src: Source, run: Delta | Sequence[Found], lines: int, token: str | None
) -> None:
    """Keep this run's listing for the next run to compare with, once the log is written
    (`lines` in it, `token` its stamp now): an incremental run's (`run`: its Delta) where
    it wrote the log or its listing is not the snapshot's (a run that changes nothing
    writes nothing); after a full run (`run`: every wheel), the folder listed again."""
    if token is None:
        return
    if not isinstance(run, Delta):
        listing_of(simple, src.folder, run, lines, token)
        return
    differs = isinstance(run.found, Listed) and run.found.differs
    if run.seen[src.prefix] is None or not (run.added or run.removed or differs):
        return  # (not listed, or nothing changed)
    if not _snapshot_after(simple, run, lines, token):
        listing_of(simple, src.folder, run.found, lines, token)


def covers(sources: Sequence[Source], listings: Mapping[Path, Listing]) -> bool:
    """Whether `plan_changes` can plan an incremental run over `sources`: one folder this
    index owns and publishes whole (a target's), not listed yet in this run."""
    if len(sources) != 1:
        return False
    src = sources[0]
    return src.owner and not src.prefix and src.only is None and src.folder not in listings
