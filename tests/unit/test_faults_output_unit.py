"""The pieces the output folders' fault handling stands on, in-process: the folder lock
(re-entrant per thread, bounded waits, exit 17), telling a dead run's temp file from a
live one's, and the store's stamp that catches a changed byte whose mtime was put back
without re-reading every wheel of a warm build. The builds themselves are in
tests/integration/test_faults_output.py."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from wheelhouse.errors import OutputBusyError
from wheelhouse.fsutil import (
    LOCK_FILE,
    Wait,
    atomic_write,
    folder_lock,
    leftover_owner,
    link_into,
    remove_leftovers,
)
from wheelhouse.store import Blob, local
from wheelhouse.store.local import Store

WHEEL = "alpha-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("name", "pid"),
    [
        (f".{WHEEL}.4242.7.tmp", 4242),  # link_into, FileWriter (index pages, sidecars)
        (f".{WHEEL}.4242.tmp", 4242),  # link_into before the counter
        (".lock.txt.4242.k2_j9x.tmp", 4242),  # atomic_write (mkstemp's random part)
        (".index.json.4242.12.tmp", 4242),
        (".upload-k2j9x.tmp", None),  # wheelhouse serve's upload in progress: no pid
        (".lock.txt.k2j9x", None),  # not a .tmp
        (WHEEL, None),
        ("lock.txt.4242.1.tmp", None),  # not a dot name
    ],
)
def test_the_pid_of_a_temp_file_is_read_from_its_name(name: str, pid: int | None) -> None:
    assert leftover_owner(name) == pid


def test_temp_files_are_named_for_their_process_and_only_dead_ones_are_removed(
    tmp_path: Path,
) -> None:
    # a temp file an atomic write leaves when it is killed before its rename
    names: list[str] = []
    real = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        names.append(Path(src).name)
        real(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", spy)
        atomic_write(tmp_path / "lock.txt", "x")
    assert leftover_owner(names[0]) == os.getpid()
    dead = _dead_pid()
    (tmp_path / f".{WHEEL}.{dead}.1.tmp").write_text("half")
    (tmp_path / f".{WHEEL}.{os.getpid()}.1.tmp").write_text("busy")
    (tmp_path / ".upload-x.tmp").write_text("busy")
    assert remove_leftovers(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".{WHEEL}.{os.getpid()}.1.tmp", ".upload-x.tmp", "lock.txt"]
    )


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the folder lock ---------------------------------------------------------------------


def test_the_folder_lock_is_reentrant_in_its_thread_and_exclusive_across_threads(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "slim"
    told: list[str] = []
    got = threading.Event()
    order: list[str] = []

    def other() -> None:
        with folder_lock(folder, wait=Wait(seconds=60, on_wait=told.append), label="out/slim"):
            order.append("other")
            got.set()

    with folder_lock(folder, wait=Wait(seconds=0)):
        with folder_lock(folder, wait=Wait(seconds=0)):  # a build writing its folder's index
            pass
        thread = threading.Thread(target=other)
        thread.start()
        while not told:  # it says it waits, once, and waits
            assert thread.is_alive()
            threading.Event().wait(0.01)
        order.append("first")
    assert got.wait(60)
    thread.join(60)
    assert order == ["first", "other"]
    assert told == ["out/slim/ is in use by another run: waiting up to 60 s"]
    assert (folder / LOCK_FILE).is_file()


@pytest.mark.parametrize(("seconds", "waited"), [(0, ""), (0.05, " (waited 0.05 s)")])
def test_a_folder_that_stays_busy_raises_17_naming_it(
    tmp_path: Path, seconds: float, waited: str
) -> None:
    folder = tmp_path / "slim"
    errors: list[OutputBusyError] = []
    held = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with folder_lock(folder):
            held.set()
            done.wait(60)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(60)
    try:
        with folder_lock(folder, wait=Wait(seconds=seconds), label="wheelhouse/slim"):
            pytest.fail("the lock is held by the other thread")
    except OutputBusyError as exc:
        errors.append(exc)
    finally:
        done.set()
        thread.join(60)
    (err,) = errors
    assert err.exit_code == 17
    assert err.message == (
        "wheelhouse/slim/ is in use by another wheelhouse run (a build or an index of the "
        f"same folder){waited}"
    )
    assert err.hint and "--wait" in err.hint
    with folder_lock(folder, wait=Wait(seconds=0)):  # released by the holder
        pass


def test_the_folder_lock_is_released_when_its_block_raises(tmp_path: Path) -> None:
    with pytest.raises(KeyError), folder_lock(tmp_path):
        raise KeyError("x")
    with folder_lock(tmp_path, wait=Wait(seconds=0)):
        pass


# -- the store's stamp -------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times the store read a file's bytes, for sha256 or for its xxh3 only."""
    reads = {"sha256": 0, "fast": 0}
    real: Callable[..., tuple[str, str]] = local._digests

    def digests(path: Path, *, sha: bool = True) -> tuple[str, str]:
        reads["sha256" if sha else "fast"] += 1
        return real(path, sha=sha)

    monkeypatch.setattr(local, "_digests", digests)
    return reads


