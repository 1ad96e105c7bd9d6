"""A folder's listing streamed into unnamed files (`spool`) and kept as the next snapshot
(`snapshot.publish`): read back exactly as it was listed, each part checked; never a
name in `simple/`, whichever kind of unnamed file the machine gives; a full disk as the
listing is written costs the run its fast path and nothing else; and an incremental run
holds no copy of its listing, whatever the folder's size."""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any

import pytest
from fixtures_simple import check_tree, fast_runs, put

from wheelhouse.index import snapshot, spool, upkeep
from wheelhouse.index import writer as ix
from wheelhouse.index.snapshot import NONE, SNAPSHOT_NAME, encode_names, read_snapshot

TOKEN = "1 2 3"


@pytest.fixture(autouse=True)
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upkeep, "SLACK", 0)


def _folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for i in range(count):
        (folder / f"p{i % 7}-{i}.0-py3-none-any.whl").write_bytes(b"")
    if count:
        (folder / os.fsdecode(b"odd-\xff-name.txt")).write_bytes(b"")  # (not UTF-8)
    return folder


def _published(tmp_path: Path, folder: Path) -> tuple[snapshot.Snapshot, list[os.DirEntry[bytes]]]:
    """The folder listed into a marked spool (a batch of 7 at a time, a mark from each
    name), three entries added after, kept as a snapshot and read back."""
    simple = tmp_path / "simple"
    simple.mkdir()
    into = spool.Spool(simple, marked=True)
    into_names: list[bytes] = []

    def mark(name: bytes, ino: int) -> int:
        into_names.append(name)
        return len(name) % 3

    spool.list_into(into, folder, mark)
    spool.spool_more(into, [(b"gone-1.whl", 7, 0), (b"more", 0, NONE), (b"z", 9, 2)])
    snapshot.publish(simple, TOKEN, into, ["a", "b", "c"], array("I", [1, 2, 3]), 42)
    into.close()
    with os.scandir(os.fsencode(folder)) as it:
        listed = list(it)
    assert [e.name for e in listed] == into_names  # (marked in the listing's order)
    snap = read_snapshot(simple, TOKEN)
    assert snap is not None
    return snap, listed


@pytest.mark.parametrize("count", [0, 1, 300])
def test_a_spooled_listing_reads_back_as_it_was_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(spool, "_BATCH", 7)
    snap, listed = _published(tmp_path, _folder(tmp_path, count))
    names = [e.name for e in listed] + [b"gone-1.whl", b"more", b"z"]
    assert bytes(snap.names) == encode_names(names)
    assert list(snap.inos) == [e.inode() for e in listed] + [7, 0, 9]
    assert list(snap.marks) == [len(e.name) % 3 for e in listed] + [0, NONE, 2]
    entries = snapshot.Entries(snap.names, snap.starts, snap.inos)
    assert [entries.name(i) for i in range(len(names))] == names
    in_memory = snapshot.Entries(encode_names(names), None, array("Q"))
    assert list(snap.starts) == list(in_memory.starts)
    assert (snap.table, list(snap.counts), snap.lines, snap.wheels) == (
        ["a", "b", "c"],
        [1, 2, 3],
        42,
        6,
    )
    assert read_snapshot(tmp_path / "simple", "another log") is None


@pytest.mark.parametrize("part", ["head", "names", "starts", "inos", "marks", "table", "counts"])
def test_a_snapshot_damaged_in_any_part_is_no_snapshot(tmp_path: Path, part: str) -> None:
    snap, listed = _published(tmp_path, _folder(tmp_path, 40))
    n = len(listed) + 3
    path = tmp_path / "simple" / SNAPSHOT_NAME
    data = bytearray(path.read_bytes())
    page = mmap.ALLOCATIONGRANULARITY
    at = {
        "head": len(b"wheelhouse index-listing 4 "),
        "names": page + 5,
        "starts": page + -(-len(bytes(snap.names)) // page) * page + 4,
    }.get(part)
    if at is None:  # (a part found by what it holds)
        needle = {
            "inos": array("Q", list(snap.inos)).tobytes()[8:16],
            "marks": array("I", list(snap.marks)).tobytes()[-8:],
            "table": b"a\0b\0c",
            "counts": array("I", [1, 2, 3]).tobytes(),
        }[part]
        at = bytes(data).rindex(needle) + 1
    data[at] ^= 0x01
    del snap
    path.write_bytes(bytes(data))
    assert read_snapshot(tmp_path / "simple", TOKEN) is None, (part, n)


def test_a_run_leaves_no_name_in_simple_and_moves_no_stamp(out: Path) -> None:
    """The listing's files have no name (O_TMPFILE in `simple/` here): the folder's stamp
    stays as it was, so the run with nothing to do after is not kept from stopping at once
    (see settled.py)."""
    slim = out / "slim"
    simple = slim / "simple"
    ix.index_target(slim)
    put(slim, "gamma", "1.0")
    before = sorted(p.name for p in simple.iterdir())
    made: list[int] = []
    real = spool.unnamed

    def counting(where: Path) -> int:
        fd = real(where)
        made.append(fd)
        return fd

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spool, "unnamed", counting)
        ix.index_target(slim)
    assert len(made) >= 4  # (names, starts, inodes and marks)
    after = sorted(p.name for p in simple.iterdir())
    assert set(after) - set(before) <= {"gamma"}
    assert "gamma" in check_tree(simple)


