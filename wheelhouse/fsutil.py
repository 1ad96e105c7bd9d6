"""Atomic writes: a temp file in the same folder, fsync, rename. Readers (and an
interrupted run) see the old file or the new one, never half of one.

Every temp file is named `.<name>.<pid>.<unique>.tmp`, so a later run can tell a dead
run's leftover (`leftover_owner`) from a live run's file. `folder_lock` gives one run at
a time a folder (a target's output folder, the output root of the combined index), with a
bounded wait. `crash_point` is the fault tests' hook (WHEELHOUSE_TEST_KILL_AT).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wheelhouse.errors import FS_ERRNOS, OutputBusyError


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """A filesystem's refusal (full, read-only, not permitted, a file too large) raised
    inside names `path`, what is being written: a write() that meets a full disk names
    nothing, and a temp file's name means nothing to the user. So does any other error
    that names no file (an I/O error of a failing disk)."""
    try:
        yield
    except OSError as e:
        name_refusal(e, path)
        raise


def name_refusal(e: OSError, path: Path | str) -> None:
    """(see `writing`) `e` names `path`, the file being written, where it names none or
    only a temp file."""
    if e.errno in FS_ERRNOS:
        e.filename, e.filename2 = str(path), None
    elif e.filename is None and e.errno is not None:  # (not Python's own OSError("..."))
        e.filename = str(path)


TMP = ".tmp"  # the suffix of every temp file
LOCK_FILE = ".index.lock"  # a dot name: never indexed, served or listed as a wheel
LOCK_WAIT = 600.0  # seconds a run waits for another run of the same folder, by default

_names = itertools.count()


def _temp_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{next(_names)}{TMP}"


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, private file beside `path` (`.<name>.<pid>.<n>.tmp`), opened for writing.
    Created exclusively: a name a dead run left behind is passed over. (tempfile's
    mkstemp does the same with a random name, and costs a warm build its import.)"""
    for _ in range(1000):
        tmp = path.parent / _temp_name(path.name)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp name", str(path))


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644, durable: bool = True) -> None:
    """`durable=False` skips the fsync: for files whose loss or truncation by a power cut
    only costs work (a verification stamp that no longer matches is re-checked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path):
        fd, tmp = _create_temp(path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            tmp.chmod(mode)
            crash_point()
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


HINT_WIDTH = 160  # bytes of every hint file: rewritten in place, never truncated


def write_hint(path: Path, data: str) -> None:
    """Write `data` into `path` in place, not atomically: only for a file whose torn
    content its readers take as a miss (a verification stamp: the file is checked again).
    Padded with spaces to HINT_WIDTH and written over the old bytes, never truncated and
    never renamed over: ext4 starts writing back a file truncated or renamed over
    (auto_da_alloc), which made each of a warm build's stamps cost milliseconds."""
    raw = data.encode()
    if len(raw) <= HINT_WIDTH:
        raw = raw.ljust(HINT_WIDTH)
    with writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, raw, 0)
        finally:
            os.close(fd)


COMPLETE = ".complete"
# os.link's "not here": another filesystem, or one without hard links
_CROSS_DEVICE = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP}


