"""What a build records of its run: its hit/miss counts (`last-run.json`, read by
`cache stats`) and the blob folders it used, touched now (their mtime is the "last used"
that `cache prune` sorts by; the file's own mtime is part of the store's verification
stamp, so it is left alone). Apart from maintain.py because every build imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.fsutil import atomic_write
from wheelhouse.store.local import Store

if TYPE_CHECKING:  # the shared store's module loads only when a run has one
    from wheelhouse.store.layered import RemoteStats

LAST_RUN = "last-run.json"


@dataclass(frozen=True, kw_only=True)
class RunCounts:
    """How a run's wheels got into its folders, and how many pins failed."""

    reused: int = 0
    downloaded: int = 0
    cached: int = 0
    built: int = 0
    failed: int = 0

    def __add__(self, other: RunCounts) -> RunCounts:  # a matrix's targets add up
        return RunCounts(
            reused=self.reused + other.reused,
            downloaded=self.downloaded + other.downloaded,
            cached=self.cached + other.cached,
            built=self.built + other.built,
            failed=self.failed + other.failed,
        )


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
    from wheelhouse.store.layered import RemoteStats

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


def record_run(
    cache_dir: Path,
    store: Store,
    counts: RunCounts,
    used: Iterable[str],
    remote: RemoteStats | None,
) -> None:
    """Write `last-run.json` and mark the blobs the run used (by sha256) as used now."""
    now = time.time()
    for sha in set(used):
        with contextlib.suppress(OSError):  # pruned meanwhile
            os.utime(store.blob_folder(sha), (now, now))
    doc: dict[str, object] = {"finished": now, **dataclasses.asdict(counts)}
    if remote is not None:
        doc["remote"] = dataclasses.asdict(remote)
    try:
        # not fsynced: a crash loses only what `cache stats` shows of this run
        atomic_write(cache_dir / LAST_RUN, json.dumps(doc, sort_keys=True), durable=False)
    except OSError as e:
        # a read-only cache serves a warm build; only `cache stats` misses this run
        if e.errno not in (errno.EROFS, errno.EACCES):
            raise
