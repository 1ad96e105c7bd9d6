"""The file operations of an index run: whole-file replacement of pages and sidecars, a
project's pages (`write_project`), the run lock, temp files of interrupted runs,
durability, and a small thread fan-out for them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

from wheelhouse.fsutil import (
    TMP,
    WAIT,
    Wait,
    atomic_write,
    crash_point,
    folder_lock,
    leftover_owner,
    name_refusal,
    pid_alive,
    remove_tree,
    writing,
)
from wheelhouse.index.state import SIMPLE

NEW_PREFIX = ".new-"  # a new project's folder, before it appears whole
_FSYNC_EACH = 64  # up to this many written files are fsynced one by one; more: one sync()
_T = TypeVar("_T")


class FileWriter:
    """Whole-file replacement: write a temp file beside the destination, then rename it
    over the destination (same folder: no cross-folder rename, which the kernel serializes
    filesystem-wide), so a reader sees the old file or the new one, never half of one.
    Safe from threads. See `wheelhouse.index.writer` for how the files are made durable."""

    def __init__(self, *, track: bool = True) -> None:
        # track: remember what was written, for fsync(); a run that will not fsync (the
        # state records the boot id instead) keeps no list of every file it wrote
        self.tracking = track
        self._names = itertools.count()
        self._pid = os.getpid()
        self.written: list[str] = []
        mask = os.umask(0o022)
        os.umask(mask)
        # pages are read by other users (a server, a container's unprivileged user)
        self._chmod = mask & 0o644 != 0

    def write(self, dest: str, data: bytes, *, track: bool = True) -> None:
        folder, _, name = dest.rpartition("/")
        tmp = f"{folder}/.{name}.{self._pid}.{next(self._names)}{TMP}"
        with writing(dest):
            self._replace(tmp, dest, data)
        if track and self.tracking:
            self.written.append(dest)

    def create(self, dest: str, data: bytes, *, track: bool = True) -> bool:
        """Write a file no reader is sent to yet in place: no temp file, no rename (what
        an interrupted run leaves of it is found and written again by the next, see
        `wheelhouse.index.writer`). False, writing nothing, where it already exists."""
        # (no `writing()` context here: one per sidecar and page, tens of thousands a run)
        try:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            name_refusal(e, dest)
            raise
        try:
            self._write_fd(fd, data)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(dest)  # noqa: PTH108
            if isinstance(e, OSError):
                name_refusal(e, dest)
            raise
        finally:
            os.close(fd)
        if track and self.tracking:
            self.written.append(dest)
        return True

    def _write_fd(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if self._chmod:
            os.fchmod(fd, 0o644)

    def _replace(self, tmp: str, dest: str, data: bytes) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                self._write_fd(fd, data)
            finally:
                os.close(fd)
            crash_point()
            os.replace(tmp, dest)  # noqa: PTH105 (str paths: thousands of files per run)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            raise

    def fsync(self) -> None:
        """fsync what was written: one by one for a few files, else one sync()."""
        if len(self.written) > _FSYNC_EACH:
            os.sync()
        else:
            for path in self.written:
                with contextlib.suppress(FileNotFoundError):
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        self.written.clear()


def write_project(
    writer: FileWriter, simple: Path, project: str, page: bytes, doc: bytes, *, new: bool
) -> None:
    """A project's two pages (see `wheelhouse.index.writer`): replaced whole, or, for a new
    project, its folder appears whole with both pages in it."""
    folder = f"{simple}/{project}"
    if not new:  # the HTML, then the JSON that says what both show
        writer.write(f"{folder}/index.html", page)
        writer.write(f"{folder}/index.json", doc)
        return
    # written in place in a folder no reader is sent to, then one rename
    staging = f"{simple}/{NEW_PREFIX}{project}"
    os.mkdir(staging)  # noqa: PTH102
    for name, data in (("index.html", page), ("index.json", doc)):
        if not writer.create(f"{staging}/{name}", data, track=False):
            raise FileExistsError(f"{staging}/{name}")
    crash_point()
    os.rename(staging, folder)  # noqa: PTH104
    if writer.tracking:  # (only what will be fsynced is tracked)
        writer.written.extend((f"{folder}/index.html", f"{folder}/index.json", folder))


class Staging:
    """A full run's project pages, written where no reader is sent as each project is
    done, and published by renames once every wheel of the run is checked (`commit`):
    a run holds no page, or record, past its project's, and a refused wheel still
    publishes nothing (`discard`). A new project's pages go in its `.new-<project>`
    folder, renamed to `<project>/` (as `write_project` does); an existing one's in the
    run's own hidden folder (`.staged.<pid>.tmp`: an interrupted run's is removed with its
    other leftovers), each renamed over its page, the HTML first."""

    def __init__(self, simple: Path, writer: FileWriter, existing: set[str]) -> None:
        self.simple = str(simple)
        self.writer = writer
        self.existing = existing
        self.folder = f"{simple}/.staged.{os.getpid()}{TMP}"
        self.new: list[str] = []
        self.replaced: list[str] = []

    def add(self, project: str, page: bytes, doc: bytes) -> None:
        create = self.writer.create
        if project in self.existing:
            if not self.replaced:
                os.mkdir(self.folder)  # noqa: PTH102
            self.replaced.append(project)
            files = (
                (f"{self.folder}/{project}.html", page),
                (f"{self.folder}/{project}.json", doc),
            )
        else:
            staging = f"{self.simple}/{NEW_PREFIX}{project}"
            os.mkdir(staging)  # noqa: PTH102
            self.new.append(project)
            files = ((f"{staging}/index.html", page), (f"{staging}/index.json", doc))
        for path, data in files:
            if not create(path, data, track=False):
                raise FileExistsError(path)

    def commit(self) -> None:
        """Publish every staged page (the caller marked the index dirty first)."""
        simple, written, track = self.simple, self.writer.written, self.writer.tracking
        for project in self.replaced:
            for ext in ("html", "json"):
                crash_point()
                dest = f"{simple}/{project}/index.{ext}"
                os.replace(f"{self.folder}/{project}.{ext}", dest)  # noqa: PTH105
                if track:
                    written.append(dest)
        for project in self.new:
            crash_point()
            folder = f"{simple}/{project}"
            os.rename(f"{simple}/{NEW_PREFIX}{project}", folder)  # noqa: PTH104
            if track:
                written.extend((f"{folder}/index.html", f"{folder}/index.json", folder))
        if self.replaced:
            os.rmdir(self.folder)  # noqa: PTH106
        self.new, self.replaced = [], []

    def discard(self) -> None:
        """Remove what is still staged (a refused wheel: nothing is published)."""
        if self.replaced:
            remove(self.folder)
        for project in self.new:
            remove(f"{self.simple}/{NEW_PREFIX}{project}")
        self.new, self.replaced = [], []


def index_lock(
    root: Path, *, wait: Wait = WAIT, label: str | None = None
) -> AbstractContextManager[None]:
    """One run at a time per index root (a target's folder; the output folder, for the
    combined index): `root/simple/.index.lock`. Every index run of `root` holds it, and so
    does a build of a target's folder from assembly to its removals (and of the output
    folder for the combined index and the removals). Kept in simple/, where the index
    always had it: the wheel folder holds only wheels, lock.txt and manifest.json."""
    return folder_lock(root / SIMPLE, wait=wait, label=label or str(root))


def write_small(path: Path, data: bytes, *, durable: bool) -> None:
    """The state and the marker: replaced atomically; fsynced only where no boot id tells
    the next run that the machine restarted (then it re-renders every page anyway, and a
    state that is lost or cut short only costs a full run)."""
    if durable:
        atomic_write(path, data)
    else:
        FileWriter().write(str(path), data)


def remove(path: str) -> None:
    """A file or a folder, if it is there."""
    if os.path.isdir(path) and not os.path.islink(path):  # noqa: PTH112, PTH114
        remove_tree(path)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)  # noqa: PTH108


def stale_temp(name: str) -> bool:
    """A `.<name>.<pid>.<n>.tmp` of a process that is gone (an interrupted run)."""
    pid = leftover_owner(name)
    return pid is not None and not pid_alive(pid)


def boot_id() -> str | None:
    """Changes when the machine restarts (Linux); None elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def parallel(fn: Callable[[_T], None], items: Sequence[_T], *, threads: bool = True) -> None:
    """Run fn over items in a few threads: file creation, reads, zlib and hashing release
    the GIL, so a page's rendering overlaps another's write. Exceptions propagate."""
    if len(items) < 8 or not threads:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    def chunk(part: Sequence[_T]) -> None:  # a few tasks, not one future per file
        for item in part:
            fn(item)

    workers = min(8, 2 * (os.cpu_count() or 1))
    size = -(-len(items) // (workers * 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(chunk, [items[i : i + size] for i in range(0, len(items), size)]):
            pass
