"""Configuration: `wheelhouse.toml` or `[tool.wheelhouse]`, validated into frozen dataclasses.

Every error names the file, the dotted key, quotes the bad value and says what to do, in
the style of pypa/packaging: the config is data, validation is strict, unknown keys are
errors (with a "did you mean"), because a typo silently ignored is a wrong build later.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import ConfigError
from wheelhouse.tomltable import TableReader, did_you_mean, read_toml

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
class StoreSettings:
    """The shared remote store: `s3://bucket/prefix` on any S3-compatible service.
    Credentials are not here: they come from the standard AWS chain (environment,
    AWS_PROFILE, ~/.aws, an instance role), so they never land in a config file."""

    url: str  # s3://bucket/prefix, as given (normalised: no trailing slash)
    bucket: str
    prefix: str  # "" or "team/wheels" (no leading or trailing slash)
    endpoint_url: str | None = None  # None: AWS, or AWS_ENDPOINT_URL(_S3) from the env
    region: str | None = None
    timeout: float = 60.0  # seconds per connect / read, before a retry


# an Ed25519 public key as `wheelhouse cache pubkey` prints it: 32 bytes, standard base64
PUBLIC_KEY = re.compile(r"ed25519:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


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
class ServeSettings:
    """`[serve]`: every `wheelhouse serve` option (the command line overrides each)."""

    host: str = "127.0.0.1"
    port: int = 8080
    targets: tuple[str, ...] = ()
    workers: int = 1
    upload: bool = False
    password_file: Path | None = None
    max_upload: int = 512 << 20  # bytes
    upstream: str | None = None
    upstream_ttl: float = 600.0
    access_log: bool = True
    # the upstream's policy
    min_age: float = 0.0  # seconds
    exclude_newer: str | None = None  # ISO 8601 date or time
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    # limits
    max_connections: int = 1000  # per worker
    max_header_size: int = 64 << 10  # request line + headers, bytes
    max_headers: int = 100
    max_url: int = 8 << 10
    head_timeout: float = 10.0
    idle_timeout: float = 15.0
    body_timeout: float = 30.0
    auth_failures: int = 5
    auth_window: float = 60.0


@dataclass(frozen=True, kw_only=True)
class Config:
    root: Path
    source: Path | None  # the file the settings came from; None when all defaults
    inputs: tuple[Path, ...]
    constraints: tuple[Path, ...] = ()
    output: Path
    locks: Path
    cache_dir: Path
    resolver: Resolver = "pip"
    engine: str = "docker"
    ca_bundle: Path | None = None
    tools_index_url: str = PYPI
    default_targets: tuple[str, ...]
    targets: Mapping[str, Target]
    store: StoreSettings | None = None
    trust: TrustSettings = field(default_factory=TrustSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)
    serve: ServeSettings = field(default_factory=ServeSettings)

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


# -- built-in targets -------------------------------------------------------------------

BUILTIN_TARGETS: dict[str, dict[str, Any]] = {
    "slim": {
        "python-version": "3.12",
        "libc": "glibc",
        "libc-version": "2.36",  # Debian 12 (bookworm), pinned by the image tags below
        "builder-image": "python:3.12-bookworm",
        "final-image": "python:3.12-slim-bookworm",
    },
    "alpine": {
        "python-version": "3.12",
        "libc": "musl",
        "libc-version": "1.2",
        "builder-image": "python:3.12-alpine3.20",
        "final-image": "python:3.12-alpine3.20",
    },
    "gpu": {
        "python-version": "3.12",  # Ubuntu 24.04's python3
        "libc": "glibc",
        "libc-version": "2.39",
        "builder-image": "nvidia/cuda:12.6.3-devel-ubuntu24.04",
        "final-image": "nvidia/cuda:12.6.3-runtime-ubuntu24.04",
        "cuda": "12.6",
        "extra-index-urls": ["https://download.pytorch.org/whl/cu126"],
    },
}

# -- schema -----------------------------------------------------------------------------

TOP_KEYS = (
    "inputs",
    "constraints",
    "output",
    "locks",
    "cache-dir",
    "resolver",
    "engine",
    "ca-bundle",
    "tools-index-url",
    "default-targets",
    "index",
    "targets",
    "store",
    "trust",
    "timeouts",
    "serve",
)
TIMEOUT_KEYS = ("engine", "image", "build", "resolve")
STORE_KEYS = ("url", "endpoint-url", "region", "timeout")
TRUST_KEYS = ("signing-key", "trusted-keys")
INDEX_KEYS = ("index-url", "extra-index-urls", "find-links")
TARGET_KEYS = (
    "extends",
    "python-version",
    "implementation",
    "libc",
    "libc-version",
    "arch",
    "builder-image",
    "final-image",
    "cuda",
    *INDEX_KEYS,
    "no-binary",
    "only-binary",
    "build-env",
    "repair",
    "base-packages",
    "replace-base",
)


def _version_text(r: TableReader, name: str, value: str | None, parts: int) -> str | None:
    if value is None:
        return None
    # python-version may name the patch release too ("3.11.2")
    most = parts + 1 if name == "python-version" else parts
    if not re.fullmatch(r"\d+(\.\d+){" + f"{parts - 1},{most - 1}" + "}", value):
        example = "'3.12' or '3.12.4'" if name == "python-version" else "'2.36'"
        raise r.fail(name, value, f"a version like {example}")
    try:
        Version(value)
    except InvalidVersion:  # pragma: no cover - the regex above already ensures it
        raise r.fail(name, value, "a version") from None
    return value


def _package_list(r: TableReader, name: str) -> tuple[str, ...]:
    out = []
    for item in r.str_list(name):
        if item == ":all:":
            out.append(item)
            continue
        try:
            out.append(canonicalize_name(item, validate=True))
        except InvalidName:
            raise r.fail(name, item, "package names or ':all:'") from None
    return tuple(sorted(set(out)))


def _url_list(r: TableReader, name: str) -> tuple[str, ...]:
    urls = r.str_list(name)
    for u in urls:
        _check_location(r, name, u)
    return urls


def _check_location(r: TableReader, name: str, value: str) -> None:
    if not re.match(r"^(https?|file)://", value) and name != "find-links":
        raise r.fail(name, value, "an http(s):// or file:// URL")


def _index(r: TableReader, base: IndexSettings, *, extend: bool) -> IndexSettings:
    given = r.text("index-url")
    if given is not None:  # checked as given: "" must not fall back to PyPI silently
        _check_location(r, "index-url", given)
    index_url = given or base.index_url
    extra = _url_list(r, "extra-index-urls")
    links = r.str_list("find-links")
    if extend:  # per-target lists add to the global ones
        extra = base.extra_index_urls + tuple(u for u in extra if u not in base.extra_index_urls)
        links = base.find_links + tuple(u for u in links if u not in base.find_links)
    return IndexSettings(index_url=index_url, extra_index_urls=extra, find_links=links)


def _target(
    name: str, raw: Mapping[str, Any], source: str, index: IndexSettings, root: Path
) -> Target:
    r = TableReader(raw, f"targets.{name}", source)
    r.check_keys(TARGET_KEYS)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(
            f"{source}: targets.{name}: a target name must be letters, digits, '.', '_', '-'",
            hint="it names files (locks/<target>.txt) and folders",
        )
    for required in ("python-version", "builder-image"):
        if required not in raw:
            raise ConfigError(
                f"{source}: targets.{name}: missing {required!r}",
                hint='set it, or derive from a built-in target with extends = "slim"',
            )
    builder = r.text("builder-image")
    assert builder is not None
    links = []
    for link in _index(r, index, extend=True).find_links:
        # relative find-links folders are relative to the project, as pip would take them
        # from the directory the command runs in
        is_url = re.match(r"^[a-z]+://", link)
        links.append(link if is_url else str((root / link).resolve()))
    target_index = replace(_index(r, index, extend=True), find_links=tuple(links))
    python_version = _version_text(r, "python-version", r.text("python-version"), 2)
    assert python_version is not None
    return Target(
        name=name,
        python_version=".".join(python_version.split(".")[:2]),
        python_full=python_version if python_version.count(".") == 2 else None,
        implementation=r.choice("implementation", ["cp"], "cp"),
        libc=r.choice("libc", ["glibc", "musl"], "glibc"),  # type: ignore[arg-type]
        libc_version=_version_text(r, "libc-version", r.text("libc-version"), 2),
        arch=r.choice("arch", ["x86_64", "aarch64"], "x86_64"),
        builder_image=builder,
        final_image=r.text("final-image") or builder,
        cuda=_version_text(r, "cuda", r.text("cuda"), 2),
        index=target_index,
        no_binary=_package_list(r, "no-binary"),
        only_binary=_package_list(r, "only-binary"),
        build_env=r.str_map("build-env"),
        repair=r.boolean("repair"),
        base_packages=_base_packages(r),
        replace_base=_package_list(r, "replace-base"),
    )


def _base_packages(r: TableReader) -> Literal["inherit", "ignore"] | None:
    """None when unset: inherit if the final image has packages of its own."""
    if r.text("base-packages") is None:
        return None
    return r.choice("base-packages", ["inherit", "ignore"], "inherit")  # type: ignore[return-value]


def _merge_target(name: str, user: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A built-in (or `extends`) target's defaults with the user's fields laid over them."""
    base_name = user.get("extends", name if name in BUILTIN_TARGETS else None)
    if base_name is None:
        return dict(user)
    if base_name not in BUILTIN_TARGETS:
        raise ConfigError(
            f"{source}: targets.{name}.extends = {base_name!r}: not a built-in target",
            hint=did_you_mean(str(base_name), BUILTIN_TARGETS)
            or f"built-in targets: {', '.join(BUILTIN_TARGETS)}",
        )
    merged = copy.deepcopy(BUILTIN_TARGETS[base_name])
    merged.update({k: v for k, v in user.items() if k != "extends"})
    return merged


