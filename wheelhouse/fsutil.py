"""Atomic writes: a temp file in the same folder, fsync, rename. Readers (and an
interrupted run) see the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wheelhouse.errors import FS_ERRNOS


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """A filesystem's refusal (full, read-only, not permitted) raised inside names `path`,
    what is being written: a write() that meets a full disk names nothing, and a temp
    file's name means nothing to the user."""
    try:
        yield
    except OSError as e:
        if e.errno in FS_ERRNOS:
            e.filename, e.filename2 = str(path), None
        raise


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path):
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
            tmp.chmod(mode)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


COMPLETE = ".complete"
# os.link's "not here": another filesystem, or one without hard links
_CROSS_DEVICE = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP}


def publish_dir(tmp: Path, dest: Path) -> Path:
    """Move a finished folder of files into place, readable by a container's unprivileged
    user (mkdtemp makes 0700), and marked complete: a folder without the mark is a
    leftover of an interrupted run and is replaced."""
    tmp.chmod(0o755)
    for f in tmp.iterdir():
        f.chmod(0o644)
    (tmp / COMPLETE).touch()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return dest


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE).exists()


def link_into(src: Path, folder: Path, name: str) -> Path:
    """`folder/name` as a hard link of `src` (a copy across filesystems), placed by temp
    name + rename: a reader sees no file or the whole file."""
    dest = folder / name
    if dest.exists() and dest.stat().st_ino == src.stat().st_ino:
        return dest
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    with writing(dest):
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(src, tmp)  # no copy: the folder shares the store's bytes
            except OSError as e:
                if e.errno not in _CROSS_DEVICE:
                    raise
                shutil.copyfile(src, tmp)  # another filesystem
            tmp.replace(dest)
        except BaseException:  # a full or read-only folder: no partial copy left there
            tmp.unlink(missing_ok=True)
            raise
    # rename() is a no-op when both names are links to one file (another run placed the
    # same file meanwhile): the temp name would stay behind
    tmp.unlink(missing_ok=True)
    return dest
