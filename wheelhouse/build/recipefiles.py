"""Recipes as files: a recipe rendered as a ready `recipes/<project>.toml` (its digest is
the merged recipe's, so a machine that has it in git builds with the same key and learns
nothing), what one build learned (`LearnedRecipe`, written by `build --save-recipes`),
and a project's effective recipe per target (`wheelhouse recipe show`). Apart from
learn.py, which every build reads: none of this is needed unless something was learned
or shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from wheelhouse.build.learn import LEARNED_SOURCE, Learned
from wheelhouse.config import Config, Target
from wheelhouse.fsutil import atomic_write
from wheelhouse.recipes import FAMILIES, Recipe, Recipes


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
