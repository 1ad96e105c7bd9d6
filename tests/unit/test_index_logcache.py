"""The log's cache (`simple/.index-files.cache`): an incremental run reads what the log
says from arrays and parses only the lines appended since; the log stays the record, so a
cache that does not describe it (lost, stale, damaged, of another log) changes nothing but
the time a run takes."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures_simple import check_tree, put, swap

from wheelhouse.index import delta, logcache, state
from wheelhouse.index import writer as ix
from wheelhouse.index.logcache import CACHE_NAME, read_cache
from wheelhouse.index.state import LOG_NAME, load_log


@pytest.fixture(autouse=True)
def any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache for a log of any size (a real one waits for some 4,000 files), its names
    written a few at a time."""
    monkeypatch.setattr(logcache, "MIN_SIZE", 1)
    monkeypatch.setattr(state, "MIN_SIZE", 1)
    monkeypatch.setattr(logcache, "_SLICE", 7)


def line(i: int, project: str | None = None, ino: int | None = None) -> str:
    name = project or f"p{i % 7}"
    return f"{name}-{i}.0-py3-none-any.whl\t{name}\t{ino if ino is not None else 1000 + i}\n"


def parsed(simple: Path) -> tuple[dict[str, int], dict[str, str], int]:
    """What the log in `simple` says, read from a copy of it alone (no cache)."""
    copy = simple / "copy"
    copy.mkdir(exist_ok=True)
    (copy / CACHE_NAME).unlink(missing_ok=True)
    (copy / LOG_NAME).write_bytes((simple / LOG_NAME).read_bytes())
    log = load_log(copy)
    return log.ino, log.project, log.lines


def cache_reads(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The log size each later read of the cache describes (None: not used)."""
    seen: list[int | None] = []

    def counting(simple: Path, log: bytes) -> Any:
        got = read_cache(simple, log)
        seen.append(got.size if got else None)
        return got

    monkeypatch.setattr(state, "read_cache", counting)
    return seen


def test_the_cache_and_the_lines_after_it_say_what_the_log_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / LOG_NAME
    log.write_text("".join(line(i) for i in range(200)))
    first = load_log(tmp_path)
    cache = tmp_path / CACHE_NAME
    assert cache.is_file()  # written by the run that parsed the log whole
    stamp = cache.stat().st_mtime_ns, cache.stat().st_ino
    size = log.stat().st_size
    seen = cache_reads(monkeypatch)
    with log.open("a") as f:  # replaced, removed, removed then back, new: a few lines
        f.write(line(3, ino=7) + "p5-5.0-py3-none-any.whl\t-\t-\n")
        f.write("p6-6.0-py3-none-any.whl\t-\t-\n" + line(6, ino=8) + line(500, "new"))
        f.write("p1-cut-short")  # (a last line a crash cut short)
    read = load_log(tmp_path)
    with log.open("r+b") as f:
        f.truncate(log.stat().st_size - len("p1-cut-short"))
    assert seen == [size]
    assert (cache.stat().st_mtime_ns, cache.stat().st_ino) == stamp  # (a small tail)
    assert (read.ino, read.project, read.lines) == parsed(tmp_path)
    assert read.lines == first.lines + 5
    assert read.ino["p3-3.0-py3-none-any.whl"] == 7 and read.project["new-500.0-py3-none-any.whl"]
    assert "p5-5.0-py3-none-any.whl" not in read.ino and read.ino["p6-6.0-py3-none-any.whl"] == 8
    # an eighth of the log past the cache: the run writes it again, for the whole log
    with log.open("a") as f:
        f.write("".join(line(i, ino=i) for i in range(600, 640)))
    seen.clear()
    again = load_log(tmp_path)
    assert seen == [size] and (cache.stat().st_mtime_ns, cache.stat().st_ino) != stamp
    assert load_log(tmp_path).ino == again.ino and seen[-1] == log.stat().st_size


def _damaged_body(blob: bytes) -> bytes:
    """A bit of the first file's inode flipped: the layout still holds, the numbers not."""
    at = logcache._START
    return blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1 :]


