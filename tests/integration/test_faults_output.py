"""Faults in the output folders: SIGKILL at every write step of a build, two runs of one
folder at once, the leftovers of killed runs, and a store file rotten under its stamp.

What must hold at every instant, whatever stopped the run (`_consistent`): lock.txt and
manifest.json name only files that are there with those bytes; both indexes (the target's
and the combined one) link only files that are there with the advertised hashes (and
sidecars with the advertised METADATA); pip installs every listed project through each
index, and the lock through the folder. The builds here use pure-Python wheels from a
loopback index: no engine (the engine key points nowhere), so every run takes a second.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NoReturn

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex, wheel_filename
from fixtures_simple import check_tree, every_link_resolves, sha256
from packaging.utils import canonicalize_name

from wheelhouse.fsutil import Wait
from wheelhouse.index import index_lock
from wheelhouse.lock import lockfile
from wheelhouse.store import Store

BUSY = 17  # OutputBusyError's exit code
KILLED = -9
NO_IMAGE = "wheelhouse-test/none:absent"  # what subprocess reports for a process SIGKILL ended

# two locks for one target: alpha upgraded, beta kept, gamma replaced by delta
LOCK_A = {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
LOCK_B = {"alpha": "1.1", "beta": "1.0", "delta": "1.0"}


@pytest.fixture
def index(make_index: object) -> LocalIndex:
    idx: LocalIndex = make_index(default=False)  # type: ignore[operator]
    for name, version in {**LOCK_A, **LOCK_B}.items():
        idx.add_wheel(name, version)
    idx.add_wheel("alpha", "1.0")
    return idx


def _config(
    project: Path,
    index: LocalIndex,
    *,
    targets: Sequence[str] = ("slim",),
    output: str = "wheelhouse",
) -> None:
    tables = "".join(
        f'\n[targets.{t}]\npython-version = "3.11"\nlibc-version = "2.36"\n'
        f'builder-image = "{NO_IMAGE}"\nfinal-image = "{NO_IMAGE}"\n'
        for t in targets
    )
    write(
        project / "wheelhouse.toml",
        f'engine = "/nonexistent/docker"   # nothing here may need a container\n'
        f'output = "{output}"\ndefault-targets = {json.dumps(list(targets))}\n'
        f'[index]\nindex-url = "{index.url}"\n{tables}',
    )


def _lock(project: Path, index: LocalIndex, pins: dict[str, str], target: str = "slim") -> None:
    """locks/<target>.txt pinning `pins` by the index's hashes (what `wheelhouse lock`
    would write, without running a resolver: a second saved per test)."""
    lock = lockfile.LockFile(
        target=target,
        target_description="test",
        inputs_digest="test",
        pins=tuple(
            lockfile.Pin(
                name=canonicalize_name(n),
                version=v,
                hashes=tuple(sorted(index.hashes(wheel_filename(n, v)))),
            )
            for n, v in sorted(pins.items())
        ),
    )
    write(project / "locks" / f"{target}.txt", lock.render())


def _wheels(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p.read_bytes()) for p in folder.glob("*.whl")}


def _consistent(output: Path, target: str = "slim", *, complete: bool = True) -> dict[str, str]:
    """What a reader may rely on at any instant (see the module doc); returns the folder's
    wheels. `complete`: the run finished, so lock.txt, the manifest, the pages and the
    folder all name exactly the same files, and no temp file is left anywhere."""
    folder = output / target
    files = _wheels(folder)
    lock = lockfile.read(folder / "lock.txt")
    assert lock is not None
    locked = {h.removeprefix("sha256:") for p in lock.pins for h in p.hashes}
    assert locked <= set(files.values()), "lock.txt names a wheel that is not there"
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = {w["filename"]: w["sha256"] for w in manifest["wheels"]}
    assert listed.items() <= files.items(), "manifest.json names a wheel that is not there"
    for simple in (folder / "simple", output / "simple"):
        every_link_resolves(simple)
    if complete:  # and then the pages agree with each other, too
        pages = check_tree(folder / "simple")
        combined = check_tree(output / "simple")
        assert set(listed) == set(files) and locked == set(files.values())
        linked = {f["filename"] for fs in pages.values() for f in fs}
        assert linked == set(files) == {f["filename"] for fs in combined.values() for f in fs}
        leftovers = [p for p in output.rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == []
    return files


def _pip_installs(output: Path, tmp: Path, target: str = "slim") -> None:
    """pip, as a consumer runs it: every project each index lists, through that index
    alone (no other index); and the lock, by hash, from the folder."""
    folder = output / target
    for simple in (folder / "simple", output / "simple"):
        projects = [p["name"] for p in json.loads((simple / "index.json").read_text())["projects"]]
        _pip(tmp, "--index-url", simple.as_uri() + "/", *projects)
    _pip(
        tmp,
        "--no-index",
        "--find-links",
        str(folder),
        "--require-hashes",
        "-r",
        str(folder / "lock.txt"),
    )


def _pip(tmp: Path, *args: str) -> None:
    dest = tmp / "pip-target"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--upgrade",
         "--disable-pip-version-check", "--target", str(dest), *args],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


# -- SIGKILL at every step ---------------------------------------------------------------


def test_a_build_killed_at_any_write_step_leaves_every_reader_a_consistent_folder(
    wh: Wheelhouse, project: Path, index: LocalIndex, tmp_path: Path
) -> None:
    """WHEELHOUSE_TEST_KILL_AT=N kills the build with SIGKILL at its Nth write step (a
    rename, a removal): N = 1, 2, ... until a run gets to the end. Each run goes from lock
    A to lock B (a new wheel, an upgraded one, a kept one, a gone one: lock.txt, manifest,
    pages of new, changed and gone projects, the combined index, removals). After each
    kill every reader's view holds; the next run (back to lock A) finishes the job and
    leaves no temp file. pip installs through both indexes at every sixth kill (a pip
    run costs three builds; the links pip follows are checked at every one)."""
    _config(project, index)
    output = project / "wheelhouse"
    _lock(project, index, LOCK_B)
    wh("build")  # the store holds every file: the runs below only assemble and index
    killed = 0
    for n in range(1, 200):
        _lock(project, index, LOCK_A)
        wh("build")  # finishes what the last run left, or gets lock A in place
        files = _consistent(output)
        assert sorted(files) == sorted(wheel_filename(k, v) for k, v in LOCK_A.items())
        _lock(project, index, LOCK_B)
        res = wh("build", env={"WHEELHOUSE_TEST_KILL_AT": str(n)}, check=False)
        assert res.returncode in (KILLED, 0), res.stderr
        _consistent(output, complete=res.returncode == 0)
        if res.returncode == 0:
            break
        killed += 1
        if killed % 6 == 1:
            _pip_installs(output, tmp_path)
    files = _consistent(output)
    assert sorted(files) == sorted(wheel_filename(k, v) for k, v in LOCK_B.items())
    _pip_installs(output, tmp_path)
    # every step was a kill point: links, lock.txt, manifest, two indexes (sidecars,
    # pages, root, state), removals (the store's verification stamps are written in
    # place, not renamed: no step of their own)
    assert killed >= 23, killed


# -- two runs of one folder --------------------------------------------------------------


def _start(wh: Wheelhouse, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "wheelhouse", *args],
        cwd=wh.project,
        env=wh.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _reader(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The lines of `stream` as they come, read in a thread (so a wait can be bounded)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return lines, thread


def _wait_for_line(lines: queue.Queue[str], needle: str) -> str:
    while True:
        line = lines.get(timeout=60)
        if needle in line:
            return line


def test_a_second_build_of_a_folder_waits_for_the_first_and_says_so(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    _config(project, index)
    output = project / "wheelhouse"
    _lock(project, index, LOCK_A)
    wh("build")
    _lock(project, index, LOCK_B)
    with index_lock(output / "slim", wait=Wait(seconds=0)):  # another run holds it
        proc = _start(wh, "build")
        assert proc.stdout is not None and proc.stderr is not None
        lines, reader = _reader(proc.stderr)
        line = _wait_for_line(lines, "wait")
        assert "wheelhouse/slim/ is in use by another run: waiting up to 600 s" in line
        assert set(_consistent(output)) == {wheel_filename(k, v) for k, v in LOCK_A.items()}
    assert proc.wait(timeout=120) == 0
    reader.join(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    assert set(_consistent(output)) == {wheel_filename(k, v) for k, v in LOCK_B.items()}


@pytest.mark.parametrize(
    ("held", "args", "named"),
    [
        ("slim", ["build", "--no-wait"], "wheelhouse/slim/"),
        (
            "slim",
            ["build", "--wait", "0.3"],
            "wheelhouse/slim/ is in use by another wheelhouse run",
        ),
        ("slim", ["index", "--no-wait"], "wheelhouse/slim/"),
        ("", ["index", "--wait", "0.3"], "wheelhouse/ is in use"),  # the combined index's
        ("", ["build", "--no-wait"], "wheelhouse/ is in use"),  # the build's removals
    ],
)
def test_a_run_that_cannot_have_the_folder_fails_with_17_naming_it(
    wh: Wheelhouse, project: Path, index: LocalIndex, held: str, args: list[str], named: str
) -> None:
    _config(project, index)
    output = project / "wheelhouse"
    _lock(project, index, LOCK_A)
    wh("build")
    _lock(project, index, LOCK_B)
    with index_lock(output / held, wait=Wait(seconds=0)):
        res = wh(*args, check=False)
        assert res.returncode == BUSY, res.stderr
        assert "output busy" in res.stderr and named in res.stderr
        assert "hint:" in res.stderr and "Traceback" not in res.stderr
        # nothing a reader relies on broke; holding only the root lock, the build placed
        # its wheels and lock.txt and stopped before the pages and the removals
        files = _consistent(output, complete=False)
        assert set(files) >= {wheel_filename(k, v) for k, v in LOCK_A.items()}
    wh(*args[:1])
    assert set(_consistent(output)) == {
        wheel_filename(k, v) for k, v in (LOCK_A if args[0] == "index" else LOCK_B).items()
    }


def test_two_builds_of_one_folder_from_two_projects_at_once_both_leave_it_consistent(
    index: LocalIndex, tmp_path: Path
) -> None:
    """Two CI jobs in one workspace, each with its own lock, one output folder: both
    finish, one after the other, and the folder is the last one's, whole."""
    output = tmp_path / "shared-wheelhouse"
    jobs = []
    for name, pins in (("job-a", LOCK_A), ("job-b", LOCK_B)):
        project = tmp_path / name
        _config(project, index, output=str(output))
        _lock(project, index, pins)
        jobs.append(Wheelhouse(project, tmp_path / "cache"))  # one cache, as in a workspace
    jobs[0]("build")
    for _ in range(8):  # without the lock, about one round in three left lock.txt lying
        procs = [_start(job, "build") for job in jobs]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        files = _consistent(output)
        assert set(files) in (
            {wheel_filename(k, v) for k, v in pins.items()} for pins in (LOCK_A, LOCK_B)
        )


