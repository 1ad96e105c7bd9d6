"""The single chokepoint for running pip, pip-compile, uv and the container engine.

Keeping every subprocess here gives one place for logging (``-v``), environment
handling, the "tool is missing" error, timeouts and cancellation. Each command runs in
a process group of its own, so a timeout or a cancel kills it with everything it
started (pip-compile's pip, a shell's children), and a terminal's Ctrl-C reaches only
wheelhouse, which then decides what to kill and what to clean up.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.errors import ToolError, WheelhouseError

if TYPE_CHECKING:
    from wheelhouse.config import Config

VERBOSE = False  # set by the CLI's -v: logging costs 10 ms to import, so only then
REAP = 10.0  # seconds to collect a killed command's output: a stray grandchild may hold it


def _debug(fmt: str, *args: object) -> None:
    if VERBOSE:
        import logging

        logging.getLogger("wheelhouse").debug(fmt, *args)


@dataclass(frozen=True, kw_only=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 20) -> str:
        """The last lines of stderr (or stdout): what a user needs to see of a failure."""
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


class TimedOut(ToolError):
    """A command ran past its timeout; it and every process it started were killed.
    Callers turn it into their own kind (engine, resolve, build) naming the limit."""

    def __init__(
        self, argv: tuple[str, ...], timeout: float, result: Result, limit: str | None = None
    ) -> None:
        hint = "rerun with -v to see the command"
        if limit:
            hint = f"if it only needs longer, raise {limit} in wheelhouse.toml (e.g. --set "
            hint += f"{limit}={timeout * 4:g}); {hint}"
        super().__init__(
            f"`{shlex.join(argv[:3])} ...` did not finish within {timeout:g} s", hint=hint
        )
        self.argv = argv
        self.timeout = timeout
        self.result = result  # what it printed before it was killed


class Cancelled(KeyboardInterrupt):
    """The run is being cancelled (SIGINT, SIGTERM): its commands were killed and no new
    one starts, except cleanups (`cleanup()`)."""


# -- cancellation: the CLI's signal handler calls cancel() -------------------------------

_cancelled = threading.Event()
_running: dict[int, subprocess.Popen[str]] = {}  # pid -> command that cancel() kills
_local = threading.local()  # .cleanup: this thread is removing what a command left


def cancel() -> None:
    """Kill every running command (and its process group); from now on only cleanups
    start. Safe in a signal handler: no lock, and the dict is copied in one step."""
    _cancelled.set()
    for proc in list(_running.values()):
        _kill(proc)


def cancelled() -> bool:
    return _cancelled.is_set()


@contextmanager
def cleanup() -> Iterator[None]:
    """Commands run in this block (in this thread) start even after cancel() and are not
    killed by it: removing a container must still happen when the run is cancelled."""
    before = getattr(_local, "cleanup", False)
    _local.cleanup = True
    try:
        yield
    finally:
        _local.cleanup = before


def _in_cleanup() -> bool:
    return bool(getattr(_local, "cleanup", False))


def _kill(proc: subprocess.Popen[str]) -> None:
    # the command leads its own process group (start_new_session): kill all of it
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# -- running -------------------------------------------------------------------------------


class Running:
    """A started command; ``wait()`` gives its Result. Lets slow work overlap a tool's run."""

    def __init__(self, proc: subprocess.Popen[str], argv: tuple[str, ...]) -> None:
        self.proc = proc
        self.argv = argv
        self._cleanup = _in_cleanup()

    def wait(
        self, timeout: float | None = None, *, input: str | None = None, limit: str | None = None
    ) -> Result:
        """The Result; TimedOut past `timeout` seconds (`limit`: the setting that sets it,
        for the hint), Cancelled when the run is cancelled meanwhile (the command is
        killed either way)."""
        proc = self.proc
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = _reap(proc)
            assert timeout is not None
            result = Result(args=self.argv, returncode=-9, stdout=out, stderr=err)
            raise TimedOut(self.argv, timeout, result, limit) from None
        except BaseException:  # Ctrl-C in this thread, or anything else: never leave it
            _reap(proc)
            raise
        finally:
            _running.pop(proc.pid, None)
        if _cancelled.is_set() and not self._cleanup:
            raise Cancelled
        if proc.returncode != 0:
            _debug("exit %d: %s", proc.returncode, (err or "").strip()[-2000:])
        return Result(args=self.argv, returncode=proc.returncode, stdout=out, stderr=err)


def _reap(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Kill the command's group and collect what it printed, in bounded time."""
    _kill(proc)
    try:
        out, err = proc.communicate(timeout=REAP)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        # a process outside the group holds the pipes open: stop reading them
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=REAP)
        return "", ""
    return out or "", err or ""


def start(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    missing: WheelhouseError | None = None,
    stdin: bool = False,
) -> Running:
    """Start a command without waiting (output captured as text; stdin closed unless
    `stdin`, which `Running.wait(input=...)` then writes)."""
    cleanup = _in_cleanup()
    if _cancelled.is_set() and not cleanup:
        raise Cancelled
    argv = tuple(os.fspath(a) for a in args)
    _debug("$ %s", shlex.join(argv))
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise missing or ToolError(
            f"{argv[0]!r} was not found", hint=f"install {Path(argv[0]).name} or fix PATH"
        ) from None
    running = Running(proc, argv)
    if not cleanup:
        _running[proc.pid] = proc
        if _cancelled.is_set():  # cancelled while it started: cancel() did not see it
            _reap(proc)
            _running.pop(proc.pid, None)
            raise Cancelled
    return running


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    limit: str | None = None,
    missing: WheelhouseError | None = None,
) -> Result:
    """Run a command to completion, capturing output as text. Never raises on exit status;
    raises TimedOut past `timeout` seconds (`limit` names the setting, e.g.
    "timeouts.resolve") and Cancelled when the run is cancelled.

    ``env`` replaces the environment entirely when given (callers build it explicitly so
    that what a tool sees is decided here, not inherited by accident). ``missing`` is the
    error raised when the executable does not exist.
    """
    running = start(args, cwd=cwd, env=env, missing=missing, stdin=input is not None)
    return running.wait(timeout, input=input, limit=limit)


def tool_env(config: Config, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for pip/pip-compile/uv: the user's pip config is *not* read."""
    # UV_CACHE_DIR only says where uv caches, not what it resolves: it may pass
    env = {
        k: v
        for k, v in (base or os.environ).items()
        if not k.startswith(("PIP_", "UV_")) or k == "UV_CACHE_DIR"
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PYTHONDONTWRITEBYTECODE="1",
        # pip's HTTP cache travels with wheelhouse's cache (CI caches one folder)
        PIP_CACHE_DIR=str(config.cache_dir / "pip"),
    )
    if config.ca_bundle:
        env.update(PIP_CERT=str(config.ca_bundle), SSL_CERT_FILE=str(config.ca_bundle))
    return env
