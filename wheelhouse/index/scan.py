"""Finding the wheels an index publishes: every wheel of its source folders (from a
listing of each folder that changed, names and inode numbers, no stat; from the log for a
folder that did not), and its state record where the stat stamp says the file is
unchanged (the others are read by `reading`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, MutableSet, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, overload

from packaging.utils import canonicalize_name

from wheelhouse.errors import PublishError
from wheelhouse.fsutil import TMP
from wheelhouse.index.fileops import stale_temp
from wheelhouse.index.state import (
    META_SIZE,
    METADATA_SUFFIX,
    SHA256,
    SIMPLE,
    FileRecord,
    FolderStamp,
    Log,
    Stamp,
    load_project,
    same_file,
)

if TYPE_CHECKING:
    from wheelhouse.index.ahead import ListedAhead


@dataclass(frozen=True, kw_only=True)
class Source:
    """A folder of wheels published by an index.

    `prefix` is the folder's URL path relative to the folder that holds `simple/` ("" for a
    target's own index, "slim/" in the combined one). `owner`: this index removes `.metadata`
    sidecars whose wheel is gone (the combined index leaves that to each target's own)."""

    folder: Path
    prefix: str = ""
    owner: bool = True
    # file name -> sha256 the caller vouches for (a build that just linked the file from
    # its verified store): not hashed again, only its METADATA is read
    sha256: Mapping[str, str] = field(default_factory=dict)
    # <sha256>.metadata files: a wheel's METADATA by its hash, so a vouched wheel is not
    # even opened (a big wheel's zip directory costs milliseconds to parse)
    metadata_cache: Path | None = None
    # the wheels to publish (a build's, whose folder still holds the wheels it removes once
    # the pages no longer list them); None: every wheel in the folder
    only: frozenset[str] | None = None
    # the folder listed ahead by a child (see ahead.py): this run's listing where the
    # folder did not change since (and the names in the combined index's simple/)
    ahead: ListedAhead | None = None

    def publishes(self, filename: str) -> bool:
        return self.only is None or filename in self.only


@dataclass(frozen=True, kw_only=True)
class Listing:
    """What one run learned of a source folder: every wheel found (its inode and, where
    this run stat'ed, read or looked it up, stamp and record), the sidecars present, and
    the folder's stamp before it was listed. Handed from a target's index to the combined
    one in the same run: one scan of each folder serves both."""

    wheels: Sequence[Found]  # the target index's, handed over: the next index reuses them
    sidecars: MutableSet[str]  # the wheels whose sidecar is present (the set itself: handed on)
    seen: Seen | None  # the folder's stamp before the listing (None: it was not listed)
    changes: Changes | None = None  # what the target index's run changed (see Changes)


@dataclass(frozen=True, kw_only=True)
class Changes:
    """What a target index's run changed, against its log as it was (the token `before`;
    `after`: its log's token now): an index whose own log agreed with `before` for this
    folder (a combined index) has exactly these changes to make, and need not compare every
    file with its log (see writer.py)."""

    before: str | None  # None: that run compared nothing (a full run)
    after: str | None
    added: Mapping[str, str]  # file name -> log entry: new or replaced files
    removed: frozenset[str]  # file names the pages no longer list
    touched: frozenset[str]  # the projects checked
    projects: frozenset[str]  # every project of the folder


class Seen(NamedTuple):
    """A source folder's stamp, and when it was taken (time.time_ns()): a run that finds the
    same stamp at its end saw every entry the folder had (see writer.py)."""

    stamp: FolderStamp
    at: int


def folder_stamp(folder: Path | str) -> FolderStamp:
    st = os.stat(folder)  # noqa: PTH116
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


class Found:
    """A wheel found in a source folder this run: filled in as the run learns of it (one
    per wheel, thousands per run: a plain slotted class)."""

    __slots__ = (
        "filename",
        "fresh",
        "hint",
        "ino",
        "key",
        "known",
        "metadata",
        "project",
        "rec",
        "source",
        "stamp",
    )

    def __init__(self, key: str, source: Source, filename: str, ino: int) -> None:
        self.key = key  # prefix + filename: unique in the index
        self.source = source
        self.filename = filename
        self.ino = ino  # from the folder's listing (or the log, for an unchanged folder)
        self.stamp: Stamp | None = None  # stat'ed where its project is checked
        self.project = ""  # the page it is on (from the log, else its file name)
        self.hint: FileRecord | None = None  # a record another index of this run holds
        self.rec: FileRecord | None = None  # from a state when the stamp matches, else read
        self.known = False  # rec is this index's own record of the file, unchanged
        self.fresh = False  # read this run
        self.metadata: bytes | None = None  # read this run: the sidecar to write


class Catalog(Sequence[Found]):
    """The wheels of one source folder without an object per wheel: their names, inode
    numbers and projects (a listing compared with the log, or the log alone). A Found is
    made for the files of the projects a run checks (`select`), and for every file only
    where something walks them all (rare: yanks that changed, a log written whole, the
    sidecars of removed wheels, a combined index over several folders that cannot take
    the target's changes as its own)."""

    __slots__ = ("_all", "_made", "ino", "project", "source")

    def __init__(self, source: Source, ino: dict[str, int], project: dict[str, str]) -> None:
        self.source = source
        self.ino = ino  # file name -> inode
        self.project = project  # file name -> project (the same names)
        self._made: dict[str, Found] = {}
        self._all: list[Found] | None = None

    def __len__(self) -> int:
        return len(self.ino)

    @overload
    def __getitem__(self, index: int) -> Found: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Found]: ...

    def __getitem__(self, index: int | slice) -> Found | Sequence[Found]:
        return self.every()[index]

    def __iter__(self) -> Iterator[Found]:
        return iter(self.every())

    def select(self, projects: set[str]) -> dict[str, list[Found]]:
        """The files of each of `projects` (one pass over the names, objects for those)."""
        files: dict[str, list[Found]] = {p: [] for p in projects}
        if projects:
            made, make = self._made, self._make
            for name, project in self.project.items():
                if project in files:
                    files[project].append(made.get(name) or make(name))
        return files

    def every(self) -> list[Found]:
        if self._all is None:
            made, make = self._made, self._make
            self._all = [made.get(name) or make(name) for name in self.ino]
        return self._all

    def _make(self, name: str) -> Found:
        return self._kept(name, self.ino[name], self.project[name])

    def _kept(self, name: str, ino: int, project: str) -> Found:
        """The object of one wheel, made once and kept (the next index of the run takes it
        over: see `handed`)."""
        item = self._made.get(name)
        if item is None:
            item = self._made[name] = Found(self.source.prefix + name, self.source, name, ino)
            item.project = project
        return item

    def wheel_rows(self) -> Iterator[tuple[str, int, str]]:
        """(file name, inode, project) of each wheel, in the catalog's order (a listing's,
        or the log's), with no object made."""
        project = self.project
        return ((name, ino, project[name]) for name, ino in self.ino.items())

    def handed(self, source: Source) -> Catalog:
        """The same wheels for the next index of the run (the combined one), under its
        prefix: the objects made so far become its own, their records its hints."""
        new = Catalog(source, self.ino, self.project)
        new._made = self._made
        self._hand_over(source)
        return new

    def _hand_over(self, source: Source) -> None:
        for name, item in self._made.items():
            item.key = source.prefix + name
            item.source = source  # (its project and stamp stay)
            item.hint, item.rec = item.rec, None
            item.known = item.fresh = False
            item.metadata = None

    def stale_sidecars(self, present: MutableSet[str]) -> Iterable[str]:
        """The wheels in `present` (whose sidecar is there) that are not here."""
        if len(present) <= len(self):  # none of them is stale
            return ()
        return present - self.ino.keys()


