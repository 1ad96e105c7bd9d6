"""System packages learned by discovery, kept so that no build learns them twice.

A source build that failed for want of a header, library or tool and then succeeded with
the packages `provides.py` found leaves them here, per target builder image and project.
They join the project's recipe (shipped or the user's) wherever a recipe is asked for, so
they go into the builder image's tag and the build key exactly as a recipe's packages do:
the next build reuses the image and the wheel. recipefiles.py writes them as recipe files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from wheelhouse.config import Target
from wheelhouse.fsutil import atomic_write
from wheelhouse.recipes import FAMILIES, Recipe

LEARNED_SOURCE = "learned by discovery"


class Learned:
    """The packages learned for one target, in the cache folder (`<cache>/learned/`)."""

    def __init__(self, root: Path, target: Target) -> None:
        image = hashlib.sha256(target.builder_image.encode()).hexdigest()[:16]
        self.folder = root / "learned" / image

    def _path(self, project: str) -> Path:
        return self.folder / f"{project}.json"

    def packages(self, project: str) -> Mapping[str, tuple[str, ...]]:
        """family -> packages learned for `project` (empty when none, or unreadable)."""
        try:
            doc = json.loads(self._path(project).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict):
            return {}
        return {
            f: tuple(str(p) for p in doc.get(f, []) if isinstance(p, str))
            for f in FAMILIES
            if isinstance(doc.get(f), list)
        }

    def add(self, project: str, family: str, packages: Sequence[str]) -> None:
        have = dict(self.packages(project))
        have[family] = tuple(sorted(set(have.get(family, ())) | set(packages)))
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path(project), json.dumps({f: list(p) for f, p in have.items()}))

    def recipe(self, project: str, base: Recipe | None) -> Recipe | None:
        """`base` (the shipped or user recipe) with what was learned for `project` added."""
        learned = self.packages(project)
        if not any(learned.values()):
            return base
        recipe = base
        for family, packages in learned.items():
            recipe = with_packages(recipe, project, family, packages)
        return recipe


def with_packages(
    recipe: Recipe | None, project: str, family: str, packages: Iterable[str]
) -> Recipe:
    """`recipe` with more build packages for `family` (a new recipe when there was none).
    Packages are sorted and once each, as a parsed recipe's are: the digest of the same
    content written to a file and read back is the same."""
    base = recipe or Recipe(name=project, source=LEARNED_SOURCE)
    merged = {f: base.build_for(f) for f in FAMILIES}
    merged[family] = tuple(sorted(set(merged.get(family, ())) | set(packages)))
    return replace(base, build_packages=MappingProxyType(merged))
