"""Command line: parse, call one core function, render. The only place that prints or exits."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from wheelhouse import __version__
from wheelhouse import config as config_mod
from wheelhouse.errors import ConfigError, WheelhouseError
from wheelhouse.lock.lockfile import write_atomic

if TYPE_CHECKING:
    from wheelhouse.build.session import BuildReport
    from wheelhouse.display import Display
    from wheelhouse.engine import Engine
    from wheelhouse.image import Report
    from wheelhouse.index import IndexReport
    from wheelhouse.lock.lock import LockReport


@dataclass
class Context:
    project_dir: Path | None
    config_file: Path | None
    overrides: tuple[str, ...]
    engine: str | None
    store: str | None = None
    _config: config_mod.Config | None = None

    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(
                self.project_dir,
                config_file=self.config_file,
                overrides=self.overrides,
                engine=self.engine,
                store=self.store,
            )
        return self._config

    def engine_factory(self) -> Callable[[], Engine]:
        cfg = self.config()

        @functools.cache
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
    from wheelhouse.engine import with_libc
    from wheelhouse.lock import lock as lock_mod

    cfg = obj.config()
    chosen = with_libc(cfg.selected(_names(target_names)), obj.engine_factory())
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
@click.option(
    "--no-index", "no_index", is_flag=True, help="Do not write the static indexes at the end."
)
@click.pass_obj
def build(
    obj: Context,
    target_names: tuple[str, ...],
    jobs: int | None,
    keep_going: bool,
    dry_run: bool,
    no_index: bool,
) -> None:
    """Turn each target's lock into wheelhouse/<target>/ (wheels, lock.txt, manifest.json),
    then write the static indexes (`wheelhouse index`)."""
    from wheelhouse.build import session as build_mod
    from wheelhouse.display import Display
    from wheelhouse.engine import with_libc

    cfg = obj.config()
    chosen = with_libc(cfg.selected(_names(target_names)), obj.engine_factory())
    show = Display()
    with show.status("planning") as status:

        def on_event(kind: str, message: str) -> None:
            if kind in ("built", "failed", "build"):
                show.event(kind, message)
            status.update(message)

        report = build_mod.build(
            cfg,
            chosen,
            engine=obj.engine_factory(),
            jobs=jobs,
            keep_going=keep_going,
            dry_run=dry_run,
            index=not no_index,
            on_event=on_event,
        )
    _render_build(cfg, report, show, dry_run=dry_run)
    summary = build_mod.summary_error(report.targets)
    if summary:
        raise summary


def _render_build(
    cfg: config_mod.Config, report: BuildReport, show: Display, *, dry_run: bool
) -> None:
    results = report.targets
    if dry_run:
        for r in results:
            rows = [(i.action, i.pin.spec, i.dist.link.filename) for i in r.plan.items]
            show.table(f"plan for {r.target.name}", ("action", "pin", "file"), rows)
        return
    columns = ("target", "wheels", "reused", "downloaded", "cached", "built", "failed", "folder")
    table = []
    for r in results:
        c = r.counts
        done = (c.reused, c.downloaded, c.cached, c.built)
        folder = cfg.rel(r.output.folder) if r.output else "-"
        table.append((r.target.name, str(sum(done)), *map(str, done), str(c.failed), folder))
    show.table("wheelhouse build", columns, table)
    if len(results) > 1:  # a matrix: each file was fetched once, however many targets use it
        show.line(f"fetched {report.fetched} files once for {len(results)} targets")
    for r in results:
        if r.output and r.output.runtime_packages:
            show.line(f"{r.target.name}: runtime packages: {' '.join(r.output.runtime_packages)}")
        for f in r.failures:
            show.line(f"failed {f.error}", err=True)
    if report.remote is not None:
        rs = report.remote
        show.line(
            f"store {rs.url}: {rs.blobs_fetched} files and {rs.records_fetched} build records "
            f"fetched, {rs.uploaded} objects uploaded"
        )
        for what in rs.corrupt:
            show.line(f"store: corrupt object ignored: {what}", err=True)
    _render_indexes(cfg, report.indexes, show.line)


@main.command()
@_target_option
@click.pass_obj
def index(obj: Context, target_names: tuple[str, ...]) -> None:
    """Publish wheelhouse/<target>/simple/ and the combined wheelhouse/simple/: static
    PEP 503/691 indexes (with PEP 658 metadata) for pip --index-url file://… or any server."""
    from wheelhouse.index import index_all

    cfg = obj.config()
    _render_indexes(cfg, index_all(cfg, cfg.selected(_names(target_names))), click.echo)