def project_of(filename: str) -> str:
    """The project a wheel's file name names (METADATA must agree: `inspect_wheel`)."""
    return sys.intern(canonicalize_name(filename.partition("-")[0]))


# -- finding -----------------------------------------------------------------------------


def scan(
    sources: Sequence[Source],
    listings: dict[Path, Listing],
    *,
    known: Log,
    unchanged: Mapping[str, FolderStamp],
) -> tuple[Sequence[Found], dict[str, MutableSet[str]], dict[str, Seen | None]]:
    """Every wheel of every source of an incremental run (a full run: `wholerun`), with
    its inode; per source prefix, the wheels whose sidecar is present; and per prefix the
    folder's stamp before it was listed. A folder whose stamp is still the one in
    `unchanged` (no entry added, removed or renamed since a run that saw it whole) is not
    listed: its wheels are the log's (`known`). One scandir per changed folder and no
    stat() per wheel. A listing is used once (the combined index comes last): taken from
    `listings`, its wheels can be freed."""
    found: list[Found] = []
    catalogs: list[Catalog] = []
    sidecars: dict[str, MutableSet[str]] = {}
    seen: dict[str, Seen | None] = {}
    for src in sources:
        listing = listings.pop(src.folder, None)
        if listing is not None:
            sidecars[src.prefix] = listing.sidecars
            seen[src.prefix] = listing.seen
            if isinstance(listing.wheels, Catalog):
                catalogs.append(listing.wheels.handed(src))
                continue
            # the target index is done with its wheels: each becomes this index's (one
            # object per wheel for both indexes), its record a hint
            prefix = src.prefix
            for item in listing.wheels:
                item.key = prefix + item.filename
                item.source = src  # (its project, from its file name, stays)
                item.hint, item.rec = item.rec, None
                item.known = item.fresh = False
                item.metadata = None
            found.extend(listing.wheels)
            continue
        before = unchanged.get(src.prefix)
        stamp = source_stamp(src)
        if before is not None and stamp == before and src.only is None:
            sidecars[src.prefix] = _from_log(src, known, found)
            seen[src.prefix] = None  # (not listed: its stamp is recorded already)
            continue
        seen[src.prefix] = Seen(stamp, time.time_ns())
        sidecars[src.prefix] = _list_folder(src, found)
    if len(catalogs) == 1 and not found:
        return catalogs[0], sidecars, seen
    for catalog in catalogs:  # (several folders: an object per wheel)
        found.extend(catalog)
    return found, sidecars, seen


