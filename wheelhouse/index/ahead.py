"""A target's folder listed ahead, by a forked child, while `wheelhouse index` imports the
index's code: on another core, the ~30 ms listing of a 30,000-wheel folder then takes the
place of the ~25 ms of imports that came before it (an incremental run's largest costs
after Python's own start-up). The child then lists the names in other folders the run
lists later (the combined index's `simple/`: see `upkeep.existing_projects`).

The child lists the target's folder into unnamed files (`spool.list_into`: the files the
run compares where they lie, and keeps as its next snapshot) and says so down a pipe with
the listing's figures; then each other folder's names, each into a memfd of its own, with
a byte each. The run takes a listing where it would list the
folder, and only there (see `delta.plan_listed`, `writer.write_index`): once its byte came
(within `WAIT_S`: else the child is killed), and while the folder still has the stamp taken
before the child was started (an entry added, removed or renamed since: the run lists the
folder itself). What the run records of the target's folder is what it records of its own
listing, with the earlier stamp and time. Another folder's names are taken only where that
folder had not changed for a clock tick (`_SLACK`) before its stamp was taken: a change in
the same tick would not move its stamp.

Only where it pays and is safe: Linux (memfd), two CPUs or more, no other thread in this
process (a fork copies one thread), and a snapshot to compare the listing with (the run's
other paths list the folder their own way). `ListedAhead` is a context manager: on leaving
it, a child still running is killed and every child is reaped.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from wheelhouse.index.fanout import single_threaded
from wheelhouse.index.snapshot import SNAPSHOT_NAME, put
from wheelhouse.index.spool import FIGURES, Spool, list_into

WAIT_S = 30.0  # for the child to list a folder (a folder on a hung mount: killed then)
KILL_WAIT_S = 5.0  # for a child to exit (a killed one stuck in the kernel is left to init)
SIMPLE = "simple"  # an index's folder (state.SIMPLE: this module loads before that one)
STATE = ".index-state.json"  # (state.STATE_NAME, for the same reason)
# (upkeep.SLACK and COARSE_SLACK, for the same reason) the kernel's clock lags a tick
_SLACK, _COARSE_SLACK = 50_000_000, 2_000_000_000

Stamp = tuple[int, int, int]  # a folder's inode, mtime_ns and ctime_ns (scan.folder_stamp)


class ListedAhead:
    """A child listing `folder`, then the names in `more` (the stamp of each, and the time
    `at`, taken before it started)."""

    def __init__(self, folder: Path, more: Sequence[Path]) -> None:
        self.folder, self.more = folder, list(more)
        self.stamps = [_stamp(f) for f in (folder, *self.more)]
        self.at = time.time_ns()
        self.stamp = self.stamps[0]
        self.used = False  # the target's listing was the run's
        self.child = 0  # its pid
        self._pid = 0  # the same, until it is reaped
        self.spool: Spool | None = None  # the listing's files
        self._files: list[int] = []  # memfds: each other folder's names (-1: none)
        self._done = -1  # a pipe's end: the figures, then a byte as each is written
        self._got = 0  # the items that came
        self._figures = b""  # the listing's, as they came

    def __enter__(self) -> ListedAhead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def take(self, stamp: Stamp) -> Spool | None:
        """The child's listing of `folder` where the folder's stamp now is still `stamp`
        (None: list the folder here). Once: the spool is the caller's from here."""
        spool, self.spool = self.spool, None
        try:
            if spool is None or stamp != self.stamp or not self._came(0):
                raise ValueError("not listed ahead")
            spool.take_figures(self._figures)
        except (OSError, ValueError, struct.error):  # (a listing cut short or damaged)
            if spool is not None:
                spool.close()
            return None
        self.used = True
        return spool

    def names(self, folder: Path) -> list[str] | None:
        """The names in `folder`, one of `more`, where it is as it was (None: list it)."""
        if folder not in self.more:
            return None
        item = 1 + self.more.index(folder)
        try:
            stamp = self.stamps[item]
            coarse = stamp[2] % 1_000_000_000 == 0
            if stamp[2] >= self.at - (_COARSE_SLACK if coarse else _SLACK):
                return None  # (changed just before: a later change may not show)
            if _stamp(folder) != stamp or not self._came(item):
                return None
            data = _read_all(self._files[item - 1])
            return data.decode("utf-8", "surrogateescape").split("\0") if data else []
        except (OSError, ValueError):
            return None
        finally:
            self._close_file(item - 1)

    def close(self) -> None:
        """Reap the child (killed first where it is not done)."""
        if self._pid:
            with contextlib.suppress(OSError):  # (ChildProcessError: reaped already)
                if self._got < 1 + len(self._files) and self._reap(0) is None:
                    os.kill(self._pid, signal.SIGKILL)
                if self._pid:
                    self._reap(KILL_WAIT_S)
            self._pid = 0
        for i in range(len(self._files)):
            self._close_file(i)
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        if self._done >= 0:
            os.close(self._done)
            self._done = -1

    def _close_file(self, item: int) -> None:
        if self._files[item] >= 0:
            os.close(self._files[item])
            self._files[item] = -1

    def _came(self, item: int) -> bool:
        """Whether the child wrote `item` (0: the listing, its figures; then a byte each),
        within WAIT_S (what it writes wakes this process at once; the child is reaped
        later, as it leaves)."""
        deadline = time.monotonic() + WAIT_S
        poll = select.poll()  # (no limit on the descriptor's number, as select has)
        poll.register(self._done, select.POLLIN)
        while self._got <= item:
            want = FIGURES.size - len(self._figures) if not self._got else 1
            left = deadline - time.monotonic()
            if left <= 0 or not poll.poll(left * 1000):
                return False
            data = os.read(self._done, want)
            if not data:  # (the child failed)
                return False
            if not self._got:
                self._figures += data
                if len(self._figures) < FIGURES.size:
                    continue
            self._got += 1
        return True

    def _reap(self, timeout: float) -> int | None:
        """The child's exit code once it exited, within `timeout` (None: it runs still;
        the run mostly comes here after the child is done: no wait at all)."""
        assert self._pid > 0  # (0 or -1 would wait for any child)
        deadline, pause = time.monotonic() + timeout, 0.0005
        while True:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                self._pid = 0
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def start(self) -> bool:
        """Fork the child (False: it could not be)."""
        try:
            self.spool = Spool(self.folder / SIMPLE)
            for _ in self.more:
                self._files.append(os.memfd_create("wheelhouse-names", os.MFD_CLOEXEC))
            self._done, done = os.pipe()
            pid = os.fork()
        except OSError:
            self.close()
            return False
        if pid == 0:  # the child: list, write, and leave without this process's exit
            code = 1
            try:
                list_into(self.spool, self.folder)
                os.write(done, self.spool.figures())  # (under PIPE_BUF: written at once)
                for fd, other in zip(self._files, self.more, strict=True):
                    names = os.listdir(os.fsencode(other))  # noqa: PTH208 (bytes, in C)
                    put(fd, b"\0".join(names), 0)
                    os.write(done, b"\0")
                code = 0
            finally:
                os._exit(code)
        os.close(done)
        self.child = self._pid = pid
        return True


