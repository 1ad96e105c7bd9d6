"""`wheelhouse dockerfile`: the final stage that installs a target's wheelhouse.

The stage installs `<output>/<target>/` (the wheels, `lock.txt`, see assemble.py) with
nothing from the network and leaves no wheel, no pip and no compiler in the image:

* **No pip in the image, none needed in the base.** A venv is made without pip
  (`python -m venv --without-pip /opt/venv`), and pip runs *from its wheel file* in the
  bind mount (`/opt/venv/bin/python pip-X-py3-none-any.whl/pip install ...`, a way of
  running pip that pip supports: get-pip and ensurepip bootstrap the same way). So it works
  on images with no pip at all (Debian's python3) and on PEP 668 externally-managed system
  Pythons (the venv is not the system's), and the image ends with only the packages of the
  lock in /opt/venv. The pip wheel is pinned here by version and sha256, fetched once
  through the tools index into the store and placed in `<output>/<target>/.tools/`.
* **No wheel in any layer.** The wheelhouse is bind-mounted for the one RUN that installs
  it (`RUN --mount=type=bind,...`; BuildKit, built into Docker >= 18.09 with
  DOCKER_BUILDKIT=1, no `# syntax=` line needed). pip installs with `--no-index
  --require-hashes -r lock.txt`: exactly the locked files, checked by hash.
* **Layers by rate of change.** Runtime system packages, then the dependencies, then the
  app (copied last, or its own wheel installed last), so an app change rebuilds one layer.
  A Dockerfile-specific ignore file (`<Dockerfile>.dockerignore`, read by BuildKit) keeps
  the context to what the stage uses, and leaves out manifest.json: it records how each
  wheel got there (downloaded, reused), which changes between two builds of the same
  wheels and would otherwise invalidate the dependency layer's cache.
* **Fallback** where the engine cannot bind-mount (legacy builder, old engine, a client
  without buildx): the wheels are COPYed into a throwaway stage that installs /opt/venv,
  and the final stage copies only the venv. It costs an extra stage and the wheels sent in
  the build context and kept in the builder's cache, and is said so.

Every value from the config, the manifest or the probe that reaches the Dockerfile is
checked (package names, image references, paths) and quoted where a shell reads it; the
output is the same bytes for the same inputs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from wheelhouse import _subprocess
from wheelhouse.build.assemble import LOCK_NAME, MANIFEST_NAME
from wheelhouse.config import Config, IndexSettings, Target
from wheelhouse.errors import (
    BuildError,
    ConfigError,
    EngineError,
    HashMismatchError,
    InputError,
    ToolError,
)
from wheelhouse.fsutil import link_into
from wheelhouse.recipes import PACKAGE_NAME, Recipes

if TYPE_CHECKING:
    from wheelhouse.engine import Engine
    from wheelhouse.store import Blob, Store

# pip, run from its wheel inside the build: pinned by version and hash (requires-python
# as the index publishes it), so the Dockerfile and what runs in it never drift.
PIP_VERSION = "26.0.1"
PIP_SHA256 = "bdb1b08f4274833d62c1aa29e20907365a2ceb950410df15fc9521bad440122b"
PIP_REQUIRES_PYTHON = ">=3.9"
PIP_FILENAME = f"pip-{PIP_VERSION}-py3-none-any.whl"

TOOLS_DIR = ".tools"  # <output>/<target>/.tools/: the pip wheel
APP_DIR = ".app"  # <output>/.app/<target>/: the app's own wheel, outside the deps mount
IGNORE_SUFFIX = ".dockerignore"

MOUNT = "/tmp/wheelhouse"
TOOLS_MOUNT = "/tmp/wheelhouse-tools"
APP_MOUNT = "/tmp/wheelhouse-app"
VENV = "/opt/venv"
WORKDIR = "/app"
STAGE = "wheelhouse-final"
INSTALL_STAGE = "wheelhouse-install"

Mode = Literal["mount", "copy"]
FAMILIES = ("apt", "apk", "dnf", "microdnf")
# A final image without Python gets its distro's (venv: Debian/Ubuntu split it out)
PYTHON_PACKAGES = {"apt": ("python3", "python3-venv"), "apk": ("python3",)}

# What may go into a Dockerfile unquoted: image references and context-relative paths.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_PATH_PART = re.compile(r"[A-Za-z0-9_@+][A-Za-z0-9._@+-]*|\.[A-Za-z0-9_@+][A-Za-z0-9._@+-]*")
_PYTHON = re.compile(r"(/[A-Za-z0-9._+-]+)+|python3?(\.\d+)?")


# -- what the stage is made of ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Stage:
    """Everything the rendered stage depends on, checked on creation."""

    target: str
    final_image: str
    python: str  # the final image's interpreter (path, or "python3" when not probed)
    family: str | None  # its package manager: apt, apk, dnf, microdnf (others: none known)
    packages: tuple[str, ...] = ()  # runtime system packages
    wheelhouse: str  # context-relative folder: the wheels, lock.txt, .tools/
    pip_wheel: str = PIP_FILENAME  # in wheelhouse/.tools/
    mode: Mode = "mount"
    app_files: tuple[str, ...] = ()  # context-relative files/folders, COPYed last
    app_wheel: str | None = None  # context-relative path of the app's own wheel
    cmd: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # said in the file's header (and by the CLI, on stderr)

    def __post_init__(self) -> None:
        if not _IMAGE.fullmatch(self.final_image):
            raise ConfigError(
                f"targets.{self.target}.final-image = {self.final_image!r}: not an image "
                "reference it is safe to write into a Dockerfile",
                hint="use a name like python:3.12-slim-bookworm or registry/name@sha256:...",
            )
        if not _PYTHON.fullmatch(self.python):
            raise EngineError(
                f"the final image's interpreter path {self.python!r} has unexpected characters",
                hint="use an image whose python lives at a plain path (e.g. /usr/bin/python3)",
            )
        for name in self.packages:
            if not PACKAGE_NAME.fullmatch(name):
                raise ConfigError(
                    f"runtime package {name!r}: not a package name (letters, digits, then "
                    ". + : _ -)",
                    hint="it comes from manifest.json or a recipe's [runtime]; fix it there "
                    "and rerun `wheelhouse build`",
                )
        if self.packages and self.family not in FAMILIES:
            raise ConfigError(
                f"target {self.target!r} needs the system packages "
                f"{', '.join(self.packages)} at run time, but its final image "
                f"{self.final_image} has no package manager wheelhouse knows",
                hint=f"install them in your own base image, or set targets.{self.target}"
                ".repair = true so built wheels bundle their libraries",
            )
        for path in (
            self.wheelhouse,
            *self.app_files,
            *([self.app_wheel] if self.app_wheel else []),
        ):
            check_context_path(path)
        if not re.fullmatch(r"pip-[0-9][A-Za-z0-9.]*-py3-none-any\.whl", self.pip_wheel):
            raise ConfigError(f"unexpected pip wheel name {self.pip_wheel!r}")
        for arg in self.cmd:
            if "\n" in arg or "\r" in arg:
                raise ConfigError(f"--cmd: argument {arg!r} holds a line break")


def check_context_path(path: str) -> str:
    """A path relative to the build context, in plain characters: it goes into
    `--mount=...,source=PATH` (comma-separated, unquoted) and .dockerignore patterns."""
    parts = path.split("/")
    if not path or path.startswith("/") or not all(_PATH_PART.fullmatch(p) for p in parts):
        raise ConfigError(
            f"path {path!r}: wheelhouse writes only plain context-relative paths into a "
            "Dockerfile (letters, digits, . _ - + @; no '..', spaces, commas or globs)",
            hint="rename it, or move it inside the project folder (the build context)",
        )
    return path


# -- rendering --------------------------------------------------------------------------


def _pip(stage: Stage, tools: str) -> str:
    """pip run from its wheel by the venv's python: installs into /opt/venv."""
    return (
        f"{VENV}/bin/python {tools}/{stage.pip_wheel}/pip \\\n"
        "      --isolated install --no-index --no-cache-dir --disable-pip-version-check \\\n"
        "      --root-user-action=ignore"
    )


