"""What an index remembers between runs, and the yanks it publishes.

The layout of an index folder (`simple/`, its state file, log and markers, the `.metadata`
sidecars beside the wheels, `yanked.toml`); what is kept: per project, what was read from
each wheel its page lists, keyed by its stat stamp (in its JSON page, under `_wheelhouse`);
the files every page lists with their inode numbers (`simple/.index-files`, an append log,
read with its cache: see `logcache`); and the run's own small state
(`simple/.index-state.json`); and PEP 592 yanks read from `yanked.toml`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import PublishError
from wheelhouse.index.logcache import MIN_SIZE, read_cache, stale, write_cache

SIMPLE = "simple"
STATE_NAME = ".index-state.json"
DIRTY_NAME = ".index-dirty"  # present while pages are being written
YANKED_NAME = "yanked.toml"
METADATA_SUFFIX = ".metadata"  # <wheel>.metadata: the wheel's METADATA (PEP 658)

LOG_NAME = ".index-files"  # the files the pages list: an append log (see below)
PRIVATE = "_wheelhouse"  # in each project's JSON page: what its records hold and it does not

# Bump when the pages' or the state's format changes: every page is rendered again.
FORMAT = 4

# -- what the state remembers of each file -----------------------------------------------

# A file's record is a list, in this order: lists are what JSON reads fastest. The two
# digests are kept as bytes (32, not 64 hex characters: a big index holds one record per
# file in memory) and written as hex.
SIZE, MTIME, INO, PROJECT, VERSION, SHA256, REQUIRES_PYTHON, META_SHA256, META_SIZE = range(9)
FIELDS = 9
FileRecord = list[Any]
Stamp = tuple[int, int, int]  # size, mtime_ns, inode
FolderStamp = tuple[int, int, int]  # a source folder's inode, mtime_ns and ctime_ns


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
    """The index's own small state file (`simple/.index-state.json`), written last.
    `boot`: the kernel's boot id at the time; `yanks`: the digest of the yanks the pages
    show; `folders`: per source prefix, the folder's stamp when the run saw no entry of it
    change (see `wheelhouse.index.writer`): while a folder still has that stamp, no file
    was added to it, removed or renamed, and the next run need not list it. `log`: a token
    that changes whenever the log does, and `lines` in it; `mirrors` (a combined index):
    per source prefix, the token of the target index's log that this index's log agrees
    with for that folder (see writer.py)."""

    boot: str | None = None
    yanks: str | None = None
    yanked: Mapping[str, str | bool] = field(default_factory=dict)  # Yanks.entries()
    folders: Mapping[str, FolderStamp] = field(default_factory=dict)
    log: str | None = None
    lines: int = 0
    mirrors: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "boot": self.boot,
            "yanks": self.yanks,
            "yanked": self.yanked,
            "folders": self.folders,
            "log": self.log,
            "lines": self.lines,
            "mirrors": self.mirrors,
        }
        return json.dumps(doc, separators=(",", ":")).encode()


def load_state(simple: Path) -> IndexState | None:
    """The state of the index in `simple`; None when there is none, or it is unreadable or
    of another format (then every page is rendered again and every file read)."""
    try:
        doc = json.loads((simple / STATE_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    yanked = doc.get("yanked")
    folders = doc.get("folders")
    log, lines, mirrors = doc.get("log"), doc.get("lines"), doc.get("mirrors")
    return IndexState(
        boot=doc.get("boot"),
        yanks=doc.get("yanks") if isinstance(yanked, dict) else None,
        yanked=yanked if isinstance(yanked, dict) else {},
        folders={
            k: (v[0], v[1], v[2])
            for k, v in (folders.items() if isinstance(folders, dict) else ())
            if isinstance(v, list) and len(v) == 3 and all(type(n) is int for n in v)
        },
        log=log if isinstance(log, str) else None,
        lines=lines if type(lines) is int else 0,
        mirrors={
            k: v
            for k, v in (mirrors.items() if isinstance(mirrors, dict) else ())
            if isinstance(v, str)
        },
    )


def load_project(folder: Path) -> dict[str, FileRecord]:
    """index key -> record of the files a project's page shows, from its JSON page (which
    carries what the page does not: PEP 691 reserves keys that start with `_` for the
    index's own use); empty when missing or unreadable (its files are read again)."""
    try:
        doc = json.loads((folder / "index.json").read_bytes())
        records = {}
        for entry, (mtime, ino, meta_size, version) in zip(doc["files"], doc[PRIVATE], strict=True):
            records[urllib.parse.unquote(entry["url"][6:])] = [
                entry["size"],
                mtime,
                ino,
                doc["name"],
                version,
                bytes.fromhex(entry["hashes"]["sha256"]),
                entry.get("requires-python"),
                bytes.fromhex(entry["core-metadata"]["sha256"]),
                meta_size,
            ]
    except (OSError, ValueError, LookupError, TypeError):
        return {}
    return records


