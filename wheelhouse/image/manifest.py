"""What the image stage reads of a wheelhouse's manifest.json (written by
build/assemble.py, whose format this does not change): a typed, read-only view, made
once at the border, so nothing after it handles the raw JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from wheelhouse.build.assemble import LOCK_NAME, MANIFEST_NAME
from wheelhouse.config import Config
from wheelhouse.errors import InputError


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A complete wheelhouse's manifest (an incomplete one is refused on reading)."""

    path: Path
    # The runtime system packages as the file lists them, not yet checked: they are
    # checked as package names where they are used (dockerfile.runtime_packages), after
    # the final image is probed, so a wrong image is reported before a bad manifest value.
    runtime_packages: tuple[object, ...]
    # The wheels built from source here (those with a build provenance), by project
    # name: the ones whose recipes' runtime packages the final image needs. A downloaded
    # wheel carries its libraries.
    built: tuple[str, ...]
    # `base-packages = "inherit"`: the pins the final image provides ("numpy==1.26.4"),
    # not in the folder, and the base packages the lock replaces ("numpy 1.26.4 -> 2.1.3")
    base: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    # The wheels (project name, file name, size): what the install layers split.
    wheels: tuple[WheelEntry, ...] = ()


@dataclass(frozen=True, kw_only=True)
class WheelEntry:
    name: str
    filename: str
    size: int
    sha256: str = ""  # as the manifest records it ("" when it does not)


def read_manifest(config: Config, folder: Path) -> Manifest:
    """The manifest of the wheelhouse in `folder`; an InputError when there is none (or no
    lock beside it), when it is not a manifest, or when the wheelhouse is incomplete."""
    path = folder / MANIFEST_NAME
    if not (folder / LOCK_NAME).is_file() or not path.is_file():
        raise InputError(
            f"no wheelhouse in {config.rel(folder)}/ (no {LOCK_NAME} / {MANIFEST_NAME})",
            hint=f"run `wheelhouse build -t {folder.name}` first",
        )
    try:
        data = json.loads(path.read_text())
        complete, missing = bool(data["complete"]), list(data.get("missing", []))
        runtime, wheels = data["runtime_packages"], data["wheels"]
        if not isinstance(runtime, list) or not isinstance(wheels, list):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"{config.rel(path)}: not a wheelhouse manifest",
            hint=f"rerun `wheelhouse build -t {folder.name}`",
        ) from None
    if not complete:
        raise InputError(
            f"{config.rel(folder)} is incomplete: missing {', '.join(map(str, missing))}",
            hint=f"fix the failed builds and rerun `wheelhouse build -t {folder.name}`",
        )
    # An entry that is not an object, or has no name or no provenance, names no recipe
    # to apply: skipped, not refused.
    built = tuple(
        str(entry["name"])
        for entry in wheels
        if isinstance(entry, dict) and entry.get("provenance") and entry.get("name")
    )
    entries = tuple(
        WheelEntry(
            name=str(e["name"]),
            filename=str(e["filename"]),
            size=int(e.get("size", 0)),
            sha256=str(e.get("sha256") or ""),
        )
        for e in wheels
        if isinstance(e, dict) and e.get("name") and _plain_wheel(e.get("filename"))
    )
    base = data.get("base") if isinstance(data.get("base"), dict) else {}
    provided = tuple(
        f"{p['name']}=={p['version']}"
        for p in base.get("packages", [])
        if isinstance(p, dict) and p.get("name") and p.get("version")
    )
    replaces = tuple(str(r) for r in base.get("replaces", []))
    return Manifest(
        path=path,
        runtime_packages=tuple(runtime),
        built=built,
        base=provided,
        replaces=replaces,
        wheels=entries,
    )


def _plain_wheel(name: object) -> bool:
    """A wheel's file name in the folder: never a path (it is linked into .layers/)."""
    return isinstance(name, str) and name.endswith(".whl") and "/" not in name and name[0] != "."