def _render_indexes(
    cfg: config_mod.Config, reports: Sequence[IndexReport], say: Callable[[str], None]
) -> None:
    from wheelhouse.index import COMBINED, YANKED_NAME

    for r in reports:
        say(
            f"index {r.name}: {cfg.rel(r.path)}/ {r.projects} projects, {r.files} files "
            f"[{r.hashed} hashed, {r.pages_written} pages written, {r.pages_removed} removed; "
            f"{r.elapsed:.2f} s]"
        )
        if r.name == COMBINED and r.unmatched_yanks:  # per target, others' yanks don't match
            say(f"  {YANKED_NAME}: no wheel matches {', '.join(r.unmatched_yanks)}")


@main.command()
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
@click.pass_obj
def dockerfile(
    obj: Context,
    target_name: str | None,
    app_paths: tuple[Path, ...],
    cmd: str | None,
    output: Path | None,
    whole: bool,
    install_mode: str,
) -> None:
    """Write the final stage that installs wheelhouse/<target>/ offline (no wheel, no pip
    and no compiler in the image)."""
    import shlex
    from typing import cast

    from wheelhouse.image import IGNORE_SUFFIX, InstallMode, build_command
    from wheelhouse.image import dockerfile as dockerfile_mod

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


@main.command("image-report")
@click.argument("image")
@click.option("--base", metavar="IMAGE", help="The image it was built FROM: what it adds.")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 12 when the image's own layers hold a .whl file or a compiler.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_obj
def image_report(obj: Context, image: str, base: str | None, strict: bool, as_json: bool) -> None:
    """An image's size, its layers, and any wheel file or compiler in it."""
    import json

    from wheelhouse.errors import ImageCheckError
    from wheelhouse.image import report as report_mod

    report = report_mod.report(obj.engine_factory()(), image, base)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        _render_image_report(report)
    bad = report.added("wheel") + report.added("compiler")
    if strict and bad:
        shown = ", ".join(f"{f.path} (layer {f.layer})" for f in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ImageCheckError(
            f"{image} holds {len(report.added('wheel'))} wheel file(s) and "
            f"{len(report.added('compiler'))} compiler(s): {shown}{more}",
            hint="install wheels from a bind mount (`wheelhouse dockerfile`) and build in a "
            "separate stage, so neither lands in the final image's layers",
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
    for kind in ("wheel", "compiler"):
        found = [f for f in r.findings if f.kind == kind]
        if not found:
            click.echo(f"{kind}s: none")
            continue
        click.echo(f"{kind}s: {len(found)}")
        for f in found[:20]:
            where = "base layer" if f.in_base else "layer"
            gone = "" if f.present else " (deleted later, still shipped)"
            click.echo(f"  {f.path}  [{where} {f.layer}]{gone}")
        if len(found) > 20:
            click.echo(f"  ... and {len(found) - 20} more")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


class _Unit(click.ParamType):  # type: ignore[type-arg]
    """A size (500M, 5G) or an age (12h, 30d), parsed by wheelhouse.units."""

    def __init__(self, name: str, parse: Callable[[str], float], *, zero_ok: bool) -> None:
        self.name = name
        self._parse = parse
        self._zero_ok = zero_ok

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float):
            return value
        try:
            number = self._parse(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if number < 0 or (number == 0 and not self._zero_ok):
            self.fail(f"{value!r}: must be more than 0", param, ctx)
        return number


def _size_type(*, zero_ok: bool = False) -> _Unit:
    from wheelhouse.units import parse_size

    return _Unit("size", parse_size, zero_ok=zero_ok)


def _age_type() -> _Unit:
    from wheelhouse.units import parse_age

    return _Unit("age", parse_age, zero_ok=True)


@main.group("cache", cls=_Group)
def cache_group() -> None:
    """The local cache for CI: a cache key, export/import, prune, verify, stats."""


@cache_group.command("key")
@_target_option
@click.pass_obj
def cache_key(obj: Context, target_names: tuple[str, ...]) -> None:
    """Print a key for CI cache actions: it changes when the locks, the targets' config,
    Dockerfile.builder, the recipes in use or the builder images change."""
    from wheelhouse.build.cachekey import cache_key as key_of

    cfg = obj.config()
    click.echo(key_of(cfg, cfg.selected(_names(target_names))))


@cache_group.command("export")
@_target_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("wheelhouse-cache.tar.gz"),
    show_default=True,
    help="The archive to write.",
)
@click.pass_obj
def cache_export(obj: Context, target_names: tuple[str, ...], output: Path) -> None:
    """Write the cache entries these targets' builds use as one tar.gz."""
    from wheelhouse.build.cachekey import wanted
    from wheelhouse.store.archive import export

    cfg = obj.config()
    targets = cfg.selected(_names(target_names))
    r = export(cfg.cache_dir, wanted(cfg, targets), output, targets=[t.name for t in targets])
    click.echo(f"wrote {output}: {r.blobs} files, {r.records} build records, {_size(r.size)}")
    for m in r.missing:
        click.echo(f"  not in the cache (build first): {m}", err=True)


@cache_group.command("import")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_obj
def cache_import(obj: Context, archive: Path) -> None:
    """Check an archive from `cache export` (every hash, every path) and add it to the cache."""
    from wheelhouse.store.archive import import_archive

    r = import_archive(obj.config().cache_dir, archive)
    click.echo(f"imported {archive}: {r.blobs} files, {r.records} build records")


@cache_group.command("prune")
@click.option(
    "--max-size",
    type=_size_type(zero_ok=True),
    help="Keep at most this much (500M, 5G), LRU first.",
)
@click.option("--max-age", type=_age_type(), help="Drop entries unused for longer (12h, 30d, 2w).")
@click.pass_obj
def cache_prune(obj: Context, max_size: int | None, max_age: float | None) -> None:
    """Drop least recently used entries by age and/or total size."""
    from wheelhouse.store import maintain

    if max_size is None and max_age is None:
        raise click.UsageError("give --max-size and/or --max-age")
    r = maintain.prune(
        obj.config().cache_dir,
        max_size=max_size,
        max_age=max_age,
    )
    click.echo(
        f"pruned {r.removed} entries ({_size(r.freed)}) and {r.records_dropped} records; "
        f"kept {r.kept} entries ({_size(r.size)})"
    )


@cache_group.command("verify")
@click.pass_obj
def cache_verify(obj: Context) -> None:
    """Re-hash every entry; drop (and list) corrupt ones, which the next build replaces."""
    from wheelhouse.store import maintain

    r = maintain.verify(obj.config().cache_dir)
    for what in r.corrupt:
        click.echo(f"corrupt, dropped: {what}")
    for what in r.records_dropped:
        click.echo(f"dangling record, dropped: {what}")
    click.echo(f"verified {r.checked} entries: {len(r.corrupt)} corrupt")


@cache_group.command("stats")
@click.pass_obj
def cache_stats(obj: Context) -> None:
    """Entries, size, and the hit rate of the last build."""
    from wheelhouse.store import maintain

    cfg = obj.config()
    s = maintain.stats(cfg.cache_dir)
    click.echo(f"cache: {cfg.cache_dir}")
    click.echo(f"entries: {s.blobs} files, {s.built} build records, {_size(s.size)}")
    last = s.last_run
    if last is None:
        click.echo("last build: none recorded")
        return
    rate = s.hit_rate
    c = last.counts
    counts = f"{c.reused} reused, {c.cached} cached, {c.downloaded} downloaded, {c.built} built"
    shown = "-" if rate is None else f"{rate:.0%}"
    click.echo(f"last build: hit rate {shown} ({counts})")
    remote = last.remote
    if remote is not None:
        click.echo(
            f"  store {remote.url}: {remote.blobs_fetched} files and "
            f"{remote.records_fetched} records fetched, {remote.uploaded} uploaded"
        )


@main.command()
@click.option("-t", "--target", "target_name", metavar="NAME", required=True, help="The target.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="The S3-compatible service (default: the store's endpoint-url, else AWS).",
)
@click.argument("url", metavar="s3://BUCKET/PREFIX")
@click.pass_obj
def publish(obj: Context, target_name: str, endpoint_url: str | None, url: str) -> None:
    """Upload wheelhouse/<target>/ and its static index to S3-compatible storage:
    incremental, files before pages, with content types for a static site or a CDN."""
    from wheelhouse.index import publish_to_bucket

    cfg = obj.config()
    r = publish_to_bucket(
        cfg,
        cfg.target(target_name),
        url,
        endpoint_url=endpoint_url,
        on_event=lambda msg: click.echo(f"… {msg}", err=True) if _verbose() else None,
    )
    click.echo(
        f"published {r.url}/: {len(r.uploaded)} objects uploaded ({_size(r.bytes)}), "
        f"{r.skipped} unchanged"
    )
    if r.index_url:
        click.echo(f"pip install --index-url {r.index_url} ...")


def _verbose() -> bool:
    import logging

    return logging.getLogger("wheelhouse").level == logging.DEBUG


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free."
)
@click.option(
    "-t",
    "--target",
    "target_names",
    multiple=True,
    help="Serve only these targets (default: all, plus the combined /simple/); one target "
    "is also served at /simple/.",
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes, each on its own SO_REUSEPORT socket.",
)
@click.option("--upload", is_flag=True, help="Accept twine uploads (needs --password-file).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="user:argon2-hash lines (make them with `wheelhouse serve-user`).",
)
@click.option(
    "--max-upload-size",
    "max_upload",
    type=_size_type(),
    default="512M",
    show_default=True,
    help="Largest upload body.",
)
@click.option(
    "--upstream",
    is_flag=False,
    flag_value="https://pypi.org/simple/",
    default=None,
    metavar="[URL]",
    help="Projects not in the wheelhouse come from this index (PyPI without a URL), "
    "hash-checked and cached in the store.",
)
@click.option(
    "--upstream-ttl",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds an upstream page is reused before it is asked again.",
)
@click.option("--no-access-log", is_flag=True, help="Do not write JSON access log lines.")
@click.pass_obj
def serve(
    obj: Context,
    host: str,
    port: int,
    target_names: tuple[str, ...],
    workers: int,
    upload: bool,
    password_file: Path | None,
    max_upload: int,
    upstream: str | None,
    upstream_ttl: float,
    no_access_log: bool,
) -> None:
    """Serve the wheelhouse as a pip index (PEP 503/691): /simple/ (combined),
    /<target>/simple/, uploads (twine) and an upstream cache. Stop with Ctrl-C or SIGTERM."""
    from wheelhouse import serve as serve_mod

    opts = serve_mod.ServeOptions(
        host=host,
        port=port,
        targets=tuple(_names(target_names)),
        workers=workers,
        upload=upload,
        password_file=password_file,
        max_upload=max_upload,
        upstream=upstream,
        upstream_ttl=upstream_ttl,
        access_log=not no_access_log,
    )

    def ready(url: str) -> None:
        single = len(opts.targets) == 1
        index = f"{url}simple/" if single or not opts.targets else f"{url}<target>/simple/"
        click.echo(f"serving {index} (pip: --index-url {index})", nl=True)
        sys.stdout.flush()

    serve_mod.serve(obj.config(), opts, on_ready=ready)


@main.command("serve-user")
@click.argument("password_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def serve_user(password_file: Path, name: str, password_stdin: bool) -> None:
    """Add (or change) an upload user in a password file for `wheelhouse serve`."""
    from wheelhouse.serve import check_installed
    from wheelhouse.serve.auth import add_user

    check_installed(("argon2",))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    new = add_user(password_file, name, password)
    click.echo(f"{'added' if new else 'changed'} {name} in {password_file}")
