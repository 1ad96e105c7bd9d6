"""`wheelhouse recipe show`: the effective recipe (shipped, the user's, learned), and every
recipe in recipes/ validated with the file and key named (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from conftest import Wheelhouse, write

from wheelhouse.build.learn import Learned
from wheelhouse.config import load


def test_shipped_user_and_learned_recipes_are_shown(project: Path, wh: Wheelhouse) -> None:
    write(project / "requirements.in", "pyyaml\n")
    shipped = wh("recipe", "show", "PyYAML").stdout
    assert shipped.startswith("# slim: from wheelhouse/_recipes/pyyaml.toml\n[build]\n")
    assert 'env = { PYYAML_FORCE_LIBYAML = "1" }' in shipped
    assert "no recipe for numpy" in wh("recipe", "show", "numpy").stdout
    # what a build learned (kept in the cache) joins the user's recipe
    write(project / "recipes" / "python-ldap.toml", '[build]\napt = ["libldap-dev"]\n')
    config = load(project)
    Learned(wh.cache_dir / "store", config.targets["slim"]).add(
        "python-ldap", "apt", ["libsasl2-dev"]
    )
    shown = wh("recipe", "show", "python_ldap").stdout
    assert "from recipes/python-ldap.toml + learned by discovery (cache)" in shown
    assert 'apt = ["libldap-dev", "libsasl2-dev"]' in shown


def test_every_recipe_is_validated(project: Path, wh: Wheelhouse) -> None:
    write(project / "requirements.in", "pyyaml\n")
    write(project / "recipes" / "other.toml", '[build]\napt = ["lib yaml"]\n')
    res = wh("recipe", "show", "pyyaml", check=False)
    assert res.returncode == 3
    assert "recipes/other.toml: build.apt[0] = 'lib yaml'" in res.stderr
    assert "Traceback" not in res.stderr
