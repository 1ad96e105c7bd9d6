"""`wheelhouse recipe show`: the recipe a project's source builds use."""

from __future__ import annotations

import click

from wheelhouse.cli.common import Context, split_names, target_option


@click.group("recipe")
def recipe_group() -> None:
    """Recipes: what a source build needs beyond pip (recipes/<project>.toml)."""


@recipe_group.command("show")
@target_option
@click.argument("project")
@click.pass_obj
def show(obj: Context, target_names: tuple[str, ...], project: str) -> None:
    """Print PROJECT's effective recipe for each target: the user's recipes/<project>.toml
    (or the shipped one) plus the system packages discovery learned, as a file you can keep.
    Every recipe in recipes/ is checked on the way."""
    from wheelhouse.build.recipefiles import effective, render

    cfg = obj.config()
    shown = None
    for e in effective(cfg, cfg.selected(split_names(target_names)), project):
        if e.recipe is None:
            click.echo(f"# {e.target}: no recipe for {e.project}: builds need nothing beyond pip")
            continue
        learned = " ".join(f"{f}: {' '.join(p)}" for f, p in e.learned.items() if p)
        text = render(e.recipe)
        if text == shown:  # the same for another target: once is enough
            click.echo(f"# {e.target}: the same ({e.source})")
            continue
        click.echo(f"# {e.target}: from {e.source}" + (f"; learned {learned}" if learned else ""))
        click.echo(text, nl=False)
        shown = text
