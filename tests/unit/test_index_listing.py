"""An incremental run against the snapshot of the folder's last listing (`snapshot`,
`delta.plan_listed`): the compare of two listings as bytes against a plain model of it,
and runs over random changes to a folder, each published exactly as a full run over the
same files publishes them; a snapshot that is lost, damaged, from another log or left by
a run that stopped is never trusted for what it does not describe."""

from __future__ import annotations

import json
import mmap
import os
import random
import shutil
from array import array
from pathlib import Path
from typing import Any

import pytest
from fixtures_simple import check_tree, fast_runs, put, swap

from wheelhouse.index import delta, fileops, listdiff, relisting, snapshot, upkeep
from wheelhouse.index import writer as ix
from wheelhouse.index.listdiff import diff
from wheelhouse.index.snapshot import SNAPSHOT_NAME, Blob, Entries, Ints, encode_names
from wheelhouse.index.state import STATE_NAME


@pytest.fixture(autouse=True)
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upkeep, "SLACK", 0)


# -- the compare ---------------------------------------------------------------------------


def _encoded(names: list[str]) -> bytes:
    return encode_names([n.encode() for n in names])


def entries_of(blob: Blob, inos: Ints) -> Entries:
    """A listing in memory (its starts found where first wanted)."""
    return Entries(blob, None, inos)


def _check(
    new: list[str], new_inos: list[int], old: list[str], old_inos: list[int], *, order: bool
) -> None:
    """diff's answer accounts for every entry of both listings exactly once, pairs only
    equal names, and names exactly the pairs whose inode differs. It may give up only where
    the order is another (`order`: the same order, entries added, removed and moved)."""
    found = diff(
        entries_of(_encoded(new), array("Q", new_inos)),
        _encoded(old),
        array("Q", old_inos),
        limit=len(new) + len(old),
    )
    if found is None and not order:
        return
    assert found is not None
    paired_new = [i for a, _, k in found.runs for i in range(a, a + k)]
    paired_old = [j for _, b, k in found.runs for j in range(b, b + k)]
    assert sorted(paired_new + found.inserted) == list(range(len(new)))
    assert sorted(paired_old + [j for j, _ in found.deleted]) == list(range(len(old)))
    assert all(old[j] == name for j, name in found.deleted)
    for a, b, k in found.runs:
        assert new[a : a + k] == old[b : b + k]
    replaced = [
        (a + s, b + s)
        for a, b, k in found.runs
        for s in range(k)
        if new_inos[a + s] != old_inos[b + s]
    ]
    assert found.replaced == replaced
    # what is left over, settled by name, is exactly what changed
    inserted = {new[i]: new_inos[i] for i in found.inserted}
    deleted = {name: old_inos[j] for j, name in found.deleted}
    before = dict(zip(old, old_inos, strict=True))
    after = dict(zip(new, new_inos, strict=True))
    changed = {n for n in before.keys() & after.keys() if before[n] != after[n]}
    assert inserted.keys() - deleted.keys() == after.keys() - before.keys()
    assert deleted.keys() - inserted.keys() == before.keys() - after.keys()
    moved_or_replaced = {n for n in inserted.keys() & deleted.keys() if inserted[n] != deleted[n]}
    assert moved_or_replaced | {new[a] for a, _ in found.replaced} == changed


