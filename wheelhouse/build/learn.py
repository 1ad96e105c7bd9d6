"""System packages learned by discovery, kept so that no build learns them twice.

A source build that failed for want of a header, library or tool and then succeeded with
the packages `provides.py` found leaves them here, per target builder image and project.
They join the project's recipe (shipped or the user's) wherever a recipe is asked for, so
they go into the builder image's tag and the build key exactly as a recipe's packages do:
the next build reuses the image and the wheel. `render` writes the effective recipe as a
ready `recipes/<project>.toml`; that file's digest is the merged recipe's, so a machine
that has it in git builds with the same key and learns nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from packaging.utils import canonicalize_name

from wheelhouse.config import Config, Target
from wheelhouse.fsutil import atomic_write
from wheelhouse.recipes import FAMILIES, Recipe, Recipes

LEARNED_SOURCE = "learned by discovery"


@dataclass(frozen=True, kw_only=True)
class LearnedRecipe:
    """What one source build learned, for the terminal and --save-recipes."""

    project: str
    target: str
    family: str
    packages: tuple[str, ...]  # what discovery added
    runtime: tuple[str, ...]  # what the built wheel loads at run time (found, not learned)
    recipe: Recipe  # the effective recipe the wheel was built with
    rounds: tuple[str, ...] = ()  # what each discovery round found

    @property
    def text(self) -> str:
        return render(
            self.recipe,
            self.runtime,
            comment="written by wheelhouse; build packages found by discovery",
        )


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


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def render(recipe: Recipe, runtime: Sequence[str] = (), *, comment: str = "") -> str:
    """The recipe as a `recipes/<project>.toml` file that parses back to the same digest.
    Runtime packages a build found (not a recipe's) are a comment: the final stage gets
    them from the build record, and listing them would change the recipe's digest."""
    lines = [f"# {recipe.name}: {comment}"] if comment else []
    if runtime:
        lines.append(f"# At run time the wheel loads libraries from: {' '.join(runtime)}")
    lines += ["", "[build]"] if lines else ["[build]"]
    for f in FAMILIES:
        if recipe.build_for(f):
            lines.append(f"{f} = {_toml_list(recipe.build_for(f))}")
    if recipe.requires:
        lines.append(f"requires = {_toml_list(recipe.requires)}")
    if recipe.env:
        pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in recipe.env)
        lines.append(f"env = {{ {pairs} }}")
    if any(recipe.runtime_for(f) for f in FAMILIES):
        lines += ["", "[runtime]"]
        lines += [
            f"{f} = {_toml_list(recipe.runtime_for(f))}" for f in FAMILIES if recipe.runtime_for(f)
        ]
    for check in recipe.checks:
        lines += ["", "[[check]]", f"contains = {json.dumps(check.contains)}"]
    return "\n".join(lines) + "\n"


def save(folder: Path, learned: Iterable[LearnedRecipe]) -> list[Path]:
    """Write each learned recipe as `<folder>/<project>.toml` (atomically); returns them."""
    written = []
    for item in learned:
        path = folder / f"{item.project}.toml"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, item.text)
        written.append(path)
    return written


@dataclass(frozen=True, kw_only=True)
class Effective:
    """`wheelhouse recipe show`: a project's recipe as builds for one target use it."""

    project: str
    target: str
    base: Recipe | None  # the user's or the shipped recipe
    learned: Mapping[str, tuple[str, ...]]  # family -> packages discovery added
    recipe: Recipe | None  # what builds use: base + learned

    @property
    def source(self) -> str:
        where = [self.base.source] if self.base else []
        if any(self.learned.values()):
            where.append(f"{LEARNED_SOURCE} (cache)")
        return " + ".join(where) or "none"


def effective(
    config: Config, targets: Sequence[Target], project: str, recipes: Recipes | None = None
) -> list[Effective]:
    """The effective recipe of `project` for each target; every recipe file is validated
    (a broken one in recipes/ is an error even when it is for another project)."""
    recipes = recipes or Recipes(config.root / "recipes", label="recipes")
    recipes.load_all()
    name = canonicalize_name(project)
    base = recipes.get(name)
    found = []
    for t in targets:
        learned = Learned(config.cache_dir / "store", t)
        found.append(
            Effective(
                project=name,
                target=t.name,
                base=base,
                learned=learned.packages(name),
                recipe=learned.recipe(name, base),
            )
        )
    return found
