"""The example app, end to end on the real engine: lock -> build -> dockerfile -> docker
build --network=none -> the container runs the app's smoke check, offline.

One project (examples/ml-app: Flask + scikit-learn + pandas, about 75 MB of wheels from
PyPI), locked and built once for the module, for a target on the Debian test images
(builder py311-builder, final py311-slim: Debian's python3 3.11, no pip, PEP 668
externally managed). The image it makes is checked with `wheelhouse image-report`: no
wheel file and no compiler in its own layers, and it weighs exactly what was installed.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Wheelhouse, debian_targets, write

from wheelhouse.engine import Engine
from wheelhouse.image import PIP_FILENAME

pytestmark = [pytest.mark.docker, pytest.mark.network]

EXAMPLE = REPO / "examples" / "ml-app"
# The image's size over its base must equal the bytes of what was installed, within this:
# the engine counts a layer as the sizes of its regular files and symlinks (directories
# count nothing), which is exactly what `installed_bytes` adds up in the container, so the
# two agree to a few bytes (symlink sizes are counted slightly differently). 256 KiB is far
# below any stray wheel (the smallest here is ~10 KB, numpy's is 16 MB) or a pip cache
# left behind, which this check exists to catch.
SIZE_TOLERANCE = 256 * 1024


@dataclass
class App:
    project: Path
    wh: Wheelhouse
    engine: Engine
    engine_bin: str
    tag: str
    base: str
    dockerfile: str
    build_log: str
    tags: list[str]


def _docker(engine_bin: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [engine_bin, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Iterator[App]:
    root = tmp_path_factory.mktemp("image-app")
    project, cache = root / "project", root / "cache"
    project.mkdir()
    for name in ("app.py", "requirements.in"):
        shutil.copy(EXAMPLE / name, project / name)
    write(
        project / "wheelhouse.toml",
        f"""
resolver = "uv"
engine = "{engine_bin}"
default-targets = ["slim"]

[index]
index-url = "https://pypi.org/simple"

"""
        + debian_targets(test_images, "slim"),
    )
    wh = Wheelhouse(project, cache)
    wh.env["COLUMNS"] = "200"
    wh("lock")
    wh("build")
    # the build ended by indexing what it assembled: per target and combined, PEP 503 + 691
    for simple in (project / "wheelhouse/slim/simple", project / "wheelhouse/simple"):
        page = (simple / "flask" / "index.html").read_text()
        assert "#sha256=" in page and (simple / "flask" / "index.json").is_file()
    wh(
        "dockerfile", "--target", "slim", "--app", "app.py", "--cmd", "python app.py smoke",
        "--output", "Dockerfile", "--whole",
    )  # fmt: skip
    engine = Engine(engine_bin, cache)
    tag = f"wheelhouse-test-app:{secrets.token_hex(6)}"
    res = engine.build(project, project / "Dockerfile", tag, network_none=True)
    built = App(
        project=project,
        wh=wh,
        engine=engine,
        engine_bin=engine_bin,
        tag=tag,
        base=test_images["py311-slim"],
        dockerfile=(project / "Dockerfile").read_text(),
        build_log=res.stdout + res.stderr,
        tags=[tag],
    )
    try:
        assert res.ok, f"docker build failed:\n{res.tail(40)}"
        yield built
    finally:
        for t in built.tags:
            _docker(engine_bin, "rmi", "--force", t)


def _report(app: App, image: str, *extra: str, check: bool = True) -> dict[str, Any]:
    out = app.wh("image-report", image, "--base", app.base, "--json", *extra, check=check)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _steps(log: str) -> dict[str, list[str]]:
    """BuildKit's plain progress: "[2/4] RUN ..." -> the lines of its step (CACHED, DONE)."""
    ids: dict[str, str] = {}
    lines: dict[str, list[str]] = {}
    for line in log.splitlines():
        m = re.match(r"#(\d+) (\[(?:\S+ )?\d+/\d+\] .*)$", line)
        if m:
            ids[m.group(1)] = m.group(2)
            lines[m.group(2)] = []
            continue
        m = re.match(r"#(\d+) (.*)$", line)
        if m and m.group(1) in ids:
            lines[ids[m.group(1)]].append(m.group(2))
    return lines


