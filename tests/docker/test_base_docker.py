"""A vendor ML base as the final image (`base-packages = "inherit"`), end to end on the
real engine.

The base is `mlbase` (scripts/test_images.py): Debian 12's python3 with numpy 1.26.4 and
pandas 2.2.2 installed system-wide from PyPI, vendorlib 1.0.0+vendor.1 (a local version
no index has) and PIP_CONSTRAINT=/etc/pip/constraint.txt (which also holds click<8.2, a
package the image does not have: the lock is held to it). Requirement sets:

(a)+(b) flask, pandas (from the base), vendorlib (local version) and npver, a C extension
        built from source against numpy's headers: the lock pins the base's packages as
        provided (both resolvers agree), the wheelhouse holds none of them, the image is
        built with --network=none, its venv imports the base's copies and its own flask,
        npver reports the numpy it was compiled against (1.26.4), and `pip check` passes.
(c)     numpy>=2: refused (exit 21) naming numpy, 1.26.4 and the requirement.
(d)     numpy>=2 with replace-base = ["numpy"]: the venv's numpy 2 shadows the image's,
        said by lock, build and dockerfile.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import sdist_tarball

from wheelhouse.engine import Engine

pytestmark = [pytest.mark.docker, pytest.mark.network]

SITE = "/usr/local/lib/python3.11/dist-packages"  # where the base's pip installed them
VENV_SITE = "/opt/venv/lib/python3.11/site-packages"

# An extension compiled against numpy's headers that remembers numpy's version then.
NPVER_SETUP = b"""
import numpy
from setuptools import Extension, setup
setup(
    name="npver", version="1.0", install_requires=["numpy"],
    ext_modules=[Extension("npver", ["npver.c"], include_dirs=[numpy.get_include()],
        define_macros=[("NPVER", '"%s"' % numpy.__version__)])],
)
"""
NPVER_C = b"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>
static PyObject *version(PyObject *self, PyObject *args) { return PyUnicode_FromString(NPVER); }
static PyMethodDef methods[] = {{"version", version, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "npver", NULL, -1, methods};
PyMODINIT_FUNC PyInit_npver(void) { import_array(); return PyModule_Create(&mod); }
"""
NPVER_PYPROJECT = b'[build-system]\nrequires = ["setuptools", "numpy"]\n'
NPVER_PKG_INFO = b"Metadata-Version: 2.1\nName: npver\nVersion: 1.0\nRequires-Dist: numpy\n"


@dataclass
class Project:
    root: Path
    wh: Wheelhouse
    engine_bin: str
    tag: str | None = None


def _project(
    root: Path, images: dict[str, str], engine_bin: str, reqs: str, extra: str = ""
) -> Project:
    root.mkdir()
    links = root / "links"
    links.mkdir()
    (links / "npver-1.0.tar.gz").write_bytes(
        sdist_tarball(
            "npver-1.0",
            ["npver-1.0"],
            {
                "setup.py": NPVER_SETUP,
                "npver.c": NPVER_C,
                "pyproject.toml": NPVER_PYPROJECT,
                "PKG-INFO": NPVER_PKG_INFO,
            },
        )
    )
    write(root / "requirements.in", reqs)
    write(
        root / "wheelhouse.toml",
        f"""
resolver = "uv"
engine = "{engine_bin}"
default-targets = ["ml"]

[index]
index-url = "https://pypi.org/simple"
find-links = ["links"]

[targets.ml]
python-version = "3.11"
builder-image = "{images["py311-builder"]}"
final-image = "{images["mlbase"]}"
{extra}
""",
    )
    return Project(root=root, wh=Wheelhouse(root, root.parent / "cache"), engine_bin=engine_bin)


def _image(p: Project) -> str:
    """dockerfile, then docker build --network=none; the image's tag."""
    p.wh("dockerfile", "--target", "ml", "--output", "Dockerfile", "--whole")
    tag = f"wheelhouse-test-base:{secrets.token_hex(6)}"
    res = Engine(p.engine_bin, p.wh.cache_dir).build(
        p.root, p.root / "Dockerfile", tag, network_none=True
    )
    assert res.ok, f"docker build failed:\n{res.tail(40)}"
    p.tag = tag
    return tag


