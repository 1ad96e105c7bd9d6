"""A big index run's forked workers (`wheelhouse.index.fanout`), forced on a small corpus:
the same bytes as the in-process path, the same refusal, a worker's failure or death ends
the run as an interruption would (the next run repairs it), and no fork where another
thread is alive."""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fixtures_index import wheel_bytes
from fixtures_simple import check_tree, put

from wheelhouse.errors import PublishError
from wheelhouse.index import fanout, wholerun
from wheelhouse.index import reading as index_reading
from wheelhouse.index import writer as ix
from wheelhouse.index.fileops import FileWriter
from wheelhouse.index.render import render_project
from wheelhouse.index.scan import Found
from wheelhouse.index.snapshot import SNAPSHOT_NAME

TEST_PID = os.getpid()


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the forks of a test (made from this process only); none is left unreaped."""
    made: list[int] = []
    real = os.fork

    def counting() -> int:
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting)
    yield made
    for pid in made:  # every worker was reaped: no zombie
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _corpus(folder: Path) -> None:
    for i in range(24):
        for v in range(1 + i % 3):
            put(folder, f"proj{i}", f"1.{v}", requires_python=">=3.8" if i % 2 else None)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file the indexes wrote (pages, log, sidecars), but the state (its start time),
    the lock and the listing's snapshot (the folder's order and inodes)."""
    skip = (ix.STATE_NAME, ".index.lock", SNAPSHOT_NAME)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".whl" and p.name not in skip
    }


def _index(output: Path) -> list[str]:
    """The target's and the combined index, as `wheelhouse index` runs them; what the
    writers list to fsync (there is no boot id here)."""
    written: list[str] = []
    real = FileWriter.fsync

    def fsync(self: FileWriter) -> None:
        written.extend(os.path.relpath(p, output) for p in self.written)
        real(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FileWriter, "fsync", fsync)
        mp.setattr(ix, "boot_id", lambda: None)
        ix.index_target(output / "slim")
        ix.index_combined(output, [output / "slim"])
    return sorted(written)


def test_workers_write_the_same_bytes_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    one, many = tmp_path / "one", tmp_path / "many"
    _corpus(one / "slim")
    (many / "slim").mkdir(parents=True)
    for wheel in (one / "slim").iterdir():  # the same files: the same stamps in the pages
        os.link(wheel, many / "slim" / wheel.name)
    monkeypatch.setattr(fanout, "FORCE", 0)
    written_one = _index(one)
    assert forks == []
    monkeypatch.setattr(fanout, "FORCE", 2)
    written_many = _index(many)
    # a full run reads and renders in one fan-out of two workers: the target's index, then
    # the combined one (which takes the records from the target's pages)
    assert len(forks) == 2 * 2
    assert _tree(many) == _tree(one)
    assert written_many == written_one  # what the writers list, for fsync where it is due
    check_tree(many / "slim" / "simple")
    check_tree(many / "simple")
    # an incremental run in workers: a new version, a rewritten wheel (its sidecar replaced)
    for wheel in (
        put(one / "slim", "proj3", "9.0"),
        put(one / "slim", "proj5", "1.0", requires=["x"]),
    ):
        (many / "slim" / wheel.name).unlink(missing_ok=True)
        os.link(wheel, many / "slim" / wheel.name)
    monkeypatch.setattr(fanout, "FORCE", 0)
    _index(one)
    monkeypatch.setattr(fanout, "FORCE", 2)
    _index(many)
    assert _tree(many) == _tree(one)


def test_a_refused_wheel_in_a_workers_share_is_named_with_every_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    folder = tmp_path / "t"
    _corpus(folder)
    (folder / "aaa-1.0-py3-none-any.whl").write_bytes(b"PK")  # the first worker's share
    (folder / "zzz-1.0-py3-none-any.whl").write_bytes(wheel_bytes("other", "1.0"))  # the last
    monkeypatch.setattr(fanout, "FORCE", 0)
    with pytest.raises(PublishError) as one:
        ix.index_target(folder)
    monkeypatch.setattr(fanout, "FORCE", 2)
    with pytest.raises(PublishError) as many:
        ix.index_target(folder)
    assert forks
    assert str(many.value) == str(one.value)
    assert "2 wheels refused" in str(many.value)
    assert not (folder / "simple" / "index.html").exists()  # no page written


