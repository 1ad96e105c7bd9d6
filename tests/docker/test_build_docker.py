"""`wheelhouse build` through the real engine and PyPI (issue 3's acceptance).

Two projects, each with its own initially empty cache, shared by the tests of this module
because their downloads and builds are large:

* `app`: the example ML app plus docopt (sdist-only, pure), pyyaml forced from source
  (libyaml) and psycopg2 (sdist-only, libpq), locked and built for `slim` (the Debian 12
  test images). The wheelhouse must install offline, with hashes, in a derived final
  image; a second build must start no container and download nothing.
* `multi`: docopt and pyyaml for `slim` and `py313` (Debian 13 builder) in one run: the
  3.13 target compiles its own cp313 wheel in its own builder, the pure docopt wheel is
  built once and shared, and slim's wheels are byte-identical to the ones `app` built in
  its own cache.

Every engine call goes through a wrapper that logs its argv (fixtures_engine's recorder),
so the tests see which containers and images wheelhouse really made.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import secrets
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_engine import RecordingBinary, verb
from packaging.utils import canonicalize_name, parse_wheel_filename

from wheelhouse.lock import lockfile

pytestmark = [pytest.mark.docker, pytest.mark.network]

BUILT_FROM_SOURCE = {"docopt", "pyyaml", "psycopg2"}
APP_REQUIREMENTS = """\
# examples/ml-app/requirements.in
flask>=3
gunicorn
scikit-learn
numpy
pandas
# sdist-only and pure Python
docopt
# forced from source (no-binary): the recipe adds libyaml-dev, PYYAML_FORCE_LIBYAML=1
pyyaml
# sdist-only, compiled against libpq (the recipe adds libpq-dev)
psycopg2
"""
# Engine subcommands that make a container or an image, or fetch one.
STARTS_SOMETHING = {"create", "run", "start", "build", "pull", "exec", "import", "load"}

# A proxy nothing listens on, for files.pythonhosted.org only: a build that downloads a
# file fails, while the index pages on pypi.org still answer (they may be asked again).
NO_FILE_DOWNLOADS = {
    **{k: "http://127.0.0.1:9" for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY")},
    **{k: "pypi.org" for k in ("NO_PROXY", "no_proxy")},
}


# -- helpers -------------------------------------------------------------------------------


_BOOLEAN_FLAGS = {"--rm", "--read-only", "--init", "--privileged", "-i", "-t", "--interactive"}


def _build_containers(calls: list[list[str]]) -> list[dict[str, Any]]:
    """Every container created to build an sdist (a mount at /in/<sdist>)."""
    found = []
    for argv in calls:
        if verb(argv) != "create":
            continue
        opts: dict[str, list[str]] = {}
        i = 1 if argv[0] == "create" else 2
        while i < len(argv) and argv[i].startswith("-"):
            flag, eq, value = argv[i].partition("=")
            if not eq and flag in _BOOLEAN_FLAGS:
                value = "true"
            elif not eq:
                i += 1
                value = argv[i]
            opts.setdefault(flag, []).append(value)
            i += 1
        mounts = [dict(_kv(p) for p in m.split(",")) for m in opts.get("--mount", [])]
        sdists = [m["target"][4:] for m in mounts if m["target"].startswith("/in/")]
        if sdists:
            found.append({"sdist": sdists[0], "image": argv[i], "opts": opts, "mounts": mounts})
    return found


def _kv(part: str) -> tuple[str, str]:
    k, _, v = part.partition("=")
    return k, v or "true"


def _summary(stdout: str) -> dict[str, dict[str, str]]:
    """The summary table of `wheelhouse build`: target -> column -> cell."""
    rows = [
        [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]
        for line in stdout.splitlines()
        if re.match(r"^\s*[│┃|]", line)
    ]
    header = next(r for r in rows if "target" in r and "built" in r)
    return {r[0]: dict(zip(header, r, strict=True)) for r in rows if r is not header and r[0]}


def _counts(summary: dict[str, dict[str, str]], target: str) -> dict[str, int]:
    row = summary[target]
    return {k: int(row[k]) for k in ("wheels", "reused", "downloaded", "cached", "built", "failed")}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _blobs(cache: Path) -> dict[str, tuple[int, int]]:
    """Every file of the store's blobs: path -> (inode, mtime_ns)."""
    root = cache / "store" / "blobs"
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _wheels(folder: Path) -> dict[str, Path]:
    """canonical project name -> its one wheel in the folder (fails on duplicates)."""
    out: dict[str, Path] = {}
    for whl in sorted(folder.glob("*.whl")):
        name = parse_wheel_filename(whl.name)[0]
        assert name not in out, f"two wheels of {name}: {out[name].name}, {whl.name}"
        out[name] = whl
    return out


