"""`wheelhouse lock`: pins per target, right for the target, hashed, deterministic."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from wheelhouse.config import Config, Target
from wheelhouse.errors import (
    BaseConflictError,
    DamagedLockError,
    EngineError,
    InputError,
    ResolveError,
    StaleLockError,
)
from wheelhouse.lock import lockfile, resolve
from wheelhouse.lock.base import inherited, replaceable
from wheelhouse.lock.inputs import InputFile, check_inputs
from wheelhouse.lock.interpreter import TargetPython, target_python, unknown_note
from wheelhouse.lock.lockfile import LockFile, Pin, damaged, lock_path
from wheelhouse.lock.resolve import Request, Resolution

if TYPE_CHECKING:
    from wheelhouse.engine import Engine
    from wheelhouse.lock.basestubs import BaseInput
    from wheelhouse.simple import IndexClient


@dataclass(frozen=True, kw_only=True)
class Changes:
    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True, kw_only=True)
class TargetLock:
    target: Target
    path: Path
    lock: LockFile
    changes: Changes
    where: str
    seconds: float
    written: bool
    warnings: tuple[str, ...] = ()  # what the user should know about this lock


@dataclass(frozen=True, kw_only=True)
class LockReport:
    results: list[TargetLock]
    # project -> {target: version}, where targets pinned different versions
    divergent: dict[str, dict[str, str]]
    # project -> targets whose lock does not have it (markers, platform-only deps)
    partial: dict[str, list[str]]


def inputs_digest(
    config: Config, target: Target, files: Sequence[InputFile], base: BaseInput | None = None
) -> str:
    """What a lock is a function of. No host paths: two machines agree on it. With an
    inherited base, its packages too (a new base image makes the lock stale)."""
    idx = target.index

    def loc(value: str) -> str:
        p = Path(value)
        return config.rel(p) if p.is_absolute() else value

    target_doc: dict[str, object] = {
        "python": target.python_version,
        "implementation": target.implementation,
        "libc": [target.libc, target.libc_version],
        "arch": target.arch,
        "cuda": target.cuda,
        "index-url": idx.index_url,
        "extra-index-urls": list(idx.extra_index_urls),
        "find-links": [loc(x) for x in idx.find_links],
        "no-binary": list(target.no_binary),
        "only-binary": list(target.only_binary),
    }
    if target.python_full:  # only then: locks of "3.11" targets keep their digest
        target_doc["python-full"] = target.python_full
    if base is not None:  # likewise: only locks that inherit a base carry it
        target_doc["base-packages"] = [base.base.digest, sorted(base.pinned)]
    doc = {
        "format": lockfile.FORMAT,
        "inputs": sorted([config.rel(f.path), f.sha256] for f in files),
        "target": target_doc,
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _diff(old: LockFile | None, new: LockFile) -> Changes:
    before = {p.name: p.version for p in old.pins} if old else {}
    after = {p.name: p.version for p in new.pins}
    return Changes(
        added=sorted((n, v) for n, v in after.items() if n not in before),
        removed=sorted((n, v) for n, v in before.items() if n not in after),
        changed=sorted(
            (n, before[n], v) for n, v in after.items() if n in before and before[n] != v
        ),
    )


def _seed(existing: LockFile | None, anchor: list[Pin], upgrade: bool) -> str:
    """Preferred pins: this target's last lock, overlaid by the first target's new pins,
    so versions stay aligned across targets wherever the resolver allows."""
    prefs: dict[str, str] = {}
    # not what a final image provides: its versions (local ones, too) are the image's
    # business, pinned by its constraints where it is inherited, never a preference
    if existing and not upgrade:
        prefs.update({p.name: p.version for p in existing.pins if not p.provided})
    prefs.update({p.name: p.version for p in anchor if not p.provided})
    return "".join(f"{n}=={v}\n" for n, v in sorted(prefs.items()))


def _unbound(anchor: list[Pin], own: list[str], client: Callable[[], IndexClient]) -> list[Pin]:
    """The anchor's pins less those a target's own indexes (not the first target's) build
    under a local version label: a CUDA index's `torch 2.5.1+cu124` must not be held back
    to the first target's `torch 2.5.1` (a preference for 2.5.1 means exactly that)."""
    if not own or not anchor:
        return anchor
    from wheelhouse.simple import parse_filename

    for url in own:
        for p in anchor:
            client().prefetch(url, p.name)

    def labelled(p: Pin) -> bool:
        for url in own:
            for link in client().project_links(url, p.name):
                parsed = parse_filename(link.filename)
                if parsed and parsed[1].local:
                    return True
        return False

    return [p for p in anchor if not labelled(p)]


def _checked_base(
    config: Config, target: Target, current: LockFile, engine: Callable[[], Engine] | None
) -> BaseInput | None:
    """The base a lock that inherited one is checked against (probed, cached by image id)."""
    if current.base_image is None or engine is None:
        return None
    return _base_input(config, target, engine)


def _base_input(config: Config, target: Target, engine: Callable[[], Engine]) -> BaseInput | None:
    """The final image's packages as resolver input, or None. Unset base-packages probes
    the image and inherits what it has; an image that cannot be probed here (no engine,
    not pulled, no python) then means no base, as before this setting existed."""
    try:
        base = inherited(target, engine)
    except EngineError:
        if target.base_packages == "inherit":
            raise
        return None
    if base is None:
        return None
    # (8 ms to import, packaging.requirements with it: only for a final image with packages)
    from wheelhouse.lock.basestubs import prepare

    return prepare(config, target, base)


def _with_stubs(target: Target, base: BaseInput | None) -> Target:
    if base is None:
        return target
    links = (*target.index.find_links, str(base.folder))
    return replace(target, index=replace(target.index, find_links=links))


def check(
    config: Config, targets: Sequence[Target], engine: Callable[[], Engine] | None = None
) -> list[str]:
    """`lock --check`: raise DamagedLockError naming every damaged lock, else
    StaleLockError naming every missing or stale one. Returns notes on the locks that
    pass but carry no lock-digest (written before it existed)."""
    files = check_inputs(config.inputs + config.constraints, config.root)
    problems, broken, notes = [], [], []
    for t in targets:
        path = lock_path(config, t)
        current = lockfile.read(path)
        if current is None:
            problems.append(f"{config.rel(path)}: missing")
        elif current.integrity == "damaged":
            broken.append(t)
        elif current.inputs_digest != inputs_digest(
            config, t, files, _checked_base(config, t, current, engine)
        ):
            problems.append(
                f"{config.rel(path)}: stale (the inputs or targets.{t.name} changed since it "
                "was written)"
            )
        elif current.integrity == "unverified":
            notes.append(
                f"{config.rel(path)} has no lock-digest (an older wheelhouse wrote it): "
                f"`wheelhouse lock -t {t.name}` adds one, with the same pins"
            )
    if broken:
        errors = [damaged(config, t) for t in broken]
        names = " ".join(f"-t {t.name}" for t in broken)
        raise DamagedLockError(
            "\n".join(e.message for e in errors) + "".join(f"\n{p}" for p in problems),
            hint=f"regenerate with `wheelhouse lock {names}` and commit the result "
            "(or restore from version control); never edit a lock by hand",
        )
    if problems:
        names = " ".join(f"--target {t.name}" for t in targets)
        raise StaleLockError(
            "locks are not up to date:\n  " + "\n  ".join(problems),
            hint=f"run `wheelhouse lock {names}` and commit the result",
        )
    return notes


def lock(
    config: Config,
    targets: Sequence[Target],
    *,
    engine: Callable[[], Engine],
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    refresh: bool = False,
    progress: Callable[[str], None] = lambda _: None,
    prepare: resolve.Prepare | None = None,
) -> LockReport:
    files = check_inputs(config.inputs + config.constraints, config.root)
    clients: list[IndexClient] = []

    def client() -> IndexClient:
        # Imported and made on first use: with uv, that is while the resolver runs.
        if not clients:
            from wheelhouse.simple import PAGE_TTL, IndexClient

            clients.append(
                IndexClient(
                    ca_bundle=config.ca_bundle,
                    cache_dir=config.cache_dir,
                    ttl=0 if refresh else PAGE_TTL,
                )
            )
        return clients[0]

    try:
        results = list(
            _lock_targets(
                config,
                targets,
                files,
                client,
                engine,
                upgrade,
                upgrade_packages,
                progress,
                prepare,
            )
        )
    except ResolveError:
        # An unreachable index is the most common cause, and the resolver's own message
        # buries it: check the indexes only now, so that success costs nothing.
        urls = sorted({u for t in targets for u in t.index.all_index_urls})
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(client().check_reachable, urls))
        raise
    finally:
        if clients:
            clients[0].close()
    return _report(results)