@pytest.mark.parametrize("kind", ["memfd", "temp file"])
def test_other_unnamed_files_serve_as_well(
    out: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Where O_TMPFILE is refused (a file system without it, `simple/` read-only), a memfd;
    where there is none either, a temp file unlinked at once."""
    real_open = os.open

    def no_tmpfile(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
            raise OSError(errno.EOPNOTSUPP, "no O_TMPFILE here")
        return real_open(path, flags, *args, **kw)

    def no_memfd(*args: Any) -> int:
        raise OSError(errno.ENOSYS, "no memfd here")

    slim = out / "slim"
    ix.index_target(slim)
    monkeypatch.setattr(os, "open", no_tmpfile)
    if kind == "temp file":
        monkeypatch.setattr(os, "memfd_create", no_memfd)
    fast = fast_runs(monkeypatch)
    for version in ("1.0", "2.0"):
        put(slim, "gamma", version)
        ix.index_target(slim)
    assert fast == [True, True]
    assert [f["filename"] for f in check_tree(slim / "simple")["gamma"]] == [
        "gamma-1.0-py3-none-any.whl",
        "gamma-2.0-py3-none-any.whl",
    ]


@pytest.mark.parametrize(
    ("where", "error"),
    [("put", errno.ENOSPC), ("map_file", errno.EMFILE)],
    ids=["full disk as it is written", "no descriptor left to map it"],
)
def test_a_listing_that_cannot_be_kept_costs_only_the_fast_path(
    out: Path, monkeypatch: pytest.MonkeyPatch, where: str, error: int
) -> None:
    slim = out / "slim"
    ix.index_target(slim)
    put(slim, "gamma", "1.0")
    fast = fast_runs(monkeypatch)

    def failing(*args: Any, **kw: Any) -> Any:
        raise OSError(error, os.strerror(error))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spool, where, failing)
        report = ix.index_target(slim)
    assert fast == [False] and report.hashed == 1
    assert "gamma" in check_tree(slim / "simple")
    for name in ("delta", "epsilon"):  # (a snapshot kept again: by the first of them, at most)
        put(slim, name, "1.0")
        ix.index_target(slim)
    assert fast[-1] is True
    assert {"gamma", "delta", "epsilon"} <= check_tree(slim / "simple").keys()


_HELD = """
import sys, tracemalloc
from pathlib import Path
from wheelhouse.index import writer as ix
folder = Path(sys.argv[1])
tracemalloc.start()
ix.index_target(folder)
print(tracemalloc.get_traced_memory()[1])
"""


def test_an_incremental_run_holds_no_copy_of_its_listing(tmp_path: Path) -> None:
    """A folder of 40,000 entries (4 MiB of names, some 30 wheels in 3 projects) and one
    new wheel: what the run allocates stays far below its listing's size (the listing is
    compared and kept where it lies, see spool.py; the run before held a copy of it)."""
    slim = tmp_path / "slim"
    slim.mkdir()
    for i in range(30):
        put(slim, f"proj{i % 3}", f"{i}.0")
    pad = "x" * 90
    for i in range(40_000):
        (slim / f"{pad}-{i}.txt").write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = [sys.executable, "-c", _HELD, str(slim)]
    subprocess.run(run, check=True, env=env, capture_output=True)  # (the full run)
    put(slim, "proj1", "99.0")
    out = subprocess.run(run, check=True, env=env, capture_output=True, text=True).stdout
    held = int(out.split()[-1])
    names = 40_000 * (len(pad) + 8)
    assert held < names // 4, f"{held >> 10} KiB held for {names >> 10} KiB of names"
    assert "99.0" in str(check_tree(slim / "simple")["proj1"])
