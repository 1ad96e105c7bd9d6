"""`wheelhouse serve` test helpers: the real CLI as a server process on loopback (its
access log parsed), a wheelhouse tree, pip runs, multipart bodies, Basic credentials."""

from __future__ import annotations

import base64
import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from conftest import Wheelhouse, isolated_env
from fixtures_index import wheel_bytes, wheel_filename

JSON_V1 = "application/vnd.pypi.simple.v1+json"


HTML_V1 = "application/vnd.pypi.simple.v1+html"


PASSWORD = "correct horse battery"


CONFIG = """\
default-targets = ["slim"]
[targets.slim]
python-version = "3.11"
[targets.other]
extends = "slim"
"""


class Server:
    """`python -m wheelhouse serve --port 0 ...` in a project; its access log parsed."""

    def __init__(self, wh: Wheelhouse, *args: str, **popen: Any) -> None:
        self.log_path = wh.project / f"serve-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "wheelhouse", "serve", "--port", "0", *args],
            cwd=wh.project,
            env=wh.env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            **popen,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "serving http://127.0.0.1:PORT/simple/ ..."
        if not line:
            self.proc.wait(timeout=10)
            self.kill()
            raise AssertionError(f"the server did not start:\n{self.log_path.read_text()}")
        url = line.split()[1]
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.port = int(parts.port or 0)
        deadline = time.monotonic() + 15
        while True:  # the socket listens before uvicorn runs: wait for an answer
            try:
                if self.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                raise AssertionError(f"no /health answer:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, {k.replace("_", "-"): v for k, v in headers.items()})

    def access_log(self) -> list[dict[str, Any]]:
        self._log.flush()
        return [
            json.loads(line)
            for line in self.log_path.read_text().splitlines()
            if line.startswith("{")
        ]

    def stop(self) -> int:
        """SIGTERM: a graceful stop exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=40)
        self._close()
        return code

    def kill(self) -> None:
        """SIGKILL, if it still runs; its pipe and log closed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def put(folder: Path, name: str, version: str, **kw: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / wheel_filename(name, version)
    path.write_bytes(wheel_bytes(name, version, **kw))
    return path


def pip(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            *args,
        ],
        env={**isolated_env(tmp_path / "pip-cache"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def installed(target: Path) -> set[str]:
    return {p.name.split("-")[0] for p in target.glob("*.dist-info")}


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "wheelhouse-test-boundary"
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    out += content + f"\r\n--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def add_user(wh: Wheelhouse) -> Path:
    """`wheelhouse serve-user` adds ci (PASSWORD) to the project's users.txt: said so,
    the file private to its owner, the password kept as an argon2id hash."""
    users = wh.project / "users.txt"
    proc = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "wheelhouse",
            "serve-user",
            str(users),
            "ci",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=wh.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "added ci" in proc.stdout
    assert users.stat().st_mode & 0o077 == 0  # nobody else reads the hashes
    assert users.read_text().startswith("ci:$argon2id$")
    return users


def upload_server(wh: Wheelhouse, servers: list[Server], *args: str) -> Server:
    """A server taking uploads from ci (add_user), with `args` besides."""
    server = Server(wh, "--upload", "--password-file", str(add_user(wh)), *args)
    servers.append(server)
    return server