@pytest.mark.parametrize("seed", range(40))
def test_the_compare_accounts_for_every_entry(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([0, 1, 5, 300, 3000])
    old = [f"p{rng.randrange(10**9)}-{i}.whl" + rng.choice(["", ".metadata"]) for i in range(size)]
    old_inos = [rng.randrange(1, 2**63) for _ in old]
    new, new_inos = list(old), list(old_inos)
    for _ in range(rng.choice([0, 1, 3, 40])):
        op = rng.choice(["add", "add-front", "remove", "replace", "move", "add-block"])
        if op == "add" or (op == "add-front" and new):
            at = 0 if op == "add-front" else rng.randrange(len(new) + 1)
            new.insert(at, f"n{rng.randrange(10**9)}.whl")
            new_inos.insert(at, rng.randrange(1, 2**63))
        elif op == "add-block":  # (tmpfs lists the newest first: a block of them)
            for k in range(rng.randrange(1, 60)):
                new.insert(0, f"b{rng.randrange(10**9)}-{k}.whl")
                new_inos.insert(0, rng.randrange(1, 2**63))
        elif new and op == "remove":
            at = rng.randrange(len(new))
            del new[at], new_inos[at]
        elif new and op == "replace":
            new_inos[rng.randrange(len(new))] = rng.randrange(1, 2**63)
        elif new and op == "move":
            at = rng.randrange(len(new))
            name, ino = new.pop(at), new_inos.pop(at)
            to = rng.randrange(len(new) + 1)
            new.insert(to, name)
            new_inos.insert(to, ino if rng.random() < 0.5 else ino + 1)
    if old and rng.random() < 0.3:  # sidecars a run wrote: at the snapshot's end, no inode
        kept = sorted(rng.sample(range(len(old)), rng.randrange(len(old) + 1)))
        unplaced = sorted(set(range(len(old))) - set(kept), key=lambda j: old[j])
        old = [old[j] for j in kept] + [old[j] for j in unplaced]
        old_inos = [old_inos[j] for j in kept] + [0] * len(unplaced)
    shuffled = rng.random() < 0.2
    if shuffled:  # another order altogether (another file system, a copy)
        order = list(range(len(new)))
        rng.shuffle(order)
        new, new_inos = [new[i] for i in order], [new_inos[i] for i in order]
    _check(new, new_inos, old, old_inos, order=not shuffled)


def test_the_sidecars_a_run_wrote_are_found_by_name_and_count_as_no_difference() -> None:
    """A run writes its sidecars after it listed the folder: its snapshot has them at its
    end, with no inode. The next listing has them among the rest, in hash order; found by
    name, they are no difference against the limit, and none of them is taken for the
    place where the two listings meet (which would make a stretch between look gone)."""
    rng = random.Random(7)
    wheels = [f"w{rng.randrange(10**9)}-{i}-py3-none-any.whl" for i in range(400)]
    sidecars = [w + ".metadata" for w in wheels[::2]]  # (written by the last run)
    listed = wheels + sidecars
    rng.shuffle(listed)  # (the file system's order, where the sidecars came)
    placed = [n for n in listed if n not in set(sidecars)]
    old = placed + sorted(sidecars)
    old_inos = array("Q", [i + 1 for i in range(len(placed))] + [0] * len(sidecars))
    gone = placed[100]
    new = [n for n in listed if n != gone]
    inos = {n: i for n, i in zip(old, old_inos, strict=True) if i}
    new_inos = array("Q", [inos.get(n, 10**6 + k) for k, n in enumerate(new)])
    found = diff(entries_of(_encoded(new), new_inos), _encoded(old), old_inos, limit=1)
    assert found is not None
    deleted = {name for _, name in found.deleted}
    inserted = {new[i] for i in found.inserted}
    assert deleted - inserted == {gone} and inserted - deleted == set()
    assert inserted == set(sidecars)  # (settled by name: moved, their inodes learnt)
    assert sum(k for _, _, k in found.runs) == len(placed) - 1


def test_the_compare_gives_up_past_its_limit() -> None:
    old = [f"w{i}.whl" for i in range(1000)]
    new = list(reversed(old))
    inos = array("Q", range(1000))
    assert diff(entries_of(_encoded(new), inos), _encoded(old), inos, limit=50) is None
    assert diff(entries_of(_encoded(old), inos), _encoded(old), inos, limit=0) is not None


@pytest.mark.parametrize("seed", range(6))
def test_a_mapped_snapshot_is_compared_and_split_a_stretch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The compare lets go of the pages of a mapped snapshot and a mapped listing behind
    it, and a snapshot's names are split into their places a stretch at a time (here a
    page): the answers are those over whole buffers."""
    monkeypatch.setattr(snapshot, "STRETCH", mmap.PAGESIZE)
    monkeypatch.setattr(listdiff, "HOLD", mmap.PAGESIZE)
    rng = random.Random(seed)
    old = [f"p{rng.randrange(10**9)}-{i}.whl" for i in range(rng.choice([1, 700, 5000]))]
    old_inos = array("Q", [rng.randrange(1, 2**63) for _ in old])
    new, new_inos = list(old), list(old_inos)
    for _ in range(rng.choice([0, 3, 30])):
        at = rng.randrange(len(new) + 1)
        if rng.random() < 0.5 or not new or at == len(new):
            new.insert(at, f"n{rng.randrange(10**9)}.whl")
            new_inos.insert(at, rng.randrange(1, 2**63))
        else:
            del new[at], new_inos[at]
    path, other = tmp_path / "names", tmp_path / "listing"
    path.write_bytes(_encoded(old))
    other.write_bytes(_encoded(new))
    listing = entries_of(_encoded(new), array("Q", new_inos))
    want = diff(listing, _encoded(old), old_inos, limit=100)
    with (
        open(path, "rb") as f,
        open(other, "rb") as g,
        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        mmap.mmap(g.fileno(), 0, access=mmap.ACCESS_READ) as new_mapped,
    ):
        assert diff(listing, mapped, old_inos, limit=100) == want
        both = entries_of(new_mapped, array("Q", new_inos))
        assert diff(both, mapped, old_inos, limit=100) == want
        del both
        split = entries_of(mapped, old_inos)
        assert [split.name(i).decode() for i in range(len(old))] == old
        assert split.starts[-1] == len(mapped)
        del split


def _rss_file() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile")) * 1024


def test_the_compare_holds_a_few_pages_of_a_big_snapshot(tmp_path: Path) -> None:
    """A run compares its listing with a mapped snapshot of 24 MiB of names (some 300,000
    wheels with their sidecars): the pages it has compared are let go of as it goes, so
    what it maps stays a few MiB, not the snapshot (a memory cost per wheel of every
    incremental run)."""
    names = [f"project-{i}-1.0-py3-none-any.whl".encode() for i in range(800_000)]
    blob = snapshot.encode_names(names)
    assert len(blob) > 24 << 20
    path = tmp_path / "names"
    path.write_bytes(blob)
    inos = array("Q", range(len(names)))
    listing = snapshot.Entries(bytearray(blob), None, inos)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        before = _rss_file()
        found = diff(listing, mapped, inos, limit=10)
        grown = _rss_file() - before
    assert found is not None and found.runs == [(0, 0, len(names))]
    assert grown < 4 << 20, f"{grown >> 20} MiB of the snapshot still mapped"


# -- runs ----------------------------------------------------------------------------------


def _wheels(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.endswith(".whl") and p.name[0] != "."}


def _published(out: Path) -> dict[str, Any]:
    """What a client sees of the target's index (pages, links, hashes, sidecars), checked."""
    slim = out / "slim"
    pages = check_tree(slim / "simple")
    listed = {f["filename"] for files in pages.values() for f in files}
    assert listed == {p.name for p in slim.iterdir() if p.is_file() and p.name in _wheels(slim)}
    return pages


