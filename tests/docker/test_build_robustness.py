"""`wheelhouse build` when things go wrong, through the real CLI, the real engine and a
loopback index: tampered downloads, failing and lying source builds, a build killed with
SIGKILL, two builds on one cache at once, a corrupted cache, and what --dry-run touches.

Source builds use sdists made here with an in-tree PEP 517 backend (`requires = []`), so
the builder needs no build dependencies and no network. Every test gets its own cache; the
builder image is shared (tagged by content hash), so only the first test may build it.
The engine is called through a wrapper that logs each call (fixtures_engine's recorder), so
a test can say exactly which containers *it* made, whatever else runs on this engine. How a
run assembles one folder with another one at once: tests/unit/test_build_robustness_unit.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse, debian_targets, write
from fixtures_engine import RecordingBinary, purpose
from fixtures_index import LocalIndex, sdist_tarball, wheel_bytes

from wheelhouse.lock import lockfile

docker = pytest.mark.docker  # every test here needs the engine (see tests/docker/conftest.py)


# -- sdists whose build does what a test needs -------------------------------------------

# Stdlib only. The wheel's tag and what build_wheel does first are filled in per sdist.
_BACKEND = '''\
"""In-tree PEP 517 backend made by tests/docker/test_build_robustness.py."""
import base64
import hashlib
import os
import sys
import time
import zipfile

NAME, VERSION, TAG = @NAME@, @VERSION@, @TAG@
DIST = NAME.replace("-", "_")
INFO = DIST + "-" + VERSION + ".dist-info"


def _metadata():
    with open("PKG-INFO", "rb") as f:
        return f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    os.makedirs(os.path.join(metadata_directory, INFO))
    with open(os.path.join(metadata_directory, INFO, "METADATA"), "wb") as f:
        f.write(_metadata())
    return INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
@BEFORE@
    pure = TAG.endswith("-none-any")
    wheel = "Wheel-Version: 1.0\\nGenerator: test-backend\\nRoot-Is-Purelib: %s\\nTag: %s\\n" % (
        "true" if pure else "false", TAG)
    files = [
        (DIST + "/__init__.py", ("VERSION = %r\\n" % VERSION).encode()),
        (INFO + "/METADATA", _metadata()),
        (INFO + "/WHEEL", wheel.encode()),
    ]
    record = ""
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record += "%s,sha256=%s,%d\\n" % (path, digest.decode(), len(data))
    files.append((INFO + "/RECORD", (record + INFO + "/RECORD,,\\n").encode()))
    filename = "%s-%s-%s.whl" % (DIST, VERSION, TAG)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    return filename
'''

FAIL = """\
    print("gcc -O2 -c src/_speedups.c -o build/_speedups.o", flush=True)
    print("src/_speedups.c:3:10: fatal error: missing_header.h: No such file", file=sys.stderr)
    print("compilation terminated.", file=sys.stderr)
    raise SystemExit("error: command 'gcc' failed with exit code 1")
