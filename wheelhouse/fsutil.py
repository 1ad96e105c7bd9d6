"""Atomic writes: a temp file in the same folder, fsync, rename. Readers (and an
interrupted run) see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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