def _as_a_full_run(out: Path, tmp: Path) -> dict[str, Any]:
    """The pages a full run over the same files writes, in a copy of the folder."""
    copy = tmp / "copy" / "slim"
    shutil.rmtree(copy.parent, ignore_errors=True)
    copy.mkdir(parents=True)
    for name in _wheels(out / "slim"):
        if (out / "slim" / name).is_file():
            os.link(out / "slim" / name, copy / name)
    ix.write_index(copy, [ix.Source(folder=copy)], full=True)
    return check_tree(copy / "simple")


def _change(rng: random.Random, slim: Path, round_: int) -> None:
    wheels = sorted(_wheels(slim))
    for _ in range(rng.choice([1, 1, 2, 4])):
        op = rng.choice(["add", "add", "new", "remove", "swap", "sidecar", "stray", "temp"])
        victim = slim / rng.choice(wheels) if wheels else None
        if op == "add":
            put(slim, f"proj{rng.randrange(6)}", f"{round_}.{rng.randrange(100)}")
        elif op == "new":
            put(slim, f"fresh{round_}x{rng.randrange(100)}", "1.0")
        elif op == "remove" and victim is not None and victim.is_file():
            victim.unlink()
            if rng.random() < 0.5:
                Path(f"{victim}.metadata").unlink(missing_ok=True)
        elif op == "swap" and victim is not None and victim.is_file():
            project, version = victim.name.split("-")[:2]
            swap(slim, project, version, requires=[f"dep{round_}"])
        elif op == "sidecar" and victim is not None:
            Path(f"{victim}.metadata").unlink(missing_ok=True)
        elif op == "stray":
            kind = rng.choice(["README.txt", ".hidden.whl", "adir.whl"])
            if kind == "adir.whl":
                (slim / kind).mkdir(exist_ok=True)
            else:
                (slim / kind).write_text(str(round_))
        elif op == "temp":  # a sidecar's temp file left by a run that died
            (slim / f".x-1.0-py3-none-any.whl.metadata.{2**22 + 7}.{round_}.tmp").write_text("x")


