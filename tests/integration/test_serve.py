"""`wheelhouse serve`: the real CLI as a server process on loopback, driven by real pip
(through the JSON and the HTML API), real twine uploads, raw HTTP for the protocol's
edges, a second local index playing upstream (and going down), and a bounded load test
that watches the server's memory. No engine, no network."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import Wheelhouse, isolated_env, write
from fixtures_index import LocalIndex, wheel_bytes, wheel_filename
from fixtures_serve import (
    CONFIG,
    HTML_V1,
    JSON_V1,
    PASSWORD,
    Server,
    basic,
    files_in,
    installed,
    multipart,
    pip,
    put,
    upload_server,
)

# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
def tree(wh: Wheelhouse) -> Path:
    """A built-looking wheelhouse: slim has alpha 1.0, beta (needs gamma) and gamma;
    other has delta; both indexes and the combined one written by `wheelhouse index`."""
    write(wh.project / "wheelhouse.toml", CONFIG)
    slim = wh.project / "wheelhouse" / "slim"
    put(slim, "alpha", "1.0")
    put(slim, "beta", "1.0", requires=["gamma"])
    put(slim, "gamma", "1.0")
    put(wh.project / "wheelhouse" / "other", "Delta_Pkg", "2.0")
    wh("index", "-t", "slim,other")
    return wh.project / "wheelhouse"


class AcceptRewritingProxy:
    """A plain-HTTP forward proxy on loopback that sends every request on with
    `Accept: text/html` (pip always asks for JSON first): a real pip install through
    the HTML API."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
                path = url.path + (f"?{url.query}" if url.query else "")
                headers = {k: v for k, v in self.headers.items() if k.lower() != "accept"}
                headers["Accept"] = "text/html"
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- reading ----------------------------------------------------------------------------------


def test_pip_installs_through_json_and_html_apis(
    wh: Wheelhouse, tree: Path, tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(wh)
    servers.append(server)
    # JSON: pip's own Accept header prefers PEP 691 JSON
    target = tmp_path / "json"
    pip(tmp_path, "--index-url", f"{server.base}/simple/", "--target", str(target), "beta")
    assert installed(target) == {"beta", "gamma"}
    log = server.access_log()
    pages = [r for r in log if r["path"].startswith("/simple/") and r["status"] == 200]
    assert {r["path"] for r in pages} >= {"/simple/beta/", "/simple/gamma/"}
    assert {r["type"] for r in pages} == {JSON_V1}
    # pip read the PEP 658 metadata, then the wheels, from the target's folder
    got = {r["path"] for r in server.access_log() if r["path"].startswith("/slim/")}
    assert "/slim/beta-1.0-py3-none-any.whl.metadata" in got
    assert "/slim/gamma-1.0-py3-none-any.whl" in got

    # HTML: the same install with every request's Accept rewritten to text/html
    proxy = AcceptRewritingProxy()
    try:
        before = len(server.access_log())
        target = tmp_path / "html"
        pip(
            tmp_path,
            "--index-url",
            f"{server.base}/slim/simple/",
            "--target",
            str(target),
            "--proxy",
            proxy.url,
            "beta",
            env={"NO_PROXY": "", "no_proxy": ""},
        )
    finally:
        proxy.close()
    assert installed(target) == {"beta", "gamma"}
    pages = [r for r in server.access_log()[before:] if "/simple/" in r["path"]]
    assert {r["path"] for r in pages} >= {"/slim/simple/beta/", "/slim/simple/gamma/"}
    assert {r["type"] for r in pages} == {"text/html"}
    assert server.stop() == 0


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """One server over the tree for the protocol tests that only read."""
    root = tmp_path_factory.mktemp("serve-read")
    project = root / "project"
    project.mkdir()
    wh = Wheelhouse(project, root / "cache")
    write(project / "wheelhouse.toml", CONFIG)
    slim = project / "wheelhouse" / "slim"
    put(slim, "alpha", "1.0")
    put(slim, "Beta_Pkg", "2.0")
    big = slim / "big-1.0-py3-none-any.whl"
    data = wheel_bytes("big", "1.0")
    # a bigger file (stored, so it stays big): streamed in several chunks
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
        with zipfile.ZipFile(__import__("io").BytesIO(data)) as src:
            for info in src.infolist():
                zf.writestr(info.filename, src.read(info.filename))
        zf.writestr("big/blob.bin", os.urandom(3 << 20))
    wh("index", "-t", "slim")
    server = Server(wh)
    yield server, project / "wheelhouse"
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (JSON_V1, JSON_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        (HTML_V1, HTML_V1),
        ("application/vnd.pypi.simple.latest+html", HTML_V1),
        ("text/html", "text/html"),
        (f"{JSON_V1}, {HTML_V1};q=0.1, text/html;q=0.01", JSON_V1),  # pip's
        (f"{JSON_V1};q=0.2, {HTML_V1};q=0.9", HTML_V1),
        (f"text/html;q=0.5, {JSON_V1};q=0.4", "text/html"),
        ("application/*", JSON_V1),  # most specific: application/* gives JSON and v1+html 1
        (f"*/*;q=0.1, {JSON_V1}", JSON_V1),
        ("*/*", "text/html"),
        (None, "text/html"),
        ("application/xml", None),
        (f"{JSON_V1};q=0, text/plain", None),
    ],
)
def test_content_negotiation(
    reader: tuple[Server, Path], accept: str | None, expected: str | None
) -> None:
    server, _ = reader
    headers = {"Accept": accept} if accept is not None else {}
    status, h, body = server.request("GET", "/simple/alpha/", headers)
    if expected is None:
        assert status == 406
        return
    assert status == 200
    if accept == "application/*":  # a tie between JSON and v1+html: both are right
        assert h["content-type"] in (JSON_V1, HTML_V1)
        return
    assert h["content-type"].split(";")[0] == expected
    assert "Accept" in h["vary"]
    if expected == JSON_V1:
        doc = json.loads(body)
        assert doc["name"] == "alpha"
        assert doc["files"][0]["url"] == "../../slim/alpha-1.0-py3-none-any.whl"
    else:
        assert b'href="../../slim/alpha-1.0-py3-none-any.whl#sha256=' in body


