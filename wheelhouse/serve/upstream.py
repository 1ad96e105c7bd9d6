"""Upstream mode: projects that are not in the wheelhouse come from another index (PyPI by
default), through this server, once for a whole fleet of clients.

Pages: the upstream project page is fetched (PEP 691 JSON preferred, PEP 503 HTML read
too), kept on disk under the cache dir for `ttl` seconds, and rendered again as this
server's own HTML and JSON pages whose links point back here (`/-/files/<sha256>/<name>`).
Only files whose sha256 the upstream page publishes are listed: every byte handed out is
checked against it. When the upstream cannot be reached (or answers 5xx), the last page
fetched is served, however old: a CI fleet keeps installing what it installed before.

Files: downloaded once into the content-addressed store (wheelhouse.store.Store under the
cache dir, the same one `wheelhouse build` uses), hashed while downloading and refused on
a mismatch, then served from the store (with ranges and validators like any local file).
A file is fetched once even when many clients ask for it at the same moment.

A project in the wheelhouse never falls through: its local page wins, so a public project
cannot shadow an internal one (dependency confusion).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import shutil
import threading
import time
import urllib.parse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelhouse.fsutil import atomic_write
from wheelhouse.serve.static import Page
from wheelhouse.simple import (
    ACCEPT,
    FileLink,
    http_session,
    parse_filename,
    parse_html,
    parse_json,
)
from wheelhouse.store import Store

if TYPE_CHECKING:
    import requests

FILES_PREFIX = "/-/files/"
_MEMORY = 5_000  # upstream projects held in memory per process (the disk keeps them all)
_TIMEOUT = 30
_BLOCK = 1 << 20


class UpstreamError(Exception):
    """The upstream could not give an answer (and nothing cached can stand in)."""


class Upstream:
    def __init__(
        self, url: str, cache_dir: Path, *, ttl: float, ca_bundle: str | None = None
    ) -> None:
        self.url = url.rstrip("/") + "/"
        key = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.pages = cache_dir / "serve-upstream" / key
        self.pages.mkdir(parents=True, exist_ok=True)
        self.store = Store(cache_dir)
        self.ttl = ttl
        self.ca_bundle = ca_bundle
        self._local = threading.local()
        # project -> (fetched, html Page, json Page) rendered from that fetch
        self._rendered: dict[str, tuple[float, Page, Page]] = {}
        self._docs: dict[str, dict[str, Any]] = {}  # project -> the page's data, as fetched
        self._inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._downloads: dict[str, asyncio.Future[Path]] = {}

    # -- pages ------------------------------------------------------------------------

    @property
    def _session(self) -> requests.Session:
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = http_session(self.ca_bundle, "wheelhouse-serve")
        return s

    def _page_file(self, project: str) -> Path:
        return self.pages / f"{project}.json"

    def _read_cached(self, project: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(self._page_file(project).read_bytes())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and "fetched" in doc else None

    def _fetch(self, project: str) -> dict[str, Any]:
        """GET the upstream page (blocking) and keep what it lists on disk."""
        import requests

        url = self.url + project + "/"
        try:
            resp = self._session.get(url, headers={"Accept": ACCEPT}, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            raise UpstreamError(f"{url}: {type(exc).__name__}") from None
        if resp.status_code == 404:
            doc: dict[str, Any] = {"fetched": time.time(), "missing": True, "files": []}
        elif resp.status_code != 200:
            raise UpstreamError(f"{url}: HTTP {resp.status_code}")
        else:
            ctype = resp.headers.get("Content-Type", "")
            try:
                if "json" in ctype:
                    links = parse_json(resp.content, resp.url)
                else:
                    links = parse_html(resp.text, resp.url)
            except (ValueError, KeyError, TypeError) as exc:
                raise UpstreamError(f"{url}: unreadable page ({exc})") from None
            doc = {
                "fetched": time.time(),
                "missing": False,
                "files": [asdict(link) for link in links if link.sha256],
            }
        atomic_write(self._page_file(project), json.dumps(doc))
        return doc

    async def _listing(self, project: str) -> tuple[dict[str, Any], bool]:
        """(the page's data, whether it is stale because the upstream is down)."""
        cached = self._docs.get(project)  # this process's copy first: no disk, no thread
        if cached is None or time.time() - cached["fetched"] >= self.ttl:
            cached = await asyncio.to_thread(self._read_cached, project) or cached
        if cached is not None and time.time() - cached["fetched"] < self.ttl:
            _remember(self._docs, project, cached)
            return cached, False
        fut = self._inflight.get(project)  # one fetch for every client asking now
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(self._fetch, project))
            self._inflight[project] = fut
            fut.add_done_callback(lambda _: self._inflight.pop(project, None))
        try:
            doc = await asyncio.shield(fut)
            _remember(self._docs, project, doc)
            return doc, False
        except UpstreamError:
            if cached is None:
                raise
            return cached, True

    async def page(self, project: str) -> tuple[Page, Page, bool] | None:
        """(HTML page, JSON page, stale) for a canonical project name; None when the
        upstream has no such project. Raises UpstreamError when it cannot be asked and
        nothing is cached."""
        doc, stale = await self._listing(project)
        if doc.get("missing"):
            return None
        fetched = float(doc["fetched"])
        hit = self._rendered.get(project)
        if hit is None or hit[0] != fetched:
            links = [FileLink(**f) for f in doc["files"]]
            page_html, page_json = render(project, links)
            stamp = (int(fetched * 1e9), len(page_html), 0)
            hit = (fetched, Page(page_html, stamp, fetched), Page(page_json, stamp, fetched))
            _remember(self._rendered, project, hit)
        return hit[1], hit[2], stale

    # -- files ------------------------------------------------------------------------

    def _url_of(self, sha256: str, filename: str) -> str | None:
        parsed = parse_filename(filename)
        if parsed is None:
            return None
        doc = self._read_cached(parsed[0])
        for f in (doc or {}).get("files", []):
            if f.get("filename") == filename and f.get("sha256") == sha256:
                return str(f["url"])
        return None

    def _download(self, sha256: str, filename: str) -> Path:
        """Fetch, hash-check and store one file (blocking)."""
        import requests

        blob = self.store.get(sha256)
        if blob is not None:
            return blob.path
        url = self._url_of(sha256, filename)
        if url is None:
            raise FileNotFoundError(filename)
        tmp = self.store.tempdir("upstream-") / "download"
        digest = hashlib.sha256()
        try:
            try:
                with self._session.get(url, stream=True, timeout=_TIMEOUT) as resp:
                    if resp.status_code != 200:
                        raise UpstreamError(f"{url}: HTTP {resp.status_code}")
                    with tmp.open("wb") as out:
                        for block in resp.iter_content(_BLOCK):
                            digest.update(block)
                            out.write(block)
            except requests.RequestException as exc:
                raise UpstreamError(f"{url}: {type(exc).__name__}") from None
            if digest.hexdigest() != sha256:
                raise UpstreamError(
                    f"{url}: sha256 {digest.hexdigest()} is not the {sha256} its page published"
                )
            return self.store.put(tmp, filename, sha256=sha256).path
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)

    async def file(self, sha256: str, filename: str) -> Path | None:
        """The stored file (downloaded first if need be); None when no fetched page links
        it. Raises UpstreamError when the upstream fails and the file is not stored."""
        fut = self._downloads.get(sha256)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(self._download, sha256, filename))
            self._downloads[sha256] = fut
            fut.add_done_callback(lambda _: self._downloads.pop(sha256, None))
        try:
            return await asyncio.shield(fut)
        except FileNotFoundError:
            return None


