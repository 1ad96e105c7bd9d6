"""The engine's waits end and a cancelled build cleans up, through the real CLI and the
real engine: SIGTERM (what a CI cancel sends) and Ctrl-C in the middle of source builds
leave no container and no staging folder, and exit 143 / 130; the staging folder a build
container writes into is private while it runs; a build past timeouts.build is stopped
and named; an engine socket that accepts and never answers (DOCKER_HOST=unix://...) ends
in exit 5 within timeouts.engine, through the API fast path and through the CLI.

Source builds use sdists whose build hook sleeps (fixtures_silent.sleepy_sdist). The
engine is called through fixtures_engine's recorder, so each test knows exactly which
containers its run made, whatever else runs on this engine. Nothing is timed: GUARD
only turns a hang into a failure. The same mechanics in one process:
tests/unit/test_faults_waits_unit.py; S3 and the resolvers:
tests/integration/test_faults_waits_integration.py."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_engine import RecordingBinary
from fixtures_index import LocalIndex
from fixtures_silent import SilentServer, sleepy_sdist

from wheelhouse.engine import LABEL

GUARD = 300  # seconds: only so that a hang fails the test instead of stalling the suite


def _engine(engine_bin: str, *args: str) -> str:
    res = subprocess.run(
        [engine_bin, *args], capture_output=True, text=True, check=True, timeout=GUARD
    )
    return res.stdout


def managed(engine_bin: str) -> set[str]:
    """Every container wheelhouse made that the engine still has, running or not."""
    out = _engine(engine_bin, "ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    return set(out.split())


def running(engine_bin: str, names: list[str]) -> list[str]:
    out = _engine(engine_bin, "ps", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    return [n for n in names if n in out.split()]


@pytest.fixture
def engine(recording_engine: RecordingBinary, engine_bin: str) -> Iterator[RecordingBinary]:
    yield recording_engine
    # a failed test must not leave its containers to the next one
    for name in managed(engine_bin) & set(recording_engine.containers()):
        subprocess.run([engine_bin, "rm", "--force", name], capture_output=True, check=False)


@pytest.fixture
def index(make_index: Callable[..., LocalIndex]) -> LocalIndex:
    idx = make_index(default=False)
    idx.add_wheel("gamma", "1.0")
    for name in ("slowpkg", "slowerpkg"):  # pure sdists, built from source, that sleep
        idx.add_bytes(*sleepy_sdist(name, build_sleep=600))
    return idx


@pytest.fixture
def wh(project: Path, tmp_path: Path) -> Wheelhouse:
    cli = Wheelhouse(project, tmp_path / "cache")
    cli.env["COLUMNS"] = "250"  # rich: no folded messages in what the tests read
    return cli


def setup(
    wh: Wheelhouse, index: LocalIndex, images: dict[str, str], engine: RecordingBinary, reqs: str
) -> None:
    config = f'engine = "{engine.binary}"\ndefault-targets = ["slim"]\n'
    config += f'[index]\nindex-url = "{index.url}"\n' + debian_targets(images, "slim")
    write(wh.project / "wheelhouse.toml", config)
    write(wh.project / "requirements.in", reqs)
    wh("lock", timeout=GUARD)  # Python 3.11 targets: pip-compile on the host


class Build:
    """`wheelhouse build` in the background, its stderr read as it comes."""

    def __init__(self, wh: Wheelhouse, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "wheelhouse", *args],
            cwd=wh.project, env=wh.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        self.lines.extend(self.proc.stderr)

    def until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + GUARD
        while not done():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.finish()
                raise AssertionError(f"the build never got there:\n{self.stderr}")
            time.sleep(0.1)

    def finish(self) -> int:
        rc = self.proc.wait(timeout=GUARD)
        self._reader.join(timeout=GUARD)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return rc

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def __enter__(self) -> Build:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:  # a failed assertion: leave nothing running
            self.proc.kill()
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.finish()


def out_mount(engine_bin: str, name: str) -> Path:
    mounts = json.loads(_engine(engine_bin, "inspect", "--format", "{{json .Mounts}}", name))
    return Path(next(m["Source"] for m in mounts if m["Destination"] == "/out"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("signum", "code", "said", "jobs"),
    [
        (signal.SIGTERM, 143, "wheelhouse: terminated", ["slowpkg", "slowerpkg"]),
        (signal.SIGINT, 130, "wheelhouse: interrupted", ["slowpkg"]),
    ],
)
def test_cancel_mid_build_leaves_no_container_and_no_staging(
    wh: Wheelhouse,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
    engine_bin: str,
    signum: int,
    code: int,
    said: str,
    jobs: list[str],
) -> None:
    setup(wh, index, test_images, engine, "gamma\n" + "".join(f"{n}\n" for n in jobs))
    tmp = wh.cache_dir / "store" / "tmp"
    with Build(wh, "build", "-j", str(len(jobs))) as build:
        # every source build's container runs (in its worker thread, when there are two)
        build.until(lambda: len(running(engine_bin, engine.containers(what="build"))) == len(jobs))
        for name in engine.containers(what="build"):
            # the folder the container writes its wheel into: world-writable for the build
            # user, inside a 0700 folder of the cache's own tmp that no other user reaches
            out = out_mount(engine_bin, name)
            assert out.parent.parent == tmp and out.parent.name.startswith("build-")
            assert (mode(out.parent), mode(out)) == (0o700, 0o777)
        build.proc.send_signal(signum)
        assert build.finish() == code, build.stderr
    assert said in build.stderr and "Traceback" not in build.stderr
    # gone by the time the CLI exits: not merely stopped, and not left to the daemon
    assert not managed(engine_bin) & set(engine.containers())
    assert not [p for p in tmp.iterdir() if p.name.startswith("build-")]
    assert not (wh.project / "wheelhouse").exists()


def test_a_build_past_its_limit_is_stopped_and_named(
    wh: Wheelhouse,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
    engine_bin: str,
) -> None:
    setup(wh, index, test_images, engine, "gamma\nslowpkg\n")
    res = wh("--set", "timeouts.build=5", "build", check=False, timeout=GUARD)
    assert res.returncode == 11, res.stderr
    assert "slowpkg==1.0: the source build did not finish within 5 s" in res.stderr
    assert "raise timeouts.build" in res.stderr and "--set timeouts.build=20" in res.stderr
    assert "Traceback" not in res.stderr
    assert engine.containers(what="build")  # it did start
    assert not managed(engine_bin) & set(engine.containers())
    tmp = wh.cache_dir / "store" / "tmp"
    assert not [p for p in tmp.iterdir() if p.name.startswith("build-")]
    assert not list((wh.cache_dir / "store" / "built").iterdir())


# -- an engine that accepts and never answers ------------------------------------------


@pytest.mark.parametrize("path", ["api", "cli"])
def test_a_silent_engine_socket_ends_with_exit_5(
    wh: Wheelhouse, engine_bin: str, tmp_path: Path, path: str
) -> None:
    if path == "api":  # Docker's CLI on a local socket: the API fast path asks the socket
        binary = engine_bin
    else:  # any other name: every question goes through the CLI, which waits on it
        binary = str(tmp_path / "bin" / "engine")
        Path(binary).parent.mkdir()
        os.symlink(engine_bin, binary)
    # a target whose libc version comes from probing its final image
    config = f'engine = "{binary}"\n[targets.t]\npython-version = "3.11"\n'
    config += 'builder-image = "wheelhouse-test/b:1"\nfinal-image = "wheelhouse-test/f:1"\n'
    write(wh.project / "wheelhouse.toml", config)
    sock = tmp_path / "engine.sock"
    env = {"DOCKER_HOST": f"unix://{sock}", "DOCKER_CONTEXT": "default"}
    with SilentServer(sock) as server:
        res = wh(
            "--set", "timeouts.engine=2", "build", "-t", "t", check=False, env=env, timeout=GUARD
        )  # fmt: skip
        assert server.connections >= 1
    assert res.returncode == 5, res.stderr
    what = (
        f"GET /images/wheelhouse-test/f:1/json on unix://{sock}"
        if path == "api"
        else "engine image inspect"
    )
    assert f"engine error: the container engine did not finish `{what}` within 2 s" in res.stderr
    assert "raise timeouts.engine" in res.stderr and "Traceback" not in res.stderr