@pytest.mark.parametrize("seed", range(6))
def test_runs_over_random_changes_publish_what_a_full_run_does(
    out: Path, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    slim = out / "slim"
    for i in range(6):
        put(slim, f"proj{i}", "0.1")
    fast = fast_runs(monkeypatch)
    ix.index_target(slim)
    for round_ in range(12):
        _change(rng, slim, round_)
        ix.index_target(slim)
        assert _published(out) == _as_a_full_run(out, tmp_path)
        assert not [p for p in slim.iterdir() if p.name.endswith(".tmp")]
    assert fast.count(True) >= 10  # (the snapshot was there and was used)


def _state_log(slim: Path) -> str:
    return str(json.loads((slim / "simple" / STATE_NAME).read_bytes())["log"])


def test_a_snapshot_not_written_with_the_log_as_it_is_is_ignored(out: Path) -> None:
    """Lost, damaged, cut short, or from an earlier log: the run compares with the log."""
    slim = out / "slim"
    ix.index_target(slim)
    snap = slim / "simple" / SNAPSHOT_NAME
    old = snap.read_bytes()
    put(slim, "gamma", "1.0")
    ix.index_target(slim)  # (the log and the snapshot move on)
    (slim / "beta-1.0-py3-none-any.whl").unlink()
    snap.write_bytes(old)  # one from before: it still lists beta and not gamma
    assert ix.index_target(slim).pages_removed == 1
    _published(out)
    for damage in (
        lambda b: b[:-3],
        lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:],
        lambda b: b"",
    ):
        put(slim, "delta", str(len(damage(b"0123456789" * 20))))
        snap.write_bytes(damage(snap.read_bytes()))
        ix.index_target(slim)
        assert _published(out) == _as_a_full_run(out, out.parent)
    snap.unlink()
    put(slim, "epsilon", "1.0")
    ix.index_target(slim)
    assert _published(out)["epsilon"] and snap.is_file()