def _remember(memory: dict[str, Any], key: str, value: Any) -> None:
    """Bounded: past the limit the oldest entry goes (it is still on disk)."""
    if key not in memory and len(memory) >= _MEMORY:
        memory.pop(next(iter(memory)))
    memory[key] = value


def render(project: str, links: list[FileLink]) -> tuple[bytes, bytes]:
    """This server's PEP 503 and PEP 691 pages for upstream files, linked through it."""
    rows = []
    files = []
    for link in sorted(links, key=lambda x: x.filename):
        assert link.sha256 is not None
        href = f"{FILES_PREFIX}{link.sha256}/{urllib.parse.quote(link.filename)}"
        attrs = f'href="{html.escape(href)}#sha256={link.sha256}"'
        if link.requires_python:
            attrs += f' data-requires-python="{html.escape(link.requires_python)}"'
        if link.yanked:
            attrs += ' data-yanked=""'
        rows.append(f"    <a {attrs}>{html.escape(link.filename)}</a><br>\n")
        entry: dict[str, Any] = {
            "filename": link.filename,
            "url": href,
            "hashes": {"sha256": link.sha256},
            "yanked": link.yanked,
        }
        if link.requires_python:
            entry["requires-python"] = link.requires_python
        files.append(entry)
    page = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>Links for {html.escape(project)}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {html.escape(project)}</h1>\n" + "".join(rows) + "  </body>\n</html>\n"
    )
    doc = {"meta": {"api-version": "1.0"}, "name": project, "files": files}
    return page.encode(), json.dumps(doc, separators=(",", ":")).encode()
