"""`[store]` (or `store = "s3://..."`): the shared remote store's settings. Imported only
when a store is configured."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wheelhouse.config.timeouts import seconds
from wheelhouse.errors import ConfigError
from wheelhouse.tomltable import TableReader


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    """The shared remote store: `s3://bucket/prefix` on any S3-compatible service.
    Credentials are not here: they come from the standard AWS chain (environment,
    AWS_PROFILE, ~/.aws, an instance role), so they never land in a config file."""

    url: str  # s3://bucket/prefix, as given (normalised: no trailing slash)
    bucket: str
    prefix: str  # "" or "team/wheels" (no leading or trailing slash)
    endpoint_url: str | None = None  # None: AWS, or AWS_ENDPOINT_URL(_S3) from the env
    region: str | None = None
    timeout: float = 60.0  # seconds per connect / read, before a retry


STORE_KEYS = ("url", "endpoint-url", "region", "timeout")

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def parse_s3_url(url: str, *, where: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix); errors name `where` (a key or option)."""
    if not url.startswith("s3://"):
        raise ConfigError(
            f"{where} = {url!r}: expected an s3://bucket/prefix URL",
            hint="e.g. s3://team-wheels/wheelhouse; the service's address goes in endpoint-url",
        )
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"{where} = {url!r}: {bucket!r} is not a valid bucket name",
            hint="3-63 lowercase letters, digits, '.' and '-'",
        )
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"{where} = {url!r}: the prefix has an empty, '.' or '..' part")
    return bucket, prefix


def store_settings(
    raw: Mapping[str, Any], source: str, override: str | None
) -> StoreSettings | None:
    """`store = "s3://bucket/prefix"` or a `[store]` table (url, endpoint-url, region,
    timeout); `--store` / WHEELHOUSE_STORE replace the URL and keep the rest."""
    value = raw.get("store")
    table: Mapping[str, Any] = {}
    if isinstance(value, str):
        table = {"url": value}
    elif isinstance(value, Mapping):
        table = value
    elif value is not None:
        raise TableReader(raw, "", source).fail("store", value, "an s3:// URL or a table")
    r = TableReader(table, "store", source)
    r.check_keys(STORE_KEYS)
    url = override or r.text("url")
    if not url:
        if table:
            raise ConfigError(f"{source}: store: missing 'url'", hint='url = "s3://bucket/prefix"')
        return None
    where = "--store/WHEELHOUSE_STORE" if override else f"{source}: store"
    bucket, prefix = parse_s3_url(url, where=where)
    endpoint = r.text("endpoint-url")
    if endpoint is not None and not re.match(r"^https?://[^/\s]+", endpoint):
        raise r.fail("endpoint-url", endpoint, "an http(s):// URL of the S3-compatible service")
    timeout = seconds(r, "timeout", 60.0)
    return StoreSettings(
        url=f"s3://{bucket}/{prefix}".rstrip("/"),
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        region=r.text("region"),
        timeout=timeout,
    )
