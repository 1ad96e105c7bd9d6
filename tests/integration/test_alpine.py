"""The alpine target on a machine with no Alpine image and no apk mirror.

What can be proved here, with real parts: the lock and the plan choose musllinux wheels
(the musl version decides between musllinux_1_1 and _1_2) and never manylinux ones; the
fetched musllinux wheels are hash-checked and indexed; the builder's apk branch
(Dockerfile.builder's own shell, run under sh with an `apk` that records its arguments)
and the final stage ask apk for what Alpine needs. A musl source build cannot run here:
tests/test_targets_matrix.py shows a pure sdist built once for slim serves alpine without
a container. `libc-version` left unset is probed from the final image (docker test).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex, wheel_bytes, wheel_filename

from wheelhouse import config as config_mod
from wheelhouse.image import dockerfile as df
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


# -- the images' Dockerfiles ------------------------------------------------------------


def _builder_script() -> str:
    """The package-installing RUN of the shipped Dockerfile.builder, as sh runs it."""
    text = (Path(df.__file__).parent / "_data" / "Dockerfile.builder").read_text()
    joined = re.sub(r"\\\n", " ", text)
    runs = [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]
    return next(r for r in runs if "apk" in r)


def _run_builder_script(tmp_path: Path, *, python: bool) -> tuple[int, str, str]:
    """Dockerfile.builder's shell on a PATH with an `apk` that records its arguments (and
    a python3 when the base has one, as python:3.12-alpine does), no apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "apk.log"
    write(bin_dir / "apk", f'#!/bin/sh\necho "$@" >> {log}\n').chmod(0o755)
    if python:
        write(bin_dir / "python3", "#!/bin/sh\n").chmod(0o755)
    env = {"PATH": str(bin_dir), "APK_PACKAGES": "yaml-dev libpq-dev", "APT_PACKAGES": "x",
           "BASE": "python:3.12-alpine3.20"}  # fmt: skip
    proc = subprocess.run(
        ["/bin/sh", "-c", _builder_script()], env=env, capture_output=True, text=True
    )
    return proc.returncode, log.read_text() if log.exists() else "", proc.stderr


def test_builder_dockerfile_installs_the_toolchain_with_apk(tmp_path: Path) -> None:
    rc, calls, err = _run_builder_script(tmp_path / "py", python=True)
    assert rc == 0, err
    assert calls.split() == [
        "add", "--no-cache", "build-base", "musl-dev", "ca-certificates", "yaml-dev", "libpq-dev",
    ]  # fmt: skip
    # a base without Python (like a bare alpine:3.20) gets Alpine's python3, headers, pip
    rc, calls, err = _run_builder_script(tmp_path / "bare", python=False)
    assert rc == 0, err
    assert calls.split()[:2] == ["add", "--no-cache"]
    assert {"python3", "python3-dev", "py3-pip", "musl-dev", "yaml-dev"} <= set(calls.split())
    assert "apt" not in calls and "x" not in calls.split()


def test_final_dockerfile_for_alpine_uses_apk_and_recipes_apk_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(df, "ensure_pip", lambda config, folder: folder / ".tools" / "pip.whl")
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    root = tmp_path / "project"
    write(root / "wheelhouse.toml", '[targets.alpine]\npython-version = "3.12"\n')
    folder = root / "wheelhouse" / "alpine"
    write(folder / "lock.txt", "")
    built = [  # built from source for alpine: the shipped recipes name their apk packages
        {"name": n, "provenance": {"sha256": "x"}} for n in ("pyyaml", "psycopg2")
    ]
    manifest = {"complete": True, "missing": [], "runtime_packages": [], "wheels": built}
    write(folder / "manifest.json", json.dumps(manifest))
    cfg = config_mod.load(root, environ={"WHEELHOUSE_CACHE_DIR": str(tmp_path / "cache")})
    res = df.dockerfile(cfg, cfg.target("alpine"), engine=None, whole=True)
    assert res.stage.family == "apk"
    assert res.stage.packages == ("libpq", "yaml")  # runtime.apk of psycopg2 and pyyaml
    lines = [x for x in res.text.splitlines() if x.startswith(("RUN", "FROM"))]
    assert lines[0] == "FROM python:3.12-alpine3.20 AS wheelhouse-final"
    assert lines[1] == "RUN apk add --no-cache libpq yaml"
    assert "apt-get" not in res.text and "dpkg" not in res.text
    assert "python3 -m venv --without-pip /opt/venv" in res.text


# -- libc-version probed from the final image --------------------------------------------


@pytest.mark.docker
def test_unset_libc_version_is_probed_from_the_final_image(
    wh: Wheelhouse, project: Path, index: LocalIndex, test_images: dict[str, str],
    engine_bin: str,
) -> None:  # fmt: skip
    index.add_wheel("glibconly", "1.0", tags="cp311-cp311-manylinux_2_36_x86_64")
    write(
        project / "wheelhouse.toml",
        f"""
engine = "{engine_bin}"
resolver = "uv"
[index]
index-url = "{index.url}"
[targets.deb]
python-version = "3.11"
builder-image = "{test_images["py311-builder"]}"
final-image = "{test_images["py311-slim"]}"
[targets.fakemusl]
python-version = "3.11"
libc = "musl"
builder-image = "{test_images["py311-builder"]}"
final-image = "{test_images["py311-slim"]}"
""",
    )
    write(project / "requirements.in", "glibconly\n")
    wh("lock", "-t", "deb")
    assert "glibc 2.36" in (project / "locks" / "deb.txt").read_text()  # Debian 12's
    res = wh("lock", "-t", "fakemusl", check=False)
    assert res.returncode == 3, res.stderr
    assert "'fakemusl' is musl" in res.stderr and "glibc 2.36" in res.stderr
    assert os.path.exists(project / "locks" / "deb.txt")
