"""Reading the wheels an index run found new or changed: each is checked
(`wheelfile.inspect_wheel`) and gets its record and its `.metadata` sidecar written beside
it; many are read by forked workers (`fanout`), the sidecars still written here.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Mapping, MutableSet, Sequence
from pathlib import Path
from typing import Any

from wheelhouse.errors import PublishError
from wheelhouse.index import fanout
from wheelhouse.index.fileops import FileWriter, parallel, write_small
from wheelhouse.index.scan import Found, Source
from wheelhouse.index.state import (
    INO,
    METADATA_SUFFIX,
    MTIME,
    PROJECT,
    REQUIRES_PYTHON,
    SIZE,
    VERSION,
)
from wheelhouse.index.wheelfile import WheelRefused, inspect_wheel, read_headers

_PARALLEL_BYTES = 64 << 20  # new wheels read in threads from this many bytes on
# new wheels read in forked workers from this many (a wheel's worth of bytes counts as one;
# measured: a fan-out costs 10-30 ms, a small wheel ~120 us to read and check)
_FORK_WHEELS = 1000
_WHEEL_BYTES = 64 << 10


def read_new(
    todo: Sequence[Found], writer: FileWriter, sidecars: Mapping[str, MutableSet[str]]
) -> None:
    """Read and check every new or changed wheel and write its .metadata sidecar; raise one
    PublishError naming every refused file. A sidecar belongs to its wheel's bytes, not to
    any page, so writing it before the pages (and even if another wheel is refused) keeps
    every published page true."""
    refused: list[tuple[Found, WheelRefused]] = []
    # Small wheels are mostly zipfile's Python (the GIL): threads only add contention, and
    # a big run is shared by forked workers (`fanout`). Big wheels are mostly hashing and
    # inflating every member (its CRC), which run outside the GIL: in threads, a cold
    # build's new wheels, vouched for but not yet read, take half the time.
    to_read = sum(f.stamp[0] for f in todo if f.stamp and not _known(f))
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
    if refused:
        refused.sort(key=lambda r: r[0].key)
        raise refusal([(f"{f.source.folder / f.filename}", e.message, e.hint) for f, e in refused])


def refusal(refused: Sequence[tuple[str, str, str]]) -> PublishError:
    """One error naming every refused wheel (path, why, hint), in their keys' order."""
    lines = [f"{path}: {message}" for path, message, _ in refused]
    message = (
        lines[0] if len(lines) == 1 else f"{len(lines)} wheels refused:\n  " + "\n  ".join(lines)
    )
    return PublishError(
        message,
        hint=f"{refused[0][2]}; nothing was published: the index is as it was",
    )


def _read_one(item: Found, writer: FileWriter, sidecars: Mapping[str, MutableSet[str]]) -> None:
    """Read one wheel and write its sidecar (or raise WheelRefused)."""
    _store(item, read_wheel(item), writer, sidecars)


def _store(
    item: Found, cache: Path | None, writer: FileWriter, sidecars: Mapping[str, MutableSet[str]]
) -> None:
    assert item.metadata is not None
    store_sidecar(item.source, item.filename, item.metadata, cache, writer, sidecars)
    item.metadata = None


def store_sidecar(
    source: Source,
    filename: str,
    metadata: bytes,
    cache: Path | None,
    writer: FileWriter,
    sidecars: Mapping[str, MutableSet[str]],
) -> None:
    """Write a wheel's sidecar (and its METADATA into the cache file `cache`), and add it
    to the wheels whose sidecar is there."""
    present = sidecars[source.prefix]
    write_sidecar(source, filename, metadata, cache, writer, there=filename in present)
    present.add(filename)


def write_sidecar(
    source: Source,
    filename: str,
    metadata: bytes,
    cache: Path | None,
    writer: FileWriter,
    *,
    there: bool,
) -> None:
    """Write a wheel's sidecar (`there`: one is there already) and the cache file."""
    if cache is not None:
        # a cache: one that cannot be written (read-only, full) costs a read next time
        with contextlib.suppress(OSError):
            write_small(cache, metadata, durable=False)
    dest = f"{source.folder}/{filename}{METADATA_SUFFIX}"
    # a new wheel's sidecar: no page links it yet, so it is written in place (one
    # open, no rename); one that is there may be linked: replaced whole
    if there or not writer.create(dest, metadata):
        writer.write(dest, metadata)


def _read_in_workers(
    todo: Sequence[Found],
    writer: FileWriter,
    sidecars: Mapping[str, MutableSet[str]],
    processes: int,
    refused: list[tuple[Found, WheelRefused]],
) -> None:
    """`read_wheel` over `todo` in forked workers: each sends back its wheels' records and
    METADATA (or refusals); this process writes the sidecars as they come."""

    def read(items: Sequence[Found]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for item in items:
            try:
                cache = read_wheel(item)
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
            assert item.stamp is not None  # (stamp_files ran)
            rec[SIZE], rec[MTIME], rec[INO] = item.stamp
            rec[PROJECT], rec[VERSION] = intern(rec[PROJECT]), intern(rec[VERSION])
            if rec[REQUIRES_PYTHON] is not None:
                rec[REQUIRES_PYTHON] = intern(rec[REQUIRES_PYTHON])
            item.rec, item.metadata, item.fresh = rec, metadata, True
            _store(item, cache, writer, sidecars)

    costs = [1 + (f.stamp[0] if f.stamp else 0) // _WHEEL_BYTES for f in todo]
    fanout.run(read, todo, costs, processes=processes, what="reading wheels", apply=store)


def _known(found: Found) -> bool:
    """Whether reading this wheel costs next to nothing: its hash vouched for and its
    METADATA cached, so its members are not inflated again."""
    vouched = found.source.sha256.get(found.filename)
    cache = found.source.metadata_cache
    return bool(vouched and cache and (cache / f"{vouched}{METADATA_SUFFIX}").is_file())


def read_wheel(found: Found) -> Path | None:
    """Hash the file, read its METADATA, check it against the file name: fills found.rec
    and found.metadata, or raises WheelRefused. The metadata cache file to write, if any."""
    vouched = found.source.sha256.get(found.filename)
    cache = found.source.metadata_cache
    cached = cache / f"{vouched}{METADATA_SUFFIX}" if vouched and cache else None
    assert found.stamp is not None  # (stamp_files ran)
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
