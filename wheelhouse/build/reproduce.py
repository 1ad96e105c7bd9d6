"""`wheelhouse cache verify --rebuild`: cached source builds built again, bytes compared.

Source builds are reproducible (SOURCE_DATE_EPOCH, a fixed unpack path, pinned build
dependencies, no network), so a cached wheel whose rebuild gives other bytes was either
replaced after it was built (on a machine whose key then signed the lie: a signature
cannot catch that) or comes from a package that does not build reproducibly. Either way
both hashes are reported, and the store's entry is left as it is.

What can be sampled: built records in the local store that a trusted key signed, whose
wheel and sdist are in the store, and that a build here would use (stored under the key
the config gives their target now). Each is rebuilt through the session, the way a
build compiles it (build/session.py `rebuild`, build/compile.py `Compiler.rebuild`).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from packaging.utils import InvalidSdistFilename, parse_sdist_filename

from wheelhouse.build.early import StoreCheck
from wheelhouse.build.session import BuildSession, Event
from wheelhouse.config import Config
from wheelhouse.engine import Engine
from wheelhouse.errors import WheelhouseError
from wheelhouse.lock.lockfile import Pin
from wheelhouse.store import Blob, Built, sha256_file

DEFAULT_SAMPLE = 3  # a few builds: minutes at most, and over runs most entries get checked


@dataclass(frozen=True, kw_only=True)
class Rebuilt:
    """One cached build and its rebuild."""

    record: str  # "built/<key>.json"
    wheel: str  # the cached wheel's file name
    target: str
    cached: str  # the sha256 the record names (and the store's blob has)
    rebuilt: str  # the rebuild's

    @property
    def same(self) -> bool:
        return self.cached == self.rebuilt


@dataclass(frozen=True, kw_only=True)
class RebuildReport:
    candidates: int  # cached builds that could be rebuilt here
    results: list[Rebuilt] = field(default_factory=list)  # the sample's
    skipped: list[str] = field(default_factory=list)  # records that cannot be compared, why
    failed: list[str] = field(default_factory=list)  # rebuilds that failed, why

    @property
    def mismatched(self) -> list[Rebuilt]:
        return [r for r in self.results if not r.same]


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    key: str
    built: Built
    sdist: Blob
    pin: Pin


def rebuild_sample(
    config: Config,
    *,
    engine: Callable[[], Engine],
    count: int | None,
    on_event: Event = lambda kind, msg: None,
) -> RebuildReport:
    """Rebuild `count` cached source builds picked at random (None: all of them) and
    compare each with the wheel the store holds."""
    # the local store only: what a rebuild is compared with is what builds here use
    local = replace(config, store=None)
    check = StoreCheck(local, [])  # no target: nothing pinned to check ahead
    with BuildSession.open(local, check, engine=engine, on_event=on_event) as session:
        candidates, skipped = _candidates(session)
        chosen = candidates
        if count is not None and count < len(candidates):
            # not predictable: whoever altered an entry cannot know which ones get checked
            chosen = sorted(random.SystemRandom().sample(candidates, count), key=lambda c: c.key)
        results, failed = [], []
        for c in chosen:
            record = c.built.record
            on_event("build", f"rebuilding {c.pin.spec} for {record.target}")
            try:
                wheel = session.rebuild(config.target(record.target), c.pin, c.sdist)
            except WheelhouseError as e:
                failed.append(f"built/{c.key}.json ({c.pin.spec}): {e.message.splitlines()[0]}")
                continue
            try:
                rebuilt = sha256_file(wheel)
            finally:
                shutil.rmtree(wheel.parent, ignore_errors=True)
            results.append(
                Rebuilt(
                    record=f"built/{c.key}.json",
                    wheel=c.built.blob.filename,
                    target=record.target,
                    cached=c.built.blob.sha256,
                    rebuilt=rebuilt,
                )
            )
    return RebuildReport(
        candidates=len(candidates), results=results, skipped=skipped, failed=failed
    )


def _candidates(session: BuildSession) -> tuple[list[_Candidate], list[str]]:
    """The cached builds a rebuild can be compared with, and why the others cannot."""
    found, skipped = [], []
    for path in sorted(session.store.record_files("built")):
        got = _candidate(session, path.stem)
        if isinstance(got, _Candidate):
            found.append(got)
        elif got is not None:
            skipped.append(f"built/{path.name}: {got}")
    return found, skipped


def _candidate(session: BuildSession, key: str) -> _Candidate | str | None:
    """The build under `key`, ready to rebuild; or why it cannot be compared; or None
    when no build would use it either (untrusted, or its wheel is gone: `cache verify`
    drops it)."""
    built = session.store.built(key)  # a trusted signature, and its wheel whole
    if built is None:
        return None
    record = built.record
    sdist = session.store.get_local(record.sdist.sha256)
    if sdist is None:
        return f"its sdist {record.sdist.filename} is not in the cache"
    target = session.config.targets.get(record.target)
    if target is None:
        return f"its target {record.target!r} is not in the config"
    try:
        project, version = parse_sdist_filename(sdist.filename)
    except InvalidSdistFilename:
        return f"{sdist.filename!r} is not an sdist's file name"
    try:
        now = session.build_key(target, sdist.sha256, session.recipe(target, project))
    except WheelhouseError as e:
        return f"cannot compute its key here: {e.message.splitlines()[0]}"
    if now != key:
        return (
            "built with another builder image, recipe or target settings than the config "
            "gives now: no build here would use it"
        )
    pin = Pin(name=project, version=str(version), hashes=(f"sha256:{sdist.sha256}",))
    return _Candidate(key=key, built=built, sdist=sdist, pin=pin)