def _system_packages(stage: Stage) -> list[str]:
    if not stage.packages:
        return []
    names = " ".join(stage.packages)
    commands = {
        "apt": (
            "apt-get update \\\n"
            " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
            f"{names} \\\n"
            " && rm -rf /var/lib/apt/lists/*"
        ),
        "apk": f"apk add --no-cache {names}",
        "dnf": f"dnf install -y --setopt=install_weak_deps=False {names} \\\n && dnf clean all",
        "microdnf": f"microdnf install -y {names} \\\n && microdnf clean all",
    }
    assert stage.family in commands
    return [
        "# runtime system packages of the wheels built from source (apt/apk in one layer "
        "with its cleanup)",
        f"RUN {commands[stage.family]}",
    ]


def _install_deps(stage: Stage, mounted: bool) -> list[str]:
    py = shlex.quote(stage.python)
    mount = (
        f"--mount=type=bind,source={stage.wheelhouse},target={MOUNT} \\\n    " if mounted else ""
    )
    return [
        f"RUN {mount}{py} -m venv --without-pip {VENV} \\\n"
        f" && {_pip(stage, f'{MOUNT}/{TOOLS_DIR}')} \\\n"
        f"      --require-hashes --find-links {MOUNT} -r {MOUNT}/{LOCK_NAME}"
    ]


