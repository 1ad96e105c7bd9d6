"""A run over folders and pages that did not change stops at once.

A run that found nothing to do (no file came, went or changed, no page to write, the state
left as it was), and saw `simple/` itself not change while it ran, writes that down in
`simple/.index-settled`: the stamp of `simple/` (inode, mtime, ctime: taken a clock tick or
more after its last change, as the source folders' are, see `upkeep.quiet`), the state it
ran under (its file's stamp) and what its report counted. The next run whose state is that
one, whose source folders all still have the stamps the state records, and whose `simple/`
still has that stamp, has nothing to do either: it reads two small files and stops, with no
log, snapshot or listing read (`wheelhouse index` run again by a script, a Makefile or a
CI step over a folder that did not change). A page folder removed by hand, a stray or temp
file left in `simple/`, a rewritten state or log all change the stamp: the run takes the
usual path. A build's index lists its folder always (`Source.only`): never settled.

The file is written over in place (a new file would change the stamp it records): one cut
short or damaged does not parse or does not agree, and is no marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wheelhouse.index.scan import Seen, Source, folder_stamp
from wheelhouse.index.state import STATE_NAME, FolderStamp, IndexState
from wheelhouse.index.upkeep import quiet

SETTLED_NAME = ".index-settled"
_FORMAT = 1
_MAX_BYTES = 1 << 16  # read of the marker at most (it holds some 200 bytes)


@dataclass(frozen=True)
class Settled:
    """What the run that found nothing to do counted (see IndexReport)."""

    projects: int
    files: int
    unmatched_yanks: tuple[str, ...]


def simple_seen(simple: Path) -> Seen | None:
    """The stamp of `simple/` as a run starts, and when it was taken (None: no folder)."""
    try:
        return Seen(folder_stamp(simple), time.time_ns())
    except OSError:
        return None


def read_settled(
    simple: Path, sources: Sequence[Source], state: IndexState | None, yanks: str, seen: Seen | None
) -> Settled | None:
    """What the last run that found nothing to do counted, where this run has nothing to do
    either (see the module doc): `state`, the one this run found where it is valid and
    agrees with its log; `yanks`, the digest of this run's; `seen`, the stamp of `simple/`
    as this run started."""
    if state is None or state.yanks != yanks or seen is None:
        return None
    if any(s.only is not None for s in sources):
        return None
    if state.folders.keys() != {s.prefix for s in sources}:
        return None
    try:
        for src in sources:
            if folder_stamp(src.folder) != state.folders[src.prefix]:
                return None
        with open(simple / SETTLED_NAME, "rb") as f:  # noqa: PTH123
            doc = json.loads(f.read(_MAX_BYTES))
        if doc["format"] != _FORMAT or doc["state"] != _state_token(simple):
            return None
        if tuple(doc["simple"]) != seen.stamp:
            return None
        return Settled(int(doc["projects"]), int(doc["files"]), tuple(map(str, doc["unmatched"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep_settled(simple: Path, seen: Seen | None, done: Settled, *, idle: bool) -> None:
    """Write down that this run found nothing to do (`idle`: it left the state as it found
    it, valid; see the module doc), where `simple/` still has the stamp `seen` it had as
    the run started and had not changed for a tick then; else what is written down is
    cleared. The file is made by a run that wrote the state (which changes the stamp of
    `simple/` anyway), and written over in place from then on."""
    try:
        fd = os.open(simple / SETTLED_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # (a read-only folder: the next run takes the usual path)
        return
    with contextlib.suppress(OSError), os.fdopen(fd, "r+b") as f:
        ok = idle and seen is not None and quiet(seen) and folder_stamp(simple) == seen.stamp
        data = _settled(simple, seen.stamp, done) if ok and seen is not None else b""
        if data != f.read(len(data) + 1):  # (as it is: not written again)
            f.seek(0)
            f.write(data)
            f.truncate(len(data))


def _settled(simple: Path, stamp: FolderStamp, done: Settled) -> bytes:
    doc: Mapping[str, object] = {
        "format": _FORMAT,
        "state": _state_token(simple),
        "simple": list(stamp),
        "projects": done.projects,
        "files": done.files,
        "unmatched": list(done.unmatched_yanks),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _state_token(simple: Path) -> str:
    st = os.stat(simple / STATE_NAME)  # noqa: PTH116
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
