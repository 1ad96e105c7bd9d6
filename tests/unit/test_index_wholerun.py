"""A full index run, project by project (`wholerun`): no object, stamp or record per wheel
outlives its chunk; the pages are staged and published once every wheel is checked, so a
refused wheel, a dead worker or a SIGKILL at any rename leaves every reader a consistent
index and the next run finishes the job."""

from __future__ import annotations

import errno
import gc
import mmap
import os
import shutil
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from fixtures_simple import check_tree, every_link_resolves, put

from wheelhouse.errors import PublishError
from wheelhouse.index import fanout, grouped, reading, scan, snapshot, wholerun
from wheelhouse.index import writer as ix
from wheelhouse.index.fileops import FileWriter, Staging
from wheelhouse.index.grouped import list_grouped

LEFTOVERS = (".new-", ".staged.")


def leftovers(simple: Path) -> list[str]:
    return [p.name for p in simple.iterdir() if p.name.startswith(LEFTOVERS)]


def alive_found() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, scan.Found))


def published(simple: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in simple.rglob("*") if p.is_file()}


def indexed(slim: Path, projects: int = 12) -> dict[Path, bytes]:
    """An index of `projects` projects (one wheel each): its published bytes."""
    for i in range(projects):
        put(slim, f"proj{i}", "1.0")
    ix.index_target(slim)
    return published(slim / "simple")


@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_run_holds_no_object_per_wheel_when_it_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """When the staged pages are published, no wheel has an object left (in-process: each
    chunk's went with it; with workers, none was made here), in the target's index and in
    the combined one (which reads the records from the target's pages, hashing nothing);
    chunks are bounded in-process too."""
    out = tmp_path
    slim = out / "slim"
    for i in range(40):
        for v in ("1.0", "2.0", "3.0"):
            put(slim, f"proj{i}", v)
    monkeypatch.setattr(fanout, "FORCE", workers)
    monkeypatch.setattr(wholerun, "CHUNK_COST", 60)  # (in-process: several chunks)
    chunks: list[int] = []
    real_chunk = wholerun._Reader.chunk

    def chunk(self: Any, projects: Any) -> Any:
        chunks.append(len(projects))
        return real_chunk(self, projects)

    monkeypatch.setattr(wholerun._Reader, "chunk", chunk)
    alive: list[int] = []
    real_commit = Staging.commit

    def commit(self: Staging) -> None:
        alive.append(alive_found())
        real_commit(self)

    monkeypatch.setattr(Staging, "commit", commit)
    listings: dict[Path, ix.Listing] = {}
    target = ix.write_index(slim, [ix.Source(folder=slim)], listings=listings)
    combined = ix.index_combined(out, [slim], listings=listings)
    assert alive == [0, 0]
    assert (target.hashed, target.files, target.pages_written) == (120, 120, 41)
    assert (combined.hashed, combined.files, combined.pages_written) == (0, 120, 41)
    if not workers:
        assert len(chunks) >= 2 * 4 and max(chunks) < 40
    for simple in (slim / "simple", out / "simple"):
        assert len(check_tree(simple)) == 40
        assert leftovers(simple) == []


