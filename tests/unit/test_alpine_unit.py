"""The alpine target's images without an engine: Dockerfile.builder's apk branch (its own
shell, run under sh with an `apk` that records its arguments) and the final stage's apk
packages. The lock, plan and fetch are in tests/integration/test_alpine.py."""

from __future__ import annotations

import json
import re
import subprocess
from importlib import resources
from pathlib import Path

import pytest
from conftest import write
from fixtures_engine import RecordingBinary

from wheelhouse import config as config_mod
from wheelhouse.image import dockerfile as df

# -- the images' Dockerfiles ------------------------------------------------------------


def _builder_script() -> str:
    """The package-installing RUN of the shipped Dockerfile.builder, as sh runs it."""
    text = resources.files("wheelhouse").joinpath("_data/Dockerfile.builder").read_text()
    joined = re.sub(r"\\\n", " ", text)
    runs = [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]
    return next(r for r in runs if "apk" in r)


def _run_builder_script(tmp_path: Path, *, python: bool) -> tuple[int, str, str]:
    """Dockerfile.builder's shell on a PATH with an `apk` that records its arguments (and
    a python3 when the base has one, as python:3.12-alpine does), no apt-get."""
    bin_dir = tmp_path / "bin"
    apk = RecordingBinary(bin_dir, "apk")
    if python:
        write(bin_dir / "python3", "#!/bin/sh\n").chmod(0o755)
    env = {"PATH": str(bin_dir), "APK_PACKAGES": "yaml-dev libpq-dev", "APT_PACKAGES": "x",
           "BASE": "python:3.12-alpine3.20"}  # fmt: skip
    proc = subprocess.run(
        ["/bin/sh", "-c", _builder_script()], env=env, capture_output=True, text=True
    )
    return proc.returncode, "".join(line + "\n" for line in apk.lines()), proc.stderr


def test_builder_dockerfile_installs_the_toolchain_with_apk(tmp_path: Path) -> None:
    rc, calls, err = _run_builder_script(tmp_path / "py", python=True)
    assert rc == 0, err
    assert calls.split() == [
        "add", "--no-cache", "build-base", "musl-dev", "ca-certificates", "yaml-dev", "libpq-dev",
    ]  # fmt: skip
    # a base without Python (like a bare alpine:3.20) gets Alpine's python3, headers, pip
    rc, calls, err = _run_builder_script(tmp_path / "bare", python=False)
    assert rc == 0, err
    assert calls.split()[:2] == ["add", "--no-cache"]
    assert {"python3", "python3-dev", "py3-pip", "musl-dev", "yaml-dev"} <= set(calls.split())
    assert "apt" not in calls and "x" not in calls.split()


def test_final_dockerfile_for_alpine_uses_apk_and_recipes_apk_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(df, "ensure_pip", lambda config, folder: folder / ".tools" / "pip.whl")
    monkeypatch.setattr(df, "ensure_uv", lambda config, folder, arch: None)
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    root = tmp_path / "project"
    write(root / "wheelhouse.toml", '[targets.alpine]\npython-version = "3.12"\n')
    folder = root / "wheelhouse" / "alpine"
    write(folder / "lock.txt", "")
    built = [  # built from source for alpine: the shipped recipes name their apk packages
        {"name": n, "provenance": {"sha256": "x"}} for n in ("pyyaml", "psycopg2")
    ]
    manifest = {"complete": True, "missing": [], "runtime_packages": [], "wheels": built}
    write(folder / "manifest.json", json.dumps(manifest))
    cfg = config_mod.load(root, environ={"WHEELHOUSE_CACHE_DIR": str(tmp_path / "cache")})
    res = df.dockerfile(cfg, cfg.target("alpine"), engine=None, whole=True)
    assert res.stage.family == "apk"
    assert res.stage.packages == ("libpq", "yaml")  # runtime.apk of psycopg2 and pyyaml
    lines = [x for x in res.text.splitlines() if x.startswith(("RUN", "FROM"))]
    assert lines[0] == "FROM python:3.12-alpine3.20 AS wheelhouse-final"
    assert lines[1] == "RUN apk add --no-cache libpq yaml"
    assert "apt-get" not in res.text and "dpkg" not in res.text
    assert "python3 -m venv --without-pip /opt/venv" in res.text
