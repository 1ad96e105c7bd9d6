"""When wheelhouse asks Docker's API socket instead of its CLI (image ids on a warm build),
and what it makes of the answers. The real-engine path is in tests/docker/test_engine.py;
here the edge cases, against a small HTTP server on a unix socket (in this process) and a
`docker` on PATH that records its calls (fixtures_engine.fake_docker)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_engine import RecordingBinary
from fixtures_silent import SocketServer

from wheelhouse import engine as engine_mod
from wheelhouse.engine import _UNKNOWN, _api_image_id, _local_docker_socket
from wheelhouse.errors import EngineError


def test_socket_only_where_the_cli_would_use_it(
    fake_docker: RecordingBinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = fake_docker.binary
    sock = tmp_path / "docker.sock"
    sock.touch()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    assert _local_docker_socket(docker) == str(sock)
    assert _local_docker_socket("podman") is None  # another engine: its CLI
    assert _local_docker_socket(str(tmp_path / "missing" / "docker")) is None  # CLI's error
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert _local_docker_socket(docker) is None  # a remote engine: its CLI
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'absent.sock'}")
    assert _local_docker_socket(docker) is None
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    assert _local_docker_socket(docker) is None
    monkeypatch.delenv("DOCKER_CONTEXT")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    assert _local_docker_socket(docker) is None  # `docker context use remote`


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """A unix-socket server answering each request with the reply set for its path."""
    path = tmp_path / "api.sock"
    replies: dict[str, bytes] = {}

    def answer(conn: socket.socket) -> None:
        request = conn.recv(65536).decode()
        target = request.split(" ")[1]
        conn.sendall(replies.get(target, b"HTTP/1.0 500 Oops\r\n\r\n"))

    with SocketServer(path, answer):
        yield str(path), replies


def _reply(status: str, body: bytes = b"") -> bytes:
    return f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n".encode() + body


def test_api_answers(api: tuple[str, dict[str, bytes]]) -> None:
    path, replies = api
    replies["/images/app%3A1/json"] = _reply("200 OK", b'{"Id": "sha256:abc", "Size": 1}')
    replies["/images/gone%3A1/json"] = _reply("404 Not Found", b'{"message": "no such image"}')
    replies["/images/odd%3A1/json"] = _reply("200 OK", b"not json")
    assert _api_image_id(path, "app:1") == "sha256:abc"  # the ref is quoted whole
    assert _api_image_id(path, "gone:1") is None
    assert _api_image_id(path, "odd:1") is _UNKNOWN  # then the CLI decides
    assert _api_image_id(path, "other:1") is _UNKNOWN  # a 500
    assert _api_image_id(str(Path(path).with_name("nobody.sock")), "app:1") is _UNKNOWN


def test_unknown_api_answer_falls_back_to_the_cli(
    fake_docker: RecordingBinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_docker.answer(stdout="sha256:from-the-cli\n")
    monkeypatch.setattr(engine_mod, "_local_docker_socket", lambda binary: "/nonexistent.sock")
    engine = engine_mod.Engine(fake_docker.binary, tmp_path / "cache")
    assert engine.image_id("app:1") == "sha256:from-the-cli"
    assert engine.has_image("app:1")


def test_the_cli_is_asked_once_where_it_answered_first(
    fake_docker: RecordingBinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the API (no local socket, another engine, a stopped daemon), the CLI's "no"
    stands: one `image inspect`, then the check that names a stopped engine (each CLI
    start costs 20-30 ms of every lock and build). The API's "no" is asked of the CLI."""
    fake_docker.answer(exit_code=1)
    monkeypatch.setattr(engine_mod, "_local_docker_socket", lambda binary: None)
    engine = engine_mod.Engine(fake_docker.binary, tmp_path / "cache")
    with pytest.raises(EngineError, match="not running"):
        engine.image_id("app:1", pull=False)
    assert [c[:2] for c in fake_docker.calls()] == [["image", "inspect"], ["version", "--format"]]

    mark = fake_docker.mark()
    monkeypatch.setattr(engine_mod, "_local_docker_socket", lambda binary: "/nonexistent.sock")
    monkeypatch.setattr(engine_mod, "_api_image_id", lambda path, ref, timeout: None)
    fake_docker.answer(stdout="sha256:from-the-cli\n")
    assert engine.image_id("app:1") == "sha256:from-the-cli"
    assert [c[:2] for c in fake_docker.since(mark)] == [["image", "inspect"]]