def list_ahead(folder: Path, more: Sequence[Path] = ()) -> ListedAhead | None:
    """Start listing `folder`, then the names in each of `more`, in a child (see the module
    doc); None where it would not pay or is not safe."""
    if sys.platform != "linux" or not hasattr(os, "memfd_create"):
        return None
    try:
        if len(os.sched_getaffinity(0)) < 2 or not single_threaded():
            return None
        if not os.path.isfile(f"{folder}/{SIMPLE}/{SNAPSHOT_NAME}"):  # noqa: PTH113
            return None
        if _recorded(folder) == _stamp(folder):  # (the run will not list it)
            return None
        ahead = ListedAhead(folder, [f for f in more if os.path.isdir(f)])  # noqa: PTH112
    except OSError:
        return None
    return ahead if ahead.start() else None


def _recorded(folder: Path) -> Stamp | None:
    """The stamp the index's state records for `folder`: a run does not list a folder that
    still has it (see upkeep.unchanged_folders)."""
    try:
        with open(f"{folder}/{SIMPLE}/{STATE}", "rb") as f:  # noqa: PTH123
            ino, mtime, ctime = json.loads(f.read(1 << 20))["folders"][""]
        return (int(ino), int(mtime), int(ctime))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stamp(folder: Path) -> Stamp:
    st = os.stat(folder)  # noqa: PTH116
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0)
