"""Security corpus of `wheelhouse serve`, part 2: the upstream proxy (issue 17). A local
index on loopback plays the upstream; the real CLI serves in front of it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Wheelhouse, isolated_env, write
from fixtures_index import LocalIndex, wheel_filename
from fixtures_serve import CONFIG, JSON_V1, Server, installed, pip, put

OLD = "2020-01-01T00:00:00.000000Z"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path / "upstream").start()
    yield index
    index.close()


@pytest.fixture
def local(wh: Wheelhouse) -> Path:
    write(wh.project / "wheelhouse.toml", CONFIG)
    put(wh.project / "wheelhouse" / "slim", "gamma", "1.0")
    wh("index", "-t", "slim")
    return wh.project


def page_requests(index: LocalIndex) -> list[str]:
    return [r.path for r in index.requests if r.path.startswith("/simple/")]


def with_upload_times(index: LocalIndex, times: dict[str, str]) -> None:
    """The upstream's JSON pages carry PEP 700 upload-time (as PyPI's do)."""
    plain = index.project_json

    def timed(project: str) -> str:
        doc = json.loads(plain(project))
        for f in doc["files"]:
            f["upload-time"] = times.get(f["filename"], OLD)
            if f["filename"].endswith("-2.0-py3-none-any.whl"):
                f["yanked"] = "broken build"
        return json.dumps(doc)

    index.project_json = timed  # type: ignore[method-assign]


def test_upstream_credentials_are_never_shown(
    wh: Wheelhouse, local: Path, upstream: LocalIndex, servers: list[Server]
) -> None:
    upstream.add_wheel("omega", "1.0")
    upstream.add_wheel("psi", "1.0")  # never fetched before the upstream goes down
    url = upstream.url.replace("http://", "http://ci-user:s3cr3t-t0ken@")
    server = Server(wh, "--upstream", url, "--upstream-ttl", "0")
    servers.append(server)
    assert server.get("/simple/omega/")[0] == 200
    status, _, body = server.get("/health")
    assert status == 200 and b"s3cr3t" not in body and b"***@" in body
    upstream.close()  # and connections kept alive to it break too

    def down(*args: object) -> str:
        raise ConnectionAbortedError("the upstream is down")

    upstream.project_json = upstream.project_html = down  # type: ignore[method-assign, assignment]
    status, _, body = server.get("/simple/psi/")
    assert status == 502 and b"s3cr3t" not in body and b"ci-user" not in body
    assert server.stop() == 0
    assert "s3cr3t" not in server.log_path.read_text()


def test_files_are_served_only_under_the_name_a_page_links(
    wh: Wheelhouse, local: Path, upstream: LocalIndex, servers: list[Server]
) -> None:
    upstream.add_wheel("omega", "1.0")
    upstream.add_wheel("psi", "1.0")
    server = Server(wh, "--upstream", upstream.url)
    servers.append(server)
    (omega,) = json.loads(server.get("/simple/omega/", accept=JSON_V1)[2])["files"]
    assert server.get(omega["url"])[0] == 200  # now in the shared store
    sha = omega["hashes"]["sha256"]
    for name in (wheel_filename("psi", "1.0"), "evil.whl", "omega-1.0-py3-none-any.txt"):
        assert server.get(f"/-/files/{sha}/{name}")[0] == 404, name


def test_unknown_names_are_validated_and_negatively_cached(
    wh: Wheelhouse, local: Path, upstream: LocalIndex, servers: list[Server]
) -> None:
    upstream.add_wheel("omega", "1.0")
    server = Server(wh, "--upstream", upstream.url)
    servers.append(server)
    names = [f"made-up-{i}" for i in range(40)]
    for _ in range(2):
        for name in names:
            assert server.get(f"/simple/{name}/")[0] == 404
    # one question each, and the second round asked nothing
    assert sorted(page_requests(upstream)) == sorted(f"/simple/{n}/" for n in names)
    # not names: never asked, never a 500
    for path in ("/simple/" + "a" * 251 + "/", "/simple/a@b/", "/simple/-a/", "/simple/a..b/"):
        status = server.get(path)[0]
        assert status in (301, 404), (path, status)
    assert len(page_requests(upstream)) == len(names)
    # and no cache file per made-up name
    cached = [p.name for p in wh.cache_dir.rglob("serve-upstream/*/*.json")]
    assert cached == []


def test_proxy_policy_cooldown_and_project_lists(
    wh: Wheelhouse, local: Path, upstream: LocalIndex, tmp_path: Path, servers: list[Server]
) -> None:
    upstream.add_wheel("omega", "1.0", requires=["gamma"])
    upstream.add_wheel("omega", "2.0")
    upstream.add_wheel("psi", "1.0")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with_upload_times(upstream, {wheel_filename("omega", "2.0"): now})
    server = Server(wh, "--upstream", upstream.url, "--min-age", "7d", "--deny-upstream", "psi")
    servers.append(server)

    doc = json.loads(server.get("/simple/omega/", accept=JSON_V1)[2])
    (f,) = doc["files"]  # 2.0 is a day old, not a week: hidden
    assert f["filename"] == wheel_filename("omega", "1.0")
    assert f["upload-time"] == OLD and f["yanked"] is False
    assert doc["meta"]["api-version"] == "1.1"
    policy = {"min-age-seconds": 604800, "deny": ["psi"]}
    assert doc["meta"]["wheelhouse"]["policy"] == {**policy, "hidden-files": 1}
    meta_sha = f["core-metadata"]["sha256"]
    status, _, metadata = server.get(f["url"] + ".metadata")
    assert status == 200 and hashlib.sha256(metadata).hexdigest() == meta_sha
    html = server.get("/simple/omega/", accept="text/html")[2].decode()
    assert 'name="wheelhouse:policy"' in html and f'data-core-metadata="sha256={meta_sha}"' in html
    assert "omega-2.0" not in html
    # the hidden file cannot be had through its URL either
    hidden_sha = hashlib.sha256(
        (upstream.root / wheel_filename("omega", "2.0")).read_bytes()
    ).hexdigest()
    assert server.get(f"/-/files/{hidden_sha}/{wheel_filename('omega', '2.0')}")[0] == 404
    # a denied project is never asked of the upstream
    asked = len(page_requests(upstream))
    status, _, body = server.get("/simple/psi/")
    assert status == 404 and b"deny list" in body
    assert len(page_requests(upstream)) == asked
    health = json.loads(server.get("/health")[2])
    assert health["upstream_policy"] == policy
    # pip installs what the policy shows, with the core metadata from the proxy
    target = tmp_path / "t"
    pip(tmp_path, "--index-url", f"{server.base}/simple/", "--target", str(target), "omega")
    assert installed(target) == {"omega", "gamma"}
    assert (target / "omega-1.0.dist-info").is_dir()

    # --exclude-newer and the yank reason (2.0 shows once the date lets it through)
    later = Server(wh, "--upstream", upstream.url, "--exclude-newer", "2099-01-01")
    servers.append(later)
    doc = json.loads(later.get("/simple/omega/", accept=JSON_V1)[2])
    yanked = {f["filename"]: f["yanked"] for f in doc["files"]}
    assert yanked == {
        wheel_filename("omega", "1.0"): False,
        wheel_filename("omega", "2.0"): "broken build",
    }
    # uv's own cooldown works through the proxy now that upload-time reaches it (gamma,
    # local, is as new as its file: --no-deps)
    target = tmp_path / "uv-target"
    uv = [str(Path(sys.executable).with_name("uv")), "pip", "install", "--no-config", "--no-deps"]
    index = ["--index-url", f"{later.base}/simple/"]
    cooldown = ["--exclude-newer", "2021-01-01", "omega"]
    proc = subprocess.run(
        [*uv, "--python", sys.executable, "--target", str(target), *index, *cooldown],
        env=isolated_env(tmp_path / "uv-cache"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (target / "omega-1.0.dist-info").is_dir()
    early = Server(wh, "--upstream", upstream.url, "--exclude-newer", "2019-06-01")
    servers.append(early)
    assert json.loads(early.get("/simple/omega/", accept=JSON_V1)[2])["files"] == []


def test_core_metadata_is_hash_checked(
    wh: Wheelhouse, local: Path, upstream: LocalIndex, servers: list[Server]
) -> None:
    upstream.add_wheel("omega", "1.0")
    plain = upstream.project_json

    def lying(project: str) -> str:  # publishes a core-metadata hash its file does not have
        doc = json.loads(plain(project))
        for f in doc["files"]:
            f["core-metadata"] = f["dist-info-metadata"] = {"sha256": "0" * 64}
        return json.dumps(doc)

    upstream.project_json = lying  # type: ignore[method-assign]
    server = Server(wh, "--upstream", upstream.url)
    servers.append(server)
    (f,) = json.loads(server.get("/simple/omega/", accept=JSON_V1)[2])["files"]
    assert f["core-metadata"] == {"sha256": "0" * 64}
    status, _, body = server.get(f["url"] + ".metadata")
    assert status == 502 and b"is not the" in body
    assert list(wh.cache_dir.rglob("serve-upstream/*/.metadata/*")) == []
    # the wheel itself is still checked against its own hash, and served
    assert server.get(f["url"])[0] == 200
