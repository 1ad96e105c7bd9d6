"""The content-addressed store: every wheel and sdist by its sha256, built wheels by key.

Layout under the cache dir (all writes are temp + rename, so an interrupted run leaves
only whole entries and stray temp files that the next run ignores):

    store/blobs/ab/<sha256>/<filename>   a file, named by its hash (and its real name)
    store/built/<key>.json               build key -> {sha256, filename, provenance}, signed
    store/pure/<sdist-sha256>.json       an sdist known to build a pure wheel (any target), signed
    store/logs/<key>.log                 the build log of that key
    store/locks/<key>.lock               one builder per key at a time (flock)
    store/tmp/                           downloads and builds in progress

Records are signed by the builder that wrote them (store/signing.py) and read only when
a trusted key signed them: one altered on disk, or written by an older version, is a
miss (rebuilt and written again), never an error and never used.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import shutil
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal

from wheelhouse.fsutil import atomic_write, write_hint
from wheelhouse.store.records import Blob, BuildRecord, Built
from wheelhouse.store.signing import Keyring

log = logging.getLogger("wheelhouse.store")

_BLOCK = 1 << 20
_FAST_DIGITS = 32  # an xxh3-128 in hex, as the stamp keeps it

RecordKind = Literal["built", "pure"]


def sha256_file(path: Path) -> str:
    return _digests(path)[0]


def _digests(path: Path, *, sha: bool = True) -> tuple[str, str]:
    """(sha256, xxh3-128) of the file's bytes, in one read (no sha256: "" and the xxh3)."""
    import xxhash  # only when a file is read: a warm build with its output in place reads none

    h = hashlib.sha256() if sha else None
    fast = xxhash.xxh3_128()
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            block = view[:n]
            if h is not None:
                h.update(block)
            fast.update(block)
    return (h.hexdigest() if h is not None else ""), fast.hexdigest()