def _install_app_wheel(stage: Stage, mounted: bool) -> list[str]:
    assert stage.app_wheel is not None
    folder, name = stage.app_wheel.rsplit("/", 1)
    if mounted:
        mounts = (
            f"--mount=type=bind,source={stage.wheelhouse}/{TOOLS_DIR},target={TOOLS_MOUNT} \\\n"
            f"    --mount=type=bind,source={folder},target={APP_MOUNT} \\\n    "
        )
        tools = TOOLS_MOUNT
    else:
        mounts, tools = "", f"{MOUNT}/{TOOLS_DIR}"
    return [
        "# the app's own wheel, last, without dependencies (they are the lock's)",
        f"RUN {mounts}{_pip(stage, tools)} \\\n      --no-deps {APP_MOUNT}/{name}",
    ]


def _app(stage: Stage) -> list[str]:
    lines: list[str] = []
    if stage.app_files or stage.cmd:
        lines.append(f"WORKDIR {WORKDIR}")
    if stage.app_files:
        lines.append("# the app's code, last: a change to it rebuilds only what follows")
        for path in stage.app_files:
            lines.append(f"COPY {json.dumps([path, f'{WORKDIR}/{path}'])}")
    if stage.cmd:
        lines.append(f"CMD {json.dumps(list(stage.cmd))}")
    return lines


def build_command(stage: Stage, dockerfile: str) -> str:
    network = "" if stage.packages else " --network=none"
    if stage.mode == "mount":
        return f"DOCKER_BUILDKIT=1 docker build -f {shlex.quote(dockerfile)}{network} -t IMAGE ."
    return f"docker build -f {shlex.quote(dockerfile)}{network} -t IMAGE ."


