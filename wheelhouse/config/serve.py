"""`[serve]`: `wheelhouse serve`'s options (`ServeSettings`), keyed by its long options.
Imported only when the table is given or `wheelhouse serve` runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelhouse.tomltable import TableReader


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """`[serve]`: every `wheelhouse serve` option (the command line overrides each)."""

    host: str = "127.0.0.1"
    port: int = 8080
    targets: tuple[str, ...] = ()
    workers: int = 1
    upload: bool = False
    password_file: Path | None = None
    max_upload: int = 512 << 20  # bytes
    upstream: str | None = None
    upstream_ttl: float = 600.0
    access_log: bool = True
    # the upstream's policy
    min_age: float = 0.0  # seconds
    exclude_newer: str | None = None  # ISO 8601 date or time
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    # limits
    max_connections: int = 1000  # per worker
    max_header_size: int = 64 << 10  # request line + headers, bytes
    max_headers: int = 100
    max_url: int = 8 << 10
    head_timeout: float = 10.0
    idle_timeout: float = 15.0
    body_timeout: float = 30.0
    auth_failures: int = 5
    auth_window: float = 60.0


SERVE_KEYS = (
    *(k.replace("_", "-") for k in ServeSettings.__dataclass_fields__ if k != "max_upload"),
    "max-upload-size",
)


_SIZE_TEXT = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*")
_AGE_TEXT = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def parse_size(text: str) -> int:
    """Bytes, in powers of 1024 ("512M", "64K"), as the command line takes them."""
    m = _SIZE_TEXT.fullmatch(text)
    if not m:
        raise ValueError(text)
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_"))


def parse_age(text: str) -> float:
    """Seconds ("90", "15s", "10m", "7d", "2w")."""
    m = _AGE_TEXT.fullmatch(text)
    if not m:
        raise ValueError(text)
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return float(m.group(1)) * unit[m.group(2).lower()]


def serve_settings(raw: Mapping[str, Any], source: str, root: Path) -> ServeSettings:
    """`[serve]`: keys are the command's long options (`max-upload-size = "1G"`,
    `min-age = "7d"`, `upstream = "https://..."`); sizes and ages as on the command line."""
    r = TableReader(TableReader(raw, "", source).table_of("serve"), "serve", source)
    r.check_keys(SERVE_KEYS)
    d = ServeSettings()
    t = r.table

    def number(name: str, default: float, *, whole: bool = False, lowest: float = 1) -> Any:
        value = t.get(name, default)
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value < lowest:
            raise r.fail(name, value, f"{'an integer' if whole else 'a number'} >= {lowest:g}")
        return value

    def unit(name: str, default: float, parse: Any, example: str) -> Any:
        value = t.get(name)
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return value
        try:
            return parse(value) if isinstance(value, str) else parse("")
        except ValueError:
            raise r.fail(name, value, f"a number or a string like {example}") from None

    password = r.text("password-file")
    exclude = r.text("exclude-newer")
    if exclude is not None:
        from datetime import datetime

        try:
            datetime.fromisoformat(exclude)
        except ValueError:
            raise r.fail("exclude-newer", exclude, 'an ISO 8601 date, e.g. "2026-01-31"') from None
    return ServeSettings(
        host=r.text("host") or d.host,
        port=number("port", d.port, whole=True, lowest=0),
        targets=r.str_list("targets"),
        workers=number("workers", d.workers, whole=True),
        upload=r.boolean("upload", d.upload),
        password_file=(root / password) if password else None,
        max_upload=unit("max-upload-size", d.max_upload, parse_size, '"512M"'),
        upstream=r.text("upstream"),
        upstream_ttl=unit("upstream-ttl", d.upstream_ttl, parse_age, '"10m"'),
        access_log=r.boolean("access-log", d.access_log),
        min_age=unit("min-age", d.min_age, parse_age, '"7d"'),
        exclude_newer=exclude,
        allow=r.str_list("allow"),
        deny=r.str_list("deny"),
        max_connections=number("max-connections", d.max_connections, whole=True),
        max_header_size=unit("max-header-size", d.max_header_size, parse_size, '"64K"'),
        max_headers=number("max-headers", d.max_headers, whole=True),
        max_url=unit("max-url", d.max_url, parse_size, '"8K"'),
        head_timeout=unit("head-timeout", d.head_timeout, parse_age, '"10s"'),
        idle_timeout=unit("idle-timeout", d.idle_timeout, parse_age, '"15s"'),
        body_timeout=unit("body-timeout", d.body_timeout, parse_age, '"30s"'),
        auth_failures=number("auth-failures", d.auth_failures, whole=True),
        auth_window=unit("auth-window", d.auth_window, parse_age, '"1m"'),
    )