def source_stamp(src: Source) -> FolderStamp:
    """The stamp of a source folder; PublishError when it is gone."""
    try:
        return folder_stamp(src.folder)
    except FileNotFoundError:
        raise missing_folder(src) from None


def missing_folder(src: Source) -> PublishError:
    return PublishError(
        f"{src.folder} does not exist",
        hint="run `wheelhouse build` first, or name a folder that holds wheels",
    )


def _from_log(src: Source, known: Log, found: list[Found]) -> set[str]:
    """The wheels of an unchanged folder, as the log lists them; their sidecars (present:
    the run that recorded the folder's stamp saw every one)."""
    prefix = src.prefix
    cut = len(prefix)
    present = set()
    add, project = found.append, known.project
    for key, ino in known.ino.items():
        if key.startswith(prefix) and (not prefix or key.find("/", cut) < 0):
            item = Found(key, src, key[cut:], ino)
            item.project = project[key]
            add(item)
            present.add(item.filename)
    return present


def _list_folder(src: Source, found: list[Found]) -> set[str]:
    """Add the folder's wheels to `found`; the wheels whose sidecar is present."""
    wheels, present = list_wheels(src)
    prefix = src.prefix
    found.extend(Found(prefix + name, src, name, ino) for name, ino in wheels.items())
    return present


def list_wheels(src: Source) -> tuple[dict[str, int], set[str]]:
    """One listing of a source folder: its wheels (file name -> inode number, from the
    directory entries: no stat) and the wheel names whose sidecar is present (a stale
    sidecar's too). Removes the temp files of dead runs' sidecars."""
    listed = compare_listing(src, {})
    return listed.new, set(listed.extra)


class Compared(NamedTuple):
    """A folder's listing compared with the log (see compare_listing)."""

    new: dict[str, int]  # file name -> inode: a wheel the log lacks, or has another inode of
    whole: bool  # every wheel of the log is there, with its sidecar
    extra: list[str]  # the wheels the log lacks whose sidecar is there (or a stale one's)


def compare_listing(src: Source, known: Mapping[str, int]) -> Compared:
    """One listing of a source folder, compared with the log (file name -> inode) as it is
    read: nothing is kept of a wheel the log lists with the same inode, or of its sidecar.
    Not `whole`: a wheel of the log is gone or has lost its sidecar (the caller lists the
    folder with list_wheels to learn which). Removes the temp files of dead runs'
    sidecars."""
    try:
        entries = os.scandir(src.folder)  # iterated, not listed: one entry at a time in memory
    except FileNotFoundError:  # (removed since its stamp was taken)
        raise missing_folder(src) from None
    # every run that lists a folder sees every entry (a wheel and its sidecar each): kept
    # to plain operations
    only = src.only
    new: dict[str, int] = {}
    extra: list[str] = []
    same = sidecars = 0
    get, keep = known.get, extra.append
    sidecar = ".whl" + METADATA_SUFFIX
    cut = -len(METADATA_SUFFIX)
    with entries:
        for entry in entries:
            name = entry.name
            if name[-4:] == ".whl":
                if name[0] != "." and (only is None or name in only) and entry.is_file():
                    ino = entry.inode()
                    if get(name) == ino:
                        same += 1
                    else:
                        new[name] = ino
            elif name.endswith(sidecar):
                name = name[:cut]
                if name in known:
                    sidecars += 1
                elif only is None or name in only:
                    keep(name)  # (a wheel left out keeps its sidecar: old pages list it)
            elif name[0] == "." and name.endswith(TMP) and stale_temp(name):  # a sidecar's
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)  # noqa: PTH108
    # (a name is listed once: the counts say whether every wheel of the log was seen)
    replaced = sum(1 for name in new if name in known)
    return Compared(new, same + replaced == len(known) == sidecars, extra)


