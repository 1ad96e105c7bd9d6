"""`wheelhouse/<target>/`: the wheels (hard links from the store), a lock rewritten with
the hashes of exactly those wheels, and manifest.json.

Updated in an order that keeps the folder valid at every instant, even under SIGKILL:
new wheels appear first (each by temp link + rename), then lock.txt and manifest.json
(atomic writes); the indexes are written next (build/session.py), and only then does
`remove_stale` remove the wheels no longer wanted, which no page lists any more. The
caller holds the folder's lock throughout (`fsutil.folder_lock`), so no other run writes
here meanwhile and the temp files a killed run left can be removed first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from wheelhouse.config import Config
from wheelhouse.fsutil import atomic_write, crash_point, link_into, remove_leftovers
from wheelhouse.lock.lockfile import LockFile, Pin
from wheelhouse.store import Blob, BuildRecord, Store

if TYPE_CHECKING:
    from wheelhouse.build.plan import Item, Plan

LOCK_NAME = "lock.txt"
MANIFEST_NAME = "manifest.json"
METADATA_SUFFIX = ".metadata"  # a wheel's PEP 658 sidecar, written by the index
Source = Literal["reused", "downloaded", "cached", "built"]  # how a wheel got here


@dataclass(frozen=True, kw_only=True)
class Placed:
    """What one pin of the plan became: the wheel to place and how it got here."""

    item: Item
    blob: Blob
    source: Source
    record: BuildRecord | None = None  # how it was built (source builds)


@dataclass(frozen=True, kw_only=True)
class Output:
    folder: Path
    lock: Path
    manifest: Path
    wheels: dict[str, Source]  # project -> how it got here
    sha256: dict[str, str]  # file name -> sha256 (hard links of verified store entries)
    runtime_packages: tuple[str, ...]


def _entry(p: Placed) -> dict[str, Any]:
    """The manifest's line for one wheel (its JSON format is the manifest's contract)."""
    return {
        "name": p.item.pin.name,
        "version": p.item.pin.version,
        "filename": p.blob.filename,
        "sha256": p.blob.sha256,
        "size": p.blob.size,
        "source": p.source,
        "from": p.item.dist.link.filename,
        "runtime_packages": list(p.record.runtime_packages) if p.record else [],
        "provenance": p.record.to_json() if p.record else None,
    }


def assemble(
    config: Config, plan: Plan, placed: Mapping[str, Placed], *, complete: bool, store: Store
) -> Output:
    """New wheels, then lock.txt and manifest.json; no removals (`remove_stale`, later).
    Each wheel was checked against its hash (its store stamp) just before."""
    target = plan.target
    folder = config.output / target.name
    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    done = [placed[i.pin.name] for i in plan.items if i.pin.name in placed]
    for p in done:  # new files first
        if link_into(p.blob.path, folder, p.blob.filename):
            store.relinked(p.blob)
    pins = tuple(
        Pin(
            name=p.item.pin.name,
            version=p.item.pin.version,
            hashes=(f"sha256:{p.blob.sha256}",),
            via=p.item.pin.via,
        )
        for p in done
    )
    lock = LockFile(
        target=target.name,
        target_description=target.describe(),
        inputs_digest=f"wheels of {config.rel(config.locks / (target.name + '.txt'))}",
        pins=pins,
    )
    atomic_write(folder / LOCK_NAME, lock.render())
    runtime = sorted({pkg for p in done if p.record for pkg in p.record.runtime_packages})
    manifest = {
        "target": target.name,
        "description": target.describe(),
        "complete": complete,
        # failed under --keep-going: left out, and the manifest says so
        "missing": sorted(i.pin.spec for i in plan.items if i.pin.name not in placed),
        "runtime_packages": runtime,
        "wheels": [_entry(p) for p in done],
    }
    if plan.base or plan.replaces:  # only then: other manifests keep their bytes
        manifest["base"] = {
            # what the final image provides and the app uses: not in this folder; the
            # final stage's environment must see the image's own packages
            "image": target.final_image,
            "packages": [{"name": p.name, "version": p.version} for p in plan.base],
            "replaces": list(plan.replaces),
        }
    atomic_write(folder / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Output(
        folder=folder,
        lock=folder / LOCK_NAME,
        manifest=folder / MANIFEST_NAME,
        wheels={p.item.pin.name: p.source for p in done},
        sha256={p.blob.filename: p.blob.sha256 for p in done},
        runtime_packages=tuple(runtime),
    )


def stale(output: Output) -> list[Path]:
    """The wheels in the folder that lock.txt and manifest.json no longer name."""
    return sorted(
        p
        for p in output.folder.glob("*.whl")
        if p.name not in output.sha256 and p.is_file() and not p.is_symlink()
    )


def remove_stale(output: Output) -> int:
    """Remove the wheels no longer wanted, each with its sidecar. Only once no page lists
    them: the indexes written for this output's wheels, under the locks that keep any
    other index run from listing them again meanwhile (build/session.py)."""
    gone = stale(output)
    for wheel in gone:
        crash_point()
        wheel.unlink(missing_ok=True)
    for sidecar in output.folder.glob(f"*.whl{METADATA_SUFFIX}"):  # also a killed run's
        if not sidecar.with_suffix("").exists():
            sidecar.unlink(missing_ok=True)
    return len(gone)