class Store:
    def __init__(self, cache_dir: Path, keyring: Keyring | None = None) -> None:
        self.root = cache_dir / "store"
        # signs what this store records, checks what it reads; by default only this
        # machine's own key (made on first use under the cache dir)
        self.keyring = keyring or Keyring(cache_dir)
        self.tmp = self.root / "tmp"
        self.metadata = self.root / "metadata"  # a wheel's METADATA by its sha256 (index)
        self.dropped: list[str] = []  # blobs found corrupt and dropped by this instance
        # sha256 -> (its file, that file's stat when this instance last found it whole): a
        # blob looked up again (planned, then checked before it is linked) costs one stat
        self._whole_at: dict[str, tuple[Path, list[str]]] = {}
        for sub in ("blobs", "built", "pure", "logs", "locks", "tmp", "metadata"):
            ensure_dir(self.root / sub)

    # -- blobs ----------------------------------------------------------------------------

    def blob_folder(self, sha256: str) -> Path:
        """Where the blob with this hash lives (whether or not it is there): its file and
        its stamp. The folder's mtime is when a build last used it (`cache prune`)."""
        return self.root / "blobs" / sha256[:2] / sha256

    def blob_folders(self) -> list[Path]:
        """Every blob's folder, for the maintenance that walks them all."""
        return [p for p in (self.root / "blobs").glob("*/*") if p.is_dir()]

    def get(self, sha256: str, *, verify: bool = True) -> Blob | None:
        """The blob with this hash, or None. A corrupt one is deleted (and so rebuilt or
        downloaded again by the caller), never returned. (A layered store, layered.py,
        looks in the remote store when this one has no such blob.)"""
        return self.get_local(sha256, verify=verify)

    def get_local(self, sha256: str, *, verify: bool = True) -> Blob | None:
        """The blob with this hash in this cache only (checked, unless `verify` is off)."""
        known = self._whole_at.get(sha256)
        if known is not None:
            with contextlib.suppress(OSError):  # gone: looked up in full below
                if not verify or self._stat(known[0]) == known[1]:
                    return Blob(sha256=sha256, filename=known[0].name, path=known[0])
        folder = self.blob_folder(sha256)
        try:
            files = [p for p in folder.iterdir() if not p.name.startswith(".")]
        except FileNotFoundError:
            return None
        except NotADirectoryError:  # a file where the blob's folder should be
            drop(folder)
            return None
        if len(files) != 1 or not files[0].is_file():  # a stray file, or not a file
            drop(folder)
            return None
        path = files[0]
        if verify and not self._whole(folder, path, sha256):
            shutil.rmtree(folder, ignore_errors=True)  # fetched or built again by the caller
            self.dropped.append(path.name)
            return None
        return Blob(sha256=sha256, filename=path.name, path=path)

    # Verification. Re-hashing every cached wheel on every run would cost more than the
    # run, so a stamp taken when the hash was last checked says whether anything touched
    # the file since: size, mtime, inode and ctime. ctime is what catches a write that
    # put the mtime back (nobody can set ctime), but a link or an unlink (an output folder
    # made or deleted: the store's files are hard-linked there) moves it too. So when only
    # ctime moved, an xxh3-128 of the bytes kept in the stamp decides (it catches every
    # flipped byte, at memory speed: ~10 GB/s against ~2 GB/s for CRC-32 and ~0.7 GB/s for
    # sha256); sha256 only when size, mtime or inode moved. A build re-stamps what it
    # links itself (`relinked`), so a warm build with its output folder in place reads no
    # byte, and one whose folder was deleted reads each wheel once, at the start of the
    # run, while the build's modules load (`check_ahead`): on the ML example's 74 MB of
    # wheels ~13 ms, where CRC-32 cost ~40 ms, sha256 ~75 ms, and a stamp without ctime
    # nothing (but let a write that kept the mtime through). A stamp from before (a
    # CRC-32, 8 digits) is checked once by sha256 and stamped again.

    def check_ahead(self, sha256s: Iterable[str]) -> None:
        """Check these blobs now, reading those touched since their last check, one after
        another: the build runs this in a thread of its own while its modules load
        (build/early.py), and more threads only fight over the GIL (xxh3 holds it).
        `get` then finds them stamped."""
        for sha in dict.fromkeys(sha256s):
            if self._touched(sha):
                self.get_local(sha)

    def _touched(self, sha256: str) -> bool:
        """Whether the blob is here and its stamp no longer matches its stat."""
        folder = self.blob_folder(sha256)
        try:
            files = [p for p in folder.iterdir() if not p.name.startswith(".")]
        except OSError:
            return folder.is_dir()
        try:
            return len(files) == 1 and _read_stamp(folder)[:4] != self._stat(files[0])
        except OSError:  # the file went meanwhile: the lookup sees to it
            return True

    @staticmethod
    def _stat(path: Path) -> list[str]:
        st = path.stat()
        return [str(st.st_size), str(st.st_mtime_ns), str(st.st_ino), str(st.st_ctime_ns)]

    def _whole(self, folder: Path, path: Path, sha256: str) -> bool:
        """Whether the blob's file still has the bytes of its hash (see above)."""
        stamp = _read_stamp(folder)
        now = self._stat(path)
        if stamp[:4] == now:
            self._whole_at[sha256] = (path, now)
            return True
        if len(stamp) == 5 and stamp[:3] == now[:3] and len(stamp[4]) == _FAST_DIGITS:
            fast = _digests(path, sha=False)[1]  # only ctime moved
            if fast == stamp[4]:
                self._restamp(folder, path, fast, durable=False)
                self._whole_at[sha256] = (path, now)
                return True
        digest, fast = _digests(path)
        if digest != sha256:
            return False
        self._restamp(folder, path, fast)
        self._whole_at[sha256] = (path, now)
        return True

    def _restamp(self, folder: Path, path: Path, fast: str, *, durable: bool = True) -> None:
        with contextlib.suppress(OSError):  # a read-only cache: checked again next time
            self._stamp(folder, path, fast, durable=durable)

    def _stamp(self, folder: Path, path: Path, fast: str, *, durable: bool = True) -> None:
        text = " ".join([*self._stat(path), fast])
        if durable:
            atomic_write(folder / ".verified", text)
        else:  # a torn stamp matches no stat: the file is only checked again
            write_hint(folder / ".verified", text)

    def mark_verified(self, path: Path) -> None:
        """`path`, a blob's file, was just hashed and found whole: reads skip re-hashing
        it until it changes."""
        self._stamp(path.parent, path, _digests(path, sha=False)[1])

    def relinked(self, blob: Blob) -> None:
        """This run just checked `blob` and then hard-linked it into a folder, which moved
        its ctime: stamp it again, so the next run need not read it (a stamp that does not
        match the bytes it was taken for is left to the next check)."""
        folder = blob.path.parent
        stamp = _read_stamp(folder)
        if not stamp:
            return
        now = self._stat(blob.path)
        if len(stamp) == 5 and stamp[:3] == now[:3] and stamp[3] != now[3]:
            known = self._whole_at.get(blob.sha256)
            if known is not None and known[1][:3] == now[:3]:
                self._whole_at[blob.sha256] = (blob.path, now)
            with contextlib.suppress(OSError):  # a read-only cache: checked again next time
                write_hint(folder / ".verified", " ".join([*now, stamp[4]]))

    def put(self, src: Path, filename: str, *, sha256: str | None = None) -> Blob:
        """Move `src` (a file under store/tmp) into the store under its hash."""
        digest = sha256 or sha256_file(src)
        existing = self.get_local(digest)
        if existing is not None:
            src.unlink(missing_ok=True)
            return existing
        folder = self.blob_folder(digest)
        staging = self.tempdir(f"blob-{digest[:16]}-")  # unique per thread and process
        # the filename comes from a wheel/sdist name (validated by packaging), but never
        # let it pick a path: only its last component is used
        target = staging / Path(filename).name
        try:
            try:
                src.replace(target)
            except OSError:  # another filesystem: copy, then drop the source
                shutil.copyfile(src, target)
                src.unlink(missing_ok=True)
            target.chmod(0o644)
            # hashed just now (by the caller or above); the xxh3 is for later checks
            self._stamp(staging, target, _digests(target, sha=False)[1])
            ensure_dir(folder.parent)
        except BaseException:  # a full disk, say: no partial copy left in store/tmp
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            staging.replace(folder)
        except OSError:  # someone else stored the same bytes first
            shutil.rmtree(staging, ignore_errors=True)
            got = self.get_local(digest)
            if got is None:
                raise
            return got
        return Blob(sha256=digest, filename=target.name, path=folder / target.name)

    def tempdir(self, prefix: str) -> Path:
        import tempfile

        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp))

    # -- built wheels by key --------------------------------------------------------------

    def built(self, key: str) -> Built | None:
        """The wheel built for this key (verified) and its provenance record."""
        record = BuildRecord.from_json(self.read_record("built", key))
        if record is None:
            return None  # not a record we trust in this shape: a miss, rebuilt and overwritten
        blob = self.get(record.sha256)
        if blob is None:
            return None
        return Built(blob=blob, record=record)

    def record_built(self, key: str, record: BuildRecord) -> None:
        self._seal_and_put("built", key, record.to_json())

    def pure(self, sdist_sha256: str) -> Built | None:
        doc = self.read_record("pure", sdist_sha256)
        key = doc.get("key") if doc else None
        return self.built(key) if isinstance(key, str) else None

    def record_pure(self, sdist_sha256: str, key: str) -> None:
        self._seal_and_put("pure", sdist_sha256, {"key": key})

    def read_record(self, kind: RecordKind, key: str) -> dict[str, Any] | None:
        """A record's JSON when a trusted key signed it as it is, else None (a miss).
        Bytes already checked (or written) here carry a memo (signing.py) and are not
        checked again."""
        path = self.record_path(kind, key)
        try:
            raw = path.read_bytes()
            doc = json.loads(raw)
        except IsADirectoryError:  # not a record: dropped, and the wheel built again
            drop(path)
            return None
        except (OSError, ValueError):
            return None
        memo = self.keyring.memo(kind, key, raw)
        memo_path = self._memo_path(kind, key)
        try:
            known = memo_path.read_bytes().rstrip()  # padded (fsutil.write_hint)
        except OSError:
            known = b""
        if isinstance(doc, dict) and hmac.compare_digest(known, memo.encode()):
            return doc
        verdict = self.keyring.check(kind, key, doc)
        if not verdict.ok or not isinstance(doc, dict):
            log.debug("%s/%s.json not used: %s", kind, key, verdict.why)
            return None
        with contextlib.suppress(OSError):  # a read-only cache: checked again next time
            write_hint(memo_path, memo)
        return doc

    def put_record(self, kind: RecordKind, key: str, doc: dict[str, Any]) -> str:
        """Write a signed record as it is (this store's own, or one it checked); its text.
        Checked again when read: only `_seal_and_put` vouches for what it writes."""
        text = json.dumps(doc, sort_keys=True)
        _write_record(self.record_path(kind, key), text)
        return text

    def _seal_and_put(self, kind: RecordKind, key: str, body: dict[str, Any]) -> None:
        """Sign a record of this store's own and write it, with its memo: the next read
        need not check a signature made here a moment ago."""
        text = self.put_record(kind, key, self.keyring.seal(kind, key, body))
        with contextlib.suppress(OSError):  # only a saving: the next read checks it
            write_hint(self._memo_path(kind, key), self.keyring.memo(kind, key, text.encode()))

    def _memo_path(self, kind: RecordKind, key: str) -> Path:
        """Beside the record, a dot name: no `*.json` glob (export, prune) sees it."""
        return self.root / kind / f".{key}.checked"

    def record_path(self, kind: RecordKind, key: str) -> Path:
        """The file of a built record (by input key) or a pure one (by sdist sha256)."""
        return self.root / kind / f"{key}.json"

    def record_files(self, kind: RecordKind) -> list[Path]:
        """Every record of this kind; the file's stem is its key."""
        return list((self.root / kind).glob("*.json"))

    def log_path(self, key: str) -> Path:
        return self.root / "logs" / f"{key}.log"

    def lock(self, key: str) -> AbstractContextManager[None]:
        """One process per key: a second `wheelhouse build` on this cache waits here and
        then finds the entry the first one made."""
        return _flock(self.root / "locks" / f"{key}.lock", fcntl.LOCK_EX)

    def in_use(self) -> AbstractContextManager[None]:
        """Held (shared) by a build from planning until its folders are linked, so that
        `exclusive()` (prune, verify: they delete entries) never pulls a file from under it."""
        return _flock(self.root / "locks" / "store.lock", fcntl.LOCK_SH)

    def exclusive(self) -> AbstractContextManager[None]:
        return _flock(self.root / "locks" / "store.lock", fcntl.LOCK_EX)


def _read_stamp(folder: Path) -> list[str]:
    """A blob's stamp as its fields; none when missing, unreadable or not text (a miss:
    the file is checked)."""
    try:
        return (folder / ".verified").read_bytes().decode("ascii").split()
    except (OSError, UnicodeDecodeError):
        return []


def drop(path: Path) -> None:
    """Remove a store entry whatever it is (a file, a folder where a file should be, or
    the other way round); one that cannot be removed (a read-only cache) stays."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def ensure_dir(path: Path) -> None:
    """`path` as a folder, replacing a file of that name (not the store's: dropped)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        drop(path)
        path.mkdir(parents=True, exist_ok=True)


def _write_record(path: Path, text: str) -> None:
    if path.is_dir():  # a folder in a record's place: an atomic rename cannot replace it
        drop(path)
    atomic_write(path, text)


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    try:
        f = path.open("a")
    except OSError as e:
        # a read-only cache: flock needs no write access, so lock the file if it is
        # there; if not, no one can change this cache, and there is nothing to lock out
        if e.errno not in (errno.EROFS, errno.EACCES):
            raise
        try:
            f = path.open("r")
        except FileNotFoundError:
            yield
            return
    with f:
        fcntl.flock(f.fileno(), mode)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
