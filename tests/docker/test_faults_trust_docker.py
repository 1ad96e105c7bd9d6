"""Trusted build records with the real engine: a fleet's runners share an S3 bucket (moto's
server, its own process) and sign their records with the fleet's key.

Runner A locks and builds once for the module (delta is an sdist, built in the Debian
builder image; gamma a wheel), uploading to the bucket. Then:

* a runner with a key of its own that trusts the fleet's uses A's build: no container;
* a bucket where someone with write access mapped delta's build key (and its sdist) to
  another, self-consistent wheel, unsigned or signed by a stranger, is refused: the
  runner builds delta itself, gets A's bytes, and its signed records replace the poison;
* `cache verify --rebuild` rebuilds A's cached delta to the same bytes, and reports a
  wheel replaced on a compromised machine (whose key re-signed the record) with both
  hashes and exit 18, leaving the entry as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_engine import RecordingBinary
from fixtures_index import LocalIndex, wheel_bytes
from fixtures_s3 import S3_ENV, MotoServer, plant_build

from wheelhouse.config import TrustSettings
from wheelhouse.store import Store
from wheelhouse.store.signing import Keyring, new_private_pem

pytestmark = [pytest.mark.docker]

WHEEL = "delta-1.0-py3-none-any.whl"
EVIL = wheel_bytes("delta", "1.0", requires=["gamma", "evil-payload"])  # same name, other bytes


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _builds(engine: RecordingBinary, since: int = 0) -> list[str]:
    return [line for line in engine.lines(since) if "WHEELHOUSE_BUILD=" in line]


@dataclass
class Fleet:
    root: Path
    index: LocalIndex
    images: dict[str, str]
    engine_bin: str
    s3: MotoServer
    bucket: str
    key: str  # the fleet's signing key (PEM), shared as a CI secret
    a: Wheelhouse
    a_engine: RecordingBinary

    @property
    def keyring(self) -> Keyring:
        settings = TrustSettings(signing_key_pem=self.key, signing_key_source="fleet")
        return Keyring(self.root / "unused", settings)

    def config(self, engine: RecordingBinary, bucket: str, trust: str = "") -> str:
        return (
            f'engine = "{engine.binary}"\ndefault-targets = ["slim"]\n{trust}'
            f'[store]\nurl = "s3://{bucket}/team"\nendpoint-url = "{self.s3.url}"\ntimeout = 5\n'
            f'[index]\nindex-url = "{self.index.url}"\n' + debian_targets(self.images, "slim")
        )

    def runner(
        self, name: str, *, bucket: str, key: str | None, trust: str = ""
    ) -> tuple[Wheelhouse, RecordingBinary]:
        """A checkout of A's project (config, locks) with an empty cache of its own; `key`:
        the fleet's, or None for a key of its own (made in its cache)."""
        project = self.root / name
        shutil.copytree(self.a.project / "locks", project / "locks")
        shutil.copy(self.a.project / "requirements.in", project / "requirements.in")
        engine = RecordingBinary(self.root / f"{name}-engine", real=self.engine_bin)
        write(project / "wheelhouse.toml", self.config(engine, bucket, trust))
        wh = Wheelhouse(project, self.root / f"{name}-cache")
        wh.env.update(S3_ENV, COLUMNS="250")
        if key is not None:
            wh.env["WHEELHOUSE_SIGNING_KEY"] = key
        return wh, engine


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    test_images: dict[str, str],
    engine_bin: str,
    moto_server: MotoServer,
) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    index = LocalIndex(root / "index").start()
    index.add_wheel("gamma", "1.0")
    index.add_sdist("delta", "1.0", requires=["gamma"])  # no wheel: built in the builder
    engine = RecordingBinary(root / "a-engine", real=engine_bin)
    wh = Wheelhouse(root / "a", root / "a-cache")
    key = new_private_pem()
    wh.env.update(S3_ENV, COLUMNS="250", WHEELHOUSE_SIGNING_KEY=key)
    bucket = moto_server.bucket()
    fleet = Fleet(root, index, test_images, engine_bin, moto_server, bucket, key, wh, engine)
    write(wh.project / "wheelhouse.toml", fleet.config(engine, bucket))
    write(wh.project / "requirements.in", "delta\n")
    wh("lock")
    wh("build")
    assert len(_builds(engine)) == 1
    yield fleet
    index.close()


