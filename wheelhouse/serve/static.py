"""Answers from files: index pages from an in-memory cache, wheels streamed from disk.

Pages are small and asked for over and over, so each is held in memory with its gzip
form, ETag and headers ready, keyed by the file's stat stamp: one stat() per request
says whether the cached bytes are still the file's (an upload or `wheelhouse index`
replaces pages by rename, which changes the inode). The cache has a bound on entries.

Files go from the page cache to the socket by the protocol's os.sendfile (or, without
it, are streamed in chunks; never read whole), with a stat-based ETag and
Last-Modified, conditional GET (304) and single byte ranges (206/416). A file name in an
index never changes its bytes (uploads refuse that with 409), so files may be cached
by clients for a long time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import os
import stat
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

CHUNK = 256 << 10
_MAX_PAGES = 20_000  # a page is a few KB: a bound well above any index's page count
PAGE_CACHE_CONTROL = b"max-age=0, must-revalidate"  # revalidate: an upload changes pages
FILE_CACHE_CONTROL = b"max-age=31536000, immutable"

_TYPES = {
    ".whl": b"application/zip",  # PEP 427: a wheel is a ZIP archive
    ".metadata": b"text/plain; charset=utf-8",  # PEP 658: the METADATA file's bytes
    ".txt": b"text/plain; charset=utf-8",
    ".json": b"application/json",
    ".toml": b"text/plain; charset=utf-8",
    ".gz": b"application/gzip",
    ".zip": b"application/zip",
}


def content_type(name: str) -> bytes:
    return _TYPES.get(os.path.splitext(name)[1], b"application/octet-stream")  # noqa: PTH122


def http_date(seconds: float) -> bytes:
    return formatdate(seconds, usegmt=True).encode()


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


_PROC_FD = os.path.isdir("/proc/self/fd")  # noqa: PTH112


def inside(fd: int, path: str, base: str) -> bool:
    """Whether the file open at `fd` lies under the folder `base` (a real path). Asked
    of the opened file (Linux: /proc/self/fd), not of the string: a symlink anywhere on
    the way (a page, a target folder linked to /etc) is seen, and a swap between a check
    and the open cannot fool it."""
    real = os.readlink(f"/proc/self/fd/{fd}") if _PROC_FD else os.path.realpath(path)  # noqa: PTH115
    return real.startswith(base + "/")


_GZIP_NOW = 64 << 10  # pages up to this size are compressed when read; bigger, by a thread


class Page:
    """One page file's bytes, its gzip form and validators."""

    __slots__ = (
        "body",
        "etag",
        "etag_gz",
        "gz",
        "headers",
        "heads",
        "last_modified",
        "mtime",
        "packing",
        "stamp",
    )

    def __init__(self, body: bytes, stamp: tuple[int, int, int], mtime: float) -> None:
        self.stamp = stamp
        self.body = body
        # a big page's gzip form (a 700 KiB page: ~20 ms of CPU) is made by a thread on
        # first demand (packed()): the event loop never stalls every request behind it
        small = len(body) <= _GZIP_NOW
        self.gz: bytes | None = gzip.compress(body, compresslevel=6, mtime=0) if small else None
        self.packing = False
        tag = hashlib.blake2b(body, digest_size=10).hexdigest()
        self.etag = f'"{tag}"'.encode()
        self.etag_gz = f'"{tag}-gz"'.encode()
        self.mtime = int(mtime)
        self.last_modified = http_date(mtime)
        # response headers per (content type, gzip), made on first use (app._page_headers)
        self.headers: dict[tuple[bytes, bool], list[tuple[bytes, bytes]]] = {}
        # the same as header lines, for the protocol's fast path (respond.page_head)
        self.heads: dict[tuple[bytes, bool], bytes] = {}

    def packed(self, wanted: bool) -> bytes | None:
        """The gzip form, where the client takes it and it is made; else None (the
        plain bytes are sent, as to any client: a big page's gzip form is started on
        a thread the first time it is wanted)."""
        if not wanted or self.gz is not None:
            return self.gz if wanted else None
        if not self.packing:
            self.packing = True
            _packer().submit(self._pack)
        return None

    def _pack(self) -> None:
        self.gz = gzip.compress(self.body, compresslevel=6, mtime=0)


_PACKER: list[ThreadPoolExecutor] = []  # made in the worker process, on first use


def _packer() -> ThreadPoolExecutor:
    if not _PACKER:
        _PACKER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="wheelhouse-gzip"))
    return _PACKER[0]


class PageCache:
    def __init__(self, base: str, limit: int = _MAX_PAGES) -> None:
        self.base = base  # pages outside it (through a symlink) are never served
        self.limit = limit
        self._pages: dict[str, Page] = {}

    def get(self, path: str) -> Page | None:
        """The page at `path` as it is on disk now, or None when there is none."""
        try:
            st = os.stat(path)  # noqa: PTH116
        except (FileNotFoundError, NotADirectoryError):
            self._pages.pop(path, None)
            return None
        page = self._pages.get(path)
        if page is not None and page.stamp == _stamp(st):
            return page
        try:
            with open(path, "rb") as f:  # noqa: PTH123
                if not inside(f.fileno(), path, self.base):
                    return None
                body = f.read()
                st = os.fstat(f.fileno())  # the stamp of the bytes read
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
            return None
        page = Page(body, _stamp(st), st.st_mtime)
        if len(self._pages) >= self.limit:  # drop the oldest entry
            self._pages.pop(next(iter(self._pages)))
        self._pages[path] = page
        return page

    def __len__(self) -> int:
        return len(self._pages)


