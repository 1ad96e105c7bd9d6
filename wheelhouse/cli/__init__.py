"""Command line: parse, call one core function, render. The only place that prints or exits.

The group and its global options are here; each command lives in the module of its
pipeline stage (project: init/targets/lock, build: build/index, image, cache, serve)."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from wheelhouse import __version__
from wheelhouse.cli.common import Context, Group


class LazyGroup(Group):
    """The top-level group: its commands are loaded by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"wheelhouse.cli.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wheelhouse")
@click.option(
    "-C",
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Project folder (default: the current one).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: wheelhouse.toml, else pyproject.toml [tool.wheelhouse]).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. --set targets.slim.python-version=3.11.",
)
@click.option(
    "--engine",
    envvar="WHEELHOUSE_ENGINE",
    help="Container engine binary: docker, podman or a path [env: WHEELHOUSE_ENGINE].",
)
@click.option(
    "--store",
    envvar="WHEELHOUSE_STORE",
    metavar="s3://BUCKET/PREFIX",
    help="Shared store on S3-compatible storage (overrides the config's) [env: WHEELHOUSE_STORE].",
)
@click.option("-v", "--verbose", is_flag=True, help="Show the commands wheelhouse runs.")
@click.pass_context
def main(
    ctx: click.Context,
    project_dir: Path | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    engine: str | None,
    store: str | None,
    verbose: bool,
) -> None:
    """Build and cache wheels for Docker images."""
    if verbose:  # every subprocess and its exit, on stderr
        import logging

        from wheelhouse import process

        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("  %(message)s"))
        log = logging.getLogger("wheelhouse")
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        log.propagate = False
        process.VERBOSE = True
    ctx.obj = Context(project_dir, config_file, overrides, engine, store)


# command -> (module of wheelhouse.cli, attribute): imported when the command runs (or
# --help lists them), so `wheelhouse build` does not pay for importing every command
COMMANDS = {
    "init": ("project", "init"),
    "targets": ("project", "targets"),
    "lock": ("project", "lock"),
    "build": ("build", "build"),
    "index": ("build", "index"),
    "dockerfile": ("image", "dockerfile"),
    "image-report": ("image", "image_report"),
    "cache": ("cache", "cache_group"),
    "publish": ("cache", "publish"),
    "serve": ("serve", "serve"),
    "serve-user": ("serve", "serve_user"),
    "recipe": ("recipe", "recipe_group"),
}


def run() -> None:
    """The `wheelhouse` program: `main`, then a process about to exit. The objects left
    are frozen out of the garbage collector first, so the interpreter's exit does not
    walk them all once more (~4% of a warm build); CliRunner calls `main` itself."""
    import gc

    gc.set_threshold(20_000, 10, 10)
    try:
        main()
    finally:
        gc.freeze()
