"""Which Python a target's lock is resolved for, down to the patch release.

Requires-Python may draw its line inside a minor release (a release needing >=3.11.5), so
"3.11" is not enough: a lock resolved on a 3.11.7 host once pinned what the target's
3.11.2 images could not install, while uv, given "3.11", resolved for 3.11.0. The patch
release comes from the config (`python-version = "3.11.2"`), else from the target's
builder image (the engine's probe, cached by image id). Where neither can tell, the lock
is still made for the minor release alone, and the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wheelhouse.config import Target
from wheelhouse.errors import EngineError, ResolveError

if TYPE_CHECKING:
    from wheelhouse.engine import Engine, ImageInfo


@dataclass(frozen=True, kw_only=True)
class TargetPython:
    version: str  # "3.11.2"; the minor ("3.11") when the patch release is unknown
    unknown_because: str | None = None  # why the patch release is unknown

    @property
    def known(self) -> bool:
        return self.unknown_because is None


def release(version: str) -> str | None:
    """ "3.11.2" of "3.11.2", "3.11.2+" or "3.13.0rc1"; None when there is no patch part."""
    m = re.match(r"\d+\.\d+\.\d+", version)
    return m.group(0) if m else None


def target_python(target: Target, engine: Callable[[], Engine]) -> TargetPython:
    """The config's patch release, else the builder image's (its minor must be the
    target's: another interpreter's patch says nothing about this one)."""
    if target.python_full:
        return TargetPython(version=target.python_full)
    key = f"targets.{target.name}.builder-image"
    try:
        info = engine().probe(target.builder_image, key=key)
    except EngineError as e:  # no engine, engine stopped, image not to be had, no python
        return TargetPython(version=target.python_version, unknown_because=e.message)
    patch = release(info.python_version)
    if info.python_minor != target.python_version or patch is None:
        return TargetPython(
            version=target.python_version,
            unknown_because=f"{key} {target.builder_image} runs Python {info.python_version}",
        )
    return TargetPython(version=patch)


def check_builder(target: Target, info: ImageInfo) -> None:
    """pip-compile in the builder resolves for the builder's interpreter: it must be the
    target's minor release, and its patch release where the config names one."""
    key = f"targets.{target.name}.builder-image"
    have = info.python_minor
    if target.python_full and have == target.python_version:
        have = release(info.python_version) or info.python_version
    wanted = target.python_full or target.python_version
    if have != wanted:
        raise ResolveError(
            f"target {target.name!r} says Python {wanted}, but its builder image "
            f"{target.builder_image} has Python {info.python_version}: pip-compile there "
            f"would resolve for {info.python_version}",
            hint=f'set targets.{target.name}.python-version = "{have}", or point {key} at '
            f"an image with Python {wanted}",
        )


def unknown_note(target: Target, python: TargetPython, resolved_for: str) -> str:
    """What the report says when the patch release could not be known."""
    return (
        f"targets.{target.name}: the patch release of Python {target.python_version} is "
        f"unknown ({python.unknown_because}), so this lock was resolved for Python "
        f"{resolved_for}; another patch release may need other pins (Requires-Python). "
        f'Set targets.{target.name}.python-version = "{target.python_version}.N" to the '
        "final image's `python --version`, or make the engine available to probe it"
    )
