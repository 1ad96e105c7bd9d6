"""What a build records of its run: its hit/miss counts (`last-run.json`, read back by
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
