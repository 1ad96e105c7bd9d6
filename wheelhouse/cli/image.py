"""`wheelhouse dockerfile` and `wheelhouse image-report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from wheelhouse.cli.common import (
    Context,
)
from wheelhouse.lock.lockfile import write_atomic

if TYPE_CHECKING:
    from wheelhouse.image import Report


@click.command()
@click.option(
    "-t",
    "--target",
    "target_name",
    metavar="NAME",
    help="The target whose wheelhouse the image installs (default: the only default target).",
)
@click.option(
    "--app",
    "app_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="The app, relative to the project: files or folders copied last (repeatable), or "
    "one project folder (pyproject.toml/setup.py) installed from its own pure wheel.",
)
@click.option(
    "--cmd",
    metavar="COMMAND",
    help='The image\'s command, split as a shell would, e.g. --cmd "python app.py".',
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Dockerfile here and OUTPUT.dockerignore beside it (default: stdout).",
)
@click.option(
    "--whole",
    is_flag=True,
    help="A complete Dockerfile that says how to build it, not only the final stage.",
)
@click.option(
    "--install",
    "install_mode",
    type=click.Choice(["auto", "mount", "copy"]),
    default="auto",
    show_default=True,
    help="mount: bind-mount the wheelhouse (BuildKit); copy: a throwaway install stage, "
    "for builders without bind mounts; auto: ask the engine.",
)
@click.option(
    "--layers",
    "layers",
    metavar="auto|N",
    help="Split the install into layers by wheel size, heaviest first, each RUN mounting "
    "only its own wheels (auto: one per size decade; N: at most N). Default: one layer.",
)
@click.option(
    "--installer",
    type=click.Choice(["auto", "uv", "pip"]),
    default="auto",
    show_default=True,
    help="uv (hash-pinned, run from the mount), pip (run from its wheel), or auto: uv, "
    "and pip where uv cannot run in the image.",
)
@click.option(
    "--compile-bytecode", is_flag=True, help="uv: compile .pyc files at install (pip always does)."
)
@click.pass_obj
def dockerfile(
    obj: Context,
    target_name: str | None,
    app_paths: tuple[Path, ...],
    cmd: str | None,
    output: Path | None,
    whole: bool,
    install_mode: str,
    layers: str | None,
    installer: str,
    compile_bytecode: bool,
) -> None:
    """Write the final stage that installs wheelhouse/<target>/ offline (no wheel, no pip
    and no compiler in the image)."""
    import shlex
    from typing import cast

    from wheelhouse.image import IGNORE_SUFFIX, Installer, InstallMode, build_command
    from wheelhouse.image import dockerfile as dockerfile_mod
    from wheelhouse.image.layers import parse_layers

    cfg = obj.config()
    if target_name is None:
        if len(cfg.default_targets) != 1:
            raise click.UsageError("name the target with --target (there are several defaults)")
        target_name = cfg.default_targets[0]
    target = cfg.target(target_name)
    try:
        argv = shlex.split(cmd) if cmd is not None else []
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--cmd") from None
    if cmd is not None and not argv:
        raise click.BadParameter("an empty command", param_hint="--cmd")
    name = cfg.rel(output.resolve()) if output else "Dockerfile"
    result = dockerfile_mod.dockerfile(
        cfg,
        target,
        engine=obj.engine_factory(),
        app=app_paths,
        cmd=argv,
        mode=cast(InstallMode, install_mode),  # click.Choice admits only these
        whole=whole,
        dockerfile_name=name,
        installer=cast(Installer, installer),  # click.Choice admits only these
        compile_bytecode=compile_bytecode,
        layers="one" if layers is None else parse_layers(layers),
    )
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if output is None:
        click.echo(result.text, nl=False)
        click.echo(
            "# keep the build context small: save this as Dockerfile.dockerignore\n"
            + result.ignore,
            err=True,
        )
        return
    ignore = output.with_name(output.name + IGNORE_SUFFIX)
    write_atomic(output, result.text)
    write_atomic(ignore, result.ignore)
    click.echo(f"wrote {output} and {ignore}")
    if result.stage.mode == "copy":
        click.echo(f"the legacy builder reads only .dockerignore: copy {ignore.name} there")
    click.echo(f"build it: {build_command(result.stage, name)}")


@click.command("image-report")
@click.argument("image")
@click.option("--base", metavar="IMAGE", help="The image it was built FROM: what it adds.")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 12 when the image's own layers hold a .whl file, a compiler or a package "
    "manager's lists or caches.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option(
    "--libraries",
    is_flag=True,
    help="Also check, in a container of the image (no network), that every compiled file "
    "of its Python environment finds its shared libraries (with --strict: exit 12 if not).",
)
@click.pass_obj
def image_report(
    obj: Context, image: str, base: str | None, strict: bool, as_json: bool, libraries: bool
) -> None:
    """An image's size, its layers, any wheel file, compiler or package cache in it."""
    import json

    from wheelhouse.errors import ImageCheckError
    from wheelhouse.image import report as report_mod

    engine = obj.engine_factory()()
    report = report_mod.report(engine, image, base)
    loads, said = report_mod.check_libraries(engine, image) if libraries else (True, ())
    if as_json:
        doc = report.as_dict()
        if libraries:
            doc["libraries"] = {"ok": loads, "messages": list(said)}
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        _render_image_report(report)
        for line in said:
            click.echo(f"libraries: {line.removeprefix('wheelhouse: ')}")
    if strict and not loads:
        raise ImageCheckError(
            f"{image}: compiled files cannot load their shared libraries:\n"
            + "\n".join(x for x in said if "needs" in x),
            hint="install the named system packages in the image (`wheelhouse dockerfile` "
            "adds them when it can find the library's package)",
        )
    bad = report.added("wheel") + report.added("compiler") + report.added("package-cache")
    if strict and bad:
        shown = ", ".join(f"{f.path} (layer {f.layer})" for f in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ImageCheckError(
            f"{image} holds {len(report.added('wheel'))} wheel file(s), "
            f"{len(report.added('compiler'))} compiler(s) and "
            f"{len(report.added('package-cache'))} package list/cache file(s): {shown}{more}",
            hint="install wheels from a bind mount (`wheelhouse dockerfile`), build in a "
            "separate stage, and clean the package manager in the RUN that uses it (or let "
            "`wheelhouse dockerfile` install the runtime packages offline)",
        )


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def _render_image_report(r: Report) -> None:
    click.echo(f"image: {r.image} ({r.image_id[:19]}), {_mb(r.size)}")
    if r.base:
        click.echo(f"base:  {r.base}, {_mb(r.base_size)}; added {_mb(r.added_size)}")
        if not r.base_matches:
            click.echo("  warning: the image is not built on this base (its layers differ)")
    click.echo("layers (bottom first):")
    for layer in r.layers:
        mark = "base" if layer.in_base else "    "
        what = " ".join(layer.created_by.split())[:90] or "-"
        click.echo(f"  {layer.index:>3} {mark} {_mb(layer.size):>10}  {what}")
    for kind, label in (
        ("wheel", "wheels"),
        ("compiler", "compilers"),
        ("package-cache", "package lists/caches"),
    ):
        found = [f for f in r.findings if f.kind == kind]
        if not found:
            click.echo(f"{label}: none")
            continue
        click.echo(f"{label}: {len(found)}")
        for f in found[:20]:
            where = "base layer" if f.in_base else "layer"
            gone = "" if f.present else " (deleted later, still shipped)"
            click.echo(f"  {f.path}  [{where} {f.layer}]{gone}")
        if len(found) > 20:
            click.echo(f"  ... and {len(found) - 20} more")
