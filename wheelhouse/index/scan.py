"""Finding and reading the wheels an index publishes: every wheel of its source folders,
its state record where the stat stamp says the file is unchanged, else read and checked
(`wheelfile.inspect_wheel`), with its `.metadata` sidecar written beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from wheelhouse.errors import PublishError
from wheelhouse.fsutil import TMP
from wheelhouse.index import fanout
from wheelhouse.index.fileops import FileWriter, parallel, stale_temp, write_small
from wheelhouse.index.state import (
    INO,
    META_SIZE,
    METADATA_SUFFIX,
    MTIME,
    PROJECT,
    REQUIRES_PYTHON,
    SHA256,
    SIMPLE,
    SIZE,
    VERSION,
    FileRecord,
    Stamp,
    load_project,
    same_file,
)
from wheelhouse.index.wheelfile import WheelRefused, inspect_wheel, read_headers

_PARALLEL_BYTES = 64 << 20  # new wheels read in threads from this many bytes on
# new wheels read in forked workers from this many (a wheel's worth of bytes counts as one;
# measured: a fan-out costs 10-30 ms, a small wheel ~120 us to read and check)
_FORK_WHEELS = 1000
_WHEEL_BYTES = 64 << 10


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

    def publishes(self, filename: str) -> bool:
        return self.only is None or filename in self.only


@dataclass(frozen=True, kw_only=True)
class Listing:
    """What one run learned of a source folder: every wheel found (its stamp, ctime and,
    where this run read or looked it up, record), and the sidecars present. Handed from a
    target's index to the combined one in the same run: one scan of each folder serves
    both."""

    wheels: Sequence[Found]  # the target index's, handed over: the next index reuses them
    sidecars: set[str]  # the names present (the set itself: handed on, not copied)


class Found:
    """A wheel found in a source folder this run: filled in as the run learns of it (one
    per wheel, thousands per run: a plain slotted class)."""

    __slots__ = (
        "ctime",
        "filename",
        "fresh",
        "hint",
        "key",
        "known",
        "metadata",
        "project",
        "rec",
        "source",
        "stamp",
    )

    def __init__(self, key: str, source: Source, filename: str, stamp: Stamp, ctime: int) -> None:
        self.key = key  # prefix + filename: unique in the index
        self.source = source
        self.filename = filename
        self.stamp = stamp
        self.ctime = ctime
        self.project = ""  # the page it is on (from the log, else its file name)
        self.hint: FileRecord | None = None  # a record another index of this run holds
        self.rec: FileRecord | None = None  # from a state when the stamp matches, else read
        self.known = False  # rec is this index's own record of the file, unchanged
        self.fresh = False  # read this run
        self.metadata: bytes | None = None  # read this run: the sidecar to write


def project_of(filename: str) -> str:
    """The project a wheel's file name names (METADATA must agree: `inspect_wheel`)."""
    return sys.intern(canonicalize_name(filename.partition("-")[0]))


# -- finding -----------------------------------------------------------------------------


def scan(
    sources: Sequence[Source], listings: dict[Path, Listing]
) -> tuple[list[Found], dict[str, set[str]]]:
    """Every wheel of every source, with its stamp and ctime; and per source prefix, the
    names of the sidecars present. One scandir and one stat() per wheel: the least a run
    that must notice a wheel rewritten in place can do. A listing is used once (the
    combined index comes last): taken from `listings`, its wheels can be freed."""
    found: list[Found] = []
    sidecars: dict[str, set[str]] = {}
    for src in sources:
        listing = listings.pop(src.folder, None)
        if listing is not None:
            # the target index is done with its wheels: each becomes this index's (one
            # object per wheel for both indexes), its record a hint
            sidecars[src.prefix] = listing.sidecars
            prefix = src.prefix
            for item in listing.wheels:
                item.key = prefix + item.filename
                item.source = src  # (its project, from its file name, stays)
                item.hint, item.rec = item.rec, None
                item.known = item.fresh = False
                item.metadata = None
            found.extend(listing.wheels)
            continue
        sidecars[src.prefix] = _list_folder(src, found)
    return found, sidecars


def _list_folder(src: Source, found: list[Found]) -> set[str]:
    """Add the folder's wheels to `found`; the sidecars present."""
    try:
        entries = os.scandir(src.folder)  # iterated, not listed: one entry at a time in memory
    except FileNotFoundError:
        raise PublishError(
            f"{src.folder} does not exist",
            hint="run `wheelhouse build` first, or name a folder that holds wheels",
        ) from None
    present: set[str] = set()
    prefix = src.prefix
    with entries:
        _add_entries(src, prefix, entries, found, present)
    return present


