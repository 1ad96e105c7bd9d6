"""The layered store: the local Store reading through to a remote one on a miss and
writing behind to it what it gains; the local store stays the source of truth for a run.

Reads: a local miss asks the remote; what comes back is hash-checked (a blob against its
key, a record's wheel against the record) before it enters the local store, so a corrupt
or tampered object is reported and never used: the item is fetched or built as usual.
A record is used only when a trusted key signed it (store/signing.py): anyone who can
write to the bucket could otherwise map a build key to a wheel of their choosing. One
that is unsigned or signed by an unknown key is reported, its wheel is not even
downloaded, and the record this run builds replaces it.
Writes: a blob is uploaded *before* it enters the local store and a record after its
wheel, so a record never names a missing blob, and a failed upload leaves nothing local
that a rerun would skip uploading.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wheelhouse.config import StoreSettings
from wheelhouse.store.local import RecordKind, Store, sha256_file
from wheelhouse.store.records import Blob, BuildRecord, Built
from wheelhouse.store.s3 import S3Store
from wheelhouse.store.signing import Keyring

log = logging.getLogger("wheelhouse.s3")

_HEX64 = re.compile(r"[0-9a-f]{64}")


class RemoteStore(Protocol):
    """What the layered store needs from a remote: blobs by sha256, records by key."""

    url: str
    on_corrupt: Callable[[str], None]  # told of each corrupt object it declines to return

    def fetch_blob(self, sha256: str, tmpdir: Path) -> tuple[Path, str] | None:
        """Download into `tmpdir`: (path, filename), verified against `sha256`; None if
        absent or corrupt (reported through `on_corrupt`)."""

    def has_blob(self, sha256: str) -> bool: ...

    def upload_blob(self, sha256: str, path: Path, filename: str) -> bool: ...

    def fetch_record(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def upload_record(self, kind: str, key: str, record: dict[str, Any]) -> bool: ...

    def distrust(self, kind: str, key: str) -> None:
        """The record under this key was refused (untrusted): the next upload replaces it."""


@dataclass(kw_only=True)
class RemoteStats:
    """What the remote did for one run (rendered by the CLI, kept by `cache stats`);
    counted while the run goes, so not frozen."""

    url: str
    blobs_fetched: int = 0
    records_fetched: int = 0
    uploaded: int = 0
    corrupt: list[str] = field(default_factory=list)
    untrusted: list[str] = field(default_factory=list)  # records no trusted key signed


class LayeredStore(Store):
    """The local Store, reading through to a remote on a miss and writing what it gains
    to the remote. Planning, fetching and building use it exactly like a Store."""

    def __init__(
        self, cache_dir: Path, remote: RemoteStore, keyring: Keyring | None = None
    ) -> None:
        super().__init__(cache_dir, keyring)
        self.remote = remote
        self.stats = RemoteStats(url=remote.url)
        self._absent: set[str] = set()  # asked this run and not there: don't ask again
        self._guard = threading.Lock()
        remote.on_corrupt = self._corrupt

    def _corrupt(self, what: str) -> None:
        with self._guard:
            self.stats.corrupt.append(what)
        log.warning("corrupt object in the store: %s", what)

    def _trusted(self, kind: RecordKind, key: str) -> dict[str, Any] | None:
        """The remote's record under `kind/key` when a trusted key signed it; else None,
        and an untrusted one is reported (naming the object and the signer) and marked to
        be replaced."""
        doc = self.remote.fetch_record(kind, key)
        if doc is None:
            return None
        verdict = self.keyring.check(kind, key, doc)
        if verdict.ok:
            return doc
        what = f"{self.remote.url}/{kind}/{key}.json: {verdict.why}: not used"
        with self._guard:
            self.stats.untrusted.append(what)
        log.warning("untrusted record in the store: %s", what)
        self.remote.distrust(kind, key)
        return None

    def _known_absent(self, name: str) -> bool:
        with self._guard:
            return name in self._absent

    def _mark_absent(self, name: str) -> None:
        with self._guard:
            self._absent.add(name)

    def _count(self, what: str) -> None:
        with self._guard:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    # -- reads ----------------------------------------------------------------------------

    def get(self, sha256: str, *, verify: bool = True) -> Blob | None:
        blob = self.get_local(sha256, verify=verify)
        if blob is not None or not _HEX64.fullmatch(sha256):
            return blob
        if self._known_absent("blob " + sha256):
            return None
        tmpdir = self.tempdir("remote-")
        try:
            got = self.remote.fetch_blob(sha256, tmpdir)
            if got is None:
                self._mark_absent("blob " + sha256)
                return None
            path, filename = got
            self._count("blobs_fetched")
            return Store.put(self, path, filename, sha256=sha256)  # verified: no re-upload
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def built(self, key: str) -> Built | None:
        hit = super().built(key)
        if hit is not None or self._known_absent("built " + key):
            return hit
        doc = self._trusted("built", key)  # checked before its wheel is downloaded
        record = BuildRecord.from_json(doc)
        blob = self.get(record.sha256) if record else None
        if doc is None or record is None or blob is None:
            self._mark_absent("built " + key)
            return None
        if blob.filename != record.filename:
            self._corrupt(f"built/{key}.json names {record.filename!r}: not used")
            self._mark_absent("built " + key)
            return None
        self._count("records_fetched")
        Store.put_record(self, "built", key, doc)  # as its builder signed it; not uploaded
        return Built(blob=blob, record=record)

    def pure(self, sdist_sha256: str) -> Built | None:
        hit = super().pure(sdist_sha256)
        if hit is not None or self._known_absent("pure " + sdist_sha256):
            return hit
        doc = self._trusted("pure", sdist_sha256)
        found = self.built(doc["key"]) if doc else None
        if doc is None or found is None:
            self._mark_absent("pure " + sdist_sha256)
            return None
        Store.put_record(self, "pure", sdist_sha256, doc)
        return found

    def prefetch(self, shas: Iterable[str], workers: int = 16) -> None:
        """Pull the blobs the remote has for these hashes, in parallel: planning then
        finds them locally (a lookup per file, done serially, would add up)."""
        todo = [s for s in dict.fromkeys(shas) if self.get_local(s, verify=False) is None]
        if todo:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(self.get, todo))

    # -- writes ---------------------------------------------------------------------------

    def put(self, src: Path, filename: str, *, sha256: str | None = None) -> Blob:
        digest = sha256 or sha256_file(src)
        # uploaded before it is stored here: if the upload fails, a rerun has no local
        # copy to skip and so fetches (or builds) and uploads again
        if (
            self.get_local(digest) is None
            and (self._known_absent("blob " + digest) or not self.remote.has_blob(digest))
            and self.remote.upload_blob(digest, src, Path(filename).name)
        ):
            self._count("uploaded")
        return super().put(src, filename, sha256=digest)

    def put_record(self, kind: RecordKind, key: str, doc: dict[str, Any]) -> None:
        # uploaded before it is written here (after its wheel, by the callers' order)
        if self.remote.upload_record(kind, key, doc):
            self._count("uploaded")
        super().put_record(kind, key, doc)


def open_layered(
    cache_dir: Path, settings: StoreSettings, keyring: Keyring | None = None
) -> LayeredStore:
    """The local store, layered over the configured remote one."""
    return LayeredStore(cache_dir, S3Store(settings), keyring)