def render(stage: Stage, *, whole: bool = True, dockerfile: str = "Dockerfile") -> str:
    """The Dockerfile text: a complete file (`whole`), or the final stage alone, to append
    to a Dockerfile of your own as its last stage."""
    mounted = stage.mode == "mount"
    out: list[str] = []
    if whole:
        out += [
            f"# Generated by `wheelhouse dockerfile` for target {stage.target}; rerun it after "
            "`wheelhouse build`.",
            f"# Installs {stage.wheelhouse}/ (lock.txt, hash-checked, offline) into {VENV} with "
            f"pip {_pip_version(stage)} run",
            "# from its wheel: no pip, no wheel file and no compiler end up in the image.",
            "# Build from the project root (the build context):",
            f"#   {build_command(stage, dockerfile)}",
            f"# {dockerfile}{IGNORE_SUFFIX} (next to this file) keeps the context to what "
            "the build uses.",
        ]
        out += [f"# note: {n}" for n in stage.notes]
        out.append("")
    else:
        out.append(f"# wheelhouse: the final stage for target {stage.target}")
    if not mounted:
        out += [
            "# Fallback without bind mounts: the wheels are COPYed into this throwaway stage and",
            "# installed here; the final stage copies only the venv. Cost: an extra stage, and the",
            "# wheels are sent in the build context and kept in the builder's cache.",
            f"FROM {stage.final_image} AS {INSTALL_STAGE}",
            f"COPY {json.dumps([stage.wheelhouse, MOUNT])}",
            *_install_deps(stage, mounted=False),
        ]
        if stage.app_wheel:
            folder = stage.app_wheel.rsplit("/", 1)[0]
            out += [f"COPY {json.dumps([folder, APP_MOUNT])}", *_install_app_wheel(stage, False)]
        out.append("")
    out.append(f"FROM {stage.final_image} AS {STAGE}")
    out += _system_packages(stage)
    if mounted:
        out.append(
            "# dependencies: the wheelhouse is bind-mounted for this RUN only, so no wheel "
            "is in a layer"
        )
        out += _install_deps(stage, mounted=True)
    else:
        out.append(f"COPY --from={INSTALL_STAGE} {VENV} {VENV}")
    out.append(f"ENV VIRTUAL_ENV={VENV} PATH={VENV}/bin:$PATH")
    if stage.app_wheel and mounted:
        out += _install_app_wheel(stage, mounted=True)
    out += _app(stage)
    return "\n".join(out) + "\n"


def _pip_version(stage: Stage) -> str:
    return stage.pip_wheel.split("-")[1]


def dockerignore(stage: Stage) -> str:
    """An allow-list: the context holds only what the stage reads: the wheels, lock.txt,
    the pip wheel and the app. Not manifest.json (how each wheel got there changes between
    two builds of the same wheels) nor an index's pages beside the wheels, which would
    otherwise invalidate the dependency layer's cache. BuildKit reads it as
    `<Dockerfile>.dockerignore`; the legacy builder only as `.dockerignore`."""
    lines = [
        "# Generated by `wheelhouse dockerfile`: the build context holds only what the "
        "Dockerfile uses.",
        "*",
        f"!{stage.wheelhouse}/*.whl",
        f"!{stage.wheelhouse}/{LOCK_NAME}",
        f"!{stage.wheelhouse}/{TOOLS_DIR}",
    ]
    if stage.app_wheel:
        lines.append(f"!{stage.app_wheel}")
    lines += [f"!{p}" for p in stage.app_files]
    return "\n".join(lines) + "\n"


# -- making a stage from the config, the manifest and the engine ------------------------


@dataclass(frozen=True, kw_only=True)
class Result:
    stage: Stage
    text: str
    ignore: str
    notes: tuple[str, ...]


