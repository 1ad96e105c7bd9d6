"""Fixtures for tests against the real container engine (imported by conftest.py).

Nothing here skips: CI installs and starts the engine, so a missing or stopped engine is a
failure to fix, not a test to leave out. The images come from scripts/test_images.py, which
builds them from Debian packages (no registry is reachable) once and reuses them by tag.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

__all__ = ["engine_bin", "test_images"]

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "test_images.py"
_MODULE = "wheelhouse_test_images"


def _images_module() -> ModuleType:
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    spec = importlib.util.spec_from_file_location(_MODULE, _SCRIPT)
    assert spec is not None and spec.loader is not None, _SCRIPT
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def engine_bin() -> str:
    """The engine's client: $WHEELHOUSE_TEST_ENGINE, else Debian's docker (it has BuildKit)."""
    binary = os.environ.get("WHEELHOUSE_TEST_ENGINE") or (
        "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
    )
    path = shutil.which(binary)
    if path is None:
        pytest.fail(
            f"container engine {binary!r} not found: install it (Debian: apt-get install "
            "docker.io; CI does) or set WHEELHOUSE_TEST_ENGINE",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def test_images(engine_bin: str) -> dict[str, str]:
    """Role -> tag of the Debian-made images: py311-builder, py311-slim, py313-builder."""
    module = _images_module()
    try:
        tags: dict[str, str] = module.ensure_images(engine_bin)
    except module.ImageBuildError as e:
        pytest.fail(f"cannot make the test images: {e}", pytrace=False)
    return tags
