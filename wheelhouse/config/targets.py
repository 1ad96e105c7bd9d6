"""Targets: the built-in ones, `[index]` and `[targets.<name>]` (a built-in's or `extends`'
fields with the user's over them), checked into `Target`s."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from wheelhouse.config.model import IndexSettings, Target
from wheelhouse.errors import ConfigError
from wheelhouse.tomltable import TableReader, did_you_mean

# -- built-in targets -------------------------------------------------------------------

BUILTIN_TARGETS: dict[str, dict[str, Any]] = {
    "slim": {
        "python-version": "3.12",
        "libc": "glibc",
        "libc-version": "2.36",  # Debian 12 (bookworm), pinned by the image tags below
        "builder-image": "python:3.12-bookworm",
        "final-image": "python:3.12-slim-bookworm",
    },
    "alpine": {
        "python-version": "3.12",
        "libc": "musl",
        "libc-version": "1.2",
        "builder-image": "python:3.12-alpine3.20",
        "final-image": "python:3.12-alpine3.20",
    },
    "gpu": {
        "python-version": "3.12",  # Ubuntu 24.04's python3
        "libc": "glibc",
        "libc-version": "2.39",
        "builder-image": "nvidia/cuda:12.6.3-devel-ubuntu24.04",
        "final-image": "nvidia/cuda:12.6.3-runtime-ubuntu24.04",
        "cuda": "12.6",
        "extra-index-urls": ["https://download.pytorch.org/whl/cu126"],
    },
}

# -- schema -----------------------------------------------------------------------------

INDEX_KEYS = ("index-url", "extra-index-urls", "find-links")
TARGET_KEYS = (
    "extends",
    "python-version",
    "implementation",
    "libc",
    "libc-version",
    "arch",
    "builder-image",
    "final-image",
    "cuda",
    *INDEX_KEYS,
    "no-binary",
    "only-binary",
    "build-env",
    "repair",
    "base-packages",
    "replace-base",
)


def _version_text(r: TableReader, name: str, value: str | None, parts: int) -> str | None:
    if value is None:
        return None
    # python-version may name the patch release too ("3.11.2")
    most = parts + 1 if name == "python-version" else parts
    if not re.fullmatch(r"\d+(\.\d+){" + f"{parts - 1},{most - 1}" + "}", value):
        example = "'3.12' or '3.12.4'" if name == "python-version" else "'2.36'"
        raise r.fail(name, value, f"a version like {example}")
    from packaging.version import InvalidVersion, Version  # imported when first needed

    try:
        Version(value)
    except InvalidVersion:  # pragma: no cover - the regex above already ensures it
        raise r.fail(name, value, "a version") from None
    return value


def _package_list(r: TableReader, name: str) -> tuple[str, ...]:
    items = r.str_list(name)
    if not items:  # the usual case, without importing packaging.utils (and its tags)
        return ()
    from packaging.utils import InvalidName, canonicalize_name

    out = []
    for item in items:
        if item == ":all:":
            out.append(item)
            continue
        try:
            out.append(canonicalize_name(item, validate=True))
        except InvalidName:
            raise r.fail(name, item, "package names or ':all:'") from None
    return tuple(sorted(set(out)))


def _url_list(r: TableReader, name: str) -> tuple[str, ...]:
    urls = r.str_list(name)
    for u in urls:
        _check_location(r, name, u)
    return urls


def _check_location(r: TableReader, name: str, value: str) -> None:
    if not re.match(r"^(https?|file)://", value) and name != "find-links":
        raise r.fail(name, value, "an http(s):// or file:// URL")


def _index(r: TableReader, base: IndexSettings, *, extend: bool) -> IndexSettings:
    given = r.text("index-url")
    if given is not None:  # checked as given: "" must not fall back to PyPI silently
        _check_location(r, "index-url", given)
    index_url = given or base.index_url
    extra = _url_list(r, "extra-index-urls")
    links = r.str_list("find-links")
    if extend:  # per-target lists add to the global ones
        extra = base.extra_index_urls + tuple(u for u in extra if u not in base.extra_index_urls)
        links = base.find_links + tuple(u for u in links if u not in base.find_links)
    return IndexSettings(index_url=index_url, extra_index_urls=extra, find_links=links)


def _target(
    name: str, raw: Mapping[str, Any], source: str, index: IndexSettings, root: Path
) -> Target:
    r = TableReader(raw, f"targets.{name}", source)
    r.check_keys(TARGET_KEYS)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(
            f"{source}: targets.{name}: a target name must be letters, digits, '.', '_', '-'",
            hint="it names files (locks/<target>.txt) and folders",
        )
    for required in ("python-version", "builder-image"):
        if required not in raw:
            raise ConfigError(
                f"{source}: targets.{name}: missing {required!r}",
                hint='set it, or derive from a built-in target with extends = "slim"',
            )
    builder = r.text("builder-image")
    assert builder is not None
    links = []
    for link in _index(r, index, extend=True).find_links:
        # relative find-links folders are relative to the project, as pip would take them
        # from the directory the command runs in
        is_url = re.match(r"^[a-z]+://", link)
        links.append(link if is_url else str((root / link).resolve()))
    target_index = replace(_index(r, index, extend=True), find_links=tuple(links))
    python_version = _version_text(r, "python-version", r.text("python-version"), 2)
    assert python_version is not None
    return Target(
        name=name,
        python_version=".".join(python_version.split(".")[:2]),
        python_full=python_version if python_version.count(".") == 2 else None,
        implementation=r.choice("implementation", ["cp"], "cp"),
        libc=r.choice("libc", ["glibc", "musl"], "glibc"),  # type: ignore[arg-type]
        libc_version=_version_text(r, "libc-version", r.text("libc-version"), 2),
        arch=r.choice("arch", ["x86_64", "aarch64"], "x86_64"),
        builder_image=builder,
        final_image=r.text("final-image") or builder,
        cuda=_version_text(r, "cuda", r.text("cuda"), 2),
        index=target_index,
        no_binary=_package_list(r, "no-binary"),
        only_binary=_package_list(r, "only-binary"),
        build_env=r.str_map("build-env"),
        repair=r.boolean("repair"),
        base_packages=_base_packages(r),
        replace_base=_package_list(r, "replace-base"),
    )


def _base_packages(r: TableReader) -> Literal["inherit", "ignore"] | None:
    """None when unset: inherit if the final image has packages of its own."""
    if r.text("base-packages") is None:
        return None
    return r.choice("base-packages", ["inherit", "ignore"], "inherit")  # type: ignore[return-value]


def _merge_target(name: str, user: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A built-in (or `extends`) target's defaults with the user's fields laid over them."""
    base_name = user.get("extends", name if name in BUILTIN_TARGETS else None)
    if base_name is None:
        return dict(user)
    if base_name not in BUILTIN_TARGETS:
        raise ConfigError(
            f"{source}: targets.{name}.extends = {base_name!r}: not a built-in target",
            hint=did_you_mean(str(base_name), BUILTIN_TARGETS)
            or f"built-in targets: {', '.join(BUILTIN_TARGETS)}",
        )
    merged = copy.deepcopy(BUILTIN_TARGETS[base_name])
    merged.update({k: v for k, v in user.items() if k != "extends"})
    return merged


def read_targets(r: TableReader, root: Path) -> tuple[dict[str, Target], tuple[str, ...]]:
    """`[index]`, every target (the built-ins and the user's) and `default-targets`, from
    the top table's reader `r`."""
    source = r.source
    ir = TableReader(r.table_of("index"), "index", source)
    ir.check_keys(INDEX_KEYS)
    index = _index(ir, IndexSettings(), extend=False)

    targets_raw = r.table_of("targets")
    targets: dict[str, Target] = {}
    for name in sorted(set(BUILTIN_TARGETS) | set(targets_raw)):
        user = targets_raw.get(name, {})
        if not isinstance(user, Mapping):
            raise r.fail(f"targets.{name}", user, "a table")
        TableReader(user, f"targets.{name}", source).check_keys(TARGET_KEYS)
        targets[name] = _target(name, _merge_target(name, user, source), source, index, root)

    defaults = r.str_list("default-targets") or tuple(targets_raw) or ("slim",)
    for name in defaults:
        if name not in targets:
            raise ConfigError(
                f"{source}: default-targets: unknown target {name!r}",
                hint=did_you_mean(name, targets) or f"known: {', '.join(sorted(targets))}",
            )
    return targets, defaults