def _lock_targets(
    config: Config,
    targets: Sequence[Target],
    files: list[InputFile],
    client: Callable[[], IndexClient],
    engine: Callable[[], Engine],
    upgrade: bool,
    upgrade_packages: Sequence[str],
    progress: Callable[[str], None],
    prepare: resolve.Prepare | None = None,
) -> Iterator[TargetLock]:

    upgrade_names = tuple(canonicalize_name(p) for p in upgrade_packages)
    anchor: list[Pin] = []
    for i, target in enumerate(targets):
        start = time.monotonic()
        path = lock_path(config, target)
        warnings = []
        try:
            existing = lockfile.read(path)
        except InputError as e:  # not even UTF-8: damaged beyond reading, written afresh
            existing = None
            warnings.append(f"{e.message}: written afresh")
        if existing and existing.integrity == "damaged":
            # its pins may be what was cut or edited in: not preferred, replaced
            warnings.append(
                f"{config.rel(path)} was a damaged lock (its contents did not match its "
                "lock-digest): written afresh, without preferring its pins"
            )
        own = [u for u in target.index.all_index_urls if u not in targets[0].index.all_index_urls]
        intact = existing if existing and existing.integrity != "damaged" else None
        seed = _seed(intact, _unbound(anchor, own, client), upgrade)
        if upgrade_names:  # the anchor must not hold back a package being upgraded
            seed = "".join(
                line
                for line in seed.splitlines(keepends=True)
                if canonicalize_name(line.split("==")[0]) not in upgrade_names
            )
        progress(f"resolving {target.name} ({target.describe()})")
        python = target_python(target, engine)
        base = _base_input(config, target, engine)
        request = Request(
            config=config,
            target=_with_stubs(target, base),
            python=python,
            seed=seed,
            upgrade=upgrade and i == 0,
            upgrade_packages=upgrade_names,
            constraints=(base.constraints,) if base else (),
            prepare=prepare,
        )
        pending = resolve.start(request, engine)
        for line in seed.splitlines():  # most pins survive a re-lock: fetch their pages now
            name, _, version = line.partition("==")
            if base is None or name not in base.pinned:
                for url in target.index.all_index_urls:
                    client().prefetch(url, name, version)
        try:
            resolved = pending()
        except ResolveError as e:
            if base is None:
                raise
            raise _explained(request, base, engine, e) from None
        resolution, pins = _hashed(request, resolved, client(), engine, progress, target, base)
        if not python.known:
            warnings.append(unknown_note(target, python, resolution.python))
        replaces = _replaced(target, base, pins)
        warnings += [
            f"{r}: replaces the final image's copy (targets.{target.name}.replace-base); "
            "the app's environment imports the lock's version"
            for r in replaces
        ]
        new = LockFile(
            target=target.name,
            target_description=target.describe(),
            inputs_digest=inputs_digest(config, target, files, base),
            pins=tuple(pins),
            base_image=target.final_image if base else None,
            replaces=replaces,
        )
        written = lockfile.write_atomic(path, new.render())
        if i == 0:
            anchor = pins
        yield TargetLock(
            target=target,
            path=path,
            lock=new,
            changes=_diff(existing, new),
            where=resolution.where,
            seconds=time.monotonic() - start,
            written=written,
            warnings=tuple(warnings),
        )


