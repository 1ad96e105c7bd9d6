"""The ASGI application: routes, index pages, files, uploads, upstream, access log.

URL space (it mirrors the output folder, so the static tree's relative links just work):

    /simple/ , /simple/<project>/      the combined index (no --target), or with one
                                       --target that target's index (its files at /<file>)
    /<target>/simple/...               a target's own index
    /<target>/<file>                   a wheel, its .metadata, lock.txt, manifest.json
    /<target>/  (POST)                 upload (also /<target>/legacy/; / with one target)
    /-/files/<sha256>/<file>           a file from the upstream, through the store
    /health                            liveness, as JSON

A raw ASGI callable, not a framework: an index page is one stat() and two send() calls
with bytes and headers prepared in memory (static.PageCache).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from json.encoder import encode_basestring_ascii as _js
from pathlib import Path
from typing import Any

from wheelhouse.serve import negotiate
from wheelhouse.serve.paths import (
    FastRequest,
    page_of,
    refuse_path,
    sendfile_of,
    to_canonical,
    valid_name,
)
from wheelhouse.serve.policy import from_settings, redact
from wheelhouse.serve.respond import (
    TYPE_HEADER,
    header_lines,
    not_modified_headers,
    page_head,
    page_headers,
    reply_text,
    send_bytes,
)
from wheelhouse.serve.settings import Settings
from wheelhouse.serve.static import PageCache, SendFile, not_modified, send_file

Scope = MutableMapping[str, Any]
REINDEX_WAIT = 30.0  # seconds an upload waits for a build or index of its folder
_FAST_ROUTES = 20_000  # (URL, Accept) pairs whose route the fast path remembers

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Result = tuple[int, int, str]  # status, body bytes, content type (for the access log)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_READ = ("GET", "HEAD")
_ALLOW_READ = (b"allow", b"GET, HEAD")


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = os.path.realpath(settings.root)
        self.targets = frozenset(settings.targets)
        self.pages = PageCache(self.root)
        self._fast_routes: dict[tuple[bytes, bytes | None], tuple[str, str] | bool] = {}
        self.auth = None
        if settings.upload and settings.password_file:
            from wheelhouse.serve.auth import Authenticator, Gate

            self.auth = Gate(
                Authenticator(Path(settings.password_file)),
                threads=settings.auth_threads,
                failures=settings.auth_failures,
                window=settings.auth_window,
            )
        self.policy = from_settings(settings)
        self.upstream = None
        self.cache_base = os.path.realpath(settings.cache_dir or ".")
        if settings.upstream:
            from wheelhouse.serve.upstream import Upstream

            self.upstream = Upstream(
                settings.upstream,
                Path(settings.cache_dir),
                ttl=settings.upstream_ttl,
                ca_bundle=settings.ca_bundle,
                policy=self.policy,
            )

    # -- ASGI entry -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":  # nothing to set up: say so
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            return
        start = time.perf_counter()
        headers: dict[bytes, bytes] = dict(scope["headers"])
        extra: dict[str, Any] = {}
        try:
            status, size, ctype = await self._route(scope, receive, send, headers, extra)
        except Exception as exc:  # noqa: BLE001 - any bug: a 500 and its access-log line, not a dropped connection
            status, size, ctype = 500, 0, ""
            extra["error"] = redact(f"{type(exc).__name__}: {exc}", self.settings.upstream)
            with contextlib.suppress(Exception):
                await reply_text(send, 500, "internal error\n")
        if self.settings.access_log:
            self._log(scope, headers, status, size, ctype, start, extra)

    @staticmethod
    def _log(
        scope: Scope,
        headers: dict[bytes, bytes],
        status: int,
        size: int,
        ctype: str,
        start: float,
        extra: dict[str, Any],
    ) -> None:
        """One JSON line on stderr per request: time, client, method, path, status, bytes,
        content type, milliseconds, user agent (and user/file/refused/error where they
        apply). Formatted by hand around the C string encoder: json.dumps of a dict per
        request cost a third of the server's throughput."""
        client = scope.get("client")
        ua = headers.get(b"user-agent", b"").decode("latin-1")
        line = (
            f'{{"time":{time.time():.3f},"client":{_js(client[0] if client else "")},'
            f'"method":{_js(scope["method"])},"path":{_js(scope["path"])},'
            f'"status":{status},"bytes":{size},"type":"{ctype}",'
            f'"ms":{(time.perf_counter() - start) * 1000:.2f},"ua":{_js(ua)}'
        )
        for key, value in extra.items():
            line += f",{_js(key)}:{_js(str(value))}"
        # one write() of a short line: lines of several workers never interleave
        os.write(2, (line + "}\n").encode())

    # -- the fast path ----------------------------------------------------------------

    def fast_request(
        self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]
    ) -> FastRequest | None:
        """What a GET or HEAD of a cached page asks for, or None where the ASGI app
        answers. A function of its arguments and the settings only: the protocol may
        remember it for the same request bytes. Pages are most of an index's traffic, and
        an asyncio task, the ASGI message dicts and uvicorn's header checks cost more
        than the page itself."""
        hdrs = dict(headers)
        if b"content-length" in hdrs or b"transfer-encoding" in hdrs or b"x-forwarded-for" in hdrs:
            return None
        accept = hdrs.get(b"accept")
        key = (url, accept)
        route = self._fast_routes.get(key)
        if route is None:  # the same few URLs and Accept headers, over and over
            route = self._fast_route(url, accept)
            if len(self._fast_routes) >= _FAST_ROUTES:
                self._fast_routes.clear()  # bounded: made-up URLs cannot grow it
            self._fast_routes[key] = route
        if isinstance(route, bool):
            return None
        encoding = hdrs.get(b"accept-encoding")
        return FastRequest(
            page_file=route[0],
            chosen=route[1],
            gz=encoding is not None and negotiate.accepts_gzip(encoding.decode("latin-1")),
            head=method == b"HEAD",
            conditional=b"if-none-match" in hdrs or b"if-modified-since" in hdrs,
            headers=hdrs,
            method=method.decode("latin-1"),
            path=url.decode("latin-1"),
        )

    def fast_answer(self, req: FastRequest, client: Any) -> tuple[int, bytes, bytes] | None:
        """The answer to fast_request's request from the page cache, without ASGI:
        (status, header lines, body); None where the page is not there (the upstream, or
        a 404: the ASGI app answers)."""
        start = time.perf_counter() if self.settings.access_log else 0.0
        page = self.pages.get(req.page_file)
        if page is None:
            return None
        packed = page.packed(req.gz)
        gz = packed is not None
        etag = page.etag_gz if gz else page.etag
        if req.conditional and not_modified(req.headers, etag, page.mtime):
            status, body, out = 304, b"", header_lines(not_modified_headers(etag, b"0"))
        else:
            status, out = 200, page_head(page, TYPE_HEADER[req.chosen], gz)
            body = b"" if req.head else (packed or page.body)
        if self.settings.access_log:
            scope = {"client": client, "method": req.method, "path": req.path}
            self._log(scope, req.headers, status, len(body), req.chosen, start, {})
        return status, out, body

    def _fast_route(self, url: bytes, accept: bytes | None) -> tuple[str, str] | bool:
        """(the page file, the content type) a GET of `url` with this Accept header is
        answered with when the file is cached; False where the full route answers. It
        depends on the settings and its arguments only, so it is remembered."""
        odd = b"?" in url or b"%" in url or b"/." in url or b"\\" in url or b"\0" in url
        if odd or url[:1] != b"/":
            return False  # queries, escapes, odd paths: the full route
        path = url.decode("latin-1")
        where = self._where([p for p in path.split("/") if p])
        if where is None or not where[2] or where[2][0] != "simple":
            return False
        target, _, rest = where
        page = page_of(rest, trailing=path[-1] == "/")
        chosen = negotiate.choose(accept.decode("latin-1") if accept is not None else None)
        if page is None or chosen is None:
            return False
        folder = (self.root if target is None else f"{self.root}/{target}") + page[0]
        name = "index.json" if chosen == negotiate.JSON_V1 else "index.html"
        return f"{folder}/{name}", chosen

    # -- routing ----------------------------------------------------------------------

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        extra: dict[str, Any],
    ) -> Result:
        method: str = scope["method"]
        path: str = scope["path"]
        parts = [p for p in path.split("/") if p]
        # what refuse_path refuses has a part that starts with "." or holds "\\" or NUL:
        # one look at the whole path spares the hot path a loop over its parts
        if "/." in path or "\\" in path or "\x00" in path or path[:1] != "/":
            refused = refuse_path(parts)
            if refused is not None:
                return await reply_text(send, *refused)
        if parts == ["health"]:
            return await self._health(send)
        if parts[:2] == ["-", "files"]:
            return await self._upstream_file(send, method, parts[2:], headers, sendfile_of(scope))
        where = self._where(parts)
        if where is None:
            return await reply_text(send, 404, "not found: the indexes are at /<target>/simple/\n")
        target, base, rest = where
        if len(rest) == 2 and rest[0] == "simple" and not valid_name(rest[1]):
            # not a project name (PEP 508) of a sane length: no lookup, no upstream request
            return await reply_text(send, 404, "not a valid project name\n")
        if method not in _READ:
            return await self._write(scope, receive, send, headers, target, rest, extra)
        folder = self.root if target is None else f"{self.root}/{target}"
        head = method == "HEAD"
        if rest and rest[0] == "simple":
            query = scope.get("query_string", b"")
            page = page_of(rest, trailing=path.endswith("/"))
            if page is None:  # not a page's canonical URL
                return await to_canonical(send, base, rest, query)
            return await self._page(send, folder + page[0], headers, query, head, page[1])
        if target is not None and len(rest) == 1:
            got = await send_file(
                send,
                f"{folder}/{rest[0]}",
                headers,
                head=head,
                base=self.root,
                sendfile=sendfile_of(scope),
            )
            if got is not None:
                return got
        return await reply_text(send, 404, "not found\n")

    def _where(self, parts: list[str]) -> tuple[str | None, str, list[str]] | None:
        """(the target, None for the combined index; its URL path; the path under it), or
        None where no index answers."""
        if parts and parts[0] in self.targets:
            return parts[0], f"/{parts[0]}", parts[1:]
        if self.settings.alias is not None:
            return self.settings.alias, "", parts
        if self.settings.combined:
            return None, "", parts
        return None

    async def _write(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        target: str | None,
        rest: list[str],
        extra: dict[str, Any],
    ) -> Result:
        """A method other than GET and HEAD: an upload, or 405."""
        if scope["method"] == "POST" and rest in ([], ["legacy"]):
            return await self._upload(scope, receive, send, headers, target, extra)
        return await reply_text(send, 405, "method not allowed\n", [_ALLOW_READ])

    # -- pages ------------------------------------------------------------------------

    async def _page(
        self,
        send: Send,
        folder: str,
        headers: dict[bytes, bytes],
        query: bytes,
        head: bool,
        project: str | None,
    ) -> Result:
        chosen = None
        if query:
            fmt = urllib.parse.parse_qs(query.decode("latin-1")).get("format")
            chosen = negotiate.from_format(fmt[0]) if fmt else None
        if chosen is None:
            accept = headers.get(b"accept")
            chosen = negotiate.choose(accept.decode("latin-1") if accept is not None else None)
        if chosen is None:
            offered = ", ".join(negotiate.CANDIDATES)
            return await reply_text(send, 406, f"not acceptable: this index serves {offered}\n")
        is_json = chosen == negotiate.JSON_V1
        page = self.pages.get(f"{folder}/index.json" if is_json else f"{folder}/index.html")
        stale = False
        if page is None and project is not None and self.upstream is not None:
            from wheelhouse.serve.upstream import UpstreamError

            refused = self.policy.refuses(project)
            if refused is not None:  # never asked of the upstream
                return await reply_text(send, 404, f"no such project: {refused}\n")
            try:
                got = await self.upstream.page(project)
            except UpstreamError as exc:
                return await reply_text(send, 502, f"the upstream index cannot be reached: {exc}\n")
            if got is not None:
                page, stale = (got[1] if is_json else got[0]), got[2]
        if page is None:
            return await reply_text(send, 404, "no such project\n")
        packed = page.packed(
            negotiate.accepts_gzip(headers.get(b"accept-encoding", b"").decode("latin-1"))
        )
        gz = packed is not None
        etag = page.etag_gz if gz else page.etag
        ctype = TYPE_HEADER[chosen]
        if not_modified(headers, etag, page.mtime):
            await send(
                {
                    "type": "http.response.start",
                    "status": 304,
                    "headers": not_modified_headers(etag),
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return 304, 0, chosen
        body = packed or page.body
        out = page_headers(page, ctype, gz)
        if stale:
            out = [*out, (b"warning", b'110 - "the upstream is down: a stale page"')]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": b"" if head else body})
        return 200, 0 if head else len(body), chosen

    # -- the rest ---------------------------------------------------------------------

    async def _health(self, send: Send) -> Result:
        s = self.settings
        doc = {
            "status": "ok",
            "targets": sorted(self.targets),
            "upload": s.upload,
            "upstream": redact(s.upstream, s.upstream) if s.upstream else None,
            "upstream_policy": self.policy.describe() if s.upstream else None,
            "limits": {
                "max_url": s.max_url,
                "max_head": s.max_head,
                "max_headers": s.max_headers,
                "head_timeout": s.head_timeout,
                "idle_timeout": s.idle_timeout,
                "body_timeout": s.body_timeout,
                "max_connections": s.max_connections,
                "max_upload": s.max_upload,
                "auth_failures": s.auth_failures,
                "auth_window": s.auth_window,
            },
            "pages_cached": len(self.pages),
        }
        body = json.dumps(doc).encode()
        await send_bytes(send, 200, body, [(b"content-type", b"application/json")])
        return 200, len(body), "application/json"

    async def _upstream_file(
        self,
        send: Send,
        method: str,
        rest: list[str],
        headers: dict[bytes, bytes],
        sendfile: SendFile | None,
    ) -> Result:
        if method not in _READ:
            return await reply_text(send, 405, "method not allowed\n", [_ALLOW_READ])
        head = method == "HEAD"
        if self.upstream is None or len(rest) != 2 or not _SHA256.fullmatch(rest[0]):
            return await reply_text(send, 404, "not found\n")
        from wheelhouse.serve.upstream import UpstreamError

        try:
            path = await self.upstream.file(rest[0], rest[1])
        except UpstreamError as exc:
            return await reply_text(send, 502, f"the upstream index cannot give it: {exc}\n")
        if path is None:
            return await reply_text(send, 404, "no fetched page links this file\n")
        got = await send_file(
            send, str(path), headers, head=head, base=self.cache_base, sendfile=sendfile
        )
        if got is None:  # removed from the store a moment ago
            return await reply_text(send, 404, "not found\n")
        return got

    async def _upload(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        target: str | None,
        extra: dict[str, Any],
    ) -> Result:
        from wheelhouse.serve import upload

        if not self.settings.upload or self.auth is None:
            return await reply_text(send, 405, "uploads are off on this server\n", [_ALLOW_READ])
        if target is None:
            if len(self.targets) != 1:
                return await reply_text(
                    send, 404, "upload to /<target>/ (this server has several)\n"
                )
            target = next(iter(self.targets))
        from wheelhouse.serve.auth import Throttled

        auth = headers.get(b"authorization")
        client = scope.get("client")
        try:
            user = await self.auth.check(
                client[0] if client else "", auth.decode("latin-1") if auth is not None else None
            )
        except Throttled as exc:
            extra["refused"] = exc.message
            retry = [(b"retry-after", str(exc.retry_after).encode())]
            return await reply_text(send, exc.status, exc.message + "\n", retry)
        if user is None:
            return await reply_text(
                send,
                401,
                "valid credentials are needed to upload\n",
                [(b"www-authenticate", b'Basic realm="wheelhouse", charset="UTF-8"')],
            )
        extra["user"] = user
        folder = Path(self.root) / target
        timed = upload.timed(receive, self.settings.body_timeout)
        try:
            form = await upload.receive_form(timed, headers, folder, self.settings.max_upload)
            extra["file"] = form.filename
            status, message = await asyncio.to_thread(
                upload.commit, form, folder, lambda: self._reindex(target)
            )
        except upload.Refused as exc:
            extra["refused"] = exc.message
            # a message never shows where the server keeps its files
            shown = exc.message.replace(self.root + "/", "").replace(self.root, ".")
            close = [(b"connection", b"close")] if exc.status in (408, 413) else []
            return await reply_text(send, exc.status, shown + "\n", close)
        return await reply_text(send, status, message + "\n")

    def _reindex(self, target: str) -> None:
        """The target's index, then the combined one (as `wheelhouse index` does)."""
        from wheelhouse.fsutil import Wait
        from wheelhouse.index import YANKED_NAME, index_combined, index_target, load_yanks

        root = Path(self.root)
        yanks = load_yanks(root / YANKED_NAME)
        wait = Wait(seconds=REINDEX_WAIT)  # a request does not wait out a whole build
        index_target(root / target, yanks=yanks, name=target, wait=wait)
        folders = [root / n for n in self.settings.all_targets if (root / n).is_dir()]
        index_combined(root, folders, yanks=yanks, wait=wait)


def create_app() -> App:
    """The app of a worker process, from the settings the parent put in the environment."""
    return App(Settings.from_env())
