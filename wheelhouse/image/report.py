"""`wheelhouse image-report`: what an image weighs, layer by layer, and whether it ships
wheel files, a compiler or a package manager's lists and caches.

The image is read from `docker save` (its layer tars and its config), not from a
container: that works for images without a shell or any tool, and sees every layer,
including files a later layer deletes (whose bytes are still shipped). Whiteouts are
followed to say whether each finding is still visible in the final filesystem.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Literal

from wheelhouse.errors import EngineError

if TYPE_CHECKING:
    from wheelhouse.engine import Engine

Kind = Literal["wheel", "compiler", "package-cache"]

# C/C++ compiler drivers, plain or target-prefixed and versioned (gcc, cc, g++, c++, clang,
# x86_64-linux-gnu-gcc-12, clang-16), in a bin folder; and gcc's compiler proper (cc1).
_COMPILER = re.compile(
    r"(?:[A-Za-z0-9_.]+-)*(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(?:-\d+(?:\.\d+)*)?"
)
_BIN = ("bin", "sbin")
# What a package manager leaves unless told not to: apt's package lists, its binary
# caches and downloaded archives, apk's and dnf's caches. Only files: the folders and
# apt's lock files are part of every Debian image.
_PACKAGE_CACHES = ("/var/lib/apt/lists/", "/var/cache/apt/", "/var/cache/apk/", "/var/cache/dnf/")
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True, kw_only=True)
class Layer:
    index: int  # 1 = the bottom layer
    diff_id: str
    size: int  # bytes of its files (as the engine counts a layer: regular files + links)
    created_by: str
    in_base: bool


@dataclass(frozen=True, kw_only=True)
class Finding:
    kind: Kind
    path: str  # absolute, in the image
    layer: int
    present: bool  # still in the final filesystem (not deleted or replaced by a later layer)
    in_base: bool


@dataclass(frozen=True, kw_only=True)
class Report:
    image: str
    image_id: str
    size: int  # the engine's size of the image (all layers)
    base: str | None
    base_size: int | None
    base_matches: bool  # the base's layers are the image's first layers
    layers: tuple[Layer, ...]
    findings: tuple[Finding, ...]

    @property
    def added_size(self) -> int | None:
        return None if self.base_size is None else self.size - self.base_size

    def added(self, kind: Kind) -> list[Finding]:
        """Findings in the image's own layers (all layers when no base is given)."""
        return [f for f in self.findings if f.kind == kind and not f.in_base]

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_id": self.image_id,
            "size": self.size,
            "base": self.base,
            "base_size": self.base_size,
            "added_size": self.added_size,
            "base_matches": self.base_matches,
            "layers": [vars(layer) for layer in self.layers],
            "findings": [vars(f) for f in self.findings],
        }


def check_libraries(engine: Engine, image: str) -> tuple[bool, tuple[str, ...]]:
    """The final stage's extension-load check (_scripts/check_env.py), run in a container
    of the image under its first python on PATH (the venv's, in a wheelhouse image), with
    no network: (whether every compiled file loads its libraries, what it said)."""
    from wheelhouse._scripts import script
    from wheelhouse.engine import FIND_PYTHON

    command = ["sh", "-c", f'{FIND_PYTHON}; exec "$PY" -B -c "$WHEELHOUSE_CHECK"']
    with engine.container(image, command, env={"WHEELHOUSE_CHECK": script("check_env")}) as c:
        res = c.run()
    lines = [x for x in (res.stdout + res.stderr).splitlines() if x.startswith("wheelhouse:")]
    if not res.ok and not lines:
        raise EngineError(
            f"cannot run the library check in {image}: {res.tail(3)}",
            hint="--libraries needs sh and python in the image",
        )
    return res.ok, tuple(lines)


def is_compiler(path: str) -> bool:
    parts = PurePosixPath(path).parts
    if len(parts) >= 2 and parts[-2] in _BIN and _COMPILER.fullmatch(parts[-1]):
        return True
    return parts[-1:] in (("cc1",), ("cc1plus",)) and "gcc" in parts


def is_package_cache(path: str) -> bool:
    return path.startswith(_PACKAGE_CACHES) and PurePosixPath(path).name != "lock"


def kind_of(path: str, member: tarfile.TarInfo) -> Kind | None:
    if path.endswith(".whl") and (member.isreg() or member.islnk()):
        return "wheel"
    if member.isreg() and is_package_cache(path):
        return "package-cache"
    if (member.isreg() or member.islnk() or member.issym()) and is_compiler(path):
        return "compiler"
    return None


