"""The alpine target on a machine with no Alpine image and no apk mirror.

What can be proved here, with real parts: the lock and the plan choose musllinux wheels
(the musl version decides between musllinux_1_1 and _1_2) and never manylinux ones; the
fetched musllinux wheels are hash-checked and indexed; the builder's apk branch
(Dockerfile.builder's own shell, run under sh with an `apk` that records its arguments)
and the final stage ask apk for what Alpine needs. A musl source build cannot run here:
tests/docker/test_targets_matrix.py shows a pure sdist built once for slim serves alpine
without a container. `libc-version` left unset is probed from the final image (docker test).
The layers: tests/unit/test_alpine_unit.py (the apk branch and the final stage), this file
(lock, plan, fetch), tests/docker/test_alpine_docker.py (the probe).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex, wheel_bytes, wheel_filename

from wheelhouse.lock import lockfile

TAGS = {
    "many": "cp311-cp311-manylinux_2_17_x86_64",
    "musl11": "cp311-cp311-musllinux_1_1_x86_64",
    "musl12": "cp311-cp311-musllinux_1_2_x86_64",
}
NO_IMAGE = "wheelhouse-test/no-alpine-image:absent"


def _alpine_project(project: Path, index: LocalIndex, musl: str = "1.2") -> None:
    write(
        project / "wheelhouse.toml",
        f"""
engine = "/nonexistent/docker"   # nothing here may need a container
resolver = "uv"
default-targets = ["alpine"]
[index]
index-url = "{index.url}"
[targets.alpine]
python-version = "3.11"
libc-version = "{musl}"
builder-image = "{NO_IMAGE}"
final-image = "{NO_IMAGE}"
""",
    )
    write(project / "requirements.in", "fastext\ncommon\n")


@pytest.fixture
def index(make_index: object) -> LocalIndex:
    idx: LocalIndex = make_index(default=False)  # type: ignore[operator]
    for tags in TAGS.values():
        idx.add_wheel("fastext", "1.0", tags=tags)
    idx.add_sdist("fastext", "1.0")
    idx.add_wheel("common", "1.0")
    return idx


def _hashes(project: Path, name: str) -> set[str]:
    lock = lockfile.read(project / "locks" / "alpine.txt")
    assert lock is not None
    pin = next(p for p in lock.pins if p.name == name)
    return {h.removeprefix("sha256:") for h in pin.hashes}


@pytest.mark.parametrize(("musl", "best", "allowed"), [
    ("1.2", "musl12", {"musl11", "musl12"}),
    ("1.1", "musl11", {"musl11"}),  # a musl 1.1 image cannot load a musllinux_1_2 wheel
])  # fmt: skip
def test_plan_picks_musllinux_by_musl_version_never_manylinux(
    wh: Wheelhouse, project: Path, index: LocalIndex, musl: str, best: str, allowed: set[str]
) -> None:
    _alpine_project(project, index, musl)
    wh("lock")
    expected = {index.sha256(wheel_filename("fastext", "1.0", TAGS[k])) for k in allowed}
    assert _hashes(project, "fastext") == expected  # no manylinux hash, no sdist hash
    lock_text = (project / "locks" / "alpine.txt").read_text()
    assert f"musl {musl}" in lock_text
    out = wh("build", "--dry-run").stdout
    chosen = wheel_filename("fastext", "1.0", TAGS[best])
    assert re.search(rf"download\s*\|\s*fastext==1\.0\s*\|\s*{re.escape(chosen)}", out), out
    assert "manylinux" not in out


def test_musllinux_wheels_are_hash_checked_stored_and_indexed(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    _alpine_project(project, index)
    wh("lock")
    name = wheel_filename("fastext", "1.0", TAGS["musl12"])
    good = (index.root / name).read_bytes()
    locked = index.sha256(name)
    # the page still advertises the locked hash, but the file is other bytes (a mirror or
    # proxy that serves something else): only hashing what was downloaded catches it
    index.add_bytes(name, wheel_bytes("fastext", "1.0", TAGS["musl12"], requires=["evil"]))
    index.wrong_hashes[name] = locked
    bad = wh("build", check=False)
    assert bad.returncode == 9, bad.stderr
    assert "fastext" in bad.stderr and index.sha256(name) in bad.stderr
    assert not (project / "wheelhouse" / "alpine").exists()
    blobs = wh.cache_dir / "store" / "blobs"
    stored = [p.name for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []
    assert not any(index.sha256(name) in s for s in stored)

    index.add_bytes(name, good)  # the real bytes again
    del index.wrong_hashes[name]
    wh("build")
    folder = project / "wheelhouse" / "alpine"
    assert sorted(p.name for p in folder.glob("*.whl")) == sorted(
        [name, wheel_filename("common", "1.0")]
    )
    page = json.loads((folder / "simple" / "fastext" / "index.json").read_text())
    (listed,) = page["files"]
    assert listed["filename"] == name and listed["hashes"]["sha256"] == index.sha256(name)
    assert (folder / f"{name}.metadata").is_file()  # PEP 658 sidecar
    combined = (project / "wheelhouse" / "simple" / "fastext" / "index.html").read_text()
    assert name in combined


def test_a_pin_with_only_manylinux_wheels_is_not_locked_for_alpine(
    wh: Wheelhouse, project: Path, index: LocalIndex
) -> None:
    index.add_wheel("glibconly", "1.0", tags=TAGS["many"])
    _alpine_project(project, index)
    write(project / "requirements.in", "glibconly\n")
    res = wh("lock", check=False)
    assert res.returncode == 6, res.stderr
    assert "glibconly" in res.stderr
