"""Error kinds. Each has its own exit code; every message ends with what to do next.

Exit codes are part of the CLI contract (CI scripts branch on them), so never renumber.
"""

from __future__ import annotations

import errno
from pathlib import Path


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


class UntrustedRecordError(WheelhouseError):
    """A build record that no trusted key signed (`cache import`), or a cached source build
    whose rebuild gives other bytes (`cache verify --rebuild`): evidence of tampering, or of
    a package that does not build reproducibly. Nothing untrusted is ever used."""

    exit_code = 18
    kind = "untrusted record"


class FilesystemError(WheelhouseError):
    """A file or folder wheelhouse writes cannot be written: the disk is full (or the
    quota spent), the filesystem is read-only, or permission is denied. Names the path;
    nothing half-written is left behind."""

    exit_code = 20
    kind = "filesystem error"


# errno -> what it means for a path wheelhouse writes (the ones a user can cause or meet)
_FS_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the filesystem is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    # a file over this process's size limit (`ulimit -f`) or the file system's largest
    errno.EFBIG: "file too large for the file system, or over this process's limit (ulimit -f)",
}
FS_ERRNOS = frozenset(_FS_REASONS)


def filesystem_error(err: OSError, *, cache_dir: Path | None = None) -> FilesystemError | None:
    """The FilesystemError an OSError means, or None when it is no filesystem's refusal
    (a socket's, say). The path is the one being written: an OSError of two paths (a
    rename, a link, a copy) names its destination second."""
    path = err.filename2 if err.filename2 is not None else err.filename
    reason = _FS_REASONS.get(err.errno or 0)
    if reason is None and path is None:
        return None
    reason = reason or (err.strerror or str(err)).lower()
    where = str(path) if path is not None else "a file or folder"
    in_cache = path is not None and cache_dir is not None and _under(Path(path), cache_dir)
    message = f"{where} (in the cache, {cache_dir}): {reason}" if in_cache else f"{where}: {reason}"
    return FilesystemError(message, hint=_fs_hint(err.errno, in_cache=in_cache))


def system_error(err: OSError) -> WheelhouseError:
    """What the CLI says of an OSError no layer translated (no file system's refusal, no
    path): the system's words, exit 1. Each layer names its file, server or command where
    it can; this is the last word, so that no traceback reaches a user."""
    if err.errno:
        message = f"the operating system reported: {err.strerror or err} (errno {err.errno})"
    else:  # (a library's own, requests' say)
        message = f"{type(err).__name__}: {err}"
    return WheelhouseError(
        message,
        hint="rerun with -v to see the command that failed; if it names no file or server, "
        "report it with that output",
    )


def _under(path: Path, folder: Path) -> bool:
    try:
        path.absolute().relative_to(folder.absolute())
    except ValueError:
        return False
    return True


def _fs_hint(code: int | None, *, in_cache: bool) -> str:
    elsewhere = (
        "point WHEELHOUSE_CACHE_DIR (or cache-dir in wheelhouse.toml) at another folder"
        if in_cache
        else "run in a copy of the project on a disk that has room and is writable"
    )
    if code in (errno.ENOSPC, errno.EDQUOT):
        free = "free space there (`wheelhouse cache prune --max-size 5G` shrinks the cache)"
        return f"{free if in_cache else 'free space on that disk'}, or {elsewhere}"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"make it writable for this user, or {elsewhere}"
    if code == errno.EFBIG:
        return f"raise the limit (`ulimit -f unlimited`), or {elsewhere}"
    return f"check that path, or {elsewhere}"


def not_utf8(label: str, err: UnicodeDecodeError, kind: type[WheelhouseError]) -> WheelhouseError:
    """`kind` (ConfigError for config and recipes, InputError for requirements and locks)
    for a file that is not UTF-8, naming the first byte that is not."""
    return kind(
        f"{label}: not UTF-8 at byte {err.start}",
        hint="save it as UTF-8 (most editors: save with encoding, UTF-8)",
    )


class DamagedLockError(WheelhouseError):
    """A lock's contents do not match its own lock-digest: cut short, or edited by hand.
    Nothing is built from it; `wheelhouse lock` writes it afresh."""

    exit_code = 19
    kind = "damaged lock"


class OutputBusyError(WheelhouseError):
    """Another run (a build, an index) holds the output folder: `--no-wait` fails at once,
    otherwise this is raised when the wait runs out. Nothing was written."""

    exit_code = 17
    kind = "output busy"


class BaseConflictError(ResolveError):
    """The requirements need another version of a package the final image provides
    (`base-packages = "inherit"`), and `replace-base` does not allow replacing it."""

    exit_code = 21
    kind = "base conflict"


class SystemPackageError(WheelhouseError):
    """The final image's package manager could not fetch a runtime system package (an
    unknown name, an unreachable mirror): `wheelhouse dockerfile` fetches them ahead so the
    final stage installs them offline."""

    exit_code = 25
    kind = "system package"
