"""The rules of the app's URL paths: what is refused, which path is a page, canonical
project names and the redirect to them, the protocol's sender a request brings, and a
request of a cached page as the fast path reads it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from packaging.utils import canonicalize_name

from wheelhouse.serve.policy import MAX_NAME, valid_project
from wheelhouse.serve.respond import redirect, reply_text
from wheelhouse.serve.static import SENDFILE, SendFile

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Result = tuple[int, int, str]  # status, body bytes, content type (for the access log)


@dataclass(frozen=True, slots=True, kw_only=True)
class FastRequest:
    """A GET or HEAD of a cached page, as app.App.fast_request read it."""

    page_file: str
    chosen: str  # the content type (negotiate)
    gz: bool
    head: bool
    conditional: bool  # If-None-Match or If-Modified-Since
    headers: dict[bytes, bytes]
    method: str  # for the access log
    path: str


@lru_cache(maxsize=4096)
def canonical(name: str) -> str:
    return str(canonicalize_name(name))


def refuse_path(parts: list[str]) -> tuple[int, str] | None:
    """Never outside the served folder, never a hidden file (index state, uploads in
    progress, temp files): (status, message) for a path that is refused."""
    for p in parts:
        if p in (".", "..") or "\x00" in p or "\\" in p:
            return 400, "bad path\n"
        if p[0] == ".":
            return 404, "not found\n"
    return None


def page_of(rest: list[str], *, trailing: bool) -> tuple[str, str | None] | None:
    """`simple/` or `simple/<project>/`: (the page's folder under the index's, the project,
    None for the root page); None where the path is not a page's canonical URL."""
    if not trailing:
        return None
    if len(rest) == 1:
        return "/simple", None
    if len(rest) == 2 and canonical(rest[1]) == rest[1]:
        return f"/simple/{rest[1]}", rest[1]
    return None


def valid_name(name: str) -> bool:
    return len(name) <= 2 * MAX_NAME and valid_project(canonical(name))


async def to_canonical(send: Send, base: str, rest: list[str], query: bytes) -> Result:
    """A page's URL without its slash or with a name that is not canonical: redirected
    (PEP 503); anything deeper under simple/ is not found."""
    if len(rest) == 1:
        return await redirect(send, f"{base}/simple/", query)
    if len(rest) == 2 and valid_name(rest[1]):
        return await redirect(send, f"{base}/simple/{canonical(rest[1])}/", query)
    return await reply_text(send, 404, "not found\n")


def sendfile_of(scope: MutableMapping[str, Any]) -> SendFile | None:
    """The protocol's zero-copy sender (protocol.HardenedProtocol.sendfile), if any."""
    ext = (scope.get("extensions") or {}).get(SENDFILE)
    return ext.get("send") if ext else None
