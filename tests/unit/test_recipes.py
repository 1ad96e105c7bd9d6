"""Unit tests for wheelhouse.recipes: shipped recipes, user overrides, file names,
validation messages, the digest, and checks on wheel members. No engine, no network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import REPO, write

from wheelhouse.errors import ConfigError
from wheelhouse.recipes import FAMILIES, SHIPPED_DIR, Check, Recipe, Recipes

FULL = """\
[build]
apt = ["libyaml-dev"]
apk = ["yaml-dev"]
requires = ["Cython>=3"]
env = { PYYAML_FORCE_LIBYAML = "1" }

[runtime]
apt = ["libyaml-0-2"]
apk = ["yaml"]

[[check]]
contains = "yaml/_yaml*.so"
"""


def user(tmp_path: Path, files: dict[str, str]) -> Recipes:
    folder = tmp_path / "recipes"
    for name, text in files.items():
        write(folder / name, text)
    return Recipes(folder)


def fails(tmp_path: Path, text: str, name: str = "pyyaml.toml") -> ConfigError:
    recipes = user(tmp_path, {name: text})
    with pytest.raises(ConfigError) as info:
        recipes.get("pyyaml")
    assert info.value.exit_code == 3
    assert f"recipes/{name}" in info.value.message  # the file, as the user knows it
    return info.value


# -- shipped recipes ----------------------------------------------------------------------


def test_every_shipped_recipe_loads() -> None:
    names = sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))
    loaded = Recipes(None).load_all()
    assert sorted(loaded) == names
    assert {"pyyaml", "psycopg2", "lxml"} <= set(loaded)
    for recipe in loaded.values():
        assert recipe.source == f"wheelhouse/_recipes/{recipe.name}.toml"
        assert recipe.checks, f"{recipe.name}: a shipped recipe checks its wheel"
        for family in FAMILIES:
            assert recipe.build_for(family), f"{recipe.name}: no {family} build packages"
            assert recipe.runtime_for(family), f"{recipe.name}: no {family} runtime packages"


@pytest.mark.parametrize(
    ("project", "apt", "runtime", "apk", "apk_runtime", "member"),
    [
        (
            "PyYAML",
            ("libyaml-dev",),
            ("libyaml-0-2",),
            ("yaml-dev",),
            ("yaml",),
            "yaml/_yaml.cpython-312-x86_64-linux-gnu.so",
        ),
        (
            "psycopg2",
            ("libpq-dev",),
            ("libpq5",),
            ("postgresql-dev",),
            ("libpq",),
            "psycopg2/_psycopg.cpython-312-x86_64-linux-gnu.so",
        ),
        (
            "lxml",
            ("libxml2-dev", "libxslt1-dev"),
            ("libxml2", "libxslt1.1"),
            ("libxml2-dev", "libxslt-dev"),
            ("libxml2", "libxslt"),
            "lxml/etree.cpython-312-x86_64-linux-gnu.so",
        ),
    ],
)
def test_shipped_recipe_contents(
    project: str,
    apt: tuple[str, ...],
    runtime: tuple[str, ...],
    apk: tuple[str, ...],
    apk_runtime: tuple[str, ...],
    member: str,
) -> None:
    recipe = Recipes(None).get(project)
    assert recipe is not None
    assert recipe.build_for("apt") == apt
    assert recipe.runtime_for("apt") == runtime
    assert recipe.build_for("apk") == apk
    assert recipe.runtime_for("apk") == apk_runtime
    assert all(c.passes([f"{project}-1.0.dist-info/RECORD", member]) for c in recipe.checks)
    # a wheel whose build fell back to pure Python fails the check
    pure = [f"{project.lower()}/__init__.py", f"{project}-1.0.dist-info/RECORD"]
    assert not any(c.passes(pure) for c in recipe.checks)


def test_pyyaml_recipe_forces_the_libyaml_extension() -> None:
    # PyYAML's setup.py falls back to pure Python on a compile error unless forced
    recipe = Recipes(None).get("pyyaml")
    assert recipe is not None
    assert ("PYYAML_FORCE_LIBYAML", "1") in recipe.env


def test_unknown_project_and_unknown_family_have_no_recipe_or_packages() -> None:
    recipes = Recipes(None)
    assert recipes.get("requests") is None
    recipe = recipes.get("pyyaml")
    assert recipe is not None
    assert recipe.build_for("none") == ()  # an image with no package manager
    assert recipe.runtime_for("dnf") == ()


# -- user recipes ------------------------------------------------------------------------


def test_user_recipe_replaces_the_shipped_one_entirely(tmp_path: Path) -> None:
    recipes = user(tmp_path, {"pyyaml.toml": '[build]\napt = ["my-libyaml-dev"]\n'})
    recipe = recipes.get("PyYAML")
    assert recipe is not None
    assert recipe.source == "recipes/pyyaml.toml"
    assert recipe.build_for("apt") == ("my-libyaml-dev",)
    # nothing merged in from the shipped recipe
    assert recipe.build_for("apk") == ()
    assert recipe.runtime_for("apt") == ()
    assert recipe.env == ()
    assert recipe.checks == ()
    shipped = Recipes(None).get("pyyaml")
    assert shipped is not None and recipe.digest() != shipped.digest()
    # the others stay shipped
    lxml = recipes.get("lxml")
    assert lxml is not None and lxml.source == "wheelhouse/_recipes/lxml.toml"


def test_user_recipe_for_a_new_project_and_load_all(tmp_path: Path) -> None:
    recipes = user(tmp_path, {"Cryptography.toml": '[build]\napt = ["libssl-dev"]\n'})
    loaded = recipes.load_all()
    assert {"cryptography", "pyyaml", "psycopg2", "lxml"} <= set(loaded)
    assert list(loaded) == sorted(loaded)
    assert loaded["cryptography"].name == "cryptography"


@pytest.mark.parametrize("file_name", ["PyYAML.toml", "pyyaml.toml", "PyYaml.toml", "py_yaml.toml"])
def test_file_names_are_matched_by_canonical_name(tmp_path: Path, file_name: str) -> None:
    recipes = user(tmp_path, {file_name: '[build]\napt = ["x-dev"]\n'})
    project = "py-yaml" if file_name == "py_yaml.toml" else "pyyaml"
    for spelling in (project, project.upper(), project.replace("-", ".")):
        recipe = recipes.get(spelling)
        assert recipe is not None
        assert recipe.name == project
        assert recipe.source == f"recipes/{file_name}"
        assert recipe.build_for("apt") == ("x-dev",)


def test_two_files_for_one_project_are_an_error(tmp_path: Path) -> None:
    recipes = user(tmp_path, {"PyYAML.toml": "", "pyyaml.toml": ""})
    with pytest.raises(ConfigError) as info:
        recipes.get("lxml")
    assert "a second recipe for 'pyyaml'" in info.value.message
    assert "recipes/PyYAML.toml" in info.value.message
    assert "recipes/pyyaml.toml" in info.value.message


def test_a_file_name_that_is_no_project_name(tmp_path: Path) -> None:
    recipes = user(tmp_path, {"my recipe.toml": ""})
    with pytest.raises(ConfigError) as info:
        recipes.load_all()
    assert "recipes/my recipe.toml: 'my recipe' is not a project name" in info.value.message


def test_missing_user_folder_means_shipped_only(tmp_path: Path) -> None:
    recipes = Recipes(tmp_path / "recipes")
    assert set(recipes.load_all()) == set(Recipes(None).load_all())


def test_user_folder_that_is_a_file(tmp_path: Path) -> None:
    write(tmp_path / "recipes", "")
    with pytest.raises(ConfigError, match=r"^recipes: not a folder"):
        Recipes(tmp_path / "recipes").get("pyyaml")


def test_label_names_the_user_folder_in_errors(tmp_path: Path) -> None:
    write(tmp_path / "build" / "recipes" / "pyyaml.toml", "[biuld]\n")
    recipes = Recipes(tmp_path / "build" / "recipes", label="build/recipes")
    with pytest.raises(ConfigError, match=r"^build/recipes/pyyaml\.toml: unknown key 'biuld'"):
        recipes.get("pyyaml")


def test_get_parses_only_what_it_is_asked_for_and_caches(tmp_path: Path) -> None:
    recipes = user(tmp_path, {"broken.toml": "[build\n", "pyyaml.toml": FULL})
    first = recipes.get("pyyaml")
    assert first is not None
    (tmp_path / "recipes" / "pyyaml.toml").write_text("[build]\napt = []\n")
    assert recipes.get("pyyaml") is first  # parsed once
    with pytest.raises(ConfigError, match=r"^recipes/broken.toml: not valid TOML"):
        recipes.load_all()  # validates every file


def test_load_all_validates_shipped_files_a_user_overrides(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    write(shipped / "pyyaml.toml", '[build]\napt = ["bad name"]\n')
    recipes = Recipes(tmp_path / "recipes", shipped_dir=shipped)
    write(tmp_path / "recipes" / "pyyaml.toml", FULL)
    assert recipes.get("pyyaml") is not None  # the user's file wins, the shipped one unread
    with pytest.raises(ConfigError, match=r"wheelhouse/_recipes/pyyaml.toml: build.apt\[0\]"):
        recipes.load_all()


# -- validation messages -----------------------------------------------------------------


def test_full_recipe_parses(tmp_path: Path) -> None:
    recipe = user(tmp_path, {"pyyaml.toml": FULL}).get("pyyaml")
    assert recipe == Recipe(
        name="pyyaml",
        source="recipes/pyyaml.toml",
        build_packages={"apt": ("libyaml-dev",), "apk": ("yaml-dev",)},
        runtime_packages={"apt": ("libyaml-0-2",), "apk": ("yaml",)},
        requires=("Cython>=3",),
        env=(("PYYAML_FORCE_LIBYAML", "1"),),
        checks=(Check(contains="yaml/_yaml*.so"),),
    )


def test_empty_recipe_is_valid(tmp_path: Path) -> None:
    recipe = user(tmp_path, {"pyyaml.toml": ""}).get("pyyaml")
    assert recipe is not None
    assert recipe.build_for("apt") == recipe.runtime_for("apk") == ()
    assert recipe.requires == () and recipe.env == () and recipe.checks == ()


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("[biuld]\n", "unknown key 'biuld'", "did you mean 'build'?"),
        ("[build]\natp = []\n", "unknown key 'build.atp'", "did you mean 'apt'?"),
        ("[build]\nrequire = []\n", "unknown key 'build.require'", "did you mean 'requires'?"),
        ("[runtime]\nenv = {}\n", "unknown key 'runtime.env'", "known keys: apt, apk"),
        ("[checks]\n", "unknown key 'checks'", "did you mean 'check'?"),
        ("[[check]]\ncontain = 'x'\n", "unknown key 'check[0].contain'", "did you mean"),
    ],
)
def test_unknown_keys_suggest_the_right_one(
    tmp_path: Path, text: str, message: str, hint: str
) -> None:
    err = fails(tmp_path, text)
    assert err.message == f"recipes/pyyaml.toml: {message}"
    assert err.hint is not None and hint in err.hint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('build = "x"\n', "build = 'x': expected a table"),
        ('[build]\napt = "libyaml-dev"\n', "build.apt = 'libyaml-dev': expected a list of strings"),
        ("[build]\napk = [1]\n", "build.apk[0] = 1 (int): expected a string"),
        ("[build]\nrequires = {}\n", "build.requires = {} (dict): expected a list of strings"),
        ("[build]\nenv = []\n", "build.env = [] (list): expected a table of strings"),
        ("[build]\nenv = { N = 1 }\n", "build.env.N = 1 (int): expected a string"),
        ("[runtime]\napt = [true]\n", "runtime.apt[0] = True (bool): expected a string"),
        ("[check]\ncontains = 'x'\n", "check = {'contains': 'x'} (dict): expected an array"),
        ("check = ['x']\n", "check[0] = 'x': expected a table"),
        ("[[check]]\ncontains = 3\n", "check[0].contains = 3 (int): expected a string"),
    ],
)
def test_wrong_types_name_the_key_and_quote_the_value(
    tmp_path: Path, text: str, message: str
) -> None:
    err = fails(tmp_path, text)
    assert err.message.startswith(f"recipes/pyyaml.toml: {message}")


def test_check_as_a_table_hints_at_the_array_syntax(tmp_path: Path) -> None:
    err = fails(tmp_path, "[check]\ncontains = 'x'\n")
    assert err.hint is not None and "[[check]]" in err.hint


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('[build]\napt = ["libyaml-dev", "lib yaml"]\n', "build.apt[1]", "'lib yaml'"),
        ('[build]\napk = ["yaml-dev; rm -rf /"]\n', "build.apk[0]", "'yaml-dev; rm -rf /'"),
        ('[runtime]\napt = ["$(id)"]\n', "runtime.apt[0]", "'$(id)'"),
        ('[runtime]\napk = [""]\n', "runtime.apk[0]", "''"),
        ('[build]\napt = ["-y"]\n', "build.apt[0]", "'-y'"),  # no options smuggled in
    ],
)
def test_bad_package_names(tmp_path: Path, text: str, key: str, value: str) -> None:
    err = fails(tmp_path, text)
    family = key.split(".")[1][:3]
    assert err.message == (
        f"recipes/pyyaml.toml: {key} = {value}: expected one {family} package name "
        "(letters, digits, then . + : _ -)"
    )
    assert err.hint is not None and family in err.hint


def test_several_packages_in_one_string(tmp_path: Path) -> None:
    err = fails(tmp_path, '[build]\napt = ["libxml2-dev libxslt1-dev"]\n')
    assert err.message.startswith("recipes/pyyaml.toml: build.apt[0] = 'libxml2-dev libxslt1-dev'")
    assert err.hint == 'one package per list item, e.g. apt = ["libxml2-dev", "libxslt1-dev"]'


def test_good_package_names(tmp_path: Path) -> None:
    text = '[build]\napt = ["libstdc++-12-dev", "libpq-dev:amd64", "libxslt1.1", "py3_dev"]\n'
    recipe = user(tmp_path, {"pyyaml.toml": text}).get("pyyaml")
    assert recipe is not None
    assert recipe.build_for("apt") == (
        "libpq-dev:amd64",
        "libstdc++-12-dev",
        "libxslt1.1",
        "py3_dev",
    )


@pytest.mark.parametrize("req", ["Cython >=", "numpy[", "not a requirement!", ""])
def test_bad_requirement(tmp_path: Path, req: str) -> None:
    err = fails(tmp_path, f"[build]\nrequires = ['Cython>=3', {req!r}]\n")
    assert err.message == (
        f"recipes/pyyaml.toml: build.requires[1] = {req!r}: expected a PEP 508 requirement"
    )
    assert err.hint  # packaging's own explanation


def test_good_requirements(tmp_path: Path) -> None:
    text = "[build]\nrequires = ['numpy>=2; python_version >= \"3.12\"', 'Cython>=3']\n"
    recipe = user(tmp_path, {"pyyaml.toml": text}).get("pyyaml")
    assert recipe is not None
    assert recipe.requires == ("Cython>=3", 'numpy>=2; python_version >= "3.12"')


def test_bad_env_name(tmp_path: Path) -> None:
    err = fails(tmp_path, '[build]\nenv = { "BAD NAME" = "1" }\n')
    assert err.message == (
        "recipes/pyyaml.toml: build.env: 'BAD NAME' is not an environment variable name"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[check]]\n", "check[0]: missing 'contains'"),
        ("[[check]]\ncontains = ''\n", "check[0].contains = '': expected a glob"),
        ("[[check]]\ncontains = '/yaml/*.so'\n", "check[0].contains = '/yaml/*.so': expected a "),
    ],
)
def test_bad_checks(tmp_path: Path, text: str, message: str) -> None:
    assert fails(tmp_path, text).message.startswith(f"recipes/pyyaml.toml: {message}")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    err = fails(tmp_path, "[build\n")
    assert err.message.startswith("recipes/pyyaml.toml: not valid TOML")


# -- digest ------------------------------------------------------------------------------


def test_digest_is_stable_across_loads_and_spellings(tmp_path: Path) -> None:
    a = user(tmp_path / "a", {"pyyaml.toml": FULL}).get("pyyaml")
    # same content: other file name, other key order, other list order, comments
    reordered = """\
