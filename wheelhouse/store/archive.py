"""`wheelhouse cache export` / `import`: store entries as one tar.gz, for CI caches.

Export takes what the caller wants (`Wanted`: sha256s, each set under a label for the
report): those blobs, the built records of those sdists with their wheels, the pure
records, and the image probes (so the importing side needs no container to plan).

Import checks every member's name against a strict pattern (no traversal, no links,
nothing but regular files), every file against the archive's manifest and every blob
against its sha256, and every build record's signature against the trusted keys
(store/signing.py: a self-consistent archive could otherwise map a build key to any
wheel), all before anything enters the cache, so a bad archive changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from wheelhouse.errors import HashMismatchError, InputError, UntrustedRecordError
from wheelhouse.fsutil import atomic_write, writing
from wheelhouse.store.local import Store, sha256_file
from wheelhouse.store.records import safe_filename
from wheelhouse.store.signing import Keyring

ARCHIVE_FORMAT = 1
MANIFEST = "manifest.json"
# the image probes' cache (written by the engine): carried so an import can plan offline
PROBES = "probes"
_HEX64 = r"[0-9a-f]{64}"
_MEMBER = re.compile(
    rf"(?P<kind>blobs)/(?P<sha>{_HEX64})/(?P<file>[^/]+)"
    rf"|(?P<rkind>built|pure)/(?P<key>{_HEX64})\.json"
    rf"|{PROBES}/(?P<pver>[A-Za-z0-9_.-]+)/(?P<probe>[A-Za-z0-9_.-]+\.json)"
)
_MAX_MANIFEST = 16 << 20


@dataclass(frozen=True, kw_only=True)
class Wanted:
    """One thing a build needs (a pin, say), by the sha256s of the files that would do."""

    label: str  # how the report names it when the cache has none of them
    sha256s: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ArchiveReport:
    path: Path
    blobs: int
    records: int
    size: int
    missing: list[str] = field(default_factory=list)  # labels with nothing in the cache
    dropped: list[str] = field(default_factory=list)  # untrusted records left out (import)


# -- export -----------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Selection:
    files: dict[str, Path] = field(default_factory=dict)  # archive name -> local file
    missing: list[str] = field(default_factory=list)
    records: int = 0


def export(
    cache_dir: Path,
    wanted: Sequence[Wanted],
    dest: Path,
    *,
    targets: Sequence[str],
    keyring: Keyring | None = None,
) -> ArchiveReport:
    """What `wanted` names, from the local store, with the image probes; `targets` (the
    names of what it is for) goes into the manifest. Only records a trusted key signed
    go in (no build here uses the others, and an import would refuse them)."""
    store = Store(cache_dir, keyring)
    picked = _select(store, wanted)
    probes = cache_dir / PROBES
    for p in probes.glob("*/*.json") if probes.is_dir() else ():
        picked.files[f"{PROBES}/{p.parent.name}/{p.name}"] = p
    manifest = {
        "format": ARCHIVE_FORMAT,
        "targets": list(targets),
        "files": {name: sha256_file(path) for name, path in sorted(picked.files.items())},
    }
    _write(dest, manifest, picked.files)
    blobs = sum(1 for n in picked.files if n.startswith("blobs/"))
    return ArchiveReport(
        path=dest,
        blobs=blobs,
        records=picked.records,
        size=dest.stat().st_size,
        missing=picked.missing,
    )


def _built_by_sdist(store: Store) -> dict[str, list[Path]]:
    """The built records' files by the sha256 of the sdist each was built from."""
    by_sdist: dict[str, list[Path]] = {}
    for path in store.record_files("built"):
        try:
            sdist = json.loads(path.read_text())["sdist"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        by_sdist.setdefault(sdist, []).append(path)
    return by_sdist


def _select(store: Store, wanted: Sequence[Wanted]) -> _Selection:
    by_sdist = _built_by_sdist(store)
    out = _Selection()
    for want in wanted:
        found = False
        for sha in want.sha256s:
            found = _select_one(store, sha, by_sdist.get(sha, []), out) or found
        if not found:
            out.missing.append(want.label)
    return out


def _select_one(store: Store, sha: str, built: list[Path], out: _Selection) -> bool:
    """The blob with this sha256 and, if it is an sdist, what was built from it."""
    found = False
    blob = store.get_local(sha)
    if blob is not None:
        out.files[f"blobs/{sha}/{blob.filename}"] = blob.path
        found = True
    for rec in built:
        doc = store.read_record("built", rec.stem)
        wheel = store.get_local(str(doc["sha256"])) if doc else None
        if wheel is None:
            continue
        out.files[f"built/{rec.name}"] = rec
        out.files[f"blobs/{wheel.sha256}/{wheel.filename}"] = wheel.path
        out.records += 1
        found = True
    pure = store.record_path("pure", sha)
    if store.read_record("pure", sha) is not None:
        out.files[f"pure/{pure.name}"] = pure
    return found


def _write(dest: Path, manifest: dict[str, object], files: dict[str, Path]) -> None:
    """The manifest first, then the files by name; temp + rename, so never half there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tf:
            data = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tf.addfile(info, io.BytesIO(data))
            for name, path in sorted(files.items()):
                tf.add(path, arcname=name, recursive=False)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


# -- import -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImportLimits:
    """What one import may unpack, checked while it streams: `max_size` bytes of tar
    stream in all (so never more than that staged on disk), and at most `max_ratio` times
    the compressed bytes read so far (a gzip bomb is refused within its first megabytes)."""

    max_size: int = 20 << 30
    max_ratio: int = 100


_RATIO_FLOOR = 1 << 20  # below this much, a tar's own padding can make any ratio
_BLOCK = 1 << 20


def _refuse(archive: Path, what: str) -> InputError:
    return InputError(
        f"{archive}: {what}",
        hint="nothing was imported; use an archive made by `wheelhouse cache export`",
    )


class _Bounded:
    """The archive's tar stream as tarfile reads it (read, seek forward, tell),
    decompressed block by block and refused as soon as it passes the limits: nothing past
    them is read into memory, let alone staged."""

    def __init__(self, archive: Path, raw: BinaryIO, limits: ImportLimits) -> None:
        self.archive = archive
        self._raw = raw  # its position: the compressed bytes read so far
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._limits = limits

    def tell(self) -> int:
        return self._gz.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self._gz.tell():
            raise tarfile.ReadError("the archive is read front to back")
        while self._gz.tell() < offset:  # block by block: each step is checked
            step = min(offset - self._gz.tell(), _BLOCK)
            if len(self.read(step)) < step:
                break
        return self._gz.tell()

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > _MAX_MANIFEST:  # tarfile reads a header whole: a pax bomb
            raise _refuse(self.archive, f"holds a tar header of more than {_MAX_MANIFEST} bytes")
        left = size
        parts = []
        while left > 0:
            block = self._gz.read(min(left, _BLOCK))
            if not block:
                break
            parts.append(block)
            left -= len(block)
            self._check()
        return b"".join(parts)

    def _check(self) -> None:
        unpacked, packed = self._gz.tell(), self._raw.tell()
        if unpacked > self._limits.max_size:
            raise too_big(self.archive, self._limits)
        if unpacked > _RATIO_FLOOR and unpacked > self._limits.max_ratio * max(packed, 1):
            raise InputError(
                f"{self.archive}: unpacks to more than {self._limits.max_ratio} times its "
                "compressed size (a compression bomb?)",
                hint="nothing was imported; if the archive is genuine, raise the limit: "
                "`wheelhouse cache import --max-ratio 1000`",
            )


def too_big(archive: Path, limits: ImportLimits) -> InputError:
    return InputError(
        f"{archive}: unpacks to more than {limits.max_size} bytes",
        hint="nothing was imported; if the archive is genuine, raise the limit: "
        "`wheelhouse cache import --max-size 50G`",
    )


@dataclass(frozen=True, kw_only=True)
class _Staged:
    path: Path
    sha256: str
    member: re.Match[str]


@dataclass(kw_only=True)
class _Progress:
    """Where the stream was, for the message when it turns out truncated or corrupt."""

    where: str = "before its first member"


_CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


def import_archive(
    cache_dir: Path,
    archive: Path,
    *,
    keyring: Keyring | None = None,
    drop_untrusted: bool = False,
    limits: ImportLimits = ImportLimits(),
) -> ArchiveReport:
    """All or nothing: every member is checked and staged first, then committed. A build
    record no trusted key signed fails the whole import, unless `drop_untrusted` says to
    leave such records out (their files are still added: a blob is only ever used under
    its own sha256, by a lock or a trusted record that names it)."""
    store = Store(cache_dir, keyring)
    staging = store.tempdir("import-")
    progress = _Progress()
    try:
        with archive.open("rb") as raw:
            stream = _Bounded(archive, raw, limits)
            try:
                with tarfile.open(fileobj=stream, mode="r:") as tf:  # type: ignore[call-overload]
                    staged, listed = _stage(archive, tf, staging, limits, progress)
            except _CORRUPT as e:
                raise InputError(
                    f"{archive}: truncated or corrupt {progress.where} ({_reason(e)})",
                    hint="nothing was imported; the file was cut short or damaged on its "
                    "way: copy it again, or export it again",
                ) from None
        _check(archive, staged, listed, progress)
        untrusted = _untrusted(store.keyring, staged)
        if untrusted and not drop_untrusted:
            raise _distrust(archive, untrusted)
        for name in untrusted:
            del staged[name]
        blobs, records = _commit(store, cache_dir, staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ArchiveReport(
        path=archive,
        blobs=blobs,
        records=records,
        size=archive.stat().st_size,
        dropped=[f"{n}: {why}" for n, why in sorted(untrusted.items())],
    )


def _untrusted(keyring: Keyring, staged: dict[str, _Staged]) -> dict[str, str]:
    """The record members no trusted key signed as they are: name -> why."""
    out = {}
    for name, s in staged.items():
        kind = s.member.group("rkind")
        if kind is None:
            continue
        try:
            doc = json.loads(s.path.read_bytes())
        except ValueError:
            doc = None
        verdict = keyring.check(kind, s.member.group("key"), doc)
        if not verdict.ok:
            out[name] = verdict.why
    return out


def _distrust(archive: Path, untrusted: dict[str, str]) -> UntrustedRecordError:
    shown = [f"  {name}: {why}" for name, why in sorted(untrusted.items())[:5]]
    more = len(untrusted) - len(shown)
    return UntrustedRecordError(
        f"{archive}: {len(untrusted)} build record(s) not signed by a trusted key:\n"
        + "\n".join(shown)
        + (f"\n  ... and {more} more" if more > 0 else ""),
        hint="nothing was imported. If the archive comes from a builder you trust, add its "
        "public key (`wheelhouse cache pubkey` on that machine) to [trust] trusted-keys; "
        "or import with --drop-untrusted to add its files without those records",
    )


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return "not a gzip file" if "Not a gzipped file" in text else text


def _stage(
    archive: Path,
    tf: tarfile.TarFile,
    staging: Path,
    limits: ImportLimits,
    progress: _Progress,
) -> tuple[dict[str, _Staged], dict[str, object]]:
    """Every member copied into `staging` and hashed; and the manifest's file list."""
    staged: dict[str, _Staged] = {}
    manifest: object = None
    total = 0  # the members' sizes: one that would pass the limit is not read at all
    for m in tf:
        if not _admit(archive, m):
            continue
        progress.where = f"at member {m.name!r}"
        total += m.size
        if total > limits.max_size:
            raise too_big(archive, limits)
        member = tf.extractfile(m)
        assert member is not None
        if m.name == MANIFEST:
            manifest = _manifest(archive, member.read(_MAX_MANIFEST))
        else:
            match = _MEMBER.fullmatch(m.name)
            assert match is not None  # admitted
            out = staging / f"{len(staged)}"
            staged[m.name] = _Staged(path=out, sha256=_copy(member, out), member=match)
        progress.where = f"after member {m.name!r}"
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _refuse(archive, "no valid manifest.json")
    listed: dict[str, object] = manifest["files"]
    return staged, listed


def _manifest(archive: Path, data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        raise _refuse(archive, "manifest.json is not JSON") from None


def _copy(member: IO[bytes], out: Path) -> str:
    """The member into `out`; its sha256."""
    h = hashlib.sha256()
    with writing(out), out.open("wb") as f:
        while block := member.read(_BLOCK):
            h.update(block)
            f.write(block)
    return h.hexdigest()


def _admit(archive: Path, m: tarfile.TarInfo) -> bool:
    """Whether to read this member (not a folder); refuses anything that is not a regular
    file at a name the store would write, or the manifest."""
    name = m.name
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise _refuse(archive, f"member {name!r} would escape the cache")
    if m.isdir():
        return False
    if not m.isfile() or m.issparse():  # links, devices, fifos; sparse: holes unpack
        raise _refuse(archive, f"member {name!r} is not a regular file")
    if name != MANIFEST and not _MEMBER.fullmatch(name):
        raise _refuse(archive, f"unexpected member {name!r}")
    return True


def _check(
    archive: Path, staged: dict[str, _Staged], listed: dict[str, object], progress: _Progress
) -> None:
    """Members and manifest agree, every file has the hash listed (a blob also the one
    its name says), and every blob's name is a wheel's or an sdist's."""
    if set(staged) < set(listed):  # the stream ended early, on a tar block boundary
        first = sorted(set(listed) - set(staged))[0]
        raise _refuse(archive, f"truncated {progress.where}: {first!r} and more are missing")
    if set(listed) != set(staged):
        odd = sorted(set(listed) ^ set(staged))[:3]
        raise _refuse(archive, f"members and manifest disagree: {', '.join(odd)}")
    for name, s in staged.items():
        expected = s.member.group("sha") if s.member.group("kind") else listed[name]
        if s.sha256 != expected or s.sha256 != listed[name]:
            raise HashMismatchError(
                f"{archive}: {name} has sha256 {s.sha256}, expected {expected}",
                hint="the archive is corrupt or was altered; nothing was imported",
            )
        if s.member.group("file") and not safe_filename(s.member.group("file")):
            raise _refuse(archive, f"member {name!r}: not a wheel or sdist name")


def _commit(store: Store, cache_dir: Path, staged: dict[str, _Staged]) -> tuple[int, int]:
    """Checked members into the cache: (blobs, built records)."""
    blobs = records = 0
    for _name, s in sorted(staged.items()):
        m = s.member
        if m.group("kind"):
            store.put(s.path, m.group("file"), sha256=s.sha256)
            blobs += 1
        elif m.group("rkind"):
            built = m.group("rkind") == "built"  # else pure
            dest = store.record_path("built" if built else "pure", m.group("key"))
            atomic_write(dest, s.path.read_text())
            records += built
        else:
            probe = cache_dir / PROBES / m.group("pver") / m.group("probe")
            atomic_write(probe, s.path.read_bytes())
    return blobs, records