def _stored(store: Store, data: bytes) -> Blob:
    src = store.tmp / "incoming"
    src.write_bytes(data)
    return store.put(src, WHEEL)


def test_a_changed_byte_with_its_mtime_put_back_is_caught(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    store = Store(tmp_path / "cache")
    blob = _stored(store, b"wheel bytes " * 1000)
    assert store.get(blob.sha256) == blob
    st = blob.path.stat()
    with blob.path.open("r+b") as f:  # through any hard link, in place
        f.seek(100)
        f.write(b"X")
    os.utime(blob.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.get(blob.sha256) is None
    assert store.dropped == [WHEEL]
    assert not blob.path.parent.exists()


def test_linking_and_unlinking_output_folders_costs_no_sha256(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    """A warm build whose output folder is in place reads no byte; one whose folder was
    deleted (every stored wheel's ctime moved) reads each wheel once, for its xxh3."""
    store = Store(tmp_path / "cache")
    blob = _stored(store, b"wheel bytes " * 1000)
    out = tmp_path / "wheelhouse" / "slim"
    out.mkdir(parents=True)
    counted.update(sha256=0, fast=0)
    assert store.get(blob.sha256) == blob  # as planned
    assert link_into(blob.path, out, WHEEL)  # assembled: the link moves the ctime
    store.relinked(blob)
    assert not link_into(blob.path, out, WHEEL)  # the next build: already there
    assert store.get(blob.sha256) == blob
    assert counted == {"sha256": 0, "fast": 0}
    (out / WHEEL).unlink()  # the output folder deleted
    assert store.get(blob.sha256) == blob
    assert counted == {"sha256": 0, "fast": 1}
    assert store.get(blob.sha256) == blob  # stamped again
    assert counted == {"sha256": 0, "fast": 1}
    assert store.dropped == []


def test_a_stamp_from_before_the_crc_is_checked_once_by_sha256(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    store = Store(tmp_path / "cache")
    blob = _stored(store, b"wheel bytes")
    st = blob.path.stat()
    stamp = blob.path.parent / ".verified"
    stamp.write_text(f"{st.st_size} {st.st_mtime_ns} {st.st_ino}")
    counted.update(sha256=0, fast=0)
    assert store.get(blob.sha256) == blob
    assert store.get(blob.sha256) == blob
    assert counted == {"sha256": 1, "fast": 0}
    # a CRC-32 stamp (before xxh3) whose ctime moved: sha256 once, then the xxh3 stamp
    now = blob.path.stat()
    stamp.write_text(f"{now.st_size} {now.st_mtime_ns} {now.st_ino} 1 0badc0de")
    store = Store(tmp_path / "cache")  # the next run, which finds that stamp
    assert store.get(blob.sha256) == blob
    assert counted == {"sha256": 2, "fast": 0}
    os.link(blob.path, tmp_path / "elsewhere.whl")  # the ctime moves again
    assert store.get(blob.sha256) == blob
    assert counted == {"sha256": 2, "fast": 1}


def _unlinked_and_one_corrupted(blobs: list[Blob], tmp_path: Path) -> Blob:
    """An output folder made and deleted (every blob's ctime moved), and a byte of the
    first blob changed with its mtime put back: that one, which a check must catch."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    for blob in blobs:
        os.link(blob.path, out / blob.sha256)
        (out / blob.sha256).unlink()
    bad = blobs[0]
    st = bad.path.stat()
    with bad.path.open("r+b") as f:
        f.write(b"X")
    os.utime(bad.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return bad


def test_checking_ahead_reads_the_touched_blobs_once_and_drops_the_corrupt_one(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    store = Store(tmp_path / "cache")
    blobs = [_stored(store, f"wheel {i} ".encode() * 1000) for i in range(3)]
    untouched = _stored(store, b"untouched " * 1000)
    bad = _unlinked_and_one_corrupted(blobs, tmp_path)
    counted.update(sha256=0, fast=0)
    store.check_ahead([b.sha256 for b in [*blobs, untouched]])
    assert store.get(bad.sha256) is None  # waits for its check
    assert [store.get(b.sha256) for b in blobs[1:]] == blobs[1:]
    assert counted == {"sha256": 1, "fast": 3}  # the xxh3 of each touched one; the bad one's sha256
    assert store.dropped == [WHEEL]
    counted.update(sha256=0, fast=0)
    assert store.get(bad.sha256) is None
    assert [store.get(b.sha256) for b in blobs[1:]] == blobs[1:]
    assert store.get(untouched.sha256) == untouched
    assert counted == {"sha256": 0, "fast": 0}


def test_the_early_check_raises_lock_errors_at_once_and_is_done_before_the_store_is_used(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    """build/early.py: the lock's errors come first, from the caller's thread; `store()`
    hands the store over only once every touched pinned file is read (a corrupt one
    dropped), so no planning lookup meets a file being removed."""
    from conftest import write
    from packaging.utils import canonicalize_name

    from wheelhouse import config
    from wheelhouse.build.early import StoreCheck
    from wheelhouse.errors import InputError
    from wheelhouse.lock.lockfile import LockFile, Pin, lock_path

    cfg = config.load(tmp_path, environ={"WHEELHOUSE_CACHE_DIR": str(tmp_path / "cache")})
    slim = cfg.target("slim")
    with pytest.raises(InputError, match="no lock for target 'slim'"):
        StoreCheck(cfg, [slim])
    store = Store(cfg.cache_dir)
    blobs = [_stored(store, f"wheel {i} ".encode() * 1000) for i in range(3)]
    pins = tuple(
        Pin(name=canonicalize_name(f"p{i}"), version="1.0", hashes=(f"sha256:{b.sha256}",))
        for i, b in enumerate(blobs)
    )
    lock = LockFile(target="slim", target_description="t", inputs_digest="sha256:0", pins=pins)
    write(lock_path(cfg, slim), lock.render())
    bad = _unlinked_and_one_corrupted(blobs, tmp_path)
    counted.update(sha256=0, fast=0)
    checked = StoreCheck(cfg, [slim]).store()
    assert checked.dropped == [WHEEL] and not bad.path.parent.exists()
    assert counted == {"sha256": 1, "fast": 3}
    counted.update(sha256=0, fast=0)
    assert [checked.get(b.sha256) for b in blobs[1:]] == blobs[1:]
    assert counted == {"sha256": 0, "fast": 0}  # stamped by the early check


def test_a_stamp_that_is_not_text_is_a_miss_not_an_error(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    store = Store(tmp_path / "cache")
    blob = _stored(store, b"wheel bytes " * 100)
    (blob.path.parent / ".verified").write_bytes(b"\xff\xfe garbage")
    counted.update(sha256=0, fast=0)
    store.check_ahead([blob.sha256])  # as the early check runs it, in its own thread
    assert store.get(blob.sha256) == blob
    assert counted == {"sha256": 1, "fast": 0}  # checked by sha256 once, stamped again