def test_dockerfile_binds_the_wheelhouse_and_is_deterministic(app: App) -> None:
    text = app.dockerfile
    assert f"FROM {app.base} AS wheelhouse-final" in text
    assert "RUN --mount=type=bind,source=wheelhouse/slim,target=/tmp/wheelhouse" in text
    # the probe found Debian's interpreter; no pip in the image: a venv without it
    assert "/usr/bin/python3 -m venv --without-pip /opt/venv" in text
    assert "--require-hashes --find-links /tmp/wheelhouse -r /tmp/wheelhouse/lock.txt" in text
    assert "apt-get" not in text  # every wheel came from PyPI: no runtime packages
    assert not re.search(r"^COPY .*wheelhouse", text, re.M)
    assert text.rstrip().splitlines()[-2:] == [
        'COPY ["app.py", "/app/app.py"]',
        'CMD ["python", "app.py", "smoke"]',
    ]
    pip = app.project / "wheelhouse" / "slim" / ".tools"
    assert PIP_FILENAME in [p.name for p in pip.iterdir()]  # and uv, the check's files
    # the same inputs give the same bytes
    app.wh("dockerfile", "--target", "slim", "--app", "app.py", "--cmd", "python app.py smoke",
           "--output", "Dockerfile.again", "--whole")  # fmt: skip
    assert (app.project / "Dockerfile.again").read_text() == text.replace(
        "-f Dockerfile ", "-f Dockerfile.again "
    ).replace("# Dockerfile.dockerignore", "# Dockerfile.again.dockerignore")
    ignore = (app.project / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!wheelhouse/slim/*.whl" in ignore and "!app.py" in ignore


def test_the_app_runs_offline_and_the_image_has_no_pip(app: App) -> None:
    res = _docker(app.engine_bin, "run", "--rm", "--network", "none", app.tag)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("smoke ok"), res.stdout
    probe = _docker(
        app.engine_bin, "run", "--rm", "--network", "none", app.tag, "sh", "-c",
        "command -v python; python -c 'import sys; print(sys.prefix)'",
    )  # fmt: skip
    assert probe.stdout.splitlines() == ["/opt/venv/bin/python", "/opt/venv"], probe.stdout
    # pip ran from its wheel in the bind mount: neither the venv nor the system has it
    for python in ("python", "/usr/bin/python3"):
        res = _docker(app.engine_bin, "run", "--rm", "--network", "none", app.tag,
                      python, "-m", "pip", "--version")  # fmt: skip
        assert res.returncode != 0 and "No module named pip" in res.stderr, res.stdout


def test_no_wheel_and_no_compiler_in_the_image(app: App, test_images: dict[str, str]) -> None:
    report = _report(app, app.tag, "--strict")
    assert report["base_matches"] is True
    own = [f for f in report["findings"] if not f["in_base"]]
    assert own == [], own
    # what the base has (Debian's python3-venv ships ensurepip's wheels) is the base's
    assert {f["kind"] for f in report["findings"]} <= {"wheel"}
    assert all(f["path"].startswith("/usr/share/python-wheels/") for f in report["findings"])
    # the scanner does see compilers and wheels: the builder image has both
    builder = app.wh(
        "image-report", test_images["py311-builder"], "--strict", "--json", check=False
    )
    assert builder.returncode == 12, builder.stderr
    found = json.loads(builder.stdout)["findings"]
    assert {"/usr/bin/gcc", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"} <= {f["path"] for f in found}


def test_size_over_the_base_is_what_was_installed(app: App) -> None:
    report = _report(app, app.tag)
    added = report["added_size"]
    # what the image's own layers hold: the venv and the app, files and symlinks, each
    # inode once (a hard link is one file to the engine as well)
    res = _docker(
        app.engine_bin, "run", "--rm", "--network", "none", app.tag,
        "find", "/opt/venv", "/app", "(", "-type", "f", "-o", "-type", "l", ")",
        "-printf", "%i %s\\n",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    sizes = dict(line.split() for line in res.stdout.splitlines())
    installed = sum(int(s) for s in sizes.values())
    assert installed > 100_000_000, "numpy, scipy, pandas, scikit-learn are not all there"
    assert abs(added - installed) <= SIZE_TOLERANCE, (added, installed)
    # and the layers above the base are the install and the app, nothing else of weight
    own = [layer for layer in report["layers"] if not layer["in_base"]]
    assert own[0]["created_by"].startswith("RUN /bin/sh -c /usr/bin/python3 -m venv")
    assert sum(layer["size"] for layer in own[1:]) < 64 * 1024, own


def test_copy_fallback_builds_with_the_legacy_builder(app: App) -> None:
    """Where bind mounts are not there (DOCKER_BUILDKIT=0: the legacy builder), the
    throwaway-stage fallback builds and ships the same: no wheel in the final image."""
    out = app.wh(
        "dockerfile", "--target", "slim", "--app", "app.py", "--cmd", "python app.py smoke",
        "--output", "Dockerfile.copy", "--whole", "--install", "copy",
    )  # fmt: skip
    assert "extra stage" in out.stderr and "build context" in out.stderr
    text = (app.project / "Dockerfile.copy").read_text()
    assert "--mount" not in text and "COPY --from=wheelhouse-install /opt/venv /opt/venv" in text
    # the legacy builder reads only .dockerignore
    shutil.copy(app.project / "Dockerfile.copy.dockerignore", app.project / ".dockerignore")
    tag = f"wheelhouse-test-app-copy:{secrets.token_hex(6)}"
    app.tags.append(tag)
    try:
        res = app.engine.build(
            app.project, app.project / "Dockerfile.copy", tag, network_none=True, buildkit=False
        )
    finally:
        (app.project / ".dockerignore").unlink()
    assert res.ok, res.tail(30)
    run = _docker(app.engine_bin, "run", "--rm", "--network", "none", tag)
    assert run.stdout.startswith("smoke ok"), run.stdout + run.stderr
    report = _report(app, tag, "--strict")
    assert [f for f in report["findings"] if not f["in_base"]] == []
    mounted = _report(app, app.tag)
    assert abs(report["added_size"] - mounted["added_size"]) <= SIZE_TOLERANCE


def test_app_only_change_rebuilds_only_the_last_layer(app: App) -> None:
    # a second `wheelhouse build` rewrites manifest.json (its wheels are now "reused"):
    # not a build input, so the dependency layer must stay cached
    app.wh("build")
    with (app.project / "app.py").open("a") as f:
        # unique: BuildKit's cache outlives this test's project (an earlier run's change
        # would be a cache hit)
        f.write(f"\n# an app-only change {secrets.token_hex(8)}\n")
    tag = f"wheelhouse-test-app:{secrets.token_hex(6)}"
    app.tags.append(tag)
    res = app.engine.build(app.project, app.project / "Dockerfile", tag, network_none=True)
    assert res.ok, res.tail(30)
    steps = _steps(res.stdout + res.stderr)
    numbered = sorted(steps, key=lambda s: int(s.split("/", 1)[0].split("[")[-1]))
    first, *middle, last = numbered
    assert first.startswith("[1/") and " FROM " in f" {first.split('] ', 1)[1]}"
    for step in middle:
        assert "CACHED" in steps[step], f"rebuilt: {step}\n{steps[step]}"
    assert last.endswith("COPY [app.py, /app/app.py]") and "CACHED" not in steps[last]
    assert len(middle) >= 2  # the install RUN and WORKDIR
    old = app.engine.inspect_image(app.tag)["RootFS"]["Layers"]
    new = app.engine.inspect_image(tag)["RootFS"]["Layers"]
    assert len(old) == len(new) and old[:-1] == new[:-1] and old[-1] != new[-1]
    run = _docker(app.engine_bin, "run", "--rm", "--network", "none", tag)
    assert run.stdout.startswith("smoke ok"), run.stdout + run.stderr