def dockerfile(
    config: Config,
    target: Target,
    *,
    engine: Callable[[], Engine] | None,
    app: Sequence[Path] = (),
    cmd: Sequence[str] = (),
    mode: Literal["auto", "mount", "copy"] = "auto",
    whole: bool = False,
    dockerfile_name: str = "Dockerfile",
) -> Result:
    """Check the wheelhouse of `target`, probe its final image, place the pip wheel (and
    build the app's wheel if the app is a project), and render the stage."""
    folder = config.output / target.name
    manifest = read_manifest(config, folder)
    wheelhouse = config.rel(folder)
    if Path(wheelhouse).is_absolute():
        raise ConfigError(
            f"output = {str(config.output)!r} is outside the project folder {config.root}",
            hint="the wheelhouse must be inside the Docker build context: set output to a "
            "folder in the project",
        )
    notes: list[str] = []
    python, family, version, bare = _probe(config, target, engine, notes)
    if not SpecifierSet(PIP_REQUIRES_PYTHON).contains(version):
        raise ToolError(
            f"target {target.name!r} is Python {version}; the pip wheel wheelhouse runs "
            f"({PIP_FILENAME}) needs {PIP_REQUIRES_PYTHON}",
            hint="use a final image with a newer Python",
        )
    packages = runtime_packages(config, target, manifest, family, folder / MANIFEST_NAME)
    if bare:  # nvidia/cuda:*-runtime has no Python: the distro's, in the packages layer
        packages = tuple(sorted({*packages, *PYTHON_PACKAGES.get(family or "", ())}))
    chosen: Mode
    if mode == "auto":
        chosen, why = detect_mode(engine() if engine else None)
        if why:
            notes.append(why)
    else:
        chosen = mode
    if chosen == "copy":
        size = sum(p.stat().st_size for p in folder.glob("*.whl"))
        notes.append(
            "fallback without bind mounts: one extra stage, and the wheels "
            f"({size / 1e6:.1f} MB) are sent in the build context and kept in the builder's "
            "cache (but not in the final image)"
        )
    ensure_pip(config, folder)
    app_files, app_wheel = _app_parts(config, target, app)
    stage = Stage(
        target=target.name,
        final_image=target.final_image,
        python=python,
        family=family,
        packages=packages,
        wheelhouse=wheelhouse,
        mode=chosen,
        app_files=app_files,
        app_wheel=app_wheel,
        cmd=tuple(cmd),
        notes=tuple(notes),
    )
    text = render(stage, whole=whole, dockerfile=dockerfile_name)
    return Result(stage=stage, text=text, ignore=dockerignore(stage), notes=tuple(notes))


def read_manifest(config: Config, folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not (folder / LOCK_NAME).is_file() or not path.is_file():
        raise InputError(
            f"no wheelhouse in {config.rel(folder)}/ (no {LOCK_NAME} / {MANIFEST_NAME})",
            hint=f"run `wheelhouse build -t {folder.name}` first",
        )
    try:
        data = json.loads(path.read_text())
        complete, missing = bool(data["complete"]), list(data.get("missing", []))
        if not isinstance(data["runtime_packages"], list) or not isinstance(data["wheels"], list):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"{config.rel(path)}: not a wheelhouse manifest",
            hint=f"rerun `wheelhouse build -t {folder.name}`",
        ) from None
    if not complete:
        raise InputError(
            f"{config.rel(folder)} is incomplete: missing {', '.join(map(str, missing))}",
            hint=f"fix the failed builds and rerun `wheelhouse build -t {folder.name}`",
        )
    return dict(data)


def runtime_packages(
    config: Config, target: Target, manifest: dict[str, Any], family: str | None, source: Path
) -> tuple[str, ...]:
    """The manifest's runtime packages, plus the recipes' for the final image's family for
    every wheel built from source (a downloaded wheel carries its libraries; so does a
    repaired one)."""
    packages: set[str] = set()
    for name in manifest["runtime_packages"]:
        if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
            raise ConfigError(
                f"{config.rel(source)}: runtime_packages holds {name!r}: not a package name",
                hint="the manifest was edited or is corrupt: rerun `wheelhouse build`",
            )
        packages.add(name)
    if family in ("apt", "apk") and not target.repair:
        recipes = Recipes(config.root / "recipes", label="recipes")
        for entry in manifest["wheels"]:
            if isinstance(entry, dict) and entry.get("provenance") and entry.get("name"):
                recipe = recipes.get(str(entry["name"]))
                if recipe:
                    packages.update(recipe.runtime_for(family))
    return tuple(sorted(packages))