"""


def sleep_for(seconds: float) -> str:
    return f'    print("compiling slowly", flush=True)\n    time.sleep({seconds})\n'


def custom_sdist(
    name: str,
    version: str = "1.0",
    *,
    before: str = "",
    tag: str = "py3-none-any",
    requires: tuple[str, ...] = (),
) -> tuple[str, bytes]:
    """(filename, bytes) of a valid sdist whose build_wheel runs `before` first and makes a
    wheel tagged `tag` holding only a .py file; `requires` is its build-system.requires."""
    dist = name.replace("-", "_")
    base = f"{dist}-{version}"
    backend = (
        _BACKEND.replace("@NAME@", repr(name))
        .replace("@VERSION@", repr(version))
        .replace("@TAG@", repr(tag))
        .replace("@BEFORE@", before or "    pass")
    )
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": (
            f"[build-system]\nrequires = {json.dumps(list(requires))}\n"
            'build-backend = "backend"\nbackend-path = ["."]\n'
        ),
        "backend.py": backend,
        f"{dist}/__init__.py": f"VERSION = {version!r}\n",
    }
    encoded = {path: text.encode() for path, text in files.items()}
    return f"{base}.tar.gz", sdist_tarball(base, [base, f"{base}/{dist}"], encoded)


def publish(index: LocalIndex, name: str, **kw: Any) -> str:
    filename, data = custom_sdist(name, **kw)
    index.add_bytes(filename, data)
    return filename


# -- the project, the engine wrapper, and what a build leaves ----------------------------


@pytest.fixture
def engine(recording_engine: RecordingBinary, engine_bin: str) -> Iterator[RecordingBinary]:
    """The real engine behind the recorder; `containers(mark, what="build")` are the ones
    this test's runs made for source builds."""
    yield recording_engine
    # whatever this test's runs left behind (a killed run's container and its staging
    # folder for /out): remove them, by name
    for name in existing(engine_bin, recording_engine.containers()):
        inspect = subprocess.run(
            [engine_bin, "inspect", "--format", "{{json .Mounts}}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        subprocess.run([engine_bin, "rm", "--force", name], capture_output=True, check=False)
        for mount in json.loads(inspect.stdout or "[]"):
            source = Path(mount["Source"])
            if mount["Destination"] == "/out" and source.name.startswith("wheelhouse-build-"):
                shutil.rmtree(source, ignore_errors=True)


@pytest.fixture
def index(make_index: Callable[..., LocalIndex]) -> LocalIndex:
    idx = make_index(default=False)
    idx.add_wheel("gamma", "1.0")
    idx.add_sdist("delta", "1.0", requires=["gamma"])  # a pure sdist: built from source
    idx.add_wheel("epsilon", "1.0", tags="cp311-cp311-manylinux_2_17_x86_64")
    return idx


def setup_project(
    project: Path,
    index: LocalIndex,
    images: dict[str, str],
    engine: RecordingBinary,
    requirements: str = "delta\nepsilon\n",
) -> None:
    write(
        project / "wheelhouse.toml",
        f"""
engine = "{engine.binary}"
default-targets = ["slim"]

[index]
index-url = "{index.url}"

"""
        + debian_targets(images, "slim"),
    )
    write(project / "requirements.in", requirements)


@pytest.fixture
def wh(project: Path, tmp_path: Path) -> Wheelhouse:
    cli = Wheelhouse(project, tmp_path / "cache")
    cli.env["COLUMNS"] = "250"  # rich: no folded paths or messages in what tests read
    return cli


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / "wheelhouse/slim/manifest.json").read_text())
    return data


def sources(project: Path) -> dict[str, str]:
    return {w["name"]: w["source"] for w in manifest(project)["wheels"]}


def assert_valid_output(project: Path, names: set[str]) -> None:
    """wheelhouse/slim/ holds exactly the wheels of its lock.txt, each with its hash, and a
    manifest that agrees; every wheel of a downloaded pin has the upstream lock's hash."""
    folder = project / "wheelhouse/slim"
    out = lockfile.read(folder / "lock.txt")
    upstream = lockfile.read(project / "locks/slim.txt")
    assert out is not None and upstream is not None
    assert {p.name for p in out.pins} == names
    wheels = {p.name: p for p in folder.glob("*.whl")}
    man = manifest(project)
    entries = {e["filename"]: e for e in man["wheels"]}
    assert set(entries) == set(wheels)
    by_name = {e["name"]: e for e in entries.values()}
    for pin in out.pins:
        entry = by_name[pin.name]
        actual = sha256(wheels[entry["filename"]])
        assert pin.hashes == (f"sha256:{actual}",) and entry["sha256"] == actual
        if entry["source"] in ("reused", "downloaded"):
            assert f"sha256:{actual}" in upstream.by_name()[pin.name].hashes
    assert man["complete"] is True and man["missing"] == []


