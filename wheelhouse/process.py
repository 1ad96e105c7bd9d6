"""The single chokepoint for running pip, pip-compile, uv and the container engine.

Keeping every subprocess here gives one place for logging (``-v``), environment
handling and the "tool is missing" error.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.errors import ToolError, WheelhouseError

if TYPE_CHECKING:
    from wheelhouse.config import Config

VERBOSE = False  # set by the CLI's -v: logging costs 10 ms to import, so only then


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


class Running:
    """A started command; ``wait()`` gives its Result. Lets slow work overlap a tool's run."""

    def __init__(self, proc: subprocess.Popen[str], argv: tuple[str, ...]) -> None:
        self.proc = proc
        self.argv = argv

    def wait(self, timeout: float | None = None) -> Result:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise ToolError(
                f"{shlex.join(self.argv[:3])} ... did not finish within {timeout:.0f} s",
                hint="check network access to the index, or rerun with -v",
            ) from None
        if self.proc.returncode != 0:
            _debug("exit %d: %s", self.proc.returncode, (err or "").strip()[-2000:])
        return Result(args=self.argv, returncode=self.proc.returncode, stdout=out, stderr=err)


def start(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    missing: WheelhouseError | None = None,
) -> Running:
    """Start a command without waiting (stdin closed, output captured as text)."""
    argv = tuple(os.fspath(a) for a in args)
    _debug("$ %s", shlex.join(argv))
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError:
        raise missing or ToolError(
            f"{argv[0]!r} was not found", hint=f"install {Path(argv[0]).name} or fix PATH"
        ) from None
    return Running(proc, argv)


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    missing: WheelhouseError | None = None,
) -> Result:
    """Run a command to completion, capturing output as text. Never raises on exit status.

    ``env`` replaces the environment entirely when given (callers build it explicitly so
    that what a tool sees is decided here, not inherited by accident). ``missing`` is the
    error raised when the executable does not exist.
    """
    argv = tuple(os.fspath(a) for a in args)
    _debug("$ %s", shlex.join(argv))
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise missing or ToolError(
            f"{argv[0]!r} was not found", hint=f"install {Path(argv[0]).name} or fix PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise ToolError(
            f"{shlex.join(argv[:3])} ... did not finish within {timeout:.0f} s",
            hint="check network access to the index, or rerun with -v",
        ) from None
    if proc.returncode != 0:
        _debug("exit %d: %s", proc.returncode, (proc.stderr or "").strip()[-2000:])
    return Result(args=argv, returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)


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
