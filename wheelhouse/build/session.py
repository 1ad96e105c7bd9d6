"""`wheelhouse build`, top to bottom: plan -> fetch -> compile -> assemble -> record -> index
-> removals.

One `BuildSession` per run holds what every stage shares: the config, the store (local,
or layered over the shared S3 store), the index client, the recipes, the engine and each
target's compiler (builder images, build dependencies). It owns the two decisions the
stages must agree on, each in one place: an sdist's build key (`build_key`) and what the
store already built from an sdist (`cached`: its pure wheel, else the wheel built by key).

The output folders are locked from assembly to the end, and indexed before the wheels
no longer wanted are removed: `outputs.py`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.build import learn
from wheelhouse.build.assemble import Output, Placed, Source, assemble
from wheelhouse.build.buildkey import input_key
from wheelhouse.build.early import StoreCheck
from wheelhouse.build.fetch import fetch_all, fetch_one
from wheelhouse.build.images import BuilderImages
from wheelhouse.build.plan import Item, Lookup, Plan, make_plan
from wheelhouse.config import Config, Target
from wheelhouse.engine import Engine
from wheelhouse.errors import BuildError, EngineError, WheelhouseError
from wheelhouse.fsutil import WAIT, Wait
from wheelhouse.lock.lockfile import Pin, read_target_lock
from wheelhouse.recipes import Recipe, Recipes
from wheelhouse.simple import PAGE_TTL, IndexClient
from wheelhouse.store import Blob, Built, Store
from wheelhouse.store.runs import RunCounts, record_run

if TYPE_CHECKING:  # imported when first needed: a warm build mostly does not
    from concurrent.futures import ThreadPoolExecutor

    from wheelhouse.build.compile import Compiler
    from wheelhouse.build.recipefiles import LearnedRecipe
    from wheelhouse.index import IndexReport
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

    @property
    def counts(self) -> RunCounts:
        """How each wheel got here (the summary table; summed for `cache stats`)."""
        sources = list(self.output.wheels.values()) if self.output else []
        return RunCounts(
            reused=sources.count("reused"),
            downloaded=sources.count("downloaded"),
            cached=sources.count("cached"),
            built=sources.count("built"),
            failed=len(self.failures),
        )


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    targets: list[TargetBuild]
    indexes: list[IndexReport] = field(default_factory=list)  # per target, then combined
    remote: RemoteStats | None = None  # what the shared store did (when one is configured)
    fetched: int = 0  # files downloaded in this run, each once whatever targets use it
    learned: tuple[LearnedRecipe, ...] = ()  # system packages this run's builds discovered
    saved: tuple[Path, ...] = ()  # recipes written by --save-recipes


@dataclass(frozen=True, kw_only=True)
class Made:
    """A target's wheels at hand after its source builds, before its folder is touched."""

    plan: Plan
    placed: dict[str, Placed]
    failures: list[Failure]


