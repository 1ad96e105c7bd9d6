"""The config package's shape: every public name importable from `wheelhouse.config`, and
the optional tables ([store], [trust], [serve]) read only when given, with the same result
as reading them empty (the shortcut in config/loader.py must not change a setting)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wheelhouse import config
from wheelhouse.config.serve import serve_settings
from wheelhouse.config.store import store_settings
from wheelhouse.config.trust import trust_settings
from wheelhouse.errors import ConfigError

OPTIONAL = ["wheelhouse.config.serve", "wheelhouse.config.starter", "wheelhouse.config.store"]
OPTIONAL += ["wheelhouse.config.trust"]


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in config.__all__:
        assert getattr(config, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        config.nothing  # noqa: B018


def test_the_optional_tables_read_empty_give_the_defaults(tmp_path: Path) -> None:
    assert serve_settings({}, "wheelhouse.toml", tmp_path) == config.ServeSettings()
    assert trust_settings({}, "wheelhouse.toml", tmp_path, {}) == config.TrustSettings()
    assert store_settings({}, "wheelhouse.toml", None) is None


def _loaded_modules(root: Path, environ: dict[str, str]) -> list[str]:
    # a fresh interpreter: this one has imported every module already
    program = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from wheelhouse.config import load\n"
        f"c = load(Path({str(root)!r}), environ={environ!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('wheelhouse.config.'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(out.stdout))


def test_a_config_without_the_optional_tables_does_not_import_their_modules(
    tmp_path: Path,
) -> None:
    (tmp_path / "wheelhouse.toml").write_text('resolver = "uv"\n')
    loaded = _loaded_modules(tmp_path, {})
    assert "wheelhouse.config.loader" in loaded
    assert [m for m in OPTIONAL if m in loaded] == []


def test_each_optional_table_given_is_read(tmp_path: Path) -> None:
    (tmp_path / "wheelhouse.toml").write_text(
        'store = "s3://team-wheels/x"\n[serve]\nport = 9000\n[trust]\ntrusted-keys = []\n'
    )
    loaded = _loaded_modules(tmp_path, {})
    assert [m for m in OPTIONAL if m in loaded] == [
        "wheelhouse.config.serve",
        "wheelhouse.config.store",
        "wheelhouse.config.trust",
    ]


def test_the_environment_alone_still_sets_the_store_and_trust(tmp_path: Path) -> None:
    # no [store] or [trust] table: the variables must not be skipped with them
    env = {"WHEELHOUSE_STORE": "s3://team-wheels/x"}
    assert config.load(tmp_path, environ=env).store == config.StoreSettings(
        url="s3://team-wheels/x", bucket="team-wheels", prefix="x"
    )
    for name in ("WHEELHOUSE_TRUSTED_KEYS", "WHEELHOUSE_SIGNING_KEY"):
        with pytest.raises(ConfigError, match=name):
            config.load(tmp_path, environ={name: "bogus"})
