"""Recipes: what a source build needs beyond pip, one TOML file per project.

`<project>.toml` names the system packages the builder image needs per distro family
(apt for Debian/Ubuntu, apk for Alpine), the packages the final image needs at run time,
extra build requirements, build environment, and checks on the built wheel. The tool ships
recipes for common hard packages (`wheelhouse/_recipes/`); a project's own recipes folder
overrides a shipped recipe entirely (no merging: what you see in your file is what is used).

Validation is as strict as the config's: unknown keys are errors with a "did you mean",
package names are checked because they are handed to apt/apk, requirements are parsed with
`packaging`. A recipe's `digest()` goes into cache keys, so it is computed from a canonical
JSON of the content (not of the file's bytes: comments and key order do not rebuild).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from packaging.utils import InvalidName, canonicalize_name

from wheelhouse.errors import ConfigError
from wheelhouse.tomltable import TableReader, read_toml

SHIPPED_DIR = Path(__file__).parent / "_recipes"
FAMILIES = ("apt", "apk")  # distro families: Debian/Ubuntu, Alpine

RECIPE_KEYS = ("build", "runtime", "check")
BUILD_KEYS = (*FAMILIES, "requires", "env")
RUNTIME_KEYS = FAMILIES
CHECK_KEYS = ("contains",)

# Handed to apt-get/apk as arguments: letters and digits first, then . + : _ - only (Debian
# policy's package-name characters, plus ':' for multiarch "libfoo:amd64" and '_' for apk).
PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+:_-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMAT = "wheelhouse-recipe/1"  # in the digest: bump when the meaning of a field changes


@dataclass(frozen=True, kw_only=True)
class Check:
    """A check on a built wheel: at least one member path matches the `contains` glob
    (`fnmatch`, case-sensitive; `*` also matches `/`)."""

    contains: str

    def passes(self, members: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(m, self.contains) for m in members)

    def describe(self) -> str:
        return f"the wheel contains a file matching {self.contains!r}"


def _no_packages() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({f: () for f in FAMILIES})


@dataclass(frozen=True, kw_only=True)
class Recipe:
    name: str  # canonical project name
    source: str  # the file, as shown in errors ("recipes/pyyaml.toml")
    # family ("apt", "apk") -> packages; read-only, and left out of the hash (not the eq)
    build_packages: Mapping[str, tuple[str, ...]] = field(default_factory=_no_packages, hash=False)
    runtime_packages: Mapping[str, tuple[str, ...]] = field(
        default_factory=_no_packages, hash=False
    )
    requires: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    checks: tuple[Check, ...] = ()

    def build_for(self, family: str) -> tuple[str, ...]:
        """System packages the builder image needs: family "apt" or "apk" (any other
        family, e.g. an image with no package manager, has none)."""
        return self.build_packages.get(family, ())

    def runtime_for(self, family: str) -> tuple[str, ...]:
        """System packages the final image needs at run time, for "apt" or "apk"."""
        return self.runtime_packages.get(family, ())

    def digest(self) -> str:
        """sha256 of the recipe's content as canonical JSON: stable across loads and
        machines, different when any field but `source` (where the file lives) changes."""
        content = {
            "format": _FORMAT,
            "name": self.name,
            "build": {f: list(self.build_for(f)) for f in FAMILIES},
            "runtime": {f: list(self.runtime_for(f)) for f in FAMILIES},
            "requires": list(self.requires),
            "env": [list(kv) for kv in self.env],
            "checks": [{"contains": c.contains} for c in self.checks],
        }
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


# -- parsing ----------------------------------------------------------------------------


def parse(name: str, raw: Mapping[str, Any], source: str) -> Recipe:
    """Validate one recipe's TOML table; errors name `source` and the dotted key."""
    r = TableReader(raw, "", source)
    r.check_keys(RECIPE_KEYS)
    b = TableReader(r.table_of("build"), "build", source)
    b.check_keys(BUILD_KEYS)
    rt = TableReader(r.table_of("runtime"), "runtime", source)
    rt.check_keys(RUNTIME_KEYS)
    return Recipe(
        name=canonicalize_name(name),
        source=source,
        build_packages=MappingProxyType({f: _packages(b, f) for f in FAMILIES}),
        runtime_packages=MappingProxyType({f: _packages(rt, f) for f in FAMILIES}),
        requires=_requirements(b, "requires"),
        env=_env(b, "env"),
        checks=_checks(r, "check"),
    )


def _strings(r: TableReader, name: str) -> list[str]:
    """A list of strings; a bad item is named by its index (`build.apt[1]`)."""
    value = r.table.get(name, [])
    if not isinstance(value, list):
        raise r.fail(name, value, "a list of strings", hint=f'e.g. {name} = ["..."]')
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise r.fail(f"{name}[{i}]", item, "a string")
    return value


def _packages(r: TableReader, name: str) -> tuple[str, ...]:
    items = _strings(r, name)
    for i, item in enumerate(items):
        if not PACKAGE_NAME.fullmatch(item):
            raise r.fail(
                f"{name}[{i}]",
                item,
                f"one {name} package name (letters, digits, then . + : _ -)",
                hint=_package_hint(name, item),
            )
    return tuple(sorted(set(items)))  # apt/apk do not care about order: neither does the digest