def test_a_refused_wheel_in_a_full_run_publishes_nothing_and_stages_nothing(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--full over an index: pages of existing projects and of new ones are staged; a
    refused wheel (in the last chunk) discards them all, names every refused wheel, and
    leaves every published byte as it was."""
    slim = out / "slim"
    before = indexed(slim)
    simple = slim / "simple"
    put(slim, "proj3", "2.0")
    put(slim, "newproj", "1.0")
    (slim / "zzz-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 not a zip")
    (slim / "aaa-1.0-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setattr(wholerun, "CHUNK_COST", 30)
    with pytest.raises(PublishError) as err:
        ix.write_index(slim, [ix.Source(folder=slim)], full=True)
    assert "2 wheels refused" in err.value.message
    assert "aaa-1.0" in err.value.message and "zzz-1.0" in err.value.message
    assert "nothing was published" in str(err.value.hint)
    assert published(simple) == before
    assert leftovers(simple) == []


def test_a_full_run_keeps_the_sidecars_of_its_wheels_and_removes_the_others(
    tmp_path: Path,
) -> None:
    """After a restart or with --full every sidecar is there already: each wheel's is
    checked (one cut short is written again), the sidecar of a wheel that is gone is
    removed."""
    slim = tmp_path / "slim"
    indexed(slim, 6)
    (slim / "proj2-1.0-py3-none-any.whl").unlink()
    short = slim / "proj3-1.0-py3-none-any.whl.metadata"
    whole = short.read_bytes()
    short.write_bytes(whole[:10])
    report = ix.write_index(slim, [ix.Source(folder=slim)], full=True)
    assert (report.files, report.hashed, report.pages_removed) == (5, 0, 1)
    assert not (slim / "proj2-1.0-py3-none-any.whl.metadata").exists()
    assert short.read_bytes() == whole
    assert sorted(p.name for p in slim.glob("*.metadata")) == sorted(
        p.name + ".metadata" for p in slim.glob("*.whl")
    )
    check_tree(slim / "simple")


@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_disk_while_pages_are_staged_names_the_page_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """The disk fills up after some chunks' pages were staged (sidecars written): the
    error names the page being written (the CLI makes it exit 20), what was staged is
    removed, nothing is published, and the next run finishes the job."""
    slim = tmp_path / "slim"
    for i in range(30):
        put(slim, f"proj{i:02}", "1.0")
    monkeypatch.setattr(fanout, "FORCE", workers)
    monkeypatch.setattr(wholerun, "CHUNK_COST", 40)
    real = FileWriter.create

    def create(self: FileWriter, dest: str, data: bytes, *, track: bool = True) -> bool:
        if "/.new-proj2" in dest:  # (after proj0*, proj1*: staged in earlier chunks)
            raise OSError(errno.ENOSPC, "No space left on device", dest)
        return real(self, dest, data, track=track)

    monkeypatch.setattr(FileWriter, "create", create)
    with pytest.raises(OSError) as err:
        ix.index_target(slim)
    assert err.value.errno == errno.ENOSPC and "/.new-proj2" in str(err.value.filename)
    simple = slim / "simple"
    assert leftovers(simple) == [] and not (simple / "index.html").exists()
    assert [p.name for p in simple.iterdir() if not p.name.startswith(".")] == []
    monkeypatch.undo()
    assert len(check_tree(ix.index_target(slim).path)) == 30


def test_ctrl_c_in_a_full_run_discards_what_it_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM, which the CLI turns into the same) in the middle of a full run:
    the pages staged so far are removed on the way out, the published ones untouched."""
    slim = tmp_path / "slim"
    before = indexed(slim)
    simple = slim / "simple"
    for i in range(12):
        put(slim, f"proj{i}", "2.0")
    monkeypatch.setattr(fanout, "FORCE", 0)
    monkeypatch.setattr(wholerun, "CHUNK_COST", 30)  # (a chunk or two staged before)
    staged: list[int] = []
    real_read = reading.read_wheel  # (the one wholerun calls)

    def read(found: scan.Found) -> Path | None:
        if found.filename.startswith("proj9-2.0"):
            staged.append(len(leftovers(simple)))
            raise KeyboardInterrupt
        return real_read(found)

    monkeypatch.setattr(wholerun, "read_wheel", read)
    with pytest.raises(KeyboardInterrupt):
        ix.write_index(slim, [ix.Source(folder=slim)], full=True)
    assert staged and staged[0] > 0  # (pages were staged when it came)
    assert leftovers(simple) == []
    assert published(simple) == before


_KILLED_RUN = """
import sys
from pathlib import Path
from wheelhouse.index import writer as ix
folder = Path(sys.argv[1])
ix.write_index(folder, [ix.Source(folder=folder)], full=True)
"""


def test_a_full_run_killed_at_any_rename_leaves_a_consistent_index(tmp_path: Path) -> None:
    """SIGKILL at each write step of a full run over an index with new wheels (a new
    version, a new project: pages of existing and of new projects published from the
    staging): every reader's view holds after each kill, and the next run completes it
    with nothing left behind."""
    pristine = tmp_path / "pristine"
    for i in range(6):
        put(pristine, f"proj{i}", "1.0")
    ix.index_target(pristine)
    put(pristine, "proj1", "2.0")
    put(pristine, "newproj", "1.0")
    projects = ["newproj", "proj0", "proj1", "proj2", "proj3", "proj4", "proj5"]
    for n in range(1, 60):
        work = tmp_path / f"run{n}"
        shutil.copytree(pristine, work, copy_function=shutil.copy2)
        before = check_tree(work / "simple")
        proc = subprocess.run(
            [sys.executable, "-c", _KILLED_RUN, str(work)],
            env={**os.environ, "WHEELHOUSE_TEST_KILL_AT": str(n)},
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
        # each page on its own: a kill between a project's HTML and its JSON leaves the
        # two saying different things, both true
        every_link_resolves(work / "simple")
        assert set(before) <= {p.name for p in (work / "simple").iterdir() if p.is_dir()}
        if proc.returncode == 0:
            files = check_tree(work / "simple")
            break
        ix.index_target(work)
        files = check_tree(work / "simple")
        assert sorted(files) == projects and len(files["proj1"]) == 2
        assert leftovers(work / "simple") == []
        assert ix.index_target(work).pages_written == 0
        shutil.rmtree(work)
    else:
        raise AssertionError("no run got to its end")
    assert n > 2 * 6 + 1  # (it was killed at each of the renames that publish a page)
    assert sorted(files) == projects and leftovers(work / "simple") == []


@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_run_tells_lost_and_stale_sidecars_apart_project_by_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """A full run knows a project's sidecars only (no set of them all): a sidecar lost or
    cut short beside wheels that keep theirs is written again, the sidecar of a gone
    wheel in a project that still has wheels, of a project with none left and of no
    wheel name at all is removed, with forked workers as in-process."""
    monkeypatch.setattr(fanout, "FORCE", workers)
    slim = tmp_path / "slim"
    for i in range(6):
        put(slim, f"proj{i}", "1.0")
    for v in ("2.0", "3.0"):
        put(slim, "proj1", v)
    ix.index_target(slim)
    kept = {p.name: p.read_bytes() for p in slim.glob("*.metadata")}
    (slim / "proj1-2.0-py3-none-any.whl").unlink()  # its sidecar is stale, proj1 stays
    (slim / "proj1-3.0-py3-none-any.whl.metadata").unlink()  # lost
    (slim / "proj4-1.0-py3-none-any.whl.metadata").write_bytes(b"Metadata-Version")  # short
    (slim / "proj2-1.0-py3-none-any.whl").unlink()  # a project with no wheel left
    (slim / "stray.whl.metadata").write_bytes(b"no wheel of that name")
    report = ix.write_index(slim, [ix.Source(folder=slim)], full=True)
    assert (report.files, report.projects, report.hashed) == (6, 5, 0)
    sidecars = {p.name: p.read_bytes() for p in slim.glob("*.metadata")}
    assert sorted(sidecars) == sorted(p.name + ".metadata" for p in slim.glob("*.whl"))
    assert all(sidecars[name] == kept[name] for name in sidecars)  # (rewritten whole)
    check_tree(slim / "simple")
    every_link_resolves(slim / "simple")


@pytest.mark.parametrize("handed", ["snapshot", "log"])
def test_a_full_combined_index_takes_over_a_target_incremental_listing(
    tmp_path: Path, handed: str
) -> None:
    """The combined index's full run (its state lost) after the target's incremental run:
    it takes the target's listing over, whatever its kind (a snapshot's `Listed`, or the
    log's `Catalog` where the snapshot is lost), reads every record from the target's
    pages, and publishes every wheel once."""
    out = tmp_path
    slim = out / "slim"
    for i in range(8):
        put(slim, f"proj{i}", "1.0")
    ix.index_target(slim)
    ix.index_combined(out, [slim])
    put(slim, "proj3", "2.0")
    if handed == "log":
        (slim / "simple" / ".index-listing").unlink()
    (out / "simple" / ix.STATE_NAME).unlink()
    listings: dict[Path, ix.Listing] = {}
    target = ix.write_index(slim, [ix.Source(folder=slim)], listings=listings)
    assert (target.files, target.hashed, target.pages_written) == (9, 1, 1)
    combined = ix.index_combined(out, [slim], listings=listings)
    assert (combined.files, combined.projects, combined.hashed) == (9, 8, 0)
    assert combined.pages_written == 9  # (every page: a full run)
    pages = check_tree(out / "simple")
    assert sorted(f["filename"] for f in pages["proj3"]) == [
        "proj3-1.0-py3-none-any.whl",
        "proj3-2.0-py3-none-any.whl",
    ]
    every_link_resolves(out / "simple")


def _listed_folder(folder: Path, wheels: int, projects: int) -> None:
    folder.mkdir()
    for i in range(wheels):  # (the listing reads no file: empty ones will do)
        name = f"proj{i % projects}-1.{i}-py3-none-any.whl"
        (folder / name).touch()
        (folder / f"{name}.metadata").touch()


def _held(folder: Path, where: Path | None) -> tuple[int, grouped.Grouped]:
    tracemalloc.start()
    try:
        part = list_grouped(ix.Source(folder=folder), where)
        return tracemalloc.get_traced_memory()[0], part
    finally:
        tracemalloc.stop()


def test_a_full_runs_listing_is_held_only_where_it_is_small(tmp_path: Path) -> None:
    """What a full run holds besides one chunk is each folder's listing. Held (a small
    folder, or no place for files): the names in buffers, inodes and projects in arrays,
    ~195 bytes a wheel with its sidecar here (a project per 5 wheels), where a dict of the
    names, their inodes and projects, and a set of the sidecars held ~430. Where it is big,
    it goes to unnamed files as it comes and is mapped (grouped.Names): three times the
    wheels in the same projects hold no more; and each project's wheels and sidecars are
    told apart the same."""
    small, big = tmp_path / "small", tmp_path / "big"
    _listed_folder(small, 6000, 1200)
    _listed_folder(big, 18000, 1200)
    held, part = _held(small, None)
    assert len(part) == 6000 and len(part.projects()) == 1200
    assert held / 6000 < 250, f"{held / 6000:.0f} bytes a wheel"
    spooled, _ = _held(small, tmp_path)
    more, part = _held(big, tmp_path)
    assert isinstance(part.names.blob, mmap.mmap)
    assert len(part) == 18000 and len(part.projects()) == 1200
    assert (more - spooled) / 12000 < 8, f"{(more - spooled) / 12000:.0f} bytes a wheel more"
    wheels = 18000
    names = sorted(f.filename for f in part.project_wheels("proj7"))
    assert names == sorted(f"proj7-1.{i}-py3-none-any.whl" for i in range(7, wheels, 1200))
    assert part.project_sidecars("proj7") == set(names)
    assert [part.wheel_name("proj7", j) for j in range(15)] == [
        f.filename for f in part.project_wheels("proj7")
    ]


@pytest.mark.parametrize("fault", [None, "full disk", "no map"])
def test_a_listing_in_files_publishes_what_a_held_one_does(
    out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str | None
) -> None:
    """A listing of more than a batch (here 4 names) goes to unnamed files; a disk that
    fills up as they are written, or no descriptor left to map them, has the run hold its
    listing instead (what was written read back): either way the full run publishes what
    a held listing does."""
    slim = out / "slim"
    for i in range(30):
        put(slim, f"proj{i % 7}", f"1.{i}")
    ix.write_index(slim, [ix.Source(folder=slim)])  # (the sidecars)
    copy = tmp_path / "copy"
    shutil.copytree(slim, copy)
    ix.write_index(copy, [ix.Source(folder=copy)], full=True)
    monkeypatch.setattr(grouped, "_BATCH", 4)
    if fault == "no map":

        def no_map(*args: Any, **kw: Any) -> Any:
            raise OSError(errno.EMFILE, "Too many open files")

        monkeypatch.setattr(grouped, "map_file", no_map)
    elif fault:
        real, calls = snapshot.put, []

        def filling(fd: int, data: Any, at: int) -> int:
            calls.append(at)
            if len(calls) > 9:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, data, at)

        monkeypatch.setattr(grouped, "put", filling)
    part = list_grouped(ix.Source(folder=slim), tmp_path)
    assert isinstance(part.names.blob, mmap.mmap) == (fault is None)
    assert sorted(part.project_sidecars("proj3")) == sorted(
        f.filename for f in part.project_wheels("proj3")
    )
    ix.write_index(slim, [ix.Source(folder=slim)], full=True)
    assert check_tree(slim / "simple") == check_tree(copy / "simple")
