"""Faults a user can cause or meet, function by function (no engine, no network, no
servers): the translation of a filesystem's refusal into FilesystemError, files that are
not UTF-8, wrong file types in the store, the bounds and the truncation of `cache import`,
pending uploads of the layered store, and the one wheel inspection's refusals.

The same faults through the real CLI (full and read-only filesystems, moto, the index
writer) are in tests/integration/test_faults_errors.py."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures_index import wheel_bytes
from packaging.utils import canonicalize_name

from wheelhouse.build.compile import check_wheel
from wheelhouse.config import load
from wheelhouse.errors import (
    BuildError,
    ConfigError,
    FilesystemError,
    InputError,
    StoreAccessError,
    StoreError,
    filesystem_error,
    system_error,
)
from wheelhouse.fsutil import writing
from wheelhouse.index import WheelRefused, inspect_wheel
from wheelhouse.lock import lockfile
from wheelhouse.lock.inputs import check_inputs
from wheelhouse.lock.lockfile import Pin
from wheelhouse.store import BuildRecord, SdistRef, Store
from wheelhouse.store.archive import ImportLimits, import_archive
from wheelhouse.store.layered import LayeredStore, pending_uploads
from wheelhouse.store.maintain import stats, verify
from wheelhouse.tomltable import read_toml

WHEEL = "gamma-1.0-py3-none-any.whl"
GAMMA = wheel_bytes("gamma", "1.0")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- a filesystem's refusal -------------------------------------------------------------


def test_a_write_that_meets_a_full_disk_names_what_was_written(tmp_path: Path) -> None:
    # /dev/full: every write() fails with ENOSPC and names no file, as a full disk does
    with (
        pytest.raises(OSError) as info,
        writing(tmp_path / "out.whl"),
        Path("/dev/full").open("wb", buffering=0) as f,
    ):
        f.write(b"x")
    assert info.value.errno == errno.ENOSPC
    err = filesystem_error(info.value, cache_dir=tmp_path / "cache")
    assert isinstance(err, FilesystemError) and err.exit_code == 20
    assert err.message == f"{tmp_path / 'out.whl'}: no space left on the device"
    assert err.hint is not None and "free space on that disk" in err.hint


def test_a_refusal_in_the_cache_says_how_to_move_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # a rename or a copy names its source first and its destination second
    err = filesystem_error(
        OSError(errno.EROFS, "Read-only file system", "/elsewhere/src", None, str(cache / "x")),
        cache_dir=cache,
    )
    assert err is not None
    assert err.message == f"{cache / 'x'} (in the cache, {cache}): the filesystem is read-only"
    assert err.hint is not None and "WHEELHOUSE_CACHE_DIR" in err.hint and "writable" in err.hint
    full = filesystem_error(OSError(errno.ENOSPC, "No space", str(cache / "y")), cache_dir=cache)
    assert full is not None and full.hint is not None and "cache prune" in full.hint


def test_an_oserror_of_no_filesystem_is_not_translated() -> None:
    assert filesystem_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None
    assert filesystem_error(OSError("no errno, no path")) is None


def test_a_write_past_the_file_size_limit_names_the_file_and_the_limit(tmp_path: Path) -> None:
    """EFBIG (`ulimit -f`, or a file system's largest file) from a write(), which names no
    file, and an I/O error of a failing disk: both name what was being written."""
    for code, reason in ((errno.EFBIG, "(ulimit -f)"), (errno.EIO, "input/output error")):
        with pytest.raises(OSError) as info, writing(tmp_path / "page.html"):
            raise OSError(code, os.strerror(code))
        err = filesystem_error(info.value)
        assert isinstance(err, FilesystemError) and err.exit_code == 20
        assert err.message.startswith(f"{tmp_path / 'page.html'}: ") and reason in err.message
    big = filesystem_error(OSError(errno.EFBIG, "File too large"))
    assert big is not None and "(ulimit -f)" in big.message
    assert big.hint is not None and "ulimit -f unlimited" in big.hint


def test_any_other_system_error_is_a_message_and_exit_1_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The CLI's last word on an OSError no layer translated: the system's words."""
    from click.testing import CliRunner

    import wheelhouse.config
    from wheelhouse.cli import main

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    monkeypatch.setattr(wheelhouse.config, "load", broken)
    result = CliRunner().invoke(main, ["-C", str(tmp_path), "targets"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert (
        "wheelhouse: error: the operating system reported: Transport endpoint is not "
        "connected (errno 107)" in result.output
    )
    assert "rerun with -v" in result.output
    assert system_error(OSError("a library's own")).message == "OSError: a library's own"


def test_an_error_no_layer_expected_is_one_line_exit_70_and_a_traceback_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bug (ours or a library's) still reaches the user as one line saying so, exit 70,
    with the traceback kept in a file for the report; click's own exits pass through."""
    from click.testing import CliRunner

    import wheelhouse.config
    from wheelhouse.cli import main

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a library gave up")

    monkeypatch.setattr(wheelhouse.config, "load", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # (read TMPDIR again)
    try:
        result = CliRunner().invoke(main, ["-C", str(tmp_path), "targets"])
    finally:
        tempfile.tempdir = None
    assert result.exit_code == 70, result.output
    assert "wheelhouse: internal error: RuntimeError: a library gave up" in result.output
    assert "Traceback" not in result.output
    [kept] = tmp_path.glob("wheelhouse-error-*.txt")
    assert f"please report it with the traceback in {kept}" in result.output
    trace = kept.read_text()
    assert trace.startswith("Traceback") and "in broken" in trace
    # where no file can be written, the traceback is shown after all
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    result = CliRunner().invoke(main, ["-C", str(tmp_path), "targets"])
    assert result.exit_code == 70 and "in broken" in result.output
    assert "with the traceback above" in result.output
    # usage errors, --help and the like stay click's
    assert CliRunner().invoke(main, ["targets", "--no-such-option"]).exit_code == 2
    assert CliRunner().invoke(main, ["targets", "--help"]).exit_code == 0


def test_an_output_closed_early_ends_quietly(tmp_path: Path) -> None:
    """`wheelhouse targets | head -1`: click's quiet exit 1, not the system's words (a
    reader that left is no error to report) and no traceback."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "wheelhouse", "-C", str(tmp_path), "targets"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert done.returncode == 1 and done.stderr == ""


# -- not UTF-8 ------------------------------------------------------------------------------

LATIN1 = "caf\xe9".encode("latin-1")


def test_config_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    text = b'default-targets = ["slim"]\n# ' + LATIN1 + b"\n"
    (tmp_path / "wheelhouse.toml").write_bytes(text)
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    offset = text.index(b"\xe9")
    assert info.value.message == f"{tmp_path / 'wheelhouse.toml'}: not UTF-8 at byte {offset}"
    assert info.value.exit_code == 3


def test_recipe_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "demo.toml"
    path.write_bytes(b"[build]\n# " + LATIN1)  # the 14th byte is not UTF-8
    with pytest.raises(ConfigError) as info:
        read_toml(path, "recipes/demo.toml")
    assert info.value.message == "recipes/demo.toml: not UTF-8 at byte 13"


def test_requirements_that_are_not_utf8_name_the_byte(tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_bytes(b"flask\n# " + LATIN1 + b"\n")
    with pytest.raises(InputError) as info:
        check_inputs((tmp_path / "requirements.in",), tmp_path)
    assert info.value.message == "requirements.in: not UTF-8 at byte 11"
    assert info.value.exit_code == 4
    (tmp_path / "pyproject.toml").write_bytes(b"[project]\nname = '" + LATIN1 + b"'\n")
    with pytest.raises(InputError) as info:
        check_inputs((tmp_path / "pyproject.toml",), tmp_path)
    assert info.value.message == "pyproject.toml: not UTF-8 at byte 21"


def test_a_lock_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "slim.txt"
    path.write_bytes(b"# target: slim\n" + LATIN1 + b"==1.0\n")
    with pytest.raises(InputError) as info:
        lockfile.read(path)
    assert info.value.message == f"{path}: not UTF-8 at byte 18"
    assert info.value.hint is not None and "wheelhouse lock" in info.value.hint
    # writing a new lock over it compares bytes, not text: no decode error there
    assert lockfile.write_atomic(path, "# target: slim\n")
    assert lockfile.read(path) is not None


# -- wrong file types in the store ----------------------------------------------------------


def _put(store: Store, data: bytes = GAMMA, name: str = WHEEL) -> str:
    src = store.tempdir("test-") / "incoming"
    src.write_bytes(data)
    return store.put(src, name).sha256


def test_a_folder_where_the_blob_file_should_be_is_a_miss_and_dropped(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sha = _sha(GAMMA)
    (store.blob_folder(sha) / WHEEL).mkdir(parents=True)
    assert store.get(sha) is None
    assert not store.blob_folder(sha).exists()
    assert _put(store) == sha and store.get(sha) is not None  # stored again


def test_a_file_where_the_blob_folder_should_be_is_a_miss_and_dropped(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sha = _sha(GAMMA)
    store.blob_folder(sha).parent.mkdir(parents=True)
    store.blob_folder(sha).write_bytes(GAMMA)
    assert store.get(sha) is None
    assert _put(store) == sha
    blob = store.get(sha)
    assert blob is not None and blob.path.read_bytes() == GAMMA


def test_a_file_where_the_blobs_prefix_folder_should_be_is_replaced(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sha = _sha(GAMMA)
    store.blob_folder(sha).parent.write_bytes(b"x")
    assert store.get(sha) is None
    assert _put(store) == sha and store.get(sha) is not None


def _record(sha: str, key: str = "a" * 64) -> BuildRecord:
    sdist = SdistRef(filename="gamma-1.0.tar.gz", sha256="c" * 64)
    return BuildRecord(key=key, input_key=key, sha256=sha, filename=WHEEL, sdist=sdist)


def test_a_record_that_is_a_folder_is_a_miss_and_rewritten(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sha = _put(store)
    key = "a" * 64
    store.record_path("built", key).mkdir()
    store.record_path("pure", "c" * 64).mkdir()
    assert store.built(key) is None and store.pure("c" * 64) is None
    store.record_built(key, _record(sha))
    store.record_pure("c" * 64, key)
    hit = store.pure("c" * 64)
    assert hit is not None and hit.blob.sha256 == sha


def test_verify_reports_and_drops_every_wrong_type(tmp_path: Path) -> None:
    store = Store(tmp_path)
    good = _put(store)
    dir_blob = _sha(b"dir")
    (store.blob_folder(dir_blob) / WHEEL).mkdir(parents=True)
    file_folder = _sha(b"file")
    store.blob_folder(file_folder).parent.mkdir(parents=True, exist_ok=True)
    store.blob_folder(file_folder).write_bytes(b"file")
    (store.root / "blobs" / "zz").write_bytes(b"a stray file")
    store.record_path("built", "b" * 64).mkdir()
    report = verify(tmp_path)
    text = "\n".join(report.corrupt)
    assert f"{dir_blob}: {WHEEL} is a folder, not a file" in text
    assert f"blobs/{file_folder[:2]}/{file_folder}: a file where a folder should be" in text
    assert "blobs/zz: a file where a folder should be" in text
    assert f"built/{'b' * 64}.json: a folder where a record should be" in text
    assert len(report.corrupt) == 4
    assert sorted(p.name for p in (store.root / "blobs").glob("*/*")) == [good]
    assert not list((store.root / "built").iterdir())
    assert verify(tmp_path).corrupt == []


# -- cache import: bounded, and truncated archives -------------------------------------------


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    manifest = json.dumps({"format": 1, "files": {n: _sha(d) for n, d in files.items()}})
    with tarfile.open(path, "w:gz") as tf:
        for name, data in [("manifest.json", manifest.encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _nothing_imported(cache: Path) -> None:
    assert not [p for p in (cache / "store/blobs").rglob("*") if p.is_file()]
    assert not list((cache / "store/tmp").iterdir())  # the staging went too


def test_a_compression_bomb_is_refused_by_its_ratio(tmp_path: Path) -> None:
    zeros = bytes(64 << 20)
    archive = _archive(tmp_path / "bomb.tar.gz", {f"blobs/{_sha(zeros)}/{WHEEL}": zeros})
    assert archive.stat().st_size < (1 << 20)
    with pytest.raises(InputError) as info:
        import_archive(tmp_path / "cache", archive)
    assert "unpacks to more than 100 times its compressed size" in info.value.message
    assert info.value.hint is not None and "nothing was imported" in info.value.hint
    assert "--max-ratio" in info.value.hint
    _nothing_imported(tmp_path / "cache")


def test_an_archive_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # incompressible: the ratio is fine, the size is not
    archive = _archive(tmp_path / "big.tar.gz", {f"blobs/{_sha(data)}/{WHEEL}": data})
    with pytest.raises(InputError, match="unpacks to more than 2097152 bytes") as info:
        import_archive(tmp_path / "cache", archive, limits=ImportLimits(max_size=2 << 20))
    assert info.value.hint is not None and "--max-size" in info.value.hint
    _nothing_imported(tmp_path / "cache")
    report = import_archive(tmp_path / "cache", archive, limits=ImportLimits(max_size=4 << 20))
    assert report.blobs == 1


def test_a_tar_header_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # a pax header is read whole by tarfile: a huge one would be held in memory
    path = tmp_path / "pax.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("manifest.json")
        info.size, info.pax_headers = 2, {"comment": "a" * (20 << 20)}
        tf.addfile(info, io.BytesIO(b"{}"))
    limits = ImportLimits(max_ratio=1 << 30)  # not the ratio: the header's own size
    with pytest.raises(InputError, match="holds a tar header of more than"):
        import_archive(tmp_path / "cache", path, limits=limits)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_truncated_archive_says_where_and_that_nothing_was_imported(
    tmp_path: Path, cut: float
) -> None:
    first, second = os.urandom(1 << 20), os.urandom(1 << 20)
    names = [f"blobs/{_sha(d)}/{n}" for d, n in ((first, WHEEL), (second, "delta-1.0.tar.gz"))]
    whole = _archive(tmp_path / "whole.tar.gz", dict(zip(names, (first, second), strict=True)))
    data = whole.read_bytes()
    cut_short = tmp_path / "cut.tar.gz"
    cut_short.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(InputError) as info:
        import_archive(tmp_path / "cache", cut_short)
    member = names[0] if cut == 0.5 else names[1]
    assert f"truncated or corrupt at member {member!r}" in info.value.message
    assert info.value.hint is not None and "nothing was imported" in info.value.hint
    _nothing_imported(tmp_path / "cache")


def test_a_file_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.tar.gz"
    path.write_bytes(b"just some text, not an archive\n" * 100)
    with pytest.raises(InputError, match="truncated or corrupt before its first member"):
        import_archive(tmp_path / "cache", path)


# -- pending uploads ------------------------------------------------------------------------


class Remote:
    """A RemoteStore in memory whose uploads fail while `down` (as S3Store's do when the
    service is unreachable: StoreError) or with `denied` (StoreAccessError)."""

    url = "s3://bucket/team"

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.down = False
        self.denied = False
        self.attempts = 0
        self.on_corrupt: Callable[[str], None] = lambda what: None

    def _upload(self, key: str, value: Any) -> bool:
        self.attempts += 1
        if self.denied:
            raise StoreAccessError("PUT refused")
        if self.down:
            raise StoreError(f"PUT s3://bucket/team/{key}: cannot reach the service")
        new = key not in self.objects
        self.objects[key] = value
        return new

    def fetch_blob(self, sha256: str, tmpdir: Path) -> tuple[Path, str] | None:
        return None

    def distrust(self, kind: str, key: str) -> None:
        pass

    def has_blob(self, sha256: str) -> bool:
        return f"blobs/{sha256}" in self.objects

    def upload_blob(self, sha256: str, path: Path, filename: str) -> bool:
        return self._upload(f"blobs/{sha256}", path.read_bytes())

    def fetch_record(self, kind: str, key: str) -> dict[str, Any] | None:
        return None

    def upload_record(self, kind: str, key: str, record: dict[str, Any]) -> bool:
        return self._upload(f"{kind}/{key}.json", record)


def _wheel(store: Store, name: str, data: bytes) -> Path:
    src = store.tempdir("built-") / name
    src.write_bytes(data)
    return src


def test_a_failed_upload_keeps_the_wheel_and_the_next_run_uploads_it(tmp_path: Path) -> None:
    remote = Remote()
    remote.down = True
    store = LayeredStore(tmp_path, remote)
    blob = store.put(_wheel(store, WHEEL, GAMMA), WHEEL)
    store.record_built("a" * 64, _record(blob.sha256))
    store.record_pure("c" * 64, "a" * 64)
    # kept here; the remote failed once and was not asked again this run
    assert store.get_local(blob.sha256) is not None and store.built("a" * 64) is not None
    assert remote.attempts == 1
    assert store.stats.pending == [f"blob/{blob.sha256}", f"built/{'a' * 64}", f"pure/{'c' * 64}"]
    assert store.stats.upload_error is not None and "cannot reach" in store.stats.upload_error
    assert stats(tmp_path).pending_uploads == 3
    # the next run, with the service back: blobs first, then the records that name them
    remote.down = False
    again = LayeredStore(tmp_path, remote)
    again.retry_pending()
    assert list(remote.objects) == [
        f"blobs/{blob.sha256}",
        f"built/{'a' * 64}.json",
        f"pure/{'c' * 64}.json",
    ]
    assert again.stats.retried == 3 and again.stats.pending == []
    assert pending_uploads(again.root) == [] and stats(tmp_path).pending_uploads == 0


def test_a_pending_upload_still_failing_stays_pending(tmp_path: Path) -> None:
    remote = Remote()
    remote.down = True
    store = LayeredStore(tmp_path, remote)
    sha = store.put(_wheel(store, WHEEL, GAMMA), WHEEL).sha256
    again = LayeredStore(tmp_path, remote)
    again.retry_pending()
    assert again.stats.pending == [f"blob/{sha}"] and again.stats.retried == 0
    assert pending_uploads(tmp_path / "store") == [("blob", sha)]


def test_a_pending_blob_gone_from_the_cache_is_forgotten(tmp_path: Path) -> None:
    remote = Remote()
    remote.down = True
    store = LayeredStore(tmp_path, remote)
    sha = store.put(_wheel(store, WHEEL, GAMMA), WHEEL).sha256
    verify(tmp_path)  # whole: kept
    store.blob_folder(sha).joinpath(WHEEL).write_bytes(b"rotten")
    remote.down = False
    again = LayeredStore(tmp_path, remote)
    again.retry_pending()
    assert remote.objects == {} and pending_uploads(tmp_path / "store") == []


def test_refused_credentials_still_fail_but_keep_the_wheel_pending(tmp_path: Path) -> None:
    remote = Remote()
    remote.denied = True
    store = LayeredStore(tmp_path, remote)
    with pytest.raises(StoreAccessError):
        store.put(_wheel(store, WHEEL, GAMMA), WHEEL)
    assert store.get_local(_sha(GAMMA)) is not None
    assert pending_uploads(tmp_path / "store") == [("blob", _sha(GAMMA))]


# -- the one wheel inspection ----------------------------------------------------------------


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO(GAMMA)
    with zipfile.ZipFile(buf, "a", method) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, method)
    return buf.getvalue()


@pytest.mark.parametrize(
    "member", ["../evil.py", "gamma/../../evil.py", "/etc/evil", "gamma\\evil.py", "C:evil.py"]
)
def test_inspection_refuses_unsafe_members(tmp_path: Path, member: str) -> None:
    path = tmp_path / WHEEL
    path.write_bytes(_zip([(member, b"x = 1\n")]))
    with pytest.raises(WheelRefused, match="has an unsafe member") as info:
        inspect_wheel(path)
    assert repr(member) in info.value.message
    with pytest.raises(WheelRefused, match="unsafe member"):  # with a vouched digest too
        inspect_wheel(path, sha256=_sha(path.read_bytes()))


def _corrupt(data: bytes, marker: bytes) -> bytes:
    at = data.index(marker)
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("how", ["in memory", "vouched", "streamed"])
def test_inspection_refuses_crc_broken_members(
    tmp_path: Path, method: int, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"PAYLOAD" + os.urandom(4000)  # incompressible: its bytes are in the file
    data = _zip([("gamma/data.bin", payload)], method)
    path = tmp_path / WHEEL
    path.write_bytes(_corrupt(data, payload[100:120]))
    if how == "streamed":  # a wheel too big to read whole: zipfile's own testzip()
        monkeypatch.setattr("wheelhouse.index.wheelfile._READ_WHOLE", 100)
    vouched = _sha(path.read_bytes()) if how == "vouched" else None
    with pytest.raises(WheelRefused, match=r"has a corrupt member gamma/data.bin \(CRC"):
        inspect_wheel(path, sha256=vouched)
    path.write_bytes(data)  # the same wheel, whole
    assert inspect_wheel(path, sha256=_sha(data) if vouched else None).project == "gamma"


def test_inspection_refuses_a_member_longer_than_it_says(tmp_path: Path) -> None:
    data = bytearray(_zip([("gamma/zeros.bin", bytes(1 << 20))]))
    at = data.rindex(b"PK\x01\x02")  # the last central directory entry: the new member
    data[at + 24 : at + 28] = (1000).to_bytes(4, "little")  # its uncompressed size
    path = tmp_path / WHEEL
    path.write_bytes(bytes(data))
    with pytest.raises(WheelRefused, match=r"corrupt member gamma/zeros\.bin"):
        inspect_wheel(path)


def test_inspection_refuses_encrypted_members(tmp_path: Path) -> None:
    data = bytearray(_zip([("gamma/secret.py", b"x = 1\n")]))
    at = data.rindex(b"PK\x01\x02")  # the last central directory entry: the new member
    data[at + 8] |= 1  # its "encrypted" flag
    path = tmp_path / WHEEL
    path.write_bytes(bytes(data))
    with pytest.raises(WheelRefused, match=r"has an encrypted member 'gamma/secret\.py'"):
        inspect_wheel(path)


def test_build_checks_run_the_inspection(tmp_path: Path) -> None:
    path = tmp_path / WHEEL
    path.write_bytes(_zip([("../escape.py", b"x = 1\n")]))
    pin = Pin(name=canonicalize_name("gamma"), version="1.0")
    with pytest.raises(BuildError) as info:
        check_wheel(pin, path, None, tmp_path / "build.log")
    assert info.value.message.startswith(f"gamma==1.0: the built wheel {WHEEL} has an unsafe")
    assert info.value.hint is not None and str(tmp_path / "build.log") in info.value.hint
    path.write_bytes(GAMMA)
    check_wheel(pin, path, None, tmp_path / "build.log")