def _package_hint(family: str, item: str) -> str:
    example = ("libxml2-dev", "libxslt1-dev") if family == "apt" else ("libxml2-dev", "libxslt-dev")
    if item.strip() and len(item.split()) > 1:
        return f"one package per list item, e.g. {family} = {list(example)!r}".replace("'", '"')
    return f"the name as {family} knows it, e.g. {example[0]!r}; it is passed to {family} as is"


def _requirements(r: TableReader, name: str) -> tuple[str, ...]:
    items = _strings(r, name)
    if items:  # the parser's import costs a warm build time: only when there is one
        from packaging.requirements import InvalidRequirement, Requirement
    for i, item in enumerate(items):
        try:
            Requirement(item)
        except InvalidRequirement as e:
            raise r.fail(
                f"{name}[{i}]", item, "a PEP 508 requirement", hint=str(e).splitlines()[0]
            ) from None
    return tuple(sorted(set(items)))


def _env(r: TableReader, name: str) -> tuple[tuple[str, str], ...]:
    pairs = r.str_map(name)
    for key, _ in pairs:
        if not _ENV_NAME.fullmatch(key):
            raise ConfigError(
                f"{r.source}: {r.key(name)}: {key!r} is not an environment variable name",
                hint="letters, digits and '_', not starting with a digit",
            )
    return pairs


def _checks(r: TableReader, name: str) -> tuple[Check, ...]:
    value = r.table.get(name, [])
    if not isinstance(value, list):
        raise r.fail(
            name, value, "an array of tables", hint=f"write each check as [[{name}]], not [{name}]"
        )
    checks = []
    for i, raw in enumerate(value):
        c = TableReader(raw, f"{name}[{i}]", r.source)
        c.check_keys(CHECK_KEYS)
        if "contains" not in c.table:
            raise ConfigError(
                f"{r.source}: {c.where}: missing 'contains'",
                hint='e.g. contains = "yaml/_yaml*.so" (a glob over the wheel\'s files)',
            )
        contains = c.text("contains")
        if not contains:
            raise c.fail(
                "contains", contains, "a glob over the wheel's files", hint='e.g. "yaml/_yaml*.so"'
            )
        if contains.startswith("/"):
            raise c.fail(
                "contains", contains, "a relative glob", hint="wheel member paths have no leading /"
            )
        checks.append(Check(contains=contains))
    return tuple(checks)


# -- the collection ---------------------------------------------------------------------


class Recipes:
    """The shipped recipes overlaid by a user's folder (which may be missing, or None).

    A user's `<project>.toml` replaces the shipped recipe for that project entirely. File
    names are matched by canonical project name, so `PyYAML.toml` is pyyaml's recipe.
    Files are parsed once and cached; `get` parses only what it is asked for, `load_all`
    validates every file.
    """

    def __init__(
        self, user_dir: Path | None, *, label: str | None = None, shipped_dir: Path = SHIPPED_DIR
    ) -> None:
        """`label` is how errors name the user's folder (default: its name, "recipes")."""
        self.user_dir = user_dir
        self.shipped_dir = shipped_dir
        self._label = label if label is not None else (user_dir.name if user_dir else "")
        self._shipped: dict[str, tuple[Path, str]] | None = None
        self._user: dict[str, tuple[Path, str]] = {}
        self._parsed: dict[Path, Recipe] = {}

    def get(self, project: str) -> Recipe | None:
        """The recipe for a project (any spelling of its name), or None."""
        found = self._effective().get(canonicalize_name(project))
        return None if found is None else self._load(*found)

    def load_all(self) -> dict[str, Recipe]:
        """Every recipe in effect, by canonical name; validates every file (shipped ones
        a user overrides too), so a broken file is found before a build needs it."""
        effective = self._effective()
        assert self._shipped is not None
        for path, source in [*self._shipped.values(), *self._user.values()]:
            self._load(path, source)
        return {name: self._load(*effective[name]) for name in sorted(effective)}

    def _effective(self) -> dict[str, tuple[Path, str]]:
        if self._shipped is None:
            self._shipped = _scan(self.shipped_dir, "wheelhouse/_recipes")
            self._user = _scan(self.user_dir, self._label) if self.user_dir else {}
        return {**self._shipped, **self._user}

    def _load(self, path: Path, source: str) -> Recipe:
        recipe = self._parsed.get(path)
        if recipe is None:
            recipe = parse(path.stem, _read(path, source), source)
            self._parsed[path] = recipe
        return recipe


def _scan(folder: Path, label: str) -> dict[str, tuple[Path, str]]:
    """`<name>.toml` files in a folder by canonical name; a missing folder has none."""
    if not folder.exists():
        return {}
    if not folder.is_dir():
        raise ConfigError(
            f"{label}: not a folder ({folder})",
            hint="user recipes are a folder of <project>.toml files",
        )
    found: dict[str, tuple[Path, str]] = {}
    for path in sorted(folder.glob("*.toml")):
        source = f"{label}/{path.name}" if label else path.name
        try:
            name = canonicalize_name(path.stem, validate=True)
        except InvalidName:
            raise ConfigError(
                f"{source}: {path.stem!r} is not a project name",
                hint="name a recipe after the project it is for, e.g. pyyaml.toml",
            ) from None
        if name in found:
            raise ConfigError(
                f"{source}: a second recipe for {name!r} (also {found[name][1]})",
                hint="keep one file per project",
            )
        found[name] = (path, source)
    return found


def _read(path: Path, source: str) -> dict[str, Any]:
    return read_toml(path, source)