@pytest.mark.parametrize("where", ["reading", "pages", "full"])
def test_a_worker_killed_mid_run_fails_the_run_and_the_next_run_repairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int], where: str
) -> None:
    """An incremental run's workers reading wheels or rendering pages, and a full run's
    (which do both, their pages staged until every wheel is checked)."""
    folder = tmp_path / "t"
    _corpus(folder)
    ix.index_target(folder)
    simple = folder / "simple"
    before = check_tree(simple)
    for i in range(30, 40):
        put(folder, f"proj{i}", "1.0")
    put(folder, "proj2", "5.0")
    monkeypatch.setattr(fanout, "FORCE", 2)
    if where in ("reading", "full"):
        module = index_reading if where == "reading" else wholerun
        real_read = index_reading.read_wheel  # (the one both call)

        def read(found: Found) -> Path | None:
            if os.getpid() != TEST_PID and found.filename.startswith("proj33-"):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_read(found)

        monkeypatch.setattr(module, "read_wheel", read)
    else:
        real_render = render_project

        def render(project: str, *a: Any) -> tuple[bytes, bytes]:
            if os.getpid() != TEST_PID and project == "proj33":
                os.kill(os.getpid(), signal.SIGKILL)
            return real_render(project, *a)

        monkeypatch.setattr(wholerun, "render_project", render)
    with pytest.raises(PublishError, match=r"worker process .* was killed by SIGKILL") as err:
        ix.write_index(folder, [ix.Source(folder=folder)], full=where == "full")
    assert forks
    assert "run `wheelhouse index` again" in str(err.value)
    after = check_tree(simple, complete=False)  # every page there links what is there
    assert set(before) <= set(after) and "proj33" not in after
    if where == "pages":
        assert (simple / ix.DIRTY_NAME).exists()  # the next run renders every page
    else:
        assert after == before  # no page written (a full run's staged pages: removed)
        staged = [p.name for p in simple.iterdir() if p.name.startswith((".new-", ".staged"))]
        assert staged == []
    monkeypatch.undo()
    ix.index_target(folder)
    assert len(check_tree(simple)) == 24 + 10
    assert ix.index_target(folder).pages_written == 0
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or ".new-" in p.name]
    assert leftovers == []


def test_a_full_disk_while_workers_read_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    folder = tmp_path / "t"
    _corpus(folder)
    real = FileWriter._write_fd

    def full(self: FileWriter, fd: int, data: bytes) -> None:
        if forks:  # (the workers write nothing: this process writes what they read)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, fd, data)

    monkeypatch.setattr(FileWriter, "_write_fd", full)
    monkeypatch.setattr(fanout, "FORCE", 2)
    with pytest.raises(OSError) as err:  # (the CLI turns it into a FilesystemError)
        ix.index_target(folder)
    assert err.value.errno == errno.ENOSPC
    assert str(err.value.filename).startswith(str(folder / "proj"))
    assert str(err.value.filename).endswith(".whl.metadata")
    assert not (folder / "simple" / "index.html").exists()
    monkeypatch.undo()
    ix.index_target(folder)
    assert len(check_tree(folder / "simple")) == 24


_THREADS = """
import threading
from wheelhouse.index import fanout
assert fanout.workers(10, threshold=100) == 0
assert fanout.workers(100, threshold=100) >= 2
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
try:
    assert fanout.workers(100, threshold=100) == 0
finally:
    stop.set()
    thread.join()
assert fanout.workers(100, threshold=100) >= 2
print("ok")
"""


