"""The protocol's fast paths (protocol.py). Pages: request bytes seen before are answered
without parsing them again, but only as a whole request, and with the page as it is now.
Files (os.sendfile): a big file is read by a thread the first time, then sent from the
page cache to the socket; a client that reads slowly still gets every byte, one that
stops reading is cut off."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import time
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_serve import CONFIG, Server, put

NAME = "big-1.0-py3-none-any.whl"
SIZE = 12 << 20  # far more than the socket buffers hold (loopback: up to ~4 MiB)


@pytest.fixture
def slim(wh: Wheelhouse) -> Path:
    write(wh.project / "wheelhouse.toml", CONFIG + '\n[serve]\nbody-timeout = "2s"\n')
    folder = wh.project / "wheelhouse" / "slim"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def big(slim: Path) -> bytes:
    data = os.urandom(SIZE)
    (slim / NAME).write_bytes(data)
    return data


def response(sock: socket.socket) -> bytes:
    """One response of a kept-alive connection: its head and content-length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            v
            for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n"))
            if k == b"content-length"
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, body
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_request_seen_before_is_answered_as_it_reads_now(
    wh: Wheelhouse, slim: Path, servers: list[Server]
) -> None:
    put(slim, "alpha", "1.0")
    put(slim, "gamma", "1.0")
    wh("index", "-t", "slim")
    server = Server(wh)
    servers.append(server)
    req = b"GET /slim/simple/alpha/ HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        for _ in range(3):  # then the same bytes again: remembered
            sock.sendall(req)
            answer = response(sock)
            assert answer.startswith(b"HTTP/1.1 200 ") and b"alpha-1.0-py3" in answer
        # the same bytes after half a request are the rest of that request (a header
        # value, then its Host and Accept): gamma's page, not alpha's
        sock.sendall(b"GET /slim/simple/gamma/ HTTP/1.1\r\nX-A: ")
        time.sleep(0.2)  # two packets: the server reads the known bytes on their own
        sock.sendall(req)
        answer = response(sock)
        assert b"gamma-1.0-py3" in answer and b"alpha-1.0" not in answer
        # the page changed on disk: the remembered request gets it as it is now
        put(slim, "alpha", "2.0")
        wh("index", "-t", "slim")
        sock.sendall(req)
        assert b"alpha-2.0-py3" in response(sock)


def test_a_big_page_is_compressed_off_the_event_loop(
    wh: Wheelhouse, slim: Path, servers: list[Server]
) -> None:
    for v in range(300):  # a page of > 64 KiB: its gzip form is made by a thread
        put(slim, "many", f"1.{v}")
    wh("index", "-t", "slim")
    server = Server(wh)
    servers.append(server)
    path = "/slim/simple/many/"
    status, h, plain = server.get(path, accept="text/html")
    assert status == 200 and len(plain) > 64 << 10 and "content-encoding" not in h
    # the first ask for gzip starts it and gets the plain bytes (any client takes them)
    status, h, body = server.get(path, accept="text/html", accept_encoding="gzip")
    assert (status, body, h["etag"]) == (
        200,
        plain,
        server.get(path, accept="text/html")[1]["etag"],
    )
    deadline = time.monotonic() + 30
    while "content-encoding" not in h and time.monotonic() < deadline:
        time.sleep(0.05)
        status, h, body = server.get(path, accept="text/html", accept_encoding="gzip")
    assert h["content-encoding"] == "gzip" and gzip.decompress(body) == plain
    assert int(h["content-length"]) == len(body) < len(plain)


def request(port: int, *, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:  # a small window: the server's socket fills at once
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /slim/{NAME} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket, *, pause_every: int = 0) -> bytes:
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(16384)
        except ConnectionResetError:
            return bytes(out)
        if not chunk:
            return bytes(out)
        out += chunk
        if pause_every and len(out) // pause_every != (len(out) - len(chunk)) // pause_every:
            time.sleep(0.05)  # a slow client: the server's socket stays full a while


def body_of(answer: bytes) -> tuple[bytes, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def test_a_slow_reader_gets_every_byte_of_a_hot_file(
    wh: Wheelhouse, big: bytes, servers: list[Server]
) -> None:
    server = Server(wh)
    servers.append(server)
    for _ in range(3):  # cold (a thread reads it), then hot (sendfile) twice
        with request(server.port, rcvbuf=8192) as sock:
            head, body = body_of(read_until_closed(sock, pause_every=1 << 20))
        assert head.startswith(b"HTTP/1.1 200 ")
        assert len(body) == SIZE
        assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
    # a range of the hot file: from its offset, and only it
    status, h, body = server.get(f"/slim/{NAME}", range="bytes=1000000-3999999")
    assert (status, h["content-range"]) == (206, f"bytes 1000000-3999999/{SIZE}")
    assert body == big[1000000:4000000]


def test_a_reader_that_stops_reading_is_cut_off(
    wh: Wheelhouse, big: bytes, servers: list[Server]
) -> None:
    server = Server(wh)
    servers.append(server)
    for state in ("cold", "hot"):  # read ahead by a thread; then straight from the cache
        with request(server.port, rcvbuf=8192) as sock:
            assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
            time.sleep(5)  # reads nothing for 2.5 times body-timeout: the server gives up
            rest = read_until_closed(sock)
        # cut short: what the socket buffers held, then the end; not the rest of the file
        assert len(rest) < SIZE - (4 << 20), state
        # and the server is fine for everyone else (a whole download: the file is hot)
        status, _, body = server.get(f"/slim/{NAME}")
        assert status == 200 and body == big