# -- loading ----------------------------------------------------------------------------


def find_config(root: Path) -> tuple[Path | None, dict[str, Any]]:
    """wheelhouse.toml wins over pyproject.toml's [tool.wheelhouse]."""
    wt = root / CONFIG_FILE
    if wt.is_file():
        return wt, read_toml(wt)
    pp = root / "pyproject.toml"
    if pp.is_file():
        data = read_toml(pp)
        table = data.get("tool", {}).get("wheelhouse")
        if table is not None:
            return pp, table
    return None, {}


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`--set targets.slim.builder-image=img:tag`: a TOML array/table/quoted string/bool,
    else the text as a string (so `python-version=3.12` is "3.12", not a float)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE", hint="e.g. --set resolver=uv")
        value: Any = text
        if text.strip()[:1] in ("[", "{", '"', "'") or text.strip() in ("true", "false"):
            try:
                value = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"--set {item!r}: not a TOML value: {e}") from None
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a table")
        node[parts[-1]] = value
    return raw


def load(
    root: Path | None = None,
    *,
    config_file: Path | None = None,
    overrides: Sequence[str] = (),
    engine: str | None = None,
    store: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    env = os.environ if environ is None else environ
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"{config_file}: no such config file", hint="run `wheelhouse init`")
        root = config_file.resolve().parent
        raw = read_toml(config_file)
        if config_file.name == "pyproject.toml":
            raw = raw.get("tool", {}).get("wheelhouse", {})
        source_path: Path | None = config_file.resolve()
    else:
        root = (root or Path.cwd()).resolve()
        source_path, raw = find_config(root)
    source = source_path.name if source_path else CONFIG_FILE
    if source_path and source_path.name == "pyproject.toml":
        source = "pyproject.toml [tool.wheelhouse]"
    raw = apply_overrides(raw, overrides)
    config = _build(root, source_path, source, raw, engine, env)
    return replace(
        config,
        store=_store(raw, source, store or env.get("WHEELHOUSE_STORE")),
        trust=_trust(raw, source, root, env),
        serve=serve_settings(raw, source, root),
    )


