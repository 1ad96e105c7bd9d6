"""Unit tests for wheelhouse.config: loading, validation messages, overrides, built-ins.

No engine, no network: `config.load` is called directly on files in a temp folder, with an
explicit (empty) environment so that nothing from this machine leaks in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write

from wheelhouse import config
from wheelhouse.config import PYPI
from wheelhouse.errors import ConfigError


def load(
    root: Path,
    text: str | None = None,
    *,
    overrides: tuple[str, ...] = (),
    environ: dict[str, str] | None = None,
) -> config.Config:
    if text is not None:
        write(root / "wheelhouse.toml", text)
    return config.load(root, overrides=overrides, environ=environ or {})


def fails(root: Path, text: str | None = None, **kw: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(root, text, **kw)  # type: ignore[arg-type]
    assert info.value.exit_code == 3
    return info.value


# -- unknown keys, with "did you mean" ---------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    err = fails(tmp_path, 'resolvr = "uv"\n')
    assert "wheelhouse.toml" in err.message
    assert "'resolvr'" in err.message
    assert err.hint is not None and "'resolver'" in err.hint
    assert "did you mean" in err.hint


def test_unknown_key_in_a_target_names_the_dotted_key(tmp_path: Path) -> None:
    err = fails(tmp_path, '[targets.slim]\npyhton-version = "3.12"\n')
    assert "targets.slim.pyhton-version" in err.message
    assert "wheelhouse.toml" in err.message
    assert err.hint is not None and "'python-version'" in err.hint


def test_unknown_key_in_index_table(tmp_path: Path) -> None:
    err = fails(tmp_path, '[index]\nextra-index-url = ["https://example.org/simple"]\n')
    assert "index.extra-index-url" in err.message
    assert err.hint is not None and "'extra-index-urls'" in err.hint


def test_unknown_key_without_close_match_lists_known_keys(tmp_path: Path) -> None:
    err = fails(tmp_path, "zzzzzz = 1\n")
    assert "'zzzzzz'" in err.message
    assert err.hint is not None and "known keys:" in err.hint and "resolver" in err.hint


# -- wrong types: the file, the dotted key and the quoted value ----------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("output = 3\n", "wheelhouse.toml: output = 3 (int): expected a string"),
        (
            "[index]\nextra-index-urls = 5\n",
            "wheelhouse.toml: index.extra-index-urls = 5 (int): expected a list of strings",
        ),
        (
            "inputs = [1, 2]\n",
            "wheelhouse.toml: inputs = [1, 2] (list): expected a list of strings",
        ),
        ("index = 'pypi'\n", "wheelhouse.toml: index = 'pypi': expected a table"),
        ("targets = 1\n", "wheelhouse.toml: targets = 1 (int): expected a table"),
        ("[targets]\nslim = 'x'\n", "wheelhouse.toml: targets.slim = 'x': expected a table"),
        (
            "[targets.slim]\npython-version = 3.12\n",
            "wheelhouse.toml: targets.slim.python-version = 3.12 (float): expected a string",
        ),
        (
            "[targets.slim]\nbuild-env = { CFLAGS = 2 }\n",
            "wheelhouse.toml: targets.slim.build-env.CFLAGS = 2 (int): expected a string",
        ),
        (
            "[targets.slim]\nno-binary = ['not a name']\n",
            "wheelhouse.toml: targets.slim.no-binary = 'not a name': expected package names",
        ),
        (
            "[index]\nindex-url = 'ftp://mirror.example/simple'\n",
            "index.index-url = 'ftp://mirror.example/simple': expected an http(s):// or file://",
        ),
    ],
)
def test_wrong_type_names_file_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    err = fails(tmp_path, text)
    assert expected in err.message


def test_default_targets_accepts_a_single_string(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'default-targets = "alpine"\n')
    assert cfg.default_targets == ("alpine",)


# -- bad choices and versions -----------------------------------------------------------


def test_bad_resolver_choice(tmp_path: Path) -> None:
    err = fails(tmp_path, 'resolver = "poetry"\n')
    assert "resolver = 'poetry'" in err.message
    assert "'pip'" in err.message and "'uv'" in err.message


@pytest.mark.parametrize(
    ("key", "value", "choices"),
    [
        ("libc", "uclibc", "'glibc', 'musl'"),
        ("arch", "arm64", "'x86_64', 'aarch64'"),
        ("implementation", "pp", "'cp'"),
    ],
)
def test_bad_target_choice(tmp_path: Path, key: str, value: str, choices: str) -> None:
    err = fails(tmp_path, f'[targets.slim]\n{key} = "{value}"\n')
    assert f"targets.slim.{key} = {value!r}" in err.message
    assert choices in err.message


@pytest.mark.parametrize("bad", ["3", "3.12.1.1", "three", "3.x", ""])
def test_bad_python_version(tmp_path: Path, bad: str) -> None:
    err = fails(tmp_path, f'[targets.slim]\npython-version = "{bad}"\n')
    assert f"targets.slim.python-version = {bad!r}" in err.message
    assert "'3.12'" in err.message  # the example of what is expected


def test_bad_libc_version(tmp_path: Path) -> None:
    err = fails(tmp_path, '[targets.alpine]\nlibc-version = "1"\n')
    assert "targets.alpine.libc-version = '1'" in err.message


# -- targets --------------------------------------------------------------------------


def test_unknown_target_in_default_targets(tmp_path: Path) -> None:
    err = fails(tmp_path, 'default-targets = ["slim", "alpin"]\n')
    assert "default-targets" in err.message and "'alpin'" in err.message
    assert err.hint is not None and "'alpine'" in err.hint


def test_unknown_target_in_default_targets_lists_known(tmp_path: Path) -> None:
    err = fails(tmp_path, 'default-targets = ["zzzz"]\n')
    assert "'zzzz'" in err.message
    assert err.hint is not None
    assert "alpine" in err.hint and "gpu" in err.hint and "slim" in err.hint


def test_extends_of_a_non_builtin(tmp_path: Path) -> None:
    err = fails(tmp_path, '[targets.fast]\nextends = "slimm"\n')
    assert "targets.fast.extends = 'slimm'" in err.message
    assert "not a built-in target" in err.message
    assert err.hint is not None and "'slim'" in err.hint


def test_extends_of_a_user_target_is_refused(tmp_path: Path) -> None:
    err = fails(
        tmp_path,
        '[targets.a]\npython-version = "3.12"\nbuilder-image = "img:a"\n'
        '[targets.b]\nextends = "a"\n',
    )
    assert "targets.b.extends = 'a'" in err.message
    assert err.hint is not None and "slim" in err.hint


def test_builtin_targets_exist_with_sensible_fields(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg.source is None
    assert set(cfg.targets) == {"slim", "alpine", "gpu"}
    assert cfg.default_targets == ("slim",)

    slim = cfg.target("slim")
    assert (slim.implementation, slim.python_version) == ("cp", "3.12")
    assert (slim.libc, slim.libc_version, slim.arch) == ("glibc", "2.36", "x86_64")
    assert "bookworm" in slim.builder_image and "slim" in slim.final_image
    assert slim.cuda is None
    assert slim.index.index_url == PYPI and slim.index.extra_index_urls == ()

    alpine = cfg.target("alpine")
    assert (alpine.libc, alpine.libc_version) == ("musl", "1.2")
    assert "alpine" in alpine.builder_image and "alpine" in alpine.final_image

    gpu = cfg.target("gpu")
    assert gpu.libc == "glibc" and gpu.cuda == "12.6"
    assert "devel" in gpu.builder_image and "runtime" in gpu.final_image
    assert any("pytorch" in u and "cu126" in u for u in gpu.index.extra_index_urls)
    assert gpu.index.index_url == PYPI


def test_builtin_override_keeps_other_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[targets.slim]\nlibc-version = "2.31"\nno-binary = ["PsycoPG2"]\n')
    slim = cfg.target("slim")
    assert slim.libc_version == "2.31"
    assert slim.no_binary == ("psycopg2",)  # canonicalized
    builtin = config.BUILTIN_TARGETS["slim"]
    assert slim.python_version == builtin["python-version"]
    assert slim.builder_image == builtin["builder-image"]
    assert slim.final_image == builtin["final-image"]
    assert slim.libc == "glibc"
    # the other built-ins are untouched
    assert cfg.target("alpine").libc_version == "1.2"


def test_user_target_needs_python_version(tmp_path: Path) -> None:
    err = fails(tmp_path, '[targets.mine]\nbuilder-image = "img:1"\n')
    assert "targets.mine" in err.message and "'python-version'" in err.message
    assert err.hint is not None and "extends" in err.hint


def test_user_target_needs_builder_image(tmp_path: Path) -> None:
    err = fails(tmp_path, '[targets.mine]\npython-version = "3.11"\n')
    assert "targets.mine" in err.message and "'builder-image'" in err.message


def test_user_target_with_extends_inherits(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[targets.py313]\nextends = "slim"\npython-version = "3.13"\n'
        'builder-image = "python:3.13-bookworm"\n',
    )
    t = cfg.target("py313")
    assert t.python_version == "3.13"
    assert t.builder_image == "python:3.13-bookworm"
    assert t.libc_version == "2.36"  # from slim
    assert t.final_image == config.BUILTIN_TARGETS["slim"]["final-image"]
    assert cfg.default_targets == ("py313",)  # the targets the file names


def test_user_target_final_image_defaults_to_builder(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[targets.mine]\npython-version = "3.11"\nbuilder-image = "img:1"\n')
    t = cfg.target("mine")
    assert t.final_image == "img:1"
    assert t.libc == "glibc" and t.libc_version is None  # probed later


def test_bad_target_name(tmp_path: Path) -> None:
    err = fails(tmp_path, '[targets."my target"]\nextends = "slim"\n')
    assert "targets.my target" in err.message
    assert "letters, digits" in err.message


def test_target_index_lists_extend_the_global_ones(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[index]\nextra-index-urls = ["https://example.org/simple"]\nfind-links = ["wheels"]\n'
        '[targets.gpu]\nfind-links = ["gpu-wheels", "https://example.org/links/"]\n',
    )
    gpu = cfg.target("gpu").index
    assert gpu.extra_index_urls[0] == "https://example.org/simple"
    assert any("cu126" in u for u in gpu.extra_index_urls[1:])
    root = tmp_path.resolve()
    assert gpu.find_links == (
        str(root / "wheels"),
        str(root / "gpu-wheels"),
        "https://example.org/links/",
    )
    assert cfg.target("slim").index.extra_index_urls == ("https://example.org/simple",)


def test_config_target_lookup_suggests(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    with pytest.raises(ConfigError) as info:
        cfg.target("slimm")
    assert "'slimm'" in info.value.message
    assert info.value.hint is not None and "'slim'" in info.value.hint


# -- where the config comes from --------------------------------------------------------


def test_pyproject_tool_table_is_found(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "app"\nversion = "1"\ndependencies = []\n'
        '[tool.wheelhouse]\nresolver = "uv"\ndefault-targets = ["alpine"]\n',
    )
    cfg = load(tmp_path)
    assert cfg.source == (tmp_path / "pyproject.toml").resolve()
    assert cfg.resolver == "uv"
    assert cfg.default_targets == ("alpine",)
    assert cfg.inputs == (tmp_path.resolve() / "pyproject.toml",)


def test_pyproject_errors_name_the_tool_table(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.wheelhouse]\nresolvr = "uv"\n')
    err = fails(tmp_path)
    assert err.message.startswith("pyproject.toml [tool.wheelhouse]: ")
    assert "'resolvr'" in err.message


def test_pyproject_target_error_names_the_tool_table(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.wheelhouse.targets.slim]\npython-version = "3"\n')
    err = fails(tmp_path)
    assert "pyproject.toml [tool.wheelhouse]: targets.slim.python-version = '3'" in err.message


def test_wheelhouse_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.wheelhouse]\nresolver = "uv"\n')
    cfg = load(tmp_path, 'resolver = "pip"\n')
    assert cfg.source == (tmp_path / "wheelhouse.toml").resolve()
    assert cfg.resolver == "pip"


def test_pyproject_without_tool_table_means_defaults(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "app"\nversion = "1"\n')
    cfg = load(tmp_path)
    assert cfg.source is None
    assert cfg.resolver == "pip"


def test_explicit_config_file(tmp_path: Path) -> None:
    path = write(tmp_path / "conf" / "pyproject.toml", '[tool.wheelhouse]\nresolver = "uv"\n')
    cfg = config.load(config_file=path, environ={})
    assert cfg.root == path.parent.resolve()
    assert cfg.resolver == "uv"
    with pytest.raises(ConfigError) as info:
        config.load(config_file=tmp_path / "missing.toml", environ={})
    assert "missing.toml" in info.value.message and "no such config file" in info.value.message


def test_invalid_toml(tmp_path: Path) -> None:
    err = fails(tmp_path, 'resolver = "uv\n')
    assert "wheelhouse.toml" in err.message
    assert "not valid TOML" in err.message
    assert "line 1" in err.message


# -- --set overrides ---------------------------------------------------------------------


def test_set_override_is_a_string(tmp_path: Path) -> None:
    cfg = load(tmp_path, overrides=("targets.slim.python-version=3.13",))
    assert cfg.target("slim").python_version == "3.13"
    assert cfg.target("slim").libc_version == "2.36"  # the rest stays


def test_set_override_beats_the_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'resolver = "pip"\n', overrides=("resolver=uv",))
    assert cfg.resolver == "uv"


def test_set_override_toml_values(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        overrides=(
            'targets.slim.no-binary=["psycopg2", "lxml"]',
            'default-targets=["slim", "alpine"]',
            'targets.alpine.build-env={ CFLAGS = "-O2" }',
        ),
    )
    assert cfg.target("slim").no_binary == ("lxml", "psycopg2")
    assert cfg.default_targets == ("slim", "alpine")
    assert cfg.target("alpine").build_env == (("CFLAGS", "-O2"),)


def test_set_override_is_validated_like_the_file(tmp_path: Path) -> None:
    err = fails(tmp_path, overrides=("resolver=poetry",))
    assert "resolver = 'poetry'" in err.message
    err = fails(tmp_path, overrides=("targets.slim.pyhton-version=3.12",))
    assert "targets.slim.pyhton-version" in err.message


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("resolver", "expected KEY=VALUE"),
        ("=uv", "expected KEY=VALUE"),
        ('default-targets=["slim"', "not a TOML value"),
        ("resolver.x=1", "'resolver' is not a table"),
    ],
)
def test_bad_set_override(tmp_path: Path, item: str, expected: str) -> None:
    err = fails(tmp_path, 'resolver = "uv"\n', overrides=(item,))
    assert f"--set {item!r}" in err.message
    assert expected in err.message


# -- paths and the environment ----------------------------------------------------------


def test_defaults_for_paths(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    root = tmp_path.resolve()
    assert cfg.root == root
    assert cfg.inputs == (root / "requirements.in",)
    assert cfg.output == root / "wheelhouse"
    assert cfg.locks == root / "locks"
    assert cfg.engine == "docker"


def test_cache_dir_from_file_is_relative_to_the_project(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'cache-dir = ".cache/wh"\n')
    assert cfg.cache_dir == tmp_path.resolve() / ".cache" / "wh"


def test_wheelhouse_cache_dir_env_overrides_cache_dir(tmp_path: Path) -> None:
    env_dir = tmp_path / "from-env"
    cfg = load(
        tmp_path, 'cache-dir = "from-file"\n', environ={"WHEELHOUSE_CACHE_DIR": str(env_dir)}
    )
    assert cfg.cache_dir == env_dir


def test_the_users_cache_folder_is_found_only_when_a_command_uses_it(tmp_path: Path) -> None:
    """No cache-dir, no WHEELHOUSE_CACHE_DIR: platformdirs' answer, loaded on first use
    (~5 ms a command that needs no cache would pay), in a process of its own."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from wheelhouse import config\n"
        "cfg = config.load(Path(sys.argv[1]))\n"
        "assert 'platformdirs' not in sys.modules\n"
        "import platformdirs\n"
        "assert cfg.cache_dir == Path(platformdirs.user_cache_dir('wheelhouse')), cfg.cache_dir\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "WHEELHOUSE_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert load(tmp_path).cache_folder is None


