"""`wheelhouse publish`: a target's wheelhouse and its static index onto S3-compatible
object storage, ready to serve as a static website or behind a CDN.

Keys are `<prefix>/<target>/<path>`, the folder's own layout, so the index's relative
links (`../../foo-1.0-py3-none-any.whl`) resolve. pip asks for `<index>/<project>/`: a
static bucket serves a key, not a folder's index.html, so every page is also written
under the key that ends in `/` (and the root page under `simple/`).

Incremental and never half-visible: objects whose bytes are already there (same MD5
ETag, or the same sha256 in their metadata) are skipped; wheels, metadata sidecars,
lock.txt and manifest.json go first, then project pages, then the root page, so no page
ever links a file that is not uploaded yet. An upload that fails part way exits 14 with
only whole objects written and no new page linking anything missing; a rerun finishes.
Wheels no longer in the folder are left in the bucket (a cached page may still link
them); delete them by hand or with a lifecycle rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from wheelhouse.config import Config, StoreSettings, Target, parse_s3_url
from wheelhouse.errors import PublishError
from wheelhouse.index.state import SIMPLE
from wheelhouse.store import sha256_file

HTML = "text/html; charset=utf-8"
JSON = "application/vnd.pypi.simple.v1+json"
IMMUTABLE = "public, max-age=31536000, immutable"  # a file name is one set of bytes
PAGES = "no-cache"  # revalidate: a new wheel must show up at once


@dataclass(frozen=True, kw_only=True)
class Upload:
    key: str  # relative to <prefix>/<target>/
    path: Path
    content_type: str
    cache_control: str


@dataclass(frozen=True, kw_only=True)
class PublishReport:
    url: str  # s3://bucket/prefix/target
    index_url: str | None  # http(s) URL of the index, when the endpoint is known
    uploaded: list[str] = field(default_factory=list)
    skipped: int = 0
    bytes: int = 0


def _content_type(rel: str) -> str:
    if rel.endswith(".html"):
        return HTML
    if rel.startswith(f"{SIMPLE}/") and rel.endswith(".json"):
        return JSON
    if rel.endswith(".json"):
        return "application/json"
    if rel.endswith((".txt", ".toml")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"  # wheels and their .metadata sidecars


def plan_uploads(folder: Path) -> tuple[list[Upload], list[Upload], list[Upload]]:
    """(files, project pages, root pages), in the order they must be uploaded."""
    files: list[Upload] = []
    projects: list[Upload] = []
    roots: list[Upload] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in rel.split("/")):
            continue  # index state, temp files, .tools/ (the Dockerfile's pip)
        if path.is_symlink():  # the index makes none: never upload what one points at
            raise PublishError(
                f"{path}: a symbolic link in the folder to publish",
                hint="replace it with the file, or remove it and rerun `wheelhouse index`",
            )
        in_simple = rel.startswith(f"{SIMPLE}/")
        up = Upload(
            key=rel,
            path=path,
            content_type=_content_type(rel),
            cache_control=PAGES if in_simple or rel.endswith((".txt", ".json")) else IMMUTABLE,
        )
        if not in_simple:
            files.append(up)
            continue
        group = roots if rel.count("/") == 1 else projects
        group.append(up)
        if rel.endswith("/index.html"):  # `simple/foo/` as a key, for pip's request
            group.append(replace(up, key=rel[: -len("index.html")]))
    return files, projects, roots


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)  # only to compare with S3's ETag
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def publish_to_bucket(
    config: Config,
    target: Target,
    url: str,
    *,
    endpoint_url: str | None = None,
    on_event: Callable[[str], None] = lambda msg: None,
    workers: int = 8,
) -> PublishReport:
    """Upload the target's written folder and index to `url` (s3://bucket/prefix), files
    before pages (see the module doc). `wheelhouse index` writes what this uploads."""
    from wheelhouse.store.s3 import Bucket

    folder = config.output / target.name
    if not (folder / SIMPLE / "index.html").is_file():
        raise PublishError(
            f"{config.rel(folder)}/{SIMPLE}/ does not exist: nothing to publish for "
            f"target {target.name!r}",
            hint=f"run `wheelhouse build --target {target.name}` first",
        )
    bucket_name, prefix = parse_s3_url(url, where="publish URL")
    base = config.store
    settings = StoreSettings(
        url=url,
        bucket=bucket_name,
        prefix=f"{prefix}/{target.name}".strip("/"),
        endpoint_url=endpoint_url or (base.endpoint_url if base else None),
        region=base.region if base else None,
        timeout=base.timeout if base else 60.0,
    )
    bucket = Bucket(settings)
    files, projects, roots = plan_uploads(folder)
    there = bucket.listing("")
    todo_groups = []
    skipped = 0
    for group in (files, projects, roots):
        todo = []
        for up in group:
            etag = there.get(up.key)
            if etag is not None and etag == _md5(up.path):
                skipped += 1
            else:
                todo.append(up)
        todo_groups.append(todo)
    uploaded: list[str] = []
    size = 0

    def one(up: Upload) -> None:
        bucket.put(
            up.key,
            up.path,
            content_type=up.content_type,
            cache_control=up.cache_control,
            metadata={"sha256": sha256_file(up.path)},
            immutable=False,  # a page's new version replaces the old one
        )
        on_event(f"uploaded {up.key}")

    for todo in todo_groups:  # each group whole before the next: pages never run ahead
        if not todo:
            continue
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for up, fut in [(u, pool.submit(one, u)) for u in todo]:
                fut.result()
                uploaded.append(up.key)
                size += up.path.stat().st_size
    index_url = None
    if settings.endpoint_url:
        index_url = f"{settings.endpoint_url.rstrip('/')}/{bucket_name}/{bucket.key(SIMPLE)}/"
    return PublishReport(
        url=f"s3://{bucket_name}/{settings.prefix}",
        index_url=index_url,
        uploaded=uploaded,
        skipped=skipped,
        bytes=size,
    )
