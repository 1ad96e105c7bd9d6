"""The final stage on the real engine: runtime system packages fetched ahead and installed
with `--network=none`, a downloaded manylinux wheel whose extension needs a system
library (libgomp.so.1, which the slim image lacks) getting its package, layered and
one-layer installs holding the same files, the uv install and its pip fallback, and the
final check failing the build when a library is missing.

One project for the module: a local index (HTTP over loopback) with `gompdemo` (a real
CPython 3.11 extension compiled here with gcc -fopenmp, packed as a manylinux wheel) and
two small pure wheels; locked and built once on the Debian test images.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import LocalIndex, Wheelhouse, debian_targets, write
from fixtures_index import wheel_bytes, wheel_filename

from wheelhouse.engine import Engine

pytestmark = [pytest.mark.docker, pytest.mark.network]

GOMP_C = r"""
#include <Python.h>
#include <omp.h>
static PyObject *threads(PyObject *self, PyObject *args) {
    return PyLong_FromLong(omp_get_max_threads());
}
static PyMethodDef methods[] = {{"threads", threads, METH_NOARGS, ""}, {0}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_omp", 0, -1, methods};
PyMODINIT_FUNC PyInit__omp(void) { return PyModule_Create(&mod); }
"""
GOMP_TAGS = "cp311-cp311-manylinux_2_17_x86_64"
IMPORT = "import gompdemo._omp as m, alpha, beta; print('threads', m.threads())"


def _record(files: list[tuple[str, bytes]]) -> str:
    def digest(data: bytes) -> str:
        import base64

        raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        return f"sha256={raw.decode()}"

    return "".join(f"{p},{digest(d)},{len(d)}\n" for p, d in files)


def gomp_wheel(tmp: Path) -> tuple[str, bytes]:
    """A manylinux wheel whose extension links libgomp.so.1 (not bundled)."""
    src = write(tmp / "omp.c", GOMP_C)
    out = tmp / "_omp.so"
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-fopenmp", f"-I{include}", str(src), "-o", str(out)],
        check=True,
        timeout=120,
    )
    info = "gompdemo-1.0.dist-info"
    files = [
        ("gompdemo/__init__.py", b""),
        ("gompdemo/_omp.cpython-311-x86_64-linux-gnu.so", out.read_bytes()),
        (f"{info}/METADATA", b"Metadata-Version: 2.1\nName: gompdemo\nVersion: 1.0\n"),
        (
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
            f"Tag: {GOMP_TAGS}\n".encode(),
        ),
    ]
    record = _record(files) + f"{info}/RECORD,,\n"
    path = tmp / f"gompdemo-1.0-{GOMP_TAGS}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [*files, (f"{info}/RECORD", record.encode())]:
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return path.name, path.read_bytes()


@dataclass
class Project:
    root: Path
    wh: Wheelhouse
    engine: Engine
    engine_bin: str
    base: str
    tags: list[str] = field(default_factory=list)

    def dockerfile(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.wh("dockerfile", "-t", "slim", "--whole", "-o", name, *args)

    def build(self, name: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        tag = f"wheelhouse-test-final:{secrets.token_hex(6)}"
        self.tags.append(tag)
        proc = subprocess.run(
            [self.engine_bin, "build", "--progress=plain", "--no-cache", "--network=none",
             "-f", name, "-t", tag, "."],
            cwd=self.root, capture_output=True, text=True, timeout=600, check=False,
            env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        return tag, proc

    def run(self, tag: str, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.engine_bin, "run", "--rm", "--network", "none", tag, *command],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def proj(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Iterator[Project]:
    tmp = tmp_path_factory.mktemp("final-offline")
    root, cache = tmp / "project", tmp / "cache"
    root.mkdir()
    with LocalIndex(tmp / "index") as index:
        index.add_bytes(*gomp_wheel(tmp))
        index.add_wheel("alpha", "1.0")
        index.add_bytes(
            wheel_filename("beta", "1.0"), wheel_bytes("beta", "1.0", requires=["alpha"])
        )
        write(
            root / "wheelhouse.toml",
            f'resolver = "uv"\nengine = "{engine_bin}"\ndefault-targets = ["slim"]\n\n'
            f'[index]\nindex-url = "{index.url}"\n' + debian_targets(test_images, "slim"),
        )
        write(root / "requirements.in", "gompdemo\nbeta\n")
        wh = Wheelhouse(root, cache)
        wh("lock")
        wh("build")
    p = Project(
        root=root, wh=wh, engine=Engine(engine_bin, cache), engine_bin=engine_bin,
        base=test_images["py311-slim"],
    )  # fmt: skip
    try:
        yield p
    finally:
        for tag in p.tags:
            subprocess.run([engine_bin, "rmi", "--force", tag], capture_output=True, check=False)


def _venv_files(p: Project, tag: str) -> dict[str, str]:
    res = p.run(tag, "sh", "-c", "cd /opt/venv && find . -type f -exec sha256sum {} + | sort -k2")
    assert res.returncode == 0, res.stderr
    return {line.split()[1]: line.split()[0] for line in res.stdout.splitlines()}


def test_missing_library_is_fetched_and_installed_offline(proj: Project) -> None:
    res = proj.dockerfile("Dockerfile", "--cmd", f'python -c "{IMPORT}"')
    assert "libgomp.so.1" in res.stderr and "added libgomp1" in res.stderr, res.stderr
    system = proj.root / "wheelhouse" / "slim" / ".system"
    listed = json.loads((system / "packages.json").read_text())
    assert listed["requested"] == ["libgomp1"]
    assert listed["sonames"] == [["libgomp.so.1", "libgomp1"]]
    # each file is the store's, recorded with its hash
    for f in listed["files"]:
        data = (system / f["filename"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]
    assert any(f["filename"].startswith("libgomp1_") for f in listed["files"])
    text = (proj.root / "Dockerfile").read_text()
    assert "apt-get update" not in text and "--network=none" in text
    assert "/tmp/wheelhouse-system/*.deb" in text
    tag, build = proj.build("Dockerfile")
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-4000:]
    assert "wheelhouse: installing with uv" in log
    assert "compiled files load their libraries" in log
    run = proj.run(tag)
    assert run.returncode == 0 and run.stdout.startswith("threads "), run.stderr
    # no apt lists, caches or archives, no wheel, no compiler in the image's own layers
    report = proj.wh("image-report", tag, "--base", proj.base, "--json", "--strict", "--libraries")
    data = json.loads(report.stdout)
    assert [f for f in data["findings"] if not f["in_base"]] == []
    assert data["libraries"]["ok"] is True, data["libraries"]
    # a second run starts no container: the fetched packages are remembered
    again = proj.dockerfile("Dockerfile.again", "--cmd", f'python -c "{IMPORT}"')
    assert json.loads((system / "packages.json").read_text()) == listed, again.stderr


def test_image_report_flags_apt_lists(proj: Project) -> None:
    write(
        proj.root / "Dockerfile.dirty",
        f"FROM {proj.base}\nRUN mkdir -p /var/lib/apt/lists && echo x > "
        "/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease\n",
    )
    tag, build = proj.build("Dockerfile.dirty")
    assert build.returncode == 0, build.stderr[-2000:]
    res = proj.wh("image-report", tag, "--base", proj.base, "--strict", check=False)
    assert res.returncode == 12, res.stdout + res.stderr
    assert "package list/cache" in res.stderr and "/var/lib/apt/lists/" in res.stderr


def test_layered_install_holds_the_same_files(proj: Project) -> None:
    proj.dockerfile("Dockerfile.one", "--layers", "1")
    res = proj.dockerfile("Dockerfile.layers", "--layers", "2")
    text = (proj.root / "Dockerfile.layers").read_text()
    assert text.count("# install layer ") == 2 and "--no-deps" in text
    assert "source=wheelhouse/slim/.layers/1,target=/tmp/wheelhouse" in text, res.stderr
    layers = proj.root / "wheelhouse" / "slim" / ".layers"
    first = sorted(p.name for p in (layers / "1").glob("*.whl"))
    assert first == [f"gompdemo-1.0-{GOMP_TAGS}.whl"]  # the heaviest alone, first
    one, b1 = proj.build("Dockerfile.one")
    many, b2 = proj.build("Dockerfile.layers")
    assert b1.returncode == 0 and b2.returncode == 0, (b1.stderr + b2.stderr)[-4000:]
    assert _venv_files(proj, one) == _venv_files(proj, many)


def test_pip_installer_and_the_fallback_when_uv_cannot_run(proj: Project) -> None:
    proj.dockerfile("Dockerfile.pip", "--installer", "pip")
    assert "/uv pip install" not in (proj.root / "Dockerfile.pip").read_text()
    tag, build = proj.build("Dockerfile.pip")
    assert build.returncode == 0, build.stderr[-4000:]
    assert proj.run(tag, "python", "-c", IMPORT).returncode == 0
    # auto, with a uv that cannot run in the image: pip installs, and the log says so
    proj.dockerfile("Dockerfile.auto")
    uv = proj.root / "wheelhouse" / "slim" / ".tools" / "uv"
    saved = uv.read_bytes()
    try:
        uv.unlink()
        write(uv, "#!/no/such/interpreter\n").chmod(0o755)
        tag, build = proj.build("Dockerfile.auto")
    finally:
        uv.unlink()
        uv.write_bytes(saved)
        uv.chmod(0o755)
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-4000:]
    assert "uv cannot run in this image: installing with pip" in log
    assert proj.run(tag, "python", "-c", IMPORT).returncode == 0


def test_a_missing_library_fails_the_build_naming_it(proj: Project) -> None:
    proj.dockerfile("Dockerfile.broken")
    text = (proj.root / "Dockerfile.broken").read_text()
    # the stage without its system packages: the check must catch what is missing
    start = text.index("# runtime system packages")
    end = text.index("# dependencies:")
    write(proj.root / "Dockerfile.broken", text[:start] + text[end:])
    _, build = proj.build("Dockerfile.broken")
    log = build.stdout + build.stderr
    assert build.returncode != 0
    so = "gompdemo/_omp.cpython-311-x86_64-linux-gnu.so"
    assert f"{so} (from gompdemo) needs libgomp.so.1" in log
    assert "the system package libgomp1" in log
    # built without the check too: image-report --libraries finds the same
    text = (proj.root / "Dockerfile.broken").read_text()
    write(proj.root / "Dockerfile.broken", text[: text.index("# the environment is whole")])
    tag, build = proj.build("Dockerfile.broken")
    assert build.returncode == 0, build.stderr[-3000:]
    res = proj.wh("image-report", tag, "--libraries", "--strict", check=False)
    assert res.returncode == 12, res.stdout + res.stderr
    assert f"{so} (from gompdemo) needs libgomp.so.1" in res.stderr
