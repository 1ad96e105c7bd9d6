"""A corpus of bad input run through the real CLI: each case must fail with its own exit code
(errors.py) and a message that names what is wrong, with no traceback.

Nothing here needs the container engine or the network: the index that must be unreachable
is a closed loopback port, and the resolver runs on the host for a target that matches it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from packaging.utils import canonicalize_name

from wheelhouse import config as config_mod
from wheelhouse.lock import lock as lock_mod
from wheelhouse.lock.inputs import check_inputs
from wheelhouse.lock.lockfile import LockFile, Pin

HOST_PY = f"{sys.version_info[0]}.{sys.version_info[1]}"

CONFIG, INPUT, ENGINE, INDEX, STALE = 3, 4, 5, 7, 8

# id, files, args, exit code, substrings of stderr (all must be present)
CASES: list[tuple[str, dict[str, str], tuple[str, ...], int, tuple[str, ...]]] = [
    (
        "unknown-top-key",
        {"wheelhouse.toml": 'resolvr = "uv"\n'},
        ("targets",),
        CONFIG,
        ("config error", "wheelhouse.toml", "unknown key 'resolvr'", "did you mean 'resolver'?"),
    ),
    (
        "unknown-target-key",
        {"wheelhouse.toml": '[targets.slim]\npyhton-version = "3.12"\n'},
        ("targets",),
        CONFIG,
        ("unknown key 'targets.slim.pyhton-version'", "did you mean 'python-version'?"),
    ),
    (
        "wrong-type-output",
        {"wheelhouse.toml": "output = 3\n"},
        ("targets",),
        CONFIG,
        ("wheelhouse.toml: output = 3 (int): expected a string",),
    ),
    (
        "wrong-type-extra-index-urls",
        {"wheelhouse.toml": "[index]\nextra-index-urls = 5\n"},
        ("targets",),
        CONFIG,
        ("wheelhouse.toml: index.extra-index-urls = 5 (int): expected a list of strings",),
    ),
    (
        "bad-resolver",
        {"wheelhouse.toml": 'resolver = "poetry"\n'},
        ("targets",),
        CONFIG,
        ("resolver = 'poetry'", "'pip', 'uv'"),
    ),
    (
        "bad-python-version",
        {"wheelhouse.toml": '[targets.slim]\npython-version = "3"\n'},
        ("targets",),
        CONFIG,
        ("targets.slim.python-version = '3'", "'3.12'"),
    ),
    (
        "unknown-default-target",
        {"wheelhouse.toml": 'default-targets = ["alpin"]\n'},
        ("targets",),
        CONFIG,
        ("default-targets: unknown target 'alpin'", "did you mean 'alpine'?"),
    ),
    (
        "extends-non-builtin",
        {"wheelhouse.toml": '[targets.mine]\nextends = "bookworm"\n'},
        ("targets",),
        CONFIG,
        ("targets.mine.extends = 'bookworm'", "not a built-in target", "slim"),
    ),
    (
        "user-target-incomplete",
        {"wheelhouse.toml": '[targets.mine]\npython-version = "3.11"\n'},
        ("targets",),
        CONFIG,
        ("targets.mine: missing 'builder-image'", 'extends = "slim"'),
    ),
    (
        "pyproject-tool-table",
        {
            "pyproject.toml": '[project]\nname = "a"\nversion = "1"\ndependencies = []\n'
            '[tool.wheelhouse]\nresolvr = "uv"\n'
        },
        ("targets",),
        CONFIG,
        ("pyproject.toml [tool.wheelhouse]: unknown key 'resolvr'", "did you mean 'resolver'?"),
    ),
    (
        "invalid-toml",
        {"wheelhouse.toml": "[targets.slim\n"},
        ("targets",),
        CONFIG,
        ("wheelhouse.toml: not valid TOML", "line 1"),
    ),
    (
        "set-without-value",
        {},
        ("--set", "resolver", "targets"),
        CONFIG,
        ("--set 'resolver': expected KEY=VALUE",),
    ),
    (
        "set-bad-value",
        {},
        ("--set", "targets.slim.python-version=3", "targets"),
        CONFIG,
        ("targets.slim.python-version = '3'",),
    ),
    (
        "missing-config-file",
        {},
        ("--config", "nope.toml", "targets"),
        CONFIG,
        ("nope.toml: no such config file", "wheelhouse init"),
    ),
    (
        "targets-unknown-name",
        {},
        ("targets", "gpuu"),
        CONFIG,
        ("unknown target 'gpuu'", "did you mean 'gpu'?"),
    ),
    (
        "lock-unknown-target-suggests",
        {"requirements.in": "six\n"},
        ("lock", "--target", "slimm"),
        CONFIG,
        ("unknown target 'slimm'", "did you mean 'slim'?"),
    ),
    (
        "lock-unknown-target-lists-known",
        {"requirements.in": "six\n"},
        ("lock", "--target", "slim,nope"),
        CONFIG,
        ("unknown target 'nope'", "alpine, gpu, slim"),
    ),
    (
        "malformed-requirement",
        {"requirements.in": "# deps\nflask>=3\n\nnumpy>=>2  # fast\n"},
        ("lock", "--check"),
        INPUT,
        ("input error", "requirements.in:4", "'numpy>=>2'", "PEP 508"),
    ),
    (
        "missing-requirements",
        {},
        ("lock", "--check"),
        INPUT,
        ("requirements.in: requirements file not found",),
    ),
    (
        "missing-include",
        {"requirements.in": "six\n-r other.in\n"},
        ("lock", "--check"),
        INPUT,
        ("other.in", "not found"),
    ),
    (
        "bad-line-in-include",
        {"requirements.in": "-r sub/base.in\n", "sub/base.in": "six\nflask==\n"},
        ("lock", "--check"),
        INPUT,
        ("sub/base.in:2", "'flask=='"),
    ),
    (
        "unsupported-option",
        {"requirements.in": "--no-index\nsix\n"},
        ("lock", "--check"),
        INPUT,
        ("requirements.in:1", "'--no-index'", "wheelhouse.toml [index]"),
    ),
    (
        "pyproject-bad-dependency",
        {"pyproject.toml": '[project]\nname = "a"\nversion = "1"\ndependencies = ["six", "x y"]\n'},
        ("lock", "--check"),
        INPUT,
        ("pyproject.toml: project.dependencies[1]", "'x y'"),
    ),
    (
        "pyproject-without-dependencies",
        {"pyproject.toml": '[project]\nname = "a"\nversion = "1"\n'},
        ("lock", "--check"),
        INPUT,
        ("pyproject.toml: has no [project].dependencies",),
    ),
    (
        "lock-check-without-lock",
        {"requirements.in": "six\n"},
        ("lock", "--check"),
        STALE,
        ("stale lock", "locks/slim.txt: missing", "wheelhouse lock --target slim"),
    ),
    (
        "lock-check-several-targets",
        {"requirements.in": "six\n"},
        ("lock", "--check", "-t", "slim", "-t", "alpine"),
        STALE,
        ("locks/slim.txt: missing", "locks/alpine.txt: missing", "--target slim --target alpine"),
    ),
    (
        "lock-check-stale",
        {"requirements.in": "six\n", "locks/slim.txt": "# inputs-digest: sha256:0\nsix==1.16.0\n"},
        ("lock", "--check"),
        STALE,
        ("locks/slim.txt: stale",),
    ),
    (
        "missing-engine",
        {},
        ("--engine", "/nonexistent/docker", "targets", "--probe"),
        ENGINE,
        ("engine error", "'/nonexistent/docker' not found", "WHEELHOUSE_ENGINE"),
    ),
    (
        "missing-engine-from-config",
        {"wheelhouse.toml": 'engine = "/nonexistent/podman"\n'},
        ("targets", "--probe", "slim"),
        ENGINE,
        ("'/nonexistent/podman' not found",),
    ),
]


@pytest.mark.parametrize(
    ("files", "args", "code", "expected"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_bad_input(
    wh: Wheelhouse,
    files: dict[str, str],
    args: tuple[str, ...],
    code: int,
    expected: tuple[str, ...],
) -> None:
    for name, text in files.items():
        write(wh.project / name, text)
    proc = wh(*args, check=False)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith("wheelhouse: "), proc.stderr
    for text in expected:
        assert text in proc.stderr, f"{text!r} not in:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr + proc.stdout


UNREACHABLE = "http://127.0.0.1:9/simple"


def lock_with_unreachable_index(wh: Wheelhouse) -> subprocess.CompletedProcess[str]:
    """A target that matches this interpreter resolves on the host, so no engine is needed;
    the resolver fails, then wheelhouse names the index that cannot be reached."""
    write(wh.project / "requirements.in", "six\n")
    write(
        wh.project / "wheelhouse.toml",
        f'[index]\nindex-url = "{UNREACHABLE}"\n[targets.slim]\npython-version = "{HOST_PY}"\n',
    )
    return wh("lock", check=False, timeout=300)


def test_unreachable_index(wh: Wheelhouse) -> None:
    proc = lock_with_unreachable_index(wh)
    assert proc.returncode == INDEX, proc.stderr
    assert f"wheelhouse: index error: package index {UNREACHABLE} is unreachable" in (proc.stderr)
    assert "index-url" in proc.stderr  # the hint says where to fix it
    assert not (wh.project / "locks" / "slim.txt").exists()
    assert "Traceback" not in proc.stderr


def test_unreachable_index_output_is_only_the_error(wh: Wheelhouse) -> None:
    """Without -v, stderr is the progress line and the error: not the HTTP library's
    retry log from the reachability probe."""
    proc = lock_with_unreachable_index(wh)
    assert proc.returncode == INDEX, proc.stderr
    assert "Retrying (Retry(" not in proc.stderr, proc.stderr


def test_init_writes_a_config_that_loads(wh: Wheelhouse) -> None:
    proc = wh("init")
    path = wh.project / "wheelhouse.toml"
    assert path.read_text() == config_mod.STARTER
    assert f"wrote {path.resolve()}" in proc.stdout
    assert "requirements.in" in proc.stdout  # says what to do next

    proc = wh("targets")
    assert proc.returncode == 0
    assert "* slim" in proc.stdout  # the default target is marked
    assert "alpine" in proc.stdout and "gpu" in proc.stdout


def test_init_refuses_to_overwrite(wh: Wheelhouse) -> None:
    path = write(wh.project / "wheelhouse.toml", 'resolver = "uv"\n')
    proc = wh("init", check=False)
    assert proc.returncode == CONFIG
    assert "already exists" in proc.stderr and "wheelhouse.toml" in proc.stderr
    assert "--force" in proc.stderr
    assert path.read_text() == 'resolver = "uv"\n'

    wh("init", "--force")
    assert path.read_text() == config_mod.STARTER


def test_lock_check_passes_for_an_up_to_date_lock(wh: Wheelhouse) -> None:
    """The control for the stale cases above: the same project with a current lock."""
    write(wh.project / "requirements.in", "six\n")
    cfg = config_mod.load(wh.project, environ={})
    target = cfg.target("slim")
    files = check_inputs(cfg.inputs, cfg.root)
    lock = LockFile(
        target="slim",
        target_description=target.describe(),
        inputs_digest=lock_mod.inputs_digest(cfg, target, files),
        pins=(
            Pin(name=canonicalize_name("six"), version="1.16.0", hashes=("sha256:" + "0" * 64,)),
        ),
    )
    write(wh.project / "locks" / "slim.txt", lock.render())
    proc = wh("lock", "--check")
    assert "locks up to date: slim" in proc.stdout

    # and an edit to the input makes it stale
    write(wh.project / "requirements.in", "six\nflask\n")
    proc = wh("lock", "--check", check=False)
    assert proc.returncode == STALE
    assert "locks/slim.txt: stale" in proc.stderr


def test_project_dir_option(wh: Wheelhouse, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write(other / "wheelhouse.toml", 'resolvr = "uv"\n')
    proc = wh("-C", str(other), "targets", check=False)
    assert proc.returncode == CONFIG
    assert "unknown key 'resolvr'" in proc.stderr