# a comment
[[check]]
contains = "yaml/_yaml*.so"
[runtime]
apk = ["yaml"]
apt = ["libyaml-0-2"]
[build]
env = { PYYAML_FORCE_LIBYAML = "1" }
requires = ["Cython>=3"]
apk = ["yaml-dev", "yaml-dev"]
apt = ["libyaml-dev"]
"""
    b = user(tmp_path / "b", {"PyYAML.toml": reordered}).get("pyyaml")
    assert a is not None and b is not None
    assert a.digest() == b.digest()
    assert len(a.digest()) == 64 and int(a.digest(), 16) >= 0
    # fresh loads of the shipped recipes agree too
    assert [r.digest() for r in Recipes(None).load_all().values()] == [
        r.digest() for r in Recipes(None).load_all().values()
    ]


def test_digest_changes_when_any_field_changes(tmp_path: Path) -> None:
    base = user(tmp_path, {"pyyaml.toml": FULL}).get("pyyaml")
    assert base is not None
    variants = [
        dataclasses.replace(base, name="pyyaml2"),
        dataclasses.replace(
            base, build_packages={"apt": ("libyaml-dev", "gcc"), "apk": ("yaml-dev",)}
        ),
        dataclasses.replace(base, build_packages={"apt": ("libyaml-dev",), "apk": ()}),
        dataclasses.replace(base, runtime_packages={"apt": ("libyaml-0-2",), "apk": ("yaml2",)}),
        dataclasses.replace(base, runtime_packages={"apt": (), "apk": ("yaml",)}),
        dataclasses.replace(base, requires=("Cython>=3.1",)),
        dataclasses.replace(base, requires=()),
        dataclasses.replace(base, env=(("PYYAML_FORCE_LIBYAML", "0"),)),
        dataclasses.replace(base, env=(("PYYAML_FORCE_LIBYAML", "1"), ("CFLAGS", "-O2"))),
        dataclasses.replace(base, checks=(Check(contains="yaml/_yaml*.so*"),)),
        dataclasses.replace(base, checks=()),
        # build vs runtime are different things even with the same packages
        dataclasses.replace(
            base,
            build_packages=base.runtime_packages,
            runtime_packages=base.build_packages,
        ),
    ]
    digests = {base.digest(), *(v.digest() for v in variants)}
    assert len(digests) == len(variants) + 1
    # where the file lives is not content: moving a folder does not rebuild
    assert dataclasses.replace(base, source="elsewhere/pyyaml.toml").digest() == base.digest()


def test_every_content_field_is_covered_by_the_digest_test() -> None:
    # a new Recipe field must be added to digest() and to the test above
    fields = {f.name for f in dataclasses.fields(Recipe)}
    assert fields == {
        "name",
        "source",
        "build_packages",
        "runtime_packages",
        "requires",
        "env",
        "checks",
    }


# -- checks ------------------------------------------------------------------------------


def test_check_passes_when_any_member_matches() -> None:
    check = Check(contains="yaml/_yaml*.so")
    assert check.passes(["yaml/__init__.py", "yaml/_yaml.cpython-312-x86_64-linux-gnu.so"])
    assert check.passes(["yaml/_yaml.cpython-312-aarch64-linux-musl.so"])
    assert not check.passes(["yaml/__init__.py", "_yaml/__init__.py"])
    assert not check.passes([])
    assert not check.passes(["yaml/_yaml.pyx", "yaml/_yaml.c"])


def test_check_is_case_sensitive_and_star_crosses_folders() -> None:
    assert not Check(contains="yaml/_yaml*.so").passes(["YAML/_YAML.so"])
    assert Check(contains="*.so").passes(["pkg/sub/mod.so"])
    assert Check(contains="lxml/etree*.so").passes(["lxml/etree.cpython-311-x86_64-linux-gnu.so"])
    assert "yaml/_yaml*.so" in Check(contains="yaml/_yaml*.so").describe()


def test_readme_example_is_a_valid_recipe(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Recipes", 1)[1].split("\n## ", 1)[0]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    recipe = user(tmp_path, {"pyyaml.toml": example}).get("pyyaml")
    shipped = Recipes(None).get("pyyaml")
    assert recipe is not None and shipped is not None
    assert recipe.digest() == shipped.digest()  # the README shows the shipped recipe
