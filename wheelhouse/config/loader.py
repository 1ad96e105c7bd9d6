"""Loading: find the file, apply `--set` overrides and the environment, and read each
table into the model (the tables' own modules check their keys and values)."""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelhouse.config.model import (
    CONFIG_FILE,
    PYPI,
    Config,
    TrustSettings,
)
from wheelhouse.config.targets import read_targets
from wheelhouse.config.timeouts import read_timeouts
from wheelhouse.errors import ConfigError
from wheelhouse.tomltable import TableReader, read_toml

if TYPE_CHECKING:
    from wheelhouse.config.serve import ServeSettings
    from wheelhouse.config.store import StoreSettings

TOP_KEYS = (
    "inputs",
    "constraints",
    "output",
    "locks",
    "cache-dir",
    "resolver",
    "engine",
    "ca-bundle",
    "tools-index-url",
    "default-targets",
    "index",
    "targets",
    "store",
    "trust",
    "timeouts",
    "serve",
)


def _cwd() -> Path:
    try:
        return Path.cwd()
    except FileNotFoundError:  # (a shell still in a folder that was removed)
        raise ConfigError(
            "the current folder no longer exists: it was removed or replaced since this "
            "shell entered it",
            hint="cd into the project folder again, or pass -C PROJECT",
        ) from None


def find_config(root: Path) -> tuple[Path | None, dict[str, Any]]:
    """wheelhouse.toml wins over pyproject.toml's [tool.wheelhouse]."""
    wt = root / CONFIG_FILE
    if wt.is_file():
        return wt, read_toml(wt)
    pp = root / "pyproject.toml"
    if pp.is_file():
        data = read_toml(pp)
        table = data.get("tool", {}).get("wheelhouse")
        if table is not None:
            return pp, table
    return None, {}


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`--set targets.slim.builder-image=img:tag`: a TOML array/table/quoted string/bool,
    else the text as a string (so `python-version=3.12` is "3.12", not a float)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE", hint="e.g. --set resolver=uv")
        value: Any = text
        if text.strip()[:1] in ("[", "{", '"', "'") or text.strip() in ("true", "false"):
            try:
                value = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"--set {item!r}: not a TOML value: {e}") from None
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a table")
        node[parts[-1]] = value
    return raw


def load(
    root: Path | None = None,
    *,
    config_file: Path | None = None,
    overrides: Sequence[str] = (),
    engine: str | None = None,
    store: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    env = os.environ if environ is None else environ
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"{config_file}: no such config file", hint="run `wheelhouse init`")
        root = config_file.resolve().parent
        raw = read_toml(config_file)
        if config_file.name == "pyproject.toml":
            raw = raw.get("tool", {}).get("wheelhouse", {})
        source_path: Path | None = config_file.resolve()
    else:
        root = (root or _cwd()).resolve()
        source_path, raw = find_config(root)
    source = source_path.name if source_path else CONFIG_FILE
    if source_path and source_path.name == "pyproject.toml":
        source = "pyproject.toml [tool.wheelhouse]"
    raw = apply_overrides(raw, overrides)
    config = _build(root, source_path, source, raw, engine, env)
    return replace(
        config,
        store=_store(raw, source, store or env.get("WHEELHOUSE_STORE")),
        trust=_trust(raw, source, root, env),
        serve=_serve(raw, source, root),
    )


# The optional tables: each one's module (its checks, its patterns) is imported only when
# the table (or its environment variable) is given; without it, its defaults are what the
# module would have read.


def _store(raw: Mapping[str, Any], source: str, override: str | None) -> StoreSettings | None:
    if "store" not in raw and not override:
        return None
    from wheelhouse.config.store import store_settings

    return store_settings(raw, source, override)


def _trust(
    raw: Mapping[str, Any], source: str, root: Path, env: Mapping[str, str]
) -> TrustSettings:
    from_env = ("WHEELHOUSE_TRUSTED_KEYS", "WHEELHOUSE_SIGNING_KEY")
    if "trust" not in raw and not any(env.get(name) for name in from_env):
        return TrustSettings()
    from wheelhouse.config.trust import trust_settings

    return trust_settings(raw, source, root, env)


def _serve(raw: Mapping[str, Any], source: str, root: Path) -> ServeSettings | None:
    if "serve" not in raw:
        return None
    from wheelhouse.config.serve import serve_settings

    return serve_settings(raw, source, root)


def _build(
    root: Path,
    source_path: Path | None,
    source: str,
    raw: Mapping[str, Any],
    engine: str | None,
    env: Mapping[str, str],
) -> Config:
    r = TableReader(raw, "", source)
    r.check_keys(TOP_KEYS)
    targets, defaults = read_targets(r, root)

    inputs = r.str_list("inputs")
    if not inputs:
        if (root / "requirements.in").is_file():
            inputs = ("requirements.in",)
        elif (root / "pyproject.toml").is_file():
            inputs = ("pyproject.toml",)
        else:
            inputs = ("requirements.in",)  # reported as missing when locking

    configured_cache = r.text("cache-dir")  # validated even when the env var wins
    cache = env.get("WHEELHOUSE_CACHE_DIR") or configured_cache
    cache_dir = Path(cache).expanduser() if cache else None
    configured_ca = r.text("ca-bundle")
    ca_path: Path | None = None
    if configured_ca:  # relative to the project, like every other path in the config
        ca_path = Path(configured_ca).expanduser()
        ca_path = ca_path if ca_path.is_absolute() else root / ca_path
    else:
        from_env = env.get("PIP_CERT") or env.get("REQUESTS_CA_BUNDLE") or env.get("SSL_CERT_FILE")
        ca_path = Path(from_env) if from_env else None
    if ca_path and not ca_path.is_file():
        where = "ca-bundle" if configured_ca else "PIP_CERT/REQUESTS_CA_BUNDLE/SSL_CERT_FILE"
        raise ConfigError(
            f"{source}: {where} = {str(ca_path)!r}: no such file",
            hint="point it at a PEM CA bundle",
        )

    return Config(
        root=root,
        source=source_path,
        inputs=tuple(root / p for p in inputs),
        constraints=tuple(root / p for p in r.str_list("constraints")),
        output=root / (r.text("output") or "wheelhouse"),
        locks=root / (r.text("locks") or "locks"),
        cache_folder=root / cache_dir if cache_dir is not None else None,
        resolver=r.choice("resolver", ["pip", "uv"], "pip"),  # type: ignore[arg-type]
        engine=engine or env.get("WHEELHOUSE_ENGINE") or r.text("engine") or "docker",
        ca_bundle=ca_path.resolve() if ca_path else None,
        tools_index_url=r.text("tools-index-url") or PYPI,
        default_targets=defaults,
        targets=targets,
        timeouts=read_timeouts(r.table_of("timeouts"), source),
    )
