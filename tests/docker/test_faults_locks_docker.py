"""The lock that a target's images could not install, through the real engine: the
Debian 12 test images run Python 3.11.2 while this host runs a later 3.11. A package
whose newest release needs a later patch (Requires-Python >=3.11.3) must be pinned at
its older release for that target, by pip-compile and by uv (told 3.11.2) alike, byte for
byte: pip-compile starts on the host (it shares the minor), its 2.0 does not install on
3.11.2, so the builder image resolves the target again."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex

from wheelhouse.lock import lockfile
from wheelhouse.lock.resolve import host_python

pytestmark = pytest.mark.docker

BUILDER_PYTHON = "3.11.2"  # Debian 12's python3, what the py311 test images run


@pytest.fixture
def index(make_index: object) -> LocalIndex:
    idx: LocalIndex = make_index(default=False)  # type: ignore[operator]
    idx.add_wheel("needspatch", "1.0")
    idx.add_wheel("needspatch", "2.0", requires_python=">=3.11.3")
    return idx


def configure(
    project: Path, index: LocalIndex, images: dict[str, str], engine: str, python: str
) -> None:
    write(
        project / "wheelhouse.toml",
        f"""
engine = "{engine}"
[index]
index-url = "{index.url}"
[targets.slim]
python-version = "{python}"
builder-image = "{images["py311-builder"]}"
final-image = "{images["py311-slim"]}"
""",
    )
    write(project / "requirements.in", "needspatch\n")


def test_the_host_is_a_later_patch_release_than_the_images() -> None:
    """The premise of this file: were the host 3.11.2, nothing here could fail."""
    assert host_python().startswith("3.11.") and host_python() != BUILDER_PYTHON


@pytest.mark.parametrize("python", ["3.11", BUILDER_PYTHON], ids=["probed", "configured"])
def test_both_backends_pin_what_the_builder_s_python_can_install(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine_bin: str,
    python: str,
) -> None:
    configure(project, index, test_images, engine_bin, python)
    path = project / "locks" / "slim.txt"

    by_pip = wh("lock")
    assert f"resolved on container {test_images['py311-builder']}" in by_pip.stdout
    assert (
        "needspatch==2.0 (Requires-Python >=3.11.3): not for Python 3.11.2; resolving slim "
        "in its builder image"
    ) in by_pip.stderr
    assert "warning" not in by_pip.stderr  # the patch release was known
    pip_text = path.read_text()
    lock = lockfile.read(path)
    assert lock is not None and lock.integrity == "intact"
    assert {p.name: p.version for p in lock.pins} == {"needspatch": "1.0"}

    path.unlink()
    by_uv = wh("--set", "resolver=uv", "lock")
    assert "resolved on uv" in by_uv.stdout and "warning" not in by_uv.stderr
    assert path.read_text() == pip_text


def test_pip_compile_refuses_a_builder_of_another_patch_release(
    wh: Wheelhouse, project: Path, index: LocalIndex, test_images: dict[str, str], engine_bin: str
) -> None:
    """Named 3.11.4, but the builder runs 3.11.2. The host's pick, needspatch 3.0, needs
    3.11.5: the builder would have to resolve, but it would resolve for the wrong release,
    so it is refused (uv resolves for 3.11.4 as told: 2.0)."""
    index.add_wheel("needspatch", "3.0", requires_python=">=3.11.5")
    configure(project, index, test_images, engine_bin, "3.11.4")
    proc = wh("lock", check=False)
    assert proc.returncode == 6, proc.stderr
    assert (
        f"target 'slim' says Python 3.11.4, but its builder image {test_images['py311-builder']} "
        f"has Python {BUILDER_PYTHON}"
    ) in proc.stderr
    assert f'python-version = "{BUILDER_PYTHON}"' in proc.stderr
    assert not (project / "locks" / "slim.txt").exists()
    wh("--set", "resolver=uv", "lock")
    lock = lockfile.read(project / "locks" / "slim.txt")
    assert lock is not None and {p.name: p.version for p in lock.pins} == {"needspatch": "2.0"}
