"""Learned packages: kept per target, merged into recipes, rendered as a recipe file that
reads back with the same digest (so a machine with the file in git gets the same key)."""

from __future__ import annotations

from pathlib import Path

from wheelhouse.build.learn import Learned, with_packages
from wheelhouse.build.recipefiles import effective, render, save
from wheelhouse.config import Config, load
from wheelhouse.recipes import Recipes, parse
from wheelhouse.tomltable import read_toml


def _config(tmp_path: Path) -> Config:
    (tmp_path / "wheelhouse.toml").write_text(f'cache-dir = "{tmp_path / "cache"}"\n')
    return load(tmp_path)


def test_a_learned_recipe_reads_back_with_the_same_digest(tmp_path: Path) -> None:
    shipped = Recipes(None).get("pyyaml")
    assert shipped is not None
    merged = with_packages(shipped, "pyyaml", "apt", ["zlib1g-dev", "libyaml-dev"])
    assert merged.build_for("apt") == ("libyaml-dev", "zlib1g-dev")
    assert merged.env == shipped.env and merged.checks == shipped.checks
    path = tmp_path / "pyyaml.toml"
    path.write_text(render(merged, ["libyaml-0-2"], comment="test"))
    again = parse("pyyaml", read_toml(path, "recipes/pyyaml.toml"), "recipes/pyyaml.toml")
    assert again.digest() == merged.digest()
    assert again.digest() != shipped.digest()
    # no recipe before: a new one, the same as a file with only those packages
    fresh = with_packages(None, "python-ldap", "apt", ["libsasl2-dev", "libldap-dev"])
    written = render(fresh)
    assert written.startswith("[build]\napt = [")
    path.write_text(written)
    assert parse("python-ldap", read_toml(path, "x"), "x").digest() == fresh.digest()


def test_learned_packages_are_kept_per_target_and_merged(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    slim = cfg.targets["slim"]
    learned = Learned(cfg.cache_dir / "store", slim)
    assert learned.recipe("python-ldap", None) is None
    learned.add("python-ldap", "apt", ["libldap-dev"])
    learned.add("python-ldap", "apt", ["libsasl2-dev", "libldap-dev"])
    recipe = learned.recipe("python-ldap", None)
    assert recipe is not None and recipe.build_for("apt") == ("libldap-dev", "libsasl2-dev")
    [shown] = effective(cfg, [slim], "Python_LDAP")
    assert shown.learned == {"apt": ("libldap-dev", "libsasl2-dev")}
    assert shown.source == "learned by discovery (cache)"
    # a broken learned file is no recipe, not a crash
    (learned.folder / "python-ldap.json").write_text("{not json")
    assert learned.recipe("python-ldap", None) is None


def test_save_writes_recipes(tmp_path: Path) -> None:
    from wheelhouse.build.recipefiles import LearnedRecipe

    recipe = with_packages(None, "python-ldap", "apt", ["libldap-dev"])
    item = LearnedRecipe(
        project="python-ldap", target="slim", family="apt", packages=("libldap-dev",),
        runtime=("libldap-2.5-0",), recipe=recipe,
    )  # fmt: skip
    [path] = save(tmp_path / "recipes", [item])
    assert path == tmp_path / "recipes" / "python-ldap.toml"
    text = path.read_text()
    assert 'apt = ["libldap-dev"]' in text and "libldap-2.5-0" in text
    assert Recipes(tmp_path / "recipes").get("python-ldap") is not None
