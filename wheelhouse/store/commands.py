"""`wheelhouse cache`: the local store as CI sees it.

* `key`: one stable string for a CI cache action, a hash of exactly what decides the
  store's content for the chosen targets: the lock's pins and hashes, the target's
  config, Dockerfile.builder, the recipes of the locked projects and the builder image.
* `export` / `import`: the entries a set of targets needs, as one tar.gz. Import checks
  every member's name against a strict pattern (no traversal, no links, nothing but
  regular files), every file against the archive's manifest and every blob against its
  sha256, all before anything enters the cache, so a bad archive changes nothing.
* `prune` (age, size; least recently used first), `verify` (re-hash everything, drop
  what is corrupt), `stats` (entries, size, the hit rate of the last build).

A build records its hit/miss counts (`last-run.json`) and touches the blob folders it
used (their mtime is the "last used" that prune sorts by; the file's own mtime is part
of the store's verification stamp, so it is left alone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelhouse.config import Config, Target
from wheelhouse.errors import HashMismatchError, InputError
from wheelhouse.fsutil import atomic_write
from wheelhouse.store.local import Store, sha256_file

if TYPE_CHECKING:
    from wheelhouse.build.session import TargetBuild
    from wheelhouse.store.s3 import RemoteStats

KEY_FORMAT = "1"  # bump when what the key covers changes
LAST_RUN = "last-run.json"
ARCHIVE_FORMAT = 1
_HEX64 = r"[0-9a-f]{64}"
_MEMBER = re.compile(
    rf"(?P<kind>blobs)/(?P<sha>{_HEX64})/(?P<file>[^/]+)"
    rf"|(?P<rkind>built|pure)/(?P<key>{_HEX64})\.json"
    r"|probes/(?P<pver>[A-Za-z0-9_.-]+)/(?P<probe>[A-Za-z0-9_.-]+\.json)"
)


# -- key --------------------------------------------------------------------------------


def _target_doc(config: Config, target: Target) -> dict[str, Any]:
    doc = dataclasses.asdict(target)
    # find-links folders are made absolute at load: keep the key the same on every checkout
    doc["index"]["find_links"] = [
        config.rel(Path(p)) if p.startswith("/") else p for p in target.index.find_links
    ]
    return doc


def cache_key(config: Config, targets: Sequence[Target]) -> str:
    """`wheelhouse-<targets>-<hash>`: changes exactly when a build could store other
    things (see the module docstring), not when a comment or another target changes."""
    from wheelhouse.build.images import dockerfile_text
    from wheelhouse.lock.lock import read_target_lock
    from wheelhouse.recipes import Recipes

    recipes = Recipes(config.root / "recipes", label="recipes")
    docs = []
    for t in targets:
        lock = read_target_lock(config, t)
        used = {}
        for pin in lock.pins:
            recipe = recipes.get(pin.name)
            if recipe is not None:
                used[pin.name] = recipe.digest()
        docs.append(
            {
                "target": _target_doc(config, t),
                "pins": sorted(f"{p.name}=={p.version} {' '.join(sorted(p.hashes))}"
                               for p in lock.pins),
                "recipes": used,
            }
        )  # fmt: skip
    doc = {
        "format": KEY_FORMAT,
        "dockerfile": hashlib.sha256(dockerfile_text(config).encode()).hexdigest(),
        "targets": docs,
    }
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
    return f"wheelhouse-{'+'.join(t.name for t in targets)}-{digest}"


# -- what a build records ---------------------------------------------------------------


def record_run(
    cache_dir: Path, store: Store, results: Sequence[TargetBuild], remote: RemoteStats | None
) -> None:
    counts = dict.fromkeys(("reused", "downloaded", "cached", "built", "failed"), 0)
    used: set[str] = set()
    for r in results:
        counts["failed"] += len(r.failures)
        if r.output is not None:
            for how in r.output.wheels.values():
                counts[how] = counts.get(how, 0) + 1
            used.update(r.output.sha256.values())
        used.update(i.sha256 for i in r.plan.items if not i.dist.tags)  # sdists
    now = time.time()
    for sha in used:
        folder = store.root / "blobs" / sha[:2] / sha
        with contextlib.suppress(OSError):  # pruned meanwhile
            os.utime(folder, (now, now))
    doc: dict[str, Any] = {"finished": now, **counts}
    if remote is not None:
        doc["remote"] = dataclasses.asdict(remote)
    atomic_write(cache_dir / LAST_RUN, json.dumps(doc, sort_keys=True))


# -- stats ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Stats:
    blobs: int
    built: int
    size: int
    last_run: dict[str, Any] | None

    @property
    def hit_rate(self) -> float | None:
        r = self.last_run
        if not r:
            return None
        hits = r.get("reused", 0) + r.get("cached", 0)
        total = hits + r.get("downloaded", 0) + r.get("built", 0)
        return hits / total if total else None


def _blob_folders(store: Store) -> list[Path]:
    return [p for p in (store.root / "blobs").glob("*/*") if p.is_dir()]


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def stats(cache_dir: Path) -> Stats:
    store = Store(cache_dir)
    try:
        last = json.loads((cache_dir / LAST_RUN).read_text())
    except (OSError, ValueError):
        last = None
    return Stats(
        blobs=len(_blob_folders(store)),
        built=len(list((store.root / "built").glob("*.json"))),
        size=_tree_size(store.root),
        last_run=last if isinstance(last, dict) else None,
    )


# -- verify -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    checked: int
    corrupt: list[str] = field(default_factory=list)  # what was dropped, and why
    records_dropped: list[str] = field(default_factory=list)


def verify(cache_dir: Path) -> VerifyReport:
    """Re-hash every blob (ignoring stamps); drop corrupt ones and the records that
    point at a missing blob. The next build fetches or builds them again."""
    store = Store(cache_dir)
    with store.exclusive():  # builds finish linking first; new ones wait
        return _verify(store)


def _verify(store: Store) -> VerifyReport:
    corrupt = []
    checked = 0
    for folder in _blob_folders(store):
        checked += 1
        files = [p for p in folder.iterdir() if not p.name.startswith(".")]
        bad = None
        if len(files) != 1:
            bad = f"{len(files)} files"
        elif (actual := sha256_file(files[0])) != folder.name:
            bad = f"{files[0].name} has sha256 {actual}"
        if bad:
            corrupt.append(f"{folder.name}: {bad}")
            shutil.rmtree(folder, ignore_errors=True)
        else:
            atomic_write(folder / ".verified", store._stamp_text(files[0]))
    return VerifyReport(
        checked=checked, corrupt=corrupt, records_dropped=_drop_dangling(store, set())
    )


def _drop_dangling(store: Store, removed_keys: set[str]) -> list[str]:
    """Built records whose wheel is gone (or unreadable), pure records whose key is gone."""
    dropped = []
    live: set[str] = set()
    for path in (store.root / "built").glob("*.json"):
        try:
            record = json.loads(path.read_text())
            sha = record["sha256"]
            ok = (store.root / "blobs" / sha[:2] / sha).is_dir() and path.stem not in removed_keys
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if ok:
            live.add(path.stem)
        else:
            path.unlink(missing_ok=True)
            store.log_path(path.stem).unlink(missing_ok=True)
            dropped.append(f"built/{path.name}")
    for path in (store.root / "pure").glob("*.json"):
        try:
            ok = json.loads(path.read_text())["key"] in live
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            path.unlink(missing_ok=True)
            dropped.append(f"pure/{path.name}")
    return dropped


# -- prune ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PruneReport:
    removed: int
    freed: int
    kept: int
    size: int  # of the blobs kept
    records_dropped: int


def prune(cache_dir: Path, *, max_size: int | None, max_age: float | None) -> PruneReport:
    """Drop blobs unused for longer than `max_age`, then the least recently used until
    the blobs fit in `max_size`; then the records that pointed at them."""
    store = Store(cache_dir)
    with store.exclusive():  # builds finish linking first; new ones wait
        return _prune(store, max_size=max_size, max_age=max_age)


def _prune(store: Store, *, max_size: int | None, max_age: float | None) -> PruneReport:
    entries = []
    for folder in _blob_folders(store):
        entries.append((folder.stat().st_mtime, _tree_size(folder), folder))
    entries.sort()  # least recently used first
    total = sum(size for _, size, _ in entries)
    now = time.time()
    removed = freed = 0
    for used, size, folder in entries:
        too_old = max_age is not None and now - used > max_age
        too_big = max_size is not None and total > max_size
        if not (too_old or too_big):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
        removed += 1
        freed += size
    for leftover in store.tmp.iterdir():  # temp files of runs that died over an hour ago
        if now - leftover.stat().st_mtime > 3600:
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    dropped = _drop_dangling(store, set())
    return PruneReport(
        removed=removed,
        freed=freed,
        kept=len(entries) - removed,
        size=total,
        records_dropped=len(dropped),
    )


# -- export / import --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ArchiveReport:
    path: Path
    blobs: int
    records: int
    size: int
    missing: list[str] = field(default_factory=list)  # pins with nothing in the cache


def export(config: Config, targets: Sequence[Target], dest: Path) -> ArchiveReport:
    """What these targets' builds use, from the local store: each pin's files (by the
    lock's hashes), the built records of its sdist and their wheels, and the image
    probes (so the importing side needs no container to plan)."""
    from wheelhouse.lock.lock import read_target_lock

    store = Store(config.cache_dir)
    by_sdist: dict[str, list[Path]] = {}
    for path in (store.root / "built").glob("*.json"):
        try:
            sdist = json.loads(path.read_text())["sdist"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        by_sdist.setdefault(sdist, []).append(path)
    files: dict[str, Path] = {}  # archive name -> local file
    missing = []
    records = 0
    for t in targets:
        for pin in read_target_lock(config, t).pins:
            found = False
            for h in pin.hashes:
                sha = h.removeprefix("sha256:")
                blob = store.get_local(sha)
                if blob is not None:
                    files[f"blobs/{sha}/{blob.filename}"] = blob.path
                    found = True
                for rec in by_sdist.get(sha, []):
                    wheel = store.get_local(json.loads(rec.read_text())["sha256"])
                    if wheel is None:
                        continue
                    files[f"built/{rec.name}"] = rec
                    files[f"blobs/{wheel.sha256}/{wheel.filename}"] = wheel.path
                    records += 1
                    found = True
                pure = store.root / "pure" / f"{sha}.json"
                if pure.is_file():
                    files[f"pure/{pure.name}"] = pure
            if not found:
                missing.append(f"{t.name}: {pin.spec}")
    probes = config.cache_dir / "probes"
    for p in probes.glob("*/*.json") if probes.is_dir() else ():
        files[f"probes/{p.parent.name}/{p.name}"] = p
    manifest = {
        "format": ARCHIVE_FORMAT,
        "targets": [t.name for t in targets],
        "files": {name: sha256_file(path) for name, path in sorted(files.items())},
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tf:
            data = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            import io

            tf.addfile(info, io.BytesIO(data))
            for name, path in sorted(files.items()):
                tf.add(path, arcname=name, recursive=False)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    blobs = sum(1 for n in files if n.startswith("blobs/"))
    return ArchiveReport(
        path=dest, blobs=blobs, records=records, size=dest.stat().st_size, missing=missing
    )


def _refuse(archive: Path, what: str) -> InputError:
    return InputError(
        f"{archive}: {what}",
        hint="nothing was imported; use an archive made by `wheelhouse cache export`",
    )


def import_archive(cache_dir: Path, archive: Path) -> ArchiveReport:
    """All or nothing: every member is checked and staged first, then committed."""
    from wheelhouse.store.s3 import _safe_filename

    store = Store(cache_dir)
    staging = store.tempdir("import-")
    try:
        try:
            tf = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the `with` below
        except (OSError, tarfile.TarError) as e:
            raise _refuse(archive, f"not a readable tar.gz ({e})") from None
        with tf:
            staged: dict[str, tuple[Path, str]] = {}  # name -> (file, sha256)
            manifest: Any = None
            for m in tf:
                name = m.name
                if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                    raise _refuse(archive, f"member {name!r} would escape the cache")
                if m.isdir():
                    continue
                if not m.isfile():  # symlinks, hard links, devices, fifos
                    raise _refuse(archive, f"member {name!r} is not a regular file")
                if name != "manifest.json" and not _MEMBER.fullmatch(name):
                    raise _refuse(archive, f"unexpected member {name!r}")
                member = tf.extractfile(m)
                assert member is not None
                if name == "manifest.json":
                    try:
                        manifest = json.loads(member.read(16 << 20))
                    except ValueError:
                        raise _refuse(archive, "manifest.json is not JSON") from None
                    continue
                out = staging / f"{len(staged)}"
                h = hashlib.sha256()
                with out.open("wb") as f:
                    while block := member.read(1 << 20):
                        h.update(block)
                        f.write(block)
                staged[name] = (out, h.hexdigest())
            if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
                raise _refuse(archive, "no valid manifest.json")
            want: dict[str, Any] = manifest["files"]
            if set(want) != set(staged):
                odd = sorted(set(want) ^ set(staged))[:3]
                raise _refuse(archive, f"members and manifest disagree: {', '.join(odd)}")
            for name, (_path, actual) in staged.items():
                m2 = _MEMBER.fullmatch(name)
                assert m2 is not None
                expected = m2.group("sha") if m2.group("kind") else want[name]
                if actual != expected or actual != want[name]:
                    raise HashMismatchError(
                        f"{archive}: {name} has sha256 {actual}, expected {expected}",
                        hint="the archive is corrupt or was altered; nothing was imported",
                    )
                if m2.group("file") and not _safe_filename(m2.group("file")):
                    raise _refuse(archive, f"member {name!r}: not a wheel or sdist name")
        blobs = records = 0
        for name, (path, actual) in sorted(staged.items()):
            m2 = _MEMBER.fullmatch(name)
            assert m2 is not None
            if m2.group("kind"):
                store.put(path, m2.group("file"), sha256=actual)
                blobs += 1
            elif m2.group("rkind"):
                text = path.read_text()
                atomic_write(store.root / m2.group("rkind") / f"{m2.group('key')}.json", text)
                records += m2.group("rkind") == "built"
            else:
                dest = cache_dir / "probes" / m2.group("pver") / m2.group("probe")
                atomic_write(dest, path.read_bytes())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ArchiveReport(path=archive, blobs=blobs, records=records, size=archive.stat().st_size)
