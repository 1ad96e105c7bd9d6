"""Bit rot in a wheel the builder made: the one case of tests/integration/
test_faults_output.py that needs the engine. A wheel built from source whose stored copy
(one inode with the output folder's) gets a flipped byte, its mtime put back, is caught by
the next build, dropped, built again in one container (byte for byte the same: the builds
are reproducible), and the folder matches its lock.txt again."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_engine import RecordingBinary
from fixtures_index import LocalIndex

from wheelhouse.lock import lockfile

DELTA = "delta-1.0-py3-none-any.whl"


@pytest.fixture
def index(make_index: object) -> LocalIndex:
    idx: LocalIndex = make_index(default=False)  # type: ignore[operator]
    idx.add_wheel("gamma", "1.0")
    idx.add_sdist("delta", "1.0", requires=["gamma"])  # a pure sdist: built from source
    return idx


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_built_wheel_with_a_flipped_byte_and_its_mtime_kept_is_built_again(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    recording_engine: RecordingBinary,
) -> None:
    write(
        project / "wheelhouse.toml",
        f'engine = "{recording_engine.binary}"\ndefault-targets = ["slim"]\n'
        f'[index]\nindex-url = "{index.url}"\n' + debian_targets(test_images, "slim"),
    )
    write(project / "requirements.in", "delta\n")
    wh("lock")
    wh("build")
    folder = project / "wheelhouse" / "slim"
    wheel = folder / DELTA
    good = _sha256(wheel)

    st = wheel.stat()
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x01
    with wheel.open("r+b") as f:  # in place: the store's copy is the same inode
        f.write(data)
    os.utime(wheel, ns=(st.st_atime_ns, st.st_mtime_ns))

    mark = recording_engine.mark()
    res = wh("build")
    assert f"corrupt  {DELTA}: the cache's copy no longer has the bytes" in res.stderr
    assert len(recording_engine.containers(mark, what="build")) == 1  # built again
    assert _sha256(wheel) == good
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {w["name"]: w["source"] for w in manifest["wheels"]} == {
        "delta": "built",
        "gamma": "reused",
    }
    own = lockfile.read(folder / "lock.txt")
    assert own is not None
    assert {h for p in own.pins for h in p.hashes} == {
        f"sha256:{_sha256(p)}" for p in folder.glob("*.whl")
    }
