"""What the wait tests (test_faults_waits.py in each layer) stand a wheelhouse run against:
a server that accepts connections and never answers, and sdists whose PEP 517 hooks sleep.

* `SilentServer`: a listening socket, on loopback TCP (an index or an S3 endpoint that
  stopped answering) or on a unix path (an engine socket, as DOCKER_HOST=unix://...),
  served by a thread that accepts every connection, holds it open and never writes a
  byte. It counts the connections, so a test can say how many attempts a client made.
  `SocketServer`, the same socket and thread, hands each connection to a function that
  answers it (the engine API socket's replies in tests/unit/test_engine_socket.py).
* `sleepy_sdist`: a valid sdist with an in-tree backend (`requires = []`, stdlib only)
  whose metadata hook and build hook sleep as long as asked, first writing their pid to
  $WHEELHOUSE_TEST_PIDS (when set), so a test can check the process is gone afterwards.
* `process_state`: what became of a pid: "gone", "zombie" (killed, not yet reaped by
  whoever inherited it) or its state letter ("S" while it sleeps); `ended` waits (up to a
  guard) for a killed process to finish dying: SIGKILL is not instant.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from fixtures_index import sdist_tarball

__all__ = ["SilentServer", "SocketServer", "ended", "process_state", "sleepy_sdist"]


class SocketServer:
    """A listening socket on 127.0.0.1 (`url`) or, given `path`, a unix socket, served by
    a thread that accepts every connection and hands it to `handle` (one at a time, in
    that thread), closing it afterwards."""

    def __init__(
        self, path: Path | None = None, handle: Callable[[socket.socket], None] | None = None
    ) -> None:
        family = socket.AF_UNIX if path is not None else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind(str(path) if path is not None else ("127.0.0.1", 0))
        self._sock.listen(64)
        self.path = path
        self._handle = handle
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self._handle is not None:
                self._handle(conn)

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        # shutdown wakes the accepting thread (close alone may leave it blocked)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SilentServer(SocketServer):
    """Accepts and never answers: each connection is held open, not a byte written,
    until `close()`."""

    def __init__(self, path: Path | None = None) -> None:
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        super().__init__(path)

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._held.append(conn)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._held)

    def close(self) -> None:
        super().close()
        with self._lock:
            for conn in self._held:
                conn.close()
            self._held.clear()


_BACKEND = '''\
"""In-tree PEP 517 backend of tests/fixtures_silent.py: its hooks sleep when asked."""
import base64
import hashlib
import os
import time
import zipfile

NAME, VERSION = @NAME@, @VERSION@
METADATA_SLEEP, BUILD_SLEEP = @METADATA_SLEEP@, @BUILD_SLEEP@
DIST = NAME.replace("-", "_")
INFO = DIST + "-" + VERSION + ".dist-info"


def _sleep(seconds):
    if not seconds:
        return
    pids = os.environ.get("WHEELHOUSE_TEST_PIDS")
    if pids:
        with open(pids, "a") as f:
            f.write("%d\\n" % os.getpid())
    print("sleeping for %s s" % seconds, flush=True)
    time.sleep(seconds)


def _metadata():
    with open("PKG-INFO", "rb") as f:
        return f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _sleep(METADATA_SLEEP)
    os.makedirs(os.path.join(metadata_directory, INFO))
    with open(os.path.join(metadata_directory, INFO, "METADATA"), "wb") as f:
        f.write(_metadata())
    return INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _sleep(BUILD_SLEEP)
    wheel = "Wheel-Version: 1.0\\nGenerator: sleepy\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files = [
        (DIST + "/__init__.py", ("VERSION = %r\\n" % VERSION).encode()),
        (INFO + "/METADATA", _metadata()),
        (INFO + "/WHEEL", wheel.encode()),
    ]
    record = ""
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record += "%s,sha256=%s,%d\\n" % (path, digest.decode(), len(data))
    files.append((INFO + "/RECORD", (record + INFO + "/RECORD,,\\n").encode()))
    filename = "%s-%s-py3-none-any.whl" % (DIST, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    return filename
'''


def sleepy_sdist(
    name: str, version: str = "1.0", *, metadata_sleep: float = 0, build_sleep: float = 0
) -> tuple[str, bytes]:
    """(filename, bytes) of an sdist whose metadata hook sleeps `metadata_sleep` s (what
    a resolver runs) and whose build hook sleeps `build_sleep` s, then makes a pure wheel."""
    dist = name.replace("-", "_")
    base = f"{dist}-{version}"
    backend = (
        _BACKEND.replace("@NAME@", repr(name))
        .replace("@VERSION@", repr(version))
        .replace("@METADATA_SLEEP@", repr(metadata_sleep))
        .replace("@BUILD_SLEEP@", repr(build_sleep))
    )
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        ),
        "backend.py": backend,
        f"{dist}/__init__.py": f"VERSION = {version!r}\n",
    }
    encoded = {path: text.encode() for path, text in files.items()}
    return f"{base}.tar.gz", sdist_tarball(base, [base, f"{base}/{dist}"], encoded)


def process_state(pid: int) -> str:
    """ "gone", "zombie", or the state letter of /proc/<pid>/stat ("S": sleeping)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "gone"
    state = stat.rsplit(")", 1)[1].split()[0]  # the name in parentheses may hold spaces
    return "zombie" if state in ("Z", "X") else state


def ended(pid: int, guard: float = 30) -> bool:
    """Whether the process is gone or a zombie, waiting up to `guard` s for it (a killed
    process may still be exiting; one that was not killed sleeps on past the guard)."""
    deadline = time.monotonic() + guard
    while process_state(pid) not in ("gone", "zombie"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