def test_without_the_indexes_old_wheels_stay_while_a_page_lists_them(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    """--no-index writes no page, so it removes no wheel a page lists: they go with the
    next build that indexes. Where no index was ever written, they go at once."""
    _config(project, index)
    output = project / "wheelhouse"
    a = {wheel_filename(k, v) for k, v in LOCK_A.items()}
    b = {wheel_filename(k, v) for k, v in LOCK_B.items()}
    _lock(project, index, LOCK_A)
    wh("build", "--no-index")
    _lock(project, index, LOCK_B)
    res = wh("build", "--no-index")
    assert "kept" not in res.stderr
    assert set(_wheels(output / "slim")) == b  # no index lists A's: gone
    _lock(project, index, LOCK_A)
    wh("build")
    _lock(project, index, LOCK_B)
    res = wh("build", "--no-index")
    assert "kept  2 old wheels kept in wheelhouse/slim/: its indexes still list them" in (
        res.stderr
    )
    assert set(_consistent(output, complete=False)) == a | b
    wh("build")
    assert set(_consistent(output)) == b


# -- leftovers of killed runs ------------------------------------------------------------


@pytest.mark.parametrize("args", [["build"], ["build", "--no-index"]])
def test_leftovers_of_dead_runs_are_removed_by_the_next_run_that_holds_the_folder(
    wh: Wheelhouse, project: Path, index: LocalIndex, args: list[str]
) -> None:
    _config(project, index)
    output = project / "wheelhouse"
    _lock(project, index, LOCK_A)
    wh("build")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free now: the planted files are a dead run's
    slim = output / "slim"
    wheel = wheel_filename("alpha", "1.0")
    planted = [
        slim / f".{wheel}.{dead.pid}.tmp",  # link_into's, before this version
        slim / f".{wheel}.{dead.pid}.7.tmp",  # link_into's
        slim / f".lock.txt.{dead.pid}.k2j_9x.tmp",  # atomic_write's
        slim / f".manifest.json.{dead.pid}.a0b1c2.tmp",
        slim / f".{wheel}.metadata.{dead.pid}.3.tmp",  # a sidecar's (the index)
    ]
    if "--no-index" not in args:  # the combined index's: that run cleans its own folder
        planted.append(output / "simple" / f".index.json.{dead.pid}.4.tmp")
    kept = [
        slim / f".{wheel}.{os.getpid()}.1.tmp",  # a live process's: not a leftover
        slim / ".upload-x1y2z3.tmp",  # an upload in progress (wheelhouse serve)
    ]
    for path in planted + kept:
        write(path, "half")
    with index_lock(slim, wait=Wait(seconds=0)):  # never without the lock
        assert wh(*args, "--no-wait", check=False).returncode == BUSY
    assert all(p.exists() for p in planted + kept)
    wh(*args)
    assert [p for p in planted if p.exists()] == []
    assert all(p.exists() for p in kept)
    for path in kept:
        path.unlink()
    _consistent(output)


# -- bit rot -----------------------------------------------------------------------------


def _flip_a_byte_keep_mtime(path: Path) -> None:
    """In place (as a write through any of the file's hard links would), mtime put back."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    with path.open("r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


@pytest.mark.parametrize("output_deleted", [False, True])
def test_a_flipped_byte_with_its_mtime_kept_is_caught_and_fetched_again(
    wh: Wheelhouse, project: Path, index: LocalIndex, output_deleted: bool
) -> None:
    """The store's file and the output's are one inode: a flipped byte in either, its
    mtime put back, is caught by the next build (the ctime it cannot put back), dropped,
    fetched again, and the output matches lock.txt again; also when the output folder
    was deleted meanwhile (which moves the ctime of every stored file)."""
    _config(project, index)
    output = project / "wheelhouse"
    _lock(project, index, LOCK_A)
    wh("build")
    wheel = output / "slim" / wheel_filename("alpha", "1.0")
    good = index.sha256(wheel.name)
    _flip_a_byte_keep_mtime(wheel)
    if output_deleted:
        shutil.rmtree(output)
    res = wh("build")
    assert f"corrupt  {wheel.name}: the cache's copy no longer has the bytes" in res.stderr
    assert sha256(wheel.read_bytes()) == good
    files = _consistent(output)
    assert files[wheel.name] == good
    blob = Store(wh.cache_dir).get(good)
    assert blob is not None and sha256(blob.path.read_bytes()) == good
    assert re.search(r"\| slim\s+\|\s+3\s+\|\s+2\s+\|\s+1\s+\|", res.stdout), res.stdout


def test_a_wheel_that_changes_during_the_run_is_checked_again_before_it_is_linked(
    project: Path, index: LocalIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning found the stored wheel whole; it changes before assembly (the flip is
    made when the build says it starts placing wheels): the check just before linking
    drops it, fetches it again, and the folder gets the right bytes."""
    from wheelhouse import config as config_mod
    from wheelhouse.build.session import build

    monkeypatch.setenv("WHEELHOUSE_CACHE_DIR", str(tmp_path / "cache"))
    _config(project, index)

    def no_engine() -> NoReturn:
        raise AssertionError("nothing here needs a container")

    def run(pins: dict[str, str], on_event: Callable[[str, str], None]) -> None:
        _lock(project, index, pins)
        cfg = config_mod.load(project)
        build(cfg, cfg.selected([]), engine=no_engine, on_event=on_event)

    run(LOCK_B, lambda kind, msg: None)
    run(LOCK_A, lambda kind, msg: None)  # the store keeps alpha 1.1, unlinked from the folder
    store = Store(tmp_path / "cache")
    newer = wheel_filename("alpha", "1.1")
    stored = store.get(index.sha256(newer))
    assert stored is not None
    events: list[tuple[str, str]] = []

    def on_event(kind: str, message: str) -> None:
        events.append((kind, message))
        if kind == "assemble":
            _flip_a_byte_keep_mtime(stored.path)

    run(LOCK_B, on_event)
    kinds = [k for k, _ in events]
    assert kinds.index("plan") < kinds.index("assemble") < kinds.index("corrupt")
    assert any(k == "corrupt" and m.startswith(newer) for k, m in events)
    files = _consistent(project / "wheelhouse")
    assert files[newer] == index.sha256(newer)
