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
from wheelhouse.errors import ConfigError, WheelhouseError
from wheelhouse.lockfile import write_atomic

if TYPE_CHECKING:
    from wheelhouse.engine import Engine
    from wheelhouse.lock import LockReport


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

            # no up-front `docker version`: a failing call checks the engine then, so a
            # fully cached build pays for one `image inspect`, not two round trips
            return Engine(cfg.engine, cfg.cache_dir)

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


_target_option = click.option(
    "-t",
    "--target",
    "target_names",
    multiple=True,
    help="Target(s) to work on (default: default-targets). Repeat or comma-separate.",
)


@main.command()
@_target_option
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
    from wheelhouse import lock as lock_mod

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


def _render_lock(cfg: config_mod.Config, report: LockReport) -> None:
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


@main.command()
@_target_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel source builds (default: the number of cores).",
)
@click.option("--keep-going", is_flag=True, help="Build the rest when a build fails.")
@click.option(
    "--dry-run", is_flag=True, help="Print the plan (reuse / download / cached / build) and stop."
)
@click.pass_obj
def build(
    obj: Context,
    target_names: tuple[str, ...],
    jobs: int | None,
    keep_going: bool,
    dry_run: bool,
) -> None:
    """Turn each target's lock into wheelhouse/<target>/: wheels, lock.txt, manifest.json."""
    from rich.console import Console
    from rich.table import Table

    from wheelhouse import build as build_mod

    cfg = obj.config()
    chosen = cfg.selected(_names(target_names))
    err = Console(stderr=True, highlight=False)
    with err.status("planning", spinner="dots") as status:

        def on_event(kind: str, message: str) -> None:
            if kind in ("built", "failed", "build"):
                style = {"built": "green", "failed": "red", "build": ""}[kind]
                err.print(f"{kind:>6}  {message}", style=style)
            status.update(message)

        results = build_mod.build(
            cfg,
            chosen,
            engine=obj.engine_factory(),
            jobs=jobs,
            keep_going=keep_going,
            dry_run=dry_run,
            on_event=on_event,
        )
    out = Console(highlight=False)
    if dry_run:
        for r in results:
            table = Table(title=f"plan for {r.target.name}", title_justify="left")
            for col in ("action", "pin", "file"):
                table.add_column(col)
            for item in r.plan.items:
                table.add_row(item.action, item.pin.spec, item.dist.link.filename)
            out.print(table)
        return
    table = Table(title="wheelhouse build", title_justify="left")
    for col in ("target", "wheels", "reused", "downloaded", "cached", "built", "failed", "folder"):
        table.add_column(col)
    for r in results:
        sources = list(r.output.wheels.values()) if r.output else []
        table.add_row(
            r.target.name,
            str(len(sources)),
            *(str(sources.count(s)) for s in ("reused", "downloaded", "cached", "built")),
            str(len(r.failures)),
            cfg.rel(r.output.folder) if r.output else "-",
        )
    out.print(table)
    for r in results:
        if r.output and r.output.runtime_packages:
            out.print(f"{r.target.name}: runtime packages: {' '.join(r.output.runtime_packages)}")
        for f in r.failures:
            err.print(f"[red]failed[/red] {f.error}")
    summary = build_mod.summary_error(results)
    if summary:
        raise summary
