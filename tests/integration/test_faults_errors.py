"""Faults a user can cause or meet, through the real CLI: every one ends in a message that
names the file or folder and what to do, with its documented exit code, never a traceback.

Real parts: a PEP 503 index on loopback (fixtures_index), moto's S3 server in its own
process (stopped with SIGSTOP mid-build), and real filesystems that are full or
read-only: small tmpfs mounts and read-only bind mounts made by the test (root can write
through chmod 0555, not through a read-only mount), each unmounted in a `finally`. The
builds need no container: every pin has a wheel, and libc-version is set.

The same faults function by function are in tests/unit/test_faults_errors_unit.py (a name of
its own: pytest imports both layers' files as top-level modules)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex, wheel_bytes, wheel_filename
from fixtures_s3 import S3_ENV, MotoServer
from packaging.utils import canonicalize_name

from wheelhouse.fsutil import LOCK_FILE
from wheelhouse.lock.lockfile import LockFile, Pin

NO_IMAGE = "wheelhouse-test/no-image:absent"
ALPHA = wheel_filename("alpha", "1.0")
GAMMA = wheel_filename("gamma", "1.0")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _big_wheel(name: str, size: int) -> bytes:
    """A valid wheel holding `size` incompressible bytes."""
    buf = io.BytesIO(wheel_bytes(name, "1.0"))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(f"{name}/data.bin", os.urandom(size))
    return buf.getvalue()


# -- mounts ---------------------------------------------------------------------------------


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def tmpfs(folder: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A filesystem of `size` (a full disk once that is used) at `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}" + (",ro" if read_only else ""), "tmpfs", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, timeout=30)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder`, as it is, on a read-only bind mount of itself."""
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,bind,ro", str(folder))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, timeout=30)


# -- a project that builds without a container -----------------------------------------------


def _config(index: LocalIndex, extra: str = "") -> str:
    return f"""
engine = "/nonexistent/docker"   # nothing here may need a container
default-targets = ["slim"]
{extra}
[index]
index-url = "{index.url}"
[targets.slim]
python-version = "3.11"
libc-version = "2.36"
builder-image = "{NO_IMAGE}"
final-image = "{NO_IMAGE}"
"""


def _lock(project: Path, files: dict[str, bytes]) -> None:
    """locks/slim.txt pinning each wheel (by file name) at its hash, as `lock` writes it."""
    pins = tuple(
        Pin(
            name=canonicalize_name(name.split("-")[0]), version="1.0", hashes=(f"sha256:{_sha(d)}",)
        )
        for name, d in sorted(files.items())
    )
    lock = LockFile(target="slim", target_description="test", inputs_digest="sha256:0", pins=pins)
    write(project / "locks" / "slim.txt", lock.render())


@pytest.fixture
def index(make_index: Callable[..., LocalIndex]) -> LocalIndex:
    idx: LocalIndex = make_index(default=False)
    idx.add_wheel("alpha", "1.0")
    return idx


def _project(project: Path, index: LocalIndex, files: dict[str, bytes], extra: str = "") -> None:
    for name, data in files.items():
        index.add_bytes(name, data)
    write(project / "wheelhouse.toml", _config(index, extra))
    write(project / "requirements.in", "".join(f"{n.split('-')[0]}\n" for n in files))
    _lock(project, files)


def _clean(res: subprocess.CompletedProcess[str], code: int) -> str:
    """The error output of a run that failed as it should: that code, one message, no
    traceback (and not click's "Aborted!")."""
    assert res.returncode == code, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "Aborted!" not in res.stderr, res.stderr
    return res.stderr


def _files(folder: Path) -> list[str]:
    """Every file under `folder` but the folder's run lock (simple/.index.lock), which is
    there by design, empty, and never indexed or served."""
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != LOCK_FILE
    )


# -- full disks -----------------------------------------------------------------------------


