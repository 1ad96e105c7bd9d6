"""Unit tests for wheelhouse.tags: the full platform list (pip issue 10760) and the tags a
target accepts, in pip's order of preference."""

from __future__ import annotations

from dataclasses import replace

import pytest
from packaging.tags import Tag

from wheelhouse.config import Target
from wheelhouse.errors import ConfigError
from wheelhouse.tags import platforms, target_tags


def target(**kw: object) -> Target:
    fields: dict[str, object] = {
        "name": "t",
        "python_version": "3.11",
        "libc": "glibc",
        "libc_version": "2.36",
        "arch": "x86_64",
        "builder_image": "python:3.11-bookworm",
        "final_image": "python:3.11-slim-bookworm",
    }
    fields.update(kw)
    return Target(**fields)  # type: ignore[arg-type]


# -- platforms ---------------------------------------------------------------------------


def test_glibc_platforms() -> None:
    plats = platforms("glibc", "2.36", "x86_64")
    assert plats[0] == "manylinux_2_36_x86_64"
    assert plats[-1] == "linux_x86_64"
    assert "manylinux2014_x86_64" in plats
    assert "manylinux_2_17_x86_64" in plats
    assert "manylinux2010_x86_64" in plats and "manylinux1_x86_64" in plats
    assert "manylinux_2_5_x86_64" in plats
    assert "manylinux_2_4_x86_64" not in plats
    # every version from 2.36 down, each once, most specific first
    versions = [p for p in plats if p.startswith("manylinux_")]
    assert versions == [f"manylinux_2_{m}_x86_64" for m in range(36, 4, -1)]
    assert len(plats) == len(set(plats))
    # a legacy alias comes right after the tag it aliases, as packaging orders them
    i = plats.index("manylinux_2_17_x86_64")
    assert plats[i + 1] == "manylinux2014_x86_64"
    assert not any(p.startswith("musllinux") for p in plats)


def test_glibc_platforms_aarch64_start_at_2_17() -> None:
    plats = platforms("glibc", "2.31", "aarch64")
    assert plats[0] == "manylinux_2_31_aarch64"
    assert plats[-3:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"]
    assert not any("x86_64" in p for p in plats)
    assert "manylinux_2_16_aarch64" not in plats


def test_musl_platforms() -> None:
    plats = platforms("musl", "1.2", "x86_64")
    assert plats == [
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
        "linux_x86_64",
    ]
    assert not any("manylinux" in p for p in plats)


def test_musl_platforms_aarch64() -> None:
    plats = platforms("musl", "1.1", "aarch64")
    assert plats == ["musllinux_1_1_aarch64", "musllinux_1_0_aarch64", "linux_aarch64"]


# -- target_tags -------------------------------------------------------------------------


def test_target_tags_cp311_glibc() -> None:
    tags = [str(t) for t in target_tags(target())]
    assert tags[0] == "cp311-cp311-manylinux_2_36_x86_64"
    assert "cp311-cp311-manylinux_2_17_x86_64" in tags
    assert "cp311-cp311-manylinux2014_x86_64" in tags
    assert "cp311-abi3-manylinux_2_17_x86_64" in tags
    assert "cp38-abi3-manylinux2014_x86_64" in tags  # older abi3 wheels still install
    assert "cp311-cp311-linux_x86_64" in tags
    assert "py3-none-manylinux_2_17_x86_64" in tags
    assert "py3-none-any" in tags
    assert "cp311-none-any" in tags
    assert not any(t.startswith("cp312") for t in tags)
    assert not any(t.startswith("cp310-cp310") for t in tags)
    assert not any("musllinux" in t or "win" in t or "macosx" in t for t in tags)
    assert len(tags) == len(set(tags))


def test_target_tags_preference_order() -> None:
    tags = [str(t) for t in target_tags(target())]
    idx = tags.index
    assert idx("cp311-cp311-manylinux_2_36_x86_64") < idx("cp311-cp311-manylinux_2_17_x86_64")
    assert idx("cp311-cp311-manylinux_2_17_x86_64") < idx("cp311-abi3-manylinux_2_36_x86_64")
    assert idx("cp311-abi3-manylinux_2_17_x86_64") < idx("py3-none-manylinux_2_17_x86_64")
    assert idx("py3-none-manylinux_2_17_x86_64") < idx("py3-none-any")


def test_target_tags_are_packaging_tags() -> None:
    tags = target_tags(target())
    assert all(isinstance(t, Tag) for t in tags)
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") in tags
    assert Tag("py3", "none", "any") in tags


def test_target_tags_musl() -> None:
    tags = [
        str(t) for t in target_tags(target(python_version="3.12", libc="musl", libc_version="1.2"))
    ]
    assert tags[0] == "cp312-cp312-musllinux_1_2_x86_64"
    assert "cp312-abi3-musllinux_1_1_x86_64" in tags
    assert "py3-none-any" in tags
    assert not any("manylinux" in t for t in tags)
    assert not any(t.startswith("cp311-cp311") for t in tags)


def test_target_tags_follow_the_target() -> None:
    a = target_tags(target())
    b = target_tags(target(libc_version="2.17"))
    assert str(b[0]) == "cp311-cp311-manylinux_2_17_x86_64"
    assert set(b) < set(a)
    assert "cp311-cp311-manylinux_2_18_x86_64" not in {str(t) for t in b}


def test_target_tags_need_a_libc_version() -> None:
    t = replace(target(), name="mine", libc_version=None)
    with pytest.raises(ConfigError) as info:
        target_tags(t)
    assert info.value.exit_code == 3
    assert "'mine'" in info.value.message and "libc-version" in info.value.message
    assert info.value.hint is not None and "targets.mine.libc-version" in info.value.hint
