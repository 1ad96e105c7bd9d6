"""Keeping the local store healthy: what a build records of its run, `prune` (age, size;
least recently used first), `verify` (re-hash everything, drop what is corrupt or signed
by no trusted key) and `stats` (entries, size, the hit rate of the last build). Rebuilding
cached source builds to compare their bytes needs the builder: build/reproduce.py.

What a build records of its run (`last-run.json`, the blob folders' "last used") is
runs.py, kept small because every build imports it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from wheelhouse.store.layered import RemoteStats, pending_uploads
from wheelhouse.store.local import RecordKind, Store, drop, sha256_file
from wheelhouse.store.runs import LAST_RUN, RunCounts
from wheelhouse.store.signing import Keyring

_STALE_TMP = 3600  # seconds: temp files older than this belong to runs that died


# -- the last run (runs.py writes it) ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LastRun:
    """`last-run.json`, as `record_run` wrote it."""

    finished: float
    counts: RunCounts
    remote: RemoteStats | None = None

    @classmethod
    def from_json(cls, doc: object) -> LastRun | None:
        """None for anything but a JSON object; a missing or odd count reads as 0."""
        if not isinstance(doc, dict):
            return None
        remote = doc.get("remote")
        return cls(
            finished=_number(doc.get("finished")),
            counts=RunCounts(**{f.name: _int(doc.get(f.name)) for f in _COUNTS}),
            remote=_remote(remote) if isinstance(remote, dict) and remote else None,
        )


_COUNTS = dataclasses.fields(RunCounts)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _remote(doc: dict[str, object]) -> RemoteStats:
    corrupt, untrusted = doc.get("corrupt"), doc.get("untrusted")
    pending, error = doc.get("pending"), doc.get("upload_error")
    return RemoteStats(
        url=str(doc.get("url", "")),
        blobs_fetched=_int(doc.get("blobs_fetched")),
        records_fetched=_int(doc.get("records_fetched")),
        uploaded=_int(doc.get("uploaded")),
        corrupt=[str(c) for c in corrupt] if isinstance(corrupt, list) else [],
        untrusted=[str(c) for c in untrusted] if isinstance(untrusted, list) else [],
        pending=[str(c) for c in pending] if isinstance(pending, list) else [],
        retried=_int(doc.get("retried")),
        upload_error=error if isinstance(error, str) else None,
    )


# -- stats ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Stats:
    blobs: int
    built: int
    size: int
    last_run: LastRun | None
    pending_uploads: int = 0  # objects the shared store still lacks: the next build uploads

    @property
    def hit_rate(self) -> float | None:
        if self.last_run is None:
            return None
        c = self.last_run.counts
        hits = c.reused + c.cached
        total = hits + c.downloaded + c.built
        return hits / total if total else None


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def stats(cache_dir: Path) -> Stats:
    store = Store(cache_dir)
    try:
        last = LastRun.from_json(json.loads((cache_dir / LAST_RUN).read_text()))
    except (OSError, ValueError):
        last = None
    return Stats(
        blobs=len(store.blob_folders()),
        built=len(store.record_files("built")),
        size=_tree_size(store.root),
        last_run=last,
        pending_uploads=len(pending_uploads(store.root)),
    )


# -- verify -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    checked: int
    corrupt: list[str] = field(default_factory=list)  # what was dropped, and why
    records_dropped: list[str] = field(default_factory=list)
    untrusted: list[str] = field(default_factory=list)  # records no trusted key signed


def verify(cache_dir: Path, *, keyring: Keyring | None = None) -> VerifyReport:
    """Re-hash every blob (ignoring stamps); drop corrupt ones, the records no trusted
    key signed (builds never use them) and the records that point at a missing blob.
    The next build fetches or builds them again."""
    store = Store(cache_dir, keyring)
    with store.exclusive():  # builds finish linking first; new ones wait
        untrusted = _drop_untrusted(store)
        return dataclasses.replace(_verify(store), untrusted=untrusted)


def _drop_untrusted(store: Store) -> list[str]:
    dropped = []
    kinds: tuple[RecordKind, ...] = ("built", "pure")
    for kind in kinds:
        for path in store.record_files(kind):
            if path.is_dir():
                continue  # not a record at all: _wrong_types reports and drops it
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                doc = None
            verdict = store.keyring.check(kind, path.stem, doc)
            if not verdict.ok:
                path.unlink(missing_ok=True)
                if kind == "built":
                    store.log_path(path.stem).unlink(missing_ok=True)
                dropped.append(f"{kind}/{path.name}: {verdict.why}")
    return dropped


def _verify(store: Store) -> VerifyReport:
    corrupt = _wrong_types(store)
    checked = len(corrupt)
    for folder in store.blob_folders():
        checked += 1
        files = [p for p in folder.iterdir() if not p.name.startswith(".")]
        bad = None
        if len(files) != 1:
            bad = f"{len(files)} files"
        elif not files[0].is_file():
            bad = f"{files[0].name} is a folder, not a file"
        elif (actual := sha256_file(files[0])) != folder.name:
            bad = f"{files[0].name} has sha256 {actual}"
        if bad:
            corrupt.append(f"{folder.name}: {bad}")
            shutil.rmtree(folder, ignore_errors=True)
        else:
            store.mark_verified(files[0])
    return VerifyReport(checked=checked, corrupt=corrupt, records_dropped=_drop_dangling(store))


def _wrong_types(store: Store) -> list[str]:
    """Drop what has the wrong type for its place: a file where a blob's folder (or the
    folder of blobs by their first two hex digits) should be, a folder in a record's
    place. Each is reported; the next build fetches or builds it again."""
    found = []
    blobs = store.root / "blobs"
    places = [*blobs.iterdir(), *blobs.glob("*/*")]
    for path in places:
        if not path.is_dir():
            found.append(f"blobs/{path.relative_to(blobs)}: a file where a folder should be")
            drop(path)
    for kind in ("built", "pure"):
        for path in (store.root / kind).iterdir():
            if path.is_dir():
                found.append(f"{kind}/{path.name}: a folder where a record should be")
                drop(path)
    return found


def _drop_dangling(store: Store) -> list[str]:
    """Built records whose wheel is gone (or unreadable), pure records whose key is gone."""
    dropped = []
    live: set[str] = set()
    for path in store.record_files("built"):
        try:
            sha = json.loads(path.read_text())["sha256"]
            ok = store.blob_folder(sha).is_dir()
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if ok:
            live.add(path.stem)
        else:
            drop(path)
            store.log_path(path.stem).unlink(missing_ok=True)
            dropped.append(f"built/{path.name}")
    for path in store.record_files("pure"):
        try:
            ok = json.loads(path.read_text())["key"] in live
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            drop(path)
            dropped.append(f"pure/{path.name}")
    return dropped


# -- prune ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PruneReport:
    removed: int
    freed: int
    kept: int
    size: int  # of the blobs kept
    records_dropped: int


def prune(cache_dir: Path, *, max_size: int | None, max_age: float | None) -> PruneReport:
    """Drop blobs unused for longer than `max_age`, then the least recently used until
    the blobs fit in `max_size`; then the records that pointed at them."""
    store = Store(cache_dir)
    with store.exclusive():  # builds finish linking first; new ones wait
        return _prune(store, max_size=max_size, max_age=max_age)


def _prune(store: Store, *, max_size: int | None, max_age: float | None) -> PruneReport:
    entries = []
    for folder in store.blob_folders():
        entries.append((folder.stat().st_mtime, _tree_size(folder), folder))
    entries.sort()  # least recently used first
    total = sum(size for _, size, _ in entries)
    now = time.time()
    removed = freed = 0
    for used, size, folder in entries:
        too_old = max_age is not None and now - used > max_age
        too_big = max_size is not None and total > max_size
        if not (too_old or too_big):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
        removed += 1
        freed += size
    for leftover in store.tmp.iterdir():
        if now - leftover.stat().st_mtime > _STALE_TMP:
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    dropped = _drop_dangling(store)
    return PruneReport(
        removed=removed,
        freed=freed,
        kept=len(entries) - removed,
        size=total,
        records_dropped=len(dropped),
    )
