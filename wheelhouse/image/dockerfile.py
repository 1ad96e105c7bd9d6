"""`wheelhouse dockerfile`: the final stage for a target's wheelhouse, from the config,
the wheelhouse's manifest and the engine.

Reads the manifest (manifest.py), gathers the runtime system packages (the manifest's
and the recipes' for wheels built from source), probes the final image for its Python
and package manager, asks the engine whether it can bind-mount (else the copy fallback),
puts the pip wheel and the app's wheel in place (tools.py), and renders the stage
(stage.py, where the stage's design is described).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from packaging.specifiers import SpecifierSet

from wheelhouse.config import Config, Target
from wheelhouse.errors import ConfigError, EngineError, InputError, ToolError
from wheelhouse.image.manifest import Manifest, read_manifest
from wheelhouse.image.stage import (
    PIP_FILENAME,
    PIP_REQUIRES_PYTHON,
    PYTHON_PACKAGES,
    UV_VERSION,
    Installer,
    Mode,
    Stage,
    check_context_path,
    dockerignore,
    render,
)
from wheelhouse.image.system import SonameLookup, naming_policy

# Called through this module's globals (not as tools.ensure_pip), so that tests without
# a network replace them here with monkeypatch.setattr(dockerfile, "ensure_pip", ...).
from wheelhouse.image.tools import build_app_wheel, ensure_pip, ensure_uv
from wheelhouse.recipes import PACKAGE_NAME, Recipes

if TYPE_CHECKING:
    from wheelhouse.engine import Engine

InstallMode = Literal["auto", "mount", "copy"]


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
    mode: InstallMode = "auto",
    whole: bool = False,
    dockerfile_name: str = "Dockerfile",
    installer: Installer = "auto",
    compile_bytecode: bool = False,
    layers: int | Literal["one"] | None = "one",
    lookup: SonameLookup = naming_policy,
) -> Result:
    """Check the wheelhouse of `target`, probe its final image, place the pip wheel (and
    build the app's wheel if the app is a project), and render the stage."""
    folder = config.output / target.name
    manifest = read_manifest(config, folder)
    wheelhouse = _context_folder(config, folder)
    notes: list[str] = []
    python, family, version, bare = _probe(config, target, engine, notes)
    _check_pip_runs_on(target, version)
    packages = runtime_packages(config, target, manifest, family)
    if bare:  # nvidia/cuda:*-runtime has no Python: the distro's, in the packages layer
        packages = tuple(sorted({*packages, *PYTHON_PACKAGES.get(family or "", ())}))
    chosen = _install_mode(mode, engine, folder, notes)
    ensure_pip(config, folder)
    packages, system_dir = _system(
        config, target, folder, engine, family=family, packages=packages, manifest=manifest,
        lookup=lookup, bare=bare, notes=notes,
    )  # fmt: skip
    chosen_installer = _installer(config, target, folder, installer, notes)
    layer_folders = _layers(folder, manifest, layers, chosen, notes)
    app_files, app_wheel = _app_parts(config, target, app)
    inherit = bool(manifest.base or manifest.replaces)
    base_paths = _base_paths(target, engine, notes) if inherit else ()
    if inherit:
        notes += [f"replaces the image's copy: {r} (replace-base)" for r in manifest.replaces]
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
        system_site_packages=inherit,
        base_paths=base_paths,
        system_dir=system_dir and _context_folder(config, folder / system_dir),
        installer=chosen_installer,
        compile_bytecode=compile_bytecode,
        layers=tuple(_context_folder(config, folder / f) for f in layer_folders),
        check=True,
    )
    text = render(stage, whole=whole, dockerfile=dockerfile_name)
    return Result(stage=stage, text=text, ignore=dockerignore(stage), notes=tuple(notes))


def _system(
    config: Config,
    target: Target,
    folder: Path,
    engine: Callable[[], Engine] | None,
    *,
    family: str | None,
    packages: tuple[str, ...],
    manifest: Manifest,
    lookup: SonameLookup,
    bare: bool,
    notes: list[str],
) -> tuple[tuple[str, ...], str | None]:
    """(runtime packages, their fetched files' folder in the wheelhouse or None): fetched
    ahead where an engine can run the final image (apt, apk); the final check's files."""
    from wheelhouse.image.finish import fetch_runtime, write_check

    if engine is not None and family in ("apt", "apk"):
        try:
            return fetch_runtime(
                config, target, folder, engine(), family=family, packages=packages,
                manifest=manifest, lookup=lookup, python=not bare, notes=notes,
            )  # fmt: skip
        except EngineError as e:  # no image to run (the probe said so too): as before
            notes.append(f"runtime packages not fetched ahead: {e.message.splitlines()[0]}")
    write_check(folder, {})
    if packages:
        notes.append(
            "the runtime packages are installed from the network (`docker build` needs it): "
            "they are fetched ahead only with an engine, for apt and apk images"
        )
    return packages, None