def _project_out_of_range(blob: bytes) -> bytes:
    """A body whose CRC agrees, with a project number past the table."""
    start = logcache._START
    head = list(logcache._HEAD.unpack_from(blob, len(logcache._MAGIC)))
    files = head[4]
    body = bytearray(blob[start:])
    struct.pack_into("I", body, 8 * files, 99)
    head[3] = zlib.crc32(body)
    return blob[: len(logcache._MAGIC)] + logcache._HEAD.pack(*head) + bytes(body)


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "a byte of the body": _damaged_body,
    "cut short": lambda blob: blob[: len(blob) // 2],
    "empty": lambda blob: b"",
    "another version or byte order": lambda blob: blob.replace(b"cache 1", b"cache 9", 1),
    "a project number past the table": _project_out_of_range,
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_cache_is_ignored_and_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    (tmp_path / LOG_NAME).write_text("".join(line(i) for i in range(100)))
    load_log(tmp_path)
    want = parsed(tmp_path)
    cache = tmp_path / CACHE_NAME
    cache.write_bytes(DAMAGE[damage](cache.read_bytes()))
    seen = cache_reads(monkeypatch)
    read = load_log(tmp_path)
    assert seen == [None]
    assert (read.ino, read.project, read.lines) == want
    assert load_log(tmp_path).ino == want[0] and seen[-1] == (tmp_path / LOG_NAME).stat().st_size


@pytest.mark.parametrize("how", ["rewritten", "cut short", "edited in place"])
def test_a_cache_of_another_log_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The cache names the bytes it describes: a log written whole with other lines, cut
    to less than the cache describes, or changed in place (same inode, same size) is
    parsed, not taken from the cache."""
    log = tmp_path / LOG_NAME
    log.write_text("".join(line(i) for i in range(100)))
    load_log(tmp_path)
    if how == "rewritten":
        log.write_text("".join(line(i, ino=5000 + i) for i in range(100)))
    elif how == "cut short":
        log.write_text("".join(line(i) for i in range(50)))
    else:
        data = bytearray(log.read_bytes())
        at = data.index(b"\t1050\n")
        data[at : at + 6] = b"\t1051\n"
        with log.open("r+b") as f:
            f.write(data)
    seen = cache_reads(monkeypatch)
    read = load_log(tmp_path)
    assert seen == [None]
    assert (read.ino, read.project, read.lines) == parsed(tmp_path)


def test_a_line_edited_by_hand_after_the_cache_reads_the_log_line_by_line(
    tmp_path: Path,
) -> None:
    log = tmp_path / LOG_NAME
    log.write_text("".join(line(i) for i in range(100)))
    load_log(tmp_path)
    with log.open("a") as f:
        f.write(line(1, ino=1) + "junk\n" + line(2, ino=2))
    read = load_log(tmp_path)
    assert read.ino["p1-1.0-py3-none-any.whl"] == 1 and read.ino["p2-2.0-py3-none-any.whl"] == 2
    assert (read.ino, read.project, read.lines) == parsed(tmp_path) and read.lines == 103


@pytest.mark.parametrize("number", ["-5", "1" * 25])
def test_a_number_no_inode_can_be_leaves_the_log_without_a_cache(
    tmp_path: Path, number: str
) -> None:
    """An inode the cache's arrays cannot hold (a log edited by hand): no cache, no error."""
    (tmp_path / LOG_NAME).write_text(
        "".join(line(i) for i in range(50)) + f"x-1.0.whl\tx\t{number}\n"
    )
    assert load_log(tmp_path).ino["x-1.0.whl"] == int(number)
    assert not (tmp_path / CACHE_NAME).exists()


def test_runs_with_a_cache_publish_what_runs_without_one_do(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: a full run writes the cache with the log; the next runs read it (a
    new wheel, a replaced one, one removed); the pages are those of a run with none. A
    cache that cannot be written (a folder in its place) costs nothing but the time. (The
    runs compare with the log, as where the listing's snapshot is not the log's.)"""
    monkeypatch.setattr(delta, "read_snapshot", lambda simple, token: None)
    slim = out / "slim"
    ix.index_target(slim)
    simple = slim / "simple"
    assert (simple / CACHE_NAME).is_file()
    size = (simple / LOG_NAME).stat().st_size
    seen = cache_reads(monkeypatch)
    put(slim, "gamma", "1.0")
    swap(slim, "alpha", "1.0", requires=["x"])
    (slim / "beta-1.0-py3-none-any.whl").unlink()
    report = ix.index_target(slim)
    assert (report.hashed, report.files, seen) == (2, 4, [size])
    pages = check_tree(simple)
    assert "beta" not in pages and pages["gamma"]
    (simple / CACHE_NAME).unlink()
    (simple / CACHE_NAME).mkdir()
    put(slim, "delta", "1.0")
    assert ix.index_target(slim).hashed == 1
    assert check_tree(simple)["delta"] and (simple / CACHE_NAME).is_dir()
    assert not [p.name for p in simple.iterdir() if p.name.endswith(".tmp")]
    pages = check_tree(simple)
    ix.write_index(slim, [ix.Source(folder=slim)], full=True)
    assert check_tree(simple) == pages


def test_the_cache_is_written_a_slice_at_a_time(tmp_path: Path) -> None:
    """A log written whole (a full run's) has its cache written as its rows come, a slice
    at a time: what the write holds does not grow with the files (it held their inodes and
    projects' numbers in arrays, and a list of the numbers, some 20 bytes a file); and what
    it wrote reads back as the log it describes."""
    files = 100_000
    log = "".join(line(i, f"p{i % 50}", i + 1) for i in range(files)).encode()

    def rows() -> Any:
        return ((f"p{i % 50}-{i}.0-py3-none-any.whl", i + 1, f"p{i % 50}") for i in range(files))

    tracemalloc.start()
    try:
        logcache.write_cache(
            tmp_path,
            (name for name, _, _ in rows()),
            (ino for _, ino, _ in rows()),
            (project for _, _, project in rows()),
            size=len(log),
            lines=files,
            crc=zlib.crc32(log),
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * files, f"{peak / files:.0f} bytes a file at the peak"
    cached = read_cache(tmp_path, log)
    assert cached is not None and cached.lines == files and len(cached.ino) == files
    assert cached.ino["p3-53.0-py3-none-any.whl"] == 54
    assert cached.project["p3-53.0-py3-none-any.whl"] == "p3"
