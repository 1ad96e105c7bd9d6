"""Install layers: the wheelhouse's pins split into groups, each installed by its own RUN
that bind-mounts only its own folder `<output>/<target>/.layers/<n>/` (hard links of its
wheels and a lock.txt of just its pins), so a layer's cache key is its wheels alone.

Docker rebuilds a changed layer and every layer above it, so the heaviest wheels (the
ones that change least often: torch, the CUDA libraries, numpy) go first and the small,
often-bumped ones last: a one-pin bump of a small package reruns only the small layer
at the top. Every layer installs with `--no-deps`: the lock is complete, so the union
of the layers is the one-layer install, file for file.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from wheelhouse.build.assemble import LOCK_NAME
from wheelhouse.errors import InputError
from wheelhouse.fsutil import atomic_write, link_into
from wheelhouse.lock.lockfile import LockFile, Pin

LAYERS_DIR = ".layers"
MAX_LAYERS = 16
# "auto": one layer per decade of wheel size, heaviest first
AUTO_BOUNDS = (100_000_000, 10_000_000, 1_000_000)


@dataclass(frozen=True, kw_only=True)
class Wheel:
    name: str  # the pin's normalized project name
    filename: str
    size: int


def parse_layers(value: str) -> int | None:
    """`--layers auto|N`: None for auto, else N (1..MAX_LAYERS)."""
    if value == "auto":
        return None
    if value.isdigit() and 1 <= int(value) <= MAX_LAYERS:
        return int(value)
    raise InputError(
        f"--layers {value!r}: expected auto or a number from 1 to {MAX_LAYERS}",
        hint="e.g. --layers auto, or --layers 3",
    )


def split(wheels: Sequence[Wheel], count: int | None) -> list[list[Wheel]]:
    """The wheels in install layers, heaviest layer first; empty layers dropped. `count`
    None: one per size decade (AUTO_BOUNDS); N: cut where the sizes jump most (the N-1
    largest ratios between neighbours in size order)."""
    ordered = sorted(wheels, key=lambda w: (-w.size, w.name))
    if not ordered:
        return []
    if count is None:
        groups: list[list[Wheel]] = [[] for _ in range(len(AUTO_BOUNDS) + 1)]
        for w in ordered:
            groups[sum(w.size < b for b in AUTO_BOUNDS)].append(w)
        return [g for g in groups if g]
    gaps = [
        (math.log(max(a.size, 1)) - math.log(max(b.size, 1)), i + 1)
        for i, (a, b) in enumerate(pairwise(ordered))
    ]
    cuts = sorted(i for _, i in sorted(gaps, key=lambda g: (-g[0], g[1]))[: count - 1])
    bounds = [0, *cuts, len(ordered)]
    return [ordered[a:b] for a, b in pairwise(bounds) if b > a]


def write_layers(
    folder: Path, lock: LockFile, groups: Sequence[Sequence[Wheel]]
) -> tuple[str, ...]:
    """`<folder>/.layers/<n>/` for each group (n from 1), written afresh: the wheels as
    hard links and a lock.txt of their pins (no `via`: another layer's bump must not
    change this layer's bytes). Returns the folders' names relative to `folder`."""
    root = folder / LAYERS_DIR
    shutil.rmtree(root, ignore_errors=True)
    pins = {str(name): pin for name, pin in lock.by_name().items()}
    names: list[str] = []
    for n, group in enumerate(groups, start=1):
        dest = root / str(n)
        dest.mkdir(parents=True)
        for w in group:
            link_into(folder / w.filename, dest, w.filename)
        sub = LockFile(
            target=lock.target,
            target_description=lock.target_description,
            inputs_digest=f"layer {n} of {folder.name}/{LOCK_NAME}",
            pins=tuple(
                Pin(
                    name=pins[w.name].name, version=pins[w.name].version, hashes=pins[w.name].hashes
                )
                for w in sorted(group, key=lambda w: w.name)
            ),
        )
        atomic_write(dest / LOCK_NAME, sub.render(), durable=False)
        names.append(f"{LAYERS_DIR}/{n}")
    return tuple(names)


def remove_layers(folder: Path) -> None:
    shutil.rmtree(folder / LAYERS_DIR, ignore_errors=True)