def _run(p: Project, *code: str) -> str:
    assert p.tag
    res = subprocess.run(
        [p.engine_bin, "run", "--rm", "--network", "none", p.tag, *code],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _cleanup(p: Project) -> None:
    if p.tag:
        subprocess.run([p.engine_bin, "rmi", "--force", p.tag], capture_output=True, check=False)


@pytest.fixture(scope="module")
def inherit(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("base") / "inherit"
    p = _project(root, test_images, engine_bin, "flask\npandas\nvendorlib\nnpver\n")
    p.wh("--set", 'resolver="pip"', "lock")
    (root / "pip-lock.txt").write_text((root / "locks/ml.txt").read_text())
    p.wh("lock")
    p.wh("build")
    _image(p)
    try:
        yield p
    finally:
        _cleanup(p)


def test_probe_lists_the_base(inherit: Project) -> None:
    # a second target whose final image is missing: said, counted, and ml is still probed
    gone = (
        "--set",
        'targets.gone.extends="slim"',
        "--set",
        'targets.gone.final-image="absent/x:1"',
    )
    res = inherit.wh(*gone, "targets", "--probe", "gone", "ml", check=False)
    out = res.stdout
    assert res.returncode == 5 and "final probe: failed: image 'absent/x:1'" in out
    assert "base-packages = 'inherit'" in out
    assert f"vendorlib 1.0.0+vendor.1  {SITE}" in out
    assert f"numpy 1.26.4  {SITE}" in out
    assert "final constraint file: /etc/pip/constraint.txt, declared by env PIP_CONSTRAINT" in out


def test_lock_marks_the_base_as_provided(inherit: Project) -> None:
    text = (inherit.root / "locks/ml.txt").read_text()
    blocks = {b.split("==")[0]: b for b in text.split("\n") if "==" in b}
    for spec in ("numpy==1.26.4", "pandas==2.2.2", "vendorlib==1.0.0+vendor.1"):
        assert f"{spec}\n    # provided by the final image" in text, text
    assert "flask" in blocks and "--hash=sha256:" in text.split("flask==")[1].split("\n")[1]
    assert "# base-packages: inherit" in text
    assert "\nclick==8.1." in text  # held to the image's PIP_CONSTRAINT file (click<8.2)
    # pip-compile and uv pin the base alike
    pip_lock = (inherit.root / "pip-lock.txt").read_text()
    for spec in ("numpy==1.26.4", "pandas==2.2.2", "vendorlib==1.0.0+vendor.1"):
        assert f"{spec}\n    # provided by the final image" in pip_lock, pip_lock


def test_lock_check_sees_a_changed_base_setting(inherit: Project) -> None:
    inherit.wh("lock", "--check")
    res = inherit.wh("--set", 'targets.ml.replace-base=["pandas"]', "lock", "--check", check=False)
    assert res.returncode == 8 and "locks/ml.txt: stale" in res.stderr, res.stderr


def test_wheelhouse_holds_no_base_package(inherit: Project) -> None:
    folder = inherit.root / "wheelhouse/ml"
    names = sorted(w.name.split("-")[0].lower() for w in folder.glob("*.whl"))
    assert "flask" in names and "npver" in names
    assert not {"numpy", "pandas", "vendorlib"} & set(names), names
    manifest = json.loads((folder / "manifest.json").read_text())
    provided = {p["name"]: p["version"] for p in manifest["base"]["packages"]}
    assert provided["vendorlib"] == "1.0.0+vendor.1" and provided["numpy"] == "1.26.4"
    assert "--system-site-packages" in (inherit.root / "Dockerfile").read_text()


def test_image_imports_the_base_copies(inherit: Project) -> None:
    code = (
        "import flask, numpy, pandas, vendorlib, npver, json; print(json.dumps({m.__name__: "
        "[m.__file__, getattr(m, '__version__', '')] for m in (flask, numpy, pandas, vendorlib)} "
        "| {'npver': npver.version()}))"
    )
    seen = json.loads(_run(inherit, "python", "-c", code))
    assert seen["numpy"] == [f"{SITE}/numpy/__init__.py", "1.26.4"]
    assert seen["pandas"][0] == f"{SITE}/pandas/__init__.py"
    assert seen["vendorlib"][0] == f"{SITE}/vendorlib.py"
    assert seen["flask"][0].startswith(VENV_SITE)
    assert seen["npver"] == "1.26.4"  # compiled against the base's numpy headers
    # one numpy in the image: the venv has none, the system python sees the same
    _run(inherit, "sh", "-c", f"test ! -e {VENV_SITE}/numpy && test ! -e {VENV_SITE}/pandas")
    system = _run(inherit, "/usr/bin/python3", "-c", "import numpy; print(numpy.__version__)")
    assert system.strip() == "1.26.4"
    _run(inherit, "python", "-m", "pip", "check")


def test_image_report_shows_only_what_was_added(
    inherit: Project, test_images: dict[str, str]
) -> None:
    assert inherit.tag
    out = inherit.wh("image-report", inherit.tag, "--base", test_images["mlbase"], "--json")
    report = json.loads(out.stdout)
    assert report["base_matches"] is True
    added = report["size"] - report["base_size"]
    assert 0 < added < 20_000_000, added  # flask & co. and npver; no second numpy or pandas


@pytest.fixture(scope="module")
def newer(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Project:
    return _project(
        tmp_path_factory.mktemp("base") / "newer", test_images, engine_bin, "numpy>=2,<2.1\n"
    )


def test_a_newer_numpy_is_a_conflict(newer: Project) -> None:
    res = newer.wh("lock", check=False)
    assert res.returncode == 21, res.stdout + res.stderr
    assert "numpy: the final image has 1.26.4" in res.stderr
    assert "-r requirements.in (numpy<2.1,>=2)" in res.stderr
    assert 'replace-base = ["numpy"]' in res.stderr
    res = newer.wh("--set", 'resolver="pip"', "lock", check=False)  # pip-compile alike
    assert res.returncode == 21 and "numpy: the final image has 1.26.4" in res.stderr


def test_replace_base_installs_its_own(newer: Project) -> None:
    res = newer.wh("--set", 'targets.ml.replace-base=["numpy"]', "lock")
    assert "numpy 1.26.4 -> 2.0." in res.stdout + res.stderr
    assert "# replaces-base: numpy 1.26.4 -> 2.0." in (newer.root / "locks/ml.txt").read_text()
    res = newer.wh("--set", 'targets.ml.replace-base=["numpy"]', "build")
    assert "numpy 1.26.4 -> 2.0." in res.stderr
    assert list((newer.root / "wheelhouse/ml").glob("numpy-2.0.*.whl"))
    try:
        _image(newer)
        assert (
            "replaces the image's copy: numpy 1.26.4 -> 2.0."
            in (newer.root / "Dockerfile").read_text()
        )
        seen = _run(newer, "python", "-c", "import numpy; print(numpy.__file__, numpy.__version__)")
        path, version = seen.split()
        assert path == f"{VENV_SITE}/numpy/__init__.py" and version.startswith("2.0.")
        system = _run(newer, "/usr/bin/python3", "-c", "import numpy; print(numpy.__version__)")
        assert system.strip() == "1.26.4"  # the image's own copy is still there, shadowed
    finally:
        _cleanup(newer)


# A vendor image whose python is a venv's (PATH starts with /opt/vendor/bin): a venv made
# from it would not see /opt/vendor's packages, so the stage names them in a .pth file.
VENV_IMAGE = """
FROM {base}
RUN set -e; python3 -m venv --without-pip /opt/vendor; \\
    site=/opt/vendor/lib/python3.11/site-packages; info=$site/venvlib-2.0+vendor.dist-info; \\
    mkdir $info; printf 'NAME = "venvlib"\\n' > $site/venvlib.py; \\
    printf 'Metadata-Version: 2.1\\nName: venvlib\\nVersion: 2.0+vendor\\n\\n' > $info/METADATA
ENV PATH=/opt/vendor/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""


@pytest.fixture(scope="module")
def venv_base(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("base")
    ctx = root / "ctx"
    ctx.mkdir()
    write(ctx / "Dockerfile", VENV_IMAGE.format(base=test_images["mlbase"]))
    image = f"wheelhouse-test-venvbase:{secrets.token_hex(6)}"
    subprocess.run(
        [engine_bin, "build", "-q", "-t", image, str(ctx)],
        capture_output=True, check=True, timeout=300, env={"DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    p = _project(
        root / "p", {**test_images, "mlbase": image}, engine_bin, "venvlib\nitsdangerous\n"
    )
    try:
        p.wh("lock")
        p.wh("build")
        _image(p)
        yield p
    finally:
        _cleanup(p)
        subprocess.run([engine_bin, "rmi", "--force", image], capture_output=True, check=False)


def test_a_venv_base_is_seen_through_a_pth_file(venv_base: Project) -> None:
    lock = (venv_base.root / "locks/ml.txt").read_text()
    assert "venvlib==2.0+vendor\n    # provided by the final image" in lock
    assert "_wheelhouse_base.pth" in (venv_base.root / "Dockerfile").read_text()
    code = "import venvlib, itsdangerous; print(venvlib.__file__, itsdangerous.__file__)"
    mine, theirs = _run(venv_base, "python", "-c", code).split()
    assert mine == "/opt/vendor/lib/python3.11/site-packages/venvlib.py"
    assert theirs.startswith(VENV_SITE)
