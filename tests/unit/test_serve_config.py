"""The `[serve]` table of wheelhouse.toml (issue 17): every serve option, sizes and ages
as on the command line, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelhouse.config import ServeSettings, serve_settings
from wheelhouse.errors import ConfigError


def read(table: dict[str, object]) -> ServeSettings:
    return serve_settings({"serve": table}, "wheelhouse.toml", Path("/project"))


def test_defaults_without_a_table() -> None:
    assert serve_settings({}, "wheelhouse.toml", Path("/p")) == ServeSettings()


def test_every_option_and_limit() -> None:
    got = read(
        {
            "host": "0.0.0.0",
            "port": 9000,
            "targets": ["slim"],
            "workers": 2,
            "upload": True,
            "password-file": "users.txt",
            "max-upload-size": "1G",
            "upstream": "https://pypi.org/simple/",
            "upstream-ttl": "10m",
            "access-log": False,
            "min-age": "7d",
            "exclude-newer": "2026-01-31",
            "allow": ["requests", "urllib3"],
            "deny": "evil*",
            "max-connections": 500,
            "max-header-size": "32K",
            "max-headers": 50,
            "max-url": "4K",
            "head-timeout": "5s",
            "idle-timeout": 20,
            "body-timeout": "1m",
            "auth-failures": 3,
            "auth-window": "2m",
        }
    )
    assert got.password_file == Path("/project/users.txt")
    assert (got.max_upload, got.upstream_ttl, got.min_age) == (1 << 30, 600.0, 7 * 86400.0)
    assert (got.max_header_size, got.max_url, got.head_timeout) == (32 << 10, 4 << 10, 5.0)
    assert (got.body_timeout, got.auth_window, got.idle_timeout) == (60.0, 120.0, 20)
    assert got.deny == ("evil*",) and got.allow == ("requests", "urllib3")
    assert (got.workers, got.port, got.upload, got.access_log) == (2, 9000, True, False)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"min-age": "soon"}, "serve.min-age = 'soon'"),
        ({"exclude-newer": "yesterday"}, "serve.exclude-newer"),
        ({"workers": 0}, "serve.workers = 0"),
        ({"port": "80"}, "serve.port"),
        ({"max-connections": 1.5}, "serve.max-connections"),
        ({"mni-age": "7d"}, "unknown key 'serve.mni-age'"),
        ({"upload": "yes"}, "serve.upload"),
    ],
)
def test_errors_name_the_key(table: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        read(table)
    assert says in err.value.message and "wheelhouse.toml" in err.value.message