def _add_entries(
    src: Source,
    prefix: str,
    entries: Iterator[os.DirEntry[str]],
    found: list[Found],
    present: set[str],
) -> None:
    # every run sees every entry (a wheel and its sidecar each): kept to plain operations
    only = src.only
    sidecar = ".whl" + METADATA_SUFFIX
    cut = -len(METADATA_SUFFIX)
    add, keep = found.append, present.add
    for entry in entries:
        name = entry.name
        if name[-4:] == ".whl":
            if name[0] != "." and (only is None or name in only) and entry.is_file():
                st = entry.stat()
                stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
                add(Found(prefix + name, src, name, stamp, st.st_ctime_ns))
        elif name.endswith(sidecar):
            if only is None or name[:cut] in only:
                keep(name)  # (a wheel left out keeps its sidecar: old pages list it)
        elif name[0] == "." and name.endswith(TMP) and stale_temp(name):  # a sidecar's
            with contextlib.suppress(OSError):
                os.unlink(entry.path)  # noqa: PTH108


def look_up(items: Sequence[Found], own: Mapping[str, FileRecord], trusted: bool) -> list[Found]:
    """Fill in the record of each of a project's files whose stamp matches: this index's
    own (`own`, when `trusted`), else another index's of this run, else (combined index)
    the source folder's own index. The files left to read."""
    todo = []
    theirs: dict[Path, dict[str, FileRecord]] = {}
    for item in items:
        rec = own.get(item.key) if trusted else None
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


# -- reading -----------------------------------------------------------------------------


