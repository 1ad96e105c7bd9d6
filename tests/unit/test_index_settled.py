"""A `wheelhouse index` run with nothing to do, after one that found nothing to do, stops at
once (settled.py): it reads the state and the marker, and neither the log, the snapshot nor
a listing. Anything that changes a source folder, `simple/`, the state or the yanks takes
the usual path, which publishes what a full run would."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse
from fixtures_simple import check_tree, put

from wheelhouse.index import settled, upkeep
from wheelhouse.index import writer as ix
from wheelhouse.index.settled import SETTLED_NAME
from wheelhouse.index.state import DIRTY_NAME, STATE_NAME

YANKS = ix.Yanks(files={"beta-1.0-py3-none-any.whl": "bad", "nothere-1.0-py3-none-any.whl": True})


@pytest.fixture(autouse=True)
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written before a run show an older ctime than its start (the kernel's clock
    lags, never leads): without the slack, a run right after another may write it down."""
    monkeypatch.setattr(upkeep, "SLACK", 0)


def both(out: Path, yanks: ix.Yanks = YANKS) -> list[ix.IndexReport]:
    """`out/slim`'s index, then the combined one, as one `wheelhouse index` run makes them."""
    listings: dict[Path, ix.Listing] = {}
    slim = ix.write_index(
        out / "slim", [ix.Source(folder=out / "slim")], yanks=yanks, name="slim", listings=listings
    )
    return [slim, ix.index_combined(out, [out / "slim"], yanks=yanks, listings=listings)]


def _settled(out: Path) -> list[ix.IndexReport]:
    """Runs until both indexes stop at once; the reports of the last run."""
    for _ in range(4):
        reports = both(out)
        if all(r.settled for r in reports):
            return reports
    raise AssertionError("no run stopped at once")


def _nothing_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on a run that lists a folder or reads the log or a snapshot fails."""

    def refused(*args: Any, **kw: Any) -> Any:
        raise AssertionError("read")

    monkeypatch.setattr(os, "scandir", refused)
    monkeypatch.setattr(os, "listdir", refused)
    monkeypatch.setattr(ix, "load_log", refused)
    monkeypatch.setattr(ix, "plan_target", refused)
    monkeypatch.setattr(ix, "list_whole", refused)


def test_a_run_after_one_with_nothing_to_do_stops_at_once(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first run publishes, the next records the folder's stamp (the first one wrote
    # sidecars there), the next finds nothing to do and writes that down
    runs = [both(out) for _ in range(3)]
    assert not any(r.settled for reports in runs for r in reports)
    with pytest.MonkeyPatch.context() as mp:
        _nothing_read(mp)
        last = both(out)
    assert all(r.settled for r in last)
    for before, after in zip(runs[-1], last, strict=True):
        assert (after.projects, after.files) == (before.projects, before.files) == (3, 4)
        assert (after.hashed, after.pages_written, after.pages_removed) == (0, 0, 0)
    unmatched = ("nothere-1.0-py3-none-any.whl",)
    assert last[1].unmatched_yanks == runs[-1][1].unmatched_yanks == unmatched
    pages = check_tree(out / "simple")
    assert [f["yanked"] for f in pages["beta"]] == ["bad"]


def _new_wheel(out: Path) -> str:
    put(out / "slim", "gamma", "1.0")
    return "gamma"


def _wheel_gone(out: Path) -> str:
    (out / "slim" / "beta-1.0-py3-none-any.whl").unlink()
    return "beta"


def _page_removed(out: Path) -> str:
    shutil.rmtree(out / "slim" / "simple" / "alpha")
    shutil.rmtree(out / "simple" / "alpha")
    return "alpha"


def _root_removed(out: Path) -> str:
    (out / "slim" / "simple" / "index.html").unlink()
    (out / "simple" / "index.html").unlink()
    return ""


def _marker_damaged(out: Path) -> str:
    for simple in (out / "slim" / "simple", out / "simple"):
        data = (simple / SETTLED_NAME).read_bytes()
        (simple / SETTLED_NAME).write_bytes(data[: len(data) // 2])  # (in place: same stamp)
    return ""


def _state_lost(out: Path) -> str:
    (out / "slim" / "simple" / STATE_NAME).unlink()
    (out / "simple" / STATE_NAME).unlink()
    return ""


def _interrupted(out: Path) -> str:
    (out / "slim" / "simple" / DIRTY_NAME).write_bytes(b"")
    (out / "simple" / DIRTY_NAME).write_bytes(b"")
    return ""


@pytest.mark.parametrize(
    "change",
    [
        _new_wheel,
        _wheel_gone,
        _page_removed,
        _root_removed,
        _marker_damaged,
        _state_lost,
        _interrupted,
    ],
)
def test_a_change_anywhere_takes_the_usual_path(
    out: Path, monkeypatch: pytest.MonkeyPatch, change: Any
) -> None:
    _settled(out)
    project = change(out)
    reports = both(out)
    assert not any(r.settled for r in reports)
    for simple in (out / "slim" / "simple", out / "simple"):
        pages = check_tree(simple)
        assert "index.html" in os.listdir(simple)
        if project == "gamma":
            assert [f["filename"] for f in pages["gamma"]] == ["gamma-1.0-py3-none-any.whl"]
        elif project == "beta":
            assert "beta" not in pages
        elif project:
            assert len(pages[project]) == 2
    assert _settled(out)[0].files == reports[0].files  # (and settles again)


def test_other_yanks_take_the_usual_path(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settled(out)
    reports = both(out, ix.Yanks(files={"alpha-1.0-py3-none-any.whl": "old"}))
    assert not any(r.settled for r in reports)
    pages = check_tree(out / "simple")
    assert [f.get("yanked", False) for f in pages["beta"]] == [False]
    assert [f.get("yanked", False) for f in pages["alpha"]] == ["old", False]


def test_a_build_folder_is_always_listed(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build's folder (`only`) may hold wheels the build removes next: never settled."""
    _settled(out)
    only = frozenset(p.name for p in (out / "slim").glob("*.whl"))
    for _ in range(2):
        report = ix.write_index(
            out / "slim", [ix.Source(folder=out / "slim", only=only)], yanks=YANKS
        )
        assert not report.settled