def remove_tree(path: Path | str) -> None:
    """Remove a folder and what it holds, whatever can be (shutil, imported here: it costs
    a command's start some 2-5 ms that most never use)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def publish_dir(tmp: Path, dest: Path) -> Path:
    """Move a finished folder of files into place, readable by a container's unprivileged
    user (mkdtemp makes 0700), and marked complete: a folder without the mark is a
    leftover of an interrupted run and is replaced."""
    tmp.chmod(0o755)
    for f in tmp.iterdir():
        f.chmod(0o644)
    (tmp / COMPLETE).touch()
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_tree(dest)
    tmp.replace(dest)
    return dest


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE).exists()


def link_into(src: Path, folder: Path, name: str) -> bool:
    """`folder/name` as a hard link of `src` (a copy across filesystems), placed by temp
    name + rename: a reader sees no file or the whole file. False when it already was."""
    dest = folder / name
    with writing(dest):
        try:  # a new name: link() itself is atomic, no temp name needed (a fresh folder)
            os.link(src, dest)
            crash_point()
            return True
        except FileExistsError:
            if dest.stat().st_ino == src.stat().st_ino:
                return False
        except OSError as e:
            if e.errno not in _CROSS_DEVICE:
                raise
    tmp = folder / _temp_name(name)
    with writing(dest):
        try:
            try:
                os.link(src, tmp)  # no copy: the folder shares the store's bytes
            except OSError as e:
                if e.errno not in _CROSS_DEVICE:
                    raise
                import shutil  # (imported where used: some 2-5 ms of a start)

                shutil.copyfile(src, tmp)  # another filesystem
            crash_point()
            tmp.replace(dest)
        except BaseException:  # a full or read-only folder: no partial copy left there
            tmp.unlink(missing_ok=True)
            raise
    # rename() is a no-op when both names are links to one file (another run placed the
    # same file meanwhile): the temp name would stay behind
    tmp.unlink(missing_ok=True)
    return True


# -- leftovers of killed runs ------------------------------------------------------------


def leftover_owner(name: str) -> int | None:
    """The pid in a temp file's name: `.<name>.<pid>.<unique>.tmp` (every temp file this
    package writes), or `.<name>.<pid>.tmp` (link_into's, before the unique part)."""
    if not (name.startswith(".") and name.endswith(TMP)):
        return None
    parts = name[1 : -len(TMP)].split(".")
    if len(parts) >= 3 and parts[-2].isdigit():
        return int(parts[-2])
    if len(parts) >= 2 and parts[-1].isdigit():
        return int(parts[-1])
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # alive (another user's), or not a pid at all: leave its file alone
    return True


def remove_leftovers(folder: Path) -> int:
    """Remove the temp files dead runs left directly in `folder` (call it holding the
    folder's lock: a live run of another kind, such as the combined index writing a
    sidecar here, keeps its files because its pid is alive). Returns how many."""
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            pid = leftover_owner(entry.name)
            if pid is not None and not pid_alive(pid) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)  # noqa: PTH108
                    removed += 1
    return removed


# -- one run per folder ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Wait:
    """How long a run waits for another run's folder lock (0: not at all), and whom it
    tells, once, that it is waiting (the progress line)."""

    seconds: float = LOCK_WAIT
    on_wait: Callable[[str], None] | None = None


WAIT = Wait()
_held = threading.local()  # the folders this thread holds: the lock is re-entrant per thread


@contextlib.contextmanager
def folder_lock(folder: Path, *, wait: Wait = WAIT, label: str | None = None) -> Iterator[None]:
    """Hold `folder` for one run: an exclusive flock on `folder/.index.lock`. Another
    process (or thread) waits up to `wait.seconds`, then raises OutputBusyError naming
    `label` (the folder as the user writes it). Taking it again in the thread that holds it
    is free: a build holds its target's folder and then writes that folder's index, which
    takes the same lock."""
    key = os.path.abspath(folder)  # noqa: PTH100
    held: dict[str, int] = _held.__dict__.setdefault("folders", {})
    if key in held:
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a") as f:
        _acquire(f.fileno(), wait, label or str(folder))
        held[key] = 1
        try:
            yield
        finally:
            del held[key]
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _acquire(fd: int, wait: Wait, label: str) -> None:
    """flock with a deadline: polled, because a blocking flock cannot be given a timeout
    (an alarm signal would be process-wide, and this runs in threads too)."""
    deadline = time.monotonic() + wait.seconds
    pause = 0.01
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            waited = f" (waited {wait.seconds:g} s)" if wait.seconds > 0 else ""
            raise OutputBusyError(
                f"{label}/ is in use by another wheelhouse run (a build or an index of the "
                f"same folder){waited}",
                hint="let that run finish, then run again; or wait longer with --wait SECONDS",
            )
        if not told and wait.on_wait is not None:
            wait.on_wait(f"{label}/ is in use by another run: waiting up to {wait.seconds:g} s")
            told = True
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.25)


# -- the fault tests' hook ---------------------------------------------------------------

_KILL_SETTING = os.environ.get("WHEELHOUSE_TEST_KILL_AT", "")  # read once, here only
_KILL_AT = int(_KILL_SETTING) if _KILL_SETTING.isdigit() else 0  # anything else: off
_points = itertools.count(1)


def crash_point() -> None:
    """Called just before each change a reader could see (a rename, a removal). With
    WHEELHOUSE_TEST_KILL_AT=N in the environment, the Nth call kills the process with
    SIGKILL, as a power cut or the OOM killer would: no cleanup code runs. The fault tests
    run a build at every N until one finishes. Otherwise a comparison."""
    if _KILL_AT and next(_points) == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def staging_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A folder a container (running as another uid) can write into through its bind
    mount, removed on every way out. It is world-writable, so it lives in a fresh 0700
    folder under `parent` (the cache's tmp): no other user can reach it to plant or take
    a file, whatever `parent` is shared with."""
    import tempfile

    parent.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))  # 0700
    try:
        out = private / "out"
        out.mkdir()
        out.chmod(0o777)
        yield out
    finally:
        remove_tree(private)
