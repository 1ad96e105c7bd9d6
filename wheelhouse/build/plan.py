"""The build plan: for every pin of a target's lock, what wheelhouse will do.

    reuse     a binary wheel that fits the target, already in the store
    download  a binary wheel that fits the target, to fetch
    cached    an sdist built before with the same inputs (or a pure wheel from any target)
    build     an sdist to compile in the target's builder container

A pin the final image provides (`base-packages = "inherit"`) is none of these: it has no
hash and no file, and goes to `Plan.base`, recorded in the manifest for the final stage.

Which file a pin means comes from the lock's hashes: a file is a candidate only if its
sha256 is one the lock allows, so the plan can never pick something the lock did not pin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag

from wheelhouse.config import Target
from wheelhouse.errors import HashMismatchError, ResolveError
from wheelhouse.lock.lockfile import Pin
from wheelhouse.simple import Distribution, FileLink, IndexClient, parse_filename
from wheelhouse.store import Blob, Built, Store
from wheelhouse.tags import tag_ranks

Action = Literal["reuse", "download", "cached", "build"]


@dataclass(frozen=True, kw_only=True)
class Item:
    pin: Pin
    action: Action
    dist: Distribution  # the wheel to use, or the sdist to build
    blob: Blob | None = None  # the store entry when reused/cached
    built: Built | None = None  # when cached: the wheel built before and its record
    input_key: str | None = None  # for sdists: what the built wheel is a function of

    @property
    def sha256(self) -> str:
        assert self.dist.link.sha256
        return self.dist.link.sha256


@dataclass(frozen=True, kw_only=True)
class Plan:
    target: Target
    items: tuple[Item, ...]
    base: tuple[Pin, ...] = ()  # provided by the final image: never fetched, built or placed
    replaces: tuple[str, ...] = ()  # base packages the lock installs its own version of

    def count(self, action: Action) -> int:
        return sum(1 for i in self.items if i.action == action)


def wheel_rank(dist: Distribution, ranks: Mapping[Tag, int]) -> int:
    """Lower is better: the position of the wheel's best tag in the target's preference."""
    return min((ranks[t] for t in dist.tags if t in ranks), default=len(ranks))


def best_wheels(dists: Iterable[Distribution], target: Target) -> list[Distribution]:
    """The wheels among `dists` that fit the target, best first."""
    ranks = tag_ranks(target)
    fit = [d for d in dists if d.tags and any(t in ranks for t in d.tags)]
    return sorted(fit, key=lambda d: wheel_rank(d, ranks))


def from_store(pin: Pin, target: Target, store: Store) -> Distribution | None:
    """The file to use, when the store already has one the lock allows: no index needed,
    so a warm build is fast and works offline (a CI runner with a restored cache)."""
    policy = target.binary_policy(pin.name)
    found: list[Distribution] = []
    for h in pin.hashes:
        # what the store holds is enough to plan; each wheel is checked before it is
        # linked (session.assemble), and was read once at the start (Store.check_ahead)
        blob = store.get(h.removeprefix("sha256:"), verify=False)
        parsed = parse_filename(blob.filename) if blob else None
        if blob is None or parsed is None:
            continue
        name, version, file_tags = parsed
        link = FileLink(filename=blob.filename, url=blob.path.as_uri(), sha256=blob.sha256)
        found.append(Distribution(link=link, name=name, version=version, tags=file_tags))
    wheels = best_wheels(found, target)
    if wheels and policy != "no-binary":
        return wheels[0]
    sdists = [d for d in found if not d.tags]
    # the sdist only where the lock meant a source build: else the wheel may exist upstream
    if sdists and (pin.source_build or policy == "no-binary"):
        return sdists[0]
    return None


def choose(pin: Pin, target: Target, client: IndexClient) -> Distribution:
    """The file of `pin` to use for `target`: the best-fitting wheel, else the sdist."""
    allowed = {h.removeprefix("sha256:") for h in pin.hashes}
    dists = client.release_files(target.index, pin.name, pin.version)
    # a file the index gives no hash for is hashed here (it was at lock time, too)
    candidates: list[Distribution] = []
    rejected: list[Distribution] = []
    for d in dists:
        digest = d.link.sha256 or client.sha256_of(d.link)
        (candidates if digest in allowed else rejected).append(_with_sha(d, digest))
    ranks = tag_ranks(target)

    def changed_under_the_lock() -> HashMismatchError | None:
        """Files that fit but whose bytes the lock did not pin: the release changed (or
        something between us and the index serves other bytes). Fail closed, loudly."""
        fits = [d for d in rejected if not d.tags or any(t in ranks for t in d.tags)]
        if not fits:
            return None
        seen = ", ".join(f"{d.link.filename} has sha256 {d.link.sha256}" for d in fits)
        return HashMismatchError(
            f"{pin.name} {pin.version}: {seen}, but the lock expects "
            + " or ".join(sorted(h.removeprefix("sha256:") for h in pin.hashes)),
            hint="the index serves other bytes than were locked; nothing was stored. If the "
            "release really changed, re-lock; otherwise treat it as tampering",
        )

    wheels = best_wheels(candidates, target)
    sdists = [d for d in candidates if not d.tags]
    policy = target.binary_policy(pin.name)
    if policy != "no-binary" and wheels:
        return wheels[0]
    if not pin.source_build and policy != "no-binary":
        # the lock pinned a wheel for this target; quietly building the sdist instead
        # would hide that the wheel's bytes changed
        err = changed_under_the_lock()
        if err:
            raise err
    if policy == "only-binary":
        raise ResolveError(
            f"{pin.spec}: the lock has no wheel for target {target.name!r} and only-binary "
            "forbids a source build",
            hint=f"run `wheelhouse lock --target {target.name}` again",
        )
    if sdists:
        return sdists[0]
    err = changed_under_the_lock()
    if err:
        raise err
    raise ResolveError(
        f"{pin.spec}: none of the files the lock allows is on the configured indexes"
        + (" (no-binary asks for the sdist)" if policy == "no-binary" else ""),
        hint=f"the index changed or the lock is stale: `wheelhouse lock --target {target.name}`",
    )


def _with_sha(d: Distribution, digest: str) -> Distribution:
    from dataclasses import replace

    return replace(d, link=replace(d.link, sha256=digest))


Lookup = Callable[[Pin, str], tuple[Built | None, str | None]]


def make_plan(
    pins: Sequence[Pin],
    target: Target,
    client: IndexClient,
    store: Store,
    lookup: Lookup,
) -> Plan:
    """`lookup(pin, sdist_sha256)` gives what the store has built from an sdist and the
    sdist's build key; the key is None when it cannot be known yet (an earlier target of
    the same run builds the sdist first), which plans the sdist as a build."""

    def one(pin: Pin, dist: Distribution | None = None) -> Item:
        dist = dist or from_store(pin, target, store) or choose(pin, target, client)
        sha = dist.link.sha256
        assert sha
        if dist.tags:
            blob = store.get(sha, verify=False)
            return Item(pin=pin, action="reuse" if blob else "download", dist=dist, blob=blob)
        built, key = lookup(pin, sha)
        if built is not None:
            return Item(
                pin=pin, action="cached", dist=dist, blob=built.blob, built=built, input_key=key
            )
        return Item(pin=pin, action="build", dist=dist, input_key=key)

    base = tuple(p for p in pins if p.provided)
    pins = [p for p in pins if not p.provided]
    # Files already in the store are planned here, serially (a stat each); only the rest
    # go to threads, where they wait on the index.
    local = {pin.name: from_store(pin, target, store) for pin in pins}
    misses = [pin for pin in pins if local[pin.name] is None]
    done: dict[str, Item] = {}
    if misses:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=16) as pool:
            done = {i.pin.name: i for i in pool.map(one, misses)}
    items = tuple(done.get(pin.name) or one(pin, local[pin.name]) for pin in pins)
    return Plan(target=target, items=items, base=base)