# The log (`simple/.index-files`): one line per change, `key<TAB>project<TAB>inode` for a
# file the pages list from then on (a later line for the same key replaces it: the file was
# replaced), `key<TAB>-<TAB>-` for one they stopped listing (three fields on every line: the
# log is split by stride). A run appends its changes (a few
# lines) instead of rewriting a record of every file; a run that renders every page writes
# it whole, which also drops the lines that no longer count. The inode is what a run
# compares a folder's listing with (a file replaced under the same name has a new one):
# directory entries carry it, so no file is stat'ed for it.


class Log(NamedTuple):
    """What the log says the pages list: per index key, the file's inode and its project."""

    ino: dict[str, int]
    project: dict[str, str]
    lines: int  # lines read (those that no longer count included)


_GONE = "\t-\t-\n"  # the end of a removal's line


def empty_log() -> Log:
    return Log({}, {}, 0)


_CHUNK = 1 << 18  # bytes of the log decoded and split at a time (what a run holds of it)


def load_log(simple: Path) -> Log:
    """The log of the index in `simple` (empty when there is none or it cannot be read). A
    last line cut short by a crash does not count. From its cache and the lines after it
    where it has one (`logcache`); a run that parses an eighth of it or more writes the
    cache again (the caller holds the index's lock)."""
    try:
        data = (simple / LOG_NAME).read_bytes()
    except OSError:
        return empty_log()
    end = data.rfind(b"\n") + 1
    cached = read_cache(simple, data) if end >= MIN_SIZE else None
    start = cached.size if cached else 0
    try:
        try:
            log = _log(data, start, end, Log(cached.ino, cached.project, 0) if cached else None)
        except ValueError:  # a line edited by hand: the others still count
            start, log = 0, _log_slowly(data[:end].decode().split("\n"))
    except UnicodeDecodeError:
        return empty_log()
    lines = data.count(b"\n", start, end) + (cached.lines if cached and start else 0)
    if stale(end, start):
        crc = zlib.crc32(memoryview(data)[:end])
        project = log.project
        write_cache(
            simple,
            log.ino,
            log.ino.values(),
            map(project.__getitem__, log.ino),
            size=end,
            lines=lines,
            crc=crc,
        )
    return log._replace(lines=lines)


def _log(data: bytes, start: int, end: int, log: Log | None) -> Log:
    """Every run reads the log past its cache: a slice at a time, its fields split by
    stride and the dicts filled in C (three fields on every line, none empty, no white
    space in one; a later line of a key replaces an earlier one). Each project's name is
    kept once."""
    log = log or empty_log()
    ino, project, intern = log.ino, log.project, sys.intern
    while start < end:
        stop = end if start + _CHUNK >= end else data.find(b"\n", start + _CHUNK) + 1
        text = data[start:stop].decode()
        fields = text.split()
        if len(fields) != 3 * text.count("\n"):
            raise ValueError(LOG_NAME)
        keys, projects, inos = fields[0::3], map(intern, fields[1::3]), fields[2::3]
        if _GONE in text:  # (line by line: a removal, then maybe the key again)
            for key, name, number in zip(keys, projects, inos, strict=True):
                if number == "-":
                    ino.pop(key, None)
                    project.pop(key, None)
                else:
                    ino[key], project[key] = int(number), name
        else:
            ino.update(zip(keys, map(int, inos), strict=True))
            project.update(zip(keys, projects, strict=True))
        start = stop
    return log


def _log_slowly(lines: list[str]) -> Log:
    log = empty_log()
    for line in lines:
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        key, project, ino = parts
        if project == ino == "-":
            log.ino.pop(key, None)
            log.project.pop(key, None)
        elif ino.isascii() and ino.isdigit():
            log.ino[key], log.project[key] = int(ino), project
    return log


def log_entry(project: str, ino: int) -> str:
    """What the log keeps of a file (see load_log)."""
    return f"{project}\t{ino}"


def log_lines(added: Mapping[str, str], removed: Iterable[str]) -> bytes:
    """Lines for the files the pages list from now on (key -> log_entry) and those gone."""
    return "".join(
        [f"{k}{_GONE}" for k in removed] + [f"{k}\t{e}\n" for k, e in added.items()]
    ).encode()


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

    @property
    def projects(self) -> frozenset[str]:
        """The projects a release yank names."""
        return self._projects

    def lookup(self, filename: str, project: str, version: str) -> tuple[str | bool, str | None]:
        """(reason or True, or False when not yanked; the yanked.toml key that matched)."""
        if filename in self.files:
            return self.files[filename], filename
        if project in self._projects:
            hit = self.releases.get((project, Version(version)))
            if hit is not None:
                return hit[1], hit[0]
        return False, None

    def entries(self) -> dict[str, str | bool]:
        """yanked.toml as written: key -> reason."""
        return {**self.files, **dict(self.releases.values())}

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
