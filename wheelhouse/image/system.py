"""The runtime system packages of a final stage, fetched ahead so the stage installs them
with no network: the final image's own distro packages with their dependency closure
against what that image already has, computed and downloaded in a throwaway container of
the final image (apt: `apt-get install --download-only`; apk: `apk add --simulate`, then
`apk fetch` of exactly those), stored by sha256 in the store and placed in
`<output>/<target>/.system/` with `packages.json` (name, sha256, size of each file).

The same container maps the sonames the wheels need and the image lacks (elf.py) to the
package that provides each (`SonameLookup`), so they are fetched in the same closure.

What was fetched for an (image id, packages, sonames) is remembered in
`<cache>/system/<key>.json`: a second `wheelhouse dockerfile` starts no container.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from wheelhouse._scripts import script
from wheelhouse.engine import FIND_PYTHON, Mount
from wheelhouse.errors import EngineError, SystemPackageError
from wheelhouse.fsutil import atomic_write, link_into

if TYPE_CHECKING:
    from wheelhouse.engine import Engine
    from wheelhouse.store import Store

SYSTEM_DIR = ".system"  # <output>/<target>/.system/: the package files, packages.json
LIST_NAME = "packages.json"
SUFFIXES = {"apt": ".deb", "apk": ".apk"}
RECORD_VERSION = "1"
_SONAME = re.compile(r"(?P<name>.+?)\.so\.(?P<version>[0-9][0-9.]*)")


class SonameLookup(Protocol):
    """Which distro packages may provide a soname, best first. The default follows the
    distros' naming rules; a file-index lookup (the distro's Contents index) plugs in
    here with the same signature."""

    def __call__(self, soname: str, family: str) -> tuple[str, ...]: ...


def naming_policy(soname: str, family: str) -> tuple[str, ...]:
    """apk: the `so:` provider name every Alpine package declares. apt: Debian's
    library-package naming policy (libgomp.so.1 -> libgomp1, libldap-2.5.so.0 ->
    libldap-2.5-0: a dash when the name ends in a digit), and the 64-bit time_t
    transition's `t64` variant (Debian 13, Ubuntu 24.04)."""
    if family == "apk":
        return (f"so:{soname}",)
    m = _SONAME.fullmatch(soname)
    if not m:
        return ()
    name, version = m.group("name").lower().replace("_", "-"), m.group("version")
    base = f"{name}{'-' if name[-1].isdigit() else ''}{version}"
    return (base, f"{base}t64")


def with_file_index(engine: Engine, image: str, *, logs: Path) -> SonameLookup:
    """The package that ships the soname by `image`'s own file index (build/provides.py:
    Debian's Contents, read in a lookup image built once per image id, only when a wheel
    needs a library the image lacks), then the naming rules; the rules alone where the
    index cannot be read (a mirror whose Contents do not match its Release file)."""

    def lookup(soname: str, family: str) -> tuple[str, ...]:
        rules = naming_policy(soname, family)
        if family == "apk":  # `so:` provider names are apk's index already
            return rules
        from wheelhouse.build.discover import Need
        from wheelhouse.build.provides import find_providers

        try:
            found = find_providers(engine, image, [Need(kind="soname", name=soname)], logs=logs)
        except EngineError:
            return rules
        first = [p for p in found.values() if p]
        return tuple(dict.fromkeys([*first, *rules]))

    return lookup


@dataclass(frozen=True, kw_only=True)
class SystemFile:
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True, kw_only=True)
class SystemPackages:
    family: str
    requested: tuple[str, ...]  # the runtime packages asked for, and the sonames' packages
    files: tuple[SystemFile, ...]  # the closure's package files, in .system/
    sonames: tuple[tuple[str, str | None], ...]  # (soname the image lacks, its package)

    @property
    def unmapped(self) -> tuple[str, ...]:
        return tuple(s for s, p in self.sonames if p is None)


