"""The Python a lock is resolved for, to the patch release: `python-version = "3.11.2"` in
the config, else the builder image's probe, else the minor alone with the report saying
so. No engine here: the probe's answers come from a stub. That the host's pins are checked
against the target's patch release is tests/integration/test_faults_locks.py's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import cast

import pytest
from conftest import write

from wheelhouse import config as config_mod
from wheelhouse.config import Config
from wheelhouse.engine import Engine, ImageInfo
from wheelhouse.errors import ConfigError, EngineError, ResolveError
from wheelhouse.lock import lock as lock_mod
from wheelhouse.lock.interpreter import check_builder, release, target_python


def load(tmp_path: Path, python: str) -> Config:
    write(
        tmp_path / "wheelhouse.toml",
        f'[targets.slim]\npython-version = "{python}"\nbuilder-image = "b:1"\n',
    )
    return config_mod.load(tmp_path, environ={})


def info(python_version: str) -> ImageInfo:
    return ImageInfo(
        image_id="sha256:" + "0" * 64,
        python="/usr/bin/python3",
        python_version=python_version,
        implementation="cpython",
        soabi="cpython-311-x86_64-linux-gnu",
        libc="glibc",
        libc_version="2.36",
        arch="x86_64",
        distro="debian",
    )


class StubEngine:
    """Answers `probe` with an ImageInfo, or raises what an engine would."""

    def __init__(self, answer: ImageInfo | EngineError) -> None:
        self.answer = answer
        self.probed: list[tuple[str, str | None]] = []

    def probe(self, ref: str, *, key: str | None = None) -> ImageInfo:
        self.probed.append((ref, key))
        if isinstance(self.answer, EngineError):
            raise self.answer
        return self.answer


def engine(stub: StubEngine) -> Engine:
    return cast(Engine, stub)


# -- the config ---------------------------------------------------------------------------


def test_a_patch_release_is_accepted_and_the_minor_derived(tmp_path: Path) -> None:
    t = load(tmp_path, "3.11.2").target("slim")
    assert (t.python_version, t.python_full, t.python_tuple) == ("3.11", "3.11.2", (3, 11))
    assert t.describe().startswith("cp3.11.2, ")


def test_a_minor_alone_is_as_before(tmp_path: Path) -> None:
    t = load(tmp_path, "3.11").target("slim")
    assert (t.python_version, t.python_full) == ("3.11", None)
    assert t.describe().startswith("cp3.11, ")


def test_four_parts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "3.11.2.1")
    assert "targets.slim.python-version = '3.11.2.1'" in err.value.message
    assert "'3.12' or '3.12.4'" in err.value.message


def test_the_inputs_digest_of_a_minor_only_target_is_unchanged(tmp_path: Path) -> None:
    """Locks of existing "3.11" configs must not turn stale: the digest document is the
    one wheelhouse wrote before patch releases existed."""
    cfg = load(tmp_path, "3.11")
    t = cfg.target("slim")
    doc = {
        "format": "1",
        "inputs": [],
        "target": {
            "python": "3.11",
            "implementation": "cp",
            "libc": ["glibc", "2.36"],
            "arch": "x86_64",
            "cuda": None,
            "index-url": "https://pypi.org/simple",
            "extra-index-urls": [],
            "find-links": [],
            "no-binary": [],
            "only-binary": [],
        },
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert lock_mod.inputs_digest(cfg, t, []) == "sha256:" + hashlib.sha256(blob).hexdigest()
    # a patch release is part of what a lock is a function of
    full = load(tmp_path, "3.11.2")
    assert lock_mod.inputs_digest(full, full.target("slim"), []) != lock_mod.inputs_digest(
        cfg, t, []
    )


def test_the_ci_cache_key_of_a_minor_only_target_is_unchanged(tmp_path: Path) -> None:
    """`wheelhouse cache key` hashes the target's fields: the new one only where it is set."""
    from wheelhouse.build.cachekey import _target_doc

    cfg = load(tmp_path, "3.11")
    assert "python_full" not in _target_doc(cfg, cfg.target("slim"))
    full = load(tmp_path, "3.11.2")
    assert _target_doc(full, full.target("slim"))["python_full"] == "3.11.2"


# -- which Python -------------------------------------------------------------------------


def test_the_config_s_patch_release_needs_no_engine(tmp_path: Path) -> None:
    t = load(tmp_path, "3.11.2").target("slim")
    stub = StubEngine(EngineError("must not be asked"))
    python = target_python(t, lambda: engine(stub))
    assert (python.version, python.known) == ("3.11.2", True)
    assert stub.probed == []


def test_the_patch_release_is_probed_from_the_builder_image(tmp_path: Path) -> None:
    t = load(tmp_path, "3.11").target("slim")
    stub = StubEngine(info("3.11.2"))
    python = target_python(t, lambda: engine(stub))
    assert (python.version, python.known) == ("3.11.2", True)
    assert stub.probed == [("b:1", "targets.slim.builder-image")]


def test_without_an_engine_the_patch_release_is_unknown_and_says_why(tmp_path: Path) -> None:
    t = load(tmp_path, "3.11").target("slim")
    stub = StubEngine(EngineError("container engine '/nope/docker' not found"))
    python = target_python(t, lambda: engine(stub))
    assert (python.version, python.known) == ("3.11", False)
    assert python.unknown_because == "container engine '/nope/docker' not found"


def test_a_builder_of_another_minor_says_nothing_of_the_patch(tmp_path: Path) -> None:
    t = load(tmp_path, "3.11").target("slim")
    python = target_python(t, lambda: engine(StubEngine(info("3.12.4"))))
    assert (python.version, python.known) == ("3.11", False)
    assert python.unknown_because == "targets.slim.builder-image b:1 runs Python 3.12.4"


def test_release_of_odd_version_strings() -> None:
    assert release("3.11.2") == "3.11.2"
    assert release("3.11.2+") == "3.11.2"
    assert release("3.13.0rc1") == "3.13.0"
    assert release("3.11") is None


def test_pip_compile_in_the_builder_must_run_the_named_patch_release(tmp_path: Path) -> None:
    full = load(tmp_path, "3.11.2").target("slim")
    check_builder(full, info("3.11.2"))
    with pytest.raises(ResolveError) as err:
        check_builder(full, info("3.11.4"))
    assert err.value.message == (
        "target 'slim' says Python 3.11.2, but its builder image b:1 has Python 3.11.4: "
        "pip-compile there would resolve for 3.11.4"
    )
    assert err.value.hint is not None and 'python-version = "3.11.4"' in err.value.hint
    minor = load(tmp_path, "3.11").target("slim")
    check_builder(minor, info("3.11.4"))  # any 3.11 is that target's
    with pytest.raises(ResolveError):
        check_builder(minor, info("3.12.1"))
