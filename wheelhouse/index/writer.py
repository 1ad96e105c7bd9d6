"""`wheelhouse index`: a static package repository over folders of wheels.

Every folder `<output>/<target>/` gets `simple/`, and `<output>/` gets a combined
`simple/` over every target's wheels. Served as `--index-url file://…/simple/`, by any
static HTTP server or from object storage, it carries:

* PEP 503 HTML (`simple/index.html`, `simple/<project>/index.html`) with `#sha256=` on every
  link, `data-requires-python`, and PEP 629 `pypi:repository-version` 1.1;
* PEP 691 JSON with the same data beside every page (`index.json`, api-version 1.1), for a
  server that negotiates on Accept;
* PEP 658/714 metadata: `<wheel>.metadata` beside each wheel holds the exact bytes of its
  `.dist-info/METADATA`, advertised as `data-dist-info-metadata` / `data-core-metadata` and
  JSON `dist-info-metadata` / `core-metadata`;
* PEP 700 `versions`, `size` and `upload-time` (the wheel file's mtime) in JSON;
* PEP 592 yanks from `yanked.toml` (never by deleting a wheel): `data-yanked` / `yanked`.

Every link is relative (`../../foo-1.0-py3-none-any.whl`, `../../slim/foo-…` in the combined
index), so the tree can be moved, mounted or uploaded anywhere.

Validation: each new wheel is opened with zipfile; a file name that does not parse, a corrupt
or truncated zip, a missing METADATA, or a file name whose project or version disagrees with
METADATA's Name / Version is refused (PublishError) before anything is written.

Incremental: `simple/.index-state.json` maps each indexed file to its stat stamp (size,
mtime_ns, inode) and what was read from it (sha256, project, version, Requires-Python, the
METADATA sha256), and each project page to a key of what it shows. Only files whose stamp
changed are read and hashed; only pages whose key changed are rendered and written.

Atomic without a snapshot swap: pip, uv and every other client read one page per project
and then its files, never the tree as a whole, so what a reader must never see is a page that
links a file that is not there, or half a page. Each file is therefore replaced on its own
(a temp file beside it, renamed over it) in an order that keeps that true at every instant:
metadata sidecars first, then project pages (a new project's folder appears whole, both
pages in it, by one rename), then the root page, and only then are the pages of projects
that are gone removed. A generation-folder-plus-symlink swap gives readers the same guarantee
but must hard-link every unchanged page into each new generation and delete an old generation
every run (thousands of file operations for a one-wheel change), and it needs symlinks, which
object storage and some servers do not have.

Interruptions: the state is written last, and `simple/.index-dirty` is present while pages
are being written, so the run after an interrupted one re-renders every page (the stat
stamps of files the interrupted run did not record cost a re-hash) and checks every sidecar;
temp files of dead runs are removed. A refused wheel leaves every page and the state as they
were. Durability: pages are not fsynced one by one (seconds for a big index); the state
records the kernel's boot id, and the first run after a restart re-renders every page and
checks the sidecars, the only case in which written data can be lost (where there is no boot
id, the written files are fsynced before the state is written).

Entry points: `index_target(folder)` for any folder of wheels, `index_combined(output,
folders)`, and `index_all(config, targets)` for `wheelhouse index` (and the end of a build).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import html
import io
import itertools
import json
import os
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import PublishError
from wheelhouse.fsutil import atomic_write

if TYPE_CHECKING:
    import zipfile

    from wheelhouse.config import Config, Target

SIMPLE = "simple"
STATE_NAME = ".index-state.json"
DIRTY_NAME = ".index-dirty"
LOCK_NAME = ".index.lock"
_TMP = ".tmp"
NEW_PREFIX = ".new-"  # a new project's folder, before it appears whole
YANKED_NAME = "yanked.toml"
METADATA_SUFFIX = ".metadata"
API_VERSION = "1.1"  # PEP 700 fields (versions, size, upload-time) need 1.1
COMBINED = "combined"
_T = TypeVar("_T")

# Bump when the pages' format changes: every page of an older state is rendered again.
_FORMAT = 1
_READ_WHOLE = 32 << 20  # wheels up to this size are read once (hash + zip from memory)
_PARALLEL_BYTES = 64 << 20  # new wheels read in threads from this many bytes on
_FSYNC_EACH = 64  # up to this many written files are fsynced one by one; more: one sync()


# -- public data -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Source:
    """A folder of wheels published by an index.

    `prefix` is the folder's URL path relative to the folder that holds `simple/` ("" for a
    target's own index, "slim/" in the combined one). `owner`: this index removes `.metadata`
    sidecars whose wheel is gone (the combined index leaves that to each target's own)."""

    folder: Path
    prefix: str = ""
    owner: bool = True
    # file name -> sha256 the caller vouches for (a build that just linked the file from
    # its verified store): not hashed again, only its METADATA is read
    sha256: Mapping[str, str] = field(default_factory=dict)
    # <sha256>.metadata files: a wheel's METADATA by its hash, so a vouched wheel is not
    # even opened (a big wheel's zip directory costs milliseconds to parse)
    metadata_cache: Path | None = None


@dataclass(frozen=True, kw_only=True)
class IndexReport:
    name: str  # the target, or "combined"
    path: Path  # the simple/ folder
    projects: int
    files: int
    hashed: int  # files read and hashed in this run (new or changed stat stamp)
    pages_written: int  # project pages plus the root page (each an .html and a .json)
    pages_removed: int
    elapsed: float
    unmatched_yanks: tuple[str, ...] = ()  # yanked.toml keys that match no file here


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
            name, _, version = key.partition("==")
            try:
                parsed = Version(version.strip())
            except InvalidVersion:
                raise PublishError(
                    f"{path}: {key!r}: {version.strip()!r} is not a valid version",
                    hint='write the release as "project==version", e.g. "foo==1.0"',
                ) from None
            releases[(canonicalize_name(name.strip()), parsed)] = (key, value)
            continue
        try:
            parse_wheel_filename(key)
        except InvalidWheelFilename as exc:
            raise PublishError(
                f"{path}: {key!r} is neither a wheel file name nor project==version ({exc})",
                hint='write "foo-1.0-py3-none-any.whl" = "reason" or "foo==1.0" = "reason"',
            ) from None
        files[key] = value
    return Yanks(files=files, releases=releases)


# -- what the state remembers of each file -----------------------------------------------

# state["files"][key] is a list, in this order (lists are what JSON reads fastest):
_SIZE, _MTIME, _INO, _PROJECT, _VERSION, _SHA256, _REQUIRES_PYTHON, _META_SHA256, _META_SIZE = (
    range(9)
)
_FIELDS = 9
_Rec = list[Any]


class _Found:
    """A wheel found in a source folder this run."""

    __slots__ = ("filename", "fresh", "key", "known", "metadata", "rec", "source", "stamp")

    def __init__(
        self, key: str, source: Source, filename: str, stamp: tuple[int, int, int]
    ) -> None:
        self.key = key  # prefix + filename: unique in the index
        self.source = source
        self.filename = filename
        self.stamp = stamp
        self.rec: _Rec | None = None  # from a state when the stamp matches, else read
        self.known = False  # rec is this index's own record of the file, unchanged
        self.fresh = False  # read this run
        self.metadata: bytes | None = None  # read this run: the sidecar to write


class _Refused(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _metadata_member(zf: zipfile.ZipFile, project: str) -> str:
    names = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1]
    if len(names) > 1:  # pick the .dist-info of this project
        names = [
            n
            for n in names
            if canonicalize_name(n.split("/")[0][:-10].rsplit("-", 1)[0]) == project
        ]
    if len(names) != 1:
        raise _Refused(
            "has no single top-level *.dist-info/METADATA "
            f"(found {len(names)}), so it is not a valid wheel",
            "rebuild the wheel, or remove it from the folder",
        )
    return names[0]


_WANTED = {"name": "Name", "version": "Version", "requires-python": "Requires-Python"}


def _headers(metadata: bytes) -> dict[str, str]:
    """Name, Version and Requires-Python from METADATA's header block: RFC 822 syntax, as
    email.parser reads it (`Key: value`, case-insensitive keys, continuation lines start
    with whitespace, a blank line ends the headers), at a third of email.parser's cost."""
    end = metadata.find(b"\n\n")
    out: dict[str, str] = {}
    last: str | None = None
    for line in (metadata if end < 0 else metadata[:end]).decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if last is not None:
                out[last] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        last = _WANTED.get(key.strip().lower()) if sep else None
        if last is not None and last in out:
            last = None  # the first one counts
        elif last is not None:
            out[last] = value.strip()
    return out


def _read_small(path: str, size: int) -> bytes:
    """The whole file in one read() where it still has the size stat() saw: no buffering,
    no isatty() and seek() calls that open() adds (thousands of small wheels add up)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data
        parts = [data]  # it grew since: read the rest
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def _read_wheel(found: _Found) -> None:
    """Hash the file, read its METADATA, check it against the file name: fills found.rec
    and found.metadata, or raises _Refused."""
    import zipfile
    import zlib

    path = found.source.folder / found.filename
    try:
        project, version, _, _ = parse_wheel_filename(found.filename)
    except InvalidWheelFilename as exc:
        raise _Refused(
            f"is not a valid wheel file name ({exc})",
            "rename it to name-version-python-abi-platform.whl, or remove it from the folder",
        ) from None
    vouched = found.source.sha256.get(found.filename)
    cache = found.source.metadata_cache
    cached = cache / f"{vouched}{METADATA_SUFFIX}" if vouched and cache else None
    metadata: bytes | None = None
    if cached is not None:
        with contextlib.suppress(OSError):
            metadata, digest = cached.read_bytes(), str(vouched)
        if metadata is not None and not {"Name", "Version"} <= _headers(metadata).keys():
            metadata = None  # cut short by a crash: read the wheel again
    try:
        archive: Any
        if metadata is not None:
            pass
        elif vouched is not None:
            digest, archive = vouched, path  # zipfile reads the central directory only
        elif found.stamp[0] <= _READ_WHOLE:
            data = _read_small(str(path), found.stamp[0])
            digest = hashlib.sha256(data).hexdigest()
            archive = io.BytesIO(data)
        else:
            with path.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            archive = path
        if metadata is None:
            with zipfile.ZipFile(archive) as zf:
                metadata = zf.read(_metadata_member(zf, project))
            if cached is not None:
                _write_small(cached, metadata, durable=False)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError) as exc:
        raise _Refused(
            f"is not a readable zip file ({exc}): truncated or corrupt",
            "delete it and run `wheelhouse build` again to fetch or rebuild it",
        ) from None
    except OSError as exc:
        raise _Refused(f"cannot be read: {exc}", "check the file and its permissions") from None
    headers = _headers(metadata)
    meta_name, meta_version = headers.get("Name"), headers.get("Version")
    if not meta_name or not meta_version:
        raise _Refused(
            "has a METADATA without Name or Version",
            "rebuild the wheel with a PEP 517 build backend, or remove it from the folder",
        )
    try:
        same_version = Version(meta_version) == version
    except InvalidVersion:
        same_version = False
    if canonicalize_name(meta_name) != project or not same_version:
        raise _Refused(
            f"its file name says {project} {version} but its METADATA says "
            f"Name: {meta_name}, Version: {meta_version}",
            "a renamed or mislabelled wheel would install something else than its name "
            "promises: rebuild it, or rename it to match its METADATA "
            f"({canonicalize_name(meta_name).replace('-', '_')}-{meta_version}-…), or remove it",
        )
    found.metadata = metadata
    found.fresh = True
    found.rec = [
        *found.stamp,
        project,
        str(version),
        digest,
        headers.get("Requires-Python"),
        hashlib.sha256(metadata).hexdigest(),
        len(metadata),
    ]


# -- writing -----------------------------------------------------------------------------


class _Writer:
    """Whole-file replacement: write a temp file beside the destination, then rename it
    over the destination (same folder: no cross-folder rename, which the kernel serializes
    filesystem-wide), so a reader sees the old file or the new one, never half of one.
    Safe from threads. See `publish` for how the files are made durable."""

    def __init__(self) -> None:
        self._names = itertools.count()
        self._pid = os.getpid()
        self.written: list[str] = []
        mask = os.umask(0o022)
        os.umask(mask)
        # pages are read by other users (a server, a container's unprivileged user)
        self._chmod = mask & 0o644 != 0

    def write(self, dest: str, data: bytes, *, track: bool = True) -> None:
        folder, _, name = dest.rpartition("/")
        tmp = f"{folder}/.{name}.{self._pid}.{next(self._names)}{_TMP}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._chmod:
                    os.fchmod(fd, 0o644)
            finally:
                os.close(fd)
            os.replace(tmp, dest)  # noqa: PTH105 (str paths: thousands of files per run)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            raise
        if track:
            self.written.append(dest)

    def fsync(self) -> None:
        """fsync what was written: one by one for a few files, else one sync()."""
        if len(self.written) > _FSYNC_EACH:
            os.sync()
        else:
            for path in self.written:
                with contextlib.suppress(FileNotFoundError):
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        self.written.clear()


def _stale_temp(name: str) -> bool:
    """A `.<name>.<pid>.<n>.tmp` of a process that is gone (an interrupted run)."""
    parts = name.rsplit(".", 3)
    if len(parts) != 4 or parts[3] != _TMP[1:] or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False  # alive (another user's), or not a pid at all
    return False


def _boot_id() -> str | None:
    """Changes when the machine restarts (Linux); None elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _parallel(fn: Callable[[_T], None], items: Sequence[_T], *, threads: bool = True) -> None:
    """Run fn over items in a few threads: file creation, reads, zlib and hashing release
    the GIL, so a page's rendering overlaps another's write. Exceptions propagate."""
    if len(items) < 8 or not threads:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    def chunk(part: Sequence[_T]) -> None:  # a few tasks, not one future per file
        for item in part:
            fn(item)

    workers = min(8, 2 * (os.cpu_count() or 1))
    size = -(-len(items) // (workers * 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(chunk, [items[i : i + size] for i in range(0, len(items), size)]):
            pass


@contextlib.contextmanager
def _locked(simple: Path) -> Iterator[None]:
    """One run per index at a time (a second waits, then finds the work done)."""
    simple.mkdir(parents=True, exist_ok=True)
    with (simple / LOCK_NAME).open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# -- rendering ---------------------------------------------------------------------------

_esc = html.escape
_HEAD = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
    f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
)


_version = functools.lru_cache(maxsize=8192)(Version)


def _upload_time(mtime_ns: int) -> str:
    seconds, rest = divmod(mtime_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def _url(key: str) -> str:
    # `+` (local versions) as %2B too: object storage reads a bare `+` in a path as a space
    return "../../" + urllib.parse.quote(key)


def _render_project(
    project: str, files: Sequence[tuple[str, _Rec, str | bool]]
) -> tuple[bytes, bytes]:
    """(index.html, index.json) of one project: files are (key, record, yank)."""
    ordered = sorted(files, key=lambda f: (_version(f[1][_VERSION]), f[0]))
    name = _esc(project)
    links = []
    entries = []
    versions: dict[str, None] = {}
    for key, rec, yank in ordered:
        filename = key.rpartition("/")[2]
        url = _url(key)
        sha, meta_sha, requires_python = rec[_SHA256], rec[_META_SHA256], rec[_REQUIRES_PYTHON]
        attrs = f' href="{_esc(f"{url}#sha256={sha}")}"'
        if requires_python:
            attrs += f' data-requires-python="{_esc(requires_python)}"'
        meta = _esc(f"sha256={meta_sha}")
        attrs += f' data-dist-info-metadata="{meta}" data-core-metadata="{meta}"'
        if yank is not False:
            attrs += f' data-yanked="{_esc(yank if isinstance(yank, str) else "")}"'
        links.append(f"<a{attrs}>{_esc(filename)}</a><br>\n")
        entry: dict[str, Any] = {
            "filename": filename,
            "url": url,
            "hashes": {"sha256": sha},
        }
        if requires_python:
            entry["requires-python"] = requires_python
        entry["core-metadata"] = {"sha256": meta_sha}
        entry["dist-info-metadata"] = {"sha256": meta_sha}
        entry["yanked"] = yank if yank != "" else True
        entry["size"] = rec[_SIZE]
        entry["upload-time"] = _upload_time(rec[_MTIME])
        entries.append(entry)
        versions[rec[_VERSION]] = None
    page = (
        f"{_HEAD}<title>Links for {name}</title>\n</head>\n<body>\n"
        f"<h1>Links for {name}</h1>\n{''.join(links)}</body>\n</html>\n"
    )
    doc = {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": list(versions),
        "files": entries,
    }
    return page.encode(), json.dumps(doc).encode()


def _render_root(projects: Iterable[str]) -> tuple[bytes, bytes]:
    names = list(projects)
    links = "".join(f'<a href="{_esc(p)}/">{_esc(p)}</a><br>\n' for p in names)
    page = f"{_HEAD}<title>Simple index</title>\n</head>\n<body>\n{links}</body>\n</html>\n"
    doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in names]}
    return page.encode(), json.dumps(doc).encode()


