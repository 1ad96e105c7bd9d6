"""The lock's index client and its page cache, against a real HTTP index on 127.0.0.1 that
says how long its pages stay fresh (Cache-Control: max-age), as PyPI does (600 s)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from wheelhouse.simple import IndexClient

SHA = "a" * 64
PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "alpha",
        "files": [
            {
                "filename": "alpha-1.0-py3-none-any.whl",
                "url": "alpha-1.0-py3-none-any.whl",
                "hashes": {"sha256": SHA},
            },
            *(
                {"filename": f"alpha-{v}.tar.gz", "url": f"alpha-{v}.tar.gz", "hashes": {}}
                for v in ("1.0.1", "2.0", "11.0")
            ),
        ],
    }
).encode()


class Index(ThreadingHTTPServer):
    requests: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Index

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.send_header("Cache-Control", "max-age=600")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)


@pytest.fixture
def index() -> Iterator[Index]:
    server = Index(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wheelhouse-index")]


def test_a_fresh_cached_page_is_read_without_a_request_or_a_thread(
    index: Index, tmp_path: Path
) -> None:
    """A lock's pages are fresh for max-age: the next lock reads them from the cache in the
    calling thread. A thread per page cost a lock ~100 ms: each start waits for the GIL
    that the threads started before hold."""
    url = f"http://127.0.0.1:{index.server_address[1]}/simple"
    with IndexClient(cache_dir=tmp_path) as first:
        links = first.project_links(url, "Alpha")
    assert [link.filename for link in links] == [
        "alpha-1.0-py3-none-any.whl",
        *(f"alpha-{v}.tar.gz" for v in ("1.0.1", "2.0", "11.0")),
    ]
    assert index.requests == ["/simple/alpha/"]
    for thread in pool_threads():  # the fetch's, ending after the pool's shutdown
        thread.join(timeout=10)

    with IndexClient(cache_dir=tmp_path) as second:  # the next lock, another process
        second.prefetch(url, "alpha")
        assert not pool_threads(), "a thread was started for a page the cache holds"
        again = second.project_links(url, "ALPHA")
    assert again == links
    assert index.requests == ["/simple/alpha/"]

    with IndexClient(cache_dir=tmp_path, ttl=0) as uncached:  # no cache: fetched again
        assert uncached.project_links(url, "alpha") == links
    assert index.requests == ["/simple/alpha/", "/simple/alpha/"]


def test_a_release_is_cached_alone_and_read_as_the_whole_page_would_be(
    index: Index, tmp_path: Path
) -> None:
    """A lock asks for each pin's release (a version hint): the cache keeps that release's
    files only (numpy's page has thousands), exactly those the whole page has of it: not
    1.0.1 or 11.0, whose names contain "1.0"."""
    url = f"http://127.0.0.1:{index.server_address[1]}/simple"
    with IndexClient(cache_dir=tmp_path) as first:
        whole = first.project_links(url, "alpha")
        release = first.project_links(url, "alpha", "1.0")
    assert [link.filename for link in release] == ["alpha-1.0-py3-none-any.whl"]
    assert release == [link for link in whole if link.filename == "alpha-1.0-py3-none-any.whl"]
    for thread in pool_threads():
        thread.join(timeout=10)
    cached = [p for p in (tmp_path / "pages").rglob("*.json")]
    assert sorted(len(json.loads(p.read_bytes())["links"]) for p in cached) == [1, 4]
    with IndexClient(cache_dir=tmp_path) as second:
        assert second.project_links(url, "alpha", "1.0") == release
        assert [link.filename for link in second.project_links(url, "alpha", "2.0")] == [
            "alpha-2.0.tar.gz"
        ]
    assert index.requests == ["/simple/alpha/"] * 3
