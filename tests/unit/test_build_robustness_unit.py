"""`wheelhouse build`'s assembly when two runs fill one folder at once, without an engine
(the rest of the build's robustness, through the real engine: tests/docker/
test_build_robustness.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fixtures_index import wheel_bytes

# -- assembling one folder from two runs -------------------------------------------------


def test_placing_a_wheel_placed_meanwhile_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheelhouse.fsutil import link_into
    from wheelhouse.store import Store

    store = Store(tmp_path / "cache")
    src = store.tempdir("test-") / "incoming"
    src.write_bytes(wheel_bytes("gamma", "1.0"))
    blob = store.put(src, "gamma-1.0-py3-none-any.whl")
    folder = tmp_path / "wheelhouse/slim"
    folder.mkdir(parents=True)
    real_link = os.link

    def link(source: Any, dest: Any, **kw: Any) -> None:
        real_link(source, dest, **kw)
        if not (folder / blob.filename).exists():  # the other run's rename lands now
            real_link(blob.path, folder / blob.filename)

    monkeypatch.setattr(os, "link", link)
    link_into(blob.path, folder, blob.filename)
    assert sorted(p.name for p in folder.iterdir()) == [blob.filename]