def read_new(todo: Sequence[Found], writer: FileWriter, sidecars: Mapping[str, set[str]]) -> None:
    """Read and check every new or changed wheel and write its .metadata sidecar; raise one
    PublishError naming every refused file. A sidecar belongs to its wheel's bytes, not to
    any page, so writing it before the pages (and even if another wheel is refused) keeps
    every published page true."""
    refused: list[tuple[Found, WheelRefused]] = []
    # Small wheels are mostly zipfile's Python (the GIL): threads only add contention, and
    # a big run is shared by forked workers (`fanout`). Big wheels are mostly hashing and
    # inflating every member (its CRC), which run outside the GIL: in threads, a cold
    # build's new wheels, vouched for but not yet read, take half the time.
    to_read = sum(f.stamp[0] for f in todo if not _known(f))
    processes = fanout.workers(len(todo) + to_read // _WHEEL_BYTES, _FORK_WHEELS)
    if processes:
        _read_in_workers(todo, writer, sidecars, processes, refused)
    else:

        def one(item: Found) -> None:
            try:
                _read_one(item, writer, sidecars)
            except WheelRefused as exc:
                refused.append((item, exc))

        parallel(one, todo, threads=to_read >= _PARALLEL_BYTES)
    if not refused:
        return
    refused.sort(key=lambda r: r[0].key)
    lines = [f"{r[0].source.folder / r[0].filename}: {r[1].message}" for r in refused]
    message = (
        lines[0] if len(lines) == 1 else f"{len(lines)} wheels refused:\n  " + "\n  ".join(lines)
    )
    raise PublishError(
        message,
        hint=f"{refused[0][1].hint}; nothing was published: the index is as it was",
    )


def _read_one(item: Found, writer: FileWriter, sidecars: Mapping[str, set[str]]) -> None:
    """Read one wheel and write its sidecar (or raise WheelRefused)."""
    _store(item, _read_wheel(item), writer, sidecars)


def _store(
    item: Found, cache: Path | None, writer: FileWriter, sidecars: Mapping[str, set[str]]
) -> None:
    """Write a wheel's sidecar (and its METADATA into the cache file `cache`)."""
    assert item.metadata is not None
    if cache is not None:
        # a cache: one that cannot be written (read-only, full) costs a read next time
        with contextlib.suppress(OSError):
            write_small(cache, item.metadata, durable=False)
    name = item.filename + METADATA_SUFFIX
    present = sidecars[item.source.prefix]
    dest = f"{item.source.folder}/{name}"
    # a new wheel's sidecar: no page links it yet, so it is written in place (one
    # open, no rename); one that is there may be linked: replaced whole
    if name in present or not writer.create(dest, item.metadata):
        writer.write(dest, item.metadata)
    present.add(name)
    item.metadata = None


def _read_in_workers(
    todo: Sequence[Found],
    writer: FileWriter,
    sidecars: Mapping[str, set[str]],
    processes: int,
    refused: list[tuple[Found, WheelRefused]],
) -> None:
    """`_read_wheel` over `todo` in forked workers: each sends back its wheels' records and
    METADATA (or refusals); this process writes the sidecars as they come."""

    def read(items: Sequence[Found]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for item in items:
            try:
                cache = _read_wheel(item)
            except WheelRefused as exc:
                out.append((None, exc.message, exc.hint))
                continue
            out.append((item.rec, item.metadata, cache))
        return out

    intern = sys.intern

    def store(items: Sequence[Found], results: list[tuple[Any, ...]]) -> None:
        for item, (rec, metadata, cache) in zip(items, results, strict=True):
            if rec is None:
                refused.append((item, WheelRefused(metadata, cache)))
                continue
            # the stamp's numbers and one string for each name, version and Requires-Python
            # shared, as in-process
            rec[SIZE], rec[MTIME], rec[INO] = item.stamp
            rec[PROJECT], rec[VERSION] = intern(rec[PROJECT]), intern(rec[VERSION])
            if rec[REQUIRES_PYTHON] is not None:
                rec[REQUIRES_PYTHON] = intern(rec[REQUIRES_PYTHON])
            item.rec, item.metadata, item.fresh = rec, metadata, True
            _store(item, cache, writer, sidecars)

    costs = [1 + f.stamp[0] // _WHEEL_BYTES for f in todo]
    fanout.run(read, todo, costs, processes=processes, what="reading wheels", apply=store)


def _known(found: Found) -> bool:
    """Whether reading this wheel costs next to nothing: its hash vouched for and its
    METADATA cached, so its members are not inflated again."""
    vouched = found.source.sha256.get(found.filename)
    cache = found.source.metadata_cache
    return bool(vouched and cache and (cache / f"{vouched}{METADATA_SUFFIX}").is_file())


def _read_wheel(found: Found) -> Path | None:
    """Hash the file, read its METADATA, check it against the file name: fills found.rec
    and found.metadata, or raises WheelRefused. The metadata cache file to write, if any."""
    vouched = found.source.sha256.get(found.filename)
    cache = found.source.metadata_cache
    cached = cache / f"{vouched}{METADATA_SUFFIX}" if vouched and cache else None
    metadata = _cached_metadata(cached)
    info = inspect_wheel(
        f"{found.source.folder}/{found.filename}",
        filename=found.filename,
        size=found.stamp[0],
        sha256=vouched,
        metadata=metadata,
    )
    found.metadata = info.metadata
    found.fresh = True
    rp = info.requires_python
    # names, versions and Requires-Python repeat across thousands of records: one string each
    found.rec = [
        *found.stamp,
        sys.intern(str(info.project)),
        sys.intern(str(info.version)),
        bytes.fromhex(info.sha256),
        None if rp is None else sys.intern(rp),
        hashlib.sha256(info.metadata).digest(),
        len(info.metadata),
    ]
    return cached if cached is not None and metadata is None else None


def _cached_metadata(cached: Path | None) -> bytes | None:
    if cached is None:
        return None
    try:
        metadata = cached.read_bytes()
    except OSError:
        return None
    if not {"Name", "Version"} <= read_headers(metadata).keys():
        return None  # cut short by a crash: read the wheel again
    return metadata


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


def sidecar_lost(item: Found, sidecars: Mapping[str, set[str]], *, dirty: bool) -> bool:
    """Whether a known wheel's sidecar is missing (or, after an interrupted run, which
    may have been cut short by a crash, has the wrong size)."""
    name = item.filename + METADATA_SUFFIX
    if name not in sidecars[item.source.prefix]:
        return True
    if not dirty:
        return False
    assert item.rec is not None
    try:
        return bool((item.source.folder / name).stat().st_size != item.rec[META_SIZE])
    except OSError:
        return True


def remove_stale_sidecars(src: Source, mine: Sequence[Found], present: set[str]) -> None:
    """Remove the sidecars in `present` of wheels that are not in `mine` (every wheel of
    `mine` has its sidecar in `present` by now)."""
    if len(present) <= len(mine):  # none of them is stale
        return
    wheels = {f.filename for f in mine}
    for sidecar in present:
        if sidecar[: -len(METADATA_SUFFIX)] not in wheels:
            (src.folder / sidecar).unlink(missing_ok=True)
