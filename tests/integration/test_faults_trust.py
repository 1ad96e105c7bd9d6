"""Trusted build records without the engine: poisoned archives, poisoned objects in an S3
bucket (moto's server), records altered in the local store, and the key setup.

The poison is self-consistent throughout: every hash in an archive's manifest is right,
every blob is under its own sha256 with a wheel's name, and the build record maps a build
key (and the pure record delta's sdist) to a wheel that is not what delta builds into.
Only the signature can tell, so each case differs in that alone: none, a stranger's, a
trusted key's over other content, or one made for another key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse, write
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fixtures_engine import RecordingBinary
from fixtures_index import LocalIndex, sdist_bytes, wheel_bytes
from fixtures_s3 import S3_ENV, MotoServer, plant_build

from wheelhouse.lock.lockfile import LockFile, Pin
from wheelhouse.store import BuildRecord, SdistRef, Store
from wheelhouse.store.signing import Keyring, key_id, new_private_pem

GAMMA = wheel_bytes("gamma", "1.0")
DELTA = sdist_bytes("delta", "1.0")
HONEST = wheel_bytes("delta", "1.0")
EVIL = wheel_bytes("delta", "1.0", requires=["evil-payload"])  # the same name, other bytes
WHEEL = "delta-1.0-py3-none-any.whl"
SDIST = "delta-1.0.tar.gz"
KEY = "c" * 64  # the build key the records are stored under
OTHER_KEY = "d" * 64


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _built(wheel: bytes) -> dict[str, Any]:
    record = BuildRecord(
        key=KEY,
        input_key=KEY,
        sha256=_sha(wheel),
        filename=WHEEL,
        sdist=SdistRef(filename=SDIST, sha256=_sha(DELTA)),
        target="slim",
    )
    return record.to_json()


# -- the poison: (built record, pure record) as each case signs them ----------------------

Poison = Callable[[Keyring, Keyring], tuple[dict[str, Any], dict[str, Any]]]


def _unsigned(trusted: Keyring, stranger: Keyring) -> tuple[dict[str, Any], dict[str, Any]]:
    return _built(EVIL), {"key": KEY}


def _stranger(trusted: Keyring, stranger: Keyring) -> tuple[dict[str, Any], dict[str, Any]]:
    pure = stranger.seal("pure", _sha(DELTA), {"key": KEY})
    return stranger.seal("built", KEY, _built(EVIL)), pure


def _altered(trusted: Keyring, stranger: Keyring) -> tuple[dict[str, Any], dict[str, Any]]:
    built = trusted.seal("built", KEY, _built(HONEST))
    built["sha256"] = _sha(EVIL)  # after signing
    return built, trusted.seal("pure", _sha(DELTA), {"key": KEY})


def _moved(trusted: Keyring, stranger: Keyring) -> tuple[dict[str, Any], dict[str, Any]]:
    # a genuine record of another key (another target's build, say), put under this one
    return trusted.seal("built", OTHER_KEY, _built(EVIL)), trusted.seal(
        "pure", _sha(DELTA), {"key": KEY}
    )


# case -> (how it is signed, which record is refused, why)
CASES: dict[str, tuple[Poison, str, str]] = {
    "unsigned": (_unsigned, "pure", "unsigned"),
    "unknown signer": (_stranger, "pure", "signed by an unknown key {stranger}"),
    "altered after signing": (_altered, "built", "altered after it was signed (key {trusted})"),
    "moved to another key": (_moved, "built", "altered after it was signed (key {trusted})"),
}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Keyring, Keyring]:
    """A colleague's key (trusted by the project) and a stranger's (trusted by nobody)."""
    return Keyring(tmp_path / "colleague"), Keyring(tmp_path / "stranger")


def _why(case: str, keys: tuple[Keyring, Keyring]) -> tuple[str, str]:
    _, refused, why = CASES[case]
    return refused, why.format(trusted=keys[0].key_id(), stranger=keys[1].key_id())


CONFIG = """
default-targets = ["slim"]
[trust]
trusted-keys = ["{trusted}"]
[targets.slim]
python-version = "3.11"
builder-image = "builder:1"
final-image = "final:1"
"""


@pytest.fixture
def team(wh: Wheelhouse, project: Path, keys: tuple[Keyring, Keyring]) -> Wheelhouse:
    """A project that trusts the colleague's key (and, as always, its own)."""
    write(project / "wheelhouse.toml", CONFIG.format(trusted=keys[0].public_key()))
    return wh