@pytest.mark.parametrize("home", [None, "", "relative/home"])
def test_no_home_to_find_the_cache_in_is_a_config_error_not_a_folder_named_tilde(
    tmp_path: Path, home: str | None
) -> None:
    """A container run as a uid with no passwd entry and no HOME (`docker run -u 1234`):
    the user's cache folder cannot be found. platformdirs raises (newer) or answers
    "~/.cache/wheelhouse" (older), which would make a folder named "~" here. The CLI says
    so (exit 3) and creates nothing; the error path never looks for the cache either."""
    code = (
        "import os, pwd, sys\n"
        "def nobody(uid): raise KeyError(uid)\n"
        "pwd.getpwuid = nobody\n"  # (this uid has no entry in /etc/passwd)
        "from wheelhouse.cli import run\n"
        "sys.argv = ['wheelhouse', 'cache', 'stats']\n"
        "run()\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WHEELHOUSE_CACHE_DIR", "XDG_CACHE_HOME", "HOME")
    }
    if home is not None:
        env["HOME"] = home

    def stats() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = stats()
    assert done.returncode == 3, done.stderr
    assert "no cache folder: HOME is not set" in done.stderr
    assert "WHEELHOUSE_CACHE_DIR" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no "~" (nor anything else) made here
    # with the variable set, the same user gets on
    env["WHEELHOUSE_CACHE_DIR"] = str(tmp_path / "cache")
    done = stats()
    assert done.returncode == 0, done.stderr


