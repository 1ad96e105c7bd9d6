"""The provenance record of a built wheel, made from what the build used and saw."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wheelhouse import __version__
from wheelhouse.config import Target
from wheelhouse.engine import ImageInfo
from wheelhouse.recipes import Recipe
from wheelhouse.store import Blob, BuildRecord, SdistRef, sha256_file

SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01: the zip format's epoch; same bytes every build
# The C library belongs to every image; its packages are never "runtime packages".
BASE_PACKAGES = frozenset({"libc6", "musl", "libc-bin", "glibc"})


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the build container reported (its WHEELHOUSE-RESULT line)."""

    libs: tuple[str, ...] = ()  # shared libraries loaded from outside the wheel
    packages: tuple[str, ...] = ()  # the distro packages that own them


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What went into one build, beyond the sdist."""

    input_key: str
    target: Target
    recipe: Recipe | None
    image_tag: str
    image_id: str
    base_id: str
    base: ImageInfo
    requirements: Sequence[str]
    deps: Path  # the folder of build-dependency wheels


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def runtime_packages(inputs: Inputs, outcome: Outcome, family: str) -> tuple[str, ...]:
    # a repaired wheel bundles its libraries: only what ldd still finds outside it is
    # needed at run time, not the recipe's list
    recipe, target = inputs.recipe, inputs.target
    from_recipe = set(recipe.runtime_for(family)) if recipe and not target.repair else set()
    return tuple(sorted((set(outcome.packages) | from_recipe) - BASE_PACKAGES))


def provenance(
    *,
    inputs: Inputs,
    wheel: Blob,
    sdist: Blob,
    outcome: Outcome,
    family: str,
    started: float,
    log: Path,
    learned: tuple[str, ...] = (),
) -> BuildRecord:
    dep_pins = sorted(
        f"{p.name} sha256:{sha256_file(p)}" for p in inputs.deps.iterdir() if p.suffix == ".whl"
    )
    # the full key adds what the input key cannot know before the build: the build
    # dependencies' exact files
    full_key = hashlib.sha256(json.dumps([inputs.input_key, dep_pins]).encode()).hexdigest()
    t = inputs.target
    return BuildRecord(
        key=full_key,
        input_key=inputs.input_key,
        sha256=wheel.sha256,
        filename=wheel.filename,
        sdist=SdistRef(filename=sdist.filename, sha256=sdist.sha256),
        target=t.name,
        cuda=t.cuda,
        builder_cuda=inputs.base.cuda,
        builder_image=inputs.image_tag,
        builder_image_id=inputs.image_id,
        base_image=t.builder_image,
        base_image_id=inputs.base_id,
        python=inputs.base.python_version,
        recipe=inputs.recipe.digest() if inputs.recipe else None,
        build_requirements=tuple(inputs.requirements),
        build_dependencies=tuple(dep_pins),
        build_env=tuple(sorted(t.build_env)),
        source_date_epoch=SOURCE_DATE_EPOCH,
        linked_libraries=outcome.libs,
        runtime_packages=runtime_packages(inputs, outcome, family),
        started=iso(started),
        finished=iso(time.time()),
        log=str(log),
        wheelhouse=__version__,
        learned_packages=learned,
    )
