"""The files an index run keeps besides its pages: the log of the files the pages list
(appended to, or written whole), the source folders' stamps that spare the next run a
listing, the sidecars of wheels that are gone, and what interrupted runs left in `simple/`.
See `wheelhouse.index.writer` for when each is written.
"""

from __future__ import annotations

import gc
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSet, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from wheelhouse.errors import PublishError
from wheelhouse.fsutil import TMP, writing
from wheelhouse.index.fileops import NEW_PREFIX, remove
from wheelhouse.index.logcache import stale, write_cache
from wheelhouse.index.scan import (
    Changes,
    Found,
    Listing,
    Seen,
    Source,
    folder_stamp,
    remove_stale_sidecars,
)
from wheelhouse.index.state import LOG_NAME, FolderStamp, IndexState, log_entry, log_lines

SLACK = 50_000_000  # ns: the kernel stamps times from a clock that lags by up to a tick
COARSE_SLACK = 2_000_000_000  # file systems that keep whole seconds (or two)


def check_places(simple: Path, sources: Sequence[Source]) -> None:
    """PublishError unless every source is a folder and `simple` is one or absent."""
    for src in sources:
        if not src.folder.is_dir():
            raise PublishError(
                f"{src.folder} does not exist or is not a folder",
                hint="run `wheelhouse build` first, or name a folder that holds wheels",
            )
    if simple.is_symlink() or (simple.exists() and not simple.is_dir()):
        raise PublishError(
            f"{simple} exists and is not a folder",
            hint="remove it: wheelhouse writes its index there",
        )


def unchanged_folders(
    sources: Sequence[Source], seen: Mapping[str, Seen | None], old: Mapping[str, FolderStamp]
) -> dict[str, FolderStamp]:
    """The source folders the next run need not list: those whose stamp now is the one
    taken before this run listed them (no entry was added, removed or renamed since: not
    even by this run's sidecars), taken long enough before the listing that a later change
    shows a later time (the kernel's clock lags by up to a tick, or keeps whole seconds);
    and those not listed whose recorded stamp still holds. A build's folder (`only`) is
    always listed: it may hold wheels the build removes next."""
    folders = {}
    for src in sources:
        if src.only is not None:
            continue
        seen_at = seen.get(src.prefix)
        base = seen_at.stamp if seen_at is not None else old.get(src.prefix)
        if base is None:
            continue
        if seen_at is not None and not quiet(seen_at):
            continue
        try:
            if folder_stamp(src.folder) == base:
                folders[src.prefix] = base
        except OSError:
            pass
    return folders


def quiet(seen: Seen) -> bool:
    """Whether the folder had not changed for a clock tick or more when its stamp was taken
    (`seen.at`): a change after it shows a later time (the kernel's clock lags by up to a
    tick, or keeps whole seconds), so the same stamp later means no change."""
    ctime = seen.stamp[2]
    return ctime < seen.at - (COARSE_SLACK if ctime % 1_000_000_000 == 0 else SLACK)


COMPACT_AT = 1000  # log lines beyond twice the files listed: the log is written whole


def log_rows(found: Sequence[Found]) -> Iterator[tuple[str, str, int]]:
    """(index key, project, inode) of each wheel, for `write_log`."""
    return ((f.key, f.project, f.ino) for f in found)


def write_log(
    simple: Path,
    rows: Callable[[], Iterable[tuple[str, str, int]]],
    count: int,
    added: Mapping[str, str],
    removed: Iterable[str],
    size: int,
    *,
    whole: bool,
) -> int:
    """Append this run's changes to the log, or write it whole (`rows()`: every one of the
    `count` files the pages list) after a full run or when most of its lines no longer
    count; the lines in it now."""
    if whole or size > 2 * count + COMPACT_AT:
        # streamed through a temp file in slices: the log's text is never in memory whole
        tmp = f"{simple}/{LOG_NAME}.{os.getpid()}{TMP}"
        size = crc = 0
        try:
            with writing(simple / LOG_NAME), open(tmp, "wb") as log:  # noqa: PTH123
                every = iter(rows())
                while part := list(islice(every, 4096)):
                    lines = log_lines({key: log_entry(p, ino) for key, p, ino in part}, ())
                    log.write(lines)
                    size, crc = size + len(lines), zlib.crc32(lines, crc)
            os.replace(tmp, simple / LOG_NAME)  # noqa: PTH105
        except BaseException:
            remove(tmp)
            raise
        if stale(size, 0):  # its cache, for the next run (see logcache)
            keys = (key for key, _, _ in rows())
            inos = (ino for _, _, ino in rows())
            projects = (p for _, p, _ in rows())
            write_cache(simple, keys, inos, projects, size=size, lines=count, crc=crc)
        return count
    lines = log_lines(added, removed)
    with writing(simple / LOG_NAME), open(simple / LOG_NAME, "ab") as log:  # noqa: PTH123
        log.write(lines)
    return size + lines.count(b"\n")


