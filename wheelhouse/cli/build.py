"""`wheelhouse build` and `wheelhouse index`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import click

from wheelhouse import config as config_mod
from wheelhouse.cli.common import (
    Context,
    split_names,
    target_option,
    verbose_logging,
)

if TYPE_CHECKING:
    from wheelhouse.build.session import BuildReport, TargetBuild
    from wheelhouse.display import Display
    from wheelhouse.fsutil import Wait
    from wheelhouse.index import IndexReport

_F = Callable[..., None]


def _wait_options(f: _F) -> _F:
    """--wait / --no-wait: how long to wait for another run that holds an output folder."""
    f = click.option(
        "--no-wait",
        is_flag=True,
        help="Fail at once (exit 17) when another run holds an output folder.",
    )(f)
    return click.option(
        "--wait",
        "wait_s",
        type=click.FloatRange(min=0),
        default=None,
        metavar="SECONDS",
        help="How long to wait for another build or index of the same output folder "
        "(default: 600), then fail with exit 17.",
    )(f)


def _wait(wait_s: float | None, no_wait: bool, say: Callable[[str], None]) -> Wait:
    from wheelhouse.fsutil import LOCK_WAIT, Wait

    seconds = 0.0 if no_wait else LOCK_WAIT if wait_s is None else wait_s
    return Wait(seconds=seconds, on_wait=say)


@click.command()
@target_option
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
@click.option(
    "--save-recipes",
    is_flag=True,
    help="Write the system packages a build discovered as recipes/<project>.toml.",
)
@_wait_options
@click.pass_obj
def build(
    obj: Context,
    target_names: tuple[str, ...],
    jobs: int | None,
    keep_going: bool,
    dry_run: bool,
    no_index: bool,
    wait_s: float | None,
    no_wait: bool,
    save_recipes: bool,
) -> None:
    """Turn each target's lock into wheelhouse/<target>/ (wheels, lock.txt, manifest.json),
    then write the static indexes (`wheelhouse index`)."""
    from wheelhouse import build as build_pkg
    from wheelhouse.display import Display
    from wheelhouse.engine import with_libc

    cfg = obj.config()
    chosen = with_libc(cfg.selected(split_names(target_names)), obj.engine_factory())
    show = Display()
    with show.status("planning") as status:

        def on_event(kind: str, message: str) -> None:
            # a failure is shown once, at the end, with its log's tail
            if kind in ("built", "build", "wait", "corrupt", "kept", "discover"):
                show.event(kind, message)
            status.update(message)

        report = build_pkg.build(
            cfg,
            chosen,
            engine=obj.engine_factory(),
            jobs=jobs,
            keep_going=keep_going,
            dry_run=dry_run,
            index=not no_index,
            wait=_wait(wait_s, no_wait, lambda msg: on_event("wait", msg)),
            on_event=on_event,
            save_recipes=save_recipes,
        )
    _render_build(cfg, report, show, dry_run=dry_run)
    from wheelhouse.build.session import summary_error

    summary = summary_error(report.targets)
    if summary:
        raise summary


def _render_base(r: TargetBuild, show: Display) -> None:
    """What the final image provides, and (loudly) what the lock replaces of it."""
    if r.plan.base:
        names = " ".join(p.spec for p in r.plan.base)
        show.line(f"{r.target.name}: provided by the final image (not built, not placed): {names}")
    for rep in r.plan.replaces:
        show.line(
            f"warning: {r.target.name}: {rep} replaces the final image's copy "
            f"(targets.{r.target.name}.replace-base)",
            err=True,
        )


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
        _render_base(r, show)
        if r.output and r.output.runtime_packages:
            show.line(f"{r.target.name}: runtime packages: {' '.join(r.output.runtime_packages)}")
        for f in r.failures:
            show.line(f"failed {f.error}", err=True)
    if report.remote is not None:
        rs = report.remote
        show.line(
            f"store {rs.url}: {rs.blobs_fetched} files and {rs.records_fetched} build records "
            f"fetched, {rs.uploaded} objects uploaded"
            + (f" ({rs.retried} left pending by earlier runs)" if rs.retried else "")
        )
        for what in rs.corrupt:
            show.line(f"store: corrupt object ignored: {what}", err=True)
        for what in rs.untrusted:
            show.line(f"store: untrusted record ignored: {what}", err=True)
        if rs.pending:
            shown = ", ".join(rs.pending[:3]) + (" …" if len(rs.pending) > 3 else "")
            show.line(
                f"warning: store {rs.url}: {len(rs.pending)} objects not uploaded ({shown}): "
                f"{rs.upload_error or 'the store failed'}. They are kept in the cache; the "
                "next build with the store uploads them",
                err=True,
            )
    _render_learned(cfg, report, show)
    _render_indexes(cfg, report.indexes, show.line)


def _render_learned(cfg: config_mod.Config, report: BuildReport, show: Display) -> None:
    """What discovery learned, as the recipe a user can keep (or did, --save-recipes)."""
    for item in report.learned:
        show.line(
            f"{item.target}: {item.project} needed {item.family} packages "
            f"{' '.join(item.packages)} (found by discovery)"
        )
        path = cfg.root / "recipes" / f"{item.project}.toml"
        if path in report.saved:
            show.line(f"  saved as {cfg.rel(path)}")
        else:
            show.line(f"  keep it (or rerun with --save-recipes) as {cfg.rel(path)}:")
            for line in item.text.splitlines():
                show.line(f"    {line}")


@click.command()
@target_option
@_wait_options
@click.option(
    "--full",
    is_flag=True,
    help="Stat every wheel (re-hashing any whose size, mtime or inode changed) and render "
    "every page, instead of listing only the folders that changed: after a wheel was "
    "rewritten in place (`cp` over it).",
)
@click.pass_obj
def index(
    obj: Context, target_names: tuple[str, ...], wait_s: float | None, no_wait: bool, full: bool
) -> None:
    """Publish wheelhouse/<target>/simple/ and the combined wheelhouse/simple/: static
    PEP 503/691 indexes (with PEP 658 metadata) for pip --index-url file://… or any server."""
    from wheelhouse.index.ahead import SIMPLE, list_ahead

    cfg = obj.config()
    targets = cfg.selected(split_names(target_names))
    wait = _wait(wait_s, no_wait, lambda msg: click.echo(f"  wait  {msg}", err=True))
    # the first target's folder listed by a child while the index's code loads (ahead.py),
    # then the names in the combined index's folder
    first, combined = (cfg.output / targets[0].name if targets else None), cfg.output / SIMPLE
    ahead = list_ahead(first, [combined]) if first is not None and not full else None
    with ahead or contextlib.nullcontext():
        from wheelhouse.index import index_all

        reports = index_all(cfg, targets, wait=wait, full=full, ahead=ahead)
    if ahead is not None and verbose_logging():
        used = "used" if ahead.used else "not used: the folder changed, or was not listed"
        click.echo(f"  ahead  {cfg.rel(ahead.folder)}/ listed by a child ({used})", err=True)
    _render_indexes(cfg, reports, click.echo)


def _render_indexes(
    cfg: config_mod.Config, reports: Sequence[IndexReport], say: Callable[[str], None]
) -> None:
    from wheelhouse.index import COMBINED, YANKED_NAME

    for r in reports:
        work = (
            "nothing changed"
            if r.settled
            else f"{r.hashed} hashed, {r.pages_written} pages written, {r.pages_removed} removed"
        )
        say(
            f"index {r.name}: {cfg.rel(r.path)}/ {r.projects} projects, {r.files} files "
            f"[{work}; {r.elapsed:.2f} s]"
        )
        if r.name == COMBINED and r.unmatched_yanks:  # per target, others' yanks don't match
            say(f"  {YANKED_NAME}: no wheel matches {', '.join(r.unmatched_yanks)}")
