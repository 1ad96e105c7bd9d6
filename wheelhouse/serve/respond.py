"""Responses of the app as bytes and headers: text answers, redirects, and a page's
headers made once per page and variant (the hot path builds none)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from wheelhouse.serve import negotiate
from wheelhouse.serve.static import PAGE_CACHE_CONTROL, Page

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Result = tuple[int, int, str]  # status, body bytes, content type (for the access log)

TYPE_HEADER = {
    negotiate.TEXT_HTML: b"text/html; charset=utf-8",
    negotiate.HTML_V1: negotiate.HTML_V1.encode(),
    negotiate.JSON_V1: negotiate.JSON_V1.encode(),
}
VARY = (b"vary", b"Accept, Accept-Encoding")


def page_headers(page: Page, ctype: bytes, gz: bool) -> list[tuple[bytes, bytes]]:
    """Made once per page and variant, then reused: the hot path builds no header."""
    cache: dict[tuple[bytes, bool], list[tuple[bytes, bytes]]] = page.headers
    key = (ctype, gz)
    out = cache.get(key)
    if out is None:
        body = page.gz if gz and page.gz is not None else page.body
        out = [
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
            (b"etag", page.etag_gz if gz else page.etag),
            (b"last-modified", page.last_modified),
            VARY,
            (b"cache-control", PAGE_CACHE_CONTROL),
        ]
        if gz:
            out.append((b"content-encoding", b"gzip"))
        cache[key] = out
    return out


def page_head(page: Page, ctype: bytes, gz: bool) -> bytes:
    """page_headers as the header lines of a response, made once per page and variant."""
    key = (ctype, gz)
    out = page.heads.get(key)
    if out is None:
        out = page.heads[key] = header_lines(page_headers(page, ctype, gz))
    return out


def not_modified_headers(etag: bytes, length: bytes | None = None) -> list[tuple[bytes, bytes]]:
    """A page's 304: its validator and caching headers (and a content-length of 0 where
    the protocol writes it, not uvicorn)."""
    out = [(b"etag", etag), VARY, (b"cache-control", PAGE_CACHE_CONTROL)]
    return out if length is None else [*out, (b"content-length", length)]


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(b"%s: %s\r\n" % kv for kv in headers)


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def reply_text(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Result:
    body = text.encode()
    # messages can quote what a client sent (a file name with markup): never sniffed as HTML
    plain = [(b"content-type", b"text/plain; charset=utf-8"), _NOSNIFF]
    await send_bytes(send, status, body, [*plain, *(headers or [])])
    return status, len(body), "text/plain"


_NOSNIFF = (b"x-content-type-options", b"nosniff")


async def redirect(send: Send, location: str, query: bytes) -> Result:
    target = urllib.parse.quote(location) + (f"?{query.decode('latin-1')}" if query else "")
    await send_bytes(send, 301, b"", [(b"location", target.encode())])
    return 301, 0, ""
