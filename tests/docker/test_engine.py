"""wheelhouse.engine against the real engine, through the API and the CLI.

The images are Debian 12 / 13 made by scripts/test_images.py (see fixtures_docker.py): what a
probe must find in them is known from Debian (bookworm: python 3.11, glibc 2.36; trixie:
python 3.13, glibc 2.41).
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from wheelhouse.engine import LABEL, Engine, ImageInfo, Mount
from wheelhouse.errors import EngineError

if TYPE_CHECKING:
    from conftest import Wheelhouse
    from fixtures_engine import RecordingBinary

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class Expect:
    minor: str
    libc_version: str


EXPECT = {
    "py311-builder": Expect("3.11", "2.36"),
    "py311-slim": Expect("3.11", "2.36"),
    "py313-builder": Expect("3.13", "2.41"),
}


def docker(engine_bin: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [engine_bin, *args], capture_output=True, text=True, check=check, timeout=120
    )


def container_exists(engine_bin: str, cid: str) -> bool:
    return docker(engine_bin, "container", "inspect", cid, check=False).returncode == 0


@pytest.fixture
def engine(engine_bin: str, tmp_path: Path) -> Engine:
    return Engine(engine_bin, tmp_path / "cache")


@pytest.fixture
def reap(engine_bin: str) -> Iterator[list[str]]:
    """Container ids a test saw; force-removed afterwards so a failing test leaks nothing."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        docker(engine_bin, "rm", "--force", cid, check=False)


# -- API ----------------------------------------------------------------------------------


def test_check_returns_the_server_version(engine: Engine, engine_bin: str) -> None:
    version = engine.check()
    assert re.match(r"^\d+\.\d+", version), version
    server = docker(engine_bin, "version", "--format", "{{.Server.Version}}").stdout.strip()
    assert version == server


