"""Error kinds. Each has its own exit code; every message ends with what to do next.

Exit codes are part of the CLI contract (CI scripts branch on them), so never renumber.
"""

from __future__ import annotations


class WheelhouseError(Exception):
    """Base for errors the user can act on. ``hint`` says what to do next."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(WheelhouseError):
    """wheelhouse.toml / [tool.wheelhouse] / --set is wrong: names file, dotted key, value."""

    exit_code = 3
    kind = "config error"


class InputError(WheelhouseError):
    """A requirements input is missing or malformed: names file and line."""

    exit_code = 4
    kind = "input error"


class EngineError(WheelhouseError):
    """The container engine is missing, stopped, or an image cannot be had."""

    exit_code = 5
    kind = "engine error"


class ResolveError(WheelhouseError):
    """The resolver could not produce pins (conflict, no such version, ...)."""

    exit_code = 6
    kind = "resolve error"


class IndexUnreachableError(WheelhouseError):
    """A package index or find-links location cannot be reached."""

    exit_code = 7
    kind = "index error"


class StaleLockError(WheelhouseError):
    """`lock --check`: a lock is missing or was made from other inputs."""

    exit_code = 8
    kind = "stale lock"


class HashMismatchError(WheelhouseError):
    """A downloaded file does not have the hash the index or lock promised."""

    exit_code = 9
    kind = "hash mismatch"


class ToolError(WheelhouseError):
    """A helper tool (pip, pip-compile, uv) is missing or failed unexpectedly."""

    exit_code = 10
    kind = "tool error"


class BuildError(WheelhouseError):
    """A source build failed or produced a wheel that fails its checks."""

    exit_code = 11
    kind = "build error"


class ImageCheckError(WheelhouseError):
    """`image-report --strict`: the image holds a wheel file or a compiler."""

    exit_code = 12
    kind = "image check"


class PublishError(WheelhouseError):
    """`wheelhouse index`: a wheel cannot be published (corrupt, or its file name and its
    METADATA disagree), or yanked.toml is malformed. The published index is left as it was."""

    exit_code = 13
    kind = "publish error"


class StoreError(WheelhouseError):
    """The remote store or a publish bucket cannot be reached, or an upload failed part way.
    Nothing half-written is ever visible there; rerun when it is back."""

    exit_code = 14
    kind = "store error"


class StoreAccessError(WheelhouseError):
    """The remote store refused the credentials (missing, wrong, expired) or the request
    (no permission). The message never holds a secret."""

    exit_code = 15
    kind = "store access denied"


class ServeError(WheelhouseError):
    """`wheelhouse serve` cannot start: the address is taken, a needed package or the
    password file is missing, or there is nothing to serve."""

    exit_code = 16
    kind = "serve error"


class OutputBusyError(WheelhouseError):
    """Another run (a build, an index) holds the output folder: `--no-wait` fails at once,
    otherwise this is raised when the wait runs out. Nothing was written."""

    exit_code = 17
    kind = "output busy"