def _wheels(project: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((project / "wheelhouse/slim/manifest.json").read_text())
    return {w["name"]: w for w in data["wheels"]}


def _key(cache: Path) -> str:
    """The build key of delta, the one source build."""
    (record,) = (cache / "store/built").glob("*.json")
    return record.stem


def test_a_runner_that_trusts_the_fleets_key_uses_its_builds(fleet: Fleet) -> None:
    public = fleet.keyring.public_key()
    trust = f'[trust]\ntrusted-keys = ["{public}"]\n'
    wh, engine = fleet.runner("b", bucket=fleet.bucket, key=None, trust=trust)
    res = wh("build")
    assert _builds(engine) == []
    b, a = _wheels(wh.project), _wheels(fleet.a.project)
    assert b["delta"]["source"] == "cached"
    assert {n: w["sha256"] for n, w in b.items()} == {n: w["sha256"] for n, w in a.items()}
    assert "untrusted" not in res.stdout + res.stderr
    # B signs with its own key (made in its cache), not the fleet's
    assert (wh.cache_dir / "keys/signing.key").is_file()
    assert wh("cache", "pubkey").stdout.strip() != public


def _poison(fleet: Fleet, bucket: str, case: str) -> tuple[str, str]:
    """A copy of the fleet's bucket in which delta's build key and sdist map to EVIL, as
    someone with write access to the bucket (but not the fleet's key) would leave it:
    the wheel whole under its own sha256, the records unsigned or signed by a stranger.
    Returns (build key, sdist sha256)."""
    s3 = fleet.s3.client()
    for key in fleet.s3.keys(fleet.bucket, "team/"):
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": fleet.bucket, "Key": key})
    build_key = _key(fleet.a.cache_dir)
    record = json.loads((fleet.a.cache_dir / f"store/built/{build_key}.json").read_text())
    sdist = record["sdist"]["sha256"]
    record.pop("signature")
    record["sha256"] = _sha(EVIL)
    pure: dict[str, Any] = {"key": build_key}
    if case == "unknown signer":
        stranger = Keyring(fleet.root / f"stranger-{bucket}")
        record = stranger.seal("built", build_key, record)
        pure = stranger.seal("pure", sdist, pure)
    plant_build(
        fleet.s3,
        bucket,
        wheel=EVIL,
        filename=WHEEL,
        build_key=build_key,
        sdist=sdist,
        built=record,
        pure=pure,
    )
    return build_key, sdist


@pytest.mark.parametrize("case", ["unsigned", "unknown signer"])
def test_a_poisoned_bucket_is_refused_and_the_runner_builds_what_an_honest_build_gives(
    fleet: Fleet, case: str
) -> None:
    bucket = fleet.s3.bucket()
    build_key, sdist = _poison(fleet, bucket, case)
    wh, engine = fleet.runner(f"c-{case.replace(' ', '-')}", bucket=bucket, key=fleet.key)
    res = wh("build")
    why = "unsigned" if case == "unsigned" else "signed by an unknown key "
    for name in (f"pure/{sdist}.json", f"built/{build_key}.json"):
        line = f"store: untrusted record ignored: s3://{bucket}/team/{name}: {why}"
        assert line in res.stderr, res.stderr
    assert len(_builds(engine)) == 1  # built here instead
    c, a = _wheels(wh.project), _wheels(fleet.a.project)
    assert c["delta"]["source"] == "built"
    assert {n: w["sha256"] for n, w in c.items()} == {n: w["sha256"] for n, w in a.items()}
    lock = (wh.project / "wheelhouse/slim/lock.txt").read_text()
    assert _sha(EVIL) not in lock and a["delta"]["sha256"] in lock
    assert not list(wh.cache_dir.glob(f"store/blobs/*/{_sha(EVIL)}"))  # never fetched
    # the runner's own signed records replaced the poison
    keys = fleet.s3.keys(bucket, "team/")
    healed = json.loads(keys[f"team/built/{build_key}.json"])
    assert healed["sha256"] == a["delta"]["sha256"]
    assert fleet.keyring.check("built", build_key, healed).ok
    pure = json.loads(keys[f"team/pure/{sdist}.json"])
    assert fleet.keyring.check("pure", sdist, pure).ok and pure["key"] == build_key


def test_verify_rebuild_reproduces_an_honest_cache_and_reports_a_replaced_wheel(
    fleet: Fleet, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(fleet.a.cache_dir, cache, symlinks=True)  # A's cache, left as it is
    wh = Wheelhouse(fleet.a.project, cache)
    wh.env.update(S3_ENV, WHEELHOUSE_SIGNING_KEY=fleet.key)
    build_key = _key(cache)
    honest = _wheels(fleet.a.project)["delta"]["sha256"]
    mark = fleet.a_engine.mark()
    res = wh("cache", "verify", "--rebuild")  # a sample of 3 by default: here the only one
    assert f"reproduced: built/{build_key}.json ({WHEEL}, slim): sha256 {honest}" in res.stdout
    assert "rebuilt 1 of 1 cached source builds: 1 identical, 0 different" in res.stdout
    assert len(_builds(fleet.a_engine, mark)) == 1

    # a compromised machine: delta's wheel replaced by another whole wheel, and the
    # record re-signed with the machine's (the fleet's) key: every signature checks out
    store = Store(cache, fleet.keyring)
    src = store.tempdir("evil-") / "w"
    src.write_bytes(EVIL)
    store.put(src, WHEEL)
    hit = store.built(build_key)
    assert hit is not None
    store.record_built(build_key, replace(hit.record, sha256=_sha(EVIL)))
    record_path = store.record_path("built", build_key)
    tampered = record_path.read_bytes()
    leftovers = set((cache / "store/tmp").iterdir())

    res = wh("cache", "verify", "--rebuild", "all", check=False)
    assert res.returncode == 18, res.stdout + res.stderr
    assert (
        f"MISMATCH: built/{build_key}.json ({WHEEL}, slim): cached sha256 {_sha(EVIL)}, "
        f"rebuilt sha256 {honest}" in res.stdout
    )
    assert "1 identical" not in res.stdout and "0 identical, 1 different" in res.stdout
    assert "untrusted record: 1 cached build(s) differ from their rebuild" in res.stderr
    assert "Traceback" not in res.stderr
    # the rebuild replaced nothing: the entry is as the compromised machine left it
    assert record_path.read_bytes() == tampered
    hit = store.built(build_key)
    assert hit is not None and hit.blob.sha256 == _sha(EVIL)
    assert set((cache / "store/tmp").iterdir()) == leftovers  # the rebuild's folder removed
