"""slim, alpine and gpu from one requirements.in, locked and built in one run.

Two loopback indexes play PyPI and a PyTorch-style CUDA index:

* main: `torchlike 1.0` (a pure wheel), `fastext 1.0` with manylinux, musllinux_1_1 and
  musllinux_1_2 wheels (and an sdist), `common 1.0` (a pure wheel every target uses),
  `puresrc 1.0` (sdist only, pure Python: built once, in slim's Debian builder);
* cuda: `torchlike 1.0+cu124`, a manylinux cp311 wheel, as download.pytorch.org serves
  CUDA builds under a local version label.

alpine's images do not exist on this machine (no Alpine image can be had here): the test
proves that its lock, plan, fetch, store reuse and index need no container when every
pin is a musllinux or pure wheel, or a pure sdist another target builds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_index import LocalIndex, wheel_filename
from packaging.utils import parse_wheel_filename

from wheelhouse.lock import lockfile

pytestmark = [pytest.mark.docker]

NO_ALPINE = "wheelhouse-test/no-alpine-image:absent"  # probing it would fail the build
FASTEXT_TAGS = (
    "cp311-cp311-manylinux_2_17_x86_64",
    "cp311-cp311-musllinux_1_1_x86_64",
    "cp311-cp311-musllinux_1_2_x86_64",
)
CUDA_WHEEL = "torchlike-1.0+cu124-cp311-cp311-manylinux_2_17_x86_64.whl"


@dataclass
class Matrix:
    wh: Wheelhouse
    root: Path
    main: LocalIndex
    cuda: LocalIndex
    build_out: str

    def lock(self, target: str) -> lockfile.LockFile:
        lock = lockfile.read(self.root / "locks" / f"{target}.txt")
        assert lock is not None
        return lock

    def pin(self, target: str, name: str) -> lockfile.Pin:
        return next(p for p in self.lock(target).pins if p.name == name)

    def manifest(self, target: str) -> dict[str, dict[str, object]]:
        data = json.loads((self.root / "wheelhouse" / target / "manifest.json").read_text())
        return {w["name"]: w for w in data["wheels"]}


def populate(main: LocalIndex, cuda: LocalIndex) -> None:
    main.add_wheel("torchlike", "1.0")
    for tags in FASTEXT_TAGS:
        main.add_wheel("fastext", "1.0", tags=tags)
    main.add_sdist("fastext", "1.0")
    main.add_wheel("common", "1.0")
    main.add_sdist("puresrc", "1.0")
    cuda.add_wheel("torchlike", "1.0+cu124", tags="cp311-cp311-manylinux_2_17_x86_64")


def config(main: LocalIndex, cuda: LocalIndex, images: dict[str, str], engine: str) -> str:
    return f"""
engine = "{engine}"
resolver = "uv"
default-targets = ["slim", "alpine", "gpu"]
[index]
index-url = "{main.url}"
{debian_targets(images, "slim")}
[targets.alpine]
python-version = "3.11"
libc-version = "1.2"
builder-image = "{NO_ALPINE}"
final-image = "{NO_ALPINE}"

