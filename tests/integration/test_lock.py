"""`wheelhouse lock` end to end: the real CLI, real pip-compile and uv, a real HTTP index.

Every test runs `python -m wheelhouse` in a temp project whose wheelhouse.toml points at a
PEP 503/691 index on 127.0.0.1 (tests/fixtures_index.py). The slim target is set to the
host's Python 3.11, so the pip backend resolves on the host; other Pythons and libcs go
through uv. No container engine is used: the config names one that does not exist, so a
test that reached for it would fail. pip's, pip-tools' and uv's caches are per test
(XDG_CACHE_HOME), so nothing from this machine or an earlier run decides a result.

What these assert is what a wrong implementation would get wrong: hashes of files the
target cannot install (or missing ones), host paths in the lock, backends that disagree,
an upgrade that moves the wrong pin, a --check that does not notice a change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import Wheelhouse, isolated_env, write
from fixtures_index import JSON_V1, LocalIndex, RecordingProxy, wheel_bytes, wheel_filename

NO_ENGINE = "/nonexistent/wheelhouse-test-engine"
SLIM_311 = 'python-version = "3.11"\n'
PY313 = 'extends = "slim"\npython-version = "3.13"\n'

EPSILON_311 = "epsilon-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
EPSILON_313 = "epsilon-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"
EPSILON_MUSL = "epsilon-1.0-cp311-cp311-musllinux_1_1_x86_64.whl"

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or sys.platform != "linux",
    reason="the slim target is set to the host's Python 3.11 on Linux",
)


# -- helpers --------------------------------------------------------------------------


def configure(
    project: Path,
    index: LocalIndex | str,
    requirements: str,
    *,
    resolver: str = "pip",
    targets: Mapping[str, str] | None = None,
    default_targets: tuple[str, ...] = ("slim",),
    index_extra: str = "",
) -> None:
    """wheelhouse.toml + requirements.in for a project locked against `index`."""
    url = index.url if isinstance(index, LocalIndex) else index
    text = (
        f'resolver = "{resolver}"\n'
        f'engine = "{NO_ENGINE}"\n'
        f"default-targets = {list(default_targets)!r}\n".replace("'", '"')
        + f'\n[index]\nindex-url = "{url}"\n{index_extra}'
    )
    for name, body in (targets or {"slim": SLIM_311}).items():
        text += f"\n[targets.{name}]\n{body}"
    write(project / "wheelhouse.toml", text)
    write(project / "requirements.in", requirements)


def new_project(tmp_path: Path, name: str) -> Wheelhouse:
    """Another project folder with its own caches (also those of pip, pip-tools and uv)."""
    project = tmp_path / name / "project"
    project.mkdir(parents=True)
    wh = Wheelhouse(project, tmp_path / name / "cache")
    wh.env["XDG_CACHE_HOME"] = str(tmp_path / name / "xdg")
    return wh


@pytest.fixture
def lk(wh: Wheelhouse, tmp_path: Path) -> Wheelhouse:
    """The `wh` runner with per-test caches for the tools wheelhouse runs."""
    wh.env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return wh


def parse_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """{name: (version, {"sha256:..."})}, read independently of wheelhouse's own parser."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            spec = stripped.rstrip("\\").strip()
            name, _, version = spec.partition("==")
            assert version, f"not a pin: {line!r}"
            current = name
            pins[name] = (version, set())
            continue
        assert current is not None, f"option before any pin: {line!r}"
        for word in stripped.rstrip("\\").split():
            assert word.startswith("--hash=sha256:"), f"unexpected text in a pin: {line!r}"
            pins[current][1].add(word[len("--hash=") :])
    return pins