def _key(image_id: str, family: str, packages: tuple[str, ...], wanted: object) -> str:
    doc = json.dumps([RECORD_VERSION, image_id, family, packages, wanted], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def _command(family: str) -> str:
    """The throwaway container's shell program: refresh the index, map the sonames,
    download the closure into /out/pkgs, hand the files to the caller's uid."""
    find = f'{FIND_PYTHON}; extra=$("$PY" -c "$WHEELHOUSE_SYSLIBS")'
    sonames = f'extra=""; if [ "$WHEELHOUSE_SONAMES" != "{{}}" ]; then {find}; fi'
    # (ruff's S608 reads "update ... set" as SQL: these are shell programs)
    if family == "apt":
        fetch = (
            "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >&2; "  # noqa: S608
            f"{sonames}; mkdir -p /out/pkgs/partial; "
            "set -- $WHEELHOUSE_PACKAGES $extra; if [ $# -gt 0 ]; then "
            "apt-get install --download-only -y --no-install-recommends "
            '-o Dir::Cache::archives=/out/pkgs "$@" >&2; fi; '
            "rm -rf /out/pkgs/partial /out/pkgs/lock"
        )
    else:
        fetch = (
            f"apk update >&2; {sonames}; mkdir -p /out/pkgs; "  # noqa: S608
            "set -- $WHEELHOUSE_PACKAGES $extra; if [ $# -gt 0 ]; then "
            'names=$(apk add --simulate --no-cache "$@" | '
            "sed -n 's/^([0-9]*\\/[0-9]*) Installing \\([^ ]*\\) .*/\\1/p'); "
            '[ -z "$names" ] || apk fetch --no-cache -o /out/pkgs $names >&2; fi'
        )
    return f'set -e; {fetch}; chown -R "$WHEELHOUSE_OWNER" /out'


def fetch_system(
    engine: Engine,
    store: Store,
    *,
    image: str,
    family: str,
    packages: tuple[str, ...],
    needs: Mapping[str, tuple[str, ...]],
    lookup: SonameLookup = naming_policy,
    cache_dir: Path,
    what: str,
) -> SystemPackages:
    """Fetch `packages` and the packages of the sonames in `needs` that the image lacks,
    with their closure against the image; nothing to fetch: no container."""
    if family not in SUFFIXES or (not packages and not needs):
        return SystemPackages(family=family, requested=packages, files=(), sonames=())
    image_id = engine.image_id(image, key=what)
    wanted = {so: list(lookup(so, family)) for so in sorted(needs)}
    record = cache_dir / "system" / f"{_key(image_id, family, packages, wanted)}.json"
    known = _remembered(record, store, family)
    if known is not None:
        return known
    tmp = store.tempdir("system-")
    try:
        env = {
            "WHEELHOUSE_PACKAGES": " ".join(packages),
            "WHEELHOUSE_SONAMES": json.dumps(wanted, sort_keys=True),
            "WHEELHOUSE_SONAMES_OUT": "/out/sonames.json",
            "WHEELHOUSE_SYSLIBS": script("syslibs"),
            "WHEELHOUSE_OWNER": f"{os.getuid()}:{os.getgid()}",
        }
        command = ["sh", "-c", _command(family)]
        mounts = [Mount(source=tmp, target="/out", read_only=False)]
        # the one container that reaches the network: the distro's mirror, as the
        # image's own package manager is configured
        with engine.container(
            image_id, command, env=env, mounts=mounts, network="default", user="0"
        ) as c:
            res = c.run(key="build")
        if not res.ok:
            raise SystemPackageError(
                f"{what}: cannot fetch the runtime system packages "
                f"{' '.join(packages) or '(for missing libraries)'} for the final image "
                f"{image}:\n{res.tail(8)}",
                hint="check the package names (recipes' [runtime], manifest.json) exist in "
                "the final image's distro release, and that the image reaches its mirror",
            )
        found = json.loads((tmp / "sonames.json").read_text()) if needs else {}
        files = []
        for path in sorted((tmp / "pkgs").glob(f"*{SUFFIXES[family]}")):
            blob = store.put(path, path.name)
            files.append(SystemFile(filename=blob.filename, sha256=blob.sha256, size=blob.size))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = SystemPackages(
        family=family,
        requested=tuple(sorted({*packages, *(p for p in found.values() if p)})),
        files=tuple(files),
        sonames=tuple(
            sorted((str(k), v if isinstance(v, str) else None) for k, v in found.items())
        ),
    )
    atomic_write(record, json.dumps(_doc(result), sort_keys=True), durable=False)
    return result


def _doc(result: SystemPackages) -> dict[str, object]:
    return {
        "family": result.family,
        "requested": list(result.requested),
        "files": [vars(f) for f in result.files],
        "sonames": [list(s) for s in result.sonames],
    }


def _remembered(record: Path, store: Store, family: str) -> SystemPackages | None:
    try:
        doc = json.loads(record.read_text())
        files = tuple(SystemFile(**f) for f in doc["files"])
        result = SystemPackages(
            family=family,
            requested=tuple(map(str, doc["requested"])),
            files=files,
            sonames=tuple((str(s), p if isinstance(p, str) else None) for s, p in doc["sonames"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if all(store.get(f.sha256) is not None for f in files):
        return result
    return None


def place(store: Store, folder: Path, result: SystemPackages) -> Path | None:
    """The package files in `<folder>/.system/` (hard links from the store) with
    packages.json; none: the folder is removed. Returns the folder."""
    dest = folder / SYSTEM_DIR
    if not result.files:
        shutil.rmtree(dest, ignore_errors=True)
        return None
    dest.mkdir(parents=True, exist_ok=True)
    for f in result.files:
        blob = store.get(f.sha256)
        if blob is None:  # checked just before; gone meanwhile (a prune)
            raise SystemPackageError(
                f"{f.filename} left the store while wheelhouse placed it",
                hint="rerun `wheelhouse dockerfile`",
            )
        link_into(blob.path, dest, f.filename)
    wanted = {f.filename for f in result.files} | {LIST_NAME}
    for old in dest.iterdir():
        if old.name not in wanted and old.is_file():
            old.unlink()
    atomic_write(dest / LIST_NAME, json.dumps(_doc(result), indent=2, sort_keys=True) + "\n")
    return dest