[targets.gpu]
python-version = "3.11"
libc-version = "2.36"
cuda = "12.4"
builder-image = "{images["gpu-builder"]}"
final-image = "{images["gpu-builder"]}"
extra-index-urls = ["{cuda.url}"]
"""


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Iterator[Matrix]:
    tmp = tmp_path_factory.mktemp("matrix")
    with LocalIndex(tmp / "main") as main, LocalIndex(tmp / "cuda") as cuda:
        populate(main, cuda)
        root = tmp / "project"
        write(root / "wheelhouse.toml", config(main, cuda, test_images, engine_bin))
        write(root / "requirements.in", "torchlike\nfastext\ncommon\npuresrc\n")
        wh = Wheelhouse(root, tmp / "cache")
        wh("lock")
        main.clear_requests()
        cuda.clear_requests()
        out = wh("build")
        yield Matrix(wh, root, main, cuda, out.stdout)


def test_gpu_lock_pins_the_local_label_build_from_the_cuda_index(matrix: Matrix) -> None:
    gpu = matrix.pin("gpu", "torchlike")
    assert gpu.version == "1.0+cu124"
    assert set(gpu.hashes) == {f"sha256:{matrix.cuda.sha256(CUDA_WHEEL)}"}
    # the other targets have no CUDA index: the plain release, its own hash
    for target in ("slim", "alpine"):
        pin = matrix.pin(target, "torchlike")
        assert pin.version == "1.0", target
        plain = matrix.main.sha256(wheel_filename("torchlike", "1.0"))
        assert set(pin.hashes) == {f"sha256:{plain}"}
    # and the gpu wheelhouse holds the CUDA build, checked against that hash
    entry = matrix.manifest("gpu")["torchlike"]
    assert entry["filename"] == CUDA_WHEEL
    assert entry["sha256"] == matrix.cuda.sha256(CUDA_WHEEL)


def test_alpine_locks_and_gets_only_musllinux_or_pure_wheels(matrix: Matrix) -> None:
    musl = {matrix.main.sha256(wheel_filename("fastext", "1.0", t)) for t in FASTEXT_TAGS[1:]}
    assert {h.removeprefix("sha256:") for h in matrix.pin("alpine", "fastext").hashes} == musl
    folder = matrix.root / "wheelhouse" / "alpine"
    wheels = sorted(p.name for p in folder.glob("*.whl"))
    assert len(wheels) == 4, wheels
    for name in wheels:
        platforms = {t.platform for t in parse_wheel_filename(name)[3]}
        assert platforms <= {"any"} or all(p.startswith("musllinux_") for p in platforms), name
    # the best fit for musl 1.2: musllinux_1_2, not 1_1
    assert matrix.manifest("alpine")["fastext"]["filename"] == wheel_filename(
        "fastext", "1.0", FASTEXT_TAGS[2]
    )
    # slim and gpu got the manylinux build of the same release
    for target in ("slim", "gpu"):
        fastext = matrix.manifest(target)["fastext"]["filename"]
        assert fastext == wheel_filename("fastext", "1.0", FASTEXT_TAGS[0]), target
    # alpine's index lists what its folder holds, with hashes
    page = json.loads((folder / "simple" / "fastext" / "index.json").read_text())
    (listed,) = page["files"]
    assert listed["filename"] == wheel_filename("fastext", "1.0", FASTEXT_TAGS[2])
    assert listed["hashes"]["sha256"] == matrix.main.sha256(listed["filename"])


def test_one_run_shares_downloads_and_pure_builds(matrix: Matrix) -> None:
    # every file was downloaded once, whichever targets use it
    requests = matrix.main.file_requests() + matrix.cuda.file_requests()
    assert sorted(requests) == sorted(set(requests)), requests
    assert requests.count(wheel_filename("common", "1.0")) == 1
    # puresrc: built once, in slim's builder; alpine (whose builder image does not exist)
    # and gpu take that wheel from the store
    slim, alpine, gpu = (matrix.manifest(t)["puresrc"] for t in ("slim", "alpine", "gpu"))
    assert slim["source"] == "built"
    assert alpine["source"] == gpu["source"] == "cached"
    assert alpine["sha256"] == gpu["sha256"] == slim["sha256"]
    # the summary counts per target: common is downloaded for slim, reused by the others
    rows = _summary(matrix.build_out)
    assert rows["slim"] == {"wheels": 4, "reused": 0, "downloaded": 3, "cached": 0, "built": 1,
                            "failed": 0}  # fmt: skip
    assert rows["alpine"] == {"wheels": 4, "reused": 2, "downloaded": 1, "cached": 1,
                              "built": 0, "failed": 0}  # fmt: skip
    assert rows["gpu"] == {"wheels": 4, "reused": 2, "downloaded": 1, "cached": 1, "built": 0,
                           "failed": 0}  # fmt: skip
    # one download per distinct file: torchlike, cu124, fastext x2, common, puresrc's sdist
    assert len(requests) == 6
    assert "fetched 6 files once for 3 targets" in matrix.build_out


def test_alpine_alone_needs_no_container_engine(matrix: Matrix) -> None:
    """A later run for alpine alone: everything is in the store (musllinux and pure
    wheels, the pure wheel slim built), so no engine is even needed."""
    out = matrix.wh("--engine", "/nonexistent/docker", "build", "-t", "alpine")
    rows = _summary(out.stdout)
    assert rows["alpine"]["reused"] == 3 and rows["alpine"]["cached"] == 1, out.stdout
    assert rows["alpine"]["built"] == rows["alpine"]["downloaded"] == 0


def test_the_order_of_targets_does_not_matter(matrix: Matrix, tmp_path: Path) -> None:
    """alpine first, on an empty cache: its builder image cannot be had, so it is planned
    after slim, whose build of the pure sdist then serves it."""
    wh = Wheelhouse(matrix.root, tmp_path / "cache")
    out = wh("build", "-t", "alpine", "-t", "slim")
    rows = _summary(out.stdout)
    assert rows["slim"]["built"] == 1 and rows["alpine"]["cached"] == 1, out.stdout
    assert rows["alpine"]["built"] == rows["alpine"]["failed"] == 0


def _summary(stdout: str) -> dict[str, dict[str, int]]:
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        rows[cells["target"]] = {
            k: int(cells[k])
            for k in ("wheels", "reused", "downloaded", "cached", "built", "failed")
        }
    return rows
