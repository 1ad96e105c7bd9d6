"""A client for PEP 503 (HTML) and PEP 691 (JSON) simple repositories and find-links.

The lock's hashes come from here: every index already publishes each file's sha256 (in the
`#sha256=` fragment or the JSON `hashes`), so a lock needs no file downloads at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse import __version__
from wheelhouse.config import IndexSettings
from wheelhouse.errors import HashMismatchError, IndexUnreachableError
from wheelhouse.fsutil import atomic_write, writing

if TYPE_CHECKING:  # requests costs ~50 ms to import; a warm lock never needs it
    from concurrent.futures import Future, ThreadPoolExecutor

    import requests

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)
_TIMEOUT = 60


@dataclass(frozen=True, kw_only=True)
class FileLink:
    filename: str
    url: str
    sha256: str | None
    requires_python: str | None = None
    yanked: bool = False
    # what the proxy (serve/policy.py) passes on besides: the PEP 592 reason, and the
    # PEP 658/714 attribute as the page writes it ("sha256=<hex>", "true")
    yanked_reason: str | None = None
    core_metadata: str | None = None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """A file of a project's release, with its parsed identity."""

    link: FileLink
    name: NormalizedName
    version: Version
    tags: frozenset[Tag]  # empty for an sdist


def parse_filename(filename: str) -> tuple[NormalizedName, Version, frozenset[Tag]] | None:
    """Name, version and tags of a wheel or sdist file name; None for anything else."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
            return name, version, tags
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return name, version, frozenset()
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def parse_html(text: str, base_url: str, hint: str | None = None) -> list[FileLink]:
    """Links of a PEP 503 page. ``hint``: only anchors containing it are parsed (fast path
    for pages with thousands of files, such as numpy's); the caller falls back to None."""
    if hint is not None:
        chunks = re.split(r"(?i)(?=<a\s)", text)
        head = chunks[0] if chunks and not chunks[0].lower().startswith("<a") else ""
        text = head + "".join(c for c in chunks if hint in c)
    from wheelhouse.anchors import anchors  # html.parser: only for an HTML page

    links = []
    for anchor in anchors(text, base_url):
        url, _, fragment = anchor.url.partition("#")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        m = re.search(r"(?:^|&)sha256=([0-9a-fA-F]{64})", fragment)
        attrs = anchor.attrs
        links.append(
            FileLink(
                filename=filename,
                url=url,
                sha256=m.group(1).lower() if m else None,
                requires_python=attrs.get("data-requires-python"),
                yanked="data-yanked" in attrs,
                yanked_reason=attrs.get("data-yanked"),
                core_metadata=attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata")),
            )
        )
    return links


def parse_json(data: bytes, base_url: str) -> list[FileLink]:
    doc = json.loads(data)
    links = []
    for f in doc.get("files", []):
        yanked = f.get("yanked", False)
        links.append(
            FileLink(
                filename=f["filename"],
                url=urllib.parse.urljoin(base_url, f["url"]),
                sha256=(f.get("hashes") or {}).get("sha256"),
                requires_python=f.get("requires-python"),
                yanked=bool(yanked),
            )
        )
    return links


# How long a project page's file list is reused without asking the index again: PyPI's
# own Cache-Control max-age for simple pages, the freshness pip and uv also work with.
PAGE_TTL = 600.0


class IndexClient:
    """Fetches project pages from indexes and find-links; thread-safe, one session each.

    Results are memoized per process (so pages prefetched while a resolver runs are ready
    when hashing starts) and, with a cache folder, kept on disk for PAGE_TTL seconds.
    """

    def __init__(
        self,
        *,
        ca_bundle: Path | None = None,
        cache_dir: Path | None = None,
        ttl: float = PAGE_TTL,
    ) -> None:
        self.ca_bundle = ca_bundle
        self.cache_dir = cache_dir
        self.ttl = ttl
        self._local = threading.local()
        # a page fresh in the cache is read at once (starting a thread waits on the GIL
        # the others hold: costlier than the read); the others are fetched in the pool
        self._memo: dict[tuple[str, str, str | None], Future[list[FileLink]] | list[FileLink]] = {}
        self._memo_lock = threading.Lock()
        self._links_memo: dict[str, Future[list[FileLink]]] = {}
        self._pool_: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def _pool(self) -> ThreadPoolExecutor:
        # made on first use: a warm build that finds everything in the store never needs it
        with self._pool_lock:
            if self._pool_ is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool_ = ThreadPoolExecutor(
                    max_workers=16, thread_name_prefix="wheelhouse-index"
                )
            return self._pool_

    def close(self) -> None:
        if self._pool_ is not None:
            self._pool_.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prefetch(self, index_url: str, project: str, hint: str | None = None) -> None:
        """Start fetching a page in the background (e.g. while the resolver runs)."""
        self._future(index_url, project, hint)

    def _future(
        self, index_url: str, project: str, hint: str | None
    ) -> Future[list[FileLink]] | list[FileLink]:
        key = (index_url, str(canonicalize_name(project)), hint)
        with self._memo_lock:
            fut = self._memo.get(key)
            if fut is None:
                fut = self._fresh_links(index_url, project, hint)
                if fut is None:
                    fut = self._pool.submit(self._cached_links, index_url, project, hint)
                self._memo[key] = fut
        return fut

    def _cache_file(self, url: str, hint: str | None) -> Path | None:
        if self.cache_dir is None or url.startswith("file://"):
            return None
        key = hashlib.sha256(f"{url}\n{hint or ''}".encode()).hexdigest()
        return self.cache_dir / "pages" / key[:2] / f"{key}.json"

    def _fresh_links(self, index_url: str, project: str, hint: str | None) -> list[FileLink] | None:
        """The page's links from the cache while they are fresh, else None."""
        url = index_url.rstrip("/") + f"/{canonicalize_name(project)}/"
        cache = self._cache_file(url, hint)
        if cache is not None and self.ttl > 0:
            try:
                doc = json.loads(cache.read_bytes())
                if time.time() < doc["expires"]:
                    return [FileLink(**d) for d in doc["links"]]
            except (OSError, ValueError, TypeError, KeyError):
                pass
        return None

    def _cached_links(self, index_url: str, project: str, hint: str | None) -> list[FileLink]:
        """The page fetched (`_future` found no fresh copy in the cache) and cached."""
        url = index_url.rstrip("/") + f"/{canonicalize_name(project)}/"
        cache = self._cache_file(url, hint)
        links, max_age = self._fetch_links(index_url, project, hint)
        if hint is not None:  # the release's files alone: what is kept is read again soon
            links = _of_release(links, project, hint)
        # The index's Cache-Control decides how long its answer stays fresh, as in pip's
        # and uv's HTTP caches; PAGE_TTL only where it says nothing.
        ttl = self.ttl if max_age is None else min(self.ttl, max_age)
        if cache is not None and ttl > 0:
            doc = {"expires": time.time() + ttl, "links": [asdict(link) for link in links]}
            atomic_write(cache, json.dumps(doc))
        return links

    @property
    def session(self) -> requests.Session:
        import requests

        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = http_session(self.ca_bundle, "wheelhouse")
            adapter = requests.adapters.HTTPAdapter(max_retries=3, pool_maxsize=16)
            s.mount("https://", adapter)
            s.mount("http://", adapter)
            self._local.session = s
        return s

    def get(self, url: str, **kw: object) -> requests.Response:
        """A GET through this client's session (retries, CA bundle); errors made clear."""
        return self._get(url, **kw)

    def _get(self, url: str, **kw: object) -> requests.Response:
        import requests

        try:
            return self.session.get(url, timeout=_TIMEOUT, **kw)  # type: ignore[arg-type]
        except requests.exceptions.SSLError as e:
            raise IndexUnreachableError(
                f"TLS verification failed for {redact(url)}: {e}",
                hint="behind a TLS-intercepting proxy, set ca-bundle in wheelhouse.toml "
                "(or PIP_CERT) to the proxy's CA bundle",
            ) from None
        except requests.exceptions.RequestException as e:
            raise IndexUnreachableError(
                f"cannot reach {redact(url)}: {type(e).__name__}",
                hint="check index-url / extra-index-urls in wheelhouse.toml, your network "
                "and HTTP(S)_PROXY",
            ) from None

    def check_reachable(self, index_url: str) -> None:
        """Say clearly which index is unreachable (a resolver buries it in its output)."""
        import requests

        if index_url.startswith("file://"):
            path = file_path(index_url)
            if not path.is_dir():
                raise IndexUnreachableError(
                    f"index {index_url} is not a folder", hint="fix the file:// index URL"
                )
            return
        try:
            resp = self.session.head(index_url.rstrip("/") + "/", timeout=15, allow_redirects=True)
        except requests.exceptions.RequestException as e:
            raise IndexUnreachableError(
                f"package index {redact(index_url)} is unreachable ({type(e).__name__})",
                hint="check index-url / extra-index-urls in wheelhouse.toml, your network "
                "and HTTP(S)_PROXY",
            ) from None
        if resp.status_code in (401, 403):
            raise IndexUnreachableError(
                f"package index {redact(index_url)} refused access (HTTP {resp.status_code})",
                hint="put credentials in the URL or ~/.netrc",
            )

    def project_links(
        self, index_url: str, project: str, hint: str | None = None
    ) -> list[FileLink]:
        """Files of one project on one index; [] when the index does not have it. With a
        `hint` (a version): that release's files (on an HTML page, found by its text)."""
        fut = self._future(index_url, project, hint)
        return fut if isinstance(fut, list) else fut.result()

    def _fetch_links(
        self, index_url: str, project: str, hint: str | None
    ) -> tuple[list[FileLink], float | None]:
        """The page's links and how long the index says they stay fresh (None: unsaid)."""
        name = canonicalize_name(project)
        url = index_url.rstrip("/") + f"/{name}/"
        if url.startswith("file://"):
            return _file_index_links(url, hint), 0
        resp = self._get(url, headers={"Accept": ACCEPT})
        max_age = _max_age(resp.headers.get("Cache-Control", ""))
        if resp.status_code == 404:
            return [], max_age
        if resp.status_code >= 400:
            raise IndexUnreachableError(
                f"{redact(url)} answered HTTP {resp.status_code}",
                hint="check the index URL and credentials",
            )
        ctype = resp.headers.get("Content-Type", "")
        if "json" in ctype:
            return parse_json(resp.content, resp.url), max_age
        return parse_html(resp.text, resp.url, hint), max_age

    def release_files(self, index: IndexSettings, name: str, version: str) -> list[Distribution]:
        """Every file of `name==version` in find-links and on every index."""
        want = Version(version)
        dists: list[Distribution] = []
        for location in index.find_links:
            dists += distributions(self.find_links(location), name, want)
        for url in index.all_index_urls:
            found = distributions(self.project_links(url, name, version), name, want)
            # the fast path (only anchors containing the version text) can miss an
            # unusual spelling of the version: then the whole page
            dists += found or distributions(self.project_links(url, name), name, want)
        return dists

    def find_links(self, location: str) -> list[FileLink]:
        """Files in a find-links folder or page (listed once per client)."""
        with self._memo_lock:
            fut = self._links_memo.get(location)
            if fut is None:
                fut = self._pool.submit(self._find_links, location)
                self._links_memo[location] = fut
        return fut.result()

    def _find_links(self, location: str) -> list[FileLink]:
        if "://" not in location or location.startswith("file://"):
            path = file_path(location) if location.startswith("file://") else Path(location)
            if not path.is_dir():
                raise IndexUnreachableError(
                    f"find-links folder {location} does not exist",
                    hint="create it or remove it from find-links",
                )
            return [
                FileLink(filename=p.name, url=p.resolve().as_uri(), sha256=None)
                for p in sorted(path.iterdir())
                if p.is_file()
            ]
        resp = self._get(location)
        if resp.status_code >= 400:
            raise IndexUnreachableError(f"{redact(location)} answered HTTP {resp.status_code}")
        return parse_html(resp.text, resp.url)

    def _stream(self, link: FileLink, sink: Callable[[bytes], object]) -> str:
        """Stream a file (http(s) or file://) through `sink`; its sha256."""
        h = hashlib.sha256()
        if link.url.startswith("file://"):
            with file_path(link.url).open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
                    sink(block)
            return h.hexdigest()
        resp = self._get(link.url, stream=True)
        with resp:
            if resp.status_code >= 400:
                raise IndexUnreachableError(
                    f"{redact(link.url)} answered HTTP {resp.status_code}",
                    hint="check the index and your credentials, then rerun",
                )
            for block in resp.iter_content(1 << 20):
                h.update(block)
                sink(block)
        return h.hexdigest()

    def sha256_of(self, link: FileLink) -> str:
        """Hash a file by streaming it: only for links whose index gave no hash."""
        digest = self._stream(link, lambda block: None)
        if link.sha256 and link.sha256 != digest:
            raise HashMismatchError(
                f"{link.filename}: index says sha256 {link.sha256}, file has {digest}",
                hint="the index or a proxy serves corrupted files; do not use it",
            )
        return digest

    def download(self, link: FileLink, dest: Path, *, expected: str, what: str) -> None:
        """Download `link` to `dest`, failing closed unless its bytes hash to `expected`
        (what a lock or a pin allows). `what` names it in the error."""
        with writing(dest):
            out = dest.open("wb")

        def sink(block: bytes) -> None:
            with writing(dest):  # a full disk names the file, not the index's side
                out.write(block)

        try:
            actual = self._stream(link, sink)
        finally:
            with writing(dest):  # close() writes what is buffered
                out.close()
        if actual != expected:
            dest.unlink(missing_ok=True)
            raise HashMismatchError(
                f"{what}: {link.filename} has sha256 {actual}, but the lock expects {expected}",
                hint="the index or a proxy served other bytes than were locked; nothing was "
                "stored. If the release really changed, re-lock; otherwise treat it as tampering",
            )


def http_session(ca_bundle: str | Path | None, agent: str) -> requests.Session:
    """A requests session that says who asks and trusts the configured CA bundle (one
    per thread: sessions are not thread-safe)."""
    import requests

    s = requests.Session()
    s.headers["User-Agent"] = f"{agent}/{__version__}"
    if ca_bundle:
        s.verify = str(ca_bundle)
    return s


def _max_age(cache_control: str) -> float | None:
    """Freshness from a Cache-Control header: 0 for no-cache/no-store, None if unsaid."""
    directives = [d.strip().lower() for d in cache_control.split(",") if d.strip()]
    if any(d in ("no-cache", "no-store") for d in directives):
        return 0
    for d in directives:
        if d.startswith("max-age="):
            try:
                return max(0.0, float(d.split("=", 1)[1]))
            except ValueError:
                return 0
    return None


def file_path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def _file_index_links(url: str, hint: str | None) -> list[FileLink]:
    """A file:// index: the project folder's index.html, else its files (as pip does)."""
    folder = file_path(url)
    page = folder / "index.html"
    if page.is_file():
        return parse_html(page.read_text(encoding="utf-8"), page.as_uri(), hint)
    if not folder.is_dir():
        return []
    return [
        FileLink(filename=p.name, url=p.as_uri(), sha256=None)
        for p in sorted(folder.iterdir())
        if p.is_file()
    ]


def redact(url: str) -> str:
    """Never print credentials embedded in an index URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        netloc = "***@" + (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def _of_release(links: list[FileLink], name: str, version: str) -> list[FileLink]:
    """The links `distributions` takes for `name==version` (of numpy's thousands, a few
    dozen), or all of them where `version` is not a version."""
    try:
        want = Version(version)
    except InvalidVersion:
        return links
    return [d.link for d in distributions(links, name, want)]


def distributions(links: Iterable[FileLink], name: str, version: Version) -> list[Distribution]:
    """The links that are files of exactly `name==version` (local label included)."""
    want = canonicalize_name(name)
    out = []
    for link in links:
        parsed = parse_filename(link.filename)
        if parsed is None:
            continue
        n, v, tags = parsed
        if n == want and v == version:
            out.append(Distribution(link=link, name=n, version=v, tags=tags))
    return out