def build(
    config: Config,
    targets: Sequence[Target],
    *,
    engine: Callable[[], Engine],
    jobs: int | None = None,
    keep_going: bool = False,
    dry_run: bool = False,
    index: bool = True,
    wait: Wait = WAIT,
    on_event: Event = lambda kind, msg: None,
    save_recipes: bool = False,
    check: StoreCheck | None = None,
) -> BuildReport:
    """Build every target; then (unless `index` is False) write their static indexes,
    so the folders, the locks and the indexes always agree. `wait`: how long to wait for
    another run that holds an output folder (OutputBusyError after that). `check`: the
    store's check of the pinned files, when the caller started it before this module
    loaded (wheelhouse.build.build)."""
    check = check or StoreCheck(config, targets)
    with ExitStack() as held:  # the output folders' locks, from assembly to the end
        with BuildSession.open(config, check, engine=engine, on_event=on_event) as session:
            from wheelhouse.build import outputs

            plans = session.plan(targets)
            if dry_run:  # reported in the order asked
                return BuildReport(
                    targets=[
                        TargetBuild(target=t, plan=plans[t.name], output=None) for t in targets
                    ],
                    remote=session.remote,
                )
            blobs = session.fetch(plans.values())
            made = [
                session.make(p, blobs, jobs=jobs, keep_going=keep_going) for p in plans.values()
            ]
            held.enter_context(outputs.hold(config, targets, wait))
            results = [session.assemble(m, keep_going=keep_going) for m in made]
        results.sort(key=lambda r: [t.name for t in targets].index(r.target.name))  # as asked
        session.record(results)
        learned = tuple(x for c in session._compilers.values() for x in c.learned_now)
        saved: tuple[Path, ...] = ()
        if save_recipes:
            from wheelhouse.build.recipefiles import save

            saved = tuple(save(config.root / "recipes", learned))
        failed = [f for r in results for f in r.failures]
        if failed and not keep_going:
            raise failed[0].error  # the folders keep their old wheels: their pages list them
        indexes = outputs.finish(
            config,
            [(r.target, r.output) for r in results if r.output is not None],
            index=index,
            wait=wait,
            metadata_cache=session.store.metadata,
            on_event=on_event,
        )
    return BuildReport(targets=results, indexes=indexes, remote=session.remote,
                       fetched=len(blobs), learned=learned, saved=saved)  # fmt: skip


