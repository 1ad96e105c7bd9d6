"""What the platform wheels of a wheelhouse need from the system: each ELF file's
DT_NEEDED sonames, read from the wheel's zip on the host (no tool, no container), less
what the wheels themselves carry (`numpy.libs/`, `nvidia-*` wheels, a library beside
the extension) and what every image of the target has (the C library, the CUDA driver).

The result is cached by the wheel's sha256 (`<cache>/sonames/`): a 2 GB GPU wheel is
read once.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wheelhouse.fsutil import atomic_write

# Part of the C library or the interpreter on every glibc/musl image, or brought by the
# host at run time (the NVIDIA driver): never a runtime package.
ALWAYS_THERE = (
    "libc.so", "libm.so", "libdl.so", "libpthread.so", "librt.so", "libutil.so",
    "libresolv.so", "libnsl.so", "ld-linux", "ld64.so", "ld-musl", "libc.musl",
    "libpython3", "libcuda.so", "libnvidia-ml.so",
)  # fmt: skip
_ELF = b"\x7fELF"
_SHT_DYNAMIC, _DT_NEEDED, _DT_SONAME = 6, 1, 14
CACHE_VERSION = "1"


@dataclass(frozen=True, kw_only=True)
class Needs:
    """One wheel's shared-library needs: soname -> the files of the wheel that need it."""

    wheel: str
    needed: tuple[tuple[str, tuple[str, ...]], ...]
    provides: tuple[str, ...]  # the libraries it carries (file names and sonames)


def elf_names(data: bytes) -> tuple[list[str], str | None]:
    """(DT_NEEDED sonames, DT_SONAME) of an ELF file's bytes; ([], None) for anything
    that is not an ELF file with a dynamic section."""
    if len(data) < 64 or not data.startswith(_ELF):
        return [], None
    bits, order = data[4], "<" if data[5] == 1 else ">"
    try:
        if bits == 2:  # ELF64
            shoff, = struct.unpack_from(order + "Q", data, 0x28)  # fmt: skip
            shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
            sh_fmt, dyn_fmt = order + "IIQQQQIIQQ", order + "qQ"
        else:
            shoff, = struct.unpack_from(order + "I", data, 0x20)  # fmt: skip
            shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
            sh_fmt, dyn_fmt = order + "IIIIIIIIII", order + "iI"
        sections = [struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(shnum)]
        needed: list[str] = []
        soname = None
        for sh in sections:
            if sh[1] != _SHT_DYNAMIC:
                continue
            strtab = sections[sh[6]]
            str_off = strtab[4]
            offset, size, entsize = sh[4], sh[5], sh[9] or struct.calcsize(dyn_fmt)
            for pos in range(offset, offset + size, entsize):
                tag, value = struct.unpack_from(dyn_fmt, data, pos)
                if tag == 0:
                    break
                if tag in (_DT_NEEDED, _DT_SONAME):
                    end = data.index(b"\0", str_off + value)
                    name = data[str_off + value : end].decode("utf-8", "replace")
                    if tag == _DT_NEEDED:
                        needed.append(name)
                    else:
                        soname = name
        return needed, soname
    except (struct.error, IndexError, ValueError):
        return [], None


def wheel_needs(wheel: Path) -> Needs:
    """The needs of one wheel, read from its zip."""
    needed: dict[str, list[str]] = {}
    provides: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            base = PurePosixPath(info.filename).name
            if info.is_dir() or not (base.endswith(".so") or ".so." in base):
                continue
            data = zf.read(info)
            names, soname = elf_names(data)
            if not data.startswith(_ELF):
                continue
            provides.add(base)
            if soname:
                provides.add(soname)
            for name in names:
                needed.setdefault(name, []).append(info.filename)
    return Needs(
        wheel=wheel.name,
        needed=tuple((k, tuple(sorted(v))) for k, v in sorted(needed.items())),
        provides=tuple(sorted(provides)),
    )


def cached_needs(wheel: Path, sha256: str, cache_dir: Path) -> Needs:
    path = cache_dir / "sonames" / CACHE_VERSION / f"{sha256}.json"
    try:
        doc = json.loads(path.read_text())
        return Needs(
            wheel=wheel.name,
            needed=tuple((str(k), tuple(map(str, v))) for k, v in doc["needed"]),
            provides=tuple(map(str, doc["provides"])),
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    needs = wheel_needs(wheel)
    atomic_write(
        path, json.dumps({"needed": needs.needed, "provides": needs.provides}), durable=False
    )
    return needs


def is_platform_wheel(filename: str) -> bool:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False
    return any(t.platform != "any" for t in tags)


def outside_needs(all_needs: Iterable[Needs]) -> dict[str, tuple[str, ...]]:
    """soname -> the wheel files that need it, for the sonames no wheel of the set
    carries and no image lacks: what the final image must provide."""
    needs = list(all_needs)
    carried = {name for n in needs for name in n.provides}
    out: dict[str, list[str]] = {}
    for n in needs:
        for soname, files in n.needed:
            if soname in carried or soname.startswith(ALWAYS_THERE):
                continue
            out.setdefault(soname, []).extend(f"{n.wheel}:{f}" for f in files)
    return {k: tuple(sorted(v)) for k, v in sorted(out.items())}