def test_pages_redirects_and_files(reader: tuple[Server, Path]) -> None:
    server, out = reader
    # the root of each index, and a target's own index
    status, h, body = server.get("/simple/", accept=JSON_V1)
    assert status == 200
    assert {p["name"] for p in json.loads(body)["projects"]} == {"alpha", "beta-pkg", "big"}
    status, h, body = server.get("/slim/simple/beta-pkg/", accept=JSON_V1)
    assert json.loads(body)["files"][0]["url"] == "../../beta_pkg-2.0-py3-none-any.whl"
    # ?format= (PEP 691) wins over Accept
    status, h, _ = server.get(f"/simple/alpha/?format={JSON_V1}", accept="text/html")
    assert h["content-type"] == JSON_V1
    # 301 to the normalized name and to the trailing slash, query kept
    for path, location in [
        ("/simple/Beta_Pkg/", "/simple/beta-pkg/"),
        ("/simple/BETA.pkg", "/simple/beta-pkg/"),
        ("/slim/simple/Beta_Pkg/?format=x", "/slim/simple/beta-pkg/?format=x"),
        ("/simple", "/simple/"),
    ]:
        status, h, _ = server.get(path)
        assert (status, h["location"]) == (301, location), path
    assert server.get("/simple/nope/")[0] == 404
    # gzip for clients that take it, the same bytes once unpacked
    import gzip

    _, plain_h, plain = server.get("/simple/alpha/", accept=JSON_V1)
    status, h, packed = server.get("/simple/alpha/", accept=JSON_V1, accept_encoding="gzip")
    assert h["content-encoding"] == "gzip" and gzip.decompress(packed) == plain
    assert "content-encoding" not in plain_h
    assert h["etag"] != plain_h["etag"]
    # conditional GET on pages
    status, _, body = server.get("/simple/alpha/", accept=JSON_V1, if_none_match=plain_h["etag"])
    assert (status, body) == (304, b"")
    # files: type, validators, conditional GET, ranges, HEAD
    wheel = out / "slim" / "big-1.0-py3-none-any.whl"
    data = wheel.read_bytes()
    status, h, body = server.get("/slim/big-1.0-py3-none-any.whl")
    assert status == 200 and body == data
    assert h["content-type"] == "application/zip" and h["accept-ranges"] == "bytes"
    assert int(h["content-length"]) == len(data)
    assert server.get("/slim/big-1.0-py3-none-any.whl", if_none_match=h["etag"])[0] == 304
    ims = server.get("/slim/big-1.0-py3-none-any.whl", if_modified_since=h["last-modified"])
    assert ims[0] == 304
    status, rh, body = server.get("/slim/big-1.0-py3-none-any.whl", range="bytes=100-199")
    assert (status, body, rh["content-range"]) == (206, data[100:200], f"bytes 100-199/{len(data)}")
    status, _, body = server.get("/slim/big-1.0-py3-none-any.whl", range="bytes=-10")
    assert (status, body) == (206, data[-10:])
    status, rh, _ = server.get("/slim/big-1.0-py3-none-any.whl", range=f"bytes={len(data)}-")
    assert (status, rh["content-range"]) == (416, f"bytes */{len(data)}")
    # If-Range with an old validator: the whole file
    status, _, body = server.get(
        "/slim/big-1.0-py3-none-any.whl", range="bytes=0-9", if_range='"stale"'
    )
    assert (status, len(body)) == (200, len(data))
    status, h, body = server.request("HEAD", "/slim/big-1.0-py3-none-any.whl")
    assert (status, body, int(h["content-length"])) == (200, b"", len(data))
    status, h, body = server.get("/slim/alpha-1.0-py3-none-any.whl.metadata")
    assert status == 200 and b"Name: alpha" in body
    # health
    status, h, body = server.get("/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    # uploads are off unless asked for
    assert server.request("POST", "/slim/", body=b"x")[0] == 405


def test_paths_never_leave_the_tree(reader: tuple[Server, Path]) -> None:
    server, out = reader
    (out.parent / "secret.txt").write_text("secret")
    for path in [
        "/slim/../wheelhouse.toml",
        "/slim/%2e%2e/wheelhouse.toml",
        "/slim/..%2f..%2fsecret.txt",
        "/../secret.txt",
        "/slim/simple/..%5c..%5csecret.txt",
    ]:
        status, _, body = server.get(path)
        assert status in (400, 404), path
        assert b"secret" not in body and b"targets" not in body
    # hidden files (index state, uploads in progress) and subfolders are not served
    assert server.get("/slim/simple/.index-state.json")[0] == 404
    assert server.get("/slim/simple/alpha/index.html")[0] == 404
    # a page file by name is a project name to normalize, and no such project
    status, h, _ = server.get("/simple/index.json")
    assert (status, h["location"]) == (301, "/simple/index-json/")
    assert server.get("/simple/index-json/")[0] == 404
    # the combined index's folder has no files of its own; a target's folder has no folders
    assert server.get("/alpha-1.0-py3-none-any.whl")[0] == 404
    assert server.get("/slim/simple")[0] == 301
    assert server.get("/other/alpha-1.0-py3-none-any.whl")[0] == 404


def test_one_target_is_served_at_the_root(
    wh: Wheelhouse, tree: Path, tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(wh, "--target", "slim")
    servers.append(server)
    _, _, body = server.get("/simple/", accept=JSON_V1)
    assert {p["name"] for p in json.loads(body)["projects"]} == {"alpha", "beta", "gamma"}
    assert server.get("/other/simple/")[0] == 404  # not served
    # the target's relative links resolve at the root
    target = tmp_path / "t"
    pip(tmp_path, "--index-url", f"{server.base}/simple/", "--target", str(target), "alpha")
    assert installed(target) == {"alpha"}
    assert any(r["path"] == "/alpha-1.0-py3-none-any.whl" for r in server.access_log())
    assert server.stop() == 0


# -- uploading --------------------------------------------------------------------------------


def twine(
    tmp_path: Path, url: str, user: str, password: str, *files: Path
) -> subprocess.CompletedProcess[str]:
    env = isolated_env(tmp_path / "twine-cache")
    env.pop("TWINE_USERNAME", None)
    env.pop("TWINE_PASSWORD", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            url,
            "-u",
            user,
            "-p",
            password,
            *map(str, files),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def uploader(wh: Wheelhouse, tree: Path, servers: list[Server]) -> Server:
    return upload_server(wh, servers, "--max-upload-size", "64K")


def test_twine_upload_publishes_and_indexes(uploader: Server, tree: Path, tmp_path: Path) -> None:
    server = uploader
    dist = tmp_path / "dist"
    new = put(dist, "zeta", "3.0", requires=["gamma"])
    res = twine(tmp_path, f"{server.base}/slim/", "ci", PASSWORD, new)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tree / "slim" / new.name).read_bytes() == new.read_bytes()
    # indexed at once, in the target's index and the combined one, with its metadata
    for path in ("/slim/simple/zeta/", "/simple/zeta/"):
        status, _, body = server.get(path, accept=JSON_V1)
        assert status == 200, path
        (entry,) = json.loads(body)["files"]
        assert entry["hashes"]["sha256"] == hashlib.sha256(new.read_bytes()).hexdigest()
        assert "core-metadata" in entry
    status, _, body = server.get("/simple/", accept=JSON_V1)
    assert "zeta" in {p["name"] for p in json.loads(body)["projects"]}
    # pip installs it (and its dependency) from the server
    target = tmp_path / "t"
    pip(tmp_path, "--index-url", f"{server.base}/simple/", "--target", str(target), "zeta")
    assert installed(target) == {"zeta", "gamma"}
    # the same bytes again: success, nothing changes
    res = twine(tmp_path, f"{server.base}/slim/", "ci", PASSWORD, new)
    assert res.returncode == 0, res.stdout + res.stderr
    # other bytes under the same name: 409, the published file is kept
    other = tmp_path / "other" / new.name
    other.parent.mkdir()
    other.write_bytes(wheel_bytes("zeta", "3.0", requires=["alpha"]))
    res = twine(tmp_path, f"{server.base}/slim/", "ci", PASSWORD, other)
    assert res.returncode != 0 and "409" in res.stdout + res.stderr
    assert (tree / "slim" / new.name).read_bytes() == new.read_bytes()
    log = [r for r in server.access_log() if r["method"] == "POST"]
    assert [r["status"] for r in log] == [200, 200, 409]
    assert all(r["user"] == "ci" for r in log)
    assert not [p for p in (tree / "slim").iterdir() if p.name.startswith(".upload")]


def test_twine_with_bad_credentials_is_refused(
    uploader: Server, tree: Path, tmp_path: Path
) -> None:
    server = uploader
    before = files_in(tree / "slim")
    new = put(tmp_path / "dist", "zeta", "3.0")
    for user, password in (("ci", "wrong password"), ("nobody", PASSWORD)):
        res = twine(tmp_path, f"{server.base}/slim/", user, password, new)
        assert res.returncode != 0
        assert "401" in res.stdout + res.stderr or "403" in res.stdout + res.stderr
    # no credentials at all: a challenge
    body, ctype = multipart({":action": "file_upload"}, new.name, new.read_bytes())
    status, h, _ = server.request("POST", "/slim/", {"Content-Type": ctype}, body)
    assert status == 401 and h["www-authenticate"].startswith("Basic ")
    assert files_in(tree / "slim") == before
    assert server.get("/simple/zeta/")[0] == 404


def test_bad_uploads_are_refused_and_write_nothing(
    uploader: Server, tree: Path, tmp_path: Path
) -> None:
    server = uploader
    auth = basic("ci", PASSWORD)
    before = files_in(tree / "slim")
    good = wheel_bytes("zeta", "3.0")
    name = wheel_filename("zeta", "3.0")
    sha = hashlib.sha256(good).hexdigest()
    fields = {":action": "file_upload", "name": "zeta", "version": "3.0", "sha256_digest": sha}
    corrupt = bytearray(good)
    corrupt[40:60] = b"\0" * 20
    cases = [
        # (why, fields, filename, content, content type, expected status)
        ("sha256 differs", {**fields, "sha256_digest": "0" * 64}, name, good, None, 400),
        ("name differs", {**fields, "name": "alpha"}, name, good, None, 400),
        ("version differs", {**fields, "version": "3.1"}, name, good, None, 400),
        ("not a zip", {**fields, "sha256_digest": ""}, name, b"not a zip" * 10, None, 400),
        ("corrupt member", {**fields, "sha256_digest": ""}, name, bytes(corrupt), None, 400),
        (
            "metadata differs",
            {**fields, "sha256_digest": "", "name": "zeta"},
            name,
            wheel_bytes("eta", "3.0"),
            None,
            400,
        ),
        ("an sdist", {**fields, "sha256_digest": ""}, "zeta-3.0.tar.gz", good, None, 400),
        ("path in name", fields, "../" + name, good, None, 400),
        ("not an upload", {**fields, ":action": "submit"}, name, good, None, 400),
        ("too big", fields, name, good + os.urandom(80 << 10), None, 413),
        ("no boundary", fields, name, good, "multipart/form-data", 400),
        ("not multipart", fields, name, good, "application/json", 400),
    ]
    for why, f, filename, content, ctype, expected in cases:
        body, default_type = multipart(f, filename, content)
        status, _, text = server.request(
            "POST", "/slim/", {"Authorization": auth, "Content-Type": ctype or default_type}, body
        )
        assert status == expected, (why, status, text)
    # a body cut off before its closing boundary, and garbage
    body, ctype = multipart(fields, name, good)
    for broken in (body[: len(body) // 2], b"--wheelhouse-test-boundary\r\nno headers\r\n"):
        status, _, text = server.request(
            "POST", "/slim/", {"Authorization": auth, "Content-Type": ctype}, broken
        )
        assert status == 400, text
    assert files_in(tree / "slim") == before
    assert server.get("/simple/zeta/")[0] == 404
    # and the good one goes through
    status, _, text = server.request(
        "POST", "/slim/legacy/", {"Authorization": auth, "Content-Type": ctype}, body
    )
    assert status == 200, text
    assert files_in(tree / "slim") - before == {name, name + ".metadata"}


# -- upstream -----------------------------------------------------------------------------------


def test_upstream_is_cached_and_survives_its_outage(
    wh: Wheelhouse, tree: Path, tmp_path: Path, servers: list[Server]
) -> None:
    upstream = LocalIndex(tmp_path / "upstream").start()
    try:
        upstream.add_wheel("omega", "1.0", requires=["gamma"])  # gamma is local
        upstream.add_wheel("omega", "2.0", requires_python=">=3.99")
        upstream.add_wheel("alpha", "9.0")  # shadowed: alpha is in the wheelhouse
        upstream.add_wheel("psi", "1.0")
        upstream.wrong_hashes[wheel_filename("psi", "1.0")] = "0" * 64
        server = Server(wh, "--upstream", upstream.url, "--upstream-ttl", "0")
        servers.append(server)

        status, _, body = server.get("/simple/omega/", accept=JSON_V1)
        assert status == 200
        doc = json.loads(body)
        # every link goes through this server, with the upstream's hash
        for f in doc["files"]:
            assert f["url"].startswith("/-/files/"), f
            assert f["url"] == f"/-/files/{f['hashes']['sha256']}/{f['filename']}"
        status, _, page = server.get("/simple/omega/", accept="text/html")
        assert b'href="/-/files/' in page and upstream.base.encode() not in page
        # a local project never falls through
        _, _, body = server.get("/simple/alpha/", accept=JSON_V1)
        assert [f["filename"] for f in json.loads(body)["files"]] == ["alpha-1.0-py3-none-any.whl"]

        target = tmp_path / "t1"
        pip(tmp_path, "--index-url", f"{server.base}/simple/", "--target", str(target), "omega")
        assert installed(target) == {"omega", "gamma"}
        assert upstream.file_requests() == [wheel_filename("omega", "1.0")]
        # a second client: the file comes from the store, not the upstream
        target = tmp_path / "t2"
        pip(tmp_path, "--index-url", f"{server.base}/simple/", "--target", str(target), "omega")
        assert upstream.file_requests() == [wheel_filename("omega", "1.0")]
        store = wh.cache_dir / "store" / "blobs"
        assert [p.name for p in store.rglob("*.whl")] == [wheel_filename("omega", "1.0")]

        # a file whose bytes do not match the upstream page's hash is refused, not stored
        _, _, body = server.get("/simple/psi/", accept=JSON_V1)
        (psi,) = json.loads(body)["files"]
        status, _, _ = server.get(psi["url"])
        assert status == 502
        assert wheel_filename("psi", "1.0") not in [p.name for p in store.rglob("*.whl")]
        # a file no page linked is not fetched
        assert server.get(f"/-/files/{'a' * 64}/omega-1.0-py3-none-any.whl")[0] == 404

        # the upstream goes down: cached pages (stale, TTL 0) and files still serve. Its
        # listening socket closes, and connections the server keeps alive break too
        upstream.close()

        def down(*args: object) -> str:
            raise ConnectionAbortedError("the upstream is down")

        upstream.project_json = upstream.project_html = down  # type: ignore[method-assign, assignment]
        upstream.root = tmp_path / "gone"
        target = tmp_path / "t3"
        pip(tmp_path, "--index-url", f"{server.base}/simple/", "--target", str(target), "omega")
        assert installed(target) == {"omega", "gamma"}
        status, h, _ = server.get("/simple/omega/", accept=JSON_V1)
        assert status == 200 and "warning" in h
        # what was never fetched cannot be had: 502, not a hang or a 500
        assert server.get("/simple/never-seen/")[0] == 502
        assert server.stop() == 0
    finally:
        upstream.close()


# -- load, memory, start-up -------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_load_has_no_errors_and_flat_memory(
    wh: Wheelhouse, tree: Path, servers: list[Server]
) -> None:
    slim = tree / "slim"
    for i in range(200):
        put(slim, f"load{i:03d}", "1.0")
    wh("index", "-t", "slim")
    server = Server(wh, "--no-access-log")
    servers.append(server)
    paths = [f"/simple/load{i:03d}/" for i in range(200)] + [
        f"/slim/load{i:03d}-1.0-py3-none-any.whl" for i in range(0, 200, 4)
    ]

    def client(n: int, rounds: int) -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        bad = []
        for k in range(rounds):
            path = paths[(n * 7 + k) % len(paths)]
            accept = JSON_V1 if k % 2 else "text/html"
            conn.request("GET", path, headers={"Accept": accept, "Accept-Encoding": "gzip"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                bad.append(resp.status)
        conn.close()
        return bad

    def load(rounds: int) -> list[int]:
        with ThreadPoolExecutor(50) as pool:
            return [s for bad in pool.map(client, range(50), [rounds] * 50) for s in bad]

    assert load(20) == []  # warm-up: every page cached, every code path run
    warm = rss_kib(server.proc.pid)
    assert load(100) == []  # 5,000 requests from 50 concurrent clients
    after = rss_kib(server.proc.pid)
    assert after - warm < 8 * 1024, (warm, after)  # flat: under 8 MiB of growth
    assert server.stop() == 0


def test_several_workers_share_the_port(wh: Wheelhouse, tree: Path, servers: list[Server]) -> None:
    server = Server(wh, "--workers", "2")
    servers.append(server)
    for _ in range(20):
        assert server.get("/simple/alpha/")[0] == 200
    assert server.stop() == 0


def test_upstream_flag_without_a_value_means_pypi(
    wh: Wheelhouse, tree: Path, servers: list[Server]
) -> None:
    server = Server(wh, "--upstream")  # nothing is asked of PyPI until a page is wanted
    servers.append(server)
    _, _, body = server.get("/health")
    assert json.loads(body)["upstream"] == "https://pypi.org/simple/"
    assert server.stop() == 0


def test_start_up_errors(wh: Wheelhouse, tree: Path) -> None:
    res = wh("serve", "--upload", check=False)
    assert res.returncode == 16 and "--password-file" in res.stderr
    res = wh("serve", "--upload", "--password-file", "missing.txt", check=False)
    assert res.returncode == 16 and "serve-user" in res.stderr
    res = wh("serve", "-t", "nope", check=False)
    assert res.returncode == 3
    # missing server packages: the error names the extra to install
    proc = subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            "import sys; sys.modules['uvicorn'] = None; from wheelhouse.cli import main; main()",
            "serve",
        ],
        cwd=wh.project,
        env=wh.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 16
    assert "pip install 'wheelhouse[serve]'" in proc.stderr and "uvicorn" in proc.stderr
    # the port is taken
    server = Server(wh)
    try:
        res = wh("serve", "--port", str(server.port), check=False)
        assert res.returncode == 16 and "cannot listen" in res.stderr
        assert "pick another --port" in res.stderr
    finally:
        assert server.stop() == 0
    # a host that is not this machine's (a name that does not resolve, an address it lacks)
    for host in ("999.1.1.1", "192.0.2.1"):
        res = wh("serve", "--host", host, "--port", "0", check=False)
        assert res.returncode == 16 and f"cannot listen on {host}:0" in res.stderr, res.stderr
        assert "--host must be an address of this machine" in res.stderr
        assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("upstream", "shown"),
    [
        ("notaurl", "'notaurl'"),
        ("ftp://user:secret@example.com/simple/", "'ftp://***@example.com/simple/'"),
        ("https://user:secret@example.com:port/simple/", "'example.com:port/simple/'"),
        ("https:///simple/", "'https:///simple/'"),
    ],
)
def test_an_upstream_that_is_no_http_url_is_refused_at_start(
    wh: Wheelhouse, tree: Path, upstream: str, shown: str
) -> None:
    """Not when the first page is asked for, and never showing its credentials."""
    res = wh("serve", "--port", "0", "--upstream", upstream, check=False, timeout=60)
    assert res.returncode == 16, res.stdout + res.stderr
    assert f"upstream {shown} is not the http(s) URL of an index" in res.stderr
    assert "secret" not in res.stderr and "Traceback" not in res.stderr
