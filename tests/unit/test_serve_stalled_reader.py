"""A client that stops reading an answer the app streams through ASGI (not sendfile: a
proxied file, or a file whose head the transport had not sent yet) is cut off after
body_timeout. uvicorn's flow control waits for the socket to drain with no limit: the
app's task and the connection were held until the client read again, or for ever.

A real uvicorn server in this process, on 127.0.0.1, with the server's protocol class
and a small ASGI app that streams a body far bigger than the socket buffers hold."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from wheelhouse.serve import protocol
from wheelhouse.serve.protocol import Limits, protocol_class

SIZE = 12 << 20  # far more than the socket buffers hold (loopback: up to ~4 MiB)
CHUNK = 64 << 10
BODY_TIMEOUT = 2.0


async def streaming_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    length = str(SIZE).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
    )
    chunk = b"x" * CHUNK
    for left in range(SIZE - CHUNK, -1, -CHUNK):
        await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    # the sweep runs once per worker process: this server's loop needs its own
    monkeypatch.setattr(protocol, "_sweeping", False)
    config = uvicorn.Config(
        streaming_app,
        http=protocol_class(Limits(body_timeout=BODY_TIMEOUT)),
        loop="uvloop",
        lifespan="off",
        log_level="error",
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=30)


def read_until_closed(sock: socket.socket, *, pause: float = 0) -> int:
    got = 0
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += len(chunk)
        time.sleep(pause)


def test_a_client_that_reads_nothing_of_a_streamed_answer_is_cut_off(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # the server's fills
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
        time.sleep(BODY_TIMEOUT * 4)  # reads nothing: the sweep cuts it off in between
        rest = read_until_closed(sock)
    # what the socket buffers held, then the end; not the rest of the body
    assert rest < SIZE - (4 << 20)

    with socket.socket() as sock:  # and the server answers the next client whole
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock) > SIZE


def test_a_slow_reader_that_keeps_reading_gets_every_byte(port: int) -> None:
    """Progress, not speed: a client that reads a little at a time for longer than
    body_timeout is a slow client, not a stalled one."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        started = time.monotonic()
        got = read_until_closed(sock, pause=0.004)
    assert got > SIZE
    assert time.monotonic() - started > BODY_TIMEOUT  # (it did read for that long)
