"""A target's folder listed ahead by a forked child (`ahead`): its listing is the run's only
where the folder kept the stamp taken before the child listed it; a child that fails, hangs
or is left running never costs the run its pages, and is always reaped; no child where it
would not pay or is not safe; `wheelhouse -v index` says whether it was used."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse
from fixtures_simple import check_tree, put

from wheelhouse.index import ahead as ahead_mod
from wheelhouse.index import delta, spool, upkeep
from wheelhouse.index import writer as ix
from wheelhouse.index.ahead import ListedAhead, list_ahead

CPUS = len(os.sched_getaffinity(0))  # (this machine's, before any test changes it)


@pytest.fixture(autouse=True)
def forkable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two CPUs and no other thread, whatever the machine and the test process have."""
    monkeypatch.setattr(ahead_mod, "single_threaded", lambda: True)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})


def _indexed(out: Path) -> Path:
    slim = out / "slim"
    ix.index_target(slim)  # (a full run: the snapshot an incremental run compares with)
    put(slim, "gamma", "1.0")
    return slim


def _own_listings(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders the run lists itself from now on."""
    listed: list[Path] = []
    real = spool.list_into

    def counting(into: spool.Spool, folder: Path, mark: Any = None) -> None:
        if mark is None:  # (a full run's closing listing is marked)
            listed.append(folder)
        real(into, folder, mark)

    monkeypatch.setattr(delta, "list_into", counting)
    return listed


def _run(slim: Path, ahead: ListedAhead | None) -> ix.IndexReport:
    return ix.write_index(slim, [ix.Source(folder=slim, ahead=ahead)])


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # (reaped)
    return False


def test_a_folder_listed_ahead_is_the_runs_listing(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slim = _indexed(out)
    listed = _own_listings(monkeypatch)
    ahead = list_ahead(slim)
    assert ahead is not None
    with ahead:
        pid = ahead.child
        report = _run(slim, ahead)
    assert ahead.used and listed == [] and _gone(pid)
    assert report.hashed == 1 and report.pages_written == 2  # (gamma's page and the root)
    assert "gamma" in check_tree(slim / "simple")


def test_a_folder_changed_after_it_was_listed_ahead_is_listed_again(
    out: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The stamp taken before the child listed is compared: a wheel added after the child's
    listing means the run lists the folder itself."""
    slim = _indexed(out)
    done = tmp_path / "listed"
    real = spool.list_into

    def listing(into: spool.Spool, folder: Path) -> None:  # (what the forked child runs)
        real(into, folder)
        done.touch()

    monkeypatch.setattr(ahead_mod, "list_into", listing)
    listed = _own_listings(monkeypatch)
    ahead = list_ahead(slim)
    assert ahead is not None
    with ahead:
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        put(slim, "delta", "1.0")
        st = slim.stat()
        os.utime(slim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # (any clock's tick)
        _run(slim, ahead)
    assert not ahead.used and listed == [slim]
    assert {"gamma", "delta"} <= check_tree(slim / "simple").keys()


def test_a_listing_whose_files_are_cut_short_is_not_taken(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures the child sends are checked against its files (a map past a file's end
    would kill the run with SIGBUS): one cut short leaves the listing to the run."""
    slim = _indexed(out)
    real = spool.list_into

    def short(into: spool.Spool, folder: Path) -> None:  # (what the forked child runs)
        real(into, folder)
        os.ftruncate(into.inos, 8)

    monkeypatch.setattr(ahead_mod, "list_into", short)
    listed = _own_listings(monkeypatch)
    ahead = list_ahead(slim)
    assert ahead is not None
    with ahead:
        _run(slim, ahead)
    assert not ahead.used and listed == [slim]
    assert "gamma" in check_tree(slim / "simple")


@pytest.mark.parametrize("fault", ["fails", "hangs"])
def test_a_child_that_fails_or_hangs_leaves_the_listing_to_the_run(
    out: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    slim = _indexed(out)

    def broken(into: spool.Spool, folder: Path) -> Any:  # (what the forked child runs)
        if fault == "hangs":
            time.sleep(60)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ahead_mod, "list_into", broken)
    monkeypatch.setattr(ahead_mod, "WAIT_S", 0.5)
    listed = _own_listings(monkeypatch)
    started = time.monotonic()
    ahead = list_ahead(slim)
    assert ahead is not None
    with ahead:
        pid = ahead.child
        _run(slim, ahead)
    assert time.monotonic() - started < 30  # (the hung child was not waited for)
    assert not ahead.used and listed == [slim] and _gone(pid)
    assert "gamma" in check_tree(slim / "simple")


def test_a_child_left_running_is_killed_and_reaped(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that never comes to the listing (its folder unchanged, an error before it)."""
    slim = _indexed(out)
    monkeypatch.setattr(ahead_mod, "list_into", lambda into, folder: time.sleep(60))
    ahead = list_ahead(slim)
    assert ahead is not None
    with ahead:
        pid = ahead.child
    assert _gone(pid)


def test_no_child_for_a_folder_the_run_will_not_list(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that still has the stamp the state records is not listed by the run (the
    snapshot stands for it): no child lists it either, until it changes."""
    monkeypatch.setattr(upkeep, "SLACK", 0)
    slim = _indexed(out)
    ix.index_target(slim)  # (it wrote gamma's sidecar: the folder's stamp moved)
    ix.index_target(slim)  # (listed again: the stamp is recorded)
    assert ahead_mod._recorded(slim) == ahead_mod._stamp(slim)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(ahead_mod, "single_threaded", lambda: True)
    assert list_ahead(slim) is None
    put(slim, "delta", "1.0")
    ahead = list_ahead(slim)
    assert ahead is not None
    with ahead:
        _run(slim, ahead)
    assert ahead.used and "delta" in check_tree(slim / "simple")


def test_no_child_where_it_would_not_pay_or_is_not_safe(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slim = out / "slim"
    assert list_ahead(slim) is None  # no snapshot yet: the run would not list it this way
    ix.index_target(slim)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert list_ahead(slim) is None  # one CPU: nothing to overlap
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(ahead_mod, "single_threaded", lambda: False)
    assert list_ahead(slim) is None  # another thread: a fork copies one thread only
    monkeypatch.setattr(ahead_mod, "single_threaded", lambda: True)
    ahead = list_ahead(slim)
    assert ahead is not None
    ahead.close()
    assert _gone(ahead.child)


def test_the_index_command_lists_the_first_target_ahead(wh: Wheelhouse) -> None:
    """`wheelhouse -v index`, a real process: the second run's listing was the child's."""
    (wh.project / "wheelhouse.toml").write_text('[targets.slim]\nextends = "slim"\n')
    slim = wh.project / "wheelhouse" / "slim"
    put(slim, "alpha", "1.0")
    first = wh("-v", "index")
    assert "ahead" not in first.stderr  # (no snapshot yet)
    put(slim, "beta", "1.0")
    second = wh("-v", "index")
    # (a machine with one CPU, or a process with another thread, starts no child)
    if CPUS > 1:
        assert "wheelhouse/slim/ listed by a child (used)" in second.stderr, second.stderr
    assert {"alpha", "beta"} <= check_tree(slim / "simple").keys()


def test_the_names_in_another_folder_are_listed_after_the_target(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The combined index's simple/: its names, where it did not change since its stamp
    (nor for a clock tick before); else the run lists it."""
    slim = _indexed(out)
    ix.index_combined(out, [slim])
    simple, other = out / "simple", out / "other"
    other.mkdir()
    monkeypatch.setattr(ahead_mod, "_SLACK", 0)
    ahead = list_ahead(slim, [simple, other, out / "missing"])
    assert ahead is not None
    with ahead:
        (other / "new").mkdir()  # (changed after the stamp)
        assert ahead.names(other) is None
        assert ahead.names(out / "missing") is None  # (not asked for: it is not there)
        names = ahead.names(simple)
        assert names is not None and set(names) == set(os.listdir(simple))
        assert ahead.names(simple) is None  # (once)
    monkeypatch.setattr(ahead_mod, "_SLACK", 10**12)  # (as if it changed just before)
    ahead = list_ahead(slim, [simple])
    assert ahead is not None
    with ahead:
        assert ahead.names(simple) is None


def test_the_combined_index_takes_its_names_from_the_child(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slim = _indexed(out)
    ix.index_combined(out, [slim])
    put(slim, "delta", "1.0")
    monkeypatch.setattr(ahead_mod, "_SLACK", 0)
    ahead = list_ahead(slim, [out / "simple"])
    assert ahead is not None
    listed: list[str] = []
    real = os.listdir

    def listing(path: Any) -> Any:  # (this process's, from now on: the child is forked)
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listing)
    with ahead:
        listings: dict[Path, Any] = {}
        ix.write_index(slim, [ix.Source(folder=slim, ahead=ahead)], listings=listings)
        ix.index_combined(out, [slim], listings=listings, ahead=ahead)
    assert str(out / "simple") not in listed
    assert {"gamma", "delta"} <= check_tree(out / "simple").keys()


def test_what_ahead_spells_itself_is_what_the_index_modules_say(tmp_path: Path) -> None:
    """ahead.py loads before the modules that hold these (state, scan, upkeep: their
    imports are what it overlaps), so it spells them itself: the same ones."""
    from wheelhouse.index import scan, state, upkeep

    assert (ahead_mod.SIMPLE, ahead_mod.STATE) == (state.SIMPLE, state.STATE_NAME)
    assert (ahead_mod._SLACK, ahead_mod._COARSE_SLACK) == (upkeep.SLACK, upkeep.COARSE_SLACK)
    assert ahead_mod._stamp(tmp_path) == scan.folder_stamp(tmp_path)


def test_closing_reaps_its_child_only(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that failed is reaped once: no wait for "any child" after it, which would
    take another child of this process from whoever waits for it."""
    slim = _indexed(out)
    monkeypatch.setattr(ahead_mod, "list_into", lambda into, folder: 1 / 0)
    other = os.fork()
    if other == 0:
        time.sleep(0.3)
        os._exit(7)
    ahead = list_ahead(slim)
    assert ahead is not None
    with ahead:
        assert ahead.take(ahead.stamp) is None  # (it failed)
    assert os.waitstatus_to_exitcode(os.waitpid(other, 0)[1]) == 7
