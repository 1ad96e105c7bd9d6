"""The gpu target without an engine: CUDA in every key, compatibility, repair excludes (the
lock's freshness through the CLI: tests/integration/test_gpu_integration.py)."""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from pathlib import Path

import pytest

from wheelhouse import config as config_mod
from wheelhouse.build.buildkey import input_key
from wheelhouse.build.compile import CUDA_EXCLUDES
from wheelhouse.build.images import cuda_fits


@pytest.mark.parametrize(("builder", "target", "fits"), [
    ("12.6.3", "12.6", True),
    ("12.4.1", "12.6", True),    # minor version compatibility: older toolkit, newer runtime
    ("12.6.3", "12.4", False),   # code from a newer toolkit may need a newer runtime
    ("13.0.88", "12.9", False),  # another major version: another libcudart soname
    ("12.6", "13.0", False),
    ("garbage", "12.6", False),
])  # fmt: skip
def test_builder_cuda_must_fit_the_target(builder: str, target: str, fits: bool) -> None:
    assert cuda_fits(builder, target) is fits


def test_repair_excludes_the_driver_and_cuda_libraries_only() -> None:
    def excluded(soname: str) -> bool:
        return any(fnmatch.fnmatch(soname, p) for p in CUDA_EXCLUDES)

    for soname in ("libcuda.so.1", "libcudart.so.12", "libcudart.so.13", "libcublas.so.12",
                   "libcublasLt.so.12", "libcudnn.so.9", "libcudnn_ops.so.9", "libnccl.so.2",
                   "libnvrtc.so.12", "libnvJitLink.so.12"):  # fmt: skip
        assert excluded(soname), soname
    for soname in ("libstdc++.so.6", "libgomp.so.1", "libyaml-0.so.2", "libpq.so.5"):
        assert not excluded(soname), soname


def test_cuda_is_part_of_the_built_wheel_key(tmp_path: Path) -> None:
    cfg = config_mod.load(tmp_path, environ={"WHEELHOUSE_CACHE_DIR": str(tmp_path / "c")})
    gpu = cfg.target("gpu")
    assert gpu.cuda == "12.6"  # the built-in gpu target
    keys = {
        input_key(sdist_sha256="ab" * 32, target=replace(gpu, cuda=c), builder_tag="b",
                  recipe_digest=None)
        for c in ("12.4", "12.6", None)
    }  # fmt: skip
    assert len(keys) == 3
