"""What an index remembers between runs, and the yanks it publishes.

The layout of an index folder (`simple/`, its state file and markers, the `.metadata`
sidecars beside the wheels, `yanked.toml`), the state file (`simple/.index-state.json`:
what was read from each wheel, keyed by its stat stamp, and a key of what each page shows),
and PEP 592 yanks read from `yanked.toml`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import PublishError

SIMPLE = "simple"
STATE_NAME = ".index-state.json"
DIRTY_NAME = ".index-dirty"  # present while pages are being written
YANKED_NAME = "yanked.toml"
METADATA_SUFFIX = ".metadata"  # <wheel>.metadata: the wheel's METADATA (PEP 658)

# Bump when the pages' format changes: every page of an older state is rendered again.
FORMAT = 1

# -- what the state remembers of each file -----------------------------------------------

# A file's record is a list, in this order: lists are what JSON reads fastest, and a run
# with nothing new reads every record of the state and touches each one once.
SIZE, MTIME, INO, PROJECT, VERSION, SHA256, REQUIRES_PYTHON, META_SHA256, META_SIZE = range(9)
FIELDS = 9
FileRecord = list[Any]
Stamp = tuple[int, int, int]  # size, mtime_ns, inode


def same_file(rec: Any, stamp: Stamp) -> bool:
    """A state record of this very file: same size, mtime and inode (as the store checks its
    entries: a write through any hard link changes the mtime)."""
    return (
        type(rec) is list
        and len(rec) == FIELDS
        and rec[SIZE] == stamp[0]
        and rec[MTIME] == stamp[1]
        and rec[INO] == stamp[2]
    )


@dataclass(frozen=True, kw_only=True)
class IndexState:
    """The state file. `files`: index key (prefix + file name) -> FileRecord; `pages`:
    project -> the key of what its page shows; `root`: the root page's key; `yanks`: the
    digest of the yanks the pages show; `boot`: the kernel's boot id at the time."""

    boot: str | None = None
    yanks: str | None = None
    root: str | None = None
    pages: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, FileRecord] = field(default_factory=dict)

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "boot": self.boot,
            "yanks": self.yanks,
            "root": self.root,
            "pages": self.pages,
            "files": self.files,
        }
        return json.dumps(doc, separators=(",", ":")).encode()


def load_state(simple: Path) -> IndexState | None:
    """The state of the index in `simple`; None when there is none, or it is unreadable or
    of another format (then every page is rendered again)."""
    try:
        doc = json.loads((simple / STATE_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(doc, dict)
        and doc.get("format") == FORMAT
        and isinstance(doc.get("files"), dict)
        and isinstance(doc.get("pages"), dict)
    )
    if not ok:
        return None
    return IndexState(
        boot=doc.get("boot"),
        yanks=doc.get("yanks"),
        root=doc.get("root"),
        pages=doc["pages"],
        files=doc["files"],
    )


# -- yanks -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Yanks:
    """PEP 592 yanks: a wheel file name, or `project==version`, mapped to a reason (True:
    yanked with no reason given). Read from a `yanked.toml` by `load_yanks`."""

    files: Mapping[str, str | bool] = field(default_factory=dict)
    # (canonical name, version) -> (the key as written, reason)
    releases: Mapping[tuple[str, Version], tuple[str, str | bool]] = field(default_factory=dict)
    _projects: frozenset[str] = field(init=False, repr=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_projects", frozenset(p for p, _ in self.releases))

    def lookup(self, filename: str, project: str, version: str) -> tuple[str | bool, str | None]:
        """(reason or True, or False when not yanked; the yanked.toml key that matched)."""
        if filename in self.files:
            return self.files[filename], filename
        if project in self._projects:
            hit = self.releases.get((project, Version(version)))
            if hit is not None:
                return hit[1], hit[0]
        return False, None

    def keys(self) -> set[str]:
        return set(self.files) | {key for key, _ in self.releases.values()}

    def digest(self) -> str:
        """Changes when any yank does: then every page is checked again."""
        entries = sorted(self.files.items()) + sorted(self.releases.values())
        return hashlib.sha256(repr(entries).encode()).hexdigest()[:32]


NO_YANKS = Yanks()


def load_yanks(path: Path) -> Yanks:
    """Read a yanked.toml (a missing file yanks nothing):

    "foo-1.0-py3-none-any.whl" = "broken on Python 3.12"   # one file
    "Foo==1.1" = "security issue: use 1.2"                  # every file of a release
    "bar==2.0" = true                                       # yanked, no reason given
    """
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NO_YANKS
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PublishError(
            f"{path}: cannot be read as TOML: {exc}",
            hint='write one line per yank: "file.whl" = "reason" or "project==1.0" = "reason"',
        ) from exc
    files: dict[str, str | bool] = {}
    releases: dict[tuple[str, Version], tuple[str, str | bool]] = {}
    for key, value in raw.items():
        if not isinstance(value, str | bool):
            raise PublishError(
                f"{path}: {key!r} = {value!r}: the value must be a reason (a string) or true",
                hint=f'e.g. "{key}" = "broken build: use the next release"',
            )
        if "==" in key:
            project, parsed = _release(path, key)
            releases[(project, parsed)] = (key, value)
        else:
            _check_filename(path, key)
            files[key] = value
    return Yanks(files=files, releases=releases)


def _release(path: Path, key: str) -> tuple[str, Version]:
    name, _, version = key.partition("==")
    try:
        parsed = Version(version.strip())
    except InvalidVersion:
        raise PublishError(
            f"{path}: {key!r}: {version.strip()!r} is not a valid version",
            hint='write the release as "project==version", e.g. "foo==1.0"',
        ) from None
    return canonicalize_name(name.strip()), parsed


def _check_filename(path: Path, key: str) -> None:
    try:
        parse_wheel_filename(key)
    except InvalidWheelFilename as exc:
        raise PublishError(
            f"{path}: {key!r} is neither a wheel file name nor project==version ({exc})",
            hint='write "foo-1.0-py3-none-any.whl" = "reason" or "foo==1.0" = "reason"',
        ) from None
