"""Every wait is bounded and a cancel is clean, in this process: process.run's timeout kills
the command's whole process group, process.cancel() kills what runs in other threads and
refuses new commands but not cleanups, the CLI's SIGTERM/SIGINT handler, the engine's
limits (a client that never returns, a socket that accepts and never answers) and the
errors they end in, the `[timeouts]` config, and the private staging folder.

The same faults through the real CLI: tests/integration/test_faults_waits_integration.py
(S3, resolvers) and tests/docker/test_faults_waits.py (the engine, SIGTERM mid-build)."""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
from fixtures_silent import SilentServer, ended, process_state

from wheelhouse import engine as engine_mod
from wheelhouse import process
from wheelhouse.cli.common import cancellation
from wheelhouse.config import Timeouts, load
from wheelhouse.engine import Engine, EngineTimeoutError, Limit
from wheelhouse.errors import ConfigError, EngineError
from wheelhouse.fsutil import staging_dir


@pytest.fixture(autouse=True)
def fresh_cancellation(monkeypatch: pytest.MonkeyPatch) -> None:
    """process.cancel() is for the life of a CLI process: each test gets a new state."""
    monkeypatch.setattr(process, "_cancelled", threading.Event())
    monkeypatch.setattr(process, "_running", {})


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


# -- process: timeouts kill the whole group ---------------------------------------------


def test_timeout_kills_the_command_and_what_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # a shell whose child sleeps: killing only the shell would leave the sleep running
    script = f"sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; echo started; wait"
    with pytest.raises(process.TimedOut) as err:
        process.run(["sh", "-c", script], timeout=1, limit="timeouts.resolve")
    e = err.value
    assert e.timeout == 1 and e.exit_code == 10  # a ToolError unless the caller says more
    assert "did not finish within 1 s" in e.message and "sh -c" in e.message
    assert "raise timeouts.resolve" in (e.hint or "")
    assert e.result.stdout == "started\n"  # what it printed before it was killed
    assert len(_pids(pids)) == 2
    assert all(ended(p) for p in _pids(pids))


def test_a_command_that_finishes_in_time_is_untouched() -> None:
    res = process.run(["sh", "-c", "cat; echo err >&2; exit 3"], input="in\n", timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (3, "in\n", "err\n")
    res = process.run(["sh", "-c", "read x || echo no-stdin"], timeout=60)
    assert res.stdout == "no-stdin\n"  # stdin is closed: a tool that reads it cannot hang


def test_running_wait_times_out_too(tmp_path: Path) -> None:
    running = process.start(["sleep", "300"])
    with pytest.raises(process.TimedOut):
        running.wait(timeout=0.5)
    assert process_state(running.proc.pid) == "gone"  # reaped by wait


# -- process: cancel -----------------------------------------------------------------------


def _wait_for_pid(path: Path) -> int:
    """The pid a shell writes first thing (a guard, not a measure: 60 s for a fork)."""
    deadline = time.monotonic() + 60
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.01)
    return int(path.read_text())


def test_cancel_kills_commands_in_other_threads_and_refuses_new_ones(tmp_path: Path) -> None:
    raised: list[BaseException] = []
    started = threading.Event()

    def worker() -> None:
        try:
            running = process.start(["sh", "-c", f"echo $$ > {tmp_path / 'pid'}; sleep 300"])
            started.set()
            running.wait(timeout=600)
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(timeout=60)
    pid = _wait_for_pid(tmp_path / "pid")
    process.cancel()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], process.Cancelled)
    assert isinstance(raised[0], KeyboardInterrupt)  # unwinds like Ctrl-C: contexts exit
    assert ended(pid)
    assert process.cancelled()
    with pytest.raises(process.Cancelled):
        process.run(["true"])
    with process.cleanup():  # removing a container still happens
        assert process.run(["sh", "-c", "echo cleaned"], timeout=60).stdout == "cleaned\n"


def test_cleanup_commands_are_not_killed_by_cancel(tmp_path: Path) -> None:
    done: list[process.Result] = []

    def worker() -> None:
        with process.cleanup():
            done.append(process.run(["sh", "-c", "sleep 1; echo removed"], timeout=60))

    thread = threading.Thread(target=worker)
    thread.start()
    process.cancel()
    thread.join(timeout=60)
    assert [r.stdout for r in done] == ["removed\n"]


# -- the CLI's signal handling ----------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_cancel_and_raise_keyboard_interrupt(
    signum: int, tmp_path: Path
) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    running = process.start(["sleep", "300"])
    with pytest.raises(KeyboardInterrupt), cancellation() as received:
        os.kill(os.getpid(), signum)  # the handler runs as kill() returns
    assert received == [signum]
    assert {s: signal.getsignal(s) for s in before} == before  # put back
    assert process.cancelled()
    with pytest.raises(process.Cancelled):  # killed by the handler: no result, no wait
        running.wait(timeout=60)
    assert process_state(running.proc.pid) == "gone"


def test_a_second_signal_during_the_cleanup_is_ignored() -> None:
    with pytest.raises(KeyboardInterrupt), cancellation() as received:
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs as kill() returns
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGINT)  # a second one while cleaning up: no raise
            raise
    assert received == [signal.SIGTERM]


# -- the engine's limits -----------------------------------------------------------------