def _page_key(files: Sequence[tuple[str, _Rec, str | bool]]) -> str:
    return hashlib.sha256(repr(sorted(files, key=lambda f: f[0])).encode()).hexdigest()[:32]


# -- the state ---------------------------------------------------------------------------


def _load_state(simple: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((simple / STATE_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(state, dict)
        and state.get("format") == _FORMAT
        and isinstance(state.get("files"), dict)
        and isinstance(state.get("pages"), dict)
    )
    return state if ok else None


# -- the core ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Listing:
    """What one run learned of a source folder: every wheel's stamp and record, and the
    sidecars present. Handed from a target's index to the combined one in the same run,
    so that one does not list, stat and look up the folder again."""

    wheels: Mapping[str, tuple[tuple[int, int, int], _Rec]]
    sidecars: frozenset[str]


def _scan(
    sources: Sequence[Source],
    old_files: Mapping[str, Any],
    listings: Mapping[Path, _Listing],
) -> tuple[list[_Found], dict[str, set[str]]]:
    """Every wheel of every source, with its state record when its stat stamp matches
    (this index's state, else the source's own index); and per source, the names of the
    sidecars present. Only stat() here: this is all a run with nothing new does."""
    found: list[_Found] = []
    sidecars: dict[str, set[str]] = {}
    for src in sources:
        listing = listings.get(src.folder)
        if listing is not None:
            sidecars[src.prefix] = set(listing.sidecars)
            for name, (stamp, rec) in listing.wheels.items():
                item = _Found(src.prefix + name, src, name, stamp)
                own = old_files.get(item.key)
                if _same(own, stamp):
                    item.rec, item.known = own, True
                else:
                    item.rec = rec
                found.append(item)
            continue
        present: set[str] = set()
        sidecars[src.prefix] = present
        try:
            entries = list(os.scandir(src.folder))
        except FileNotFoundError:
            raise PublishError(
                f"{src.folder} does not exist",
                hint="run `wheelhouse build` first, or name a folder that holds wheels",
            ) from None
        unknown = []
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                if name.endswith(_TMP) and _stale_temp(name):  # a sidecar being written
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)  # noqa: PTH108
                continue
            if name.endswith(".whl"):
                if not entry.is_file():
                    continue
                st = entry.stat()
                item = _Found(src.prefix + name, src, name, (st.st_size, st.st_mtime_ns, st.st_ino))
                known = old_files.get(item.key)
                if _same(known, item.stamp):
                    item.rec, item.known = known, True
                else:
                    unknown.append(item)
                found.append(item)
            elif name.endswith(".whl" + METADATA_SUFFIX):
                present.add(name)
        if unknown and src.prefix:  # the folder's own index may know them (combined index)
            hint = _load_state(src.folder / SIMPLE) or {}
            hint_files = hint.get("files", {})
            for item in unknown:
                known = hint_files.get(item.filename)
                if _same(known, item.stamp):
                    item.rec = known
    return found, sidecars


def _same(rec: Any, stamp: tuple[int, int, int]) -> bool:
    """A state record of this very file: same size, mtime and inode (as the store checks its
    entries: a write through any hard link changes the mtime)."""
    return (
        type(rec) is list
        and len(rec) == _FIELDS
        and rec[_SIZE] == stamp[0]
        and rec[_MTIME] == stamp[1]
        and rec[_INO] == stamp[2]
    )


def _read_new(todo: Sequence[_Found], writer: _Writer) -> None:
    """Read and check every new or changed wheel and write its .metadata sidecar; raise one
    PublishError naming every refused file. A sidecar belongs to its wheel's bytes, not to
    any page, so writing it before the pages (and even if another wheel is refused) keeps
    every published page true."""
    refused: list[tuple[_Found, _Refused]] = []

    def one(item: _Found) -> None:
        try:
            _read_wheel(item)
        except _Refused as exc:
            refused.append((item, exc))
            return
        assert item.metadata is not None
        writer.write(f"{item.source.folder}/{item.filename}{METADATA_SUFFIX}", item.metadata)
        item.metadata = None

    # Small wheels are mostly zipfile's Python (the GIL): threads only add contention.
    # Big ones are mostly hashing, which runs outside the GIL.
    to_hash = sum(f.stamp[0] for f in todo if f.filename not in f.source.sha256)
    _parallel(one, todo, threads=to_hash >= _PARALLEL_BYTES)
    if not refused:
        return
    refused.sort(key=lambda r: r[0].key)
    lines = [f"{r[0].source.folder / r[0].filename}: {r[1].message}" for r in refused]
    message = (
        lines[0] if len(lines) == 1 else f"{len(lines)} wheels refused:\n  " + "\n  ".join(lines)
    )
    raise PublishError(
        message,
        hint=f"{refused[0][1].hint}; nothing was published: the index is as it was",
    )


def _check_duplicates(found: Sequence[_Found]) -> list[_Found]:
    """In a combined index the same file name may come from several targets: the same bytes
    are linked once (from the first), different bytes are an error."""
    by_name: dict[str, _Found] = {}
    keep = []
    for item in found:
        first = by_name.get(item.filename)
        if first is None:
            by_name[item.filename] = item
            keep.append(item)
            continue
        assert first.rec is not None and item.rec is not None
        if first.rec[_SHA256] != item.rec[_SHA256]:
            raise PublishError(
                f"{first.filename} differs between {first.source.folder} (sha256 "
                f"{first.rec[_SHA256]}) and {item.source.folder} (sha256 {item.rec[_SHA256]})",
                hint="one file name must mean one file: rebuild the targets from the same "
                "cache so they share the wheel, or remove one of them",
            )
    return keep


def publish(
    root: Path,
    sources: Sequence[Source],
    *,
    yanks: Yanks = NO_YANKS,
    name: str = "",
    listings: dict[Path, _Listing] | None = None,
) -> IndexReport:
    """Write or update `root/simple/` over the wheels of `sources` (see the module doc).
    Raises PublishError, with every published page untouched, if a wheel is refused.

    `listings`: shared by the calls of one run (index_all): what a call learns of its own
    source folders is added to it, and a later call uses it instead of listing them again."""
    listings = {} if listings is None else listings
    start = time.perf_counter()
    simple = root / SIMPLE
    for src in sources:
        if not src.folder.is_dir():
            raise PublishError(
                f"{src.folder} does not exist or is not a folder",
                hint="run `wheelhouse build` first, or name a folder that holds wheels",
            )
    if simple.is_symlink() or (simple.exists() and not simple.is_dir()):
        raise PublishError(
            f"{simple} exists and is not a folder",
            hint="remove it: wheelhouse writes its index there",
        )
    with _locked(simple):
        state = _load_state(simple) or {}
        boot = _boot_id()
        # render every page when there is no state, when pages were being written as a run
        # stopped, or when the machine restarted since the last run (see below)
        dirty = not state or (simple / DIRTY_NAME).exists() or state.get("boot") != boot
        old_files: Mapping[str, Any] = state.get("files", {})
        old_pages: Mapping[str, Any] = state.get("pages", {})
        found, sidecars = _scan(sources, old_files, listings)

        writer = _Writer()
        todo = [f for f in found if f.rec is None]
        _read_new(todo, writer)
        found = _check_duplicates(found)
        # a sidecar that went missing (or, after an interruption, may be short): again
        # (sidecars an earlier call of this run wrote or checked need no second look)
        lost = [
            f
            for f in found
            if not f.fresh
            and _sidecar_lost(f, sidecars, dirty=dirty and f.source.folder not in listings)
        ]
        _read_new(lost, writer)

        # every file is known and valid: pages, then the root, then what is gone
        by_project: dict[str, list[tuple[str, _Rec, str | bool]]] = {}
        matched: set[str] = set()
        files: dict[str, _Rec] = {}
        touched: set[str] = set()  # projects whose files are not as the state has them
        for item in found:
            rec = item.rec
            assert rec is not None
            files[item.key] = rec
            yank, hit = yanks.lookup(item.filename, rec[_PROJECT], rec[_VERSION])
            if hit is not None:
                matched.add(hit)
            by_project.setdefault(rec[_PROJECT], []).append((item.key, rec, yank))
            if not item.known:
                touched.add(rec[_PROJECT])
        for key in old_files.keys() - files.keys():
            with contextlib.suppress(LookupError, TypeError):
                touched.add(old_files[key][_PROJECT])
        yanks_key = yanks.digest()
        rekey = dirty or state.get("yanks") != yanks_key
        pages = {
            project: _page_key(by_project[project])
            if rekey or project in touched or project not in old_pages
            else old_pages[project]
            for project in sorted(by_project)
        }
        existing = set()
        for entry in os.scandir(simple):
            if entry.name[0] != ".":
                if entry.is_dir():
                    existing.add(entry.name)
            elif entry.name.startswith(NEW_PREFIX) or entry.name.endswith(_TMP):
                _remove(entry.path)  # left by an interrupted run (this one holds the lock)
        if dirty:  # temp files an interrupted run left in project folders
            for project in existing:
                with os.scandir(f"{simple}/{project}") as entries:
                    for entry in entries:
                        if entry.name.endswith(_TMP):
                            _remove(entry.path)

        def current(project: str) -> bool:
            return not dirty and old_pages.get(project) == pages[project] and project in existing

        def write_page(project: str) -> None:
            page, doc = _render_project(project, by_project[project])
            folder = f"{simple}/{project}"
            if project in existing:
                writer.write(f"{folder}/index.html", page)
                writer.write(f"{folder}/index.json", doc)
                return
            # a new project's folder appears whole, with both pages in it
            staging = f"{simple}/{NEW_PREFIX}{project}"
            os.mkdir(staging)  # noqa: PTH102
            writer.write(f"{staging}/index.html", page, track=False)
            writer.write(f"{staging}/index.json", doc, track=False)
            os.rename(staging, folder)  # noqa: PTH104
            writer.written.extend((f"{folder}/index.html", f"{folder}/index.json", folder))

        stale = [p for p in pages if not current(p)]
        root_key = _page_key([(p, [], False) for p in pages])
        root_stale = (
            dirty
            or state.get("root") != root_key
            or not (simple / "index.html").exists()
            or not (simple / "index.json").exists()
        )
        gone = sorted(existing - pages.keys())
        if stale or root_stale or gone:
            # an interruption from here on leaves pages the state does not describe
            _write_small(simple / DIRTY_NAME, b"", durable=boot is None)
        _parallel(write_page, stale)
        if root_stale:  # after the pages it links
            page, doc = _render_root(pages)
            writer.write(f"{simple}/index.html", page)
            writer.write(f"{simple}/index.json", doc)
        for project in gone:  # after the root stopped linking them
            shutil.rmtree(simple / project, ignore_errors=True)
        if writer.written or gone or touched or pages != old_pages or rekey:
            # Durability: an fsync per page costs seconds for a big index, and sync()
            # flushes the whole machine. Where the kernel has a boot id the state records it
            # instead: the first run after a restart (the only way to lose written data)
            # re-renders every page and checks every sidecar, and a state cut short is
            # invalid JSON, which means a full run. Elsewhere: fsync, then the state.
            if boot is None:
                writer.fsync()
            doc_state = {
                "format": _FORMAT,
                "boot": boot,
                "yanks": yanks_key,
                "root": root_key,
                "pages": pages,
                "files": files,
            }
            data = json.dumps(doc_state, separators=(",", ":")).encode()
            _write_small(simple / STATE_NAME, data, durable=boot is None)
            (simple / DIRTY_NAME).unlink(missing_ok=True)
        for src in sources:
            if src.owner:
                mine = [f for f in found if f.source is src]
                _remove_stale_sidecars(src, {f.filename for f in mine}, sidecars[src.prefix])
                listings[src.folder] = _Listing(
                    wheels={f.filename: (f.stamp, f.rec) for f in mine if f.rec is not None},
                    sidecars=frozenset(f.filename + METADATA_SUFFIX for f in mine),
                )
        return IndexReport(
            name=name,
            path=simple,
            projects=len(pages),
            files=len(files),
            hashed=len(todo),
            pages_written=len(stale) + int(root_stale),
            pages_removed=len(gone),
            elapsed=time.perf_counter() - start,
            unmatched_yanks=tuple(sorted(yanks.keys() - matched)),
        )


def _write_small(path: Path, data: bytes, *, durable: bool) -> None:
    """The state and the marker: replaced atomically; fsynced only where no boot id tells
    the next run that the machine restarted (then it re-renders every page anyway, and a
    state that is lost or cut short only costs a full run)."""
    if durable:
        atomic_write(path, data)
    else:
        _Writer().write(str(path), data)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):  # noqa: PTH112, PTH114
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)  # noqa: PTH108


