"""Build dependencies, resolved and downloaded on the host as wheels for the *builder's*
interpreter (not the host's), so the build container never needs the network.

PEP 517/518: the sdist's static `build-system.requires`, the recipe's extras, and what
`get_requires_for_build_wheel` asked for in an earlier build of the same sdist (learnt
from the build log and remembered per sdist). A requirement with no wheel anywhere is
built from its sdist first, in the same target's builder, through `from_source`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import threading
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_sdist_filename

from wheelhouse import process
from wheelhouse.config import Config, Target
from wheelhouse.engine import ImageInfo
from wheelhouse.errors import BuildError
from wheelhouse.fsutil import atomic_write, is_complete, publish_dir
from wheelhouse.lock.lockfile import Pin
from wheelhouse.recipes import Recipe
from wheelhouse.store import Blob, Store
from wheelhouse.tags import platforms

# pip's fallback for sdists without [build-system] (PEP 517 names only setuptools; pip
# adds wheel, and legacy setup.py builds ask for it)
PEP517_DEFAULT = ("setuptools>=40.8.0", "wheel")
MISSING = re.compile(r"No matching distribution found for ([^\s]+)")
MAX_CHAIN = 4  # build requirements built from source, nested, before we call it a loop


class _Chain(threading.local):
    def __init__(self) -> None:
        self.stack: list[str] = []


_CHAIN = _Chain()  # build requirements being built from source, per thread

FromSource = Callable[[Pin, Blob], Blob]  # a build requirement's sdist -> its wheel


def is_requirement(text: str) -> bool:
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def missing_requirements(log: str) -> list[str]:
    """What pip found no distribution for, in a build log."""
    return MISSING.findall(log)


def static_build_requires(sdist: Path) -> tuple[str, ...]:
    """[build-system].requires of an sdist's pyproject.toml (PEP 518), without unpacking."""
    data = _read_member(sdist, "pyproject.toml")
    if data is None:
        return PEP517_DEFAULT
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise BuildError(f"{sdist.name}: pyproject.toml is not valid TOML") from None
    system = doc.get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return PEP517_DEFAULT
    reqs = system["requires"]
    if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
        raise BuildError(f"{sdist.name}: build-system.requires must be a list of strings")
    return tuple(reqs)


def _read_member(sdist: Path, name: str) -> bytes | None:
    """The top-level `name` of an sdist (tar.gz or zip): `<project>-<version>/<name>`."""
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as z:
            for n in z.namelist():
                if n.count("/") == 1 and n.endswith("/" + name):
                    return z.read(n)
        return None
    with tarfile.open(sdist) as t:
        for m in t.getmembers():
            if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/" + name):
                f = t.extractfile(m)
                return f.read() if f else None
    return None


