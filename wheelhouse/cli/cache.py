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
    from wheelhouse.store.signing import Keyring

    cfg = obj.config()
    targets = cfg.selected(split_names(target_names))
    names = [t.name for t in targets]
    r = export(cfg.cache_dir, wanted(cfg, targets), output, targets=names, keyring=Keyring.of(cfg))
    click.echo(f"wrote {output}: {r.blobs} files, {r.records} build records, {human_size(r.size)}")
    for m in r.missing:
        click.echo(f"  not in the cache (build first): {m}", err=True)


@cache_group.command("import")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--drop-untrusted",
    is_flag=True,
    help="Leave out build records no trusted key signed (default: refuse the archive).",
)
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
def cache_import(
    obj: Context,
    archive: Path,
    drop_untrusted: bool,
    max_size: int | None,
    max_ratio: int | None,
) -> None:
    """Check an archive from `cache export` (every hash, every path, every build record's
    signature, its unpacked size) and add it to the cache."""
    from wheelhouse.store.archive import ImportLimits, import_archive
    from wheelhouse.store.signing import Keyring

    cfg = obj.config()
    default = ImportLimits()
    limits = ImportLimits(
        max_size=default.max_size if max_size is None else int(max_size),
        max_ratio=default.max_ratio if max_ratio is None else max_ratio,
    )
    r = import_archive(
        cfg.cache_dir,
        archive,
        keyring=Keyring.of(cfg),
        drop_untrusted=drop_untrusted,
        limits=limits,
    )
    for what in r.dropped:
        click.echo(f"untrusted record, not imported: {what}", err=True)
    click.echo(f"imported {archive}: {r.blobs} files, {r.records} build records")


@cache_group.command("pubkey")
@click.pass_obj
def cache_pubkey(obj: Context) -> None:
    """Print the public key this machine signs its build records with (made on first use),
    for `[trust] trusted-keys` on the machines that should use its builds."""
    from wheelhouse.store.signing import Keyring

    keyring = Keyring.of(obj.config())
    click.echo(keyring.public_key())
    click.echo(f"key id {keyring.key_id()} (as messages name it)", err=True)


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
@click.option(
    "--rebuild",
    "sample",
    is_flag=False,
    flag_value="3",
    default=None,
    metavar="[N|all]",
    help="Also rebuild N cached source builds picked at random (3 without N; all) in "
    "their builder and compare the bytes: exit 18 when any differs.",
)
@click.pass_obj
def cache_verify(obj: Context, sample: str | None) -> None:
    """Re-hash every entry; drop (and list) corrupt ones and build records no trusted key
    signed, which the next build replaces."""
    from wheelhouse.store import maintain
    from wheelhouse.store.signing import Keyring

    count = _sample(sample)
    cfg = obj.config()
    r = maintain.verify(cfg.cache_dir, keyring=Keyring.of(cfg))
    for what in r.corrupt:
        click.echo(f"corrupt, dropped: {what}")
    for what in r.untrusted:
        click.echo(f"untrusted record, dropped: {what}")
    for what in r.records_dropped:
        click.echo(f"dangling record, dropped: {what}")
    click.echo(f"verified {r.checked} entries: {len(r.corrupt)} corrupt")
    if sample is not None:
        _rebuild(obj, count)


def _sample(value: str | None) -> int | None:
    """--rebuild's N: a count > 0, or None for all."""
    if value is None or value == "all":
        return None
    if not value.isdigit() or int(value) == 0:
        raise click.BadParameter(
            f"{value!r}: expected a number > 0 or 'all'", param_hint="--rebuild"
        )
    return int(value)


def _rebuild(obj: Context, count: int | None) -> None:
    from wheelhouse.build.reproduce import rebuild_sample
    from wheelhouse.errors import BuildError, UntrustedRecordError

    def event(kind: str, msg: str) -> None:
        if kind == "build" or verbose_logging():
            click.echo(f"… {msg}", err=True)

    r = rebuild_sample(obj.config(), engine=obj.engine_factory(), count=count, on_event=event)
    for what in r.skipped:
        click.echo(f"not rebuilt: {what}")
    for b in r.results:
        if b.same:
            click.echo(f"reproduced: {b.record} ({b.wheel}, {b.target}): sha256 {b.cached}")
        else:
            click.echo(
                f"MISMATCH: {b.record} ({b.wheel}, {b.target}): cached sha256 {b.cached}, "
                f"rebuilt sha256 {b.rebuilt}"
            )
    for what in r.failed:
        click.echo(f"rebuild failed: {what}", err=True)
    bad = r.mismatched
    click.echo(
        f"rebuilt {len(r.results) + len(r.failed)} of {r.candidates} cached source builds: "
        f"{len(r.results) - len(bad)} identical, {len(bad)} different, {len(r.failed)} failed"
    )
    if bad:
        raise UntrustedRecordError(
            f"{len(bad)} cached build(s) differ from their rebuild: "
            + ", ".join(f"{b.wheel} ({b.record})" for b in bad),
            hint="either the cached wheel was replaced after it was built (check who can "
            "write to the cache and the signing key) or the package does not build "
            "reproducibly; the entries were left as they are: delete them from "
            f"{obj.config().cache_dir / 'store/built'} to build them again",
        )
    if r.failed:
        raise BuildError(
            f"{len(r.failed)} rebuild(s) failed", hint="see each failure above; rerun with -v"
        )


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