def _build(
    root: Path,
    source_path: Path | None,
    source: str,
    raw: Mapping[str, Any],
    engine: str | None,
    env: Mapping[str, str],
) -> Config:
    r = TableReader(raw, "", source)
    r.check_keys(TOP_KEYS)
    ir = TableReader(r.table_of("index"), "index", source)
    ir.check_keys(INDEX_KEYS)
    index = _index(ir, IndexSettings(), extend=False)

    targets_raw = r.table_of("targets")
    targets: dict[str, Target] = {}
    for name in sorted(set(BUILTIN_TARGETS) | set(targets_raw)):
        user = targets_raw.get(name, {})
        if not isinstance(user, Mapping):
            raise r.fail(f"targets.{name}", user, "a table")
        TableReader(user, f"targets.{name}", source).check_keys(TARGET_KEYS)
        targets[name] = _target(name, _merge_target(name, user, source), source, index, root)

    defaults = r.str_list("default-targets") or tuple(targets_raw) or ("slim",)
    for name in defaults:
        if name not in targets:
            raise ConfigError(
                f"{source}: default-targets: unknown target {name!r}",
                hint=did_you_mean(name, targets) or f"known: {', '.join(sorted(targets))}",
            )

    inputs = r.str_list("inputs")
    if not inputs:
        if (root / "requirements.in").is_file():
            inputs = ("requirements.in",)
        elif (root / "pyproject.toml").is_file():
            inputs = ("pyproject.toml",)
        else:
            inputs = ("requirements.in",)  # reported as missing when locking

    configured_cache = r.text("cache-dir")  # validated even when the env var wins
    cache = env.get("WHEELHOUSE_CACHE_DIR") or configured_cache
    cache_dir = Path(cache).expanduser() if cache else _user_cache_dir()
    configured_ca = r.text("ca-bundle")
    ca_path: Path | None = None
    if configured_ca:  # relative to the project, like every other path in the config
        ca_path = Path(configured_ca).expanduser()
        ca_path = ca_path if ca_path.is_absolute() else root / ca_path
    else:
        from_env = env.get("PIP_CERT") or env.get("REQUESTS_CA_BUNDLE") or env.get("SSL_CERT_FILE")
        ca_path = Path(from_env) if from_env else None
    if ca_path and not ca_path.is_file():
        where = "ca-bundle" if configured_ca else "PIP_CERT/REQUESTS_CA_BUNDLE/SSL_CERT_FILE"
        raise ConfigError(
            f"{source}: {where} = {str(ca_path)!r}: no such file",
            hint="point it at a PEM CA bundle",
        )

    return Config(
        root=root,
        source=source_path,
        inputs=tuple(root / p for p in inputs),
        constraints=tuple(root / p for p in r.str_list("constraints")),
        output=root / (r.text("output") or "wheelhouse"),
        locks=root / (r.text("locks") or "locks"),
        cache_dir=(root / cache_dir) if not cache_dir.is_absolute() else cache_dir,
        resolver=r.choice("resolver", ["pip", "uv"], "pip"),  # type: ignore[arg-type]
        engine=engine or env.get("WHEELHOUSE_ENGINE") or r.text("engine") or "docker",
        ca_bundle=ca_path.resolve() if ca_path else None,
        tools_index_url=r.text("tools-index-url") or PYPI,
        default_targets=defaults,
        targets=targets,
        timeouts=_timeouts(r.table_of("timeouts"), source),
    )


