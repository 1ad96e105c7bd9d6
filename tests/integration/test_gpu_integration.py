"""The gpu target through the CLI and a loopback index, without an engine: `cuda` in the
lock's freshness. The pure parts are in tests/unit/test_gpu.py."""

from __future__ import annotations

from pathlib import Path

from conftest import Wheelhouse, write
from fixtures_index import LocalIndex


def test_changing_cuda_makes_the_gpu_lock_stale(wh: Wheelhouse, project: Path,
                                                make_index: object) -> None:  # fmt: skip
    index: LocalIndex = make_index(default=False)  # type: ignore[operator]
    index.add_wheel("common", "1.0")
    write(
        project / "wheelhouse.toml",
        f"""
resolver = "uv"
[index]
index-url = "{index.url}"
[targets.gpu]
python-version = "3.11"
libc-version = "2.36"
cuda = "12.4"
extra-index-urls = []
""",
    )
    write(project / "requirements.in", "common\n")
    wh("lock")
    assert "cuda 12.4" in (project / "locks" / "gpu.txt").read_text()
    wh("lock", "--check")
    stale = wh("--set", "targets.gpu.cuda=12.6", "lock", "--check", check=False)
    assert stale.returncode == 8, stale.stderr
    assert "locks/gpu.txt: stale" in stale.stderr
