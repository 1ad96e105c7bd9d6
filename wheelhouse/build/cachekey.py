"""What the store holds for a set of targets, as the build sees it: the CI cache key
(`wheelhouse cache key`) and the entries an export must carry (`wheelhouse cache export`).

The key is a hash of exactly what decides the store's content for the chosen targets:
the lock's pins and hashes, the target's config, Dockerfile.builder, the recipes of the
locked projects and the builder image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wheelhouse.build.images import dockerfile_text
from wheelhouse.config import Config, Target
from wheelhouse.lock.lockfile import read_target_lock
from wheelhouse.recipes import Recipes
from wheelhouse.store.archive import Wanted

KEY_FORMAT = "1"  # bump when what the key covers changes


def _target_doc(config: Config, target: Target) -> dict[str, Any]:
    doc = dataclasses.asdict(target)
    if doc["python_full"] is None:  # a field added later: keys of "3.11" targets stay as they were
        del doc["python_full"]
    # find-links folders are made absolute at load: keep the key the same on every checkout
    doc["index"]["find_links"] = [
        config.rel(Path(p)) if p.startswith("/") else p for p in target.index.find_links
    ]
    return doc


def cache_key(config: Config, targets: Sequence[Target]) -> str:
    """`wheelhouse-<targets>-<hash>`: changes exactly when a build could store other
    things (see the module docstring), not when a comment or another target changes."""
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


def wanted(config: Config, targets: Sequence[Target]) -> list[Wanted]:
    """Each locked pin of these targets, by its files' hashes: what their builds use from
    the store (the files, and what was built from an sdist among them)."""
    return [
        Wanted(
            label=f"{t.name}: {pin.spec}",
            sha256s=tuple(h.removeprefix("sha256:") for h in pin.hashes),
        )
        for t in targets
        for pin in read_target_lock(config, t).pins
        if not pin.provided  # the final image has it: no file, nothing in the store
    ]