class BuildDeps:
    """The build dependencies of one target's source builds."""

    def __init__(
        self, config: Config, target: Target, store: Store, info: Callable[[], ImageInfo]
    ) -> None:
        self.config = config
        self.target = target
        self.store = store
        self._info = info  # the builder's probe, asked only when a folder must be made
        # "numpy==1.26.4": the final image's versions of the lock's packages it provides
        # (`base-packages = "inherit"`): an extension is compiled against the headers of
        # the numpy (torch, ...) it will import at run time, not the index's newest
        self.constraints: tuple[str, ...] = ()

    def requirements(
        self, sdist: Blob, recipe: Recipe | None, static: tuple[str, ...]
    ) -> list[str]:
        """Static requirements, the recipe's extras, and dynamic ones learnt before."""
        reqs = list(static)
        reqs += list(recipe.requires) if recipe else []
        with contextlib.suppress(OSError, ValueError):  # none learnt yet
            reqs += json.loads(self._learnt(sdist.sha256).read_text())
        return sorted(set(reqs))

    def learn(self, sdist: Blob, dynamic: list[str]) -> None:
        """Remember what get_requires_for_build_wheel asked for, for this sdist."""
        atomic_write(self._learnt(sdist.sha256), json.dumps(dynamic))

    def _learnt(self, sdist_sha: str) -> Path:
        return self.config.cache_dir / "builddeps" / f"dynamic-{sdist_sha}.json"

    def folder(self, requirements: list[str], from_source: FromSource) -> Path:
        """Wheels of the requirements (and their dependencies) for the builder's
        interpreter, downloaded once per requirement set and reused."""
        info = self._info()
        idx = self.target.index
        plats = platforms(info.libc, info.libc_version, info.arch)
        doc = json.dumps([sorted(requirements), info.python_minor, plats, idx.all_index_urls])
        if self.constraints:  # only then: other folders keep their keys
            doc += json.dumps(sorted(self.constraints))
        key = hashlib.sha256(doc.encode()).hexdigest()[:24]
        dest = self.config.cache_dir / "builddeps" / key
        if is_complete(dest):
            return dest
        with self.store.lock("deps-" + key):
            if is_complete(dest):
                return dest
            tmp = self.store.tempdir("deps-")
            self._fill(tmp, requirements, info, plats, from_source)
            return publish_dir(tmp, dest)

    def _fill(
        self,
        tmp: Path,
        requirements: list[str],
        info: ImageInfo,
        plats: list[str],
        from_source: FromSource,
    ) -> None:
        built: set[str] = set()
        while requirements:
            missing = self._download(tmp, requirements, info, plats)
            if not missing:
                return
            # a build requirement with no wheel anywhere: build it from its sdist first,
            # in this target's builder, and offer the wheel to pip next round
            if set(missing) <= built:
                raise BuildError(
                    f"built {', '.join(sorted(missing))} from source, but pip still "
                    "finds no wheel of it for the builder",
                    hint="check the build requirement's version constraints",
                )
            for requirement in missing:
                wheel = self._from_source(requirement, info, from_source)
                os.link(wheel.path, tmp / wheel.filename)
                built.add(requirement)

    def _from_source(self, requirement: str, info: ImageInfo, from_source: FromSource) -> Blob:
        """A build requirement that only exists as an sdist, built like any source build
        (hermetic, cached by its key) and returned as a wheel."""
        chain = list(_CHAIN.stack)
        if requirement in chain or len(chain) >= MAX_CHAIN:
            raise BuildError(
                f"build requirement {requirement} needs itself to build (via "
                f"{' -> '.join([*chain, requirement])})",
                hint="pin a version of it that has wheels in the recipe's build.requires",
            )
        blob = self._download_sdist(requirement, info)
        name, version = parse_sdist_filename(blob.filename)
        pin = Pin(name=name, version=str(version), hashes=(f"sha256:{blob.sha256}",))
        _CHAIN.stack = [*chain, requirement]
        try:
            return from_source(pin, blob)
        finally:
            _CHAIN.stack = chain

    def _download_sdist(self, requirement: str, info: ImageInfo) -> Blob:
        sdist_dir = self.store.tempdir("dep-sdist-")
        try:
            args = [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--python-version", info.python_minor,
                "--dest", str(sdist_dir), *self.target.index.pip_args(), requirement,
            ]  # fmt: skip
            res = process.run(
                args,
                env=process.tool_env(self.config),
                timeout=self.config.timeouts.resolve,
                limit="timeouts.resolve",
            )
            sdists = [f for f in sdist_dir.iterdir() if f.name.endswith((".tar.gz", ".zip"))]
            if not res.ok or len(sdists) != 1:
                raise BuildError(
                    f"build requirement {requirement} has neither a wheel for the builder's "
                    f"Python {info.python_minor} nor an sdist:\n{res.tail(6)}",
                    hint="pin a version that exists via the recipe's build.requires",
                )
            return self.store.put(sdists[0], sdists[0].name)
        finally:
            shutil.rmtree(sdist_dir, ignore_errors=True)

    def _download(
        self, tmp: Path, requirements: list[str], info: ImageInfo, plats: list[str]
    ) -> list[str]:
        """pip download, as wheels for the builder's interpreter (not the host's). Wheels
        already in `tmp` (built here) count. Returns the requirements pip found no wheel
        for, to build from source; raises on any other failure."""
        abi = "cp" + info.python_minor.replace(".", "")
        args = [
            sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(tmp),
            "--only-binary", ":all:", "--python-version", info.python_minor,
            "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
            "--find-links", str(tmp),
        ]  # fmt: skip
        for p in plats:
            args += ["--platform", p]
        args += self.target.index.pip_args()
        if self.constraints:
            constraints = tmp.parent / f"{tmp.name}.constraints.txt"
            constraints.write_text("".join(f"{c}\n" for c in self.constraints))
            args += ["--constraint", str(constraints)]
        res = process.run(
            [*args, *requirements],
            env=process.tool_env(self.config),
            timeout=self.config.timeouts.resolve,
            limit="timeouts.resolve",
        )
        if res.ok:
            return []
        missing = missing_requirements(res.stdout + res.stderr)
        if missing:
            return sorted(set(missing))
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError(
            f"cannot get the build requirements {', '.join(requirements)} as wheels "
            f"for the builder's Python {info.python_minor}:\n{res.tail(8)}",
            hint="check the index settings, or pin build requirements that exist via the "
            "recipe's build.requires",
        )
