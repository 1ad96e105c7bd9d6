"""Builder images for lock time: a project whose metadata cannot be prepared on the host
(its setup.py runs pkg-config, its build backend configures against a library) gets it
prepared by pip-compile in the target's builder image with the system packages it needs.

`lock/` calls this through `resolve.Prepare` (it knows no recipes or images): first the
image with the project's recipe (shipped, the user's, plus what discovery learned before),
then, in later rounds, that image plus the packages discovery finds in the failed
metadata build's output. What is found here is learned as a build would learn it, so the
build that follows uses the same builder image and learns nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from wheelhouse.build.discover import missing_packages, needs
from wheelhouse.build.images import BuilderImages
from wheelhouse.build.learn import Learned, with_packages
from wheelhouse.build.provides import find_providers
from wheelhouse.config import Config, Target
from wheelhouse.engine import Engine
from wheelhouse.recipes import Recipes
from wheelhouse.store import Store


def metadata_image(
    config: Config,
    engine: Callable[[], Engine],
    progress: Callable[[str], None],
    target: Target,
    project: str,
    output: str,
    tried: tuple[str, ...],
) -> str | None:
    """The builder image to prepare `project`'s metadata in next, or None when there is
    nothing new to try (no recipe, and nothing found that the last image lacked)."""
    store = Store(config.cache_dir)
    images = BuilderImages(engine(), config, target, store)
    learned = Learned(store.root, target)
    recipe = learned.recipe(project, Recipes(config.root / "recipes", label="recipes").get(project))
    family = images.family
    if not tried and recipe is not None and recipe.build_for(family):
        progress(f"{project}: preparing its metadata in {target.name}'s builder with its recipe")
        return images.ensure(recipe)
    wanted = needs(output)
    if not wanted:
        return None
    shown = ", ".join(str(w) for w in wanted)
    progress(f"{project}: its metadata needs {shown}: looking it up")
    providers = find_providers(engine(), target.builder_image, wanted, logs=store.root / "logs")
    add, unknown = missing_packages(providers.items(), recipe.build_for(family) if recipe else ())
    if not add:
        return None
    progress(
        f"{project}: discovery round {len(tried) + 1}: missing {shown} -> {family} "
        f"{' '.join(add)}" + (f"; nothing ships {', '.join(map(str, unknown))}" if unknown else "")
    )
    learned.add(project, family, add)
    return images.ensure(with_packages(recipe, project, family, add))
