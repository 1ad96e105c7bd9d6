"""The model of `wheelhouse.toml`: frozen dataclasses, with their defaults. Reading and
checking the file is the other modules' (loader.py, targets.py and one per table)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from wheelhouse.errors import ConfigError
from wheelhouse.tomltable import did_you_mean

if TYPE_CHECKING:  # the optional tables' classes live (and load) with their readers
    from wheelhouse.config.serve import ServeSettings
    from wheelhouse.config.store import StoreSettings

CONFIG_FILE = "wheelhouse.toml"
PYPI = "https://pypi.org/simple"

Libc = Literal["glibc", "musl"]
Resolver = Literal["pip", "uv"]


@dataclass(frozen=True, kw_only=True)
class IndexSettings:
    """Where packages come from. Passed explicitly to every tool: pip.conf is not read,
    so a lock never depends on the machine that made it."""

    index_url: str = PYPI
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    @property
    def all_index_urls(self) -> tuple[str, ...]:
        return (self.index_url, *self.extra_index_urls)

    def pip_args(self) -> list[str]:
        """The same settings as pip / pip-compile / uv flags."""
        args = ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where wheels will be installed: interpreter, libc, arch, accelerator, and images."""

    name: str
    python_version: str  # "3.12": major.minor (tags, build keys)
    # "3.12.4" where the config gives the patch release: the lock is resolved for exactly
    # it (Requires-Python can draw its line within a minor); None: probed when locking
    python_full: str | None = None
    implementation: str = "cp"
    libc: Libc = "glibc"
    libc_version: str | None = None  # "2.36" / "1.2"; None: probed from the final image
    arch: str = "x86_64"
    builder_image: str
    final_image: str
    cuda: str | None = None
    index: IndexSettings = field(default_factory=IndexSettings)
    no_binary: tuple[str, ...] = ()
    only_binary: tuple[str, ...] = ()
    build_env: tuple[tuple[str, str], ...] = ()
    repair: bool = False  # auditwheel repair: portable manylinux/musllinux tags, libs bundled
    # what the final image's interpreter already has: "inherit" locks it as provided by the
    # image (not built, not installed again); None: inherit when the image has anything
    # beyond pip, setuptools and wheel (see lock/base.py)
    base_packages: Literal["inherit", "ignore"] | None = None
    replace_base: tuple[str, ...] = ()  # base packages the lock may install another version of

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    def binary_policy(self, project: str) -> Literal["any", "no-binary", "only-binary"]:
        """pip's semantics: a named package beats :all:; no-binary beats only-binary."""
        from packaging.utils import canonicalize_name  # imported when first asked

        name = canonicalize_name(project)
        if name in self.no_binary:
            return "no-binary"
        if name in self.only_binary:
            return "only-binary"
        if ":all:" in self.no_binary:
            return "no-binary"
        if ":all:" in self.only_binary:
            return "only-binary"
        return "any"

    def describe(self) -> str:
        libc = f"{self.libc} {self.libc_version or '(probed)'}"
        cuda = f", cuda {self.cuda}" if self.cuda else ""
        python = self.python_full or self.python_version
        return f"{self.implementation}{python}, {libc}, {self.arch}{cuda}"


@dataclass(frozen=True, kw_only=True)
class TrustSettings:
    """Who signs this machine's build records and whose records it uses (`[trust]`).
    Without a signing key, one is made on first use under the cache dir."""

    signing_key_file: Path | None = None  # trust.signing-key, or WHEELHOUSE_SIGNING_KEY's path
    signing_key_pem: str | None = None  # WHEELHOUSE_SIGNING_KEY's value, when it is the key
    signing_key_source: str = ""  # where it was given, for messages
    trusted_keys: tuple[str, ...] = ()  # "ed25519:<base64>", besides this machine's own


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long each kind of wait may last, in seconds (`[timeouts]`). Past it the command
    is killed (with what it started) and the run fails naming the limit to raise."""

    engine: float = 120.0  # one engine call: inspect, create, rm, version, an image probe
    image: float = 3600.0  # pulling, building or saving an image (a builder image)
    build: float = 7200.0  # one source build in its container
    resolve: float = 3600.0  # one pip-compile, uv or pip download run


@dataclass(frozen=True, kw_only=True)
class Config:
    """A project's settings: `wheelhouse.toml` (or `[tool.wheelhouse]`) over the defaults,
    the environment and the command line over both (`load`)."""

    # (a docstring of its own also spares dataclass() an inspect.signature() at import)

    root: Path
    source: Path | None  # the file the settings came from; None when all defaults
    inputs: tuple[Path, ...]
    constraints: tuple[Path, ...] = ()
    output: Path
    locks: Path
    # cache-dir or WHEELHOUSE_CACHE_DIR (None: the user's cache folder, see cache_dir)
    cache_folder: Path | None = None
    resolver: Resolver = "pip"
    engine: str = "docker"
    ca_bundle: Path | None = None
    tools_index_url: str = PYPI
    default_targets: tuple[str, ...]
    targets: Mapping[str, Target]
    store: StoreSettings | None = None
    trust: TrustSettings = field(default_factory=TrustSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)
    serve: ServeSettings | None = None  # None: no [serve] table (ServeSettings() applies)

    @cached_property
    def cache_dir(self) -> Path:
        """The cache folder: the one set, else the user's (~/.cache/wheelhouse on Linux).
        Found on first use: platformdirs takes ~5 ms to load, and a command that needs no
        cache (index, targets, dockerfile) does not pay it."""
        if self.cache_folder is not None:
            return self.cache_folder
        import platformdirs

        try:
            path = Path(platformdirs.user_cache_dir("wheelhouse"))
        except RuntimeError:  # (platformdirs >= 4.4: no home to be found)
            path = Path("~")
        if not path.is_absolute():
            # no HOME and no passwd entry for this uid (a container run as an arbitrary
            # user): older platformdirs answer "~/.cache/…", a folder in the current one
            raise ConfigError(
                "no cache folder: HOME is not set (or not absolute) and this user "
                f"(uid {os.getuid()}) has no home in /etc/passwd",
                hint="set WHEELHOUSE_CACHE_DIR (or cache-dir in wheelhouse.toml) to a "
                "folder, or HOME",
            )
        return path

    def used_cache_dir(self) -> Path | None:
        """The cache folder where this command has asked for it (an error's hint names it),
        else None: an error path never looks for it, nor fails on it."""
        used = self.__dict__.get("cache_dir")
        return used if isinstance(used, Path) else None

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise ConfigError(
                f"unknown target {name!r}",
                hint=did_you_mean(name, self.targets)
                or f"known targets: {', '.join(sorted(self.targets))}",
            ) from None

    def selected(self, names: Sequence[str]) -> list[Target]:
        return [self.target(n) for n in (names or self.default_targets)]

    def rel(self, path: Path) -> str:
        """A path as written in outputs: relative to the project root, POSIX style."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()