def _members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def _by_name(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {canonicalize_name(w["name"]): w for w in manifest["wheels"]}


def _inspect(engine: str, ref: str) -> dict[str, Any]:
    out = subprocess.run(
        [engine, "image", "inspect", ref], capture_output=True, text=True, check=True
    )
    data: dict[str, Any] = json.loads(out.stdout)[0]
    return data


def _docker(
    engine: str, *args: str, timeout: float = 600, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([engine, *args], capture_output=True, text=True, timeout=timeout, **kw)


def _wh(project: Path, cache: Path) -> Wheelhouse:
    wh = Wheelhouse(project, cache)
    wh.env["COLUMNS"] = "200"  # a wide terminal keeps the summary table's cells whole
    return wh


# -- the example app, built for slim --------------------------------------------------------


@dataclass
class App:
    project: Path
    cache: Path
    wh: Wheelhouse
    engine: RecordingBinary
    first_out: str
    first_calls: list[list[str]]
    first_manifest: dict[str, Any]
    first_lock: str
    blobs_after_first: dict[str, tuple[int, int]]

    @property
    def folder(self) -> Path:
        return self.project / "wheelhouse" / "slim"


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> App:
    root = tmp_path_factory.mktemp("build-app")
    project, cache = root / "project", root / "cache"
    project.mkdir()
    engine = RecordingBinary(root, real=engine_bin)
    write(
        project / "wheelhouse.toml",
        f"""
resolver = "uv"
engine = "{engine.binary}"
default-targets = ["slim"]

[index]
index-url = "https://pypi.org/simple"

"""
        + debian_targets(test_images, "slim", extra='no-binary = ["pyyaml"]\n'),
    )
    write(project / "requirements.in", APP_REQUIREMENTS)
    wh = _wh(project, cache)
    wh("lock")
    engine.clear()
    out = wh("build").stdout
    folder = project / "wheelhouse" / "slim"
    return App(
        project=project,
        cache=cache,
        wh=wh,
        engine=engine,
        first_out=out,
        first_calls=engine.calls(),
        first_manifest=json.loads((folder / "manifest.json").read_text()),
        first_lock=(folder / "lock.txt").read_text(),
        blobs_after_first=_blobs(cache),
    )


def test_every_pin_has_exactly_one_wheel_with_its_hash_in_the_folder_lock(app: App) -> None:
    upstream = lockfile.read(app.project / "locks" / "slim.txt")
    assert upstream is not None
    pins: dict[str, str] = {p.name: p.version for p in upstream.pins}
    assert BUILT_FROM_SOURCE | {"flask", "gunicorn", "scikit-learn", "numpy", "pandas"} <= set(pins)
    assert set(upstream.source_builds) == BUILT_FROM_SOURCE

    wheels = _wheels(app.folder)
    assert set(wheels) == set(pins), "the folder must hold one wheel per pin, nothing else"
    for name, whl in wheels.items():
        assert str(parse_wheel_filename(whl.name)[1]) == pins[name], whl.name
    assert not [p.name for p in app.folder.iterdir() if p.name.startswith(".")], "temp files left"

    # the folder's lock pins the same versions, with the hash of exactly the wheel present
    own = lockfile.read(app.folder / "lock.txt")
    assert own is not None
    assert {p.name: p.version for p in own.pins} == pins
    for p in own.pins:
        assert p.hashes == (f"sha256:{_sha256(wheels[p.name])}",), p.name
    # ...and the upstream hashes of the sdists are not what is in the folder
    built = {p.name: p.hashes for p in upstream.pins if p.name in BUILT_FROM_SOURCE}
    for name, hashes in built.items():
        assert f"sha256:{_sha256(wheels[name])}" not in hashes

    # hard links from the store, not copies
    blobs = app.cache / "store" / "blobs"
    for whl in wheels.values():
        sha = _sha256(whl)
        stored = blobs / sha[:2] / sha / whl.name
        assert stored.is_file(), f"{whl.name} is not in the store under its sha256"
        assert whl.stat().st_ino == stored.stat().st_ino, f"{whl.name} is a copy, not a link"


def test_manifest_sources_compiled_modules_and_provenance(
    app: App, test_images: dict[str, str], engine_bin: str
) -> None:
    m = app.first_manifest
    assert m["target"] == "slim" and m["complete"] is True and m["missing"] == []
    wheels = _wheels(app.folder)
    entries = _by_name(m)
    assert set(entries) == set(wheels)
    for name, e in entries.items():
        assert e["source"] == ("built" if name in BUILT_FROM_SOURCE else "downloaded"), name
        assert e["filename"] == wheels[name].name
        assert e["sha256"] == _sha256(wheels[name])
        assert e["size"] == wheels[name].stat().st_size
    summary = _counts(_summary(app.first_out), "slim")
    assert summary == {
        "wheels": len(wheels),
        "reused": 0,
        "downloaded": len(wheels) - 3,
        "cached": 0,
        "built": 3,
        "failed": 0,
    }

    # the C extensions really were compiled in, for CPython 3.11
    for name, pattern in (("pyyaml", "yaml/_yaml*.so"), ("psycopg2", "psycopg2/_psycopg*.so")):
        whl = wheels[name]
        assert fnmatch.filter(_members(whl), pattern), f"{whl.name} has no {pattern}"
        tags = parse_wheel_filename(whl.name)[3]
        assert {(t.interpreter, t.abi) for t in tags} == {("cp311", "cp311")}, whl.name
    docopt_tags = parse_wheel_filename(wheels["docopt"].name)[3]
    assert all(t.platform == "any" and t.abi == "none" for t in docopt_tags)

    # provenance: inputs, image, the libraries linked outside the wheel -> runtime packages
    base_id = _inspect(engine_bin, test_images["py311-builder"])["Id"]
    records = {n: entries[n]["provenance"] for n in BUILT_FROM_SOURCE}
    for name, rec in records.items():
        assert rec["sha256"] == entries[name]["sha256"]
        assert rec["sdist"]["filename"] == entries[name]["from"]
        assert rec["sdist"]["filename"].endswith((".tar.gz", ".zip"))
        assert rec["base_image"] == test_images["py311-builder"]
        assert rec["base_image_id"] == base_id
        assert rec["builder_image"].startswith("wheelhouse-builder:")
        assert _inspect(engine_bin, rec["builder_image"])["Id"] == rec["builder_image_id"]
        assert rec["python"].startswith("3.11.")
        assert rec["build_dependencies"], f"{name}: no build dependency recorded"
        assert Path(rec["log"]).is_file(), f"{name}: its build log is gone"
    for name in ("blinker", "numpy"):
        assert entries[name]["provenance"] is None and entries[name]["runtime_packages"] == []
    # builder images are tagged by a content hash
    for rec in records.values():
        assert re.fullmatch(r"wheelhouse-builder:[0-9a-f]{12,64}", rec["builder_image"])
    assert any(d.startswith("cython-") for d in records["pyyaml"]["build_dependencies"])
    assert any("libyaml-0.so" in lib for lib in records["pyyaml"]["linked_libraries"])
    assert any("libpq.so" in lib for lib in records["psycopg2"]["linked_libraries"])
    assert records["docopt"]["linked_libraries"] == []
    assert "libyaml-0-2" in entries["pyyaml"]["runtime_packages"]
    assert "libpq5" in entries["psycopg2"]["runtime_packages"]
    assert entries["docopt"]["runtime_packages"] == []
    assert {"libyaml-0-2", "libpq5"} <= set(m["runtime_packages"])
    assert not {"libc6", "libc-bin"} & set(m["runtime_packages"])
    assert "libyaml-0-2" in app.first_out and "libpq5" in app.first_out


def test_builds_ran_hermetically(app: App, engine_bin: str) -> None:
    """Network off, unprivileged, inputs read-only, SOURCE_DATE_EPOCH fixed."""
    builds = _build_containers(app.first_calls)
    images = {
        e["provenance"]["builder_image"]
        for e in app.first_manifest["wheels"]
        if e["source"] == "built"
    }
    sdists = {canonicalize_name(re.split(r"-\d", b["sdist"], maxsplit=1)[0]) for b in builds}
    assert sdists == BUILT_FROM_SOURCE
    for b in builds:
        opts = b["opts"]
        assert opts["--network"] == ["none"], b["sdist"]
        user = opts.get("--user", ["root"])[0].split(":")[0]
        assert user not in ("", "0", "root"), f"{b['sdist']} built as {user!r}"
        assert any(e.startswith("SOURCE_DATE_EPOCH=") for e in opts.get("--env", []))
        for mount in b["mounts"]:
            writable = mount.get("readonly") != "true" and mount.get("ro") != "true"
            assert not writable or mount["target"] == "/out", f"{mount} is writable"
        assert b["image"] in images
    # and every container wheelhouse made is gone again
    names = [argv[argv.index("--name") + 1] for argv in app.first_calls if "--name" in argv]
    assert len(names) >= len(builds)
    left = _docker(engine_bin, "ps", "--all", "--format", "{{.Names}}", check=True)
    assert not set(names) & set(left.stdout.split()), "containers left behind"


@pytest.fixture
def final_image(app: App, test_images: dict[str, str], engine_bin: str) -> Iterator[str]:
    """The slim test image plus the manifest's runtime packages (apt needs the network
    here, for this image build only)."""
    packages = app.first_manifest["runtime_packages"]
    tag = f"wheelhouse-test-final:{secrets.token_hex(6)}"
    dockerfile = (
        f"FROM {test_images['py311-slim']}\n"
        "RUN apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends {' '.join(packages)} \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
    )
    res = _docker(
        engine_bin,
        "build",
        "--force-rm",
        "--tag",
        tag,
        "-",
        input=dockerfile,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    assert res.returncode == 0, f"cannot build the final image:\n{res.stdout}\n{res.stderr}"
    try:
        yield tag
    finally:
        _docker(engine_bin, "rmi", "--force", tag)


_INSTALL = (
    "set -e; python3 -m venv /tmp/v; "
    "/tmp/v/bin/pip install --quiet --no-index --require-hashes --find-links /wh "
    "-r /wh/lock.txt; "
)
_IMPORT = r"""
import json, yaml, psycopg2, psycopg2.extensions, docopt, sklearn, pandas, numpy
from sklearn.linear_model import LinearRegression
model = LinearRegression().fit(pandas.DataFrame({"x": [0.0, 1.0, 2.0]}), [1.0, 3.0, 5.0])
print(json.dumps({
    "libyaml": yaml.__with_libyaml__,
    "yaml": yaml.__file__,
    "cyaml": yaml.load("a: [1, 2]", Loader=yaml.CSafeLoader),
    "psycopg2": psycopg2.__version__,
    "psycopg": psycopg2._psycopg.__file__,
    "libpq": psycopg2.extensions.libpq_version(),
    "docopt": docopt.docopt("usage: prog <x>", argv=["7"]),
    "slope": round(float(model.coef_[0]), 6),
}))
"""


def test_installs_offline_with_hashes_in_a_fresh_final_container(
    app: App, final_image: str, test_images: dict[str, str], engine_bin: str
) -> None:
    mount = f"type=bind,source={app.folder},target=/wh,readonly"
    # the slim image alone lacks libpq: the manifest's runtime packages are what it needs
    bare = _docker(
        engine_bin,
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        mount,
        test_images["py311-slim"],
        "sh",
        "-c",
        "set -e; python3 -m venv /tmp/v; "
        "/tmp/v/bin/pip install --quiet --no-index --no-deps /wh/psycopg2-*.whl; "
        "/tmp/v/bin/python -c 'import psycopg2'",
    )
    assert bare.returncode != 0 and "libpq.so.5" in bare.stderr, bare.stderr

    res = _docker(
        engine_bin,
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        mount,
        "--env",
        f"CHECK={_IMPORT}",
        final_image,
        "sh",
        "-c",
        _INSTALL + '/tmp/v/bin/python -c "$CHECK"',
        timeout=900,
    )
    assert res.returncode == 0, f"offline install failed:\n{res.stdout}\n{res.stderr}"
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["libyaml"] is True
    assert got["yaml"].startswith("/tmp/v/") and got["psycopg"].startswith("/tmp/v/")
    assert got["cyaml"] == {"a": [1, 2]}
    assert "pq3" in got["psycopg2"] and got["libpq"] > 0
    assert got["docopt"] == {"<x>": "7"}
    assert got["slope"] == 2.0


def test_second_build_starts_no_container_and_downloads_nothing(app: App) -> None:
    app.engine.clear()
    out = app.wh("build", env=NO_FILE_DOWNLOADS).stdout

    calls = app.engine.calls()
    started = [c for c in calls if verb(c) in STARTS_SOMETHING]
    assert not started, f"a build with nothing changed ran: {started}"
    n = len(_wheels(app.folder))
    assert _counts(_summary(out), "slim") == {
        "wheels": n,
        "reused": n - 3,
        "downloaded": 0,
        "cached": 3,
        "built": 0,
        "failed": 0,
    }
    # not one blob added, replaced or rewritten
    assert _blobs(app.cache) == app.blobs_after_first
    # the same wheels, and the same folder lock
    assert (app.folder / "lock.txt").read_text() == app.first_lock
    manifest = json.loads((app.folder / "manifest.json").read_text())
    before = {e["name"]: e["sha256"] for e in app.first_manifest["wheels"]}
    assert {e["name"]: e["sha256"] for e in manifest["wheels"]} == before
    sources = {canonicalize_name(e["name"]): e["source"] for e in manifest["wheels"]}
    assert {k for k, v in sources.items() if v == "cached"} == BUILT_FROM_SOURCE
    assert {v for k, v in sources.items() if k not in BUILT_FROM_SOURCE} == {"reused"}
    # a cached wheel keeps its provenance
    assert _by_name(manifest)["pyyaml"]["provenance"]["sha256"] == before["pyyaml"]
    for whl in app.folder.glob("*.whl"):
        assert stat.S_ISREG(whl.stat().st_mode) and whl.stat().st_nlink >= 2


# -- slim and py313 in one run ----------------------------------------------------------------


@dataclass
class Multi:
    project: Path
    cache: Path
    out: str
    calls: list[list[str]]

    def manifest(self, target: str) -> dict[str, dict[str, Any]]:
        path = self.project / "wheelhouse" / target / "manifest.json"
        return _by_name(json.loads(path.read_text()))


@pytest.fixture(scope="module")
def multi(
    tmp_path_factory: pytest.TempPathFactory, test_images: dict[str, str], engine_bin: str
) -> Multi:
    root = tmp_path_factory.mktemp("build-multi")
    project, cache = root / "project", root / "cache"
    project.mkdir()
    engine = RecordingBinary(root, real=engine_bin)
    write(
        project / "wheelhouse.toml",
        f"""
resolver = "uv"
engine = "{engine.binary}"
default-targets = ["slim", "py313"]

[index]
index-url = "https://pypi.org/simple"

"""
        + debian_targets(test_images, "slim", "py313", extra='no-binary = ["pyyaml"]\n'),
    )
    write(project / "requirements.in", "docopt\npyyaml\n")
    wh = _wh(project, cache)
    wh("lock")
    engine.clear()
    out = wh("build", "-t", "slim", "-t", "py313").stdout
    return Multi(project=project, cache=cache, out=out, calls=engine.calls())


def test_rebuild_in_another_empty_cache_is_byte_identical(app: App, multi: Multi) -> None:
    assert app.cache != multi.cache
    first = _by_name(app.first_manifest)
    second = multi.manifest("slim")
    for name in ("docopt", "pyyaml"):
        a, b = first[name], second[name]
        assert a["source"] == b["source"] == "built", name
        assert a["version"] == b["version"], f"{name}: PyPI moved between the two locks"
        assert a["provenance"]["builder_image"] == b["provenance"]["builder_image"]
        assert a["provenance"]["sdist"]["sha256"] == b["provenance"]["sdist"]["sha256"]
        assert (a["filename"], a["sha256"]) == (b["filename"], b["sha256"]), name


def test_py313_builds_its_own_wheel_in_its_own_builder(
    multi: Multi, test_images: dict[str, str], engine_bin: str
) -> None:
    slim, py313 = multi.manifest("slim"), multi.manifest("py313")
    entry = py313["pyyaml"]
    assert entry["source"] == "built"
    tags = parse_wheel_filename(entry["filename"])[3]
    assert {(t.interpreter, t.abi) for t in tags} == {("cp313", "cp313")}, entry["filename"]
    whl = multi.project / "wheelhouse" / "py313" / entry["filename"]
    assert _sha256(whl) == entry["sha256"]
    assert fnmatch.filter(_members(whl), "yaml/_yaml.cpython-313-*.so")
    assert "libyaml-0-2" in entry["runtime_packages"]

    rec = entry["provenance"]
    assert rec["python"].startswith("3.13.")
    assert rec["base_image"] == test_images["py313-builder"]
    base = _inspect(engine_bin, test_images["py313-builder"])
    assert rec["base_image_id"] == base["Id"]
    builder = _inspect(engine_bin, rec["builder_image"])
    assert builder["Id"] == rec["builder_image_id"]
    layers = base["RootFS"]["Layers"]
    assert builder["RootFS"]["Layers"][: len(layers)] == layers, "not made from the py313 base"
    assert rec["builder_image"] != slim["pyyaml"]["provenance"]["builder_image"]
    assert slim["pyyaml"]["sha256"] != entry["sha256"]
    # and the container that compiled it ran that image
    images = {b["image"] for b in _build_containers(multi.calls) if b["sdist"].startswith("pyyaml")}
    assert images == {rec["builder_image"], slim["pyyaml"]["provenance"]["builder_image"]}


def test_pure_sdist_is_built_once_and_shared_by_both_targets(multi: Multi) -> None:
    slim, py313 = multi.manifest("slim"), multi.manifest("py313")
    assert slim["docopt"]["source"] == "built"
    assert py313["docopt"]["source"] == "cached"
    assert py313["docopt"]["sha256"] == slim["docopt"]["sha256"]
    assert py313["docopt"]["filename"] == slim["docopt"]["filename"]
    summary = _summary(multi.out)
    assert _counts(summary, "slim")["built"] == 2
    assert _counts(summary, "py313")["built"] == 1 and _counts(summary, "py313")["cached"] == 1
    # only slim's builder ever saw the docopt sdist (a retry there to learn a dynamic
    # build requirement is fine; a build in the py313 builder is not)
    docopt_images = {
        b["image"] for b in _build_containers(multi.calls) if b["sdist"].startswith("docopt")
    }
    assert docopt_images == {slim["docopt"]["provenance"]["builder_image"]}
    records = [json.loads(p.read_text()) for p in (multi.cache / "store" / "built").glob("*.json")]
    assert [r["filename"] for r in records if r["filename"].startswith("docopt")] == [
        slim["docopt"]["filename"]
    ]
