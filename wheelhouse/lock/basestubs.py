"""A final image's distributions as resolver input, the same for pip-compile and uv.

Each inherited distribution becomes a metadata-only stub wheel
(`name-version-py3-none-any.whl` holding the image's own METADATA headers: Requires-Dist,
Requires-Python, Provides-Extra) in a private find-links folder, and a `name==version`
constraint. So the resolver treats the image's packages as the only versions there are,
with their real dependencies, including local versions no index has
(`torch==2.6.0a0+ecf3bae40a.nv25.01`). The stubs are resolver input only: lock.py marks
their pins as provided by the image (no hash), so no build can fetch or place one.

A requirement the base cannot meet is then a resolver conflict; `conflicts()` says which
package, the base's version and which requirement wants another, from a second resolution
without the constraints that prefers the base's versions.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.config import Config, Target
from wheelhouse.fsutil import is_complete, publish_dir
from wheelhouse.lock.base import BaseDist, BaseImage, replaceable
from wheelhouse.lock.lockfile import Pin

CONSTRAINTS = "base-constraints.txt"
# a stub's date: fixed, so the same base gives the same bytes
_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, kw_only=True)
class BaseInput:
    """What the resolver gets for a base: a find-links folder and a constraints file."""

    base: BaseImage
    folder: Path  # the stub wheels
    constraints: Path
    pinned: dict[
        NormalizedName, BaseDist
    ]  # name -> what the image has (replace-base ones left out)


def pinnable(d: BaseDist) -> bool:
    """A distribution a resolver can pin: a PEP 440 version (legacy ones are left to the
    image, unpinned)."""
    try:
        Version(d.version)
    except InvalidVersion:
        return False
    return True


def _stem(d: BaseDist) -> str:
    """`name-version` as a wheel's file name spells it (PEP 427/491: normalised, `_`)."""
    return f"{d.name.replace('-', '_')}-{Version(d.version)}"


def stub_filename(d: BaseDist) -> str:
    return f"{_stem(d)}-py3-none-any.whl"


def _stub(d: BaseDist, dest: Path) -> None:
    info = f"{_stem(d)}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {d.name}", f"Version: {d.version}"]
    if d.requires_python:
        meta.append(f"Requires-Python: {d.requires_python}")
    meta += [f"Provides-Extra: {e}" for e in d.provides_extra]
    meta += [f"Requires-Dist: {r}" for r in d.requires_dist]
    files = {
        f"{info}/METADATA": "\n".join(meta) + "\n\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: wheelhouse (base stub)\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n\n",
    }
    record = [f"{n},sha256={_b64(t)},{len(t.encode())}" for n, t in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(dest / stub_filename(d), "w") as z:
        for name, text in files.items():
            z.writestr(zipfile.ZipInfo(name, _DATE), text)


def _b64(text: str) -> str:
    import base64

    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def prepare(config: Config, target: Target, base: BaseImage) -> BaseInput:
    """The stubs and constraints for `base`, made once per base digest and replace-base
    list, under the cache (`base-stubs/`): pip-compile in a builder container reads them
    through the same bind mount as any find-links folder."""
    pinned = {d.name: d for d in base.own if pinnable(d) and not replaceable(target, d.name)}
    declared = declared_constraints(target, base, pinned)
    key = hashlib.sha256(f"{base.digest} {sorted(pinned)} {declared}".encode()).hexdigest()[:24]
    dest = config.cache_dir / "base-stubs" / key
    if not is_complete(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".stubs-", dir=dest.parent))
        try:
            for d in pinned.values():
                _stub(d, tmp)
            text = "".join(f"{d.spec}\n" for d in sorted(pinned.values(), key=lambda d: d.name))
            (tmp / CONSTRAINTS).write_text(text + "".join(f"{c}\n" for c in declared))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        dest = publish_dir(tmp, dest)
    return BaseInput(base=base, folder=dest, constraints=dest / CONSTRAINTS, pinned=pinned)


def declared_constraints(
    target: Target, base: BaseImage, pinned: dict[NormalizedName, BaseDist]
) -> tuple[str, ...]:
    """The constraints of the files the image declares for pip (NVIDIA's PIP_CONSTRAINT),
    on packages it does not have installed (those are pinned already) and replace-base
    does not name: what the image's own pip would hold an install to."""
    out = set()
    for f in base.constraint_files:
        for line in f.text.splitlines():
            text = line.split(" #")[0].strip()
            if not text or text.startswith(("#", "-")):
                continue  # comments and options (-c, --hash...): not a constraint line
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            name = canonicalize_name(req.name)
            if req.url or name in pinned or replaceable(target, name) or name in base.by_name():
                continue
            out.add(str(req))
    return tuple(sorted(out))


def seed(base: BaseInput) -> str:
    """The base's versions as preferred pins (pip-compile/uv read their output file)."""
    return "".join(f"{d.spec}\n" for d in sorted(base.pinned.values(), key=lambda d: d.name))


@dataclass(frozen=True, kw_only=True)
class Conflict:
    name: str
    base_version: str
    wanted: str  # the version a resolution without the base's pins takes
    by: tuple[str, ...]  # who requires it, with their specifier where it is known

    def describe(self) -> str:
        return (
            f"{self.name}: the final image has {self.base_version}, but "
            f"{'; '.join(self.by) or 'the requirements'} want(s) another version "
            f"(without the image's pins it resolves to {self.wanted})"
        )


def conflicts(config: Config, base: BaseInput, free: list[Pin]) -> list[Conflict]:
    """Base packages a resolution without the base's constraints (`free`, which prefers
    their versions) moves away from, and the requirements that pull them there."""
    out = []
    versions = {p.name: p.version for p in free}
    for pin in free:
        have = base.pinned.get(pin.name)
        if have is None or Version(have.version) == Version(pin.version):
            continue
        by = tuple(_wanting(config, pin, versions, base))
        out.append(Conflict(name=pin.name, base_version=have.version, wanted=pin.version, by=by))
    return out


def _wanting(
    config: Config, pin: Pin, versions: dict[NormalizedName, str], base: BaseInput
) -> list[str]:
    """Each `via` of `pin`, with the specifier it puts on it where the metadata at hand
    says (the input files; the image's own metadata for its packages)."""
    out = []
    for via in pin.via:
        spec = ""
        if via.startswith(("-r ", "-c ")):
            path = config.root / via[3:].strip()
            spec = _spec_in_file(path, pin.name)
            out.append(f"{via} ({spec})" if spec else via)
            continue
        name = canonicalize_name(via.split()[0])
        dist = base.base.by_name().get(name)
        if dist is not None:
            spec = _spec_in(dist.requires_dist, pin.name)
        version = versions.get(name, "")
        label = f"{name} {version}".strip()
        out.append(f"{label} requires {spec}" if spec else f"{label} requires it")
    return out


def _spec_in_file(path: Path, name: str) -> str:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return _spec_in([line.split("#")[0].strip() for line in lines], name)


def _spec_in(requirements: tuple[str, ...] | list[str], name: str) -> str:
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == name:
            return str(req).split(";")[0].strip()
    return ""