def test_a_run_too_soon_after_a_change_writes_nothing_down(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`simple/` changed within a clock tick of the run's start (here: an hour of slack): a
    change after the run might not move its stamp, so nothing is written down."""
    monkeypatch.setattr(upkeep, "SLACK", 3600 * 10**9)
    for _ in range(4):
        assert not any(r.settled for r in both(out))
    assert (out / "simple" / SETTLED_NAME).read_bytes() == b""


def test_a_read_only_marker_costs_only_the_usual_path(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marker cannot be opened (a read-only file system, a folder in its place): every
    run takes the usual path, and none fails."""
    both(out)
    for simple in (out / "slim" / "simple", out / "simple"):
        (simple / SETTLED_NAME).unlink()
        (simple / SETTLED_NAME).mkdir()
    for _ in range(4):
        reports = both(out)
        assert not any(r.settled for r in reports)
        assert reports[0].files == 4
    assert settled.read_settled(out / "simple", [], None, "", None) is None


def test_the_index_command_says_when_nothing_changed(wh: Wheelhouse) -> None:
    """`wheelhouse index`, real processes (the kernel's clock, its slack): once a run found
    nothing to do, the next says so for both indexes, with the counts of the last."""
    (wh.project / "wheelhouse.toml").write_text('[targets.slim]\nextends = "slim"\n')
    slim = wh.project / "wheelhouse" / "slim"
    put(slim, "alpha", "1.0")
    put(slim, "beta", "1.0")
    runs = [wh("index").stdout for _ in range(4)]
    assert "nothing changed" not in "".join(runs[:3])
    for name in ("slim", "combined"):
        assert f"index {name}: " in runs[3]
    assert runs[3].count("2 projects, 2 files [nothing changed; ") == 2, runs[3]
    put(slim, "gamma", "1.0")
    after = wh("index").stdout
    assert "nothing changed" not in after and "3 projects, 3 files" in after
    assert "gamma" in check_tree(wh.project / "wheelhouse" / "simple")


def test_a_full_disk_as_the_marker_is_written_costs_only_the_usual_path(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the marker's write (the run had nothing else to write): the run reports
    as usual, its pages stand, and the next run takes the usual path."""
    for _ in range(2):
        both(out)
    real = os.fdopen

    class Full:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def read(self, n: int) -> bytes:
            return b""

        def seek(self, at: int) -> int:
            return at

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def truncate(self, size: int) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
        reports = both(out)
    assert [r.files for r in reports] == [4, 4] and not any(r.settled for r in reports)
    assert not any(r.settled for r in both(out))  # (nothing was written down)
    check_tree(out / "simple")
