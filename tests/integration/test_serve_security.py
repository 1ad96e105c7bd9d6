"""Security corpus of `wheelhouse serve`, part 1: the connection, passwords, files on disk
and uploads, as an attacker on the same network would try them (issue 17). The real CLI
serves on loopback; raw sockets send what no HTTP client would. One test per finding."""

from __future__ import annotations

import contextlib
import io
import resource
import socket
import zipfile
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import wheel_bytes, wheel_filename
from fixtures_serve import (
    CONFIG,
    PASSWORD,
    Server,
    basic,
    files_in,
    multipart,
    put,
    upload_server,
)

LIMITS = """
[serve]
head-timeout = "2s"
idle-timeout = "2s"
body-timeout = "2s"
"""


@pytest.fixture
def tree(wh: Wheelhouse) -> Path:
    """slim has alpha and gamma, other has delta, indexed by `wheelhouse index`."""
    write(wh.project / "wheelhouse.toml", CONFIG)
    put(wh.project / "wheelhouse" / "slim", "alpha", "1.0")
    put(wh.project / "wheelhouse" / "slim", "gamma", "1.0")
    put(wh.project / "wheelhouse" / "other", "delta", "2.0")
    wh("index", "-t", "slim,other")
    return wh.project / "wheelhouse"


def raw(port: int, data: bytes, *, timeout: float = 20) -> bytes:
    """Send bytes, read until the server closes (or `timeout`): the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # it may answer and close before taking it all
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split()[1])


def with_limits(wh: Wheelhouse) -> None:
    config = wh.project / "wheelhouse.toml"
    write(config, config.read_text() + LIMITS)


# -- the connection -------------------------------------------------------------------------


def test_request_line_and_header_limits(wh: Wheelhouse, tree: Path, servers: list[Server]) -> None:
    server = Server(wh)
    servers.append(server)
    # one 64 MiB header: refused after its first 64 KiB, never buffered whole
    head = b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Big: "
    answer = raw(server.port, head + b"a" * (64 << 20) + b"\r\n\r\n")
    assert status_of(answer) == 431
    # a head just past 64 KiB, which may arrive in the one chunk that ends it: refused
    # too, and one just below is served
    assert status_of(raw(server.port, head + b"a" * (66 << 10) + b"\r\n\r\n")) == 431
    below = head + b"a" * (60 << 10) + b"\r\nConnection: close\r\n\r\n"
    assert status_of(raw(server.port, below)) == 200
    # 100,000 small headers
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(100_000))
    start = b"GET /simple/ HTTP/1.1\r\nHost: x\r\n"
    assert status_of(raw(server.port, start + many + b"\r\n")) == 431
    # a request line longer than 8 KiB
    assert status_of(raw(server.port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n")) == 414
    # within the limits all is well, and the server still answers everyone
    ok = raw(server.port, b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(ok) == 200
    assert server.get("/simple/alpha/")[0] == 200


def test_pipelined_requests_are_answered_in_order(
    wh: Wheelhouse, tree: Path, servers: list[Server]
) -> None:
    # cached pages are answered by the protocol itself (app.App.fast_answer), the rest by the
    # ASGI app: one packet mixing both still gets its answers in order
    server = Server(wh)
    servers.append(server)
    req = "GET {} HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n{}\r\n"
    paths = ["/simple/alpha/", "/nope", "/simple/gamma/", "/health", "/simple/alpha/"]
    data = "".join(
        req.format(p, "Connection: close\r\n" if i == 4 else "") for i, p in enumerate(paths)
    )
    answer = raw(server.port, data.encode())
    statuses = [int(part.split(b" ", 1)[0]) for part in answer.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 404, 200, 200, 200]
    assert answer.index(b"Links for alpha") < answer.index(b"Links for gamma")
    assert answer.index(b"Links for gamma") < answer.index(b'"status"')
    # HEAD: the headers of GET, no body; a conditional GET: 304
    head = raw(server.port, b"HEAD /simple/alpha/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(head) == 200 and head.endswith(b"\r\n\r\n")
    etag = server.get("/simple/alpha/", accept="text/html")[1]["etag"]
    cond = f"GET /simple/alpha/ HTTP/1.1\r\nAccept: text/html\r\nIf-None-Match: {etag}\r\n"
    assert status_of(raw(server.port, (cond + "Connection: close\r\n\r\n").encode())) == 304


def test_idle_and_half_sent_connections_are_closed(
    wh: Wheelhouse, tree: Path, servers: list[Server]
) -> None:
    with_limits(wh)
    server = Server(wh)
    servers.append(server)
    # a connection that never sends a byte is closed (idle-timeout)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as idle:
        assert read_all(idle) == b""
    # a head that never ends gets 408 (head-timeout), though bytes keep trickling in
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as slow:
        slow.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for _ in range(30):
            try:
                slow.sendall(b"X-A: b\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                slow.settimeout(0.5)
                got = slow.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            answer += got
            if not got or b"\r\n\r\n" in answer:
                break
        assert status_of(answer) == 408
    # a kept-alive connection is closed after its idle time
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as kept:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(read_all(kept)) == 200  # read_all returns: the server closed it


def test_idle_sockets_cannot_exhaust_file_descriptors(
    wh: Wheelhouse, tree: Path, servers: list[Server]
) -> None:
    # under a 256-file limit, 300 idle sockets: the worker closes the idle ones it must
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    server = Server(wh, preexec_fn=low_limit)
    servers.append(server)
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
        for _ in range(5):
            assert server.get("/simple/alpha/")[0] == 200
        assert server.proc.poll() is None
    finally:
        for sock in idle:
            sock.close()


# -- passwords ------------------------------------------------------------------------------


def test_bad_passwords_are_rate_limited(wh: Wheelhouse, tree: Path, servers: list[Server]) -> None:
    server = upload_server(wh, servers)
    body, ctype = multipart({":action": "file_upload"}, "x.whl", b"x")
    bad = {"Content-Type": ctype, "Authorization": basic("ci", "wrong password")}
    statuses = [server.request("POST", "/slim/", bad, body)[0] for _ in range(5)]
    assert statuses == [401] * 5
    status, headers, text = server.request("POST", "/slim/", bad, body)
    assert status == 429 and int(headers["retry-after"]) > 0, text
    # the right password from that address waits too: a guesser cannot tell it was right
    good = {"Content-Type": ctype, "Authorization": basic("ci", PASSWORD)}
    assert server.request("POST", "/slim/", good, body)[0] == 429
    # downloads go on while logins are refused
    assert server.get(f"/slim/{wheel_filename('alpha', '1.0')}")[0] == 200
    refused = [e for e in server.access_log() if e["status"] == 429]
    assert refused and all(e["path"] == "/slim/" for e in refused)


# -- files on disk --------------------------------------------------------------------------


def test_nothing_is_served_through_a_symlink_out_of_the_folder(
    wh: Wheelhouse, tree: Path, servers: list[Server]
) -> None:
    evil = tree / "slim" / "simple" / "evil"
    evil.mkdir()
    (evil / "index.html").symlink_to("/etc/passwd")
    (tree / "slim" / "passwd.whl").symlink_to("/etc/passwd")
    # a target folder that is a symlink to /etc
    other = tree / "other"
    for p in other.rglob("*"):
        if p.is_file():
            p.unlink()
    for p in sorted(other.rglob("*"), reverse=True):
        p.rmdir()
    other.rmdir()
    other.symlink_to("/etc")
    server = Server(wh)
    servers.append(server)
    for path in ("/slim/simple/evil/", "/slim/passwd.whl", "/other/passwd", "/other/hostname"):
        status, _, body = server.get(path, accept="text/html")
        assert status == 404, (path, body[:100])
        assert b"root:" not in body
    assert server.get("/slim/simple/alpha/")[0] == 200


# -- uploads --------------------------------------------------------------------------------


def _zip(members: dict[str, bytes], *, compress: bool = True) -> bytes:
    buf = io.BytesIO()
    kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", kind) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _wheel_with(name: str, version: str, extra: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(wheel_bytes(name, version))) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members.update(extra)
    return _zip(members)


def _upload(server: Server, filename: str, content: bytes) -> tuple[int, bytes]:
    fields = {":action": "file_upload", "name": filename.split("-")[0]}
    body, ctype = multipart(fields, filename, content)
    headers = {"Content-Type": ctype, "Authorization": basic("ci", PASSWORD)}
    status, _, text = server.request("POST", "/slim/", headers, body)
    return status, text


def test_unsafe_uploads_are_refused_and_leave_nothing(
    wh: Wheelhouse, tree: Path, servers: list[Server]
) -> None:
    with_limits(wh)
    server = upload_server(wh, servers)
    slim = tree / "slim"
    before = files_in(slim)
    name = wheel_filename("zeta", "1.0")
    info = "zeta-1.0.dist-info"
    cases = {
        "traversal": (name, _wheel_with("zeta", "1.0", {"../../evil.pth": b"import os"})),
        "absolute": (name, _wheel_with("zeta", "1.0", {"/tmp/evil.pth": b"import os"})),
        "markup tag": (
            "zeta-1.0-py3-none-<img src=x onerror=alert(1)>.whl",
            wheel_bytes("zeta", "1.0"),
        ),
        "quote tag": ('zeta-1.0-py3-none-any"x.whl', wheel_bytes("zeta", "1.0")),
        "zip bomb": (name, _wheel_with("zeta", "1.0", {"zeta/zeros.bin": bytes(300 << 20)})),
        "metadata bomb": (
            name,
            _wheel_with(
                "zeta",
                "1.0",
                {f"{info}/METADATA": b"Name: zeta\nVersion: 1.0\n\n" + b" " * (200 << 20)},
            ),
        ),
    }
    reasons = {
        "traversal": b"unsafe member '../../evil.pth'",
        "absolute": b"unsafe member '/tmp/evil.pth'",
        "markup tag": b"is not a valid wheel tag",
        "quote tag": b"is not a valid wheel tag",
        "zip bomb": b"a zip bomb",
        "metadata bomb": b"has a METADATA of 209715225 bytes",
    }
    for case, (filename, content) in cases.items():
        status, text = _upload(server, filename, content)
        if case == "markup tag":  # quoted in a message that is never read as HTML
            fields = {":action": "file_upload", "name": "zeta"}
            body, ctype = multipart(fields, filename, content)
            auth = {"Content-Type": ctype, "Authorization": basic("ci", PASSWORD)}
            headers = server.request("POST", "/slim/", auth, body)[1]
            assert headers["content-type"].startswith("text/plain")
            assert headers["x-content-type-options"] == "nosniff"
        assert status == 400 and reasons[case] in text, (case, text)
        assert str(tree) not in text.decode() and str(wh.project) not in text.decode(), text
        assert files_in(slim) == before, case  # no wheel, no .metadata, no temp file
    # a body that stalls: 408 after the body timeout, and the temp file goes
    body, ctype = multipart({":action": "file_upload"}, name, wheel_bytes("zeta", "1.0"))
    head = (
        f"POST /slim/ HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
        f"Authorization: {basic('ci', PASSWORD)}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    assert status_of(raw(server.port, head + body[: len(body) // 2])) == 408
    assert files_in(slim) == before
    # and a good upload still goes through
    assert _upload(server, name, wheel_bytes("zeta", "1.0"))[0] == 200
