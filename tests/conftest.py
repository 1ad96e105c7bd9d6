"""Shared test helpers. Fixture families live in their own modules, imported here:
fixtures_index (a real PEP 503 index over loopback), fixtures_simple (the static index
`wheelhouse index` writes, and its checks), fixtures_s3 (moto's S3 server),
fixtures_engine (the recorder of engine calls) and fixtures_docker (the real engine).

The tests are in layers: tests/unit (no engine, no network, no servers on loopback or in
other processes: functions and in-process code), tests/integration (real pip, uv and
pip-compile, servers on loopback, moto, the CLI as a subprocess) and tests/docker (the
real container engine; every test there is marked `docker` by its conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fixtures_serve import Server

sys.path.insert(0, str(Path(__file__).parent))

from fixtures_docker import *  # noqa: F403
from fixtures_engine import *  # noqa: F403
from fixtures_index import *  # noqa: F403
from fixtures_s3 import *  # noqa: F403
from fixtures_simple import *  # noqa: F403

REPO = Path(__file__).resolve().parent.parent

# pytest imports every conftest.py outside a package as the module `conftest`, so loading
# tests/docker/conftest.py takes this one's place in sys.modules. The test modules import
# these helpers with `from conftest import ...`: put this module back before each of them
# is imported (pytest_collect_file runs for every file, before its module is imported).
_THIS = sys.modules[__name__]


@pytest.hookimpl(tryfirst=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    sys.modules[__name__] = _THIS


def isolated_env(cache_dir: Path, **extra: str) -> dict[str, str]:
    """No pip/uv config from this machine leaks into what a test asserts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "WHEELHOUSE_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        WHEELHOUSE_CACHE_DIR=str(cache_dir),
        UV_CACHE_DIR=str(cache_dir / "uv"),
        NO_COLOR="1",
    )
    env.update(extra)
    return env


class Wheelhouse:
    """Runs the real `python -m wheelhouse` CLI in a project folder."""

    def __init__(self, project: Path, cache_dir: Path) -> None:
        self.project = project
        self.cache_dir = cache_dir
        self.env = isolated_env(cache_dir)

    def __call__(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            # -P: the project's own `wheelhouse/` output folder must not shadow the package
            [sys.executable, "-P", "-m", "wheelhouse", *args],
            cwd=self.project,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"wheelhouse {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "project"
    p.mkdir()
    return p


@pytest.fixture
def wh(project: Path, tmp_path: Path) -> Wheelhouse:
    return Wheelhouse(project, tmp_path / "cache")


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """`wheelhouse serve` processes a test started: killed when it ends."""
    made: list[Server] = []
    yield made
    for s in made:
        s.kill()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def debian_targets(images: dict[str, str], *names: str, extra: str = "") -> str:
    """`[targets.*]` tables on the Debian test images (scripts/test_images.py): slim is
    Debian 12's Python 3.11, py313 Debian 13's 3.13. `extra` lines go into every table."""
    tables = {
        "slim": (
            'python-version = "3.11"\n'
            f'builder-image = "{images["py311-builder"]}"\n'
            f'final-image = "{images["py311-slim"]}"\n'
        ),
        "py313": (
            'extends = "slim"\npython-version = "3.13"\nlibc-version = "2.41"\n'
            f'builder-image = "{images["py313-builder"]}"\n'
            f'final-image = "{images["py313-builder"]}"\n'
        ),
    }
    return "".join(f"\n[targets.{n}]\n{tables[n]}{extra}" for n in names)


def lines(text: str) -> Sequence[str]:
    return [x for x in text.splitlines() if x.strip()]