_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*")


def seconds(r: TableReader, name: str, default: float) -> float:
    """A duration: a number of seconds, or a string like "90", "90s", "20m", "2h" (what
    `--set timeouts.build=2h` gives)."""
    value = r.table.get(name, default)
    if isinstance(value, str) and (m := _SECONDS.fullmatch(value)):
        value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise r.fail(name, r.table.get(name), 'a number of seconds > 0 (or e.g. "20m", "2h")')
    return float(value)


def _timeouts(table: Mapping[str, Any], source: str) -> Timeouts:
    r = TableReader(table, "timeouts", source)
    r.check_keys(TIMEOUT_KEYS)
    default = Timeouts()
    return Timeouts(**{k: seconds(r, k, getattr(default, k)) for k in TIMEOUT_KEYS})


# what `wheelhouse init` writes: a file of its own, so it reads as the user will see it
STARTER = (Path(__file__).parent / "_data" / "wheelhouse.toml").read_text(encoding="utf-8")


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def parse_s3_url(url: str, *, where: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix); errors name `where` (a key or option)."""
    if not url.startswith("s3://"):
        raise ConfigError(
            f"{where} = {url!r}: expected an s3://bucket/prefix URL",
            hint="e.g. s3://team-wheels/wheelhouse; the service's address goes in endpoint-url",
        )
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"{where} = {url!r}: {bucket!r} is not a valid bucket name",
            hint="3-63 lowercase letters, digits, '.' and '-'",
        )
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"{where} = {url!r}: the prefix has an empty, '.' or '..' part")
    return bucket, prefix


def _store(raw: Mapping[str, Any], source: str, override: str | None) -> StoreSettings | None:
    """`store = "s3://bucket/prefix"` or a `[store]` table (url, endpoint-url, region,
    timeout); `--store` / WHEELHOUSE_STORE replace the URL and keep the rest."""
    value = raw.get("store")
    table: Mapping[str, Any] = {}
    if isinstance(value, str):
        table = {"url": value}
    elif isinstance(value, Mapping):
        table = value
    elif value is not None:
        raise TableReader(raw, "", source).fail("store", value, "an s3:// URL or a table")
    r = TableReader(table, "store", source)
    r.check_keys(STORE_KEYS)
    url = override or r.text("url")
    if not url:
        if table:
            raise ConfigError(f"{source}: store: missing 'url'", hint='url = "s3://bucket/prefix"')
        return None
    where = "--store/WHEELHOUSE_STORE" if override else f"{source}: store"
    bucket, prefix = parse_s3_url(url, where=where)
    endpoint = r.text("endpoint-url")
    if endpoint is not None and not re.match(r"^https?://[^/\s]+", endpoint):
        raise r.fail("endpoint-url", endpoint, "an http(s):// URL of the S3-compatible service")
    timeout = seconds(r, "timeout", 60.0)
    return StoreSettings(
        url=f"s3://{bucket}/{prefix}".rstrip("/"),
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        region=r.text("region"),
        timeout=timeout,
    )


def _trust(
    raw: Mapping[str, Any], source: str, root: Path, env: Mapping[str, str]
) -> TrustSettings:
    """`[trust]`: `signing-key` (a key file; WHEELHOUSE_SIGNING_KEY, a path or the PEM
    itself, overrides it) and `trusted-keys`, to which WHEELHOUSE_TRUSTED_KEYS adds. The
    key files are read when a record is first signed or checked (store/signing.py)."""
    r = TableReader(TableReader(raw, "", source).table_of("trust"), "trust", source)
    r.check_keys(TRUST_KEYS)
    keys = [
        (f"{source}: trust.trusted-keys[{i}]", k) for i, k in enumerate(r.str_list("trusted-keys"))
    ]
    extra = env.get("WHEELHOUSE_TRUSTED_KEYS", "").replace(",", " ").split()
    keys += [("WHEELHOUSE_TRUSTED_KEYS", k) for k in extra]
    for where, key in keys:
        if not PUBLIC_KEY.fullmatch(key):
            raise ConfigError(
                f"{where} = {key!r}: expected an Ed25519 public key (ed25519:<base64>)",
                hint="copy it from `wheelhouse cache pubkey` on the machine that signs",
            )
    settings = TrustSettings(trusted_keys=tuple(dict.fromkeys(k for _, k in keys)))
    given = env.get("WHEELHOUSE_SIGNING_KEY", "").strip()
    if given.startswith("-----BEGIN"):
        return replace(settings, signing_key_pem=given, signing_key_source="WHEELHOUSE_SIGNING_KEY")
    if given:
        where, path = "WHEELHOUSE_SIGNING_KEY", Path(given).expanduser()
    elif (configured := r.text("signing-key")) is not None:
        where, path = f"{source}: trust.signing-key", Path(configured).expanduser()
        path = path if path.is_absolute() else root / path
    else:
        return settings
    if not path.is_file():
        raise ConfigError(
            f"{where} = {str(path)!r}: no such file",
            hint="point it at an Ed25519 private key in PEM (openssl genpkey -algorithm "
            "ed25519), or unset it to sign with this machine's own key",
        )
    return replace(settings, signing_key_file=path, signing_key_source=where)


def _user_cache_dir() -> Path:
    import platformdirs  # only when no cache folder is set

    return Path(platformdirs.user_cache_dir("wheelhouse"))


SERVE_KEYS = (
    *(k.replace("_", "-") for k in ServeSettings.__dataclass_fields__ if k != "max_upload"),
    "max-upload-size",
)


_SIZE_TEXT = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*")
_AGE_TEXT = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def parse_size(text: str) -> int:
    """Bytes, in powers of 1024 ("512M", "64K"), as the command line takes them."""
    m = _SIZE_TEXT.fullmatch(text)
    if not m:
        raise ValueError(text)
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_"))


def parse_age(text: str) -> float:
    """Seconds ("90", "15s", "10m", "7d", "2w")."""
    m = _AGE_TEXT.fullmatch(text)
    if not m:
        raise ValueError(text)
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return float(m.group(1)) * unit[m.group(2).lower()]


def serve_settings(raw: Mapping[str, Any], source: str, root: Path) -> ServeSettings:
    """`[serve]`: keys are the command's long options (`max-upload-size = "1G"`,
    `min-age = "7d"`, `upstream = "https://..."`); sizes and ages as on the command line."""
    r = TableReader(TableReader(raw, "", source).table_of("serve"), "serve", source)
    r.check_keys(SERVE_KEYS)
    d = ServeSettings()
    t = r.table

    def number(name: str, default: float, *, whole: bool = False, lowest: float = 1) -> Any:
        value = t.get(name, default)
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value < lowest:
            raise r.fail(name, value, f"{'an integer' if whole else 'a number'} >= {lowest:g}")
        return value

    def unit(name: str, default: float, parse: Any, example: str) -> Any:
        value = t.get(name)
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return value
        try:
            return parse(value) if isinstance(value, str) else parse("")
        except ValueError:
            raise r.fail(name, value, f"a number or a string like {example}") from None

    password = r.text("password-file")
    exclude = r.text("exclude-newer")
    if exclude is not None:
        from datetime import datetime

        try:
            datetime.fromisoformat(exclude)
        except ValueError:
            raise r.fail("exclude-newer", exclude, 'an ISO 8601 date, e.g. "2026-01-31"') from None
    return ServeSettings(
        host=r.text("host") or d.host,
        port=number("port", d.port, whole=True, lowest=0),
        targets=r.str_list("targets"),
        workers=number("workers", d.workers, whole=True),
        upload=r.boolean("upload", d.upload),
        password_file=(root / password) if password else None,
        max_upload=unit("max-upload-size", d.max_upload, parse_size, '"512M"'),
        upstream=r.text("upstream"),
        upstream_ttl=unit("upstream-ttl", d.upstream_ttl, parse_age, '"10m"'),
        access_log=r.boolean("access-log", d.access_log),
        min_age=unit("min-age", d.min_age, parse_age, '"7d"'),
        exclude_newer=exclude,
        allow=r.str_list("allow"),
        deny=r.str_list("deny"),
        max_connections=number("max-connections", d.max_connections, whole=True),
        max_header_size=unit("max-header-size", d.max_header_size, parse_size, '"64K"'),
        max_headers=number("max-headers", d.max_headers, whole=True),
        max_url=unit("max-url", d.max_url, parse_size, '"8K"'),
        head_timeout=unit("head-timeout", d.head_timeout, parse_age, '"10s"'),
        idle_timeout=unit("idle-timeout", d.idle_timeout, parse_age, '"15s"'),
        body_timeout=unit("body-timeout", d.body_timeout, parse_age, '"30s"'),
        auth_failures=number("auth-failures", d.auth_failures, whole=True),
        auth_window=unit("auth-window", d.auth_window, parse_age, '"1m"'),
    )
