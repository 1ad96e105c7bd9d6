"""The content-addressed store on its own (no engine, no network): blobs by sha256, built
wheels by key, the per-key lock across processes, and what an interrupted write leaves."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from wheelhouse.store import Blob, BuildRecord, SdistRef, Store, sha256_file

WHEEL = "demo-1.0-py3-none-any.whl"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _src(store: Store, data: bytes, name: str = "incoming") -> Path:
    """A file in store/tmp, as a download or a build leaves it before `put`."""
    path = store.tempdir("test-") / name
    path.write_bytes(data)
    return path


def _visible(store: Store) -> list[Path]:
    """Every file a reader of store/blobs could find (hidden files are the store's own)."""
    return sorted(p for p in (store.root / "blobs").rglob("*") if p.is_file() and p.name[0] != ".")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache")


# -- blobs ------------------------------------------------------------------------------


def test_layout_is_made_on_open(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    for sub in ("blobs", "built", "pure", "logs", "locks", "tmp"):
        assert (tmp_path / "cache" / "store" / sub).is_dir()
    assert store.log_path("k1") == tmp_path / "cache/store/logs/k1.log"
    assert store.tempdir("x-").parent == store.tmp


def test_put_get_round_trip(store: Store) -> None:
    data = b"wheel bytes " * 1000
    src = _src(store, data)
    blob = store.put(src, WHEEL)
    digest = _sha(data)
    assert blob == Blob(
        sha256=digest, filename=WHEEL, path=store.root / "blobs" / digest[:2] / digest / WHEEL
    )
    assert blob.path.read_bytes() == data and blob.size == len(data)
    assert not src.exists()  # moved in, not copied
    assert blob.path.stat().st_mode & 0o777 == 0o644
    assert store.get(digest) == blob
    assert sha256_file(blob.path) == digest
    assert store.get(_sha(b"never stored")) is None


def test_put_trusts_a_given_hash_and_keeps_only_the_names_last_part(store: Store) -> None:
    data = b"abc"
    blob = store.put(_src(store, data), f"../../{WHEEL}", sha256=_sha(data))
    assert blob.filename == WHEEL
    assert blob.path.parent == store.root / "blobs" / _sha(data)[:2] / _sha(data)
    assert _visible(store) == [blob.path]


def test_put_of_existing_bytes_is_idempotent(store: Store) -> None:
    data = b"same bytes"
    first = store.put(_src(store, data), WHEEL)
    inode = first.path.stat().st_ino
    second_src = _src(store, data, "again")
    second = store.put(second_src, WHEEL)
    assert second == first
    assert first.path.stat().st_ino == inode  # the entry was not rewritten
    assert not second_src.exists()  # the duplicate was dropped
    assert _visible(store) == [first.path]


def test_corrupt_blob_is_detected_and_dropped(store: Store) -> None:
    data = b"good bytes"
    blob = store.put(_src(store, data), WHEEL)
    blob.path.write_bytes(b"garbage")  # bit rot, a bad disk, someone editing the cache
    # verify=False skips the hash (for callers that just checked it)...
    assert store.get(blob.sha256, verify=False) is not None
    # ...the default hashes, refuses and deletes the entry, so the caller fetches again
    assert store.get(blob.sha256) is None
    assert not blob.path.parent.exists()
    assert _visible(store) == []
    again = store.put(_src(store, data), WHEEL)
    assert again.path.read_bytes() == data and store.get(_sha(data)) == again


def test_corruption_of_the_same_size_is_detected(store: Store) -> None:
    data = b"good bytes" * 100
    blob = store.put(_src(store, data), WHEEL)
    assert store.get(blob.sha256) == blob
    time.sleep(0.02)  # a later write: past the file system's timestamp granularity
    with blob.path.open("r+b") as f:  # in place, as a write through a hard link would
        f.seek(10)
        f.write(b"X")
    assert store.get(blob.sha256) is None
    assert _visible(store) == []


def test_a_blob_checked_once_is_still_found(store: Store) -> None:
    blob = store.put(_src(store, b"x" * 1000), WHEEL)
    for _ in range(3):
        assert store.get(blob.sha256) == blob
    assert Store(store.root.parent).get(blob.sha256) == blob  # another run, same cache


def test_put_replaces_a_corrupt_entry(store: Store) -> None:
    data = b"good bytes"
    blob = store.put(_src(store, data), WHEEL)
    blob.path.write_bytes(b"garbage")
    fresh = store.put(_src(store, data), WHEEL)
    assert fresh.path.read_bytes() == data
    assert store.get(_sha(data)) == fresh


def test_a_blob_folder_with_a_stray_file_is_not_trusted(store: Store) -> None:
    blob = store.put(_src(store, b"x"), WHEEL)
    (blob.path.parent / "other.whl").write_bytes(b"x")
    assert store.get(blob.sha256) is None
    assert _visible(store) == []


def test_hidden_files_in_a_blob_folder_are_ignored(store: Store) -> None:
    blob = store.put(_src(store, b"x"), WHEEL)
    (blob.path.parent / ".nfs000123").write_bytes(b"")
    assert store.get(blob.sha256) == blob


def test_put_of_the_same_bytes_from_threads_at_once(tmp_path: Path) -> None:
    data = b"x" * 200_000
    errors: list[BaseException] = []
    for trial in range(50):
        store = Store(tmp_path / f"cache-{trial}")
        sources = [_src(store, data, f"in-{i}") for i in range(4)]
        barrier = threading.Barrier(len(sources))

        def put(src: Path, store: Store = store, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                assert store.put(src, WHEEL).path.read_bytes() == data
            except BaseException as e:  # collected, asserted below
                errors.append(e)

        threads = [threading.Thread(target=put, args=(s,)) for s in sources]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.get(_sha(data)) is not None
    assert errors == []


# -- built wheels by key ----------------------------------------------------------------


def _record(blob: Blob | None = None, **kw: object) -> BuildRecord:
    sha = blob.sha256 if blob else _sha(b"never stored")
    name = blob.filename if blob else WHEEL
    sdist = SdistRef(filename="x-1.tar.gz", sha256=_sha(b"sdist"))
    return BuildRecord(key="k", input_key="k1", sha256=sha, filename=name, sdist=sdist, **kw)  # type: ignore[arg-type]


def test_built_record_round_trip(store: Store) -> None:
    blob = store.put(_src(store, b"built wheel"), WHEEL)
    record = _record(blob, python="3.11.2", runtime_packages=("libyaml-0-2",))
    assert store.built("k1") is None
    store.record_built("k1", record)
    hit = store.built("k1")
    assert hit is not None and hit.blob == blob and hit.record == record
    on_disk = json.loads((store.root / "built/k1.json").read_text())
    signature = on_disk.pop("signature")  # the store's envelope: the builder's signature
    assert on_disk == record.to_json() and on_disk["runtime_packages"] == ["libyaml-0-2"]
    assert signature["alg"] == "ed25519" and signature["sig"]
    # rewriting a record replaces it whole
    store.record_built("k1", _record(blob, python="3.11.9"))
    hit = store.built("k1")
    assert hit is not None and hit.record.python == "3.11.9"
    # no temp file left: the record, and the memo that spares the next read its check
    assert sorted(p.name for p in (store.root / "built").iterdir()) == [".k1.checked", "k1.json"]


def test_built_is_none_when_its_wheel_is_gone_or_corrupt(store: Store) -> None:
    blob = store.put(_src(store, b"built wheel"), WHEEL)
    store.record_built("k1", _record(blob))
    blob.path.write_bytes(b"garbage")
    assert store.built("k1") is None  # rebuilt by the caller, never served corrupt
    assert _visible(store) == []
    store.record_built("k2", _record())
    assert store.built("k2") is None


def test_built_with_an_unreadable_record_is_a_miss(store: Store) -> None:
    (store.root / "built/k1.json").write_text("{not json")
    assert store.built("k1") is None
    (store.root / "built/k2.json").write_text("")
    assert store.built("k2") is None


def test_built_with_a_record_of_another_shape_is_a_miss(store: Store) -> None:
    (store.root / "built/k1.json").write_text('{"key": "k1"}')
    assert store.built("k1") is None
    (store.root / "built/k2.json").write_text("[1, 2]")
    assert store.built("k2") is None


def test_pure_points_at_a_built_key(store: Store) -> None:
    sdist = _sha(b"an sdist")
    blob = store.put(_src(store, b"pure wheel"), WHEEL)
    store.record_built("k1", _record(blob))
    assert store.pure(sdist) is None
    store.record_pure(sdist, "k1")
    hit = store.pure(sdist)
    assert hit is not None and hit.blob == blob
    # a pure record for a key whose record is gone is a miss, as is a malformed one
    (store.root / "built/k1.json").unlink()
    assert store.pure(sdist) is None
    (store.root / "pure" / f"{sdist}.json").write_text('{"other": 1}')
    assert store.pure(sdist) is None


# -- the per-key lock, across processes -------------------------------------------------


def _hold(cache: str, key: str, journal: str, name: str, seconds: float) -> None:
    store = Store(Path(cache))
    with store.lock(key):
        with open(journal, "a") as f:
            f.write(f"{name} in {time.monotonic():.6f}\n")
        time.sleep(seconds)
        with open(journal, "a") as f:
            f.write(f"{name} out {time.monotonic():.6f}\n")


def _intervals(journal: Path) -> dict[str, tuple[float, float]]:
    seen: dict[str, dict[str, float]] = {}
    for line in journal.read_text().splitlines():
        name, what, when = line.split()
        seen.setdefault(name, {})[what] = float(when)
    return {n: (v["in"], v["out"]) for n, v in seen.items()}


def _run_holders(tmp_path: Path, keys: list[str], seconds: float) -> dict[str, tuple[float, float]]:
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter, like a second CLI run
    journal = tmp_path / "journal"
    journal.touch()
    procs = [
        ctx.Process(
            target=_hold, args=(str(tmp_path / "cache"), key, str(journal), f"p{i}", seconds)
        )
        for i, key in enumerate(keys)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return _intervals(journal)


def test_lock_serializes_processes_on_one_key(tmp_path: Path) -> None:
    Store(tmp_path / "cache")
    spans = sorted(_run_holders(tmp_path, ["same-key"] * 3, 0.4).values())
    assert len(spans) == 3
    for (_, out), (nxt, _) in itertools.pairwise(spans):
        assert nxt >= out, f"two processes held one key at once: {spans}"


def test_lock_does_not_block_other_keys(tmp_path: Path) -> None:
    Store(tmp_path / "cache")
    a, b = _run_holders(tmp_path, ["key-a", "key-b"], 1.5).values()
    assert max(a[0], b[0]) < min(a[1], b[1]), "different keys must not wait for each other"


def test_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    Store(tmp_path / "cache")
    ctx = multiprocessing.get_context("spawn")
    journal = tmp_path / "journal"
    journal.touch()
    holder = ctx.Process(
        target=_hold, args=(str(tmp_path / "cache"), "k", str(journal), "killed", 60)
    )
    holder.start()
    deadline = time.monotonic() + 30
    while "killed in" not in journal.read_text():
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(timeout=10)
    started = time.monotonic()
    with Store(tmp_path / "cache").lock("k"):
        pass  # the kernel dropped the dead holder's flock
    assert time.monotonic() - started < 5


# -- interrupted writes -----------------------------------------------------------------


def _put_then_die(cache: str, data: bytes) -> None:
    """`put`, killed by SIGKILL at the moment its entry would become visible."""
    store = Store(Path(cache))
    src = store.tempdir("test-") / "incoming"
    src.write_bytes(data)
    real = Path.replace

    def replace(self: Path, target: str | os.PathLike[str]) -> Path:
        if "blobs" in Path(target).parts:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, target)

    Path.replace = replace  # type: ignore[method-assign,assignment]
    store.put(src, WHEEL)


def _record_then_die(cache: str) -> None:
    """`record_built`, killed by SIGKILL after writing the data, before the rename."""
    store = Store(Path(cache))
    store.keyring.public_key()  # this machine's signing key, made (and synced) before

    def fsync(fd: int) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    os.fsync = fsync  # type: ignore[assignment]
    store.record_built("k1", _record(log="x" * 100_000))


def test_interrupted_put_leaves_no_visible_entry(tmp_path: Path) -> None:
    data = b"a wheel that never made it" * 1000
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_put_then_die, args=(str(tmp_path / "cache"), data))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == -signal.SIGKILL
    store = Store(tmp_path / "cache")
    assert store.get(_sha(data)) is None
    assert _visible(store) == []
    assert list(store.tmp.rglob("*")), "the staging leftovers are in tmp/, where nobody reads"
    # the next run stores the same bytes normally
    blob = store.put(_src(store, data), WHEEL)
    assert store.get(_sha(data)) == blob and blob.path.read_bytes() == data


def test_interrupted_record_leaves_no_record(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_record_then_die, args=(str(tmp_path / "cache"),))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == -signal.SIGKILL
    store = Store(tmp_path / "cache")
    assert not (store.root / "built/k1.json").exists()
    assert store.built("k1") is None
