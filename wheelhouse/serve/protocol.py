"""uvicorn's httptools protocol with the limits a server on a shared network needs.

uvicorn's httptools protocol (the fast one: a C parser) has no limit on the request line
or headers and no timer while a request's head is being read: one 64 MiB header is
buffered whole (and parsed in quadratic time, stalling every other client of the worker),
and a client that sends a byte every few seconds, or nothing at all, holds its socket
forever. h11 has a head-size limit but costs a third of the throughput; nginx-style
limits are a few counters here, on the same parser:

* the head (request line and headers) is counted as it arrives: past `max_head` bytes
  the answer is 431 (414 when the request line alone is over `max_url`), past
  `max_headers` headers 431, and the connection closes;
* a head must arrive whole within `head_timeout` seconds of its first byte (408), a
  connection that sends no request is closed after `idle_timeout` seconds, from its
  connect too (uvicorn's keep-alive timer starts only after a response), and one whose
  client reads nothing of an answer the app waits to write (uvicorn's flow control,
  which waits for ever) after `body_timeout`: one sweep a second per worker, not timers
  made and cancelled per request;
* each worker holds at most `max_connections` connections (kept below the open-file
  limit): a new one past that closes the connection idle for longest (or reading its
  head for longest: a real client sends its head in one packet), and only when none is
  idle does it get a 503. Idle sockets can no longer starve real requests of file
  descriptors.

The request body's own timeout is the app's (a `receive` that waits at most
`body_timeout`), where the upload reads it.

Two fast paths, for what an index serves most:

* a GET or HEAD of a cached page is answered here (app.App.fast_request/fast_answer),
  without an ASGI task; bytes that were one whole such request, read between two
  requests, are remembered (bounded), and the same bytes again are answered without
  parsing them again: still one stat() of the page, so it is served as it is now;
* a file's body goes from the page cache to the socket by os.sendfile (`sendfile`, in
  the scope's extensions for static.send_file; a cold file read ahead by a thread),
  waiting for a slow reader at most `body_timeout` seconds at a time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from wheelhouse.serve.paths import FastRequest
from wheelhouse.serve.static import SENDFILE


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_url: int = 8 << 10  # bytes of the request target (nginx: 8 KiB buffers)
    max_head: int = 64 << 10  # bytes of request line + headers
    max_headers: int = 100  # header fields
    head_timeout: float = 10.0  # seconds from a head's first byte to its end
    idle_timeout: float = 15.0  # seconds a connection may sit without a request
    body_timeout: float = 30.0  # seconds between two pieces of a request body
    max_connections: int = 1000  # per worker (lowered to fit the open-file limit)


_STATUS = {200: b"HTTP/1.1 200 OK\r\n", 304: b"HTTP/1.1 304 Not Modified\r\n"}
_REASONS = {
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def error_response(status: int, text: str) -> bytes:
    body = text.encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s"
        % (status, _REASONS[status], len(body), body)
    )


def protocol_class(limits: Limits) -> type[HardenedProtocol]:
    """A protocol class for uvicorn.Config(http=...) bound to these limits."""
    return type("BoundHardenedProtocol", (HardenedProtocol,), {"limits": limits})


class HardenedProtocol(HttpToolsProtocol):
    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the app's synchronous fast path (app.App.fast_request, fast_answer), under
        # uvicorn's middleware
        inner = self.app
        while not hasattr(inner, "fast_request") and hasattr(inner, "app"):
            inner = inner.app
        self._fast_request: Callable[..., FastRequest | None] | None = getattr(
            inner, "fast_request", None
        )
        self._fast_answer: Callable[..., tuple[int, bytes, bytes] | None] = getattr(
            inner, "fast_answer", lambda req, client: None
        )
        self._waiter: asyncio.Future[bool] | None = None  # sendfile waits for the socket
        self._idle = True  # the parser is between two requests
        self._messages = 0  # requests begun in the bytes being fed
        self._read: FastRequest | None = None  # what the fast path answered in them
        self._in_head = False
        self._head_bytes = 0
        self._body_bytes = 0  # body bytes of the chunk being fed (not head bytes)
        self._chunk = 0  # bytes of the chunk being fed
        self._since = time.monotonic()  # idle or reading a head since
        self._paused: float | None = None  # the app waits to write since (None: it does not)

    # -- connections --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            transport.write(error_response(503, "too many connections: retry in a moment\n"))
            transport.close()
            return
        # uvicorn arms its keep-alive timer only after a response: a socket that never
        # sends a byte would stay open forever. One sweep a second per worker closes
        # idle and slow connections, instead of two timers made and cancelled a request
        global _sweeping  # one sweep per worker process
        if not _sweeping:
            _sweeping = True
            _sweep(self.loop, self.connections, self.limits)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._paused = time.monotonic()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._paused = None

    def _closable(self) -> bool:
        """Not in the middle of a request the app is answering."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _make_room(self) -> bool:
        """Close the connection that has been idle (or reading a head) longest."""
        oldest: HardenedProtocol | None = None
        for conn in self.connections:
            if (
                conn is not self
                and isinstance(conn, HardenedProtocol)
                and conn._closable()
                and not conn.transport.is_closing()
                and (oldest is None or conn._since < oldest._since)
            ):
                oldest = conn
        if oldest is None:
            return False
        oldest.transport.close()
        oldest.connections.discard(oldest)  # counted out now, not at connection_lost
        return True

    # -- the head -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._idle:
            read = _heads.get(data)
            if read is not None and self._ready():
                got = self._fast_answer(read, self.client)
                if got is not None:
                    self._unset_keepalive_if_required()
                    self._answer(*got, True)
                    return
        was_idle, self._messages, self._read = self._idle, 0, None
        self._body_bytes, self._chunk = 0, len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_head:
            self._head_bytes += len(data) - self._body_bytes
            if self._head_bytes > self.limits.max_head:
                self._refuse(431, "the request's headers are too large\n")
        elif (
            self._read is not None
            and was_idle
            and self._idle
            and self._messages == 1
            and len(data) <= _HEAD_BYTES
        ):
            # these bytes, fed to the parser between two requests, were one whole request
            # of a cached page, kept alive: the same bytes again are the same request
            # (the parser and the fast path are functions of them), answered without
            # parsing them again. Bounded: a key's size and the number of keys.
            if len(_heads) >= _HEADS:
                _heads.clear()
            _heads[data] = self._read

    def _head_size(self) -> int:
        """The head's bytes as sent: the request line and a line per header."""
        line = len(self.parser.get_method()) + len(self.url) + 11  # (b" HTTP/1.1\r\n")
        return line + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _ready(self) -> bool:
        """No request in the works: the fast path may answer. (A client that does not
        read what it asked for, write_paused, goes the ASGI way, which waits for the
        socket to drain: no unbounded buffer.)"""
        return (
            (self.cycle is None or self.cycle.response_complete)
            and not self.pipeline
            and not self.flow.write_paused
            and not self.transport.is_closing()
        )

    def on_message_begin(self) -> None:
        # uvicorn's makes the ASGI scope here, which a page the fast path answers never
        # needs: made in on_headers_complete (_make_scope), for the ASGI path only
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._idle = False
        self._messages += 1
        self._in_head = True
        self._head_bytes = 0
        self._since = time.monotonic()

    def on_headers_complete(self) -> None:
        # the URL and the header count are bounded by max_head while they arrive (a
        # counter per header or URL piece would cost every request): checked once here
        self._in_head = False
        if self.transport.is_closing():
            return
        if len(self.url) > self.limits.max_url:
            self._refuse(414, "the request line is too long\n")
            return
        if len(self.headers) > self.limits.max_headers:
            self._refuse(431, "the request has too many headers\n")
            return
        # a head that ended in the chunk it grew past max_head in was not counted whole
        # as it arrived (data_received counts the chunks of an unfinished head): its
        # parts, counted only then
        if self._head_bytes + self._chunk > self.limits.max_head and self._head_size() > (
            self.limits.max_head
        ):
            self._refuse(431, "the request's headers are too large\n")
            return
        if self._fast_request is not None and self._ready():
            method = self.parser.get_method()
            if method in (b"GET", b"HEAD"):
                read = self._fast_request(method, self.url, self.headers)
                got = self._fast_answer(read, self.client) if read is not None else None
                if got is not None:
                    keep = self.parser.should_keep_alive()
                    self._read = read if keep else None
                    self._answer(*got, keep)
                    return
        self._make_scope()
        super().on_headers_complete()

    def _make_scope(self) -> None:
        """uvicorn's scope (its on_message_begin), for this request's head as read, with
        the zero-copy sender among its extensions (static.send_file uses it)."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers
        self.scope["extensions"] = {SENDFILE: {"send": self.sendfile}}

    def _answer(self, status: int, head: bytes, body: bytes, keep: bool) -> None:
        """Write a whole response the app gave synchronously (its fast path: the header
        lines ready made), then wait for the next request as uvicorn does after an ASGI
        response."""
        defaults = self.server_state.default_headers  # the date: a new list each second
        if defaults is not _defaults[0]:
            _defaults[:] = [defaults, b"".join(b"%s: %s\r\n" % kv for kv in defaults)]
        end = b"\r\n" if keep else b"connection: close\r\n\r\n"
        # one writev, the page's bytes not copied
        self.transport.writelines((_STATUS[status], _defaults[1], head, end, body))
        self.cycle = None  # type: ignore[assignment]  # no cycle: body callbacks skip
        if not keep:
            self.transport.close()
            return
        self._since = time.monotonic()  # idle from now: the sweep closes it in time

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None:
            _wake(self._waiter, False)  # sendfile sees the socket gone
        super().connection_lost(exc)

    async def sendfile(self, fd: int, offset: int, count: int, cold: bool) -> int | None:
        """Send `count` bytes of the open file `fd` from `offset` straight from the page
        cache to the socket (os.sendfile: nothing copied through Python, as nginx does), as
        the body of the response whose head the app has sent; a `cold` file is read into
        the page cache by a thread a piece ahead, so a slow disk never stalls the event
        loop. None where the transport still holds bytes (the caller streams the file
        instead); else the bytes sent: fewer where the file got shorter, the client went
        away or read nothing for `body_timeout` seconds, and then the connection closes."""
        transport, cycle = self.transport, self.cycle
        sock = transport.get_extra_info("socket")
        if sock is None or cycle is None or transport.get_write_buffer_size():
            return None
        out, sent, poll_fd = sock.fileno(), 0, -1
        ready = offset if cold else offset + count  # read into the page cache up to here
        try:
            while sent < count and not transport.is_closing():
                if ready <= offset + sent:
                    size = min(_WARM, count - sent)
                    got = await self.loop.run_in_executor(None, _warm, fd, ready, size)
                    if got == 0:  # the file got shorter under us
                        break
                    ready += got
                try:
                    n = os.sendfile(out, fd, offset + sent, ready - offset - sent)
                except BlockingIOError:  # the socket is full: wait until the client reads
                    try:
                        # uvloop refuses add_writer on a transport's fd: a duplicate of it
                        # (the same socket) is watched instead
                        poll_fd = os.dup(out) if poll_fd < 0 else poll_fd
                    except OSError:  # no file descriptor left: give this client up
                        break
                    if not await self._writable(poll_fd):
                        break
                    continue
                except OSError:  # reset, broken pipe: the client is gone
                    break
                if n == 0:  # the file got shorter under us
                    break
                sent += n
        finally:
            if poll_fd >= 0:
                os.close(poll_fd)
        cycle.expected_content_length -= sent
        if sent < count:  # the body cannot be finished: end the connection
            transport.close()
            cycle.disconnected = True  # the app's last send is dropped, as for a lost client
        return sent

    async def _writable(self, fd: int) -> bool:
        """Wait until the socket (duplicated as `fd`) takes more bytes: False when the
        client read nothing for `body_timeout` seconds or the connection was lost."""
        waiter = self._waiter = self.loop.create_future()
        self.loop.add_writer(fd, _wake, waiter, True)
        # (which woke it is what it was woken with: uvloop's timers fire on a clock in
        # whole milliseconds, when loop.time() may still read just under timer.when())
        timer = self.loop.call_later(self.limits.body_timeout, _wake, waiter, False)
        try:
            writable = await waiter
        finally:
            self.loop.remove_writer(fd)
            timer.cancel()
            self._waiter = None
        return writable and not self.transport.is_closing()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self.cycle is not None and not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._idle = True
        if self.cycle is not None and not self.transport.is_closing():
            super().on_message_complete()

    def on_response_complete(self) -> None:
        self._since = time.monotonic()
        super().on_response_complete()

    def _refuse(self, status: int, text: str) -> None:
        """Answer and close: the rest of what the client sends is never parsed."""
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(error_response(status, text))
            self.transport.close()


_sweeping = False
_heads: dict[bytes, FastRequest] = {}  # request bytes -> what the fast path read in them
_HEADS = 4096  # keys of _heads (cleared when full: made-up requests cannot grow it)
_HEAD_BYTES = 2048  # the longest request kept (pip's are a few hundred bytes)
_defaults: list[Any] = [None, b""]  # server_state.default_headers and their bytes


_WARM = 1 << 20  # bytes of a cold file a thread reads ahead of sendfile


def _warm(fd: int, offset: int, size: int) -> int:
    """Read a piece of a file (into the page cache: the bytes are dropped); 0 at its end
    or on a read error (the body ends short and the connection closes)."""
    try:
        return len(os.pread(fd, size, offset))
    except OSError:
        return 0


def _wake(waiter: asyncio.Future[bool], writable: bool) -> None:
    if not waiter.done():
        waiter.set_result(writable)


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], limits: Limits) -> None:
    """Close what waited too long: a head not whole within head_timeout (408), an
    answer its client read nothing of for body_timeout, a connection without a request in
    flight for idle_timeout. Runs every second (more often for timeouts under two
    seconds) for as long as the worker runs."""
    now = time.monotonic()
    for conn in list(connections):
        if not isinstance(conn, HardenedProtocol) or conn.transport.is_closing():
            continue
        waited = now - conn._since
        if conn._in_head:
            if waited > limits.head_timeout:
                conn._refuse(408, "the request's head did not arrive in time\n")
        elif conn._paused is not None and now - conn._paused > limits.body_timeout:
            # abort, not close: close would wait to send what the client does not read
            conn.transport.abort()  # (connection_lost ends the app's wait)
        elif waited > limits.idle_timeout and conn._closable():
            conn.transport.close()
    interval = min(1.0, limits.head_timeout / 2, limits.idle_timeout / 2, limits.body_timeout / 2)
    loop.call_later(interval, _sweep, loop, connections, limits)