def test_a_cache_folder_platformdirs_leaves_relative_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """platformdirs before 4.4 answers "~/.cache/wheelhouse" where no home is found."""
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name: f"~/.cache/{name}")
    cfg = load(tmp_path)
    with pytest.raises(ConfigError, match="no cache folder"):
        _ = cfg.cache_dir
    assert cfg.used_cache_dir() is None


def test_a_current_folder_that_was_removed_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(ConfigError, match="the current folder no longer exists") as info:
        config.load()
    assert info.value.hint is not None and "-C PROJECT" in info.value.hint


def test_engine_precedence(tmp_path: Path) -> None:
    write(tmp_path / "wheelhouse.toml", 'engine = "podman"\n')
    assert config.load(tmp_path, environ={}).engine == "podman"
    assert config.load(tmp_path, environ={"WHEELHOUSE_ENGINE": "/usr/bin/docker"}).engine == (
        "/usr/bin/docker"
    )
    assert config.load(tmp_path, engine="x", environ={"WHEELHOUSE_ENGINE": "y"}).engine == "x"


def test_missing_ca_bundle(tmp_path: Path) -> None:
    err = fails(tmp_path, 'ca-bundle = "/nonexistent/ca.pem"\n')
    assert "ca-bundle = '/nonexistent/ca.pem'" in err.message
    assert "no such file" in err.message