def _replaced(target: Target, base: BaseInput | None, pins: list[Pin]) -> tuple[str, ...]:
    """`name base-version -> lock-version` for each base package replace-base let the lock
    install (said loudly by lock, build and dockerfile)."""
    if base is None:
        return ()
    have = base.base.by_name()
    return tuple(
        f"{p.name} {have[p.name].version} -> {p.version}"
        for p in pins
        if p.name in have and not p.provided and replaceable(target, p.name)
    )


def _explained(
    request: Request, base: BaseInput, engine: Callable[[], Engine], error: ResolveError
) -> ResolveError:
    """A resolution that failed under the base's pins: resolved again without them
    (preferring the base's versions), the base packages that moved are the conflict."""
    from wheelhouse.lock.basestubs import conflicts
    from wheelhouse.lock.basestubs import seed as base_seed

    free = replace(request, constraints=(), seed=base_seed(base), upgrade=False)
    try:
        pins = resolve.start(free, engine)().pins
    except ResolveError:
        return error  # not the base's doing alone: the resolver's own message says more
    found = conflicts(request.config, base, pins)
    if not found:
        return error
    name = request.target.name
    names = ", ".join(f'"{c.name}"' for c in found)
    return BaseConflictError(
        f"target {name!r}: the requirements need other versions of packages its final "
        f"image {request.target.final_image} provides:\n  "
        + "\n  ".join(c.describe() for c in found),
        hint="relax the requirement to what the image has, move to a final image that has "
        f"the version needed, or let the lock install its own copy: targets.{name}."
        f"replace-base = [{names}] (the app's environment then shadows the image's copy)",
    )


