"""wheelhouse as a user has it, for the benches that time its start-up: a regular (not
editable) install in a venv of its own. An editable install adds an import hook that costs
~10 ms at every start, a tenth of a warm build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def install_wheelhouse(
    work: Path, extras: str = "uv", *, repo: Path = REPO, venv_name: str = "wheelhouse-venv"
) -> str:
    """Install this checkout, or `repo` (with `extras`), into work/<venv_name>; the path
    of its `wheelhouse`."""
    venv = work / venv_name
    print(f"setup:       pip install {repo.name} into {venv} (untimed) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{repo}[{extras}]"],
        cwd=work,
        env={k: v for k, v in os.environ.items() if k != "PIP_REQUIRE_VIRTUALENV"},
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        sys.exit(f"pip install {repo} failed:\n{res.stderr[-3000:]}")
    return str(venv / "bin" / "wheelhouse")
