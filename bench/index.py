#!/usr/bin/env python3
"""Benchmark `wheelhouse index` against dumb-pypi and simple503, side by side.

One generated corpus (default 3,000 small valid wheels over 600 projects: METADATA, WHEEL,
RECORD and a module, written with zipfile, byte-for-byte deterministic), one copy of it per
tool (hard links), and two phases per tool:

  full         an empty index over the whole corpus
  incremental  one new wheel (of a new version of an existing project) added, index again

  wheelhouse   python -m wheelhouse index -t bench   (a project whose output folder holds
               the corpus as target `bench`; writes bench/simple/ and the combined simple/)
  dumb-pypi    dumb-pypi --package-list-json LIST --output-dir DIR --packages-url ../../pool/
               (incremental: --previous-package-list-json). dumb-pypi never opens a wheel:
               the list it is given already holds each file's sha256, Requires-Python,
               upload time and core-metadata hash, computed untimed by this script
  simple503    simple503 DIR   (in place; it reads and hashes every wheel on every run and
               writes PEP 658 .metadata files)

dumb-pypi and simple503 are installed from the index into a throwaway venv (pip, with this
machine's pip configuration; --tools-venv reuses one). Every run is a fresh process, timed
wall-clock, its peak resident memory taken from wait4() (by a small helper that forks it, so
that no tool reports this script's own peak: see `run`); each phase is repeated (--repeat,
fresh copies each round, the order of the tools rotating, across sizes too) and the median
counts. Nothing is deleted until the end: on ext4, creating files soon after thousands
were deleted is several times slower, which would penalise whichever tool runs next.
wheelhouse's own `elapsed` (the index work without Python's start-up and imports) is
printed too, and the floor of any incremental run in Python: `wheelhouse --version` plus
one bare listing of the folder (each entry's name and inode, as the run compares them) in
a fresh interpreter, less its start, as a fraction of the full run (on two CPUs or more,
`wheelhouse index` has a child list the folder while it imports the index's code, so a run
can come in under that floor).
`--sizes 3000,30000,100000` benches each corpus size in turn (projects = size / --versions)
and then prints the growth exponent k (time ~ wheels**k, 1.0 = linear) from the smallest
to the largest size, per tool; with `--same-projects`, every size has the first size's
projects and more versions of each (what a run's memory grows with: the wheels, or the
projects as the root page lists them). `--against DIR` benches another checkout
of wheelhouse (say a clone of main) in the same rounds, as one more tool: a before/after
in one run, where the machine's state (its load, the file system's backlog of deleted
blocks, which slows file creation for a while: run two benches back to back and the
second pays for the first's clean-up) is the same for both.

Goals (the issue's): wheelhouse full at least twice as fast as dumb-pypi, incremental (one
new wheel) at most 0.05 of its full run in wall clock, growth exponent at most 1.05, peak
memory at most dumb-pypi's. Exit status 0 unless a tool fails: this is a benchmark, not a
test.
Usage: python bench/index.py -h
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import io
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from _install import install_wheelhouse  # bench/ is on sys.path: this script's folder

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 1800  # seconds per run
TARGET = "bench"
ZIP_TIME = (2024, 1, 2, 3, 4, 5)
MTIME = 1_700_000_000  # every corpus file's mtime (so upload-time is deterministic too)
TOOLS = ("dumb-pypi==1.15.0", "simple503==0.4.0")
WHEELHOUSE: list[str] = []  # the installed console script (bench/_install.py)
# what every incremental run must do at least: list the folder (its wheels and their
# sidecars), each entry's name and inode, as compare_listing does; timed in a fresh
# interpreter of wheelhouse's venv, less that interpreter's bare start
_LISTING = "import os, sys\nfor e in os.scandir(sys.argv[1]): e.name; e.inode()"
AGAINST: list[str] = []  # --against: the other checkout's

GOAL_FULL = 2.0  # dumb-pypi's full run / wheelhouse's must be at least this
GOAL_INCREMENTAL = 0.05  # wheelhouse incremental / wheelhouse full: at most this
GOAL_GROWTH = 1.05  # wheelhouse full: time ~ wheels**k, k at most this


class ToolFailed(Exception):
    pass


# -- the corpus ----------------------------------------------------------------------------


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def project_name(i: int) -> str:
    """Names in the shapes real projects have: plain, dashed, dotted, mixed case."""
    shape = i % 4
    if shape == 0:
        return f"pkg{i:03d}"
    if shape == 1:
        return f"bench-tool-{i:03d}"
    if shape == 2:
        return f"Bench_Lib.{i:03d}"
    return f"BenchKit{i:03d}"


def wheel(name: str, version: str, i: int) -> tuple[str, bytes]:
    """(filename, bytes) of a small valid py3-none-any wheel."""
    dist = _dist(name)
    info = f"{dist}-{version}.dist-info"
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {name}, a generated benchmark package",
        "License: MIT",
    ]
    if i % 2 == 0:
        meta.append(f"Requires-Python: >=3.{8 + i % 4},<4")
    meta += [f"Requires-Dist: pkg{(i * 7 + k) % 600:03d}>=1.0" for k in range(i % 3)]
    body = f"# {name}\n\n" + f"{name} {version} does nothing, quickly.\n" * 8
    metadata = ("\n".join(meta) + "\n\n" + body).encode()
    module = "".join(f"def f{k}(x):\n    return x * {k + i}\n\n" for k in range(40)).encode()
    files = [
        (f"{dist}/__init__.py", module),
        (f"{info}/METADATA", metadata),
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files) + f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files:
            zi = zipfile.ZipInfo(path, date_time=ZIP_TIME)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return f"{dist}-{version}-py3-none-any.whl", buf.getvalue()


def make_corpus(folder: Path, projects: int, versions: int) -> list[str]:
    folder.mkdir(parents=True)
    names = []
    for p in range(projects):
        for v in range(versions):
            filename, data = wheel(project_name(p), f"1.{v}.0", p * versions + v)
            (folder / filename).write_bytes(data)
            os.utime(folder / filename, (MTIME, MTIME))
            names.append(filename)
    return names


def extra_wheel(folder: Path, versions: int) -> str:
    """One new wheel: the next version of the corpus's second project."""
    filename, data = wheel(project_name(1), f"1.{versions}.0", 1)
    (folder / filename).write_bytes(data)
    os.utime(folder / filename, (MTIME + 60, MTIME + 60))
    return filename


