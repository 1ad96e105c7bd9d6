"""`wheelhouse/<target>/`: the wheels (hard links from the store), a lock rewritten with
the hashes of exactly those wheels, and manifest.json.

Updated in an order that keeps the folder valid at every instant: new wheels appear
first (each by temp link + rename), then lock.txt and manifest.json (atomic writes), and
only then are wheels that are no longer wanted removed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelhouse.config import Config, Target
from wheelhouse.fsutil import atomic_write, link_into
from wheelhouse.lock.lockfile import LockFile, Pin
from wheelhouse.store import Blob, BuildRecord

if TYPE_CHECKING:
    from wheelhouse.build.plan import Plan

LOCK_NAME = "lock.txt"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, kw_only=True)
class Output:
    folder: Path
    lock: Path
    manifest: Path
    wheels: dict[str, str]  # project -> how it got here: reused/downloaded/built/cached
    sha256: dict[str, str]  # file name -> sha256 (hard links of verified store entries)
    runtime_packages: tuple[str, ...]


def assemble(
    config: Config,
    target: Target,
    plan: Plan,
    done: dict[str, tuple[Blob, str, BuildRecord | None]],
    *,
    complete: bool,
) -> Output:
    folder = config.output / target.name
    folder.mkdir(parents=True, exist_ok=True)
    pins: list[Pin] = []
    entries: list[dict[str, Any]] = []
    runtime: set[str] = set()
    for item in plan.items:
        if item.pin.name not in done:
            continue  # failed under --keep-going: left out, and the manifest says so
        blob, how, record = done[item.pin.name]
        link_into(blob.path, folder, blob.filename)
        pins.append(
            Pin(
                name=item.pin.name,
                version=item.pin.version,
                hashes=(f"sha256:{blob.sha256}",),
                via=item.pin.via,
            )
        )
        packages = list(record.runtime_packages) if record else []
        runtime.update(packages)
        entries.append(
            {
                "name": item.pin.name,
                "version": item.pin.version,
                "filename": blob.filename,
                "sha256": blob.sha256,
                "size": blob.size,
                "source": how,
                "from": item.dist.link.filename,
                "runtime_packages": packages,
                "provenance": record.to_json() if record else None,
            }
        )
    lock = LockFile(
        target=target.name,
        target_description=target.describe(),
        inputs_digest=f"wheels of {config.rel(config.locks / (target.name + '.txt'))}",
        pins=tuple(pins),
    )
    atomic_write(folder / LOCK_NAME, lock.render())
    manifest = {
        "target": target.name,
        "description": target.describe(),
        "complete": complete,
        "missing": sorted(i.pin.spec for i in plan.items if i.pin.name not in done),
        "runtime_packages": sorted(runtime),
        "wheels": entries,
    }
    atomic_write(folder / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    keep = {e["filename"] for e in entries} | {LOCK_NAME, MANIFEST_NAME}
    for old in folder.iterdir():
        if old.name not in keep and old.is_file() and old.suffix == ".whl":
            old.unlink()
    return Output(
        folder=folder,
        lock=folder / LOCK_NAME,
        manifest=folder / MANIFEST_NAME,
        wheels={e["name"]: e["source"] for e in entries},
        sha256={e["filename"]: e["sha256"] for e in entries},
        runtime_packages=tuple(sorted(runtime)),
    )