def _sidecar_lost(item: _Found, sidecars: Mapping[str, set[str]], *, dirty: bool) -> bool:
    """Whether a known wheel's sidecar is missing (or, after an interrupted run, which
    may have been cut short by a crash, has the wrong size)."""
    name = item.filename + METADATA_SUFFIX
    if name not in sidecars[item.source.prefix]:
        return True
    if not dirty:
        return False
    assert item.rec is not None
    try:
        return bool((item.source.folder / name).stat().st_size != item.rec[_META_SIZE])
    except OSError:
        return True


def _remove_stale_sidecars(src: Source, wheels: set[str], present: set[str]) -> None:
    for sidecar in present:
        if sidecar[: -len(METADATA_SUFFIX)] not in wheels:
            (src.folder / sidecar).unlink(missing_ok=True)


# -- entry points ------------------------------------------------------------------------


def index_target(folder: Path, *, yanks: Yanks = NO_YANKS, name: str | None = None) -> IndexReport:
    """`folder/simple/` over the wheels in `folder` (any folder of wheels will do)."""
    return publish(folder, [Source(folder=folder)], yanks=yanks, name=name or folder.name)


def index_combined(
    output: Path,
    folders: Sequence[Path],
    *,
    yanks: Yanks = NO_YANKS,
    listings: dict[Path, _Listing] | None = None,
) -> IndexReport:
    """`output/simple/` over the wheels of every folder (each inside `output`), linked as
    `../../<folder>/<file>`. The same file name in two folders must be the same bytes."""
    sources = [
        Source(folder=f, prefix=f.relative_to(output).as_posix() + "/", owner=False)
        for f in folders
    ]
    return publish(output, sources, yanks=yanks, name=COMBINED, listings=listings)