class BuildSession:
    """What one `wheelhouse build` shares across its stages and targets."""

    def __init__(
        self, config: Config, store: Store, client: IndexClient, engine: Callable[[], Engine],
        *, on_event: Event, remote: RemoteStats | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.store = store
        self.client = client
        self.engine = engine
        self.on_event = on_event
        self.remote = remote  # what the shared store did, when there is one
        self.recipes = Recipes(config.root / "recipes", label="recipes")
        self.recipes.load_all()  # every file checked now, not when (if) a build needs it
        self._compilers: dict[str, Compiler] = {}
        self._images: dict[str, BuilderImages] = {}  # a build key needs only these
        self._learned: dict[str, learn.Learned] = {}
        self._base_pins: dict[str, tuple[str, ...]] = {}  # target -> the base pins it builds with
        self._guard = threading.Lock()
        self._first: dict[str, str] = {}  # sha256 -> the target a shared download counts for

    @classmethod
    @contextmanager
    def open(
        cls,
        config: Config,
        check: StoreCheck,
        *,
        engine: Callable[[], Engine],
        on_event: Event,
    ) -> Iterator[BuildSession]:
        """The session, with the store held shared (a `cache prune` waits until this run
        has linked what it uses into its folders) and the index client open. The pinned
        files' bytes are checked first (`check`, early.py)."""
        store: Store = check.store()
        keyring, pinned = check.keyring, check.pinned
        ttl = PAGE_TTL
        with (
            store.in_use(),
            IndexClient(ca_bundle=config.ca_bundle, cache_dir=config.cache_dir, ttl=ttl) as client,
        ):
            remote: RemoteStats | None = None
            if config.store is not None:  # the shared store: read-through, write-behind
                from wheelhouse.store.layered import open_layered

                layered = open_layered(config.cache_dir, config.store, keyring)
                on_event("store", f"looking in {config.store.url}")
                layered.prefetch(pinned)
                store, remote = layered, layered.stats
            yield cls(config, store, client, engine, on_event=on_event, remote=remote)

    # -- the two decisions every stage shares ---------------------------------------------

    def images(self, target: Target) -> BuilderImages:
        """The target's builder images, made once (planning asks from many threads)."""
        with self._guard:
            i = self._images.get(target.name)
            if i is None:
                i = self._images[target.name] = BuilderImages(
                    self.engine(), self.config, target, self.store
                )
            return i

    def compiler(self, target: Target) -> Compiler:
        """The target's compiler, made once when something is built (a warm build: never)."""
        from wheelhouse.build.compile import Compiler

        images = self.images(target)
        with self._guard:
            c = self._compilers.get(target.name)
            if c is None:
                c = self._compilers[target.name] = Compiler(
                    images.engine, self.config, target, self.store, images, self.on_event
                )
                c.deps.constraints = self._base_pins.get(target.name, ())
            return c

    def recipe(self, target: Target, project: str) -> Recipe | None:
        """The recipe in effect: the user's or the shipped one, plus learned packages."""
        with self._guard:  # what discovery learned: no compiler needed (a warm build)
            known = self._learned.setdefault(target.name, learn.Learned(self.store.root, target))
        return known.recipe(project, self.recipes.get(project))

    def build_key(self, target: Target, sdist_sha256: str, recipe: Recipe | None) -> str:
        """The store key of the wheel built from this sdist for this target."""
        return input_key(
            sdist_sha256=sdist_sha256,
            target=target,
            builder_tag=self.images(target).tag_for(recipe),
            recipe_digest=recipe.digest() if recipe else None,
            base_pins=self._base_pins.get(target.name, ()),
        )

    def cached(self, sdist_sha256: str, key: str | None) -> Built | None:
        """What the store built from this sdist: its pure wheel (built for any target
        serves them all), else the wheel built under this key."""
        pure = self.store.pure(sdist_sha256)
        if pure is not None or key is None:
            return pure
        return self.store.built(key)

    def from_source(
        self, target: Target, pin: Pin, sdist: Blob, key: str | None
    ) -> tuple[Built, Source]:
        """The wheel of `sdist` for `target`: from the store ("cached"), else compiled
        ("built"); one process per key: a second run waits, then finds the first's."""
        hit = self.cached(sdist.sha256, None)  # a pure wheel: no builder (or key) needed
        if hit is not None:
            return hit, "cached"
        recipe = self.recipe(target, pin.name)
        key = key or self.build_key(target, sdist.sha256, recipe)
        with self.store.lock(key):
            hit = self.cached(sdist.sha256, key)  # built meanwhile, here or elsewhere
            if hit is not None:
                return hit, "cached"
            self.on_event("build", f"building {pin.spec} for {target.name}")

            def dependency(dep: Pin, dep_sdist: Blob) -> Blob:  # a build requirement's wheel
                return self.from_source(target, dep, dep_sdist, None)[0].blob

            rekey = partial(self.build_key, target, sdist.sha256)  # once packages are learned
            compiler = self.compiler(target)
            return compiler.compile(pin, sdist, recipe, key, dependency, rekey), "built"

    def rebuild(self, target: Target, pin: Pin, sdist: Blob) -> Path:
        """The wheel of `sdist` built again for `target` the way `from_source` builds it,
        into a temp folder (the caller removes it) and never into the store: `cache verify
        --rebuild` compares it with what the store holds."""
        recipe = self.recipe(target, pin.name)
        key = self.build_key(target, sdist.sha256, recipe)

        def dependency(dep: Pin, dep_sdist: Blob) -> Blob:
            return self.from_source(target, dep, dep_sdist, None)[0].blob

        log = self.store.log_path(f"{key}.rebuild")  # beside the entry's, not over it
        return self.compiler(target).rebuild(pin, sdist, recipe, log, dependency)

    # -- plan ---------------------------------------------------------------------------

    def plan(self, targets: Sequence[Target]) -> dict[str, Plan]:
        """Each target's plan, in the order they will be built: a target whose builder
        image cannot be had here (an Alpine one, say) is planned after the others, whose
        pure builds may leave it nothing to build."""
        planned: dict[str, Plan] = {}
        queue, retried = list(targets), set()
        while queue:
            t = queue.pop(0)
            self.on_event("plan", f"planning {t.name}")
            building = frozenset(
                i.sha256 for p in planned.values() for i in p.items if i.action == "build"
            )
            try:
                planned[t.name] = self._plan(t, building)
            except EngineError:
                if t.name in retried or not queue:
                    raise
                retried.add(t.name)
                queue.append(t)
        return planned

    def _plan(self, target: Target, deferred: frozenset[str]) -> Plan:
        """`deferred`: sdists an earlier target of this run builds. Their key waits until
        then, so a pure wheel built there serves this target without touching its builder
        image (which may not even exist here)."""
        lock = read_target_lock(self.config, target)
        # the base's versions that exist on an index: build requirements are held to them
        self._base_pins[target.name] = tuple(p.spec for p in lock.provided if "+" not in p.version)
        plan = make_plan(lock.pins, target, self.client, self.store, self._lookup(target, deferred))
        if lock.replaces:  # build's output says it: the image's copy is shadowed
            plan = replace(plan, replaces=lock.replaces)
        self._tell_dropped()
        return plan

    def _lookup(self, target: Target, deferred: frozenset[str] = frozenset()) -> Lookup:
        def lookup(pin: Pin, sdist_sha: str) -> tuple[Built | None, str | None]:
            pure = self.cached(sdist_sha, None)
            if pure is not None or sdist_sha in deferred:
                return pure, None
            key = self.build_key(target, sdist_sha, self.recipe(target, pin.name))
            return self.cached(sdist_sha, key), key

        return lookup

    # -- fetch --------------------------------------------------------------------------

    def fetch(self, plans: Iterable[Plan]) -> dict[str, Blob]:
        """Every file to fetch, once, whichever targets need it (shared downloads)."""
        wanted: dict[str, Item] = {}
        for p in plans:
            for i in p.items:
                if i.action in ("download", "build"):
                    wanted.setdefault(i.sha256, i)
                    self._first.setdefault(i.sha256, p.target.name)
        if wanted:
            self.on_event("fetch", f"fetching {len(wanted)} files")
        return fetch_all(
            list(wanted.values()),
            self.client,
            self.store,
            on_done=lambda i, b: self.on_event("fetched", i.dist.link.filename),
        )

    # -- compile + assemble -------------------------------------------------------------

    def make(
        self, plan: Plan, blobs: dict[str, Blob], *, jobs: int | None, keep_going: bool
    ) -> Made:
        """One target: what the plan has at hand, then its source builds."""
        placed: dict[str, Placed] = {
            i.pin.name: p for i in plan.items if (p := self._at_hand(plan, i, blobs))
        }
        to_build = [i for i in plan.items if i.action == "build"]
        failures = self._compile(plan.target, to_build, blobs, placed, jobs, keep_going)
        return Made(plan=plan, placed=placed, failures=failures)

    def assemble(self, made: Made, *, keep_going: bool) -> TargetBuild:
        """The target's folder: each wheel checked once more, then placed (assemble.py)."""
        plan = made.plan
        if made.failures and not keep_going:
            return TargetBuild(target=plan.target, plan=plan, output=None, failures=made.failures)
        self.on_event("assemble", f"placing the wheels of {plan.target.name}")
        self._tell_dropped()
        placed = {name: self._checked(plan.target, p) for name, p in made.placed.items()}
        output = assemble(self.config, plan, placed, complete=not made.failures, store=self.store)
        return TargetBuild(target=plan.target, plan=plan, output=output, failures=made.failures)

    def _checked(self, target: Target, p: Placed) -> Placed:
        """`p` as it will be linked: its blob checked against its hash (the store's stamp,
        read again: hashed if anything touched the file since it was planned). One found
        corrupt is dropped and fetched or built again, never linked."""
        blob = self.store.get(p.blob.sha256)
        if blob is not None:
            return p if blob == p.blob else replace(p, blob=blob)
        self._tell_dropped()
        pin = p.item.pin
        item = make_plan((pin,), target, self.client, self.store, self._lookup(target)).items[0]
        if item.action in ("reuse", "cached") and item.blob:  # another run restored it
            return Placed(item=item, blob=item.blob, source=p.source, record=p.record)
        fetched = fetch_one(item, self.client, self.store)
        if item.action == "download":
            return Placed(item=item, blob=fetched, source="downloaded")
        built, source = self.from_source(target, pin, fetched, item.input_key)
        return Placed(item=item, blob=built.blob, source=source, record=built.record)

    def _tell_dropped(self) -> None:
        """Say which store files were found corrupt (and dropped) since last asked."""
        while self.store.dropped:
            name = self.store.dropped.pop(0)
            self.on_event(
                "corrupt",
                f"{name}: the cache's copy no longer has the bytes of its sha256: dropped, "
                "fetched or built again",
            )

    def _at_hand(self, plan: Plan, item: Item, blobs: dict[str, Blob]) -> Placed | None:
        if item.action == "reuse" and item.blob:
            return Placed(item=item, blob=item.blob, source="reused")
        if item.action == "download":  # fetched once: the other targets reuse it
            first = self._first.get(item.sha256) == plan.target.name
            return Placed(
                item=item, blob=blobs[item.sha256], source="downloaded" if first else "reused"
            )
        if item.action == "cached" and item.built:
            return Placed(
                item=item, blob=item.built.blob, source="cached", record=item.built.record
            )
        return None

    def _compile(
        self,
        target: Target,
        items: list[Item],
        blobs: dict[str, Blob],
        placed: dict[str, Placed],
        jobs: int | None,
        keep_going: bool,
    ) -> list[Failure]:
        """The source builds, in parallel; each result goes into `placed`."""
        failures: list[Failure] = []
        if not items:
            return failures

        def one(item: Item) -> Placed:
            sdist = blobs[item.sha256]
            built, source = self.from_source(target, item.pin, sdist, item.input_key)
            return Placed(item=item, blob=built.blob, source=source, record=built.record)

        from concurrent.futures import ThreadPoolExecutor, as_completed  # something to build

        workers = max(1, jobs or os.cpu_count() or 1)
        # on Ctrl-C / SIGTERM no queued build starts; the running ones end as their
        # commands are killed, and leaving this block waits while they remove their
        # containers (bounded: `docker rm` has the engine's timeout)
        with ThreadPoolExecutor(max_workers=workers) as pool, _cancel_queued(pool):
            futures = {pool.submit(one, i): i for i in items}
            for fut in as_completed(futures):
                item = futures[fut]
                try:
                    p = fut.result()
                except WheelhouseError as err:
                    failures.append(Failure(pin=item.pin.spec, error=err))
                    self.on_event("failed", err.message.splitlines()[0])
                    if not keep_going:
                        for f in futures:
                            f.cancel()
                    continue
                placed[item.pin.name] = p
                self.on_event(p.source, f"{item.pin.spec} -> {p.blob.filename}")
        return failures

    # -- record + index -----------------------------------------------------------------

    def record(self, results: Sequence[TargetBuild]) -> None:
        """What the run did (`cache stats`) and the files it used (`cache prune` keeps the
        most recently used): the wheels placed and the sdists built."""
        counts = sum((r.counts for r in results), RunCounts())
        used = {sha for r in results if r.output for sha in r.output.sha256.values()}
        used.update(i.sha256 for r in results for i in r.plan.items if not i.dist.tags)
        record_run(self.config.cache_dir, self.store, counts, used, self.remote)


@contextmanager
def _cancel_queued(pool: ThreadPoolExecutor) -> Iterator[None]:
    try:
        yield
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def summary_error(results: list[TargetBuild]) -> BuildError | None:
    failed = [f for r in results for f in r.failures]
    if not failed:
        return None
    lines = "\n".join(f"  {f.pin}: {f.error.message.splitlines()[0]}" for f in failed)
    return BuildError(
        f"{len(failed)} build(s) failed (the rest were built and assembled):\n{lines}",
        hint="see each failure's log above; fix it and rerun (finished builds are cached)",
    )