def test_image_id_is_the_engines_id(
    engine: Engine, engine_bin: str, test_images: dict[str, str]
) -> None:
    ref = test_images["py311-builder"]
    expected = docker(engine_bin, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    assert expected.startswith("sha256:")
    assert engine.image_id(ref) == expected
    assert engine.image_id(test_images["py313-builder"]) != expected


def test_image_id_of_a_missing_image_names_it_and_the_key(engine: Engine) -> None:
    ref = f"wheelhouse-test/does-not-exist:{uuid.uuid4().hex[:8]}"
    with pytest.raises(EngineError) as err:
        engine.image_id(ref, key="targets.slim.builder-image")
    assert err.value.exit_code == 5
    assert ref in err.value.message
    assert "targets.slim.builder-image" in err.value.message
    assert err.value.hint and "targets.slim.builder-image" in err.value.hint


@pytest.mark.parametrize("role", sorted(EXPECT))
def test_probe_finds_python_and_libc(
    role: str, engine: Engine, engine_bin: str, test_images: dict[str, str]
) -> None:
    want = EXPECT[role]
    ref = test_images[role]
    info = engine.probe(ref)
    assert isinstance(info, ImageInfo)
    image_id = docker(engine_bin, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    assert info.image_id == image_id
    assert re.fullmatch(rf"{re.escape(want.minor)}\.\d+", info.python_version), info
    assert info.python_minor == want.minor
    assert info.python == "/usr/bin/python3"  # Debian's, found on PATH, not assumed
    assert info.implementation == "cpython"
    assert info.soabi.startswith(f"cpython-{want.minor.replace('.', '')}-"), info.soabi
    assert info.libc == "glibc"
    assert info.libc_version == want.libc_version
    assert info.arch == platform.machine()
    assert info.distro == "debian"
    assert info.package_manager == "apt"


def test_second_probe_is_served_from_the_cache(
    tmp_path: Path, recording_engine: RecordingBinary, test_images: dict[str, str]
) -> None:
    log = recording_engine
    cache = tmp_path / "cache"
    ref = test_images["py311-builder"]

    first = Engine(log.binary, cache).probe(ref)
    calls = log.verbs()
    assert calls.count("create") == 1 and calls.count("rm") == 1, calls
    cached = list((cache / "probes").glob("*/*.json"))
    assert len(cached) == 1
    assert first.image_id.split(":")[-1] in cached[0].name  # keyed by image id, not by tag

    log.clear()
    second = Engine(log.binary, cache).probe(ref)  # a new Engine: as a second CLI run would be
    assert second == first
    assert "create" not in log.verbs() and "start" not in log.verbs(), log.lines()
    assert json.loads(cached[0].read_text())["python_version"] == first.python_version


def test_probe_cache_follows_the_image_id_when_a_tag_moves(
    tmp_path: Path, engine_bin: str, recording_engine: RecordingBinary,
    test_images: dict[str, str],
) -> None:  # fmt: skip
    log = recording_engine
    eng = Engine(log.binary, tmp_path / "cache")
    alias = f"wheelhouse-test/moving-tag:{uuid.uuid4().hex[:8]}"
    try:
        docker(engine_bin, "tag", test_images["py311-builder"], alias)
        assert eng.probe(alias).python_minor == "3.11"
        # the same image under another name: the same id, so no container
        log.clear()
        assert eng.probe(test_images["py311-builder"]).python_minor == "3.11"
        assert "create" not in log.verbs()
        # the tag now names another image: a cache keyed by tag would answer 3.11
        docker(engine_bin, "tag", test_images["py313-builder"], alias)
        info = eng.probe(alias)
        assert info.python_minor == "3.13" and info.libc_version == "2.41"
        assert "create" in log.verbs()
    finally:
        docker(engine_bin, "rmi", alias, check=False)


def test_container_runs_and_is_removed_on_normal_exit(
    tmp_path: Path,
    engine: Engine,
    engine_bin: str,
    test_images: dict[str, str],
    reap: list[str],
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_text("from the host\n")
    script = (
        'cat /in/hello.txt; echo "FOO=$FOO"; ls /sys/class/net; '
        "touch /in/x 2>/dev/null && echo writable || echo read-only"
    )
    with engine.container(
        test_images["py311-slim"],
        ["sh", "-c", script],
        mounts=[Mount(source=src, target="/in")],
        env={"FOO": "bar baz"},
    ) as c:
        assert c.id
        reap.append(c.id)
        assert container_exists(engine_bin, c.id)
        labels = docker(
            engine_bin, "container", "inspect", "--format", "{{json .Config.Labels}}", c.id
        ).stdout
        key, value = LABEL.split("=")
        assert json.loads(labels).get(key) == value
        res = c.run(timeout=120)
        cid = c.id
    assert res.ok, res.stderr
    assert res.stdout.split("\n") == ["from the host", "FOO=bar baz", "lo", "read-only", ""]
    assert not (src / "x").exists()
    assert not container_exists(engine_bin, cid)


def test_container_is_removed_when_the_body_raises(
    engine: Engine, engine_bin: str, test_images: dict[str, str], reap: list[str]
) -> None:
    cid = None
    start = time.monotonic()
    with (
        pytest.raises(RuntimeError, match="boom"),
        engine.container(test_images["py311-slim"], ["sleep", "600"]) as c,
    ):
        cid = c.id
        assert cid
        reap.append(cid)
        docker(engine_bin, "start", cid)  # running: a plain `rm` would refuse it
        state = docker(
            engine_bin, "container", "inspect", "--format", "{{.State.Running}}", cid
        ).stdout.strip()
        assert state == "true"
        raise RuntimeError("boom")
    assert cid is not None
    assert not container_exists(engine_bin, cid)
    assert time.monotonic() - start < 60  # killed, not waited for


def test_container_from_a_missing_image_is_an_engine_error(engine: Engine) -> None:
    ref = f"wheelhouse-test/does-not-exist:{uuid.uuid4().hex[:8]}"
    with pytest.raises(EngineError) as err, engine.container(ref, ["true"]):
        pass
    assert ref in err.value.message


# -- CLI ----------------------------------------------------------------------------------


def image_overrides(target: str, builder: str, final: str | None, python: str) -> list[str]:
    args = [
        "--set",
        f"targets.{target}.builder-image={builder}",
        "--set",
        f"targets.{target}.python-version={python}",
    ]
    if final:
        args += ["--set", f"targets.{target}.final-image={final}"]
    return args


def test_cli_targets_probe_reports_what_the_images_contain(
    wh: Wheelhouse, engine_bin: str, test_images: dict[str, str]
) -> None:
    proc = wh(
        "--engine",
        engine_bin,
        *image_overrides("slim", test_images["py311-builder"], test_images["py311-slim"], "3.11"),
        *image_overrides("py313", test_images["py313-builder"], None, "3.13"),
        "targets",
        "--probe",
        "slim",
        "py313",
    )
    out = proc.stdout
    probes = re.findall(r"^\s+(builder|final) probe: (.*)$", out, re.M)
    assert len(probes) == 4, out
    slim, py313 = probes[:2], probes[2:]
    for role, line in slim:
        assert re.match(
            r"python 3\.11\.\d+ \(/usr/bin/python3\), glibc 2\.36, debian, apt$", line
        ), (role, out)
    for role, line in py313:
        assert re.match(
            r"python 3\.13\.\d+ \(/usr/bin/python3\), glibc 2\.41, debian, apt$", line
        ), (role, out)
    assert f"builder: {test_images['py311-builder']}" in out
    assert f"final:   {test_images['py311-slim']}" in out
    assert list((wh.cache_dir / "probes").glob("*/*.json")), "probes are cached in the cache dir"


def test_cli_second_probe_creates_no_container(
    wh: Wheelhouse, recording_engine: RecordingBinary, test_images: dict[str, str]
) -> None:
    log = recording_engine
    args = [
        "--engine",
        log.binary,
        *image_overrides("slim", test_images["py311-builder"], test_images["py311-slim"], "3.11"),
        "targets",
        "--probe",
        "slim",
    ]
    first = wh(*args).stdout
    assert log.verbs().count("create") == 3  # builder, final and its distributions
    log.clear()
    second = wh(*args).stdout
    assert second == first
    assert "create" not in log.verbs(), log.lines()


def test_cli_targets_without_probe_needs_no_engine(wh: Wheelhouse, tmp_path: Path) -> None:
    proc = wh("--engine", str(tmp_path / "no-such-engine"), "targets", "slim")
    assert "slim" in proc.stdout and "probe:" not in proc.stdout


def test_cli_missing_engine_binary_exits_5(wh: Wheelhouse, tmp_path: Path) -> None:
    missing = str(tmp_path / "bin" / "no-such-docker")
    proc = wh("--engine", missing, "targets", "--probe", "slim", check=False)
    assert proc.returncode == 5, proc.stderr
    assert missing in proc.stderr
    assert "not found" in proc.stderr
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_engine_not_running_exits_5(wh: Wheelhouse, engine_bin: str, tmp_path: Path) -> None:
    sock = tmp_path / "nothing-listens-here.sock"
    proc = wh(
        "--engine",
        engine_bin,
        "targets",
        "--probe",
        "slim",
        check=False,
        env={"DOCKER_HOST": f"unix://{sock}"},
    )
    assert proc.returncode == 5, proc.stderr
    assert "not running" in proc.stderr
    assert engine_bin in proc.stderr
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_builder_image_exits_5_naming_image_and_key(
    wh: Wheelhouse, engine_bin: str
) -> None:
    ref = f"wheelhouse-test/does-not-exist:{uuid.uuid4().hex[:8]}"
    proc = wh(
        "--engine",
        engine_bin,
        *image_overrides("slim", ref, None, "3.11"),
        "targets",
        "--probe",
        "slim",
        check=False,
    )
    assert proc.returncode == 5, proc.stderr
    assert ref in proc.stderr
    assert "targets.slim.builder-image" in proc.stderr
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_final_image_names_the_final_key(
    wh: Wheelhouse, engine_bin: str, test_images: dict[str, str]
) -> None:
    ref = f"wheelhouse-test/does-not-exist:{uuid.uuid4().hex[:8]}"
    proc = wh(
        "--engine",
        engine_bin,
        *image_overrides("slim", test_images["py311-builder"], ref, "3.11"),
        "targets",
        "--probe",
        "slim",
        check=False,
    )
    assert proc.returncode == 5, proc.stderr
    assert ref in proc.stderr
    assert "targets.slim.final-image" in proc.stderr
    assert "targets.slim.builder-image" not in proc.stderr