def index_all(
    config: Config,
    targets: Sequence[Target],
    *,
    sha256: Mapping[str, Mapping[str, str]] | None = None,
    metadata_cache: Path | None = None,
) -> list[IndexReport]:
    """Index each target's output folder, then the combined index over every configured
    target that has an output folder. Yanks come from `<output>/yanked.toml`. `sha256`:
    per target, the hashes of files the caller vouches for (see Source.sha256)."""
    if SIMPLE in config.targets:
        raise PublishError(
            f"a target named {SIMPLE!r} would have its wheels where the combined index goes "
            f"({config.rel(config.output / SIMPLE)})",
            hint="rename the target in the config",
        )
    yanks = load_yanks(config.output / YANKED_NAME)
    reports = []
    listings: dict[Path, _Listing] = {}
    for target in targets:
        folder = config.output / target.name
        if not folder.is_dir():
            raise PublishError(
                f"{config.rel(folder)} does not exist: target {target.name!r} has no wheels yet",
                hint=f"run `wheelhouse build --target {target.name}` first",
            )
        reports.append(
            publish(
                folder,
                [
                    Source(
                        folder=folder,
                        sha256=(sha256 or {}).get(target.name, {}),
                        metadata_cache=metadata_cache,
                    )
                ],
                yanks=yanks,
                name=target.name,
                listings=listings,
            )
        )
    folders = [config.output / n for n in config.targets if (config.output / n).is_dir()]
    if folders:
        reports.append(index_combined(config.output, folders, yanks=yanks, listings=listings))
    return reports