def test_a_full_cache_disk_names_the_cache_and_keeps_no_partial_file(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    big = _big_wheel("gamma", 3 << 20)
    _project(project, index, {ALPHA: wheel_bytes("alpha", "1.0"), GAMMA: big})
    with tmpfs(wh.cache_dir, "2m"):
        err = _clean(wh("build", check=False), 20)
        assert f"(in the cache, {wh.cache_dir}): no space left on the device" in err
        assert "filesystem error" in err and "cache prune" in err and "WHEELHOUSE_CACHE_DIR" in err
        assert not list((wh.cache_dir / "store/tmp").iterdir())  # the partial download went
        assert not [f for f in _files(wh.cache_dir / "store/blobs") if "gamma" in f]
        assert not (project / "wheelhouse/slim/manifest.json").exists()
    wh("build")  # with room: the same command goes through
    assert (project / "wheelhouse/slim" / GAMMA).read_bytes() == big


def test_a_full_output_disk_names_the_file_and_leaves_the_old_folder(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    _project(
        project, index, {ALPHA: wheel_bytes("alpha", "1.0"), GAMMA: _big_wheel("gamma", 3 << 20)}
    )
    output = project / "wheelhouse"
    with tmpfs(output, "2m"):
        err = _clean(wh("build", check=False), 20)
        assert f"{output / 'slim' / GAMMA}: no space left on the device" in err
        assert "free space on that disk" in err
        # whole files or none: no temp file, no half wheel, no manifest naming what is not there
        assert _files(output / "slim") == [ALPHA]
    index.clear_requests()
    wh("build")  # the wheels were kept in the cache: nothing is downloaded again
    assert index.file_requests() == []
    assert {ALPHA, GAMMA} <= set(_files(output / "slim"))


def _limited(wh: Wheelhouse, *args: str, limit: int) -> subprocess.CompletedProcess[str]:
    """`wheelhouse ARGS` where no file may grow past `limit` bytes (`ulimit -f`: a write
    past it fails with EFBIG, as on a file system whose largest file is smaller)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # (preexec_fn: this test's process starts no thread that a fork could stop mid-lock)
    return subprocess.run(
        [sys.executable, "-P", "-m", "wheelhouse", *args],
        cwd=wh.project,
        env=wh.env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
    )


def test_a_file_size_limit_names_the_file_and_the_limit(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    """A wheel over `ulimit -f` (or a file system's largest file): exit 20 naming the
    file; then an index page: the same, and the next run repairs what was left."""
    _project(
        project, index, {ALPHA: wheel_bytes("alpha", "1.0"), GAMMA: _big_wheel("gamma", 3 << 20)}
    )
    err = _clean(_limited(wh, "build", "--no-index", limit=1 << 20), 20)
    assert "file too large for the file system, or over this process's limit" in err, err
    assert "ulimit -f unlimited" in err
    wh("build", "--no-index")
    simple = project / "wheelhouse" / "slim" / "simple"
    err = _clean(_limited(wh, "index", "--full", limit=200), 20)
    assert f"{simple}/" in err and "(ulimit -f)" in err
    wh("index")
    pages = (simple / "alpha" / "index.html").read_text(), (simple / "index.html").read_text()
    assert ALPHA in pages[0] and "gamma" in pages[1]


def test_a_full_disk_during_import_imports_nothing(wh: Wheelhouse, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    archive = _archive(tmp_path / "cache.tar.gz", {f"blobs/{_sha(data)}/{GAMMA}": data})
    with tmpfs(wh.cache_dir, "2m"):
        err = _clean(wh("cache", "import", str(archive), check=False), 20)
        assert f"(in the cache, {wh.cache_dir}): no space left on the device" in err
        assert not _files(wh.cache_dir / "store/blobs") and not _files(wh.cache_dir / "store/tmp")


# -- read-only folders ----------------------------------------------------------------------


def test_a_read_only_output_folder_names_it(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    _project(project, index, {ALPHA: wheel_bytes("alpha", "1.0")})
    output = project / "wheelhouse"
    with tmpfs(output, "1m", read_only=True):
        err = _clean(wh("build", check=False), 20)
        assert f"{output / 'slim'}: the filesystem is read-only" in err
        assert "make it writable" in err


def test_a_read_only_cache_serves_a_warm_build_and_names_itself_for_a_cold_one(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    alpha = wheel_bytes("alpha", "1.0")
    _project(project, index, {ALPHA: alpha})
    wh("build")
    stamp = (wh.cache_dir / "last-run.json").read_bytes()
    for p in (project / "wheelhouse").rglob("*"):
        if p.is_file():
            p.unlink()
    with read_only(wh.cache_dir):
        index.clear_requests()
        res = wh("build")  # everything it needs is in the cache: it only reads
        assert index.file_requests() == []
        manifest = json.loads((project / "wheelhouse/slim/manifest.json").read_text())
        assert [w["filename"] for w in manifest["wheels"]] == [ALPHA]
        assert "reused" in res.stdout or "cached" in res.stdout
        assert (wh.cache_dir / "last-run.json").read_bytes() == stamp  # not recorded
        # a pin the cache lacks must be stored: that fails, naming the cache
        _project(project, index, {ALPHA: alpha, GAMMA: wheel_bytes("gamma", "1.0")})
        err = _clean(wh("build", check=False), 20)
        assert f"(in the cache, {wh.cache_dir}): the filesystem is read-only" in err
        assert "WHEELHOUSE_CACHE_DIR" in err


def test_read_only_locks_and_index_folders_are_named(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    _project(project, index, {ALPHA: wheel_bytes("alpha", "1.0")}, extra='resolver = "uv"')
    (project / "locks/slim.txt").unlink()
    with tmpfs(project / "locks", "1m", read_only=True):
        err = _clean(wh("lock", check=False), 20)
        assert f"{project / 'locks/slim.txt'}: the filesystem is read-only" in err
    wh("lock")
    wh("build", "--no-index")
    with tmpfs(project / "wheelhouse/slim/simple", "1m", read_only=True):
        err = _clean(wh("index", check=False), 20)
        assert f"{project / 'wheelhouse/slim/simple'}/" in err and "read-only" in err


# -- files that are not UTF-8 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "command", "code"),
    [
        ("wheelhouse.toml", "targets", 3),
        ("requirements.in", "lock", 4),
        ("locks/slim.txt", "build", 4),
    ],
)
def test_a_file_that_is_not_utf8_names_the_byte(
    wh: Wheelhouse, project: Path, index: LocalIndex, file: str, command: str, code: int
) -> None:
    _project(project, index, {ALPHA: wheel_bytes("alpha", "1.0")})
    path = project / file
    data = path.read_bytes()
    path.write_bytes(data + b"# caf\xe9\n")  # latin-1, as an old editor saves it
    err = _clean(wh(command, check=False), code)
    assert f"{file}: not UTF-8 at byte {len(data) + 5}" in err and "UTF-8" in err


# -- wrong file types in the store -------------------------------------------------------------


def test_a_folder_where_a_blob_should_be_is_fetched_again_and_verify_drops_it(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    alpha = wheel_bytes("alpha", "1.0")
    _project(project, index, {ALPHA: alpha})
    wh("build")
    blob = wh.cache_dir / "store/blobs" / _sha(alpha)[:2] / _sha(alpha) / ALPHA
    blob.unlink()
    blob.mkdir()  # a folder in the file's place
    (project / "wheelhouse/slim" / ALPHA).unlink()
    index.clear_requests()
    wh("build")
    assert index.file_requests() == [ALPHA]  # fetched again, not a traceback
    assert blob.read_bytes() == alpha
    blob.unlink()
    blob.mkdir()
    other = wh.cache_dir / "store/blobs/ff" / ("f" * 64)
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"a file in a blob folder's place")
    res = wh("cache", "verify")
    assert f"corrupt, dropped: {_sha(alpha)}: {ALPHA} is a folder, not a file" in res.stdout
    assert f"corrupt, dropped: blobs/ff/{'f' * 64}: a file where a folder should be" in res.stdout
    assert not blob.parent.exists() and not other.exists()


# -- cache import: truncated, and bombs ------------------------------------------------------


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    manifest = json.dumps({"format": 1, "files": {n: _sha(d) for n, d in files.items()}})
    with tarfile.open(path, "w:gz") as tf:
        for name, data in [("manifest.json", manifest.encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_a_truncated_archive_says_where_it_ends(wh: Wheelhouse, tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    name = f"blobs/{_sha(data)}/{GAMMA}"
    whole = _archive(tmp_path / "whole.tar.gz", {name: data}).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])  # a CI cache restore cut off half way
    err = _clean(wh("cache", "import", str(cut), check=False), 4)
    assert f"{cut}: truncated or corrupt at member {name!r}" in err
    assert "nothing was imported" in err
    assert not _files(wh.cache_dir / "store/blobs")


def test_a_gzip_bomb_never_stages_more_than_the_limit(wh: Wheelhouse, tmp_path: Path) -> None:
    zeros = bytes(1 << 20)  # eight members of a MiB of zeros: 8 MiB from a few KiB
    files = {f"blobs/{_sha(zeros + bytes([i]))}/{GAMMA}": zeros + bytes([i]) for i in range(8)}
    bomb = _archive(tmp_path / "bomb.tar.gz", files)
    # a disk just above the limit: staging past the limit would fill it (exit 20, not 4)
    with tmpfs(wh.cache_dir, "5m"):
        err = _clean(wh("cache", "import", str(bomb), check=False), 4)
        assert "times its compressed size (a compression bomb?)" in err and "--max-ratio" in err
        raised = ["--max-ratio", "100000", "--max-size", "4M"]
        err = _clean(wh("cache", "import", *raised, str(bomb), check=False), 4)
        assert f"unpacks to more than {4 << 20} bytes" in err and "nothing was imported" in err
        assert not _files(wh.cache_dir / "store/blobs") and not _files(wh.cache_dir / "store/tmp")
    # raised far enough, the same archive is imported
    res = wh("cache", "import", "--max-ratio", "100000", "--max-size", "1G", str(bomb))
    assert "imported" in res.stdout and "8 files" in res.stdout


# -- a failed upload keeps the wheel -----------------------------------------------------------


def test_a_failed_upload_keeps_the_wheel_and_the_next_run_uploads_it(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = MotoServer(tmp_path / "moto.log")
    try:
        bucket = server.bucket()
        wheels = {ALPHA: wheel_bytes("alpha", "1.0"), GAMMA: wheel_bytes("gamma", "1.0")}
        store = f'[store]\nurl = "s3://{bucket}/team"\nendpoint-url = "{server.url}"\ntimeout = 1\n'
        _project(project, index, wheels, extra=store)
        wh.env.update(S3_ENV)
        # the store answers the build's lookups, then stops: the moment planning asks the
        # index (before any download), so every upload of this run meets a stopped server
        armed = [True]

        def pausing(render: Callable[[str], str]) -> Callable[[str], str]:
            def page(project_name: str) -> str:
                if armed[0]:
                    server.pause()
                return render(project_name)

            return page

        monkeypatch.setattr(index, "project_json", pausing(index.project_json))
        monkeypatch.setattr(index, "project_html", pausing(index.project_html))
        res = wh("build")  # the wheels were fetched fine: the build succeeds
        armed[0] = False
        assert "2 objects not uploaded" in res.stderr and "cannot reach" in res.stderr
        assert "the next build with the store uploads them" in res.stderr
        assert "pending uploads: 2" in wh("cache", "stats").stdout
        assert {ALPHA, GAMMA} <= set(_files(project / "wheelhouse/slim"))
        server.resume()
        assert not server.keys(bucket)  # nothing went up
        index.clear_requests()
        res = wh("build")
        assert index.file_requests() == []  # kept in the cache: not downloaded again
        assert "2 left pending by earlier runs" in res.stdout
        keys = server.keys(bucket)
        for name, data in wheels.items():
            assert keys[f"team/blobs/{_sha(data)}"] == data, name
        assert "pending uploads" not in wh("cache", "stats").stdout
    finally:
        server.close()


# -- the index refuses unsafe and corrupt wheels ---------------------------------------------------


def _with_member(name: str, data: bytes) -> bytes:
    buf = io.BytesIO(wheel_bytes("gamma", "1.0"))
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _crc_broken() -> bytes:
    payload = b"PAYLOAD" + os.urandom(2000)
    data = _with_member("gamma/data.bin", payload)
    at = data.index(payload[100:120])
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("wheel", "text"),
    [
        (
            lambda: _with_member("../../escape.py", b"import os\n"),
            "has an unsafe member '../../escape.py'",
        ),
        (_crc_broken, "has a corrupt member gamma/data.bin (CRC mismatch)"),
    ],
    ids=["traversal", "crc"],
)
def test_index_refuses_unsafe_and_corrupt_wheels(
    wh: Wheelhouse, project: Path, index: LocalIndex, wheel: Callable[[], bytes], text: str
) -> None:
    _project(project, index, {ALPHA: wheel_bytes("alpha", "1.0")})
    folder = project / "wheelhouse/slim"
    folder.mkdir(parents=True)
    (folder / ALPHA).write_bytes(wheel_bytes("alpha", "1.0"))
    (folder / GAMMA).write_bytes(wheel())
    err = _clean(wh("index", "-t", "slim", check=False), 13)
    assert f"{folder / GAMMA}: {text}" in err
    assert "nothing was published" in err
    assert not (folder / "simple").exists() or not list((folder / "simple").rglob("index.html"))


def test_index_refuses_a_wheel_name_that_is_not_utf8(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    """A name of bytes that are not UTF-8 parses as a wheel's, but no page can link it."""
    _project(project, index, {ALPHA: wheel_bytes("alpha", "1.0")})
    folder = project / "wheelhouse/slim"
    folder.mkdir(parents=True)
    (folder / ALPHA).write_bytes(wheel_bytes("alpha", "1.0"))
    wh("index", "-t", "slim")
    odd = os.fsdecode(b"alpha-1.0-py3-none-\xff.whl")
    (folder / odd).write_bytes(wheel_bytes("alpha", "1.0"))
    err = _clean(wh("index", "-t", "slim", check=False), 13)
    assert "is not a valid wheel file name (bytes that are not UTF-8)" in err
    assert "nothing was published" in err
    (folder / odd).unlink()
    wh("index", "-t", "slim")
