"""Command line: parse, call one core function, render. The only place that prints or exits."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from wheelhouse import __version__
from wheelhouse import config as config_mod
from wheelhouse import lock as lock_mod
from wheelhouse.errors import ConfigError, WheelhouseError
from wheelhouse.lockfile import write_atomic

if TYPE_CHECKING:
    from wheelhouse.engine import Engine


@dataclass
class Context:
    project_dir: Path | None
    config_file: Path | None
    overrides: tuple[str, ...]
    engine: str | None
    _config: config_mod.Config | None = None

    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(
                self.project_dir,
                config_file=self.config_file,
                overrides=self.overrides,
                engine=self.engine,
            )
        return self._config

    def engine_factory(self) -> Callable[[], Engine]:
        cfg = self.config()

        @cache
        def make() -> Engine:
            from wheelhouse.engine import Engine

            eng = Engine(cfg.engine, cfg.cache_dir)
            eng.check()
            return eng

        return make


def _fail(err: WheelhouseError) -> NoReturn:
    click.secho(f"wheelhouse: {err.kind}: {err.message}", fg="red", err=True)
    if err.hint:
        click.echo(f"  hint: {err.hint}", err=True)
    sys.exit(err.exit_code)


class _Group(click.Group):
    """Turns WheelhouseError into a message and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WheelhouseError as err:
            _fail(err)
        except KeyboardInterrupt:
            click.echo("wheelhouse: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("-v", "--verbose", is_flag=True, help="Show the commands wheelhouse runs.")
@click.pass_context
def main(
    ctx: click.Context,
    project_dir: Path | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    engine: str | None,
    verbose: bool,
) -> None:
    """Build and cache wheels for Docker images."""
    # Only our own logger speaks: urllib3's retry warnings would bury the real error.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("  %(message)s"))
    log = logging.getLogger("wheelhouse")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False
    ctx.obj = Context(project_dir, config_file, overrides, engine)


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing wheelhouse.toml.")
@click.pass_obj
def init(obj: Context, force: bool) -> None:
    """Write a commented starter wheelhouse.toml."""
    root = (obj.project_dir or Path.cwd()).resolve()
    path = root / config_mod.CONFIG_FILE
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    write_atomic(path, config_mod.STARTER)
    click.echo(f"wrote {path}")
    if not (root / "requirements.in").exists():
        click.echo("next: list your requirements in requirements.in, then `wheelhouse lock`")
    else:
        click.echo("next: `wheelhouse lock`")


@main.command()
@click.option("--probe", is_flag=True, help="Also probe each target's images (needs the engine).")
@click.argument("names", nargs=-1)
@click.pass_obj
def targets(obj: Context, probe: bool, names: tuple[str, ...]) -> None:
    """Show the configured targets (and what their images really contain)."""
    cfg = obj.config()
    chosen = [cfg.target(n) for n in names] if names else list(cfg.targets.values())
    for t in chosen:
        mark = "*" if t.name in cfg.default_targets else " "
        click.echo(f"{mark} {t.name:<10} {t.describe()}")
        click.echo(f"    builder: {t.builder_image}\n    final:   {t.final_image}")
        if t.libc_version:
            from wheelhouse.tags import target_tags

            tags = target_tags(t)
            click.echo(f"    tags:    {tags[0]} ... {tags[-1]} ({len(tags)})")
        if probe:
            eng = obj.engine_factory()()
            for role, image in (("builder", t.builder_image), ("final", t.final_image)):
                info = eng.probe(image, key=f"targets.{t.name}.{role}-image")
                click.echo(
                    f"    {role} probe: python {info.python_version} ({info.python}), "
                    f"{info.libc} {info.libc_version}, {info.distro}, {info.package_manager}"
                )


def _names(values: Sequence[str]) -> list[str]:
    return [n for v in values for n in v.split(",") if n]


@main.command()
@click.option(
    "-t",
    "--target",
    "target_names",
    multiple=True,
    help="Target(s) to lock (default: default-targets). Repeat or comma-separate.",
)
@click.option("-U", "--upgrade", is_flag=True, help="Ignore existing pins; take the newest.")
@click.option(
    "-P",
    "--upgrade-package",
    multiple=True,
    metavar="NAME",
    help="Upgrade only this package (repeatable).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Do not resolve: fail (exit 8) if a lock is missing or stale. For CI.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Ask the indexes again instead of reusing pages fetched in the last 10 min.",
)
@click.pass_obj
def lock(
    obj: Context,
    target_names: tuple[str, ...],
    upgrade: bool,
    upgrade_package: tuple[str, ...],
    check: bool,
    refresh: bool,
) -> None:
    """Pin requirements per target, with hashes, into locks/<target>.txt."""
    cfg = obj.config()
    chosen = cfg.selected(_names(target_names))
    if check:
        lock_mod.check(cfg, chosen)
        click.echo(f"locks up to date: {', '.join(t.name for t in chosen)}")
        return
    report = lock_mod.lock(
        cfg,
        chosen,
        engine=obj.engine_factory(),
        upgrade=upgrade,
        upgrade_packages=upgrade_package,
        refresh=refresh or upgrade,
        progress=lambda msg: click.echo(f"… {msg}", err=True),
    )
    _render_lock(cfg, report)


def _render_lock(cfg: config_mod.Config, report: lock_mod.LockReport) -> None:
    for r in report.results:
        state = "written" if r.written else "unchanged"
        click.echo(
            f"{r.target.name}: {len(r.lock.pins)} pins -> {cfg.rel(r.path)} "
            f"[{state}; resolved on {r.where} in {r.seconds:.1f} s]"
        )
        for name, old, new in r.changes.changed:
            click.echo(f"  ~ {name} {old} -> {new}")
        for name, version in r.changes.added:
            click.echo(f"  + {name} {version}")
        for name, version in r.changes.removed:
            click.echo(f"  - {name} {version}")
        if r.lock.source_builds:
            click.echo(f"  build from source: {', '.join(r.lock.source_builds)}")
    if report.divergent:
        click.echo("versions differ between targets:")
        for name, per in report.divergent.items():
            click.echo(f"  {name}: " + ", ".join(f"{t} {v}" for t, v in per.items()))
    if report.partial:
        click.echo("pinned in some targets only:")
        for name, missing in report.partial.items():
            click.echo(f"  {name}: not in {', '.join(missing)}")