@pytest.fixture
def hanging_engine(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A `docker` that logs its argv and then hangs on the verbs named in HANG (default:
    all but rm), as a client talking to an engine that never answers does."""
    log = tmp_path / "calls"
    binary = tmp_path / "docker"
    binary.write_text(
        f"#!{sys.executable} -IS\n"
        "import os, sys, time\n"
        f"with open({str(log)!r}, 'a') as f: f.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1] != 'rm': time.sleep(300)\n"
    )
    binary.chmod(0o755)
    yield str(binary), log


def test_every_engine_call_has_a_limit_and_names_it(
    hanging_engine: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary, log = hanging_engine
    monkeypatch.setattr(engine_mod, "_local_docker_socket", lambda binary: None)
    eng = Engine(binary, tmp_path / "cache", Timeouts(engine=0.5, image=1, build=2, resolve=3))
    with pytest.raises(EngineTimeoutError) as err:
        eng.image_id("app:1")
    e = err.value
    assert isinstance(e, EngineError) and e.exit_code == 5
    assert (e.key, e.seconds) == ("engine", 0.5)
    assert "`docker image inspect` within 0.5 s" in e.message
    assert "timeouts.engine" in (e.hint or "") and "docker info" in (e.hint or "")
    with pytest.raises(EngineTimeoutError) as err:
        eng.save("app:1", tmp_path / "app.tar")
    assert err.value.key == "image" and "timeouts.image" in (err.value.hint or "")
    with pytest.raises(EngineTimeoutError) as err:
        eng.build_image("wh:1", "FROM scratch\n", {}, tmp_path / "log")
    assert err.value.key == "image" and err.value.seconds == 1
    assert [line.split()[0] for line in log.read_text().splitlines()] == [
        "image",
        "save",
        "build",
    ]


def test_a_container_whose_create_hangs_is_removed_by_name(
    hanging_engine: tuple[str, Path], tmp_path: Path
) -> None:
    binary, log = hanging_engine
    eng = Engine(binary, tmp_path / "cache", Timeouts(engine=0.5))
    with pytest.raises(EngineTimeoutError), eng.container("img:1", ["true"]):
        pass  # pragma: no cover - never entered
    calls = log.read_text().splitlines()
    assert calls[0].startswith("create --rm --name wheelhouse-")
    name = calls[0].split()[3]
    assert calls[1:] == [f"rm --force {name}"]


def test_a_silent_engine_socket_is_an_engine_timeout_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "engine.sock"
    with SilentServer(sock):
        assert engine_mod._api_image_id(str(sock), "app:1", timeout=0.5) is engine_mod._SILENT
        # the CLI would wait on the same socket: the error comes at once, naming it
        monkeypatch.setattr(engine_mod, "_local_docker_socket", lambda binary: str(sock))
        eng = Engine("/nonexistent/docker", tmp_path / "cache", Timeouts(engine=0.5))
        with pytest.raises(EngineTimeoutError) as err:
            eng.image_id("app:1")
    assert f"GET /images/app:1/json on unix://{sock}" in err.value.message
    assert "within 0.5 s" in err.value.message and "timeouts.engine" in (err.value.hint or "")


# -- config --------------------------------------------------------------------------------


def _config(tmp_path: Path, text: str, *overrides: str) -> Timeouts:
    (tmp_path / "wheelhouse.toml").write_text(text)
    return load(tmp_path, overrides=overrides, environ={}).timeouts


def test_timeouts_config(tmp_path: Path) -> None:
    assert set(get_args(Limit)) == set(Timeouts.__dataclass_fields__)  # the keys agree
    assert _config(tmp_path, "") == Timeouts()
    assert Timeouts() == Timeouts(engine=120, image=3600, build=7200, resolve=3600)
    got = _config(tmp_path, '[timeouts]\nengine = 30\nbuild = "3h"\nresolve = "20m"\n')
    assert got == Timeouts(engine=30, image=3600, build=3 * 3600, resolve=20 * 60)
    got = _config(tmp_path, "", "timeouts.engine=5", "timeouts.image=90s", "timeouts.build=1.5")
    assert got == Timeouts(engine=5, image=90, build=1.5, resolve=3600)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[timeouts]\nengine = 0\n", "timeouts.engine = 0 (int): expected a number of seconds"),
        ("[timeouts]\nbuild = -1\n", "timeouts.build = -1 (int)"),
        ("[timeouts]\nresolve = true\n", "timeouts.resolve = True (bool)"),
        ('[timeouts]\nimage = "soon"\n', "timeouts.image = 'soon': expected"),
        ("[timeouts]\nengin = 5\n", "unknown key 'timeouts.engin'"),
        ("timeouts = 5\n", "timeouts = 5 (int): expected a table"),
        ('[store]\nurl = "s3://team-wheels/x"\ntimeout = 0\n', "store.timeout = 0 (int)"),
    ],
)
def test_bad_timeouts_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, text)
    assert err.value.message.startswith("wheelhouse.toml: ")
    assert expected in err.value.message


# -- staging --------------------------------------------------------------------------------


def test_staging_folder_is_private_and_removed_on_every_exit(tmp_path: Path) -> None:
    parent = tmp_path / "store" / "tmp"
    with pytest.raises(RuntimeError), staging_dir(parent, "build-") as out:
        private = out.parent
        assert private.parent == parent and private.name.startswith("build-")
        # only the owner reaches it; the container's user writes into `out` by its mount
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert stat.S_IMODE(out.stat().st_mode) == 0o777
        (out / "x.whl").write_bytes(b"wheel")
        raise RuntimeError("the build failed")
    assert list(parent.iterdir()) == []
