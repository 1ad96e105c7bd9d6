"""Configuration: `wheelhouse.toml` or `[tool.wheelhouse]`, validated into frozen dataclasses.

Every error names the file, the dotted key, quotes the bad value and says what to do, in
the style of pypa/packaging: the config is data, validation is strict, unknown keys are
errors (with a "did you mean"), because a typo silently ignored is a wrong build later.

The package, by responsibility (each module imports only those below it; pyproject's
import contracts check it):

- `loader.py` — `load()`: find the file, apply `--set` and the environment, read each table;
- `targets.py` — the built-in targets, `[index]`, `[targets.<name>]`, `default-targets`;
  `store.py`, `trust.py`, `serve.py` — the optional tables, imported only when given;
  `starter.py` — the file `wheelhouse init` writes;
- `timeouts.py` — `[timeouts]` and the durations other tables share;
- `model.py` — the dataclasses (`Config`, `Target`, ...), what the rest of wheelhouse uses.

Everything public is importable from here, as `from wheelhouse.config import Config`; the
optional tables' names are imported on first access (PEP 562), so that importing
wheelhouse.config costs only what every command needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from wheelhouse.config.loader import TOP_KEYS, apply_overrides, find_config, load
from wheelhouse.config.model import (
    CONFIG_FILE,
    PYPI,
    Config,
    IndexSettings,
    Libc,
    Resolver,
    Target,
    Timeouts,
    TrustSettings,
)
from wheelhouse.config.targets import BUILTIN_TARGETS, INDEX_KEYS, TARGET_KEYS
from wheelhouse.config.timeouts import TIMEOUT_KEYS, seconds

if TYPE_CHECKING:
    from wheelhouse.config.serve import (
        SERVE_KEYS,
        ServeSettings,
        parse_age,
        parse_size,
        serve_settings,
    )
    from wheelhouse.config.starter import STARTER
    from wheelhouse.config.store import STORE_KEYS, StoreSettings, parse_s3_url
    from wheelhouse.config.trust import PUBLIC_KEY, TRUST_KEYS

# the names imported on first access, and their modules
_LAZY = {
    "SERVE_KEYS": "serve",
    "ServeSettings": "serve",
    "parse_age": "serve",
    "parse_size": "serve",
    "serve_settings": "serve",
    "STARTER": "starter",
    "STORE_KEYS": "store",
    "StoreSettings": "store",
    "parse_s3_url": "store",
    "PUBLIC_KEY": "trust",
    "TRUST_KEYS": "trust",
}

__all__ = [
    "BUILTIN_TARGETS",
    "CONFIG_FILE",
    "INDEX_KEYS",
    "PUBLIC_KEY",
    "PYPI",
    "SERVE_KEYS",
    "STARTER",
    "STORE_KEYS",
    "TARGET_KEYS",
    "TIMEOUT_KEYS",
    "TOP_KEYS",
    "TRUST_KEYS",
    "Config",
    "IndexSettings",
    "Libc",
    "Resolver",
    "ServeSettings",
    "StoreSettings",
    "Target",
    "Timeouts",
    "TrustSettings",
    "apply_overrides",
    "find_config",
    "load",
    "parse_age",
    "parse_s3_url",
    "parse_size",
    "seconds",
    "serve_settings",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value