def test_a_run_stopped_after_its_snapshot_is_followed_by_a_right_one(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot is written once the log has the run's lines; a run stopped before its
    state (the log no longer the state's) is followed by one whose pages are right."""
    slim = out / "slim"
    ix.index_target(slim)
    put(slim, "gamma", "1.0")
    ix.index_target(slim)
    put(slim, "zeta", "1.0")
    (slim / "alpha-1.0-py3-none-any.whl").unlink()
    real = fileops.write_small

    def stop(path: Path, data: bytes, **kw: Any) -> None:
        if path.name == STATE_NAME:
            raise KeyboardInterrupt
        real(path, data, **kw)

    monkeypatch.setattr(ix, "write_small", stop)
    before = _state_log(slim)
    with pytest.raises(KeyboardInterrupt):
        ix.index_target(slim)
    monkeypatch.setattr(ix, "write_small", real)
    assert _state_log(slim) == before  # (the state is the one before the stopped run)
    ix.index_target(slim)
    pages = _published(out)
    assert "zeta" in pages and [f["filename"] for f in pages["alpha"]] == [
        "alpha-2.0-py3-none-any.whl"
    ]


@pytest.mark.parametrize("fault", ["io", "interrupt"])
def test_a_closing_listing_cut_short_leaves_no_snapshot_and_no_temp_file(
    out: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """A full run's closing listing goes to the snapshot's temp file as it is listed: an
    I/O error halfway (the folder gone, a failing disk) costs the next run its fast path
    and nothing else; Ctrl-C halfway ends the run; neither leaves a temp file or a
    snapshot, and the next run publishes what a full run would."""
    slim = out / "slim"
    simple = slim / "simple"
    real = relisting._Marking.mark
    seen: list[bytes] = []

    def mark(self: Any, name: bytes, ino: int) -> int:
        seen.append(name)
        if len(seen) == 3:
            raise OSError(5, "Input/output error") if fault == "io" else KeyboardInterrupt
        return real(self, name, ino)

    monkeypatch.setattr(relisting._Marking, "mark", mark)
    if fault == "io":
        ix.index_target(slim)
    else:
        with pytest.raises(KeyboardInterrupt):
            ix.index_target(slim)
    assert len(seen) == 3
    assert [p.name for p in simple.iterdir() if p.name.startswith(SNAPSHOT_NAME)] == []
    monkeypatch.setattr(relisting._Marking, "mark", real)
    fast = fast_runs(monkeypatch)
    put(slim, "gamma", "1.0")
    ix.index_target(slim)
    assert fast == []  # (no snapshot: compared with the log)
    assert (simple / SNAPSHOT_NAME).is_file()
    assert _published(out) == _as_a_full_run(out, out.parent)


@pytest.mark.parametrize("change", ["added", "removed", "replaced"])
def test_a_wheel_that_changes_as_a_full_run_ends_is_published_by_the_next_run(
    out: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A full run lists its folder again as it ends, for the snapshot: a wheel that came,
    went or was replaced in between is not the log's, and the next run, which compares
    with that snapshot, publishes it as it is."""
    slim = out / "slim"
    real = relisting.listing_of

    def meanwhile(simple: Path, folder: Path, found: Any, lines: int, token: str) -> Any:
        if change == "added":
            put(slim, "gamma", "1.0")
        elif change == "removed":
            (slim / "beta-1.0-py3-none-any.whl").unlink()
        else:
            swap(slim, "beta", "1.0", requires=["other"])
        return real(simple, folder, found, lines, token)

    monkeypatch.setattr(delta, "listing_of", meanwhile)
    ix.index_target(slim)
    monkeypatch.setattr(delta, "listing_of", real)
    fast = fast_runs(monkeypatch)
    (slim / "README.txt").write_text("a change to the folder: it is listed")
    ix.index_target(slim)
    assert fast == [True]
    pages = _published(out)
    if change == "added":
        assert "gamma" in pages
    elif change == "removed":
        assert "beta" not in pages
    else:
        meta = (slim / "beta-1.0-py3-none-any.whl.metadata").read_text()
        assert "Requires-Dist: other" in meta
    assert pages == _as_a_full_run(out, out.parent)


def test_sidecars_lost_by_the_hundred_are_written_again(out: Path) -> None:
    """Many differences are settled by name with one dict, not a search each."""
    slim = out / "slim"
    for i in range(150):
        put(slim, f"many{i % 7}", f"1.{i}")
    ix.index_target(slim)
    put(slim, "gamma", "1.0")
    ix.index_target(slim)  # (the snapshot is the incremental run's)
    for sidecar in list(slim.glob("many*.metadata"))[:120]:
        sidecar.unlink()
    with pytest.MonkeyPatch.context() as mp:
        fast = fast_runs(mp)
        ix.index_target(slim)
    assert fast == [True]
    assert len(list(slim.glob("*.metadata"))) == len(_wheels(slim)) == 155
    assert _published(out) == _as_a_full_run(out, out.parent)


def test_a_temp_file_of_a_live_run_is_removed_by_a_run_after_it_ended(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slim = out / "slim"
    ix.index_target(slim)
    put(slim, "gamma", "1.0")
    ix.index_target(slim)
    temp = slim / f".gamma-1.0-py3-none-any.whl.metadata.{os.getpid()}.1.tmp"
    temp.write_bytes(b"half")
    put(slim, "delta", "1.0")
    monkeypatch.setattr(delta, "stale_temp", lambda name: False)  # (its run is alive)
    ix.index_target(slim)
    assert temp.exists()
    monkeypatch.setattr(delta, "stale_temp", lambda name: True)  # (and now gone)
    put(slim, "epsilon", "1.0")  # (a change: the folder is listed, the temp file as it was)
    ix.index_target(slim)
    assert not temp.exists()
    _published(out)


# -- the snapshot, a new file each time ---------------------------------------------------


def test_each_snapshot_is_a_new_file_and_one_still_mapped_reads_as_it_was(out: Path) -> None:
    """A run keeps its listing as a new file renamed into place: a run that still maps the
    last snapshot (the combined index of a run holds its target's listing) reads it as
    it was, whatever a later run writes."""
    slim = out / "slim"
    for i in range(20):
        put(slim, f"many{i}", "1.0")
    ix.index_target(slim)
    simple = slim / "simple"
    snap = simple / SNAPSHOT_NAME
    inode = snap.stat().st_ino
    old = snapshot.read_snapshot(simple, upkeep.log_stamp(simple) or "")
    assert old is not None
    names = bytes(old.names)
    put(slim, "gamma", "1.0")
    for i in range(3):
        (slim / f"many{i}-1.0-py3-none-any.whl").unlink()
    ix.index_target(slim)
    assert snap.stat().st_ino != inode
    assert bytes(old.names) == names and b"many0-1.0" in names
    new = snapshot.read_snapshot(simple, upkeep.log_stamp(simple) or "")
    assert new is not None and b"gamma-1.0" in bytes(new.names)
    assert b"\0many0-1.0-py3-none-any.whl\0" not in bytes(new.names)
    assert [p.name for p in simple.iterdir() if p.name.startswith(SNAPSHOT_NAME + ".")] == []
    with pytest.MonkeyPatch.context() as mp:
        fast = fast_runs(mp)
        put(slim, "delta", "1.0")
        ix.index_target(slim)
    assert fast == [True]
    assert _published(out) == _as_a_full_run(out, out.parent)


def test_a_snapshot_with_another_link_is_not_written_through(out: Path, tmp_path: Path) -> None:
    """A hard-linked copy of the index (`cp -al`) keeps its own snapshot."""
    slim = out / "slim"
    ix.index_target(slim)
    snap = slim / "simple" / SNAPSHOT_NAME
    other = tmp_path / "linked-listing"
    os.link(snap, other)
    before = other.read_bytes()
    put(slim, "gamma", "1.0")
    ix.index_target(slim)
    assert other.read_bytes() == before
    assert snap.read_bytes() != before and snap.stat().st_nlink == 1


@pytest.mark.parametrize("fault", ["head", "part"])
def test_a_snapshot_write_cut_short_is_no_snapshot(
    out: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The parts are copied first and the head written last, into a temp file renamed
    once whole: a write that stops (a full disk) leaves no temp file and no snapshot of
    the new log; the next run takes the log's path and keeps a snapshot again."""
    slim = out / "slim"
    simple = slim / "simple"
    ix.index_target(slim)
    put(slim, "gamma", "1.0")
    ix.index_target(slim)
    real_pwrite, real_sendfile = os.pwrite, os.sendfile
    writes: list[int] = []

    def snapshot_temp(fd: int) -> bool:
        return f"/{SNAPSHOT_NAME}." in os.readlink(f"/proc/self/fd/{fd}")

    def pwrite(fd: int, data: Any, at: int) -> int:
        if snapshot_temp(fd):
            writes.append(at)
            if fault == "head" and at == 0:
                raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, at)

    def sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        if fault == "part" and snapshot_temp(out_fd):
            raise OSError(28, "No space left on device")
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "sendfile", sendfile)
    put(slim, "delta", "1.0")
    ix.index_target(slim)
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    monkeypatch.setattr(os, "sendfile", real_sendfile)
    if fault == "head":
        assert writes[-1] == 0  # (the head last)
    assert [p.name for p in simple.iterdir() if p.name.startswith(SNAPSHOT_NAME + ".")] == []
    fast = fast_runs(monkeypatch)
    put(slim, "epsilon", "1.0")
    ix.index_target(slim)
    assert fast == []  # (no snapshot of this log: the log's path)
    assert _published(out) == _as_a_full_run(out, out.parent)
    put(slim, "zeta", "1.0")
    ix.index_target(slim)
    assert fast == [True]  # (and the snapshot is back)


def test_a_run_after_one_that_added_hundreds_of_wheels_still_compares(out: Path) -> None:
    """An incremental run that adds 200 wheels writes as many sidecars after it listed the
    folder: the next run finds them by name in its listing (in place, 400 differences:
    past the compare's limit), compares with the snapshot still, and publishes what a full
    run would."""
    slim = out / "slim"
    ix.index_target(slim)
    put(slim, "gamma", "1.0")
    ix.index_target(slim)  # (a run against the log: it writes the first snapshot)
    for i in range(200):
        put(slim, f"many{i % 40}", f"1.{i}")
    with pytest.MonkeyPatch.context() as mp:
        fast = fast_runs(mp)
        ix.index_target(slim)
        (slim / "gamma-1.0-py3-none-any.whl").unlink()
        put(slim, "alpha", "9.0")
        ix.index_target(slim)
    assert fast == [True, True]
    pages = _published(out)
    assert "gamma" not in pages and len(pages["many0"]) == 5
    assert pages == _as_a_full_run(out, out.parent)


def test_new_projects_by_the_dozen_are_numbered_once_each(out: Path) -> None:
    """A project's number is searched for in the table for the first few new wheels, then
    found in a dict: either way each project has one number, its counts right."""
    slim = out / "slim"
    ix.index_target(slim)
    for i in range(40):
        put(slim, f"new{i % 25}", f"1.{i}")
        put(slim, "alpha", f"3.{i}")
    with pytest.MonkeyPatch.context() as mp:
        fast = fast_runs(mp)
        ix.index_target(slim)
        for i in range(3):
            (slim / f"new{i}-1.{i}-py3-none-any.whl").unlink()
        ix.index_target(slim)
    assert fast == [True, True]
    pages = _published(out)
    assert len(pages["alpha"]) == 42 and "new0" in pages and len(pages["new0"]) == 1
    assert pages == _as_a_full_run(out, out.parent)
