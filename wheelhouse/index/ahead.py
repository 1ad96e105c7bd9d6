"""A target's folder listed ahead, by a forked child, while `wheelhouse index` imports the
index's code: on another core, the ~30 ms listing of a 30,000-wheel folder then takes the
place of the ~25 ms of imports that came before it (an incremental run's largest costs
after Python's own start-up).

The child lists the folder as `snapshot.list_entries` does, writes the listing into a
memfd and says so with a byte down a pipe. The run takes it where it would list the folder,
and only there (see `delta.plan_listed`): once that byte came (within `WAIT_S`: else the
child is killed), and while the folder still has the stamp taken before the child listed it
(an entry added, removed or renamed since: the run lists the folder itself). What the
run then records is what it records of its own listing, with the earlier stamp and time.

Only where it pays and is safe: Linux (memfd), two CPUs or more, no other thread in
this process (a fork copies one thread), and a snapshot to compare the listing with (the
run's other paths list the folder their own way). `ListedAhead` is a context manager: on
leaving it, a child still running is killed and every child is reaped.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import sys
import time
from array import array
from pathlib import Path
from types import TracebackType

from wheelhouse.index.fanout import single_threaded
from wheelhouse.index.snapshot import SNAPSHOT_NAME, Entries, list_entries

WAIT_S = 30.0  # for the child to list the folder (a folder on a hung mount: killed then)
KILL_WAIT_S = 5.0  # for a child to exit (a killed one stuck in the kernel is left to init)
_HEAD = struct.Struct("<QQ")  # entries, bytes of their names
_SIMPLE = "simple"  # (state.SIMPLE: its module is what this one is loaded before)


class ListedAhead:
    """A child listing `folder` (its stamp `stamp` and the time `at`, both taken before)."""

    def __init__(self, folder: Path, stamp: tuple[int, int, int], at: int) -> None:
        self.folder, self.stamp, self.at = folder, stamp, at
        self.used = False  # its listing was the run's
        self.child = 0  # its pid
        self._pid = 0  # the same, until it is reaped
        self._fd = -1  # the memfd it writes the listing into
        self._done = -1  # a pipe's end: a byte once the listing is written, else EOF
        self._wrote = False  # (that byte came: the child is leaving)

    def __enter__(self) -> ListedAhead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def take(self, stamp: tuple[int, int, int]) -> Entries | None:
        """The child's listing where the folder's stamp now is still `stamp`'s (None: list
        the folder here). Once: its memfd is closed (the child is reaped by `close`)."""
        try:
            if stamp != self.stamp or not self._listed(WAIT_S):
                return None
            entries = self._read()
            self.used = True
            return entries
        except (OSError, ValueError):  # (a listing cut short or damaged)
            return None
        finally:
            self._close_files()

    def close(self) -> None:
        """Reap the child (killed first where it did not write its listing yet)."""
        if self._pid:
            with contextlib.suppress(OSError):  # (ChildProcessError: reaped already)
                if not self._wrote and self._reap(0) is None:
                    os.kill(self._pid, signal.SIGKILL)
                self._reap(KILL_WAIT_S)
            self._pid = 0
        self._close_files()

    def _close_files(self) -> None:
        for fd in (self._fd, self._done):
            if fd >= 0:
                os.close(fd)
        self._fd = self._done = -1

    def _listed(self, timeout: float) -> bool:
        """Whether the child wrote the listing, within `timeout` (the byte it sends then
        wakes this process at once; it is reaped later, as it leaves)."""
        if not select.select([self._done], [], [], timeout)[0]:
            return False
        self._wrote = os.read(self._done, 1) == b"\0"
        return self._wrote

    def _reap(self, timeout: float) -> int | None:
        """The child's exit code once it exited, within `timeout` (None: it runs still;
        the run mostly comes here after the child is done: no wait at all)."""
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

    def _read(self) -> Entries:
        fd = self._fd
        entries, size = _HEAD.unpack(os.pread(fd, _HEAD.size, 0))
        blob = os.pread(fd, size, _HEAD.size)
        starts, inos = array("I"), array("Q")
        starts.frombytes(os.pread(fd, 4 * (entries + 1), _HEAD.size + size))
        inos.frombytes(os.pread(fd, 8 * entries, _HEAD.size + size + 4 * (entries + 1)))
        if len(blob) != size or len(starts) != entries + 1 or len(inos) != entries:
            raise ValueError("a listing cut short")
        return Entries(blob, starts, inos)

    def start(self) -> bool:
        """Fork the child (False: it could not be)."""
        try:
            self._fd = os.memfd_create("wheelhouse-listing", os.MFD_CLOEXEC)
            self._done, done = os.pipe()
            pid = os.fork()
        except OSError:
            self.close()
            return False
        if pid == 0:  # the child: list, write, and leave without this process's exit
            code = 1
            try:
                _write(self._fd, list_entries(self.folder))
                os.write(done, b"\0")
                code = 0
            finally:
                os._exit(code)
        os.close(done)
        self.child = self._pid = pid
        return True


def list_ahead(folder: Path) -> ListedAhead | None:
    """Start listing `folder` in a child (see the module doc); None where it would not pay
    or is not safe."""
    if sys.platform != "linux" or not hasattr(os, "memfd_create"):
        return None
    try:
        if len(os.sched_getaffinity(0)) < 2 or not single_threaded():
            return None
        if not os.path.isfile(f"{folder}/{_SIMPLE}/{SNAPSHOT_NAME}"):  # noqa: PTH113
            return None
        st = os.stat(folder)  # noqa: PTH116 (scan.folder_stamp: see _SIMPLE)
    except OSError:
        return None
    ahead = ListedAhead(folder, (st.st_ino, st.st_mtime_ns, st.st_ctime_ns), time.time_ns())
    return ahead if ahead.start() else None


def _write(fd: int, entries: Entries) -> None:
    head = _HEAD.pack(len(entries.inos), len(entries.blob))
    for part in (head, entries.blob, entries.starts, entries.inos):
        view = memoryview(part).cast("B")
        while view:
            view = view[os.write(fd, view) :]
