"""Upstream mode: projects that are not in the wheelhouse come from another index (PyPI by
default), through this server, once for a whole fleet of clients.

Pages: the upstream project page is fetched (PEP 691 JSON preferred, PEP 503 HTML read
too), kept on disk under the cache dir for `ttl` seconds, and rendered again as this
server's own HTML and JSON pages whose links point back here (`/-/files/<sha256>/<name>`),
with what the upstream says of each file (upload-time, yanked, requires-python, core
metadata: policy.py) and less what the server's policy hides. Only files whose sha256 the
upstream page publishes are listed: every byte handed out is checked against it. When the
upstream cannot be reached (or answers 5xx), the last page fetched is served, however
old: a CI fleet keeps installing what it installed before. A name the upstream does not
know is remembered (in memory, for `ttl`), and only canonical names of a sane length are
ever asked: made-up names cost neither requests nor cache files.

Files: downloaded once into the content-addressed store (wheelhouse.store.Store under the
cache dir, the same one `wheelhouse build` uses), hashed while downloading and refused on
a mismatch, then served from the store. A file is served only under the name a fetched
page links with its hash (never any blob of the shared store under any name), and only
while the policy shows it. Its PEP 658 `.metadata` is fetched the same way, checked
against the page's core-metadata hash and cached. A file is fetched once even when many
clients ask for it at the same moment.

A project in the wheelhouse never falls through: its local page wins, so a public project
cannot shadow an internal one (dependency confusion).

The upstream URL may carry credentials (`https://user:token@host/simple/`): `redact`
takes them out of everything shown (pages, errors, /health, logs).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelhouse.fsutil import atomic_write
from wheelhouse.serve.policy import (
    Policy,
    UpstreamFile,
    parse_html_page,
    parse_json_page,
    redact,
    render,
)
from wheelhouse.serve.static import Page
from wheelhouse.simple import ACCEPT, http_session, parse_filename
from wheelhouse.store import Store

if TYPE_CHECKING:
    import requests

_MEMORY = 5_000  # upstream projects held in memory per process (the disk keeps them all)
_MISSING = 20_000  # names the upstream does not know, remembered per process
_TIMEOUT = 30
_BLOCK = 1 << 20
_MAX_METADATA = 16 << 20  # bytes of a .metadata file (PyPI's largest are a few MB)


class UpstreamError(Exception):
    """The upstream could not give an answer (and nothing cached can stand in)."""


class Upstream:
    def __init__(
        self,
        url: str,
        cache_dir: Path,
        *,
        ttl: float,
        ca_bundle: str | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        key = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.pages = cache_dir / "serve-upstream" / key
        self.pages.mkdir(parents=True, exist_ok=True)
        self.metadata_dir = self.pages / ".metadata"
        self.store = Store(cache_dir)
        self.ttl = ttl
        self.ca_bundle = ca_bundle
        self.policy = policy or Policy()
        self._local = threading.local()
        # project -> (fetched, files shown, html Page, json Page) rendered from that fetch
        self._rendered: dict[str, tuple[float, int, Page, Page]] = {}
        self._docs: dict[str, dict[str, Any]] = {}  # project -> the page's data, as fetched
        self._files: dict[str, list[UpstreamFile]] = {}  # project -> its files, parsed
        self._missing: dict[str, float] = {}  # project -> when the upstream said 404
        self._inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._downloads: dict[str, asyncio.Future[Path]] = {}

    def shown(self, text: str) -> str:
        return redact(text, self.url)

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
        ok = isinstance(doc, dict) and "fetched" in doc and doc.get("version") == 2
        return doc if ok else None

    def _fetch(self, project: str) -> dict[str, Any]:
        """GET the upstream page (blocking) and keep what it lists on disk."""
        import requests

        url = self.url + project + "/"
        try:
            resp = self._session.get(url, headers={"Accept": ACCEPT}, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            raise UpstreamError(f"{self.shown(url)}: {type(exc).__name__}") from None
        if resp.status_code == 404:
            # remembered in memory only: made-up names must not fill the disk
            return {"fetched": time.time(), "missing": True, "files": []}
        if resp.status_code != 200:
            raise UpstreamError(f"{self.shown(url)}: HTTP {resp.status_code}")
        ctype = resp.headers.get("Content-Type", "")
        try:
            if "json" in ctype:
                files = parse_json_page(resp.content, resp.url)
            else:
                files = parse_html_page(resp.text, resp.url)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamError(f"{self.shown(url)}: unreadable page ({exc})") from None
        doc = {
            "version": 2,
            "fetched": time.time(),
            "missing": False,
            "files": [asdict(f) for f in files],
        }
        atomic_write(self._page_file(project), json.dumps(doc))
        return doc

    def _keep(self, project: str, doc: dict[str, Any]) -> None:
        if doc.get("missing"):
            _remember(self._missing, project, float(doc["fetched"]), _MISSING)
            return
        if self._docs.get(project) is not doc:
            _remember(self._docs, project, doc, _MEMORY)
            _remember(self._files, project, [UpstreamFile(**f) for f in doc["files"]], _MEMORY)

    async def _listing(self, project: str) -> tuple[dict[str, Any], bool]:
        """(the page's data, whether it is stale because the upstream is down)."""
        missing = self._missing.get(project)
        if missing is not None and time.time() - missing < self.ttl:
            return {"fetched": missing, "missing": True, "files": []}, False
        cached = self._docs.get(project)  # this process's copy first: no disk, no thread
        if cached is None or time.time() - cached["fetched"] >= self.ttl:
            cached = await asyncio.to_thread(self._read_cached, project) or cached
        if cached is not None and time.time() - cached["fetched"] < self.ttl:
            self._keep(project, cached)
            return cached, False
        fut = self._inflight.get(project)  # one fetch for every client asking now
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(self._fetch, project))
            self._inflight[project] = fut
            fut.add_done_callback(lambda _: self._inflight.pop(project, None))
        try:
            doc = await asyncio.shield(fut)
            self._keep(project, doc)
            return doc, False
        except UpstreamError:
            if cached is None:
                raise
            self._keep(project, cached)
            return cached, True

    async def page(self, project: str) -> tuple[Page, Page, bool] | None:
        """(HTML page, JSON page, stale) for a canonical project name; None when the
        upstream has no such project. Raises UpstreamError when it cannot be asked and
        nothing is cached."""
        doc, stale = await self._listing(project)
        if doc.get("missing"):
            return None
        fetched = float(doc["fetched"])
        every = self._files.get(project)
        if every is None:  # evicted from memory a moment ago: from the page's data
            every = [UpstreamFile(**f) for f in doc["files"]]
        files, hidden = self.policy.visible(every, time.time())
        hit = self._rendered.get(project)
        if hit is None or hit[0] != fetched or hit[1] != len(files):
            page_html, page_json = render(project, files, self.policy, hidden)
            stamp = (int(fetched * 1e9) + len(files), len(page_html), 0)
            html_page, json_page = Page(page_html, stamp, fetched), Page(page_json, stamp, fetched)
            hit = (fetched, len(files), html_page, json_page)
            _remember(self._rendered, project, hit, _MEMORY)
        return hit[2], hit[3], stale

    # -- files ------------------------------------------------------------------------

    def _link(self, sha256: str, filename: str) -> UpstreamFile | None:
        """The file a fetched page links under this name with this hash, if the policy
        shows it now (blocking: may read the page's cache file)."""
        parsed = parse_filename(filename)
        if parsed is None:
            return None
        project = str(parsed[0])
        files = self._files.get(project)
        if files is None:
            doc = self._read_cached(project)
            files = [UpstreamFile(**f) for f in doc["files"]] if doc else []
        shown, _ = self.policy.visible(files, time.time())
        for f in shown:
            if f.filename == filename and f.sha256 == sha256:
                return f
        return None

    def _download(self, sha256: str, filename: str) -> Path:
        """Fetch, hash-check and store one file (blocking)."""
        import requests

        link = self._link(sha256, filename)
        if link is None:
            raise FileNotFoundError(filename)
        blob = self.store.get(sha256)
        if blob is not None:
            return blob.path
        tmp = self.store.tempdir("upstream-") / "download"
        digest = hashlib.sha256()
        shown = self.shown(link.url)
        try:
            try:
                with self._session.get(link.url, stream=True, timeout=_TIMEOUT) as resp:
                    if resp.status_code != 200:
                        raise UpstreamError(f"{shown}: HTTP {resp.status_code}")
                    with tmp.open("wb") as out:
                        for block in resp.iter_content(_BLOCK):
                            digest.update(block)
                            out.write(block)
            except requests.RequestException as exc:
                raise UpstreamError(f"{shown}: {type(exc).__name__}") from None
            if digest.hexdigest() != sha256:
                raise UpstreamError(
                    f"{shown}: sha256 {digest.hexdigest()} is not the {sha256} its page published"
                )
            return self.store.put(tmp, filename, sha256=sha256).path
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)

    def _metadata(self, sha256: str, filename: str) -> Path:
        """The wheel's PEP 658 metadata, fetched, checked against the page's hash and
        cached (blocking)."""
        import requests

        link = self._link(sha256, filename)
        if link is None or link.metadata_sha256 is None:
            raise FileNotFoundError(filename)
        path = self.metadata_dir / link.metadata_sha256
        if path.is_file():
            return path
        url = link.url.split("#", 1)[0] + ".metadata"
        try:
            with self._session.get(url, stream=True, timeout=_TIMEOUT) as resp:
                if resp.status_code != 200:
                    raise UpstreamError(f"{self.shown(url)}: HTTP {resp.status_code}")
                data = b""
                for block in resp.iter_content(_BLOCK):
                    data += block
                    if len(data) > _MAX_METADATA:
                        raise UpstreamError(f"{self.shown(url)}: over {_MAX_METADATA} bytes")
        except requests.RequestException as exc:
            raise UpstreamError(f"{self.shown(url)}: {type(exc).__name__}") from None
        got = hashlib.sha256(data).hexdigest()
        if got != link.metadata_sha256:
            raise UpstreamError(
                f"{self.shown(url)}: sha256 {got} is not the {link.metadata_sha256} "
                "its page published"
            )
        atomic_write(path, data, durable=False)
        return path

    async def file(self, sha256: str, filename: str) -> Path | None:
        """The stored file (downloaded first if need be), or its `.metadata` when the
        name ends so; None when no fetched page links it (or the policy hides it).
        Raises UpstreamError when the upstream fails and the file is not stored."""
        meta = filename.endswith(".whl.metadata")
        key = f"{sha256}/{filename}"  # a name is part of the question, not only the hash
        fut = self._downloads.get(key)
        if fut is None:
            if meta:
                job = asyncio.to_thread(self._metadata, sha256, filename[: -len(".metadata")])
            else:
                job = asyncio.to_thread(self._download, sha256, filename)
            fut = asyncio.ensure_future(job)
            self._downloads[key] = fut
            fut.add_done_callback(lambda _: self._downloads.pop(key, None))
        try:
            return await asyncio.shield(fut)
        except FileNotFoundError:
            return None


def _remember(memory: dict[str, Any], key: str, value: Any, limit: int) -> None:
    """Bounded: past the limit the oldest entry goes (it is still on disk)."""
    if key not in memory and len(memory) >= limit:
        memory.pop(next(iter(memory)))
    memory[key] = value