def header(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(": ")
        if sep:
            out[key] = value
    return out


def versions(text: str) -> dict[str, str]:
    return {name: v for name, (v, _) in parse_lock(text).items()}


def lock_text(wh: Wheelhouse, target: str = "slim") -> str:
    return (wh.project / "locks" / f"{target}.txt").read_text()


def files_fetched_by_wheelhouse(index: LocalIndex) -> set[str]:
    return set(index.file_requests("wheelhouse/"))


# -- what a lock holds ----------------------------------------------------------------


def test_lock_hashes_exactly_the_files_the_target_installs(
    lk: Wheelhouse, fresh_index: LocalIndex
) -> None:
    configure(lk.project, fresh_index, "alpha\nbeta\ndelta\nepsilon\n")
    out = lk("lock")
    text = lock_text(lk)
    pins = parse_lock(text)
    ix = fresh_index

    assert versions(text) == {
        "alpha": "1.0",
        "beta": "1.0",
        "delta": "1.0",
        "epsilon": "1.0",
        "gamma": "1.0",
    }
    # the wheel only where one fits: not alpha's sdist, not alpha 2.0 (Requires-Python)
    assert pins["alpha"][1] == ix.hashes("alpha-1.0-py3-none-any.whl")
    assert pins["beta"][1] == ix.hashes("beta-1.0-py3-none-any.whl")
    assert pins["gamma"][1] == ix.hashes("gamma-1.0-py3-none-any.whl")
    # no wheel at all: the sdist, flagged as a source build in the pin and the header
    assert pins["delta"][1] == ix.hashes("delta-1.0.tar.gz")
    # cp311 + glibc: not the cp313 wheel, not the musllinux wheel, not the sdist
    assert pins["epsilon"][1] == ix.hashes(EPSILON_311)

    assert header(text)["source-builds"] == "delta"
    delta_block = text[text.index("delta==1.0") : text.index("epsilon==1.0")]
    assert "no wheel for this target: built from source" in delta_block
    assert "built from source" not in text[text.index("epsilon==1.0") :]
    assert "build from source: delta" in out.stdout
    assert "slim: 5 pins -> locks/slim.txt [written; resolved on host" in out.stdout
    # hashes come from the index's pages: wheelhouse itself downloads no file
    assert files_fetched_by_wheelhouse(ix) == set()


@pytest.mark.parametrize(
    ("target", "body", "epsilon", "source_builds"),
    [
        pytest.param("alpine", SLIM_311, {EPSILON_MUSL}, "delta", id="musl-cp311"),
        pytest.param("py313", PY313, {EPSILON_313}, "delta", id="glibc-cp313"),
        pytest.param(
            "slim",
            SLIM_311 + 'no-binary = ["epsilon"]\n',
            {"epsilon-1.0.tar.gz"},
            "delta epsilon",
            id="no-binary",
        ),
        pytest.param(
            "old",
            'extends = "slim"\npython-version = "3.11"\nlibc-version = "2.12"\n',
            {"epsilon-1.0.tar.gz"},
            "delta epsilon",
            id="glibc-too-old",
        ),
    ],
)
def test_hashes_follow_the_targets_tags(
    lk: Wheelhouse,
    local_index: LocalIndex,
    target: str,
    body: str,
    epsilon: set[str],
    source_builds: str,
) -> None:
    configure(
        lk.project,
        local_index,
        "delta\nepsilon\n",
        resolver="uv",
        targets={target: body},
        default_targets=(target,),
    )
    out = lk("lock")
    text = lock_text(lk, target)
    assert parse_lock(text)["epsilon"][1] == local_index.hashes(*epsilon)
    assert header(text)["source-builds"] == source_builds
    assert f"build from source: {source_builds.replace(' ', ', ')}" in out.stdout


def test_pip_and_uv_backends_write_identical_locks(tmp_path: Path, local_index: LocalIndex) -> None:
    reqs = "alpha\nbeta\ndelta\nepsilon\nzeta\n"
    texts = {}
    for resolver in ("pip", "uv"):
        wh = new_project(tmp_path, resolver)
        configure(wh.project, local_index, reqs, resolver=resolver)
        out = wh("lock")
        where = "host" if resolver == "pip" else "uv"
        assert f"resolved on {where} in" in out.stdout
        texts[resolver] = lock_text(wh)
    assert texts["pip"] == texts["uv"]
    # and both carry the `# via` notes, multi-parent ones included
    assert "gamma==1.0" in texts["uv"]
    gamma = texts["uv"][texts["uv"].index("gamma==1.0") :]
    assert "#   beta" in gamma and "#   delta" in gamma


def test_uv_runs_no_interpreter_from_path(tmp_path: Path, local_index: LocalIndex) -> None:
    """uv resolves for the target's Python with wheelhouse's own interpreter: it never goes
    looking for one, which runs every python on PATH (a pyenv shim costs ~130 ms a lock,
    and what PATH holds must not decide whether a lock works)."""
    shims = tmp_path / "shims"
    shims.mkdir()
    ran = tmp_path / "ran"
    for name in ("python", "python3", "python3.11", "python3.13"):
        shim = shims / name
        shim.write_text(f'#!/bin/sh\necho "$0" >> {ran}\nexit 1\n')
        shim.chmod(0o755)
    wh = new_project(tmp_path, "uv")
    configure(wh.project, local_index, "alpha\nepsilon\n", resolver="uv", targets={"py313": PY313})
    env = {"PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"}
    out = wh("lock", "--target", "py313", env=env)
    assert "resolved on uv in" in out.stdout
    assert parse_lock(lock_text(wh, "py313"))["epsilon"][1] == local_index.hashes(EPSILON_313)
    assert not ran.exists(), f"uv ran a python from PATH: {ran.read_text()}"


def test_a_lock_imports_what_it_uses(lk: Wheelhouse, local_index: LocalIndex) -> None:
    """Start-up is most of a warm uv lock: what only a lock in a container (the store's
    folders), a final image with packages (basestubs, packaging.requirements) or a project
    needing system packages (build.lockprep) uses is not imported by one that needs none."""
    configure(lk.project, local_index, "alpha\nepsilon\n", resolver="uv")
    record = lk.project / "modules.json"
    program = (
        "import atexit, json, runpy, sys\n"
        f"out = open({str(record)!r}, 'w')\n"
        "atexit.register(lambda: out.write(json.dumps(list(sys.modules))))\n"
        "sys.argv = ['wheelhouse', 'lock']\n"
        "runpy.run_module('wheelhouse', run_name='__main__', alter_sys=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-P", "-c", program],
        cwd=lk.project,
        env=lk.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resolved on uv in" in proc.stdout
    loaded = set(json.loads(record.read_text()))
    assert "wheelhouse.lock.hashes" in loaded  # (the record is the lock's)
    unused = ["wheelhouse.store", "wheelhouse.lock.basestubs", "wheelhouse.build.lockprep"]
    assert [m for m in unused if m in loaded] == []


def test_lock_is_byte_identical_across_runs_and_folders(
    tmp_path: Path, local_index: LocalIndex
) -> None:
    """No host path, interpreter or time in a lock; a relative find-links folder too."""
    theta = wheel_filename("theta", "1.0")
    reqs = "alpha\nbeta\ndelta\nepsilon\ntheta\n"
    texts = []
    for name in ("one", "two-with-a-longer/path"):
        wh = new_project(tmp_path, name)
        configure(wh.project, local_index, reqs, index_extra='find-links = ["wheels"]\n')
        (wh.project / "wheels").mkdir()
        (wh.project / "wheels" / theta).write_bytes(wheel_bytes("theta", "1.0"))
        first = wh("lock")
        text = lock_text(wh)
        again = wh("lock")
        assert "[written;" in first.stdout
        assert "[unchanged;" in again.stdout, again.stdout
        assert lock_text(wh) == text
        (wh.project / "locks" / "slim.txt").unlink()
        wh("lock")
        assert lock_text(wh) == text, "a lock made afresh differs from the first one"
        texts.append(text)

        forbidden = [
            str(tmp_path),
            str(wh.project),
            sys.executable,
            sys.prefix,
            os.path.expanduser("~"),
            "/tmp/",
            "http://",
            "127.0.0.1",
            "wheels/",
        ]
        for word in forbidden:
            assert word not in text, f"{word!r} in the lock:\n{text}"

    assert texts[0] == texts[1]
    text = texts[0]
    h = header(text)
    assert h["wheelhouse-lock"] == "1"
    assert h["target"] == "slim (cp3.11, glibc 2.36, x86_64)"
    assert h["inputs-digest"].startswith("sha256:") and len(h["inputs-digest"]) == 71
    # only in the find-links folder: hashed from the file itself
    theta_sha = hashlib.sha256(wheel_bytes("theta", "1.0")).hexdigest()
    assert parse_lock(text)["theta"][1] == {f"sha256:{theta_sha}"}
    # the header is the lines before the first pin: no slash at all (no path of any kind)
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        assert "/" not in line, line


# -- targets that pin differently ---------------------------------------------------


def test_py313_target_diverges_from_py311_without_a_container(
    lk: Wheelhouse, local_index: LocalIndex
) -> None:
    configure(
        lk.project,
        local_index,
        "alpha\nbeta\nepsilon\n",
        resolver="uv",
        targets={"py313": PY313, "slim": SLIM_311},
        default_targets=("py313", "slim"),
    )
    out = lk("lock")
    py313, slim = lock_text(lk, "py313"), lock_text(lk, "slim")

    assert versions(py313) == {"alpha": "2.0", "beta": "1.0", "epsilon": "1.0"}
    assert versions(slim) == {"alpha": "1.0", "beta": "1.0", "epsilon": "1.0", "gamma": "1.0"}
    assert parse_lock(py313)["alpha"][1] == local_index.hashes("alpha-2.0-py3-none-any.whl")
    assert parse_lock(py313)["epsilon"][1] == local_index.hashes(EPSILON_313)
    assert parse_lock(slim)["epsilon"][1] == local_index.hashes(EPSILON_311)
    assert header(py313)["target"] == "py313 (cp3.13, glibc 2.36, x86_64)"
    assert header(py313)["source-builds"] == "-"

    stdout = out.stdout.splitlines()
    assert any(
        x.startswith("py313: 3 pins -> locks/py313.txt [written; resolved on uv") for x in stdout
    ), out.stdout
    assert any(
        x.startswith("slim: 4 pins -> locks/slim.txt [written; resolved on uv") for x in stdout
    ), out.stdout
    assert "versions differ between targets:" in stdout
    assert "  alpha: py313 2.0, slim 1.0" in stdout
    assert "pinned in some targets only:" in stdout
    assert "  gamma: not in py313" in stdout
    for name in ("beta", "epsilon"):  # the same everywhere: not reported
        assert not any(x.startswith(f"  {name}:") for x in stdout), out.stdout


def test_later_targets_align_with_the_first_where_they_can(
    lk: Wheelhouse, local_index: LocalIndex
) -> None:
    """slim first: alpha 1.0 suits 3.13 too, so py313 keeps it rather than diverge."""
    configure(
        lk.project,
        local_index,
        "alpha\n",
        resolver="uv",
        targets={"slim": SLIM_311, "py313": PY313},
        default_targets=("slim", "py313"),
    )
    out = lk("lock")
    assert versions(lock_text(lk, "slim")) == {"alpha": "1.0"}
    assert versions(lock_text(lk, "py313")) == {"alpha": "1.0"}
    assert "versions differ" not in out.stdout
    # alone, the 3.13 target takes the newest that suits it
    alone = lk("lock", "--target", "py313", "--upgrade")
    assert versions(lock_text(lk, "py313")) == {"alpha": "2.0"}
    assert "  ~ alpha 1.0 -> 2.0" in alone.stdout.splitlines()


# -- upgrades -------------------------------------------------------------------------


@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_upgrade_package_moves_only_that_package(
    lk: Wheelhouse, fresh_index: LocalIndex, resolver: str
) -> None:
    configure(lk.project, fresh_index, "zeta\neta\n", resolver=resolver)
    lk("lock")
    assert versions(lock_text(lk)) == {"eta": "1.0", "zeta": "1.0"}

    fresh_index.add_wheel("zeta", "1.1")
    fresh_index.add_wheel("eta", "1.1")

    out = lk("lock")  # existing pins are kept
    assert versions(lock_text(lk)) == {"eta": "1.0", "zeta": "1.0"}
    assert "[unchanged;" in out.stdout

    out = lk("lock", "--upgrade-package", "zeta")
    text = lock_text(lk)
    assert versions(text) == {"eta": "1.0", "zeta": "1.1"}
    assert parse_lock(text)["zeta"][1] == fresh_index.hashes("zeta-1.1-py3-none-any.whl")
    assert parse_lock(text)["eta"][1] == fresh_index.hashes("eta-1.0-py3-none-any.whl")
    assert "  ~ zeta 1.0 -> 1.1" in out.stdout.splitlines()
    assert "eta" not in out.stdout.replace("zeta", "")

    out = lk("lock", "--upgrade")
    assert versions(lock_text(lk)) == {"eta": "1.1", "zeta": "1.1"}
    assert "  ~ eta 1.0 -> 1.1" in out.stdout.splitlines()
    assert "zeta" not in out.stdout


def test_upgrade_reports_added_and_removed_pins(lk: Wheelhouse, fresh_index: LocalIndex) -> None:
    configure(lk.project, fresh_index, "zeta\n")
    lk("lock")
    fresh_index.add_wheel("zeta", "1.1", requires=["eta"])
    out = lk("lock", "-P", "zeta")
    lines = out.stdout.splitlines()
    assert "  ~ zeta 1.0 -> 1.1" in lines
    assert "  + eta 1.0" in lines
    write(lk.project / "requirements.in", "eta\n")
    out = lk("lock")
    assert "  - zeta 1.1" in out.stdout.splitlines()


# -- lock --check -------------------------------------------------------------------


def test_check_passes_when_fresh_and_names_stale_locks(
    lk: Wheelhouse, fresh_index: LocalIndex
) -> None:
    configure(lk.project, fresh_index, "alpha\nbeta\n")
    missing = lk("lock", "--check", check=False)
    assert missing.returncode == 8
    assert "locks/slim.txt: missing" in missing.stderr

    lk("lock")
    lock_bytes = (lk.project / "locks" / "slim.txt").read_bytes()
    fresh_index.clear_requests()
    ok = lk("lock", "--check")
    assert ok.returncode == 0
    assert "locks up to date: slim" in ok.stdout
    assert fresh_index.requests == [], "--check must not resolve"

    reqs = lk.project / "requirements.in"
    reqs.write_text("alpha\nbeta\ngamma\n")
    stale = lk("lock", "--check", check=False)
    assert stale.returncode == 8, stale.stdout + stale.stderr
    assert "locks/slim.txt: stale" in stale.stderr
    assert "wheelhouse lock --target slim" in stale.stderr  # what to do next
    assert (lk.project / "locks" / "slim.txt").read_bytes() == lock_bytes, "--check wrote"

    reqs.write_text("alpha\nbeta\n")  # back as it was: fresh again (content, not mtime)
    assert lk("lock", "--check").returncode == 0

    toml = lk.project / "wheelhouse.toml"
    toml.write_text(toml.read_text() + 'libc-version = "2.28"\n')  # into [targets.slim]
    stale = lk("lock", "--check", check=False)
    assert stale.returncode == 8
    assert "locks/slim.txt: stale" in stale.stderr
    assert "targets.slim" in stale.stderr

    lk("lock")
    assert lk("lock", "--check").returncode == 0


def test_check_names_only_the_stale_target(lk: Wheelhouse, local_index: LocalIndex) -> None:
    configure(
        lk.project,
        local_index,
        "alpha\n",
        resolver="uv",
        targets={"slim": SLIM_311, "py313": PY313},
        default_targets=("slim", "py313"),
    )
    lk("lock")
    toml = lk.project / "wheelhouse.toml"
    toml.write_text(toml.read_text() + 'no-binary = ["alpha"]\n')  # into [targets.py313]
    stale = lk("lock", "--check", check=False)
    assert stale.returncode == 8
    assert "locks/py313.txt: stale" in stale.stderr
    assert "locks/slim.txt" not in stale.stderr
    assert lk("lock", "--check", "--target", "slim").returncode == 0


def test_constraints_and_included_files_shape_the_lock_and_its_freshness(
    lk: Wheelhouse, local_index: LocalIndex
) -> None:
    configure(
        lk.project,
        local_index,
        "-r base.in\n",
        resolver="uv",
        targets={"py313": PY313},
        default_targets=("py313",),
    )
    toml = lk.project / "wheelhouse.toml"
    toml.write_text('constraints = ["constraints.txt"]\n' + toml.read_text())
    write(lk.project / "base.in", "alpha\n")
    write(lk.project / "constraints.txt", "alpha<2\n")
    lk("lock")
    assert versions(lock_text(lk, "py313")) == {"alpha": "1.0"}  # 2.0 suits 3.13, but <2
    assert lk("lock", "--check").returncode == 0

    write(lk.project / "constraints.txt", "alpha<3\n")
    stale = lk("lock", "--check", check=False)
    assert stale.returncode == 8 and "locks/py313.txt: stale" in stale.stderr
    lk("lock", "--upgrade")
    assert versions(lock_text(lk, "py313")) == {"alpha": "2.0"}

    write(lk.project / "base.in", "alpha\nzeta\n")  # only the included file changes
    stale = lk("lock", "--check", check=False)
    assert stale.returncode == 8 and "locks/py313.txt: stale" in stale.stderr


# -- the lock is right for pip ------------------------------------------------------


def pip_download(
    lock: Path, index: LocalIndex, dest: Path, cache: Path
) -> subprocess.CompletedProcess[str]:
    env = isolated_env(cache, XDG_CACHE_HOME=str(cache / "xdg"))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--require-hashes",
            "--index-url",
            index.url,
            "-r",
            str(lock),
            "-d",
            str(dest),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_lock_satisfies_pip_require_hashes(
    lk: Wheelhouse, local_index: LocalIndex, tmp_path: Path
) -> None:
    configure(lk.project, local_index, "alpha\nbeta\ndelta\nepsilon\n")
    lk("lock")
    lock = lk.project / "locks" / "slim.txt"

    res = pip_download(lock, local_index, tmp_path / "dl", tmp_path / "pipcache")
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [
        "alpha-1.0-py3-none-any.whl",
        "beta-1.0-py3-none-any.whl",
        "delta-1.0.tar.gz",
        EPSILON_311,
        "gamma-1.0-py3-none-any.whl",
    ]

    # and pip would notice a wrong one: the check above is not vacuous
    text = lock.read_text()
    good = f"sha256:{local_index.sha256(EPSILON_311)}"
    bad = f"sha256:{local_index.sha256(EPSILON_313)}"
    tampered = tmp_path / "tampered.txt"
    tampered.write_text(text.replace(good, bad))
    res = pip_download(tampered, local_index, tmp_path / "dl2", tmp_path / "pipcache2")
    assert res.returncode != 0
    assert "DO NOT MATCH THE HASHES" in res.stderr


# -- where hashes come from -----------------------------------------------------------


def test_index_without_hashes_hashes_only_the_chosen_files(
    lk: Wheelhouse, fresh_index: LocalIndex
) -> None:
    fresh_index.advertise_hashes = False
    configure(lk.project, fresh_index, "alpha\ndelta\nepsilon\n")
    lk("lock")
    pins = parse_lock(lock_text(lk))
    assert pins["alpha"][1] == fresh_index.hashes("alpha-1.0-py3-none-any.whl")
    assert pins["delta"][1] == fresh_index.hashes("delta-1.0.tar.gz")
    assert pins["epsilon"][1] == fresh_index.hashes(EPSILON_311)
    assert files_fetched_by_wheelhouse(fresh_index) == {
        "alpha-1.0-py3-none-any.whl",
        "delta-1.0.tar.gz",
        "gamma-1.0-py3-none-any.whl",
        EPSILON_311,
    }


def test_html_and_json_pages_give_identical_locks(tmp_path: Path, fresh_index: LocalIndex) -> None:
    texts = {}
    for serve_json in (True, False):
        fresh_index.serve_json = serve_json
        fresh_index.clear_requests()
        wh = new_project(tmp_path, f"json-{serve_json}")
        configure(wh.project, fresh_index, "alpha\nbeta\ndelta\nepsilon\n")
        wh("lock")
        texts[serve_json] = lock_text(wh)
        pages = {
            r.content_type
            for r in fresh_index.requests
            if r.user_agent.startswith("wheelhouse/") and r.path.count("/") == 3
        }
        assert pages == ({JSON_V1} if serve_json else {"text/html; charset=utf-8"}), pages
    assert texts[True] == texts[False]


def test_unreachable_index_fails_fast_with_exit_7(lk: Wheelhouse, tmp_path: Path) -> None:
    with LocalIndex(tmp_path / "gone") as gone:
        url = gone.url
    configure(lk.project, url, "alpha\n")
    res = lk("lock", check=False, timeout=120)
    assert res.returncode == 7, res.stdout + res.stderr
    assert "127.0.0.1" in res.stderr and "unreachable" in res.stderr
    assert not (lk.project / "locks" / "slim.txt").exists()


@pytest.mark.parametrize(
    ("resolver", "target", "body"),
    [
        pytest.param("pip", "slim", SLIM_311, id="pip-host"),
        pytest.param("uv", "slim", SLIM_311, id="uv-311"),
        pytest.param("uv", "py313", PY313, id="uv-313"),
    ],
)
def test_lock_reaches_nothing_but_the_configured_index(
    lk: Wheelhouse,
    local_index: LocalIndex,
    outside_network: RecordingProxy,
    resolver: str,
    target: str,
    body: str,
) -> None:
    """Hermetic: every byte comes from the index in wheelhouse.toml. A resolver that goes
    elsewhere (pip.conf's indexes, an interpreter download for another Python version)
    shows up as a request to the refusing proxy."""
    configure(
        lk.project,
        local_index,
        "alpha\nbeta\ndelta\n",
        resolver=resolver,
        targets={target: body},
        default_targets=(target,),
    )
    lk("lock", env=outside_network.env)
    assert outside_network.hosts == []
    assert (lk.project / "locks" / f"{target}.txt").is_file()


def test_a_wheel_published_later_for_a_pinned_version_is_used(
    lk: Wheelhouse, fresh_index: LocalIndex
) -> None:
    """Projects often upload wheels after the sdist. A re-lock must see them at once, as
    the resolver does (the index says max-age=0), not hash a remembered file list."""
    configure(lk.project, fresh_index, "delta\n")
    out = lk("lock")
    assert "build from source: delta" in out.stdout
    fresh_index.add_wheel("delta", "1.0", requires=["gamma"])
    out = lk("lock")
    text = lock_text(lk)
    assert parse_lock(text)["delta"][1] == fresh_index.hashes("delta-1.0-py3-none-any.whl")
    assert header(text)["source-builds"] == "-"
    assert "build from source" not in out.stdout


# -- the fixture itself ---------------------------------------------------------------


def test_fixture_sdist_builds_a_wheel_offline(local_index: LocalIndex, tmp_path: Path) -> None:
    """The generated sdists are real: pip builds them with no network and no setuptools."""
    sdist = local_index.root / "delta-1.0.tar.gz"
    out = tmp_path / "out"
    env = isolated_env(tmp_path / "cache", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-index",
            "-w",
            str(out),
            str(sdist),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert [p.name for p in out.iterdir()] == ["delta-1.0-py3-none-any.whl"]
    shutil.rmtree(out)


def test_verbose_shows_every_subprocess_and_quiet_shows_none(
    lk: Wheelhouse, local_index: LocalIndex
) -> None:
    configure(lk.project, local_index, "alpha\n", resolver="uv")
    loud = lk("-v", "lock")
    assert re.search(r"^  \$ \S*uv\b.* pip compile ", loud.stderr, re.M), loud.stderr
    quiet = lk("lock", "--refresh")
    assert "$ " not in quiet.stderr, quiet.stderr
