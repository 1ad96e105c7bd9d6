"""`wheelhouse lock` through the real engine: a target whose Python differs from the
host's is resolved by pip-compile inside that target's builder image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_index import LocalIndex

pytestmark = pytest.mark.docker


def _config(
    project: Path, index: LocalIndex, images: dict[str, str], engine: str, resolver: str
) -> None:
    write(
        project / "wheelhouse.toml",
        f"""
resolver = "{resolver}"
engine = "{engine}"
default-targets = ["slim", "py313"]

[index]
index-url = "{index.url}"

"""
        + debian_targets(images, "slim", "py313"),
    )
    write(project / "requirements.in", "alpha\nbeta\nepsilon\ntheta\n")


def _managed_containers(engine: str) -> list[str]:
    out = subprocess.run(
        [engine, "ps", "-aq", "--filter", "label=io.wheelhouse.managed=1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


@pytest.fixture
def index(fresh_index: LocalIndex) -> LocalIndex:
    # theta 1.0 cannot install on 3.12+, so the targets must diverge on it
    fresh_index.add_wheel("theta", "1.0", requires_python="<3.12")
    fresh_index.add_wheel("theta", "2.0", requires_python=">=3.12")
    return fresh_index


def test_py313_target_resolves_inside_its_builder(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine_bin: str,
) -> None:
    local_index = index
    _config(project, local_index, test_images, engine_bin, "pip")
    before = set(_managed_containers(engine_bin))
    out = wh("lock").stdout

    # the host (3.11) resolves slim itself; py313 goes into the Debian 13 builder
    assert "slim: 5 pins" in out and "resolved on host" in out
    assert f"resolved on container {test_images['py313-builder']}" in out

    slim = (project / "locks/slim.txt").read_text()
    py313 = (project / "locks/py313.txt").read_text()
    # aligned where allowed: alpha 1.0 installs on 3.13 too, so py313 keeps slim's pin
    assert "alpha==1.0 " in slim and "alpha==1.0 " in py313
    # theta 1.0 requires Python < 3.12: py313 must differ; gamma has a < 3.12 marker
    assert "theta==1.0 " in slim and "theta==2.0 " in py313
    assert "gamma==1.0 " in slim and "gamma" not in py313
    # epsilon: only the cp313 wheel's hash, none of the cp311/musl wheels or the sdist
    eps = local_index.sha256("epsilon-1.0-cp313-cp313-manylinux_2_17_x86_64.whl")
    block = py313.split("epsilon==1.0 \\\n", 1)[1].split("    # via", 1)[0]
    assert block.strip() == f"--hash=sha256:{eps}"
    assert "versions differ between targets" in out and "theta: slim 1.0, py313 2.0" in out
    assert "alpha: slim" not in out
    assert "gamma: not in py313" in out
    # the container was removed, whatever happened
    assert set(_managed_containers(engine_bin)) == before


def test_container_pip_compile_agrees_with_uv(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine_bin: str,
) -> None:
    _config(project, index, test_images, engine_bin, "pip")
    wh("lock", "-t", "py313")
    by_pip = (project / "locks/py313.txt").read_bytes()
    (project / "locks/py313.txt").unlink()
    out = wh("--set", "resolver=uv", "lock", "-t", "py313").stdout
    assert "resolved on uv" in out
    assert (project / "locks/py313.txt").read_bytes() == by_pip


@pytest.mark.network
def test_container_reaches_pypi_through_the_hosts_proxy_and_ca(
    wh: Wheelhouse, project: Path, test_images: dict[str, str], engine_bin: str
) -> None:
    """This machine's egress is a TLS-intercepting proxy: pip in the container only gets
    to PyPI if the host's CA bundle and proxy settings are carried in."""
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    write(
        project / "wheelhouse.toml",
        f"""
engine = "{engine_bin}"
ca-bundle = "{ca}"
[targets.py313]
extends = "slim"
python-version = "3.13"
libc-version = "2.41"
builder-image = "{test_images["py313-builder"]}"
""",
    )
    write(project / "requirements.in", "six==1.16.0\n")
    out = wh("lock").stdout
    assert "resolved on container" in out
    lock = (project / "locks/py313.txt").read_text()
    # six 1.16.0's one wheel, as PyPI publishes it
    assert (
        "six==1.16.0 \\\n    --hash=sha256:"
        "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n" in lock
    )
