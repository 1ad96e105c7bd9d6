"""Faults around locks, through the real CLI, real pip-compile and uv, and a PEP 503 index
on loopback (tests/fixtures_index.py), with no container engine:

* a lock cut short (at a pin boundary, inside a hash) or edited fails `build` and
  `lock --check` with "damaged lock" (exit 19), and `lock` writes it afresh; a lock from
  before lock-digests still builds and checks, and `lock` adds its digest;
* the target's patch release decides the pins, the same for pip-compile and uv (the
  builder-image half, pip-compile in a 3.11.2 container, is tests/docker/
  test_faults_locks_docker.py);
* absurd, circular and VCS inputs are refused before any resolver runs (the index sees no
  request), and pip-compile's conflicts and missing projects are one message naming the
  packages, with no traceback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex

from wheelhouse.lock import lockfile
from wheelhouse.lock.resolve import host_python

NO_ENGINE = "/nonexistent/wheelhouse-test-engine"
HOST = host_python()  # "3.11.7": the slim target below is the host's interpreter exactly
MAJOR, MINOR, PATCH = (int(x) for x in HOST.split("."))
# Requires-Python that the host's patch release meets and 3.11.2 (Debian 12's) does not
NEWER_PATCH = f">={MAJOR}.{MINOR}.{PATCH}"
DAMAGED, INPUT, RESOLVE = 19, 4, 6

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or PATCH < 3 or sys.platform != "linux",
    reason="the targets are set around the host's Python 3.11.x (x >= 3) on Linux",
)


@pytest.fixture
def index(make_index: Callable[..., LocalIndex]) -> LocalIndex:
    idx = make_index(default=False)
    idx.add_wheel("alpha", "1.0")
    idx.add_wheel("alpha", "1.0", tags="py311-none-any")  # two files: two hashes
    idx.add_wheel("beta", "1.0", requires=["gamma"])
    idx.add_wheel("gamma", "1.0")
    idx.add_wheel("flask", "3.0.0", requires=["werkzeug>=3.0.0"])
    idx.add_wheel("werkzeug", "1.0.1")
    idx.add_wheel("werkzeug", "3.0.1")
    idx.add_wheel("needspatch", "1.0")
    idx.add_wheel("needspatch", "2.0", requires_python=NEWER_PATCH)
    return idx


def configure(
    wh: Wheelhouse,
    index: LocalIndex,
    requirements: str,
    *,
    resolver: str = "pip",
    python: str = HOST,
) -> None:
    write(
        wh.project / "wheelhouse.toml",
        f'resolver = "{resolver}"\nengine = "{NO_ENGINE}"\n'
        f'[index]\nindex-url = "{index.url}"\n'
        f'[targets.slim]\npython-version = "{python}"\n',
    )
    write(wh.project / "requirements.in", requirements)


def project_runner(tmp_path: Path, name: str) -> Wheelhouse:
    project = tmp_path / name / "project"
    project.mkdir(parents=True)
    wh = Wheelhouse(project, tmp_path / name / "cache")
    wh.env["XDG_CACHE_HOME"] = str(tmp_path / name / "xdg")
    return wh


def lock_of(wh: Wheelhouse) -> Path:
    return wh.project / "locks" / "slim.txt"


def pins(wh: Wheelhouse) -> dict[str, str]:
    lock = lockfile.read(lock_of(wh))
    assert lock is not None and lock.integrity == "intact"
    return {p.name: p.version for p in lock.pins}


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert 'File "' not in proc.stderr, proc.stderr


# -- damaged locks ----------------------------------------------------------------------


def cut_at_pin_boundary(text: str) -> str:
    return text[: text.index("beta==1.0")]  # alpha whole; beta and gamma gone


def cut_mid_hash(text: str) -> str:
    second = text.index("--hash=", text.index("--hash=") + 1)  # alpha's second hash
    return text[: second + len("--hash=sha256:") + 20]


def edit_version(text: str) -> str:
    return text.replace("gamma==1.0", "gamma==0.9")


@pytest.fixture
def locked(tmp_path: Path, index: LocalIndex) -> Wheelhouse:
    wh = project_runner(tmp_path, "locked")
    configure(wh, index, "alpha\nbeta\n")
    wh("lock")
    assert pins(wh) == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
    assert "locks up to date: slim" in wh("lock", "--check").stdout  # the control
    return wh


@pytest.mark.parametrize(
    "damage",
    [cut_at_pin_boundary, cut_mid_hash, edit_version],
    ids=["cut-at-pin-boundary", "cut-mid-hash", "edited-version"],
)
def test_a_damaged_lock_fails_build_and_check_then_lock_rewrites_it(
    locked: Wheelhouse, damage: Callable[[str], str]
) -> None:
    wh = locked
    good = lock_of(wh).read_text()
    damaged = damage(good)
    assert damaged != good
    lock_of(wh).write_text(damaged)

    for args in (("build",), ("lock", "--check")):
        proc = wh(*args, check=False)
        assert proc.returncode == DAMAGED, (args, proc.stdout, proc.stderr)
        assert (
            "wheelhouse: damaged lock: locks/slim.txt: its contents do not match its "
            "lock-digest (cut short, or edited by hand)"
        ) in proc.stderr
        assert "`wheelhouse lock -t slim`" in proc.stderr
        assert "tampering" not in proc.stderr
        no_traceback(proc)
    assert not (wh.project / "wheelhouse" / "slim").exists()  # nothing was built

    proc = wh("lock")
    assert "warning: locks/slim.txt was a damaged lock" in proc.stderr
    assert "written afresh" in proc.stderr
    assert lock_of(wh).read_text() == good  # the same inputs: the same bytes
    wh("lock", "--check")
    wh("build")
    assert sorted(p.name for p in (wh.project / "wheelhouse" / "slim").glob("*.whl")) == [
        "alpha-1.0-py311-none-any.whl",
        "beta-1.0-py3-none-any.whl",
        "gamma-1.0-py3-none-any.whl",
    ]


def test_a_lock_from_before_lock_digests_builds_checks_and_gets_one(locked: Wheelhouse) -> None:
    wh = locked
    good = lock_of(wh).read_text()
    old = "".join(f"{x}\n" for x in good.splitlines() if not x.startswith("# lock-digest:"))
    lock_of(wh).write_text(old)

    check = wh("lock", "--check")
    assert "locks up to date: slim" in check.stdout
    assert "locks/slim.txt has no lock-digest (an older wheelhouse wrote it)" in check.stdout
    wh("build")  # valid, only unverified
    out = wh("lock")
    assert "[written;" in out.stdout and "  ~ " not in out.stdout  # same pins, now digested
    assert lock_of(wh).read_text() == good
    assert "no lock-digest" not in wh("lock", "--check").stdout


def test_the_built_folder_s_lock_carries_a_digest_too(locked: Wheelhouse) -> None:
    wh = locked
    wh("build")
    out = lockfile.read(wh.project / "wheelhouse" / "slim" / "lock.txt")
    assert out is not None and out.integrity == "intact"
    assert "# lock-digest: sha256:" in (wh.project / "wheelhouse" / "slim" / "lock.txt").read_text()


# -- the patch release --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("python", "expected"),
    [(HOST, "2.0"), (f"{MAJOR}.{MINOR}.2", "1.0")],
    ids=["host-patch", "older-patch"],
)
def test_both_backends_pin_for_the_target_s_patch_release(
    tmp_path: Path, index: LocalIndex, python: str, expected: str
) -> None:
    """needspatch 2.0 needs the host's patch release: a target on it gets 2.0, one on
    3.11.2 gets 1.0, whichever backend resolves. pip-compile on the host picks 2.0 either
    way; for 3.11.2 that pin does not install, so the builder image must resolve it
    again (the docker test), and here it fails for want of the engine rather than pin 2.0."""
    texts = {}
    for resolver in ("uv", "pip"):
        wh = project_runner(tmp_path, resolver)
        configure(wh, index, "needspatch\n", resolver=resolver, python=python)
        proc = wh("lock", check=False)
        if resolver == "pip" and python != HOST:
            assert proc.returncode == 5, proc.stderr  # the engine, not the host
            assert (
                f"needspatch==2.0 (Requires-Python {NEWER_PATCH}): not for Python {python}; "
                "resolving slim in its builder image"
            ) in proc.stderr
            assert f"container engine '{NO_ENGINE}' not found" in proc.stderr
            assert not lock_of(wh).exists()
            continue
        assert proc.returncode == 0, proc.stderr
        assert "warning" not in proc.stderr  # the patch release was known
        assert pins(wh) == {"needspatch": expected}
        assert f"# target: slim (cp{python}, glibc" in lock_of(wh).read_text()
        texts[resolver] = lock_of(wh).read_text()
    if python == HOST:
        assert texts["pip"] == texts["uv"]


def test_the_host_resolves_another_patch_release_where_every_pin_fits(
    tmp_path: Path, index: LocalIndex
) -> None:
    """3.11.2 is not the host's release, but nothing pinned draws a line within 3.11:
    the host's pins stand (no builder image is needed, so no engine), the same as uv's."""
    texts = {}
    for resolver in ("pip", "uv"):
        wh = project_runner(tmp_path, resolver)
        configure(wh, index, "alpha\nbeta\n", resolver=resolver, python=f"{MAJOR}.{MINOR}.2")
        out = wh("lock")
        assert f"resolved on {'host' if resolver == 'pip' else 'uv'} in" in out.stdout
        assert "builder image" not in out.stderr
        texts[resolver] = lock_of(wh).read_text()
    assert texts["pip"] == texts["uv"]
    assert pins_of(texts["pip"]) == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}


def pins_of(text: str) -> dict[str, str]:
    return {p.name: p.version for p in lockfile.parse_pins(text, "lock")}


def test_an_unknown_patch_release_is_said_with_what_was_resolved(
    tmp_path: Path, index: LocalIndex
) -> None:
    """No python-version patch and no engine to probe the builder: the lock is made for
    the minor release, and the warning says which patch each backend took."""
    resolved = {}
    for resolver, took in (("pip", HOST), ("uv", f"{MAJOR}.{MINOR}.0")):
        wh = project_runner(tmp_path, resolver)
        configure(wh, index, "needspatch\n", resolver=resolver, python=f"{MAJOR}.{MINOR}")
        proc = wh("lock")
        assert (
            f"wheelhouse: warning: targets.slim: the patch release of Python {MAJOR}.{MINOR} "
            f"is unknown (container engine '{NO_ENGINE}' not found), so this lock was "
            f"resolved for Python {took}"
        ) in proc.stderr
        assert f'targets.slim.python-version = "{MAJOR}.{MINOR}.N"' in proc.stderr
        resolved[resolver] = pins(wh)["needspatch"]
    assert resolved == {"pip": "2.0", "uv": "1.0"}


# -- inputs no resolver may see -------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"requirements.in": "alpha\n" + " " * 1_000_000 + "\n"},
            "requirements.in:2: a line of 1,000,000 characters, over the limit of 8,192 (8 KiB)",
        ),
        (
            {"requirements.in": "alpha\n-r more.in\n", "more.in": "beta\n-r requirements.in\n"},
            "more.in:2: -r requirements.in includes a file that is including it: "
            "requirements.in -> more.in -> requirements.in",
        ),
        (
            {"requirements.in": "alpha\n-e git+https://example.invalid/x/beta.git#egg=beta\n"},
            "requirements.in:2: 'git+https://example.invalid/x/beta.git#egg=beta' is a VCS "
            "checkout, which a lock cannot pin",
        ),
    ],
    ids=["megabyte-line", "circular-include", "editable-vcs"],
)
def test_bad_inputs_are_refused_before_any_resolver(
    wh: Wheelhouse, index: LocalIndex, files: dict[str, str], message: str
) -> None:
    for resolver in ("pip", "uv"):
        configure(wh, index, "", resolver=resolver)
        for name, text in files.items():
            write(wh.project / name, text)
        index.clear_requests()
        # pip-compile took 11 minutes over a 1 MB line: the limit is only a safety net
        proc = wh("lock", check=False, timeout=120)
        assert proc.returncode == INPUT, proc.stderr
        assert f"wheelhouse: input error: {message}" in proc.stderr
        assert "hint: " in proc.stderr
        no_traceback(proc)
        assert index.requests == []  # no resolver asked the index anything
        assert not lock_of(wh).exists()


# -- resolver failures ----------------------------------------------------------------------


def test_pip_compile_conflict_names_both_requirements(wh: Wheelhouse, index: LocalIndex) -> None:
    configure(wh, index, "flask==3.0.0\nwerkzeug<2\n")
    proc = wh("lock", check=False)
    assert proc.returncode == RESOLVE, proc.stderr
    assert "pip-compile could not resolve target 'slim':" in proc.stderr
    assert "these requirements conflict (no version satisfies them all):" in proc.stderr
    assert "  werkzeug<2  (asked for by your inputs)" in proc.stderr
    assert "  werkzeug>=3.0.0  (asked for by flask 3.0.0)" in proc.stderr
    assert "ResolutionImpossible" not in proc.stderr
    no_traceback(proc)


def test_uv_conflict_message_passes_through(wh: Wheelhouse, index: LocalIndex) -> None:
    configure(wh, index, "flask==3.0.0\nwerkzeug<2\n", resolver="uv")
    proc = wh("lock", check=False)
    assert proc.returncode == RESOLVE, proc.stderr
    assert "uv could not resolve target 'slim':" in proc.stderr
    assert "flask" in proc.stderr and "werkzeug>=3.0.0" in proc.stderr
    assert "werkzeug<2" in proc.stderr
    no_traceback(proc)


@pytest.mark.parametrize(
    ("requirements", "said"),
    [
        (
            "alpha\nnosuchpkg\n",
            "nothing on the indexes satisfies nosuchpkg (usable versions: none)",
        ),
        ("newpython\n", "nothing on the indexes satisfies newpython (usable versions: none)"),
    ],
    ids=["missing-project", "only-for-a-newer-python"],
)
def test_pip_compile_names_what_it_cannot_find(
    wh: Wheelhouse, index: LocalIndex, requirements: str, said: str
) -> None:
    index.add_wheel("newpython", "1.0", requires_python=f">={MAJOR}.{MINOR + 1}")
    configure(wh, index, requirements)
    proc = wh("lock", check=False)
    assert proc.returncode == RESOLVE, proc.stderr
    assert "pip-compile could not resolve target 'slim':" in proc.stderr
    assert said in proc.stderr
    if "newpython" in requirements:  # and why the one release there does not count
        assert f"1.0 Requires-Python >={MAJOR}.{MINOR + 1}" in proc.stderr
    no_traceback(proc)
