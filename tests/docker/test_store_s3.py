"""The shared S3 store and `wheelhouse publish` (issue 6's acceptance), through the real
CLI, the real engine (Debian test images), a loopback package index with a request log,
and moto's S3 server in its own process.

One team project is locked and built once for the module by "runner A" (its own cache),
uploading to a bucket; the tests then start other runners, each with an empty cache:
runner B must get everything from the bucket (no index request, no build container),
a runner facing corrupted objects must notice and fetch/build normally, the published
index must install with pip over HTTP, a publish cut off by a stopped server must leave
nothing half-visible, and `cache export`/`import` must make a fresh cache's build a no-op.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_engine import RecordingBinary
from fixtures_index import LocalIndex
from fixtures_s3 import S3_ENV, MotoServer

from wheelhouse.store.signing import new_private_pem

pytestmark = [pytest.mark.docker]

PINS = {"gamma", "delta", "epsilon"}  # a pure wheel, an sdist to build, a binary wheel


def _containers(engine: RecordingBinary) -> list[str]:
    """Calls that make or start a container, or build an image."""
    verbs = ("create ", "run ", "start ", "build ", "container create ", "buildx ")
    return [line for line in engine.lines() if line.startswith(verbs)]


def _builds(engine: RecordingBinary) -> list[str]:
    return [line for line in engine.lines() if "WHEELHOUSE_BUILD=" in line]


def _config(index: LocalIndex, images: dict[str, str], engine: RecordingBinary, store: str) -> str:
    return (
        f'engine = "{engine.binary}"\ndefault-targets = ["slim"]\n{store}\n'
        f'[index]\nindex-url = "{index.url}"\n' + debian_targets(images, "slim")
    )


@dataclass
class Team:
    root: Path
    index: LocalIndex
    images: dict[str, str]
    engine_bin: str
    s3: MotoServer
    bucket: str
    a: Wheelhouse
    first: Any  # runner A's build
    signing_key: str = ""  # the team's runners share one (a CI secret): each trusts the others

    def store_table(self, bucket: str | None = None, timeout: int = 3) -> str:
        return (
            f'[store]\nurl = "s3://{bucket or self.bucket}/team"\n'
            f'endpoint-url = "{self.s3.url}"\ntimeout = {timeout}\n'
        )

    def runner(self, name: str, *, store: bool = True) -> tuple[Wheelhouse, RecordingBinary]:
        """A CI checkout of the project (config, requirements, locks; no output) with an
        empty cache of its own."""
        project = self.root / name
        shutil.copytree(self.a.project / "locks", project / "locks")
        shutil.copy(self.a.project / "requirements.in", project / "requirements.in")
        engine = RecordingBinary(self.root / f"{name}-engine", real=self.engine_bin)
        table = self.store_table() if store else ""
        write(project / "wheelhouse.toml", _config(self.index, self.images, engine, table))
        wh = Wheelhouse(project, self.root / f"{name}-cache")
        wh.env.update(S3_ENV, COLUMNS="250", WHEELHOUSE_SIGNING_KEY=self.signing_key)
        return wh, engine


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory,
    test_images: dict[str, str],
    engine_bin: str,
    moto_server: MotoServer,
) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("team")
    index = LocalIndex(root / "index").start()
    index.add_wheel("gamma", "1.0")
    index.add_sdist("delta", "1.0", requires=["gamma"])  # no wheel: built in the builder
    index.add_wheel("epsilon", "1.0", tags="cp311-cp311-manylinux_2_17_x86_64")
    bucket = moto_server.bucket()
    engine = RecordingBinary(root / "a-engine", real=engine_bin)
    project = root / "a"
    wh = Wheelhouse(project, root / "a-cache")
    key = new_private_pem()
    wh.env.update(S3_ENV, COLUMNS="250", WHEELHOUSE_SIGNING_KEY=key)
    team = Team(root, index, test_images, engine_bin, moto_server, bucket, wh, None, key)
    write(project / "wheelhouse.toml", _config(index, test_images, engine, team.store_table()))
    write(project / "requirements.in", "delta\nepsilon\n")
    wh("lock")
    team.first = wh("build")
    yield team
    index.close()


def _manifest(project: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((project / "wheelhouse/slim/manifest.json").read_text())
    return {w["name"]: w for w in data["wheels"]}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_second_runner_gets_everything_from_the_bucket(team: Team) -> None:
    a = _manifest(team.a.project)
    assert set(a) == PINS
    assert a["delta"]["source"] == "built" and a["epsilon"]["source"] == "downloaded"
    # what runner A uploaded: every file it fetched or built, and the build's records
    keys = team.s3.keys(team.bucket, "team/")
    for name in PINS:
        assert f"team/blobs/{a[name]['sha256']}" in keys, name
        assert _sha(keys[f"team/blobs/{a[name]['sha256']}"]) == a[name]["sha256"]
    sdist_sha = team.index.sha256("delta-1.0.tar.gz")
    assert f"team/blobs/{sdist_sha}" in keys and f"team/pure/{sdist_sha}.json" in keys
    records = [json.loads(v) for k, v in keys.items() if k.startswith("team/built/")]
    assert [r["sha256"] for r in records] == [a["delta"]["sha256"]]
    assert "objects uploaded" in team.first.stdout

    team.index.clear_requests()
    wh, engine = team.runner("b")
    res = wh("build")
    assert team.index.requests == [], [r.path for r in team.index.requests]
    assert _builds(engine) == []
    b = _manifest(wh.project)
    assert {n: w["sha256"] for n, w in b.items()} == {n: w["sha256"] for n, w in a.items()}
    assert b["delta"]["source"] == "cached"
    assert "store s3://" in res.stdout and "1 build records fetched" in res.stdout
    stats = wh("cache", "stats").stdout
    assert "hit rate 100%" in stats and "records fetched" in stats
    # and it installs: the output folder's lock has exactly these wheels' hashes
    target = wh.project / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--no-index", "--no-cache-dir",
         "--require-hashes", "--target", str(target), "--find-links",
         str(wh.project / "wheelhouse/slim"), "-r", str(wh.project / "wheelhouse/slim/lock.txt")],
        check=True, capture_output=True, env={**wh.env, "PIP_CONFIG_FILE": "/dev/null"},
    )  # fmt: skip
    assert (target / "delta" / "__init__.py").is_file()


def test_corrupt_objects_are_detected_not_used(team: Team) -> None:
    a = _manifest(team.a.project)
    s3 = team.s3.client()
    victims = {n: f"team/blobs/{a[n]['sha256']}" for n in ("epsilon", "delta")}
    for key in victims.values():  # same key, other bytes (bit rot, a bad copy, tampering)
        head = s3.head_object(Bucket=team.bucket, Key=key)
        s3.put_object(Bucket=team.bucket, Key=key, Body=b"garbage", Metadata=head["Metadata"])
    team.index.clear_requests()
    wh, engine = team.runner("c")
    res = wh("build")
    out = res.stdout + res.stderr
    for key in victims.values():
        assert f"s3://{team.bucket}/{key} has sha256 {_sha(b'garbage')}: not used" in out
    # fetched and built normally instead, to the same bytes
    assert "epsilon-1.0-cp311-cp311-manylinux_2_17_x86_64.whl" in team.index.file_requests()
    assert len(_builds(engine)) == 1
    c = _manifest(wh.project)
    assert {n: w["sha256"] for n, w in c.items()} == {n: w["sha256"] for n, w in a.items()}
    # and the bucket's objects are whole again
    keys = team.s3.keys(team.bucket, "team/blobs/")
    for name, key in victims.items():
        assert _sha(keys[key]) == a[name]["sha256"]


def _pip_install(index_url: str, dest: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--no-cache-dir",
         "--disable-pip-version-check", "--target", str(dest), "--index-url", index_url, *names],
        capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"},
    )  # fmt: skip


def test_published_index_installs_with_pip_over_http(team: Team) -> None:
    bucket = team.s3.bucket(public=True)  # a static-website bucket: anonymous GET
    res = team.a("publish", "-t", "slim", f"s3://{bucket}/site")
    index_url = f"{team.s3.url}/{bucket}/site/slim/simple/"
    assert f"pip install --index-url {index_url}" in res.stdout
    proc = _pip_install(index_url, team.root / "pip-site", "delta", "epsilon")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in PINS:
        assert (team.root / "pip-site" / name / "__init__.py").is_file(), name
    s3 = team.s3.client()
    page = s3.head_object(Bucket=bucket, Key="site/slim/simple/delta/")
    assert page["ContentType"].startswith("text/html") and page["CacheControl"] == "no-cache"
    whl = s3.head_object(Bucket=bucket, Key="site/slim/delta-1.0-py3-none-any.whl")
    assert "immutable" in whl["CacheControl"]
    json_page = s3.head_object(Bucket=bucket, Key="site/slim/simple/delta/index.json")
    assert json_page["ContentType"] == "application/vnd.pypi.simple.v1+json"
    # incremental: nothing changed, nothing uploaded
    again = team.a("publish", "-t", "slim", f"s3://{bucket}/site")
    assert "published" in again.stdout and " 0 objects uploaded" in again.stdout


def test_publish_cut_off_by_a_stopped_server_leaves_nothing_half_visible(
    team: Team, tmp_path: Path
) -> None:
    server = MotoServer(tmp_path / "moto.log")
    try:
        bucket = server.bucket(public=True)
        args = ["-v", "publish", "-t", "slim", f"s3://{bucket}/site", "--endpoint-url", server.url]
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "wheelhouse", *args],
            cwd=team.a.project, env=team.a.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        err: list[str] = []

        def read() -> None:
            assert proc.stderr is not None
            err.extend(proc.stderr)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any("s3 PUT" in line for line in err):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(err)
            time.sleep(0.01)
        server.pause()  # the server stops answering in the middle of the upload
        rc = proc.wait(timeout=120)
        reader.join(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # closed here, not by the garbage collector's warning
        proc.stderr.close()
        stderr = "".join(err)
        assert rc == 14, stderr
        assert "cannot reach" in stderr and "rerun" in stderr and "Traceback" not in stderr
        server.resume()
        keys = server.keys(bucket)
        # no page at all yet: pages go up only after every file is there
        assert not [k for k in keys if "/simple/" in k], sorted(keys)
        folder = team.a.project / "wheelhouse/slim"
        for key, data in keys.items():  # whatever is there is whole
            assert data == (folder / key.removeprefix("site/slim/")).read_bytes(), key
        # a rerun completes, and pip can install from it
        team.a(*args)
        keys = server.keys(bucket)
        assert "site/slim/simple/delta/" in keys and "site/slim/simple/index.html" in keys
        proc2 = _pip_install(f"{server.url}/{bucket}/site/slim/simple/", tmp_path / "t", "delta")
        assert proc2.returncode == 0, proc2.stderr
    finally:
        server.close()


def test_export_import_makes_a_fresh_build_a_no_op(team: Team, tmp_path: Path) -> None:
    archive = tmp_path / "cache.tar.gz"
    res = team.a("cache", "export", "-t", "slim", "-o", str(archive))
    # gamma's and epsilon's wheels, delta's sdist and the wheel built from it, its record
    assert "4 files, 1 build records" in res.stdout, res.stdout
    team.index.clear_requests()
    wh, engine = team.runner("d", store=False)
    assert "imported" in wh("cache", "import", str(archive)).stdout
    wh("build")
    assert team.index.requests == [], [r.path for r in team.index.requests]
    assert _containers(engine) == [], engine.lines()
    d = _manifest(wh.project)
    assert {w["source"] for w in d.values()} <= {"reused", "cached"}
    assert {n: w["sha256"] for n, w in d.items()} == {
        n: w["sha256"] for n, w in _manifest(team.a.project).items()
    }
