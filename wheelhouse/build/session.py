"""`wheelhouse build`: lock -> plan -> fetch (parallel) -> build (parallel) -> assemble."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wheelhouse.build.assemble import Output, assemble
from wheelhouse.build.plan import Item, Plan, input_key, make_plan
from wheelhouse.config import Config, Target
from wheelhouse.engine import Engine
from wheelhouse.errors import BuildError, EngineError, WheelhouseError
from wheelhouse.lock import lockfile
from wheelhouse.lock.lock import read_target_lock
from wheelhouse.recipes import Recipes
from wheelhouse.simple import PAGE_TTL, IndexClient
from wheelhouse.store import Blob, BuildRecord, Store

if TYPE_CHECKING:  # imported when first needed: a warm build mostly does not
    from wheelhouse.build.compile import Builders
    from wheelhouse.index.writer import IndexReport
    from wheelhouse.store.layered import RemoteStats

Event = Callable[[str, str], None]  # (kind, message) for the CLI's progress display


@dataclass(frozen=True, kw_only=True)
class Failure:
    pin: str
    error: WheelhouseError


@dataclass(frozen=True, kw_only=True)
class TargetBuild:
    target: Target
    plan: Plan
    output: Output | None
    failures: list[Failure] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    targets: list[TargetBuild]
    indexes: list[IndexReport] = field(default_factory=list)  # per target, then combined
    remote: RemoteStats | None = None  # what the shared store did (when one is configured)
    fetched: int = 0  # files downloaded in this run, each once whatever targets use it


def plan_target(
    config: Config,
    target: Target,
    client: IndexClient,
    store: Store,
    recipes: Recipes,
    engine: Callable[[], Engine],
    builders: dict[str, Builders],
    deferred: frozenset[str] = frozenset(),
) -> Plan:
    """`deferred`: sdists an earlier target of this run builds. Their key waits until
    then, so a pure wheel built there serves this target without touching its builder
    image (which may not even exist here, like an Alpine one)."""
    lock = read_target_lock(config, target)

    guard = threading.Lock()

    def key_for(pin: lockfile.Pin, sdist_sha: str) -> str | None:
        from wheelhouse.build.compile import Builders

        if sdist_sha in deferred:
            return None

        with guard:  # make_plan calls this from many threads: one Builders, one probe
            b = builders.get(target.name)
            if b is None:
                b = builders[target.name] = Builders(engine(), config, target, store)
        recipe = recipes.get(pin.name)
        return input_key(
            sdist_sha256=sdist_sha,
            target=target,
            builder_tag=b.tag_for(recipe),
            recipe_digest=recipe.digest() if recipe else None,
        )

    return make_plan(lock.pins, target, client, store, key_for)


def build(
    config: Config,
    targets: Sequence[Target],
    *,
    engine: Callable[[], Engine],
    jobs: int | None = None,
    keep_going: bool = False,
    dry_run: bool = False,
    index: bool = True,
    on_event: Event = lambda kind, msg: None,
) -> BuildReport:
    """Build every target; then (unless `index` is False) publish their static indexes,
    so the folders, the locks and the indexes always agree."""
    store = Store(config.cache_dir)
    # a `cache prune` waits until this run has linked what it uses into its folders
    with (
        store.in_use(),
        IndexClient(ca_bundle=config.ca_bundle, cache_dir=config.cache_dir, ttl=PAGE_TTL) as client,
    ):
        remote: RemoteStats | None = None
        if config.store is not None:  # the shared store: read-through, write-behind
            from wheelhouse.store.layered import open_layered

            layered = open_layered(config.cache_dir, config.store)
            on_event("store", f"looking in {config.store.url}")
            layered.prefetch(
                h.removeprefix("sha256:")
                for t in targets
                for pin in read_target_lock(config, t).pins
                for h in pin.hashes
            )
            store, remote = layered, layered.stats
        recipes = Recipes(config.root / "recipes", label="recipes")
        builders: dict[str, Builders] = {}
        results: list[TargetBuild] = []
        planned: dict[str, Plan] = {}
        queue, retried = list(targets), set()
        while queue:
            t = queue.pop(0)
            on_event("plan", f"planning {t.name}")
            building = frozenset(
                i.sha256 for p in planned.values() for i in p.items if i.action == "build"
            )
            try:
                planned[t.name] = plan_target(
                    config, t, client, store, recipes, engine, builders, building
                )
            except EngineError:
                # its builder image cannot be had here (an Alpine one, say): plan it after
                # the others, whose pure builds may leave it nothing to build
                if t.name in retried or not queue:
                    raise
                retried.add(t.name)
                queue.append(t)
        plans = list(planned.values())  # built in this order too: deferred ones last
        if dry_run:  # reported in the order asked
            return BuildReport(
                targets=[TargetBuild(target=t, plan=planned[t.name], output=None) for t in targets],
                remote=remote,
            )

        # every file to fetch, once, whichever targets need it (shared downloads)
        wanted: dict[str, Item] = {}
        first: dict[str, str] = {}  # sha256 -> the target a shared download is counted for
        for p in plans:
            for i in p.items:
                if i.action in ("download", "build"):
                    wanted.setdefault(i.sha256, i)
                    first.setdefault(i.sha256, p.target.name)
        if wanted:
            on_event("fetch", f"fetching {len(wanted)} files")
        from wheelhouse.build.fetch import fetch_all

        blobs = fetch_all(
            list(wanted.values()),
            client,
            store,
            on_done=lambda i, b: on_event("fetched", i.dist.link.filename),
        )
        for p in plans:
            results.append(
                _build_target(
                    config,
                    p,
                    store,
                    recipes,
                    builders,
                    engine,
                    blobs,
                    jobs,
                    keep_going,
                    on_event,
                    first,
                )
            )
        order = [t.name for t in targets]
        results.sort(key=lambda r: order.index(r.target.name))  # reported as asked
    from collections import Counter

    from wheelhouse.store.maintain import RunCounts, record_run

    # what `cache stats` shows and `cache prune` keeps: how each wheel got here, the files used
    outputs = [r.output for r in results if r.output is not None]
    hows = Counter(how for o in outputs for how in o.wheels.values())
    counts = RunCounts(
        reused=hows["reused"],
        downloaded=hows["downloaded"],
        cached=hows["cached"],
        built=hows["built"],
        failed=sum(len(r.failures) for r in results),
    )
    used = {sha for o in outputs for sha in o.sha256.values()}
    used.update(i.sha256 for r in results for i in r.plan.items if not i.dist.tags)  # sdists
    record_run(config.cache_dir, store, counts, used, remote)
    failed = [f for r in results for f in r.failures]
    if failed and not keep_going:
        raise failed[0].error
    indexes: list[IndexReport] = []
    assembled = [r.target for r in results if r.output is not None]
    if index and assembled:
        from wheelhouse.index.writer import index_all

        on_event("index", "writing the indexes")
        known = {r.target.name: r.output.sha256 for r in results if r.output is not None}
        indexes = index_all(config, assembled, sha256=known, metadata_cache=store.metadata)
    return BuildReport(targets=results, indexes=indexes, remote=remote, fetched=len(blobs))


def _build_target(
    config: Config,
    plan: Plan,
    store: Store,
    recipes: Recipes,
    builders: dict[str, Builders],
    engine: Callable[[], Engine],
    blobs: dict[str, Blob],
    jobs: int | None,
    keep_going: bool,
    on_event: Event,
    first: dict[str, str],
) -> TargetBuild:
    target = plan.target
    done: dict[str, tuple[Blob, str, BuildRecord | None]] = {}
    for i in plan.items:
        if i.action == "reuse" and i.blob:
            done[i.pin.name] = (i.blob, "reused", None)
        elif i.action == "download":  # fetched once: the other targets reuse it
            how = "downloaded" if first.get(i.sha256) == target.name else "reused"
            done[i.pin.name] = (blobs[i.sha256], how, None)
        elif i.action == "cached" and i.blob:
            hit = store.built(i.input_key) if i.input_key else store.pure(i.sha256)
            done[i.pin.name] = (i.blob, "cached", hit.record if hit else None)
    to_build = [i for i in plan.items if i.action == "build"]
    failures: list[Failure] = []
    if to_build:
        from wheelhouse.build.compile import Builders

        b = builders.get(target.name) or Builders(engine(), config, target, store)
        builders[target.name] = b

        def one(item: Item) -> tuple[Blob, BuildRecord, str]:
            pure = store.pure(item.sha256)  # built for an earlier target: no builder needed
            if pure is not None:
                return pure.blob, pure.record, "cached"
            recipe = recipes.get(item.pin.name)
            key = item.input_key or input_key(
                sdist_sha256=item.sha256,
                target=target,
                builder_tag=b.tag_for(recipe),
                recipe_digest=recipe.digest() if recipe else None,
            )
            with store.lock(key):
                # built meanwhile: by another process, or as a pure wheel for another target
                hit = store.pure(item.sha256) or store.built(key)
                if hit is not None:
                    return hit.blob, hit.record, "cached"
                on_event("build", f"building {item.pin.spec} for {target.name}")
                built = b.build(item.pin, blobs[item.sha256], recipe, key)
                return built.blob, built.record, "built"

        from concurrent.futures import ThreadPoolExecutor, as_completed

        workers = max(1, jobs or os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(one, i): i for i in to_build}
            for fut in as_completed(futures):
                item = futures[fut]
                try:
                    blob, record, how = fut.result()
                except WheelhouseError as err:
                    failures.append(Failure(pin=item.pin.spec, error=err))
                    on_event("failed", err.message.splitlines()[0])
                    if not keep_going:
                        for f in futures:
                            f.cancel()
                    continue
                done[item.pin.name] = (blob, how, record)
                on_event(how, f"{item.pin.spec} -> {blob.filename}")
    if failures and not keep_going:
        return TargetBuild(target=target, plan=plan, output=None, failures=failures)
    output = assemble(config, target, plan, done, complete=not failures)
    return TargetBuild(target=target, plan=plan, output=output, failures=failures)


def summary_error(results: list[TargetBuild]) -> BuildError | None:
    failed = [f for r in results for f in r.failures]
    if not failed:
        return None
    lines = "\n".join(f"  {f.pin}: {f.error.message.splitlines()[0]}" for f in failed)
    return BuildError(
        f"{len(failed)} build(s) failed (the rest were built and assembled):\n{lines}",
        hint="see each failure's log above; fix it and rerun (finished builds are cached)",
    )
