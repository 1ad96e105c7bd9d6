"""What the final stage needs from the system, gathered for `wheelhouse dockerfile`: the
shared libraries every platform wheel of the wheelhouse needs (elf.py) that the final
image lacks, mapped to the distro packages that provide them, fetched with the runtime
packages into `.system/` (system.py); and the final check's program and soname map in
`.tools/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse._scripts import script
from wheelhouse.config import Config, Target
from wheelhouse.fsutil import atomic_write
from wheelhouse.image.elf import cached_needs, is_platform_wheel, outside_needs
from wheelhouse.image.stage import CHECK_SCRIPT, LIBRARIES_NAME, TOOLS_DIR
from wheelhouse.image.system import (
    SonameLookup,
    fetch_system,
    naming_policy,
    place,
    with_file_index,
)

if TYPE_CHECKING:
    from wheelhouse.engine import Engine
    from wheelhouse.image.manifest import Manifest


def wheel_needs(config: Config, folder: Path, manifest: Manifest) -> dict[str, tuple[str, ...]]:
    """soname -> the wheel files needing it, for what no wheel here carries."""
    from wheelhouse.store import sha256_file

    needs = []
    for entry in manifest.wheels:
        path = folder / entry.filename
        if is_platform_wheel(entry.filename) and path.is_file():
            # the manifest's hash saves hashing a 2 GB wheel; the cache is keyed by it
            sha256 = entry.sha256 or sha256_file(path)
            needs.append(cached_needs(path, sha256, config.cache_dir))
    return outside_needs(needs)


def fetch_runtime(
    config: Config,
    target: Target,
    folder: Path,
    engine: Engine,
    *,
    family: str,
    packages: tuple[str, ...],
    manifest: Manifest,
    lookup: SonameLookup,
    python: bool,
    notes: list[str],
) -> tuple[tuple[str, ...], str | None]:
    """(the runtime packages, now with the missing libraries' packages; the folder of
    their files relative to `folder`, None when there is nothing to install)."""
    from wheelhouse.store import Store

    needs = wheel_needs(config, folder, manifest) if python else {}
    store = Store(config.cache_dir)
    if lookup is naming_policy:  # the distro's own file index first, its naming rules after
        lookup = with_file_index(engine, target.final_image, logs=store.root / "logs")
    result = fetch_system(
        engine,
        store,
        image=target.final_image,
        family=family,
        packages=packages,
        needs=needs,
        lookup=lookup,
        cache_dir=config.cache_dir,
        what=f"targets.{target.name}.final-image",
    )
    libraries = {so: (lookup(so, family) or ("",))[0] for so in needs}
    for soname, package in result.sonames:
        if package:
            libraries[soname] = package
            notes.append(
                f"the wheels need {soname}, which {target.final_image} lacks: added {package} "
                f"(needed by {needs[soname][0]})"
            )
        else:
            notes.append(
                f"the wheels need {soname}, which {target.final_image} lacks, and no "
                f"{family} package for it was found (needed by {needs[soname][0]}): the "
                "final stage's check will fail; add its package to a recipe's [runtime]"
            )
    write_check(folder, {k: v for k, v in libraries.items() if v})
    placed = place(store, folder, result)
    if placed is None:  # the image has every package already: nothing to install
        if result.requested:
            notes.append(f"{target.final_image} has {' '.join(result.requested)} already")
        return (), None
    return result.requested, placed.relative_to(folder).as_posix()


def write_check(folder: Path, libraries: dict[str, str]) -> None:
    """The check's program and its soname -> package map, in .tools/."""
    tools = folder / TOOLS_DIR
    tools.mkdir(parents=True, exist_ok=True)
    atomic_write(tools / CHECK_SCRIPT, script("check_env"), durable=False)
    atomic_write(
        tools / LIBRARIES_NAME,
        json.dumps(libraries, indent=2, sort_keys=True) + "\n",
        durable=False,
    )