def existing_projects(simple: Path, sources: Sequence[Source], *, dirty: bool) -> set[str]:
    """The project folders in `simple` (every name there but the root pages and hidden
    ones: names, not entries, for a run that reads thousands; `drop_strays` sorts out a
    stray file; listed ahead where a source's child did: see ahead.py); removes temp files
    interrupted runs left there (this run holds the lock)."""
    ahead = next((s.ahead for s in sources if s.ahead is not None), None)
    names = ahead.names(simple) if ahead is not None and not dirty else None
    try:
        if names is None:
            names = os.listdir(simple)  # noqa: PTH208 (names in C: no object per entry)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    existing = set(names)
    existing.difference_update(("index.html", "index.json"))
    hidden = [name for name in names if name[0] == "."]
    existing.difference_update(hidden)
    for name in hidden:
        if name.startswith(NEW_PREFIX) or name.endswith(TMP):
            remove(f"{simple}/{name}")
    if dirty:  # temp files an interrupted run left in project folders
        existing = {name for name in existing if os.path.isdir(f"{simple}/{name}")}  # noqa: PTH112
        for project in existing:
            with os.scandir(f"{simple}/{project}") as entries:
                for entry in entries:
                    if entry.name.endswith(TMP):
                        remove(entry.path)
    return existing


def drop_strays(simple: Path, existing: set[str], projects: set[str]) -> None:
    """Take out of `existing` what is not a folder among the names no project has (a file
    someone put in `simple`: not a page to remove)."""
    for name in existing - projects:
        if not os.path.isdir(f"{simple}/{name}"):  # noqa: PTH112
            existing.discard(name)


def tidy_sources(
    sources: Sequence[Source],
    wheels_of: Callable[[Source], Sequence[Found]],
    sidecars: Mapping[str, MutableSet[str]],
    listings: dict[Path, Listing],
    seen: Mapping[str, Seen | None],
    changes: Changes,
) -> None:
    """Remove the sidecars of wheels that are gone from the folders this index owns, and
    hand what was learned of them (`wheels_of` a folder) to the next index of the run
    (with this run's `changes` when this index has the one folder)."""
    for src in sources:
        if src.owner:
            mine = wheels_of(src)
            remove_stale_sidecars(src, mine, sidecars[src.prefix])
            listings[src.folder] = Listing(
                wheels=mine,
                sidecars=sidecars[src.prefix],  # now every wheel's (and maybe a stale one)
                seen=seen.get(src.prefix),
                changes=changes if len(sources) == 1 else None,
            )


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a run holds an object per wheel: they form no
    cycles, and each collection would walk all of them (a third of a listing's cost at
    30,000 wheels). Reference counting still frees everything. What is left when the run
    ends is frozen (moved out of the collector's generations) before collection resumes:
    else the first allocation after it walks every object the run made."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def mirror_of(
    sources: Sequence[Source], listings: Mapping[Path, Listing], old: IndexState | None
) -> tuple[dict[str, Changes] | None, dict[str, str]]:
    """(The changes of each folder, where this index's log agrees with the log of the target
    index that has just listed it, for every folder: else None; the target logs' tokens
    this index's log will agree with after this run, where each folder was handed over.)"""
    handed = {s.prefix: c for s in sources if (c := _changes(listings.get(s.folder))) is not None}
    after = {p: c.after for p, c in handed.items() if c.after is not None}
    if len(after) != len(sources):
        after = {}
    if old is None or len(handed) != len(sources) or set(old.mirrors) != set(handed):
        return None, after
    if any(c.before is None or old.mirrors[p] != c.before for p, c in handed.items()):
        return None, after
    return handed, after


def _changes(listing: Listing | None) -> Changes | None:
    return None if listing is None else listing.changes


def log_stamp(simple: Path) -> str | None:
    """What the state records of the log it describes: its inode, size and mtime (a log
    appended to, written whole, lost or cut short has another). Also the token another
    index's state compares with (see mirror_of)."""
    try:
        st = os.stat(simple / LOG_NAME)  # noqa: PTH116
    except OSError:
        return None
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
