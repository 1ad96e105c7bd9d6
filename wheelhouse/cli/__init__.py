"""Command line: parse, call one core function, render. The only place that prints or exits.

The group and its global options are here; each command lives in the module of its
pipeline stage (project: init/targets/lock, build: build/index, image, cache, serve)."""

from __future__ import annotations

from pathlib import Path

import click

from wheelhouse import __version__
from wheelhouse.cli.common import Context, Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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


def _register() -> None:
    from wheelhouse.cli import build, cache, image, project, serve

    for command in (
        project.init, project.targets, project.lock, build.build, build.index,
        image.dockerfile, image.image_report, cache.cache_group, cache.publish,
        serve.serve, serve.serve_user,
    ):  # fmt: skip
        main.add_command(command)


_register()
