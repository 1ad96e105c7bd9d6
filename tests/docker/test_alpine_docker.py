"""The alpine target's `libc-version` left unset: probed from the final image, through the
real engine (the rest of the alpine target needs no engine: tests/integration/test_alpine.py
and tests/unit/test_alpine_unit.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex

# the alpine tests' index (tests/integration/test_alpine.py), the same here
TAGS = {
    "many": "cp311-cp311-manylinux_2_17_x86_64",
    "musl11": "cp311-cp311-musllinux_1_1_x86_64",
    "musl12": "cp311-cp311-musllinux_1_2_x86_64",
}


@pytest.fixture
def index(make_index: object) -> LocalIndex:
    idx: LocalIndex = make_index(default=False)  # type: ignore[operator]
    for tags in TAGS.values():
        idx.add_wheel("fastext", "1.0", tags=tags)
    idx.add_sdist("fastext", "1.0")
    idx.add_wheel("common", "1.0")
    return idx


@pytest.mark.docker
def test_unset_libc_version_is_probed_from_the_final_image(
    wh: Wheelhouse, project: Path, index: LocalIndex, test_images: dict[str, str],
    engine_bin: str,
) -> None:  # fmt: skip
    index.add_wheel("glibconly", "1.0", tags="cp311-cp311-manylinux_2_36_x86_64")
    write(
        project / "wheelhouse.toml",
        f"""
engine = "{engine_bin}"
resolver = "uv"
[index]
index-url = "{index.url}"
[targets.deb]
python-version = "3.11"
builder-image = "{test_images["py311-builder"]}"
final-image = "{test_images["py311-slim"]}"
[targets.fakemusl]
python-version = "3.11"
libc = "musl"
builder-image = "{test_images["py311-builder"]}"
final-image = "{test_images["py311-slim"]}"
""",
    )
    write(project / "requirements.in", "glibconly\n")
    wh("lock", "-t", "deb")
    assert "glibc 2.36" in (project / "locks" / "deb.txt").read_text()  # Debian 12's
    res = wh("lock", "-t", "fakemusl", check=False)
    assert res.returncode == 3, res.stderr
    assert "'fakemusl' is musl" in res.stderr and "glibc 2.36" in res.stderr
    assert os.path.exists(project / "locks" / "deb.txt")
