"""`wheelhouse cache ...` and `wheelhouse publish`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from wheelhouse.cli.common import (
    Context,
    Group,
    age_type,
    human_size,
    size_type,
    split_names,
    target_option,
    verbose_logging,
)

if TYPE_CHECKING:
    pass


@click.group("cache", cls=Group)
def cache_group() -> None:
    """The local cache for CI: a cache key, export/import, prune, verify, stats."""


@cache_group.command("key")
@target_option
@click.pass_obj
def cache_key(obj: Context, target_names: tuple[str, ...]) -> None:
    """Print a key for CI cache actions: it changes when the locks, the targets' config,
    Dockerfile.builder, the recipes in use or the builder images change."""
    from wheelhouse.build.cachekey import cache_key as key_of

    cfg = obj.config()
    click.echo(key_of(cfg, cfg.selected(split_names(target_names))))


@cache_group.command("export")
@target_option
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
    targets = cfg.selected(split_names(target_names))
    r = export(cfg.cache_dir, wanted(cfg, targets), output, targets=[t.name for t in targets])
    click.echo(f"wrote {output}: {r.blobs} files, {r.records} build records, {human_size(r.size)}")
    for m in r.missing:
        click.echo(f"  not in the cache (build first): {m}", err=True)


@cache_group.command("import")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--max-size",
    type=size_type(),
    help="Refuse an archive that unpacks to more than this (default 20G).",
)
@click.option(
    "--max-ratio",
    type=click.IntRange(min=1),
    help="Refuse an archive that unpacks to more than this many times its size (default 100).",
)
@click.pass_obj
def cache_import(obj: Context, archive: Path, max_size: int | None, max_ratio: int | None) -> None:
    """Check an archive from `cache export` (every hash, every path, its unpacked size) and
    add it to the cache."""
    from wheelhouse.store.archive import ImportLimits, import_archive

    default = ImportLimits()
    limits = ImportLimits(
        max_size=default.max_size if max_size is None else int(max_size),
        max_ratio=default.max_ratio if max_ratio is None else max_ratio,
    )
    r = import_archive(obj.config().cache_dir, archive, limits=limits)
    click.echo(f"imported {archive}: {r.blobs} files, {r.records} build records")


@cache_group.command("prune")
@click.option(
    "--max-size",
    type=size_type(zero_ok=True),
    help="Keep at most this much (500M, 5G), LRU first.",
)
@click.option("--max-age", type=age_type(), help="Drop entries unused for longer (12h, 30d, 2w).")
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
        f"pruned {r.removed} entries ({human_size(r.freed)}) and {r.records_dropped} records; "
        f"kept {r.kept} entries ({human_size(r.size)})"
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
    click.echo(f"entries: {s.blobs} files, {s.built} build records, {human_size(s.size)}")
    if s.pending_uploads:
        click.echo(f"pending uploads: {s.pending_uploads} (the next build with the store retries)")
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


@click.command()
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
        on_event=lambda msg: click.echo(f"… {msg}", err=True) if verbose_logging() else None,
    )
    click.echo(
        f"published {r.url}/: {len(r.uploaded)} objects uploaded ({human_size(r.bytes)}), "
        f"{r.skipped} unchanged"
    )
    if r.index_url:
        click.echo(f"pip install --index-url {r.index_url} ...")