def test_ca_bundle_from_pip_cert(tmp_path: Path) -> None:
    pem = write(tmp_path / "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    cfg = load(tmp_path, environ={"PIP_CERT": str(pem)})
    assert cfg.ca_bundle == pem.resolve()


def test_relative_ca_bundle_is_relative_to_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like every other path in the file (inputs, locks, cache-dir, find-links)."""
    project = tmp_path / "project"
    write(project / "certs" / "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # e.g. `wheelhouse -C project lock`
    cfg = load(project, 'ca-bundle = "certs/ca.pem"\n')
    assert cfg.ca_bundle == (project / "certs" / "ca.pem").resolve()


def test_inputs_default_to_pyproject_when_no_requirements_in(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "a"\nversion = "1"\n')
    assert load(tmp_path).inputs == (tmp_path.resolve() / "pyproject.toml",)
    write(tmp_path / "requirements.in", "six\n")
    assert load(tmp_path).inputs == (tmp_path.resolve() / "requirements.in",)


def test_starter_config_loads(tmp_path: Path) -> None:
    cfg = load(tmp_path, config.STARTER)
    assert cfg.default_targets == ("slim",)
    assert cfg.resolver == "pip"
    assert cfg.target("slim").python_version == "3.12"


def test_binary_policy(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[targets.slim]\nno-binary = ["lxml"]\nonly-binary = [":all:"]\n')
    slim = cfg.target("slim")
    assert slim.binary_policy("LXML") == "no-binary"
    assert slim.binary_policy("numpy") == "only-binary"
    assert cfg.target("alpine").binary_policy("numpy") == "any"