def stamp_files(items: Sequence[Found]) -> None:
    """Stat the files whose project this run checks (a listing gives no stamp); raises
    PublishError for a file that went away since the listing."""
    for item in items:
        if item.stamp is None:
            path = f"{item.source.folder}/{item.filename}"
            try:
                st = os.stat(path)  # noqa: PTH116
            except FileNotFoundError:
                raise PublishError(
                    f"{path} was removed while the index was being written",
                    hint="run `wheelhouse index` again; nothing was published",
                ) from None
            item.stamp = (st.st_size, st.st_mtime_ns, st.st_ino)


def look_up(items: Sequence[Found], own: Mapping[str, FileRecord], trusted: bool) -> list[Found]:
    """Fill in the record of each of a project's files whose stamp matches: this index's
    own (`own`, when `trusted`), else another index's of this run, else (combined index)
    the source folder's own index. The files left to read."""
    todo = []
    theirs: dict[Path, dict[str, FileRecord]] = {}
    for item in items:
        rec = own.get(item.key) if trusted else None
        assert item.stamp is not None  # (stamp_files ran)
        if same_file(rec, item.stamp):
            item.rec, item.known = rec, True
            continue
        if same_file(item.hint, item.stamp):
            item.rec = item.hint
            continue
        if item.source.prefix:  # the folder's own index may know it (combined index)
            folder = item.source.folder
            if folder not in theirs:
                theirs[folder] = load_project(folder / SIMPLE / item.project)
            rec = theirs[folder].get(item.filename)
            if same_file(rec, item.stamp):
                item.rec = rec
                continue
        todo.append(item)
    return todo


# -- checking ----------------------------------------------------------------------------


def check_duplicates(found: Sequence[Found]) -> list[Found]:
    """In a combined index the same file name may come from several targets: the same bytes
    are linked once (from the first), different bytes are an error."""
    by_name: dict[str, Found] = {}
    keep = []
    for item in found:
        first = by_name.get(item.filename)
        if first is None:
            by_name[item.filename] = item
            keep.append(item)
            continue
        assert first.rec is not None and item.rec is not None
        if first.rec[SHA256] != item.rec[SHA256]:
            raise PublishError(
                f"{first.filename} differs between {first.source.folder} (sha256 "
                f"{first.rec[SHA256].hex()}) and {item.source.folder} (sha256 "
                f"{item.rec[SHA256].hex()})",
                hint="one file name must mean one file: rebuild the targets from the same "
                "cache so they share the wheel, or remove one of them",
            )
    return keep


def sidecar_lost(item: Found, sidecars: Mapping[str, MutableSet[str]], *, dirty: bool) -> bool:
    """Whether a known wheel's sidecar is missing (or, after an interrupted run, which
    may have been cut short by a crash, has the wrong size)."""
    if item.filename not in sidecars[item.source.prefix]:
        return True
    if not dirty:
        return False
    assert item.rec is not None
    name = item.filename + METADATA_SUFFIX
    try:
        return bool((item.source.folder / name).stat().st_size != item.rec[META_SIZE])
    except OSError:
        return True


def remove_stale_sidecars(src: Source, mine: Sequence[Found], present: MutableSet[str]) -> None:
    """Remove the sidecars in `present` of wheels that are not in `mine` (every wheel of
    `mine` has its sidecar in `present` by now)."""
    if isinstance(mine, Catalog):
        stale = mine.stale_sidecars(present)
    elif len(present) <= len(mine):  # none of them is stale
        return
    else:
        stale = present - {f.filename for f in mine}
    for name in stale:
        (src.folder / (name + METADATA_SUFFIX)).unlink(missing_ok=True)