def _probe(
    config: Config, target: Target, engine: Callable[[], Engine] | None, notes: list[str]
) -> tuple[str, str | None, str, bool]:
    """(python, package manager, python version, whether the image lacks a Python) of the
    final image; a guess from the target's libc when the engine cannot be asked (said in
    a note). An image with no Python (NVIDIA's CUDA runtime images) gets the distro's."""
    from wheelhouse.engine import NoPythonError

    key = f"targets.{target.name}.final-image"
    reason = "no container engine"
    if engine is not None:
        try:
            info = engine().probe(target.final_image, key=key)
        except NoPythonError:
            family = "apt" if target.libc == "glibc" else "apk"
            notes.append(
                f"the final image {target.final_image} has no Python: the stage installs the "
                f"distro's python3 with {family}, which must be Python {target.python_version}"
            )
            return "python3", family, f"{target.python_version}.0", True
        except EngineError as e:
            reason = e.message.splitlines()[0]
        else:
            if info.python_minor != target.python_version:
                raise ConfigError(
                    f"target {target.name!r} is Python {target.python_version} but its final "
                    f"image {target.final_image} has Python {info.python_version}",
                    hint=f"fix targets.{target.name}.python-version or {key}",
                )
            return info.python, info.package_manager, info.python_version, False
    family = "apt" if target.libc == "glibc" else "apk"
    notes.append(
        f"the final image was not probed ({reason}): assumed {family} (libc {target.libc}) "
        "and `python3` on its PATH"
    )
    return "python3", family, f"{target.python_version}.0", False


def detect_mode(engine: Engine | None) -> tuple[Mode, str | None]:
    """Bind mounts need BuildKit: Docker >= 18.09 with DOCKER_BUILDKIT=1 (built into the
    client up to 22.x, the buildx plugin from 23), or podman/buildah >= 4."""
    if os.environ.get("DOCKER_BUILDKIT") == "0":
        return "copy", "DOCKER_BUILDKIT=0 is set: the legacy builder has no RUN --mount"
    if engine is None:
        return "mount", "no container engine to ask: assumed BuildKit (Docker >= 18.09)"
    try:
        client, server = engine.versions()
    except EngineError as e:
        first = e.message.splitlines()[0]
        return "mount", f"could not ask the engine ({first}): assumed BuildKit"
    cli, srv = _version(client), _version(server)
    if "podman" in Path(engine.binary).name:
        if cli and cli < (4, 0):
            return "copy", f"podman {client} is older than 4.0: no RUN --mount"
        return "mount", None
    if srv and srv < (18, 9):
        return "copy", f"the engine ({server}) predates BuildKit (Docker 18.09): no RUN --mount"
    if cli and cli < (18, 9):
        return "copy", f"the docker client ({client}) predates BuildKit: no RUN --mount"
    if cli and cli >= (23, 0) and not engine.has_buildx():
        return "copy", (
            f"the docker client {client} ({engine.binary}) has no buildx plugin, so its "
            "`docker build` is the legacy builder: no RUN --mount. Install docker-buildx "
            "to get bind mounts"
        )
    return "mount", None