def report(engine: Engine, image: str, base: str | None = None) -> Report:
    info = engine.inspect_image(image)
    base_info = engine.inspect_image(base) if base else None
    diff_ids = list(info.get("RootFS", {}).get("Layers") or [])
    base_ids = list((base_info or {}).get("RootFS", {}).get("Layers") or [])
    matches = base_info is not None and diff_ids[: len(base_ids)] == base_ids
    n_base = len(base_ids) if matches else 0
    with tempfile.TemporaryDirectory(prefix="wheelhouse-image-") as tmp:
        saved = Path(tmp) / "image.tar"
        engine.save(str(info["Id"]), saved)
        layers, findings = scan(saved, n_base)
    return Report(
        image=image,
        image_id=str(info["Id"]),
        size=int(info.get("Size", 0)),
        base=base,
        base_size=int(base_info.get("Size", 0)) if base_info else None,
        base_matches=matches,
        layers=layers,
        findings=findings,
    )


def scan(saved: Path, n_base: int = 0) -> tuple[tuple[Layer, ...], tuple[Finding, ...]]:
    """Layers and findings of a `docker save` tar (Docker's or OCI's layout: both have a
    manifest.json naming the config and the layer files, bottom first)."""
    try:
        with tarfile.open(saved) as outer:
            manifest = json.loads(_read(outer, "manifest.json"))[0]
            config = json.loads(_read(outer, manifest["Config"]))
            history = [
                h.get("created_by", "")
                for h in config.get("history", [])
                if not h.get("empty_layer", False)
            ]
            diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
            layers: list[Layer] = []
            view: dict[str, Finding] = {}  # path -> finding, as the final filesystem has it
            found: list[Finding] = []
            for i, name in enumerate(manifest["Layers"], start=1):
                member = outer.extractfile(name)
                if member is None:
                    raise ValueError(f"{name} is not a file")
                size, new = _scan_layer(member, i, i <= n_base, view)
                found += new
                layers.append(
                    Layer(
                        index=i,
                        diff_id=diff_ids[i - 1] if i <= len(diff_ids) else "",
                        size=size,
                        created_by=history[i - 1]
                        if len(history) == len(manifest["Layers"])
                        else "",
                        in_base=i <= n_base,
                    )
                )
    except (tarfile.TarError, OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise EngineError(
            f"cannot read the saved image: {e}",
            hint="the engine's `save` format was not understood; check `docker save` works",
        ) from None
    present = {id(f) for f in view.values()}
    findings = tuple(
        Finding(
            kind=f.kind, path=f.path, layer=f.layer, present=id(f) in present, in_base=f.in_base
        )
        for f in found
    )
    return tuple(layers), findings


def _read(outer: tarfile.TarFile, name: str) -> bytes:
    f = outer.extractfile(name)
    if f is None:
        raise ValueError(f"{name} is not a file")
    return f.read()


def _scan_layer(
    fileobj: IO[bytes], index: int, in_base: bool, view: dict[str, Finding]
) -> tuple[int, list[Finding]]:
    """One layer: its size and findings; applies its whiteouts to `view` (the findings of
    lower layers still visible), then adds its own."""
    size = 0
    new: list[Finding] = []
    with tarfile.open(fileobj=fileobj, mode="r|*") as layer:
        for m in layer:
            path = _norm(m.name)
            folder, _, base = path.rpartition("/")
            if base == _OPAQUE:  # the folder's lower contents are gone
                _drop(view, folder + "/", below=index)
                continue
            if base.startswith(_WHITEOUT):  # one lower entry (and what is under it) is gone
                gone = f"{folder}/{base[len(_WHITEOUT) :]}"
                _drop(view, gone, below=index)
                _drop(view, gone + "/", below=index)
                continue
            if m.isreg():
                size += m.size
            elif m.issym():
                size += len(m.linkname)
            kind = kind_of(path, m)
            if kind is not None:
                f = Finding(kind=kind, path=path, layer=index, present=True, in_base=in_base)
                new.append(f)
                view[path] = f
            elif path in view:  # replaced by something that is not a finding
                del view[path]
    return size, new


def _norm(name: str) -> str:
    """A layer member's name as an absolute path ("./usr/bin/gcc" -> "/usr/bin/gcc")."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    return "/" if name in ("", ".") else "/" + name


def _drop(view: dict[str, Finding], prefix: str, *, below: int) -> None:
    for path in [p for p, f in view.items() if f.layer < below]:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            del view[path]