def test_no_fork_while_another_thread_runs_or_for_small_work() -> None:
    """In a fresh interpreter: the test process itself may hold other tests' threads."""
    import subprocess
    import sys

    from conftest import REPO

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: never forks")
    proc = subprocess.run(
        [sys.executable, "-c", _THREADS], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.stdout == "ok\n", proc.stderr


def test_split_keeps_the_order_and_balances_the_cost() -> None:
    items = list(range(10))
    chunks = fanout.split(items, [100, 1, 1, 1, 1, 1, 1, 1, 1, 1], 4)
    assert [x for c in chunks for x in c] == items
    assert chunks[0] == [0]  # the big one alone
    assert len(chunks) <= 4
    assert fanout.split([], [], 4) == []


def test_a_big_runs_chunks_stay_small_and_each_is_applied_once() -> None:
    """A chunk's cost is bounded (its result's memory does not grow with the run): 700
    items of a chunk's cost each make 700 chunks, each applied once (more than one byte's
    worth of tickets)."""
    items = list(range(700))
    seen: list[int] = []

    def apply(chunk: Sequence[int], result: list[int]) -> None:
        assert list(chunk) == result and len(chunk) == 1
        seen.extend(result)

    fanout.run(
        lambda chunk: [x for x in chunk],
        items,
        [fanout.MOST_COST] * len(items),
        processes=2,
        what="testing",
        apply=apply,
    )
    assert sorted(seen) == items


def test_a_stuck_worker_is_stopped_and_the_run_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    folder = tmp_path / "t"
    _corpus(folder)
    real_read = index_reading.read_wheel

    def stuck(found: Found) -> Path | None:
        if os.getpid() != TEST_PID and found.filename.startswith("proj11-"):
            threading.Event().wait()  # (a hung mount): never returns by itself
        return real_read(found)

    monkeypatch.setattr(wholerun, "read_wheel", stuck)
    monkeypatch.setattr(fanout, "FORCE", 2)
    monkeypatch.setattr(fanout, "IDLE_TIMEOUT", 0.5)
    monkeypatch.setattr(fanout, "REAP_TIMEOUT", 0.5)
    with pytest.raises(PublishError, match="gave no word"):
        ix.index_target(folder)
    assert not (folder / "simple" / "index.html").exists()
    monkeypatch.undo()
    ix.index_target(folder)
    assert len(check_tree(folder / "simple")) == 24


_PARENT = """
import os, sys, threading
from pathlib import Path
from wheelhouse.index import fanout, wholerun
from wheelhouse.index import writer as ix
fanout.FORCE = 2
parent = os.getpid()
real = wholerun.read_wheel
def read(found):
    if os.getpid() != parent:
        sys.stdout.write(f"{os.getpid()}\\n")
        sys.stdout.flush()
        threading.Event().wait()
    return real(found)
wholerun.read_wheel = read
ix.index_target(Path(sys.argv[1]))
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # exited (a zombie until its new parent reaps it)


def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from conftest import REPO

    folder = tmp_path / "t"
    _corpus(folder)
    proc = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(folder)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())
    proc.kill()  # SIGKILL: no cleanup code runs in the parent
    proc.wait(timeout=30)
    proc.stdout.close()
    deadline = time.monotonic() + 60  # (a bound on the wait, not a timing assertion)
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gone(worker)


def test_workers_still_sending_stop_at_once_when_this_process_fails(
    monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    """This process fails while applying a result (a full disk): the workers, blocked
    sending results bigger than a pipe holds, stop without being signalled."""
    signalled: list[tuple[int, int]] = []
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        signalled.append((pid, sig))
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(fanout, "REAP_TIMEOUT", 2.0)

    def apply(chunk: Any, result: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/some/file")

    with pytest.raises(OSError, match="No space left"):
        fanout.run(
            lambda chunk: b"x" * (4 << 20),
            list(range(8)),
            [1] * 8,
            processes=2,
            what="testing",
            apply=apply,
        )
    assert len(forks) == 2
    assert signalled == []