def _hashed(
    request: Request,
    resolution: Resolution,
    client: IndexClient,
    engine: Callable[[], Engine],
    progress: Callable[[str], None],
    target: Target,
    base: BaseInput | None,
) -> tuple[Resolution, list[Pin]]:
    """The resolution's pins with their hashes (those the final image provides: marked,
    none). One made on the host for another patch release of the target's Python (the host
    shares its minor) stands only if every pin installs on the target's own release; else
    the builder image resolves it again."""
    from wheelhouse.lock.hashes import not_for_python

    python = request.python
    progress(f"hashing {len(resolution.pins)} pins for {target.name}")
    pins = _hash(resolution.pins, target, client, base)
    if not _host_for_another_release(resolution, python):
        return resolution, pins
    misfits = not_for_python([p for p in pins if not p.provided], target, client, python.version)
    if not misfits:
        return resolution, pins
    progress(
        f"{', '.join(misfits)}: not for Python {python.version}; resolving {target.name} "
        "in its builder image"
    )
    resolution = resolve.in_builder(request, engine())
    return resolution, _hash(resolution.pins, target, client, base)


def _hash(
    pins: list[Pin], target: Target, client: IndexClient, base: BaseInput | None
) -> list[Pin]:
    from wheelhouse.lock.hashes import hash_pins

    provided = {n: d for n, d in (base.pinned if base else {}).items()}
    own = hash_pins(
        sorted((p for p in pins if p.name not in provided), key=lambda p: p.name), target, client
    )
    marked = [
        replace(p, hashes=(), source_build=False, provided=True, version=provided[p.name].version)
        for p in pins
        if p.name in provided
    ]
    return sorted(own + marked, key=lambda p: p.name)


def _host_for_another_release(resolution: Resolution, python: TargetPython) -> bool:
    return resolution.where == "host" and python.known and resolution.python != python.version


def _report(results: list[TargetLock]) -> LockReport:
    versions: dict[str, dict[str, str]] = {}
    for r in results:
        for p in r.lock.pins:
            versions.setdefault(p.name, {})[r.target.name] = p.version
    names = [r.target.name for r in results]
    divergent = {n: v for n, v in sorted(versions.items()) if len(set(v.values())) > 1}
    partial = {
        n: [t for t in names if t not in v]
        for n, v in sorted(versions.items())
        if len(v) < len(names)
    }
    return LockReport(results=results, divergent=divergent, partial=partial)
