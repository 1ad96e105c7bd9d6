"""The layered store: the local Store reading through to a remote one on a miss and
writing behind to it what it gains; the local store stays the source of truth for a run.

Reads: a local miss asks the remote; what comes back is hash-checked (a blob against its
key, a record's wheel against the record) before it enters the local store, so a corrupt
or tampered object is reported and never used: the item is fetched or built as usual.
A record is used only when a trusted key signed it (store/signing.py): anyone who can
write to the bucket could otherwise map a build key to a wheel of their choosing. One
that is unsigned or signed by an unknown key is reported, its wheel is not even
downloaded, and the record this run builds replaces it.
Writes: a blob enters the local store first, then is uploaded; a record likewise, after
its wheel, so a record never names a missing blob. An upload that fails (the service is
down or cut off) loses nothing: the wheel is kept here, the object is remembered as
pending (store/pending/), the run goes on without the remote's writes, and the next run
with the store uploads what is pending before anything else.
"""

from __future__ import annotations

import json
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
from wheelhouse.errors import StoreAccessError, StoreError
from wheelhouse.fsutil import atomic_write
from wheelhouse.store.local import RecordKind, Store, sha256_file
from wheelhouse.store.records import Blob, BuildRecord, Built
from wheelhouse.store.signing import Keyring

log = logging.getLogger("wheelhouse.s3")

_HEX64 = re.compile(r"[0-9a-f]{64}")
PENDING = "pending"  # under store/: one empty file per object not uploaded, <kind>-<key>
_ORDER = ("blob", "built", "pure")  # blobs before the records that name them
_KEY = re.compile(r"[0-9a-f]{64}")


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
    pending: list[str] = field(default_factory=list)  # not uploaded: the next run retries
    retried: int = 0  # pending uploads of earlier runs done by this one
    upload_error: str | None = None  # why uploads stopped this run


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
        self.pending_dir = self.root / PENDING
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
        known = self.get_local(digest) is not None  # then uploaded when it was stored
        blob = super().put(src, filename, sha256=digest)  # kept here whatever the remote does
        if not known:
            self._upload(("blob", digest), lambda: self._upload_blob(blob))
        return blob

    def _upload_blob(self, blob: Blob) -> bool:
        absent = self._known_absent("blob " + blob.sha256)
        if not absent and self.remote.has_blob(blob.sha256):
            return False
        return self.remote.upload_blob(blob.sha256, blob.path, blob.filename)

    def put_record(self, kind: RecordKind, key: str, doc: dict[str, Any]) -> str:
        # written here first, then uploaded (after its wheel, by the callers' order)
        text = super().put_record(kind, key, doc)
        self._upload((kind, key), lambda: self.remote.upload_record(kind, key, doc))
        return text

    # -- uploads that failed: remembered, retried by the next run ---------------------------

    def _upload(self, what: tuple[str, str], upload: Callable[[], bool]) -> bool:
        """Run `upload`; True when done (or not needed). When the remote fails, the object
        is remembered as pending and later uploads of this run are not tried (each would
        wait for the same timeout); refused credentials still fail the run."""
        with self._guard:
            down = self.stats.upload_error is not None
        if not down:
            try:
                if upload():
                    self._count("uploaded")
                self._forget(what)
                return True
            except StoreError as e:
                with self._guard:
                    self.stats.upload_error = self.stats.upload_error or e.message
                log.warning("upload failed, kept for the next run: %s", e.message)
            except StoreAccessError:
                self._remember(what)
                raise
        self._remember(what)
        return False

    def _remember(self, what: tuple[str, str]) -> None:
        kind, key = what
        atomic_write(self.pending_dir / f"{kind}-{key}", "")
        with self._guard:
            self.stats.pending.append(f"{kind}/{key}")

    def _forget(self, what: tuple[str, str]) -> None:
        (self.pending_dir / f"{what[0]}-{what[1]}").unlink(missing_ok=True)

    def retry_pending(self) -> None:
        """Upload what earlier runs could not: blobs first, so a record uploaded here
        never names a missing blob. What is gone from this cache meanwhile (pruned) is
        forgotten: the next run that has it uploads it."""
        for kind, key in pending_uploads(self.root):
            job = self._retry_job(kind, key)
            if job is None:
                self._forget((kind, key))
            elif self._upload((kind, key), job):  # else still pending, and reported so
                self._count("retried")

    def _retry_job(self, kind: str, key: str) -> Callable[[], bool] | None:
        if kind == "blob":
            blob = self.get_local(key)
            return None if blob is None else lambda: self._upload_blob(blob)
        try:
            doc = json.loads(
                self.record_path("built" if kind == "built" else "pure", key).read_text()
            )
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        return lambda: self.remote.upload_record(kind, key, doc)


def pending_uploads(store_root: Path) -> list[tuple[str, str]]:
    """(kind, key) of every object an earlier run could not upload, blobs first."""
    try:
        names = sorted(p.name for p in (store_root / PENDING).iterdir())
    except OSError:
        return []
    out = []
    for name in names:
        kind, _, key = name.partition("-")
        if kind in _ORDER and _KEY.fullmatch(key):
            out.append((kind, key))
    return sorted(out, key=lambda kk: _ORDER.index(kk[0]))


def open_layered(
    cache_dir: Path, settings: StoreSettings, keyring: Keyring | None = None
) -> LayeredStore:
    """The local store, layered over the configured remote one, with the uploads earlier
    runs left pending done first."""
    from wheelhouse.store.s3 import S3Store  # boto3 and friends: only with a shared store

    store = LayeredStore(cache_dir, S3Store(settings), keyring)
    store.retry_pending()
    return store
