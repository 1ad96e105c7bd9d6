"""A small process fan-out for an index run's bulk work: a full run's chunks of projects
(`wholerun.read_whole`: read, check, render), an incremental run's new wheels
(`reading.read_new`) and pages (`wholerun.write_pages`).

Threads do not help there: small wheels and pages are mostly Python (the GIL). So a big
run forks a few workers (`os.fork`: nothing is imported again, and the parent's records
are shared copy-on-write; the garbage collector's view is frozen first, so a worker does
not copy every page of the heap by walking it). Workers only compute (inflate and check
wheels, render pages) and write nothing: each chunk's result comes back through the
worker's own pipe (pickled, length-framed), and the parent writes its files (sidecars,
pages) as it arrives, while the workers compute the next chunks. File creation is kernel
work that does not get faster in parallel (measured: two processes creating files, even in
two folders, took longer than one), so one writer overlapping the computing is what pays;
and every write, crash point (`fsutil.crash_point`), lock and `FileWriter.written` entry
stays in the one process that did all of them before. The work is cut into chunks of about
equal cost, and each worker takes the next chunk from a pipe holding two bytes per chunk
(its number: a pipe's reads are atomic, and every ticket is written before any is read; a
worker slowed by the machine's other load takes fewer). A chunk's cost is bounded
(`MOST_COST`), so what one result holds (its pages, its sidecars) does not grow with the
run: a bigger run has more chunks, not bigger ones.

Only where forking is safe and pays: Linux, at least two CPUs this process may run on, no
other thread in the process (a fork copies only the calling thread: a lock another thread
held would stay held), and work of at least the caller's threshold. Else the caller runs
the work in-process (`workers() == 0`).

Failures: a worker's exception comes back as data and is raised again in the parent; a
worker that dies (killed, out of memory) or goes silent for IDLE_TIMEOUT is a PublishError
saying so; the parent's own (a full disk while writing) propagates as it would in-process.
Either way the parent takes the chunks not yet taken (the workers stop after the one in
hand: bounded), waits for every worker (with a timeout, then SIGTERM, then SIGKILL) and
reaps it: no zombie. A worker never outlives the parent for long: the kernel sends it
SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG), and it checks its parent before
each chunk. A worker holds the run's lock too (it inherits the open file description: no
next run starts while one is left), and has nothing to leave half-written.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from wheelhouse.errors import PublishError, WheelhouseError

FORCE: int | None = None  # tests: this many workers for any work (0: never fork)
MAX_WORKERS = 8
IDLE_TIMEOUT = 900.0  # seconds without a word from any worker: one is stuck (a hung mount)
REAP_TIMEOUT = 30.0  # seconds a stopped worker has to exit before it is killed
_CHUNKS_PER_WORKER = 24  # to balance the load
# a chunk's cost at most, where it has more than one item: its result's size (~530 pages
# of 5 wheels: a few MB; below 100,000 wheels the chunks per worker set the size)
MOST_COST = 8000
_TICKET = struct.Struct("<H")  # a chunk's number, in the tickets' pipe
_MOST_CHUNKS = 2048  # (their tickets, 4 KB, fit any pipe's buffer: written at once)
_FRAME = struct.Struct("<Q")

_T = TypeVar("_T")
_R = TypeVar("_R")


def workers(cost: int, threshold: int) -> int:
    """How many worker processes work of `cost` (in the caller's unit) gets: 0 (run it
    in-process) below `threshold` or where forking is not safe."""
    if FORCE is not None:
        return FORCE
    if cost < threshold or sys.platform != "linux":
        return 0
    cpus = len(os.sched_getaffinity(0))
    if cpus < 2 or not single_threaded():
        return 0
    return min(cpus, MAX_WORKERS)


def single_threaded() -> bool:
    """No other thread in the process, the interpreter's or a library's own (a thread just
    joined may take a moment to leave the kernel's list)."""
    for _ in range(20):
        try:
            if len(os.listdir("/proc/self/task")) == 1:  # noqa: PTH208
                return True
        except OSError:
            return False
        if threading.active_count() > 1:
            return False
        time.sleep(0.001)
    return False


def split(items: Sequence[_T], costs: Sequence[int], parts: int) -> list[Sequence[_T]]:
    """`items` cut, in order, into up to `parts` slices of about equal cost."""
    total = sum(costs)
    parts = max(1, min(parts, len(items), _MOST_CHUNKS))
    chunks: list[Sequence[_T]] = []
    start, acc = 0, 0
    for i, cost in enumerate(costs):
        acc += cost
        if acc * parts >= total * (len(chunks) + 1) and len(chunks) < parts - 1:
            chunks.append(items[start : i + 1])
            start = i + 1
    if start < len(items):
        chunks.append(items[start:])
    return chunks


def run(
    work: Callable[[Sequence[_T]], _R],
    items: Sequence[_T],
    costs: Sequence[int],
    *,
    processes: int,
    what: str,
    apply: Callable[[Sequence[_T], _R], None],
) -> None:
    """`work` over `items` in `processes` forked workers; in this process, `apply(chunk,
    result)` for each chunk as its result comes (in any order). `what` ("reading
    wheels") names the work in an error."""
    chunks = split(items, costs, max(processes * _CHUNKS_PER_WORKER, -(-sum(costs) // MOST_COST)))
    if not chunks:
        return
    pool = _Pool(chunks, what, apply)
    try:
        pool.start(work, min(processes, len(chunks)))
        pool.collect()
    except BaseException:
        pool.close()  # the parent's own exception wins (a full disk, Ctrl-C, a timeout)
        raise
    pool.close()
    pool.raise_failure()


class _Pool:
    def __init__(
        self,
        chunks: Sequence[Sequence[Any]],
        what: str,
        apply: Callable[[Sequence[Any], Any], None],
    ) -> None:
        self.chunks = chunks
        self.what = what
        self.apply = apply
        self.done: set[int] = set()
        self.pids: dict[int, int] = {}  # result pipe's fd -> pid
        self.finished: set[int] = set()  # pids that said they are done
        self.failure: BaseException | None = None
        self.deaths: list[str] = []
        self.tickets, w = os.pipe()
        try:
            os.write(w, b"".join(map(_TICKET.pack, range(len(chunks)))))  # (never blocks)
        finally:
            os.close(w)  # a worker reads b"" once every chunk is taken

    def start(self, work: Callable[[Sequence[Any]], Any], n: int) -> None:
        parent = os.getpid()
        import ctypes  # noqa: F401 (each worker's prctl: imported once, shared)

        gc.freeze()  # what exists now is never collected in a worker: its pages stay shared
        try:
            for _ in range(n):
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:  # (never returns)
                    for fd in (r, *self.pids):  # (the earlier workers' pipes: theirs only)
                        os.close(fd)
                    _worker(parent, w, self.tickets, self.chunks, work)
                os.close(w)
                self.pids[r] = pid
        finally:
            gc.unfreeze()

    def collect(self) -> None:
        """Read every worker's results until each has closed its pipe."""
        poll = select.poll()
        buffers = {fd: bytearray() for fd in self.pids}
        for fd in self.pids:
            poll.register(fd, select.POLLIN)
        while buffers:
            events = poll.poll(IDLE_TIMEOUT * 1000)
            if not events:
                raise PublishError(
                    f"the index's workers ({self.what}) gave no word for {IDLE_TIMEOUT:.0f} s: "
                    "stopped",
                    hint="check that the wheel folders' file system responds, then run again",
                )
            for fd, _ in events:
                data = os.read(fd, 1 << 20)
                if data:
                    buffers[fd] += data
                    self._frames(fd, buffers[fd])
                    if not buffers[fd]:  # (its memory goes back, not kept for the next)
                        buffers[fd] = bytearray()
                    continue
                poll.unregister(fd)
                del buffers[fd]
                if self.pids[fd] not in self.finished:
                    self._fail(None)  # died: reaping says how

    def _frames(self, fd: int, buf: bytearray) -> None:
        import pickle  # (only a run that forks: a small one never imports it)

        while len(buf) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(buf)
            if len(buf) < _FRAME.size + size:
                return
            with memoryview(buf) as view, view[_FRAME.size : _FRAME.size + size] as frame:
                kind, index, payload = pickle.loads(frame)  # noqa: S301 (our own child's)
            del buf[: _FRAME.size + size]
            if kind == "chunk":
                self.done.add(index)
                self.apply(self.chunks[index], payload)
            elif kind == "done":
                self.finished.add(self.pids[fd])
            else:
                self._fail(_rebuild(payload))

    def _fail(self, error: BaseException | None) -> None:
        """Stop handing out chunks: the workers finish the one in hand, then exit."""
        if error is not None and self.failure is None:
            self.failure = error
        _drain(self.tickets)

    def close(self) -> None:
        """Stop and reap every worker."""
        _drain(self.tickets)
        os.close(self.tickets)
        for fd in self.pids:  # a worker still sending (this process stopped reading) stops
            os.close(fd)
        for pid in self.pids.values():
            status = _reap(pid)
            if pid not in self.finished and status is not None:
                self.deaths.append(_death(pid, status))
        self.pids.clear()

    def raise_failure(self) -> None:
        """The first worker's exception, else a worker's death."""
        if self.failure is not None:
            raise self.failure
        if self.deaths or len(self.done) < len(self.chunks):
            how = self.deaths[0] if self.deaths else "stopped"
            raise PublishError(
                f"an index worker process ({self.what}) {how}: the index was not finished",
                hint="run `wheelhouse index` again: it repairs what this run left (no page "
                "links a file that is not there)",
            )


def _drain(fd: int) -> None:
    """Take every chunk not yet taken (the write end is closed: never blocks)."""
    while os.read(fd, 4096):
        pass


def _reap(pid: int) -> int | None:
    """Wait for a worker to exit: SIGTERM after a while, SIGKILL after twice that. Its
    wait status (None: not reaped)."""
    deadline = time.monotonic() + REAP_TIMEOUT
    sent = 0
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if time.monotonic() > deadline:
            if sent == 2:
                return None
            sent += 1
            os.kill(pid, signal.SIGTERM if sent == 1 else signal.SIGKILL)
            deadline = time.monotonic() + REAP_TIMEOUT
        time.sleep(0.001)


def _death(pid: int, status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        why = " (out of memory?)" if sig == signal.SIGKILL else ""
        return f"(pid {pid}) was killed by {name}{why}"
    return f"(pid {pid}) exited with status {os.waitstatus_to_exitcode(status)}"


# -- in a worker -------------------------------------------------------------------------


def _worker(
    parent: int,
    out: int,
    tickets: int,
    chunks: Sequence[Sequence[Any]],
    work: Callable[[Sequence[Any]], Any],
) -> None:
    """A forked worker's whole life: never returns, never runs the parent's exit code."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        _die_with(parent)
        while os.getppid() == parent:
            ticket = os.read(tickets, _TICKET.size)
            if len(ticket) < _TICKET.size:  # (b"": every chunk is taken)
                _send(out, ("done", 0, None))
                break
            (index,) = _TICKET.unpack(ticket)
            _send(out, ("chunk", index, work(chunks[index])))
    except BaseException as e:  # noqa: BLE001 (all of it goes back to the parent)
        code = 1
        with contextlib.suppress(BaseException):  # (else the parent sees the pipe close)
            _send(out, ("error", 0, _describe(e)))
    finally:
        os._exit(code)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the work


def _die_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # the check before each chunk remains
    if os.getppid() != parent:  # died before the prctl
        raise KeyboardInterrupt


def _send(fd: int, message: tuple[str, int, Any]) -> None:
    import pickle  # (see _frames)

    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _describe(e: BaseException) -> tuple[Any, ...]:
    """An exception as data the parent can raise again."""
    if isinstance(e, OSError) and e.errno is not None:
        return ("os", e.errno, e.strerror, e.filename, e.filename2)
    if isinstance(e, WheelhouseError):
        return ("wheelhouse", type(e), e.message, e.hint)
    import traceback

    return ("other", type(e).__name__, "".join(traceback.format_exception(e)))


def _rebuild(info: tuple[Any, ...]) -> BaseException:
    if info[0] == "os":
        _, errno, strerror, filename, filename2 = info
        return OSError(errno, strerror, filename, None, filename2)
    if info[0] == "wheelhouse":
        _, cls, message, hint = info
        err: BaseException = cls(message, hint)
        return err
    return RuntimeError(f"an index worker process failed: {info[1]}\n{info[2]}")