def _installer(
    config: Config, target: Target, folder: Path, asked: Installer, notes: list[str]
) -> Installer:
    """uv where wheelhouse pins one for the target's arch; pip otherwise (said)."""
    if asked == "pip":
        notes.append(f"installer: pip {PIP_FILENAME.split('-')[1]} (--installer pip)")
        return "pip"
    if ensure_uv(config, folder, target.arch) is None:
        if asked == "uv":
            raise ToolError(
                f"--installer uv: wheelhouse pins no uv for {target.arch}",
                hint="use --installer auto or pip",
            )
        notes.append(f"installer: pip (no uv pinned for {target.arch})")
        return "pip"
    fallback = ", pip where uv cannot run" if asked == "auto" else ""
    notes.append(f"installer: uv {UV_VERSION}{fallback} (--installer uv|pip|auto)")
    return asked


def _layers(
    folder: Path, manifest: Manifest, layers: int | Literal["one"] | None, mode: Mode,
    notes: list[str],
) -> tuple[str, ...]:  # fmt: skip
    """The install layers' folders (layers.py), relative to `folder`; () for one."""
    from wheelhouse.image.layers import Wheel, remove_layers, split, write_layers
    from wheelhouse.lock.lockfile import read

    if layers == "one" or layers == 1:
        remove_layers(folder)
        return ()
    if mode == "copy":
        notes.append("--layers: the copy fallback installs in one layer")
        remove_layers(folder)
        return ()
    lock = read(folder / "lock.txt")
    if lock is None:
        raise InputError(f"no lock.txt in {folder}", hint="rerun `wheelhouse build`")
    wheels = [Wheel(name=w.name, filename=w.filename, size=w.size) for w in manifest.wheels]
    groups = split(wheels, layers)
    sizes = ", ".join(f"{sum(w.size for w in g) / 1e6:.1f} MB" for g in groups)
    notes.append(f"install layers, heaviest first: {sizes}")
    return write_layers(folder, lock, groups)


def _context_folder(config: Config, folder: Path) -> str:
    """The wheelhouse's path in the build context (the project folder): the stage mounts
    or copies it from there, so it must be inside."""
    wheelhouse = config.rel(folder)
    if Path(wheelhouse).is_absolute():
        raise ConfigError(
            f"output = {str(config.output)!r} is outside the project folder {config.root}",
            hint="the wheelhouse must be inside the Docker build context: set output to a "
            "folder in the project",
        )
    return wheelhouse


def _check_pip_runs_on(target: Target, version: str) -> None:
    """The pinned pip wheel runs on the final image's Python (`version`)."""
    if not SpecifierSet(PIP_REQUIRES_PYTHON).contains(version):
        raise ToolError(
            f"target {target.name!r} is Python {version}; the pip wheel wheelhouse runs "
            f"({PIP_FILENAME}) needs {PIP_REQUIRES_PYTHON}",
            hint="use a final image with a newer Python",
        )


def _install_mode(
    mode: InstallMode, engine: Callable[[], Engine] | None, folder: Path, notes: list[str]
) -> Mode:
    """The install asked for, or for "auto" the one the engine can do; the reason for a
    guess or a fallback, and the fallback's cost, go into `notes`."""
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
    return chosen


def runtime_packages(
    config: Config, target: Target, manifest: Manifest, family: str | None
) -> tuple[str, ...]:
    """The manifest's runtime packages, plus the recipes' for the final image's family for
    every wheel built from source (a downloaded wheel carries its libraries; so does a
    repaired one)."""
    packages: set[str] = set()
    for name in manifest.runtime_packages:
        if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
            raise ConfigError(
                f"{config.rel(manifest.path)}: runtime_packages holds {name!r}: not a package name",
                hint="the manifest was edited or is corrupt: rerun `wheelhouse build`",
            )
        packages.add(name)
    if family in ("apt", "apk") and not target.repair:
        recipes = Recipes(config.root / "recipes", label="recipes")
        for project in manifest.built:
            recipe = recipes.get(project)
            if recipe:
                packages.update(recipe.runtime_for(family))
    return tuple(sorted(packages))


def _base_paths(
    target: Target, engine: Callable[[], Engine] | None, notes: list[str]
) -> tuple[str, ...]:
    """How the app's venv sees the final image's packages, decided per image. A system or
    conda interpreter: `--system-site-packages` is enough. An interpreter that is itself a
    venv's (the image's PATH starts with its bin/): a venv made from it sees only the base
    interpreter's packages, so the image venv's site-packages folders are also named in a
    .pth file. Either way the app's packages stay in /opt/venv, and the image's own files
    are never modified or uninstalled (a replace-base package shadows the image's copy)."""
    from wheelhouse.lock.base import probe_base

    base = None
    if engine is not None:
        with contextlib.suppress(EngineError):  # not probed: the plain case's note
            base = probe_base(
                engine(), target.final_image, key=f"targets.{target.name}.final-image"
            )
    if base is None or not base.in_venv:
        notes.append(f"the venv sees {target.final_image}'s own packages (--system-site-packages)")
        return ()
    paths = tuple(sorted({d.location for d in base.own if d.location.startswith(base.prefix)}))
    notes.append(
        f"the final image's python is a venv's ({base.prefix}): the app's venv sees its "
        f"packages through a .pth file naming {', '.join(paths)}"
    )
    return paths


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