def _version(text: str) -> tuple[int, int] | None:
    m = re.match(r"v?(\d+)\.(\d+)", text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


# -- the pip wheel ----------------------------------------------------------------------


def ensure_pip(config: Config, folder: Path) -> Path:
    """The pinned pip wheel in `<folder>/.tools/`: from the store when it is there, else
    fetched from the tools index and checked against the pinned sha256."""
    from wheelhouse.store import Store

    store = Store(config.cache_dir)
    blob = store.get(PIP_SHA256) or _download_pip(config, store)
    tools = folder / TOOLS_DIR
    tools.mkdir(parents=True, exist_ok=True)
    link_into(blob.path, tools, blob.filename)
    for old in tools.iterdir():
        if old.name != PIP_FILENAME and old.is_file():
            old.unlink()
    return tools / PIP_FILENAME


def _download_pip(config: Config, store: Store) -> Blob:
    from wheelhouse.simple import IndexClient, redact

    index = IndexSettings(index_url=config.tools_index_url)
    with IndexClient(ca_bundle=config.ca_bundle, cache_dir=config.cache_dir) as client:
        dists = client.release_files(index, "pip", PIP_VERSION)
        dist = next((d for d in dists if d.link.filename == PIP_FILENAME), None)
        if dist is None:
            raise ToolError(
                f"{PIP_FILENAME} is not on the tools index {redact(config.tools_index_url)}",
                hint="set tools-index-url in wheelhouse.toml to an index that has pip "
                f"{PIP_VERSION} (PyPI does)",
            )
        if dist.link.sha256 not in (None, PIP_SHA256):
            raise HashMismatchError(
                f"{PIP_FILENAME}: the tools index says sha256 {dist.link.sha256}, wheelhouse "
                f"pins {PIP_SHA256}",
                hint="the index serves another file under pip's name: do not use it",
            )
        have = store.get(PIP_SHA256)
        if have is not None:
            return have
        tmpdir = store.tempdir("dl-")
        try:
            dest = tmpdir / PIP_FILENAME
            client.download(dist.link, dest, expected=PIP_SHA256, what=f"pip {PIP_VERSION}")
            return store.put(dest, PIP_FILENAME, sha256=PIP_SHA256)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


# -- the app ----------------------------------------------------------------------------


def _app_parts(
    config: Config, target: Target, paths: Sequence[Path]
) -> tuple[tuple[str, ...], str | None]:
    """(files and folders to COPY, the app's wheel): a folder with pyproject.toml or
    setup.py is a project, installed from its own wheel; anything else is code, copied."""
    files: list[str] = []
    wheel: str | None = None
    root = config.root.resolve()
    for given in paths:
        path = (config.root / given).resolve()
        if not path.exists():
            raise InputError(f"--app {given}: no such file or folder", hint="check the path")
        if path == root or not path.is_relative_to(root):
            raise InputError(
                f"--app {given}: the app must be a file or folder inside the project "
                f"({root}), not the project itself",
                hint="name the app's files or folders, e.g. --app app.py --app src",
            )
        for inner, what in ((config.output, "output"), (config.cache_dir, "cache-dir")):
            if inner.resolve().is_relative_to(path):
                raise InputError(
                    f"--app {given}: it contains the {what} folder {config.rel(inner)}, which "
                    "would be copied into the image",
                    hint="name the app's files or folders instead, e.g. --app app.py --app src",
                )
        rel = check_context_path(path.relative_to(root).as_posix())
        if path.is_dir() and ((path / "pyproject.toml").is_file() or (path / "setup.py").is_file()):
            if wheel is not None:
                raise InputError(f"--app {given}: only one project can be installed as a wheel")
            wheel = build_app_wheel(config, target, path)
        else:
            files.append(rel)
    return tuple(sorted(set(files))), wheel


def build_app_wheel(config: Config, target: Target, project: Path) -> str:
    """The project's wheel, built on the host (`pip wheel --no-deps`, its build backend
    from the tools index) into `<output>/.app/<target>/`. Only a pure-Python wheel fits
    every target; a project with compiled code belongs in the requirements."""

    dest = config.output / APP_DIR / target.name
    tmp = dest.parent / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        args = [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
            "--index-url", config.tools_index_url, "--wheel-dir", str(tmp), str(project),
        ]  # fmt: skip
        res = _subprocess.run(args, env=_subprocess.tool_env(config))
        built = sorted(tmp.glob("*.whl"))
        if not res.ok or len(built) != 1:
            raise BuildError(
                f"cannot build a wheel of the app {config.rel(project)}:\n{res.tail(10)}",
                hint="check its pyproject.toml; its build backend comes from tools-index-url",
            )
        try:
            tags = parse_wheel_filename(built[0].name)[3]
        except InvalidWheelFilename as e:
            raise BuildError(f"the app's wheel has a bad name: {e}") from None
        if not all(t.platform == "any" for t in tags):
            raise BuildError(
                f"the app {config.rel(project)} built a platform wheel ({built[0].name}): it "
                "has compiled code, which must be built for the target, not the host",
                hint="list it in your requirements (a path or URL) so `wheelhouse build` "
                "builds it in the target's builder image",
            )
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("*.whl"):
            old.unlink()
        shutil.move(built[0], dest / built[0].name)
        return check_context_path(config.rel(dest / built[0].name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