def _blobs(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "store/blobs").glob("*/*"))


def _records(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache / "store")) for p in (cache / "store").glob("*/*.json"))


# -- cache import ---------------------------------------------------------------------------


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    """A self-consistent archive: the manifest lists every member with its right sha256."""
    manifest = {"format": 1, "targets": ["slim"], "files": {n: _sha(d) for n, d in files.items()}}
    with tarfile.open(path, "w:gz") as tf:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _poisoned_archive(path: Path, built: dict[str, Any], pure: dict[str, Any]) -> Path:
    return _archive(
        path,
        {
            f"blobs/{_sha(DELTA)}/{SDIST}": DELTA,
            f"blobs/{_sha(EVIL)}/{WHEEL}": EVIL,
            f"built/{KEY}.json": json.dumps(built).encode(),
            f"pure/{_sha(DELTA)}.json": json.dumps(pure).encode(),
        },
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_refuses_a_poisoned_archive_whole(
    team: Wheelhouse, tmp_path: Path, keys: tuple[Keyring, Keyring], case: str
) -> None:
    built, pure = CASES[case][0](*keys)
    archive = _poisoned_archive(tmp_path / "poison.tar.gz", built, pure)
    res = team("cache", "import", str(archive), check=False)
    assert res.returncode == 18, res.stdout + res.stderr
    refused, why = _why(case, keys)
    member = f"built/{KEY}.json" if refused == "built" else f"pure/{_sha(DELTA)}.json"
    assert f"{member}: {why}" in res.stderr
    assert "nothing was imported" in res.stderr and "Traceback" not in res.stderr
    assert _blobs(team.cache_dir) == [] and _records(team.cache_dir) == []


def test_import_can_drop_the_untrusted_records_and_keep_the_files(
    team: Wheelhouse, tmp_path: Path, keys: tuple[Keyring, Keyring]
) -> None:
    archive = _poisoned_archive(tmp_path / "poison.tar.gz", *_stranger(*keys))
    res = team("cache", "import", "--drop-untrusted", str(archive))
    assert "2 files, 0 build records" in res.stdout
    stranger = keys[1].key_id()
    assert f"not imported: built/{KEY}.json: signed by an unknown key {stranger}" in res.stderr
    assert f"not imported: pure/{_sha(DELTA)}.json" in res.stderr
    assert _records(team.cache_dir) == []  # the files are only ever used by their sha256
    assert _blobs(team.cache_dir) == sorted([_sha(DELTA), _sha(EVIL)])


def test_import_takes_records_a_trusted_builder_signed(
    team: Wheelhouse, tmp_path: Path, keys: tuple[Keyring, Keyring]
) -> None:
    colleague = keys[0]
    built = colleague.seal("built", KEY, _built(HONEST))
    pure = colleague.seal("pure", _sha(DELTA), {"key": KEY})
    files = {
        f"blobs/{_sha(DELTA)}/{SDIST}": DELTA,
        f"blobs/{_sha(HONEST)}/{WHEEL}": HONEST,
        f"built/{KEY}.json": json.dumps(built).encode(),
        f"pure/{_sha(DELTA)}.json": json.dumps(pure).encode(),
    }
    res = team("cache", "import", str(_archive(tmp_path / "a.tar.gz", files)))
    assert "2 files, 1 build records" in res.stdout
    # kept as the colleague signed them, and what a build here finds for delta's sdist
    assert json.loads((team.cache_dir / f"store/built/{KEY}.json").read_text()) == built
    store = Store(team.cache_dir, Keyring(team.cache_dir, _trust(colleague)))
    hit = store.pure(_sha(DELTA))
    assert hit is not None and hit.blob.sha256 == _sha(HONEST)
    # and a machine that does not trust the colleague finds nothing
    assert Store(team.cache_dir).pure(_sha(DELTA)) is None


def _trust(*keyrings: Keyring) -> Any:
    from wheelhouse.config import TrustSettings

    return TrustSettings(trusted_keys=tuple(k.public_key() for k in keyrings))


# -- the local store --------------------------------------------------------------------------


def _put(store: Store, data: bytes, name: str) -> str:
    src = store.tempdir("t-") / "f"
    src.write_bytes(data)
    return store.put(src, name).sha256


def test_records_altered_in_the_local_store_are_misses_and_verify_drops_them(
    wh: Wheelhouse,
) -> None:
    store = Store(wh.cache_dir)  # this machine's own key, as the CLI below uses it
    honest, evil = _put(store, HONEST, WHEEL), _put(store, EVIL, WHEEL)
    sdist = _put(store, DELTA, SDIST)
    store.record_built(KEY, BuildRecord.from_json(_built(HONEST)))  # type: ignore[arg-type]
    store.record_pure(sdist, KEY)
    hit = store.pure(sdist)
    assert hit is not None and hit.blob.sha256 == honest
    path = store.record_path("built", KEY)
    doc = json.loads(path.read_text())
    doc["sha256"] = evil  # someone with write access to the cache, keeping the signature
    path.write_text(json.dumps(doc))
    assert store.built(KEY) is None and store.pure(sdist) is None  # a miss: rebuilt
    # a record of an older wheelhouse (no signature) is a miss too, not an error
    store.put_record("built", OTHER_KEY, _built(HONEST))
    assert store.built(OTHER_KEY) is None
    res = wh("cache", "verify")
    own = Keyring(wh.cache_dir).key_id()
    assert (
        f"untrusted record, dropped: built/{KEY}.json: altered after it was signed (key {own})"
        in res.stdout
    )
    assert f"untrusted record, dropped: built/{OTHER_KEY}.json: unsigned" in res.stdout
    assert f"dangling record, dropped: pure/{sdist}.json" in res.stdout
    assert _records(wh.cache_dir) == []
    assert _blobs(wh.cache_dir) == sorted([honest, evil, sdist])  # whole files stay


# -- the S3 store ------------------------------------------------------------------------------


def _lock(project: Path) -> None:
    pins = (
        Pin(name="delta", version="1.0", hashes=(f"sha256:{_sha(DELTA)}",), source_build=True),  # type: ignore[arg-type]
        Pin(name="gamma", version="1.0", hashes=(f"sha256:{_sha(GAMMA)}",)),  # type: ignore[arg-type]
    )
    lock = LockFile(target="slim", target_description="test", inputs_digest="sha256:0", pins=pins)
    write(project / "locks/slim.txt", lock.render())


@pytest.fixture
def runner(
    team: Wheelhouse, project: Path, tmp_path: Path, moto_server: MotoServer, s3_bucket: str
) -> Iterator[tuple[Wheelhouse, RecordingBinary]]:
    """A CI runner with an empty cache, a bucket, an index with delta's sdist and gamma's
    wheel, and an engine that is not there (it records each call and fails it)."""
    index = LocalIndex(tmp_path / "index").start()
    index.add_bytes(SDIST, DELTA)
    index.add_bytes("gamma-1.0-py3-none-any.whl", GAMMA)
    engine = RecordingBinary(tmp_path / "engine", exit_code=1)
    config = (project / "wheelhouse.toml").read_text()
    write(
        project / "wheelhouse.toml",
        f'engine = "{engine.binary}"\n'
        + config
        + f'[index]\nindex-url = "{index.url}"\n'
        + f'[store]\nurl = "s3://{s3_bucket}/team"\nendpoint-url = "{moto_server.url}"\n'
        + "timeout = 3\n",
    )
    _lock(project)
    team.env.update(S3_ENV)
    yield team, engine
    index.close()


def _upload(s3: MotoServer, bucket: str, built: dict[str, Any], pure: dict[str, Any]) -> None:
    """The records and the wheel they name, as the store lays them out."""
    wheel = EVIL if built["sha256"] == _sha(EVIL) else HONEST
    plant_build(
        s3,
        bucket,
        wheel=wheel,
        filename=WHEEL,
        build_key=KEY,
        sdist=_sha(DELTA),
        built=built,
        pure=pure,
    )


def test_a_record_a_trusted_runner_signed_is_used_from_the_bucket(
    runner: tuple[Wheelhouse, RecordingBinary],
    keys: tuple[Keyring, Keyring],
    moto_server: MotoServer,
    s3_bucket: str,
) -> None:
    wh, engine = runner
    colleague = keys[0]
    _upload(
        moto_server,
        s3_bucket,
        colleague.seal("built", KEY, _built(HONEST)),
        colleague.seal("pure", _sha(DELTA), {"key": KEY}),
    )
    res = wh("build")
    assert engine.calls() == []  # nothing to build: no builder, no probe
    manifest = json.loads((wh.project / "wheelhouse/slim/manifest.json").read_text())
    delta = next(w for w in manifest["wheels"] if w["name"] == "delta")
    assert delta["source"] == "cached" and delta["sha256"] == _sha(HONEST)
    assert f"--hash=sha256:{_sha(HONEST)}" in (wh.project / "wheelhouse/slim/lock.txt").read_text()
    assert "untrusted" not in res.stdout + res.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_poisoned_bucket_is_refused_and_its_wheel_never_fetched(
    runner: tuple[Wheelhouse, RecordingBinary],
    keys: tuple[Keyring, Keyring],
    moto_server: MotoServer,
    s3_bucket: str,
    case: str,
) -> None:
    wh, engine = runner
    built, pure = CASES[case][0](*keys)
    _upload(moto_server, s3_bucket, built, pure)
    res = wh("build", check=False)
    refused, why = _why(case, keys)
    name = f"built/{KEY}.json" if refused == "built" else f"pure/{_sha(DELTA)}.json"
    lines = [x for x in res.stderr.splitlines() if f"s3://{s3_bucket}/team/{name}: {why}" in x]
    assert len(lines) == 1 and lines[0].endswith(": not used"), res.stderr
    # not used: the build goes on to build delta itself, which needs the builder (and this
    # engine is not there)
    assert res.returncode == 5, res.stdout + res.stderr
    assert engine.calls(), "the build never asked for its builder"
    assert _sha(EVIL) not in _blobs(wh.cache_dir)  # not even downloaded
    assert not (wh.project / "wheelhouse/slim").exists()
    assert "Traceback" not in res.stderr


# -- keys and their configuration --------------------------------------------------------------


def test_this_machines_key_is_made_once_private_and_agreed_on_by_concurrent_first_runs(
    wh: Wheelhouse,
) -> None:
    cmd = [sys.executable, "-P", "-m", "wheelhouse", "cache", "pubkey"]
    procs = [
        subprocess.Popen(
            cmd, cwd=wh.project, env=wh.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    printed = {out.decode().strip() for out, _ in outs}
    assert len(printed) == 1, printed
    key_file = wh.cache_dir / "keys/signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert [p.name for p in key_file.parent.iterdir()] == ["signing.key"]  # no temp left
    private = load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    public = private.public_key().public_bytes_raw()
    (pubkey,) = printed
    assert pubkey == "ed25519:" + base64.b64encode(public).decode()
    assert f"key id {key_id(public)}" in outs[0][1].decode()
    assert wh("cache", "pubkey").stdout.strip() == pubkey  # and kept


@pytest.mark.parametrize("form", ["value", "path"])
def test_a_signing_key_given_by_the_environment_is_used(
    wh: Wheelhouse, tmp_path: Path, form: str
) -> None:
    pem = new_private_pem()
    given = pem if form == "value" else str(write(tmp_path / "fleet.pem", pem))
    out = wh("cache", "pubkey", env={"WHEELHOUSE_SIGNING_KEY": given}).stdout.strip()
    private = load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes_raw()
    assert out == "ed25519:" + base64.b64encode(raw).decode()
    assert not (wh.cache_dir / "keys").exists()  # no key of its own made


@pytest.mark.parametrize(
    ("setting", "env", "text"),
    [
        ('[trust]\ntrusted-keys = ["ed25519:short"]', {}, "trust.trusted-keys[0]"),
        ("[trust]\ntrusted-key = []", {}, "unknown key 'trust.trusted-key'"),
        ('[trust]\nsigning-key = "missing.pem"', {}, "trust.signing-key"),
        ('[trust]\nsigning-key = "bad.pem"', {}, "not an unencrypted Ed25519 private key"),
        ("", {"WHEELHOUSE_SIGNING_KEY": "/nonexistent/key.pem"}, "WHEELHOUSE_SIGNING_KEY"),
        ("", {"WHEELHOUSE_TRUSTED_KEYS": "ed25519:AAAA"}, "WHEELHOUSE_TRUSTED_KEYS"),
    ],
)
def test_bad_key_settings_are_config_errors(
    wh: Wheelhouse, project: Path, setting: str, env: dict[str, str], text: str
) -> None:
    write(project / "wheelhouse.toml", setting + "\n")
    write(project / "bad.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    res = wh("cache", "pubkey", check=False, env=env)
    assert res.returncode == 3 and text in res.stderr, res.stderr
    assert "hint:" in res.stderr and "Traceback" not in res.stderr
