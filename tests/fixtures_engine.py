"""One recorder of container engine calls for every test that needs to see or fake them
(imported by conftest.py), and of any other binary a test stands in for.

* `RecordingBinary`: an executable that appends its argv (one JSON list a line, one
  O_APPEND write per call, so the calls of parallel builds cannot interleave) to a log,
  then either execs the real binary (`real=`: the docker tests, where every call still
  reaches the engine) or answers by itself (`stdout`, `exit_code`: a `docker` on PATH,
  Alpine's `apk`). Pass its `binary` wherever an engine path goes (`engine = ...` in
  wheelhouse.toml, `--engine`, `Engine(...)`).
* `ScriptedEngine`: wheelhouse's own `Engine` whose CLI calls are answered in-process from
  a table instead of a binary (unit tests of what wheelhouse makes of an engine's answers).

Both keep their calls in a `CallLog`: the argv lists (the binary left out) and what the
tests ask of them (`calls`, `mark`/`since`, `verbs`, `containers`, `lines`, `clear`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from wheelhouse.engine import Engine
from wheelhouse.process import Result

__all__ = [
    "CallLog",
    "RecordingBinary",
    "ScriptedEngine",
    "engine_with_versions",
    "fake_docker",
    "purpose",
    "recording_engine",
    "verb",
]

# `docker container create` etc.: the management form of a command, named by its 2nd word
_GROUPS = ("container", "image", "builder", "buildx")


def verb(argv: list[str]) -> str:
    """The engine command of a call: `create`, also for `container create`."""
    if len(argv) > 1 and argv[0] in _GROUPS:
        return argv[1]
    return argv[0] if argv else ""


def purpose(argv: list[str]) -> str | None:
    """What wheelhouse made a container for, from the script it passes in the environment:
    "build" (a source build), "probe" (an image probe), or None."""
    for what, var in (("build", "WHEELHOUSE_BUILD="), ("probe", "WHEELHOUSE_PROBE=")):
        if any(var in arg for arg in argv):
            return what
    return None


class CallLog:
    """The argv lists of the calls made so far, kept in `path` (one JSON list a line) or,
    without one, in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: list[list[str]] = []
        if path is not None:
            path.touch()

    def append(self, argv: Iterable[str]) -> None:
        if self.path is None:
            self._memory.append(list(argv))
        else:
            with self.path.open("a") as f:
                f.write(json.dumps(list(argv)) + "\n")

    def calls(self, since: int = 0) -> list[list[str]]:
        """Every call's arguments, in order; `since`: from a `mark()` on."""
        if self.path is None:
            return [list(c) for c in self._memory[since:]]
        lines = self.path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()][since:]

    def mark(self) -> int:
        """A point to ask `since(...)` about later: the number of calls so far."""
        return len(self.calls())

    def since(self, mark: int) -> list[list[str]]:
        return self.calls(mark)

    def clear(self) -> None:
        """Forget the calls so far."""
        self._memory.clear()
        if self.path is not None:
            self.path.write_text("")

    def lines(self, since: int = 0) -> list[str]:
        """Each call's arguments joined by spaces, as a shell's `"$*"` prints them."""
        return [" ".join(argv) for argv in self.calls(since)]

    def verbs(self, since: int = 0) -> list[str]:
        """Each call's engine command (see `verb`)."""
        return [verb(argv) for argv in self.calls(since)]

    def containers(self, since: int = 0, what: str | None = None) -> list[str]:
        """Names of the containers created (`create --name NAME`) since a mark; `what`:
        only those made for a source build ("build") or an image probe ("probe")."""
        return [
            argv[argv.index("--name") + 1]
            for argv in self.calls(since)
            if verb(argv) == "create"
            and "--name" in argv
            and (what is None or purpose(argv) == what)
        ]


class RecordingBinary(CallLog):
    """`folder/name`, an executable that records each call, then execs `real` or, without
    it, prints `stdout` and exits with `exit_code`."""

    def __init__(
        self,
        folder: Path,
        name: str = "engine",
        *,
        real: str | None = None,
        stdout: str = "",
        exit_code: int = 0,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder / f"{name}.calls.jsonl")
        self.executable = folder / name
        self.binary = str(self.executable)
        self.real = real
        self.answer(stdout, exit_code)

    def answer(self, stdout: str = "", exit_code: int = 0) -> None:
        """What the calls from now on print and exit with (a binary without `real`)."""
        assert self.path is not None
        # -IS: the stdlib only, no site-packages, no PYTHON* variables: quick and hermetic
        script = (
            f"#!{sys.executable} -IS\n"
            "import json, os, sys\n"
            f"fd = os.open({str(self.path)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
            "os.write(fd, (json.dumps(sys.argv[1:]) + '\\n').encode())\n"
            "os.close(fd)\n"
        )
        if self.real is not None:
            script += f"os.execv({self.real!r}, [{self.real!r}, *sys.argv[1:]])\n"
        else:
            script += f"sys.stdout.write({stdout!r})\nsys.exit({exit_code})\n"
        self.executable.write_text(script)
        self.executable.chmod(0o755)


class ScriptedEngine(Engine):
    """wheelhouse's `Engine`, its CLI answered in-process: `replies` maps the first
    arguments of a call to (exit status, stdout, stderr); any other call exits 1. Every
    call is kept in `log`."""

    def __init__(
        self,
        replies: Mapping[tuple[str, ...], tuple[int, str, str]] | None = None,
        *,
        binary: str = "/usr/bin/docker",
        cache_dir: Path = Path("/nonexistent/wheelhouse-test-cache"),
    ) -> None:
        super().__init__(binary, cache_dir)
        self.replies = dict(replies or {})
        self.log = CallLog()

    def run(
        self, *args: str, timeout: float | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        self.log.append(args)
        code, out, err = 1, "", f"no reply scripted for {list(args)}"
        # the longest matching start wins: ("version", "--format") before ("version",)
        for start in sorted(self.replies, key=len, reverse=True):
            if args[: len(start)] == start:
                code, out, err = self.replies[start]
                break
        return Result(args=(self.binary, *args), returncode=code, stdout=out, stderr=err)


def engine_with_versions(
    client: str, server: str, *, buildx: bool = False, binary: str = "/usr/bin/docker"
) -> ScriptedEngine:
    """An engine whose `version` says `client` and `server` (both "": an engine that does
    not answer) and whose `buildx version` succeeds when `buildx`."""
    if client or server:
        data = {"Client": {"Version": client}, "Server": {"Version": server}}
        version = (0, json.dumps(data), "")
    else:
        version = (1, "", "Cannot connect to the Docker daemon. Is the docker daemon running?")
    return ScriptedEngine(
        {("version",): version, ("buildx", "version"): (0 if buildx else 1, "", "")},
        binary=binary,
    )


@pytest.fixture
def recording_engine(tmp_path: Path, engine_bin: str) -> RecordingBinary:
    """The real engine behind a recorder: every call reaches it and is logged."""
    return RecordingBinary(tmp_path / "engine-wrapper", real=engine_bin)


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RecordingBinary:
    """A `docker` first on PATH that records its calls and answers nothing (exit 0; see
    `answer`), and a Docker environment with no host, context or config of this machine's."""
    docker = RecordingBinary(tmp_path / "bin", "docker")
    monkeypatch.setenv("PATH", f"{docker.executable.parent}{os.pathsep}{os.environ['PATH']}")
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return docker
