"""`wheelhouse init`, `targets` and `lock`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from wheelhouse import config as config_mod
from wheelhouse.cli.common import (
    Context,
    split_names,
    target_option,
)
from wheelhouse.config import Target
from wheelhouse.errors import ConfigError, EngineError
from wheelhouse.lock.lockfile import write_atomic

if TYPE_CHECKING:
    from wheelhouse.lock.lock import LockReport


@click.command()
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


@click.command()
@click.option("--probe", is_flag=True, help="Also probe each target's images (needs the engine).")
@click.argument("names", nargs=-1)
@click.pass_obj
def targets(obj: Context, probe: bool, names: tuple[str, ...]) -> None:
    """Show the configured targets (and what their images really contain)."""
    cfg = obj.config()
    chosen = [cfg.target(n) for n in names] if names else list(cfg.targets.values())
    failed: list[EngineError] = []
    for t in chosen:
        mark = "*" if t.name in cfg.default_targets else " "
        click.echo(f"{mark} {t.name:<10} {t.describe()}")
        click.echo(f"    builder: {t.builder_image}\n    final:   {t.final_image}")
        if t.libc_version:
            from wheelhouse.tags import target_tags

            tags = target_tags(t)
            click.echo(f"    tags:    {tags[0]} ... {tags[-1]} ({len(tags)})")
        if probe:
            failed += _probe(obj, t)
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise EngineError(
            "\n".join(e.message for e in failed),
            hint="build or pull the images named above (`docker images`), or fix the "
            "targets' builder-image / final-image",
        )


def _probe(obj: Context, t: Target) -> list[EngineError]:
    """One target's images, probed: a missing image is said and returned, never stops the
    other targets' probes (an engine that is missing or down stops them all)."""
    from wheelhouse.engine import NoPythonError
    from wheelhouse.lock.base import probe_base

    failed: list[EngineError] = []
    eng = obj.engine_factory()()
    for role, image in (("builder", t.builder_image), ("final", t.final_image)):
        key = f"targets.{t.name}.{role}-image"
        try:
            info = eng.probe(image, key=key)
            click.echo(
                f"    {role} probe: python {info.python_version} ({info.python}), "
                f"{info.libc} {info.libc_version}, {info.distro}, {info.package_manager}"
            )
            if role != "final":
                continue
            base = probe_base(eng, image, key=key)
        except NoPythonError:  # NVIDIA's CUDA images: Python comes from the distro
            click.echo(f"    {role} probe: no python3 or python on its PATH (none to inherit)")
            continue
        except EngineError as e:
            eng.ensure()  # the engine itself failing is no image's doing: raised here
            click.echo(f"    {role} probe: failed: {e.message.splitlines()[0]}")
            failed.append(e)
            continue
        mode = t.base_packages or ("inherit" if base.own else "ignore")
        env = "a venv" if base.in_venv else "system"
        click.echo(
            f"    final packages: {len(base.distributions)} in {base.prefix} ({env}); "
            f"base-packages = {mode!r}"
            + (f", replace-base = {list(t.replace_base)}" if t.replace_base else "")
        )
        for d in base.distributions:
            click.echo(f"      {d.name} {d.version}  {d.location}")
        for c in base.constraint_files:
            state = "" if c.exists else " (missing)"
            click.echo(f"    final constraint file: {c.path}{state}, declared by {c.declared_by}")
    return failed


@click.command()
@target_option
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
    from wheelhouse.engine import with_libc
    from wheelhouse.lock import lock as lock_mod

    cfg = obj.config()
    chosen = with_libc(cfg.selected(split_names(target_names)), obj.engine_factory())
    if check:
        notes = lock_mod.check(cfg, chosen, obj.engine_factory())
        click.echo(f"locks up to date: {', '.join(t.name for t in chosen)}")
        for note in notes:
            click.echo(f"  note: {note}")
        return

    def progress(msg: str) -> None:
        click.echo(f"… {msg}", err=True)

    def prepare(target: Target, project: str, output: str, tried: tuple[str, ...]) -> str | None:
        # (imported only for a project whose metadata needs system packages)
        from wheelhouse.build.lockprep import metadata_image

        return metadata_image(cfg, obj.engine_factory(), progress, target, project, output, tried)

    report = lock_mod.lock(
        cfg,
        chosen,
        engine=obj.engine_factory(),
        upgrade=upgrade,
        upgrade_packages=upgrade_package,
        refresh=refresh or upgrade,
        progress=progress,
        # a project whose metadata needs system packages: prepared in the builder
        prepare=prepare,
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
        for warning in r.warnings:
            click.echo(f"wheelhouse: warning: {warning}", err=True)
    if report.divergent:
        click.echo("versions differ between targets:")
        for name, per in report.divergent.items():
            click.echo(f"  {name}: " + ", ".join(f"{t} {v}" for t, v in per.items()))
    if report.partial:
        click.echo("pinned in some targets only:")
        for name, missing in report.partial.items():
            click.echo(f"  {name}: not in {', '.join(missing)}")
