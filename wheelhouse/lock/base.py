"""What a target's final image already has installed: the vendor ML base case.

A final image such as NVIDIA's PyTorch container holds hundreds of distributions, some at
local versions no index has (`torch 2.6.0a0+ecf3bae40a.nv25.01`). With
`targets.<t>.base-packages = "inherit"` the lock keeps them at exactly the image's
versions, resolved with the image's own metadata, and marks them as provided by the
image: the build neither downloads nor builds them, and the final stage sees them
(basestubs.py turns them into resolver input; lock.py marks the pins).

The image is probed once per image id (`_scripts/distributions.py`), like engine.probe.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse._scripts import script
from wheelhouse.config import Target
from wheelhouse.errors import EngineError
from wheelhouse.fsutil import atomic_write

if TYPE_CHECKING:
    from wheelhouse.engine import Engine

PROBE_VERSION = "dists-v2"  # bump when _scripts/distributions.py's answers change meaning
# an interpreter's own tooling: not what an image "provides" for the app; the venv gets
# the lock's own where the lock needs them
TOOLING = frozenset({"pip", "setuptools", "wheel"})


@dataclass(frozen=True, kw_only=True)
class BaseDist:
    """One distribution the final image's interpreter imports."""

    name: NormalizedName
    version: str  # exactly as installed: local labels kept ("2.6.0a0+nv25.01")
    location: str  # the site-packages folder it is in
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    provides_extra: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True, kw_only=True)
class ConstraintFile:
    """A constraint file the image declares for pip (PIP_CONSTRAINT, a pip.conf)."""

    declared_by: str  # "env PIP_CONSTRAINT" or the pip.conf's path
    path: str
    exists: bool
    text: str = ""  # its contents, read in the image: the lock applies them too


@dataclass(frozen=True, kw_only=True)
class BaseImage:
    image: str  # the reference as configured
    image_id: str
    python: str
    prefix: str  # sys.prefix: the environment the image's python installs into
    in_venv: bool  # the image's python is itself a venv's (its packages are not "system")
    distributions: tuple[BaseDist, ...]
    constraint_files: tuple[ConstraintFile, ...] = ()

    @property
    def own(self) -> tuple[BaseDist, ...]:
        """What the image provides beyond an interpreter's own tooling."""
        return tuple(d for d in self.distributions if d.name not in TOOLING)

    def by_name(self) -> dict[NormalizedName, BaseDist]:
        return {d.name: d for d in self.own}

    @property
    def digest(self) -> str:
        """What a lock that inherits this base is a function of: names, versions, metadata
        (not the image id: a rebuilt image with the same packages keeps the lock)."""
        doc: list[object] = [[d.name, d.version, list(d.requires_dist)] for d in self.own]
        doc += [c.text for c in self.constraint_files]
        blob = json.dumps(doc, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()


def probe_base(engine: Engine, ref: str, *, key: str) -> BaseImage:
    """The distributions of `ref`'s interpreter; cached by image id (tags move, ids do not)."""
    from wheelhouse.engine import FIND_PYTHON

    image_id = engine.image_id(ref, key=key)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", image_id)
    cache = engine.cache_dir / "probes" / PROBE_VERSION / f"{safe}.json"
    try:
        return _from_json(ref, image_id, json.loads(cache.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        pass
    command = ["sh", "-c", f'{FIND_PYTHON}; cd /; exec "$PY" -c "$WHEELHOUSE_DISTS"']
    env = {"WHEELHOUSE_DISTS": script("distributions")}
    with engine.container(image_id, command, env=env) as c:
        res = c.run()
    if not res.ok:
        raise EngineError(
            f"cannot list the installed distributions of image {ref!r}: {res.tail(3)}",
            hint=f"{key} needs sh and python3 (or python, 3.8+) on its PATH; or set "
            f'{key.rsplit(".", 1)[0]}.base-packages = "ignore"',
        )
    data = json.loads(res.stdout.strip().splitlines()[-1])
    base = _from_json(ref, image_id, data)
    atomic_write(cache, json.dumps(data, sort_keys=True))
    return base


def _from_json(ref: str, image_id: str, data: dict[str, object]) -> BaseImage:
    dists = []
    for d in data["distributions"]:  # type: ignore[attr-defined]
        dists.append(
            BaseDist(
                name=canonicalize_name(d["name"]),
                version=d["version"],
                location=d.get("location", ""),
                requires_dist=tuple(d.get("requires_dist", ())),
                requires_python=(d.get("requires_python") or [None])[0],
                provides_extra=tuple(d.get("provides_extra", ())),
            )
        )
    files = tuple(ConstraintFile(**c) for c in data.get("constraint_files", ()))  # type: ignore[attr-defined]
    return BaseImage(
        image=ref,
        image_id=image_id,
        python=str(data["python"]),
        prefix=str(data["prefix"]),
        in_venv=bool(data["in_venv"]),
        distributions=tuple(dists),
        constraint_files=files,
    )


def inherited(target: Target, engine: Callable[[], Engine]) -> BaseImage | None:
    """The final image's packages the lock inherits, or None: `base-packages = "ignore"`,
    or unset and the image has nothing beyond pip, setuptools and wheel (a plain python
    image, where probing costs one cached container run)."""
    if target.base_packages == "ignore":
        return None
    base = probe_base(engine(), target.final_image, key=f"targets.{target.name}.final-image")
    return base if base.own else None


def replaceable(target: Target, name: str) -> bool:
    return ":all:" in target.replace_base or canonicalize_name(name) in target.replace_base


def to_json(base: BaseImage) -> str:
    return json.dumps(asdict(base), sort_keys=True)