def assert_store_consistent(cache: Path) -> None:
    """No half entry: every blob verifies against its folder's name, every built record
    points at a blob that exists and verifies, and names the same file."""
    store = cache / "store"
    for folder in (store / "blobs").glob("*/*"):
        files = [p for p in folder.iterdir() if not p.name.startswith(".")]
        assert len(files) == 1, f"{folder}: {files}"
        assert sha256(files[0]) == folder.name, f"{files[0]} does not match its hash"
    for record_file in (store / "built").glob("*.json"):
        record = json.loads(record_file.read_text())
        blob = store / "blobs" / record["sha256"][:2] / record["sha256"] / record["filename"]
        assert blob.is_file(), f"{record_file.name} points at a missing blob {blob}"
        assert sha256(blob) == record["sha256"]
        assert Path(record["log"]).is_file()


def built_records(cache: Path, project_name: str) -> list[Path]:
    return [
        p
        for p in (cache / "store/built").glob("*.json")
        if json.loads(p.read_text())["filename"].startswith(project_name + "-")
    ]


def running(engine_bin: str, names: list[str]) -> list[str]:
    """Which of these containers are running now."""
    if not names:
        return []
    args = [engine_bin, "ps", "--format", "{{.Names}}"]
    for n in names:
        args += ["--filter", f"name=^{n}$"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return out.split()


def existing(engine_bin: str, names: list[str]) -> list[str]:
    if not names:
        return []
    args = [engine_bin, "ps", "-a", "--format", "{{.Names}}"]
    for n in names:
        args += ["--filter", f"name=^{n}$"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


class Background:
    """`wheelhouse build` as a subprocess whose stderr is read as it comes."""

    def __init__(self, wh: Wheelhouse, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wheelhouse", "build", *args],
            cwd=cwd or wh.project,
            env=wh.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.err: list[str] = []
        self.out = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.err):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.finish()
                raise AssertionError(f"never saw {text!r}; stderr:\n{''.join(self.err)}")
            time.sleep(0.05)

    def finish(self, timeout: float = 300) -> int:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = self.proc.stdout.read()
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        self.proc.stdout.close()  # closed here, not by the garbage collector's warning
        self.proc.stderr.close()
        return rc

    @property
    def stderr(self) -> str:
        return "".join(self.err)


# -- 1. hash mismatch -------------------------------------------------------------------


@docker
@pytest.mark.parametrize(
    "page",
    ["advertises the locked hash", "advertises the new hash", "advertises no hash"],
)
def test_hash_mismatch_fails_closed(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
    page: str,
) -> None:
    setup_project(project, index, test_images, engine, "gamma\nepsilon\n")
    wh("lock")
    victim = "gamma-1.0-py3-none-any.whl"
    expected = index.sha256(victim)
    # same file name, other bytes (a tampered mirror, a re-uploaded release)
    index.add_bytes(victim, wheel_bytes("gamma", "1.0", requires=["epsilon"]))
    actual = index.sha256(victim)
    assert actual != expected
    if page == "advertises the locked hash":
        index.wrong_hashes[victim] = expected  # a proxy that rewrote the file, not the page
    elif page == "advertises no hash":
        index.advertise_hashes = False

    res = wh("build", check=False)
    assert res.returncode == 9, res.stdout + res.stderr
    assert "gamma" in res.stderr and expected in res.stderr and actual in res.stderr
    # nothing of it entered the store, no output folder lists it
    blobs = wh.cache_dir / "store/blobs"
    assert not (blobs / actual[:2] / actual).exists()
    assert not any(p.name == victim for p in blobs.rglob("*"))
    for folder in (project / "wheelhouse").glob("*"):
        assert not (folder / victim).exists()
        if (folder / "lock.txt").exists():
            assert "gamma" not in (folder / "lock.txt").read_text()
    # and nothing was built or started for it
    assert engine.containers(what="build") == []


# -- 2. a source build that fails ------------------------------------------------------


@docker
def test_failing_source_build_names_package_log_and_keep_going(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
) -> None:
    publish(index, "brokenpkg", before=FAIL)
    setup_project(project, index, test_images, engine, "brokenpkg\ndelta\nepsilon\n")
    wh("lock")

    res = wh("build", check=False)
    assert res.returncode == 11, res.stdout + res.stderr
    err = res.stderr
    assert "brokenpkg==1.0" in err
    # the last lines of its log, and the log's path, which holds the whole output
    assert "fatal error: missing_header.h" in err
    logs = re.findall(r"(/\S+?\.log)\b", err)
    assert logs, err
    log = Path(logs[0])
    assert log.is_file() and log.is_relative_to(wh.cache_dir / "store/logs")
    text = log.read_text()
    assert "gcc -O2 -c src/_speedups.c" in text and "missing_header.h" in text
    assert "pip" in text  # the build command and pip's own report are in it, too
    # nothing recorded as built for it
    assert_store_consistent(wh.cache_dir)
    assert not (project / "wheelhouse/slim/lock.txt").exists()

    res = wh("build", "--keep-going", check=False)
    assert res.returncode == 11, res.stdout + res.stderr
    assert "brokenpkg==1.0" in res.stderr and "fatal error: missing_header.h" in res.stderr
    man = manifest(project)
    assert man["complete"] is False
    assert man["missing"] == ["brokenpkg==1.0"]
    folder = project / "wheelhouse/slim"
    assert sorted(p.name for p in folder.glob("*.whl")) == [
        "delta-1.0-py3-none-any.whl",
        "epsilon-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "gamma-1.0-py3-none-any.whl",
    ]
    out = lockfile.read(folder / "lock.txt")
    assert out is not None and {p.name for p in out.pins} == {"delta", "epsilon", "gamma"}
    assert sources(project)["delta"] in ("built", "cached")


# -- 3. SIGKILL mid-build, then rerun ----------------------------------------------------


@docker
def test_sigkill_mid_build_then_rerun(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
    engine_bin: str,
) -> None:
    seconds = 12
    publish(index, "slowpkg", before=sleep_for(seconds))
    setup_project(project, index, test_images, engine, "slowpkg\ndelta\nepsilon\n")
    wh("lock")

    run = Background(wh, "-j", "4")
    run.wait_for("building slowpkg", timeout=180)
    # wait until its container runs, then a little, so the kill lands mid-build
    deadline = time.monotonic() + 60
    while not running(engine_bin, engine.containers(what="build")):
        assert time.monotonic() < deadline and run.proc.poll() is None, run.stderr
        time.sleep(0.1)
    time.sleep(3)
    assert not built_records(wh.cache_dir, "slowpkg"), "the kill came too late"
    run.proc.send_signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    killed = engine.containers(what="build")
    # what the killed run left is whole: no record of slowpkg, nothing half stored
    assert_store_consistent(wh.cache_dir)
    assert not built_records(wh.cache_dir, "slowpkg")

    mark = engine.mark()
    res = wh("build")
    assert "building slowpkg==1.0" in res.stderr and "Traceback" not in res.stderr
    assert_valid_output(project, {"slowpkg", "delta", "epsilon", "gamma"})
    assert sources(project)["slowpkg"] == "built"
    assert_store_consistent(wh.cache_dir)
    assert len(built_records(wh.cache_dir, "slowpkg")) == 1

    # the rerun removed every container it made; the killed run's containers are not
    # running once their build is over (they may remain, stopped: see the report)
    rerun = engine.containers(mark)
    assert rerun and existing(engine_bin, rerun) == []
    deadline = time.monotonic() + seconds + 30
    while running(engine_bin, killed) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running(engine_bin, killed) == []

    # a third run has nothing left to do
    mark = engine.mark()
    wh("build")
    assert engine.containers(mark) == []
    assert set(sources(project).values()) <= {"reused", "cached"}


# -- 4. two builds on one cache at once --------------------------------------------------


@docker
@pytest.mark.parametrize("where", ["two copies of a project", "one project"])
def test_two_builds_on_one_cache_at_once(
    wh: Wheelhouse,
    project: Path,
    tmp_path: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
    where: str,
) -> None:
    publish(index, "slowpkg", before=sleep_for(4))
    setup_project(project, index, test_images, engine, "slowpkg\ndelta\nepsilon\n")
    wh("lock")
    other = project
    if where == "two copies of a project":
        other = tmp_path / "other-project"
        shutil.copytree(project, other)

    first = Background(wh)
    second = Background(wh, cwd=other)
    rcs = [first.finish(), second.finish()]
    assert rcs == [0, 0], first.stderr + second.stderr

    # each sdist was compiled once, in one container; the other run waited on its key
    # lock (or planned it as cached) and took the same entry
    assert len(engine.containers(what="build")) == 2
    logs = first.stderr + second.stderr
    assert logs.count("building slowpkg") == 1 and logs.count("building delta") == 1
    assert len(list((wh.cache_dir / "store/built").glob("*.json"))) == 2
    assert_store_consistent(wh.cache_dir)
    names = {"slowpkg", "delta", "epsilon", "gamma"}
    for p in {project, other}:
        assert_valid_output(p, names)
    if other != project:
        a, b = sources(project), sources(other)
        for sdist in ("slowpkg", "delta"):
            assert sorted([a[sdist], b[sdist]]) == ["built", "cached"], (a, b)
        for name in ("slowpkg-1.0-py3-none-any.whl", "delta-1.0-py3-none-any.whl"):
            mine, theirs = project / "wheelhouse/slim" / name, other / "wheelhouse/slim" / name
            assert sha256(mine) == sha256(theirs)
    # (the temp names this race can leave behind: see test_placing_a_wheel_placed_meanwhile_*)


# -- 5. a corrupted cache entry ----------------------------------------------------------


@docker
def test_corrupted_cache_entry_is_rebuilt_and_downloaded_again(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
) -> None:
    setup_project(project, index, test_images, engine)
    wh("lock")
    wh("build")
    before = {p.name: sha256(p) for p in (project / "wheelhouse/slim").glob("*.whl")}
    assert sources(project) == {"delta": "built", "epsilon": "downloaded", "gamma": "downloaded"}

    blobs = wh.cache_dir / "store/blobs"
    for name in ("delta-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl"):
        (blob,) = blobs.glob(f"*/*/{name}")
        blob.write_bytes(b"garbage, not a wheel")  # in place: the output's hard link, too
    index.clear_requests()
    mark = engine.mark()

    wh("build")
    assert sources(project) == {"delta": "built", "epsilon": "reused", "gamma": "downloaded"}
    assert index.file_requests() == ["gamma-1.0-py3-none-any.whl"]
    assert len(engine.containers(mark, what="build")) == 1
    after = {p.name: sha256(p) for p in (project / "wheelhouse/slim").glob("*.whl")}
    assert after == before  # the rebuild is byte-identical
    assert_valid_output(project, {"delta", "epsilon", "gamma"})
    upstream = lockfile.read(project / "locks/slim.txt")
    assert upstream is not None
    (gamma,) = [p for p in upstream.pins if p.name == "gamma"]
    assert f"sha256:{after['gamma-1.0-py3-none-any.whl']}" in gamma.hashes
    assert_store_consistent(wh.cache_dir)


# -- 6. a platform wheel with nothing compiled in it --------------------------------------


@docker
def test_platform_wheel_without_compiled_code_is_an_error(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
) -> None:
    publish(index, "fakeext", tag="cp311-cp311-linux_x86_64")
    setup_project(project, index, test_images, engine, "fakeext\ngamma\n")
    wh("lock")
    res = wh("build", check=False)
    assert res.returncode == 11, res.stdout + res.stderr
    assert "fakeext==1.0" in res.stderr
    assert "fakeext-1.0-cp311-cp311-linux_x86_64.whl" in res.stderr
    assert "platform wheel with no compiled file" in res.stderr
    # not cached as a good build, not in any output
    assert list((wh.cache_dir / "store/built").glob("*.json")) == []
    assert not list((wh.cache_dir / "store/blobs").glob("*/*/fakeext-*.whl"))
    assert not (project / "wheelhouse/slim/lock.txt").exists()


# -- 7. --dry-run -----------------------------------------------------------------------


def _plan(stdout: str) -> dict[str, str]:
    """pin -> action, from the plan table."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) == 3 and "==" in cells[1]:
            rows[cells[1]] = cells[0]
    return rows


@docker
def test_dry_run_plans_and_starts_nothing(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
) -> None:
    setup_project(project, index, test_images, engine)
    wh("lock")
    index.clear_requests()

    mark = engine.mark()
    res = wh("build", "--dry-run")
    assert _plan(res.stdout) == {
        "delta==1.0": "build",
        "epsilon==1.0": "download",
        "gamma==1.0": "download",
    }, res.stdout
    # no build, no image build, no download, no output; at most a one-off image probe
    calls = engine.since(mark)
    assert not [c for c in calls if c[0] == "build" or purpose(c) == "build"], calls
    creates = [c for c in calls if c[0] == "create"]
    assert all(purpose(c) == "probe" for c in creates), calls
    assert len(creates) <= 1 and len([c for c in calls if c[0] == "start"]) == len(creates)
    assert index.file_requests() == []
    assert not (project / "wheelhouse").exists()
    assert not list((wh.cache_dir / "store/blobs").glob("*/*"))

    wh("build")
    index.clear_requests()
    mark = engine.mark()
    res = wh("build", "--dry-run")
    assert _plan(res.stdout) == {
        "delta==1.0": "cached",
        "epsilon==1.0": "reuse",
        "gamma==1.0": "reuse",
    }, res.stdout
    calls = engine.since(mark)
    assert not [c for c in calls if c[0] in ("create", "run", "start", "build")], calls
    assert index.file_requests() == []


# -- 7. a build requirement that exists only as an sdist -----------------------------------


@docker
def test_sdist_only_build_requirement_is_built_first(
    wh: Wheelhouse,
    project: Path,
    index: LocalIndex,
    test_images: dict[str, str],
    engine: RecordingBinary,
) -> None:
    # plugdep has no wheel anywhere; needsplug's build imports it, so the build only
    # succeeds when plugdep was built into a wheel and installed into its build env
    publish(index, "plugdep")
    use_plugin = "    import plugdep  # ImportError, and a failed build, without it\n"
    publish(index, "needsplug", before=use_plugin, requires=("plugdep>=1",))
    setup_project(project, index, test_images, engine, "needsplug\ngamma\n")
    wh("lock")
    res = wh("build")
    assert sources(project) == {"needsplug": "built", "gamma": "downloaded"}, res.stderr
    # the build requirement is not in the wheelhouse (nothing installs it at run time)...
    names = sorted(p.name for p in (project / "wheelhouse/slim").glob("*.whl"))
    assert names == ["gamma-1.0-py3-none-any.whl", "needsplug-1.0-py3-none-any.whl"]
    # ...but it was built, in its own hermetic container, and cached with a provenance
    assert len(engine.containers(what="build")) == 2
    (dep_record,) = built_records(wh.cache_dir, "plugdep")
    record = json.loads(dep_record.read_text())
    assert record["filename"] == "plugdep-1.0-py3-none-any.whl"
    (main_record,) = built_records(wh.cache_dir, "needsplug")
    main = json.loads(main_record.read_text())
    assert any(
        d.startswith("plugdep-1.0-py3-none-any.whl sha256:") for d in main["build_dependencies"]
    ), main["build_dependencies"]
    assert_store_consistent(wh.cache_dir)

    # a fresh output folder and cache for the wheels: the dependency is not built again
    shutil.rmtree(project / "wheelhouse")
    for built in (wh.cache_dir / "store/built").glob("*.json"):
        if json.loads(built.read_text())["filename"].startswith("needsplug"):
            built.unlink()
    mark = engine.mark()
    wh("build")
    assert len(engine.containers(mark, what="build")) == 1
