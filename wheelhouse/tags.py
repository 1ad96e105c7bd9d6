"""The wheel tags a target accepts, computed with `packaging.tags` from target properties.

pip's `--platform manylinux_2_36_x86_64` does not imply older manylinux tags (pip issue
10760), so tag lists are always spelled out in full here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from packaging.tags import Tag, compatible_tags, cpython_tags

from wheelhouse.config import Target
from wheelhouse.errors import ConfigError

# PEP 600 legacy aliases, listed right after the tag they alias, as packaging does
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def platforms(libc: str, libc_version: str, arch: str) -> list[str]:
    """Most specific first: manylinux_2_36 ... manylinux_2_17 (and aliases), linux_<arch>."""
    major, minor = (int(p) for p in libc_version.split(".")[:2])
    out: list[str] = []
    if libc == "glibc":
        # glibc 2.5 was the oldest manylinux for x86; other arches start at 2.17
        floor = 5 if arch in ("x86_64", "i686") else 17
        for m in range(minor, floor - 1, -1):
            out.append(f"manylinux_{major}_{m}_{arch}")
            if (major, m) in _LEGACY:
                out.append(f"{_LEGACY[(major, m)]}_{arch}")
    else:
        out.extend(f"musllinux_{major}_{m}_{arch}" for m in range(minor, -1, -1))
    out.append(f"linux_{arch}")
    return out


@cache
def target_tags(target: Target) -> tuple[Tag, ...]:
    """Tags in pip's order of preference for the target's interpreter and platform."""
    if target.libc_version is None:
        raise ConfigError(
            f"target {target.name!r}: libc-version is not known",
            hint=f"set targets.{target.name}.libc-version, or let wheelhouse probe the image",
        )
    plats = platforms(target.libc, target.libc_version, target.arch)
    version = target.python_tuple
    interp = f"cp{version[0]}{version[1]}"  # config admits CPython only, for now
    tags = list(cpython_tags(version, [interp], plats))
    tags += list(compatible_tags(version, interp, plats))
    return tuple(tags)


@cache
def tag_ranks(target: Target) -> Mapping[Tag, int]:
    """Each of the target's tags by its position in `target_tags` (lower is better)."""
    return MappingProxyType({t: i for i, t in enumerate(target_tags(target))})
