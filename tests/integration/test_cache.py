"""`wheelhouse cache` without the engine: the CI cache key, what import refuses, prune,
verify and stats on a store filled through the Store API, store settings, and the
credential errors of the S3 store (against a moto server that checks credentials)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import sdist_bytes, wheel_bytes
from fixtures_s3 import S3_ENV, MotoServer
from packaging.utils import canonicalize_name

from wheelhouse.lock.lockfile import LockFile, Pin
from wheelhouse.store import BuildRecord, SdistRef, Store

GAMMA = wheel_bytes("gamma", "1.0")
DELTA = sdist_bytes("delta", "1.0")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lock(project: Path, target: str, pins: dict[str, bytes]) -> None:
    lock = LockFile(
        target=target,
        target_description="test",
        inputs_digest="sha256:0",
        pins=tuple(
            Pin(
                name=canonicalize_name(n),
                version="1.0",
                hashes=(f"sha256:{_sha(d)}",),
                source_build=n == "delta",
            )
            for n, d in sorted(pins.items())
        ),
    )
    write(project / "locks" / f"{target}.txt", lock.render())


CONFIG = """
default-targets = ["slim"]
[targets.slim]
python-version = "3.11"
builder-image = "builder:1"
final-image = "final:1"
[targets.other]
extends = "slim"
builder-image = "builder:1"
"""


@pytest.fixture
def keyed(wh: Wheelhouse, project: Path) -> Wheelhouse:
    write(project / "wheelhouse.toml", CONFIG)
    write(project / "requirements.in", "gamma\ndelta\n")
    _lock(project, "slim", {"gamma": GAMMA, "delta": DELTA})
    _lock(project, "other", {"gamma": GAMMA})
    return wh


def _key(wh: Wheelhouse) -> str:
    out = wh("cache", "key").stdout.strip()
    assert out.startswith("wheelhouse-slim-") and len(out.splitlines()) == 1
    return out


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# each change: (what, function(project)); the key must change for these...
CHANGES: dict[str, Callable[[Path], object]] = {
    "lock pin": lambda p: _lock(p, "slim", {"gamma": wheel_bytes("gamma", "1.0", requires=["x"]),
                                            "delta": DELTA}),
    "target config": lambda p: _edit(p / "wheelhouse.toml", 'final-image = "final:1"',
                                     'final-image = "final:1"\nbuild-env = { CFLAGS = "-O2" }'),
    "builder image": lambda p: _edit(p / "wheelhouse.toml", 'builder-image = "builder:1"\nfinal',
                                     'builder-image = "builder:2"\nfinal'),
    "Dockerfile.builder": lambda p: write(p / "Dockerfile.builder", "ARG BASE\nFROM $BASE\n"),
    "recipe in use": lambda p: write(p / "recipes/delta.toml", '[build]\napt = ["libfoo-dev"]\n'),
}  # fmt: skip
# ...and must not for these
UNRELATED: dict[str, Callable[[Path], object]] = {
    "recipe not in the lock": lambda p: write(p / "recipes/zeta.toml", '[build]\napt = ["x"]\n'),
    "another target": lambda p: _lock(p, "other", {"gamma": GAMMA, "delta": DELTA}),
    "another target's config": lambda p: _edit(
        p / "wheelhouse.toml", 'extends = "slim"', 'extends = "slim"\nrepair = true'
    ),
    "output folder": lambda p: _edit(p / "wheelhouse.toml", "default-targets", 'output = "o"\n'
                                     "default-targets"),
    "requirements comment": lambda p: write(p / "requirements.in", "# pinned\ngamma\ndelta\n"),
    "a recipe's comment": lambda p: None,
    "README": lambda p: write(p / "README.md", "hello\n"),
}  # fmt: skip


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_cache_key_changes_with_what_decides_the_store(
    keyed: Wheelhouse, project: Path, change: str
) -> None:
    before = _key(keyed)
    assert _key(keyed) == before  # stable
    CHANGES[change](project)
    after = _key(keyed)
    assert after != before, change


@pytest.mark.parametrize("change", sorted(UNRELATED))
def test_cache_key_ignores_unrelated_changes(keyed: Wheelhouse, project: Path, change: str) -> None:
    if change == "a recipe's comment":
        write(project / "recipes/delta.toml", '[build]\napt = ["libfoo-dev"]\n')
    before = _key(keyed)
    if change == "a recipe's comment":
        write(project / "recipes/delta.toml", '# why\n[build]\napt = [ "libfoo-dev" ]\n')
    else:
        UNRELATED[change](project)
    assert _key(keyed) == before, change


def test_cache_key_does_not_depend_on_the_checkout_path(
    keyed: Wheelhouse, project: Path, tmp_path: Path
) -> None:
    _edit(project / "wheelhouse.toml", "[targets.slim]\n", '[targets.slim]\nfind-links = ["fl"]\n')
    first = _key(keyed)
    moved = tmp_path / "elsewhere" / "checkout"
    moved.parent.mkdir()
    project.rename(moved)
    assert _key(Wheelhouse(moved, keyed.cache_dir)) == first
    # several targets: one key naming both
    both = Wheelhouse(moved, keyed.cache_dir)("cache", "key", "-t", "slim,other").stdout
    assert both.startswith("wheelhouse-slim+other-") and both.strip() != first


def test_cache_key_without_a_lock_is_an_input_error(wh: Wheelhouse, project: Path) -> None:
    write(project / "wheelhouse.toml", CONFIG)
    res = wh("cache", "key", check=False)
    assert res.returncode == 4 and "wheelhouse lock" in res.stderr


# -- a store filled through the API -------------------------------------------------------


def _fill(cache: Path) -> dict[str, str]:
    """Three blobs (gamma wheel, delta sdist, delta's built wheel) and delta's records."""
    store = Store(cache)
    out = {}
    for name, data in (
        ("gamma-1.0-py3-none-any.whl", GAMMA),
        ("delta-1.0.tar.gz", DELTA),
        ("delta-1.0-py3-none-any.whl", wheel_bytes("delta", "1.0")),
    ):
        tmp = store.tempdir("t-") / "f"
        tmp.write_bytes(data)
        out[name] = store.put(tmp, name).sha256
    key = "a" * 64
    store.record_built(
        key,
        BuildRecord(
            key=key,
            input_key=key,
            sha256=out["delta-1.0-py3-none-any.whl"],
            filename="delta-1.0-py3-none-any.whl",
            sdist=SdistRef(sha256=out["delta-1.0.tar.gz"], filename="delta-1.0.tar.gz"),
        ),
    )
    store.record_pure(out["delta-1.0.tar.gz"], key)
    return out


def _blob(cache: Path, sha: str) -> Path:
    return cache / "store/blobs" / sha[:2] / sha


def _age(cache: Path, sha: str, days: float) -> None:
    t = time.time() - days * 86400
    os.utime(_blob(cache, sha), (t, t))


def test_verify_drops_corrupt_entries_and_their_records(wh: Wheelhouse) -> None:
    shas = _fill(wh.cache_dir)
    built = shas["delta-1.0-py3-none-any.whl"]
    victim = _blob(wh.cache_dir, built) / "delta-1.0-py3-none-any.whl"
    victim.write_bytes(b"not a wheel")  # same size class, other bytes: a flipped disk
    res = wh("cache", "verify")
    assert f"corrupt, dropped: {built}" in res.stdout
    assert "dangling record, dropped: built/" + "a" * 64 in res.stdout
    assert "verified 3 entries: 1 corrupt" in res.stdout
    assert not _blob(wh.cache_dir, built).exists()
    assert _blob(wh.cache_dir, shas["gamma-1.0-py3-none-any.whl"]).is_dir()
    assert not list((wh.cache_dir / "store/pure").glob("*.json"))
    assert "0 corrupt" in wh("cache", "verify").stdout


def test_prune_by_age_and_by_size_least_recently_used_first(wh: Wheelhouse) -> None:
    shas = _fill(wh.cache_dir)
    gamma, sdist, built = (
        shas["gamma-1.0-py3-none-any.whl"],
        shas["delta-1.0.tar.gz"],
        shas["delta-1.0-py3-none-any.whl"],
    )
    _age(wh.cache_dir, built, 40)
    _age(wh.cache_dir, sdist, 10)
    _age(wh.cache_dir, gamma, 1)
    res = wh("cache", "prune", "--max-age", "30d")
    assert "pruned 1 entries" in res.stdout and "2 records" in res.stdout  # built + pure
    assert not _blob(wh.cache_dir, built).exists()
    assert _blob(wh.cache_dir, sdist).exists() and _blob(wh.cache_dir, gamma).exists()
    # by size: the least recently used (the sdist) goes first, the newest stays
    keep = len(GAMMA) + 100  # the wheel and its verification stamp
    res = wh("cache", "prune", "--max-size", str(keep))
    assert not _blob(wh.cache_dir, sdist).exists() and _blob(wh.cache_dir, gamma).exists()
    assert "kept 1 entries" in res.stdout
    bad = wh("cache", "prune", "--max-size", "lots", check=False)
    assert bad.returncode == 2 and "'lots' is not a size" in bad.stderr
    assert wh("cache", "prune", check=False).returncode == 2


def test_prune_waits_for_a_build_using_the_store(wh: Wheelhouse) -> None:
    """A build holds the store shared from planning to linking its folders; a prune that
    ran meanwhile would delete files the build is about to hard-link."""
    shas = _fill(wh.cache_dir)
    gamma = _blob(wh.cache_dir, shas["gamma-1.0-py3-none-any.whl"])
    cmd = [sys.executable, "-P", "-m", "wheelhouse", "cache", "prune", "--max-size", "0"]
    with Store(wh.cache_dir).in_use():  # what `wheelhouse build` holds
        prune = subprocess.Popen(
            cmd,
            cwd=wh.project,
            env=wh.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            prune.wait(timeout=3)
        assert gamma.is_dir()  # nothing pulled from under the build
    out, err = prune.communicate(timeout=60)
    assert prune.returncode == 0, err
    assert "pruned 3 entries" in out and not gamma.exists()


def test_stats_counts_entries_and_reads_the_last_run(wh: Wheelhouse) -> None:
    _fill(wh.cache_dir)
    res = wh("cache", "stats")
    assert "entries: 3 files, 1 build records" in res.stdout
    assert "last build: none recorded" in res.stdout
    write(wh.cache_dir / "last-run.json", json.dumps({"reused": 3, "cached": 1, "built": 1,
                                                      "downloaded": 0}))  # fmt: skip
    assert "hit rate 80% (3 reused, 1 cached, 0 downloaded, 1 built)" in wh("cache", "stats").stdout


# -- import refuses what it must -----------------------------------------------------------


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _manifest(files: dict[str, bytes]) -> tuple[tarfile.TarInfo, bytes]:
    doc = {"format": 1, "files": {n: _sha(d) for n, d in files.items()}}
    return _file("manifest.json", json.dumps(doc).encode())


@pytest.fixture
def empty_cache(wh: Wheelhouse) -> Iterator[Wheelhouse]:
    yield wh
    # whatever was refused, nothing entered the cache
    assert not list((wh.cache_dir / "store/blobs").rglob("*.whl"))
    assert not list((wh.cache_dir / "store/built").glob("*"))


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


GOOD = f"blobs/{_sha(GAMMA)}/gamma-1.0-py3-none-any.whl"
REFUSED: dict[str, tuple[list[tuple[tarfile.TarInfo, bytes | None]], int, str]] = {
    "traversal": ([_file("../../evil.whl", GAMMA)], 4, "escape the cache"),
    "absolute": ([_file("/tmp/evil.whl", GAMMA)], 4, "escape the cache"),
    "symlink": ([_link(GOOD, "/etc/passwd", tarfile.SYMTYPE)], 4, "not a regular file"),
    "hard link": ([_link(GOOD, "/etc/passwd", tarfile.LNKTYPE)], 4, "not a regular file"),
    "unknown member": ([_file("store/../x", GAMMA)], 4, "escape"),
    "stray file": ([_file("notes.txt", b"x")], 4, "unexpected member"),
    "blob hash": ([_file(f"blobs/{'0' * 64}/gamma-1.0-py3-none-any.whl", GAMMA)], 9, "sha256"),
    "bad file name": ([_file(f"blobs/{_sha(GAMMA)}/x.sh", GAMMA)], 4, "not a wheel"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_import_refuses_unsafe_or_altered_archives(
    empty_cache: Wheelhouse, tmp_path: Path, case: str
) -> None:
    members, code, text = REFUSED[case]
    files = {m[0].name: m[1] for m in members if m[1] is not None}
    archive = _archive(tmp_path / "a.tar.gz", [_manifest(files), _file(GOOD, GAMMA), *members])
    if case in ("blob hash", "bad file name"):
        archive = _archive(tmp_path / "a.tar.gz", [_manifest(files), *members])
    res = empty_cache("cache", "import", str(archive), check=False)
    assert res.returncode == code, res.stdout + res.stderr
    assert text in res.stderr and "nothing was imported" in res.stderr
    assert not (tmp_path / "evil.whl").exists() and not Path("/tmp/evil.whl").exists()


def test_import_checks_members_against_the_manifest(
    empty_cache: Wheelhouse, tmp_path: Path
) -> None:
    record = json.dumps({"sha256": _sha(GAMMA), "filename": "x"}).encode()
    name = f"built/{'b' * 64}.json"
    manifest = _manifest({GOOD: GAMMA, name: b"{}"})  # the record was altered after export
    archive = _archive(tmp_path / "a.tar.gz", [manifest, _file(GOOD, GAMMA), _file(name, record)])
    res = empty_cache("cache", "import", str(archive), check=False)
    assert res.returncode == 9 and name in res.stderr


# -- store settings and credentials ----------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "text"),
    [
        ('store = "https://bucket/x"', "expected an s3://bucket/prefix URL"),
        ('store = "s3://UPPER/x"', "not a valid bucket name"),
        ('store = "s3://ok-bucket/a/../b"', "'..' part"),
        ('[store]\nurl = "s3://ok-bucket"\nendpoint-url = "ftp://x"', "store.endpoint-url"),
        ('[store]\nurl = "s3://ok-bucket"\ntimeot = 3', "unknown key 'store.timeot'"),
        ('[store]\nendpoint-url = "http://127.0.0.1:1"', "store: missing 'url'"),
    ],
)
def test_bad_store_settings_are_config_errors(
    wh: Wheelhouse, project: Path, setting: str, text: str
) -> None:
    write(project / "wheelhouse.toml", setting + "\n")
    res = wh("cache", "key", check=False)
    assert res.returncode == 3 and text in res.stderr, res.stderr


def test_missing_boto3_names_the_extra(keyed: Wheelhouse, project: Path, tmp_path: Path) -> None:
    fake = write(tmp_path / "no-boto/boto3/__init__.py", "raise ImportError('no boto3 here')\n")
    env = {"PYTHONPATH": str(fake.parent.parent), **S3_ENV}
    res = keyed("--store", "s3://some-bucket/x", "build", check=False, env=env)
    assert res.returncode == 10 and "pip install 'wheelhouse[s3]'" in res.stderr


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server that checks every request's credentials (and knows none)."""
    server = MotoServer(tmp_path_factory.mktemp("moto-strict") / "log", check_credentials=True)
    yield server
    server.close()


@pytest.mark.parametrize("command", ["build", "publish"])
def test_bad_credentials_fail_clearly_without_the_secret(
    keyed: Wheelhouse, project: Path, strict_s3: MotoServer, command: str
) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETMARKER"
    env = {**S3_ENV, "AWS_SECRET_ACCESS_KEY": secret, "AWS_ENDPOINT_URL": strict_s3.url}
    if command == "build":
        args = ["-v", "--store", "s3://team-wheels/ci", "build"]
    else:
        write(project / "wheelhouse/slim/simple/index.html", "<html></html>")
        args = ["-v", "publish", "-t", "slim", "s3://team-wheels/pub"]
    res = keyed(*args, check=False, env=env)
    assert res.returncode == 15, res.stdout + res.stderr
    assert "refused the request (InvalidAccessKeyId)" in res.stderr
    assert "s3://team-wheels/" in res.stderr and "AWS_ACCESS_KEY_ID" in res.stderr
    assert secret not in res.stdout + res.stderr
    assert "Traceback" not in res.stderr