def clone(src: Path, dest: Path) -> None:
    """A copy of the corpus folder made of hard links (what wheelhouse build makes too)."""
    dest.mkdir(parents=True)
    for f in src.iterdir():
        os.link(f, dest / f.name)


# -- the tools -----------------------------------------------------------------------------


# A child's ru_maxrss on Linux starts at its parent's peak: exec records the high-water mark
# of the address space it leaves, which fork copies and vfork shares. A tool started from
# this script (whose corpus makes it big) would report at least this script's peak, so a
# small helper forks each tool and reports the tool's own wall time and rusage.
_HELPER = """
import os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(result, "w") as f:
    f.write(f"{seconds} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run(
    name: str, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, str, int]:
    """(wall seconds, output, peak resident memory in bytes) of one run of a tool: its own,
    measured by the helper around the tool alone (not the helper's start-up)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result"
        helper = [sys.executable, "-S", "-c", _HELPER, str(result), *argv]
        proc = subprocess.Popen(
            helper, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        # the helper and the tool share a process group: a timeout kills both
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            os.killpg(proc.pid, 9)

        timer = threading.Timer(TIMEOUT, kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        out.seek(0)
        log = out.read().decode(errors="replace")
        measured = result.read_text().split() if result.exists() else []
        free = shutil.disk_usage(tmp).free
    if timed_out.is_set():
        raise ToolFailed(f"{name}: timed out after {TIMEOUT} s:\n{log}")
    if not measured:  # (say how the helper ended, and the space left: a full disk loses both)
        raise ToolFailed(
            f"{name}: its helper wrote no result (exit {proc.returncode}, "
            f"{free / 1e9:.1f} GB free in {tempfile.gettempdir()}):\n{log}"
        )
    if proc.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-25:])
        raise ToolFailed(f"{name} failed (exit {proc.returncode}):\n  $ {' '.join(argv)}\n{tail}")
    return float(measured[0]), log, int(measured[1]) * 1024


def tools_venv(path: Path) -> Path:
    """A venv with dumb-pypi and simple503 (installed once; reused when it has them)."""
    py = path / "bin" / "python"
    check = [str(py), "-c", "import dumb_pypi, simple503"]
    if py.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return path
    run("python -m venv", [sys.executable, "-m", "venv", str(path)])
    run("pip install", [str(py), "-m", "pip", "install", "-q", *TOOLS])  # untimed
    return path


def package_list(folder: Path, out: Path) -> None:
    """dumb-pypi's input: one JSON object per file with what it renders (it reads no wheel)."""
    lines = []
    for f in sorted(folder.glob("*.whl")):
        data = f.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = zf.read(meta_name)
        header = metadata.split(b"\n\n", 1)[0].decode()
        rp = re.search(r"^Requires-Python: (.*)$", header, re.M)
        entry = {
            "filename": f.name,
            "hash": "sha256=" + hashlib.sha256(data).hexdigest(),
            "upload_timestamp": int(f.stat().st_mtime),
            "core_metadata": "sha256=" + hashlib.sha256(metadata).hexdigest(),
        }
        if rp:
            entry["requires_python"] = rp.group(1)
        lines.append(json.dumps(entry))
    out.write_text("\n".join(lines) + "\n")


@dataclass(kw_only=True)
class Row:
    name: str
    full: list[float] = field(default_factory=list)
    incremental: list[float] = field(default_factory=list)
    memory: list[int] = field(default_factory=list)  # peak RSS of each full run, bytes
    memory_incremental: list[int] = field(default_factory=list)
    # a run with nothing to do, after one that found nothing to do (wheelhouse only)
    idle: list[float] = field(default_factory=list)
    memory_idle: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


def bench_wheelhouse(
    work: Path,
    corpus: Path,
    versions: int,
    row: Row,
    inner: Row,
    *,
    exe: list[str] = WHEELHOUSE,
    name: str = "wheelhouse-project",
    floor: list[float] | None = None,
) -> None:
    project = work / name
    project.mkdir()
    (project / "wheelhouse.toml").write_text(
        f'output = "out"\ndefault-targets = ["{TARGET}"]\n\n[targets.{TARGET}]\nextends = "slim"\n'
    )
    folder = project / "out" / TARGET
    clone(corpus, folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELHOUSE_"))}
    env["WHEELHOUSE_CACHE_DIR"] = str(work / "wheelhouse-cache")
    argv = [*exe, "-C", str(project), "index", "-t", TARGET]
    for phase, times, inner_times in (
        ("full", row.full, inner.full),
        ("incremental", row.incremental, inner.incremental),
    ):
        if phase == "incremental":
            extra_wheel(folder, versions)
        seconds, log, memory = run("wheelhouse index", argv, env=env)
        times.append(seconds)
        (row.memory if phase == "full" else row.memory_incremental).append(memory)
        # "<path>: N projects, N files [N hashed, N pages written, ...; 0.12 s]": both indexes
        inner_times.append(sum(float(s) for s in re.findall(r"; ([0-9.]+) s\]", log)))
        if phase == "incremental" and "[1 hashed" not in log:
            row.notes.append(f"incremental run did not hash exactly one file:\n{log}")
    # then nothing changes: a run records the folder's stamp (the last one wrote a sidecar
    # there), the next finds nothing to do and says so, the next stops at once
    for _ in range(3):
        seconds, log, memory = run("wheelhouse index", argv, env=env)
    row.idle.append(seconds)
    row.memory_idle.append(memory)
    if "nothing changed" not in log and name == "wheelhouse-project":
        row.notes.append(f"the third run with nothing to do did not stop at once:\n{log}")
    if floor is not None:
        python = str(Path(exe[0]).with_name("python"))
        listing = run("listing", [python, "-c", _LISTING, str(folder)])[0]
        floor.append(listing - run("python", [python, "-c", "pass"])[0])


def bench_dumb_pypi(work: Path, corpus: Path, versions: int, venv: Path, row: Row) -> None:
    pool = work / "dumb" / "pool"
    clone(corpus, pool)
    first, second = work / "dumb-list-1.json", work / "dumb-list-2.json"
    package_list(pool, first)
    exe = str(venv / "bin" / "dumb-pypi")
    base = [exe, "--output-dir", str(work / "dumb"), "--packages-url", "../../pool/"]
    seconds, _, memory = run("dumb-pypi", [*base, "--package-list-json", str(first)])
    row.full.append(seconds)
    row.memory.append(memory)
    extra_wheel(pool, versions)
    package_list(pool, second)
    seconds, _, memory = run(
        "dumb-pypi",
        [*base, "--package-list-json", str(second), "--previous-package-list-json", str(first)],
    )
    row.incremental.append(seconds)
    row.memory_incremental.append(memory)


def bench_simple503(work: Path, corpus: Path, versions: int, venv: Path, row: Row) -> None:
    folder = work / "s503"
    clone(corpus, folder)
    exe = str(venv / "bin" / "simple503")
    for times in (row.full, row.incremental):
        if times is row.incremental:
            extra_wheel(folder, versions)
        seconds, _, memory = run("simple503", [exe, str(folder)], cwd=work)
        times.append(seconds)
        (row.memory if times is row.full else row.memory_incremental).append(memory)


@dataclass(kw_only=True)
class Result:
    """The medians of one corpus size."""

    wheels: int
    rows: dict[str, Row]
    startup: float
    listing: float  # one listing of the incremental run's folder, less python's start


def bench_size(
    work: Path, args: argparse.Namespace, venv: Path, projects: int, turn: int
) -> Result:
    """Every tool over one corpus size. `turn`: which tool goes first in the first round
    (sizes rotate it too); nothing is deleted (see the module doc)."""
    work = work / f"size-{projects * args.versions}"
    work.mkdir()
    corpus = work / "corpus"
    start = time.perf_counter()
    names = make_corpus(corpus, projects, args.versions)
    size = sum(f.stat().st_size for f in corpus.iterdir())
    print(
        f"corpus: {len(names)} wheels, {projects} projects, {size / 1e6:.1f} MB "
        f"(made in {time.perf_counter() - start:.1f} s) in {corpus}",
        flush=True,
    )
    wh, wh_inner = Row(name="wheelhouse index"), Row(name="  (index work only)")
    dumb, s503 = Row(name="dumb-pypi"), Row(name="simple503")
    other, other_inner = Row(name="wheelhouse --against"), Row(name="  (its index work)")
    startup: list[float] = []
    listing: list[float] = []
    for r in range(args.repeat):
        startup.append(run("wheelhouse --version", [*WHEELHOUSE, "--version"], cwd=work)[0])
        rounds = work / f"round-{r}"
        rounds.mkdir()
        # alternate who goes first: the page cache favours no one for long
        order = [
            functools.partial(
                bench_wheelhouse, rounds, corpus, args.versions, wh, wh_inner, floor=listing
            ),
            functools.partial(bench_dumb_pypi, rounds, corpus, args.versions, venv, dumb),
            functools.partial(bench_simple503, rounds, corpus, args.versions, venv, s503),
        ]
        if args.skip_simple503:
            order.pop()
        if AGAINST:
            order.append(
                functools.partial(
                    bench_wheelhouse,
                    rounds,
                    corpus,
                    args.versions,
                    other,
                    other_inner,
                    exe=AGAINST,
                    name="against-project",
                )
            )
        first = (turn + r) % len(order)
        for job in order[first:] + order[:first]:
            job()
        print(
            f"round {r + 1}: full / incremental: "
            + ", ".join(
                f"{t.name} {t.full[-1]:.2f} / {t.incremental[-1]:.2f} s"
                for t in (wh, dumb, s503, other)
                if t.full
            ),
            file=sys.stderr,
            flush=True,
        )
    rows = {r.name: r for r in (wh, wh_inner, dumb, s503, other, other_inner) if r.full}
    return Result(
        wheels=len(names),
        rows=rows,
        startup=statistics.median(startup),
        listing=statistics.median(listing),
    )


def report_size(res: Result) -> None:
    other_name = "wheelhouse --against"
    sys.stdout.flush()
    rows = res.rows
    print(f"\n== {res.wheels} wheels ==")
    print(f"{'tool':<22} {'full (s)':>9} {'incremental (s)':>16} {'incr/full':>10} {'peak MiB':>9}")
    for row in rows.values():
        full, incr = row.median(row.full), row.median(row.incremental)
        memory = (
            f"{max(row.memory) / 2**20:>12.0f} / {max(row.memory_incremental) / 2**20:<6.0f}"
            if row.memory
            else ""
        )
        print(f"{row.name:<22} {full:>9.3f} {incr:>16.3f} {incr / full:>10.3f} {memory}")
    wh = rows["wheelhouse index"]
    full, incr = wh.median(wh.full), wh.median(wh.incremental)
    others = [r for r in rows.values() if r.name in ("dumb-pypi", "simple503", other_name)]
    for r in others:
        print(
            f"{r.name} / wheelhouse: full {r.median(r.full) / full:.2f}x, "
            f"incremental {r.median(r.incremental) / incr:.2f}x, "
            f"peak memory {max(wh.memory) / max(r.memory):.2f}x / "
            f"{max(wh.memory_incremental) / max(r.memory_incremental):.2f}x of {r.name}'s"
        )
    for row in rows.values():
        for note in row.notes:
            print(f"warning: {row.name}: {note}")
    idle = ", ".join(
        f"{r.name} {r.median(r.idle):.3f} s, peak {max(r.memory_idle) / 2**20:.0f} MiB"
        for r in rows.values()
        if r.idle
    )
    print(f"a run with nothing to do (after one that found nothing to do): {idle}")
    print(
        f"python start-up + imports (wheelhouse --version): {res.startup:.3f} s, "
        f"{res.startup / incr:.0%} of the incremental run"
    )
    least = res.startup + res.listing
    print(
        f"floor of an incremental run (start-up + imports, and one listing of the folder "
        f"in Python: {res.listing:.3f} s): {least:.3f} s = {least / full:.3f} x full "
        "(the listing is a child's on 2+ CPUs, as the index's code loads)"
    )
    dumb = rows.get("dumb-pypi")
    inner = rows["  (index work only)"]
    ratio = inner.median(inner.incremental) / inner.median(inner.full)
    verdict = {True: "PASS", False: "FAIL"}
    if dumb is not None:
        fast = dumb.median(dumb.full) / full >= GOAL_FULL
        lean = max(wh.memory) <= max(dumb.memory) and max(wh.memory_incremental) <= max(
            dumb.memory_incremental
        )
        print(
            f"goals: full >= {GOAL_FULL:g}x dumb-pypi: {verdict[fast]}; "
            f"peak memory <= dumb-pypi's: {verdict[lean]}; "
            f"incremental <= {GOAL_INCREMENTAL:g} x full: wall clock {incr / full:.3f} "
            f"{verdict[incr / full <= GOAL_INCREMENTAL]} (index work {ratio:.3f})"
        )


def _exponent(small: float, big: float, scale: float) -> str:
    """k in big / small = (size ratio)**k; n/a where a time is below what was measured
    (an index work of 0.000 s at the smallest size)."""
    return f"{math.log(big / small) / scale:.3f}" if small > 0 and big > 0 else "n/a"


def report_growth(results: list[Result]) -> None:
    """Growth exponent k in time ~ wheels**k, from the smallest to the largest size
    (1.0: linear)."""
    first, last = results[0], results[-1]
    scale = math.log(last.wheels / first.wheels)
    print(f"\n== growth from {first.wheels} to {last.wheels} wheels (1.0 = linear) ==")
    print(f"{'tool':<22} {'full':>7} {'incremental':>12} {'peak MiB: full, incremental':>28}")
    for name, row in first.rows.items():
        big = last.rows[name]
        k_full = _exponent(row.median(row.full), big.median(big.full), scale)
        k_incr = _exponent(row.median(row.incremental), big.median(big.incremental), scale)
        memory = ", ".join(
            f"{max(a) / 2**20:.0f} -> {max(b) / 2**20:.0f}"
            for a, b in ((row.memory, big.memory), (row.memory_incremental, big.memory_incremental))
            if a and b
        )
        print(f"{name:<22} {k_full:>7} {k_incr:>12} {memory:>28}")
    wh = first.rows["wheelhouse index"], last.rows["wheelhouse index"]
    k = math.log(wh[1].median(wh[1].full) / wh[0].median(wh[0].full)) / scale
    print(
        f"goal: wheelhouse full growth <= {GOAL_GROWTH:g}: {'PASS' if k <= GOAL_GROWTH else 'FAIL'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=600)
    parser.add_argument("--versions", type=int, default=5, help="wheels per project")
    parser.add_argument(
        "--sizes",
        help="corpus sizes in wheels, comma-separated (e.g. 3000,30000,100000): each is "
        "benched in turn (projects = size / versions), then the growth between them",
    )
    parser.add_argument(
        "--same-projects",
        action="store_true",
        help="every size has the first size's projects, more versions of each",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median counts)")
    parser.add_argument("--skip-simple503", action="store_true", help="the slowest tool")
    parser.add_argument("--tools-venv", type=Path, help="a venv to install/reuse the tools in")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--against",
        type=Path,
        help="another wheelhouse checkout (e.g. a clone of main) benched in the same rounds",
    )
    args = parser.parse_args()
    sizes = [(args.projects, args)]
    if args.sizes:
        wheels = [int(n) for n in args.sizes.split(",")]
        first = max(1, wheels[0] // args.versions)
        sizes = [
            (first, argparse.Namespace(**{**vars(args), "versions": max(1, n // first)}))
            if args.same_projects
            else (max(1, n // args.versions), args)
            for n in wheels
        ]

    work = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-index-"))
    try:
        venv = tools_venv(args.tools_venv or work / "tools-venv")
        WHEELHOUSE[:] = [install_wheelhouse(work)]
        if args.against:
            AGAINST[:] = [
                install_wheelhouse(work, repo=args.against.resolve(), venv_name="against-venv")
            ]
        results = []
        for turn, (projects, shape) in enumerate(sizes):
            results.append(bench_size(work, shape, venv, projects, turn))
            report_size(results[-1])
        if len(results) > 1:
            report_growth(results)
        return 0
    except ToolFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