def not_modified(headers: dict[bytes, bytes], etag: bytes, mtime: int) -> bool:
    """RFC 9110 conditional GET: If-None-Match wins over If-Modified-Since."""
    inm = headers.get(b"if-none-match")
    if inm is not None:
        if inm.strip() == b"*":
            return True
        tags = [t.strip().removeprefix(b"W/") for t in inm.split(b",")]
        return etag in tags
    ims = headers.get(b"if-modified-since")
    if ims is not None:
        try:
            return mtime <= int(parsedate_to_datetime(ims.decode("latin-1")).timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
    return False


def parse_range(value: bytes, size: int) -> tuple[int, int] | bool | None:
    """One `bytes=a-b` range -> (start, end inclusive); None: ignore the header (several
    ranges or not bytes: answer 200 with everything); False: unsatisfiable (416)."""
    text = value.decode("latin-1").strip()
    unit, _, spec = text.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:  # the last N bytes
            n = int(last)
            if n <= 0:
                return False
            return (max(size - n, 0), size - 1) if size else False
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0:
        return None
    if start >= size:
        return False
    if end < start:
        return None
    return start, min(end, size - 1)


# the protocol's zero-copy sender, in scope["extensions"] (protocol.HardenedProtocol.sendfile)
SENDFILE = "wheelhouse.sendfile"
SendFile = Callable[[int, int, int, bool], Awaitable["int | None"]]
_HOT_SECONDS = 60.0  # a file sent whole this recently is taken to be in the page cache
_HOT_LIMIT = 4096  # entries of the hot-file table (oldest dropped first)
_hot: dict[tuple[str, int, int, int], float] = {}


def _is_hot(key: tuple[str, int, int, int], now: float) -> bool:
    when = _hot.get(key)
    return when is not None and now - when < _HOT_SECONDS


def _mark_hot(key: tuple[str, int, int, int], now: float) -> None:
    _hot.pop(key, None)  # re-inserted last: the oldest entry is dropped first
    if len(_hot) >= _HOT_LIMIT:
        _hot.pop(next(iter(_hot)))
    _hot[key] = now


async def send_file(
    send: Send,
    path: str,
    headers: dict[bytes, bytes],
    *,
    head: bool,
    base: str,
    extra: Headers | None = None,
    sendfile: SendFile | None = None,
) -> tuple[int, int, str] | None:
    """Stream `path`; (status, body bytes sent, content type), or None when there is no
    such regular file under the folder `base` (the caller answers 404). With `sendfile`
    (the protocol's) the body goes from the page cache to the socket without passing
    through Python; a big file not sent whole within the last minute is cold: a thread
    reads it ahead, so a slow disk never stalls the event loop."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not inside(fd, path, base):
            return None
        size = st.st_size
        etag = f'"{size:x}-{st.st_mtime_ns:x}"'.encode()
        ctype = content_type(path)
        common = [
            (b"etag", etag),
            (b"last-modified", http_date(st.st_mtime)),
            (b"accept-ranges", b"bytes"),
            (b"cache-control", FILE_CACHE_CONTROL),
            *(extra or []),
        ]
        if not_modified(headers, etag, int(st.st_mtime)):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return 304, 0, ctype.decode()
        start, end, status = 0, size - 1, 200
        wanted = headers.get(b"range")
        if_range = headers.get(b"if-range")
        if wanted is not None and (if_range is None or if_range.strip() == etag):
            got = parse_range(wanted, size)
            if got is False:
                rh = [*common, (b"content-range", f"bytes */{size}".encode())]
                rh.append((b"content-length", b"0"))
                await send({"type": "http.response.start", "status": 416, "headers": rh})
                await send({"type": "http.response.body", "body": b""})
                return 416, 0, ctype.decode()
            if isinstance(got, tuple):
                start, end, status = got[0], got[1], 206
                common.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        length = end - start + 1 if size else 0
        common += [(b"content-type", ctype), (b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": status, "headers": common})
        if head or length == 0:
            await send({"type": "http.response.body", "body": b""})
            return status, 0, ctype.decode()
        sent = await _send_body(send, fd, start, length, (path, *_stamp(st)), sendfile)
        if sent == size:
            _mark_hot((path, *_stamp(st)), time.monotonic())
        return status, sent, ctype.decode()
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


async def _send_body(
    send: Send,
    fd: int,
    start: int,
    length: int,
    key: tuple[str, int, int, int],
    sendfile: SendFile | None,
) -> int:
    """Send `length` bytes of `fd` from `start` as the body; the bytes sent (fewer where
    the file got shorter or the client went away)."""
    if sendfile is not None:
        cold = length > CHUNK and not _is_hot(key, time.monotonic())
        sent = await sendfile(fd, start, length, cold)
        if sent is not None:
            await send({"type": "http.response.body", "body": b""})
            return sent
    loop = asyncio.get_running_loop()
    offset, left = start, length
    while left > 0:
        n = min(CHUNK, left)
        # a small file in the page cache costs microseconds: read it right here; a
        # chunk of a big one goes to a thread, so a cold disk never stalls the loop
        if length <= CHUNK:
            data = os.pread(fd, n, offset)
        else:
            data = await loop.run_in_executor(None, os.pread, fd, n, offset)
        if not data:  # truncated under us: end the body short (the client sees it)
            break
        offset += len(data)
        left -= len(data)
        await send({"type": "http.response.body", "body": data, "more_body": left > 0})
    if left > 0:
        await send({"type": "http.response.body", "body": b""})
    return length - left
