"""The final stage that installs a target's wheelhouse: what it is made of (`Stage`,
checked on creation) and its text (`render`, `dockerignore`). Pure: no file, network or
engine is touched here; `wheelhouse dockerfile` (dockerfile.py) gathers the values.

The stage installs `<output>/<target>/` (the wheels, `lock.txt`, see build/assemble.py)
with nothing from the network and leaves no wheel, no pip and no compiler in the image:

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
import re
import shlex
from dataclasses import dataclass
from typing import Literal

from wheelhouse.build.assemble import LOCK_NAME
from wheelhouse.errors import ConfigError, EngineError
from wheelhouse.image.sysrun import system_lines
from wheelhouse.recipes import PACKAGE_NAME

# pip, run from its wheel inside the build: pinned by version and hash (requires-python
# as the index publishes it), so the Dockerfile and what runs in it never drift. The pin
# lives with the stage because the rendered text names this file; tools.py only puts
# exactly this file in place.
PIP_VERSION = "26.0.1"
PIP_SHA256 = "bdb1b08f4274833d62c1aa29e20907365a2ceb950410df15fc9521bad440122b"
PIP_REQUIRES_PYTHON = ">=3.9"
PIP_FILENAME = f"pip-{PIP_VERSION}-py3-none-any.whl"
# uv, the fast installer: its musllinux wheels hold a static executable that runs on glibc
# and musl images alike; tools.py extracts it from the hash-pinned wheel into .tools/.
UV_VERSION = "0.13.9"
UV_WHEELS = {  # arch -> (wheel, sha256) on PyPI
    "x86_64": (
        f"uv-{UV_VERSION}-py3-none-musllinux_1_1_x86_64.whl",
        "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    ),
    "aarch64": (
        f"uv-{UV_VERSION}-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64"
        ".musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
}
UV_BINARY = "uv"
CHECK_SCRIPT = "check_env.py"  # in .tools/: the final stage's library check
LIBRARIES_NAME = "libraries.json"  # in .tools/: soname -> distro package, for its message

# Where the stage reads its files in the build context (tools.py writes them there)
TOOLS_DIR = ".tools"  # <output>/<target>/.tools/: the pip wheel
APP_DIR = ".app"  # <output>/.app/<target>/: the app's own wheel, outside the deps mount
IGNORE_SUFFIX = ".dockerignore"

# Where they are inside the build, and what the stages are called

MOUNT = "/tmp/wheelhouse"
TOOLS_MOUNT = "/tmp/wheelhouse-tools"
APP_MOUNT = "/tmp/wheelhouse-app"
VENV = "/opt/venv"
WORKDIR = "/app"
STAGE = "wheelhouse-final"
INSTALL_STAGE = "wheelhouse-install"

Mode = Literal["mount", "copy"]
Installer = Literal["auto", "uv", "pip"]  # auto: uv, and pip where uv cannot run
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
    # the lock inherits the final image's packages (`base-packages = "inherit"`): the venv
    # sees the image's site-packages, so only the wheelhouse's wheels are installed
    system_site_packages: bool = False
    # ...and where the image's interpreter is a venv's, its site-packages folders, named in
    # a .pth file of /opt/venv (a venv made from a venv's python does not see them)
    base_paths: tuple[str, ...] = ()
    # the runtime packages' files, fetched ahead (system.py): installed offline from here
    system_dir: str | None = None
    installer: Installer = "pip"
    compile_bytecode: bool = False  # uv: compile .pyc at install (pip always does)
    layers: tuple[str, ...] = ()  # context-relative folders, one RUN each (layers.py)
    check: bool = False  # end with `pip check` and the extension-load check

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
            *self.layers,
            *([self.system_dir] if self.system_dir else []),
            *self.app_files,
            *([self.app_wheel] if self.app_wheel else []),
        ):
            check_context_path(path)
        if not re.fullmatch(r"pip-[0-9][A-Za-z0-9.]*-py3-none-any\.whl", self.pip_wheel):
            raise ConfigError(f"unexpected pip wheel name {self.pip_wheel!r}")
        for path in self.base_paths:
            if not _PYTHON.fullmatch(path) or not path.startswith("/"):
                raise EngineError(
                    f"the final image's site-packages path {path!r} has unexpected characters",
                    hint=f'set targets.{self.target}.base-packages = "ignore" for this image',
                )
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
    return system_lines(
        family=stage.family,
        packages=stage.packages,
        system_dir=stage.system_dir,
        offline=_offline_system(stage),
    )


def _offline_system(stage: Stage) -> bool:
    """The fetched package files are installed from a bind mount: not by the legacy
    builder (the copy fallback), which installs them from the network as before."""
    return bool(stage.system_dir) and stage.family in ("apt", "apk") and stage.mode == "mount"


def _venv(stage: Stage) -> str:
    """The one place the venv is made: without pip (it runs from its wheel); seeing the
    final image's packages when the lock inherits them."""
    return f"{shlex.quote(stage.python)} -m venv --without-pip{_site(stage)} {VENV}{_pth(stage)}"


# uv records each wheel file's mtime in <dist-info>/uv_cache.json (its own cache
# bookkeeping, listed in RECORD): the host's file times would make two installs of the
# same wheels differ (a layered and a one-layer one, two builds). pip writes no such file.
UV_TIDY = (
    f"find {VENV} -path '*.dist-info/uv_cache.json' -exec sh -c "
    """'rm "$1" && sed -i "/uv_cache\\.json,/d" "${1%/*}/RECORD"' _ {} \\;"""
)


def _uv(stage: Stage, tools: str) -> str:
    compile_ = " --compile-bytecode" if stage.compile_bytecode else ""
    return (
        f"{tools}/{UV_BINARY} pip install --python {VENV}/bin/python --offline --no-index "
        f"--no-cache \\\n      --link-mode copy{compile_}"
    )


def _install(stage: Stage, tools: str, folder: str, *, no_deps: bool = False) -> str:
    """Install `folder`/lock.txt from `folder` with the stage's installer; auto: uv when
    it runs in this image, else pip, and the build log says which."""
    deps = " --no-deps" if no_deps else ""
    args = f"--require-hashes{deps} --find-links {folder} -r {folder}/{LOCK_NAME}"
    pip = f"{_pip(stage, tools)} \\\n      {args}"
    uv = f"{_uv(stage, tools)} \\\n      {args} \\\n    && {UV_TIDY}"
    if stage.installer == "pip":
        return pip
    if stage.installer == "uv":
        return f"{uv}"
    return (
        f"if {tools}/{UV_BINARY} --version >/dev/null 2>&1; then \\\n"
        f"    echo 'wheelhouse: installing with uv {UV_VERSION}' \\\n"
        f"    && {uv}; \\\n"
        "    else \\\n"
        f"    echo 'wheelhouse: uv cannot run in this image: installing with pip "
        f"{_pip_version(stage)}' \\\n"
        f"    && {pip}; \\\n"
        "    fi"
    )


def _install_deps(stage: Stage, mounted: bool) -> list[str]:
    if stage.layers and mounted:
        return _install_layers(stage)
    mount = (
        f"--mount=type=bind,source={stage.wheelhouse},target={MOUNT} \\\n    " if mounted else ""
    )
    # uv does not count the final image's packages as installed: --no-deps (the lock is
    # complete but for the image's own pins)
    install = _install(stage, f"{MOUNT}/{TOOLS_DIR}", MOUNT, no_deps=stage.system_site_packages)
    return [f"RUN {mount}{_venv(stage)} \\\n && {install}"]


def _install_layers(stage: Stage) -> list[str]:
    """One RUN per layer, each mounting only its own folder (and the tools)."""
    out: list[str] = []
    # the installers' files alone, not .tools/: what else is there (the check's soname
    # map) must not change a layer's cache key
    names = [stage.pip_wheel] + ([UV_BINARY] if stage.installer != "pip" else [])
    tools = " \\\n    ".join(
        f"--mount=type=bind,source={stage.wheelhouse}/{TOOLS_DIR}/{name},"
        f"target={TOOLS_MOUNT}/{name}"
        for name in names
    )
    for n, folder in enumerate(stage.layers, start=1):
        venv = f"{_venv(stage)} \\\n && " if n == 1 else ""
        out += [
            f"# install layer {n} of {len(stage.layers)}: {folder}/ only (--no-deps: the lock "
            "is complete)",
            f"RUN --mount=type=bind,source={folder},target={MOUNT} \\\n    {tools} \\\n    "
            f"{venv}{_install(stage, TOOLS_MOUNT, MOUNT, no_deps=True)}",
        ]
    return out


def _check(stage: Stage) -> list[str]:
    """`pip check`, then every compiled file of the venv loads its libraries: a missing
    one fails the build naming the module, the library and the package."""
    tools = f"--mount=type=bind,source={stage.wheelhouse}/{TOOLS_DIR},target={TOOLS_MOUNT}"
    pip = (
        f"{VENV}/bin/python -B {TOOLS_MOUNT}/{stage.pip_wheel}/pip --isolated check "
        "--disable-pip-version-check"
    )
    # uv's check reads the same metadata in a fraction of pip's start-up time: this RUN
    # reruns on every change, so it is on a one-pin rebuild's clock
    uv = f"{TOOLS_MOUNT}/{UV_BINARY} pip check --python {VENV}/bin/python --offline --no-cache"
    check = {
        "pip": pip,
        "uv": uv,
        "auto": f"{{ {TOOLS_MOUNT}/{UV_BINARY} --version >/dev/null 2>&1 && {uv} || {pip}; }}",
    }[stage.installer]
    if stage.system_site_packages:
        check = _check_over_base(stage)
    return [
        "# the environment is whole: pip check, and every extension loads its libraries",
        f"RUN {tools} \\\n    {check} \\\n"
        f" && {VENV}/bin/python -B {TOOLS_MOUNT}/{CHECK_SCRIPT} {TOOLS_MOUNT}/{LIBRARIES_NAME}",
    ]


def _check_over_base(stage: Stage) -> str:
    """pip check of a venv that sees the final image's packages (uv's check does not see
    them): it fails on what the wheelhouse broke, not on what the vendor image already had
    (its own `pip check`, run first, says which problems were there before)."""
    pip = f"-B {TOOLS_MOUNT}/{stage.pip_wheel}/pip --isolated check --disable-pip-version-check"
    before, after = "/tmp/wheelhouse-check-base", "/tmp/wheelhouse-check"
    return (
        f"{{ {shlex.quote(stage.python)} {pip} > {before} 2>&1 || true; }} \\\n"
        f" && {{ {VENV}/bin/python {pip} > {after} 2>&1 \\\n"
        f"    || {{ cat {after}; ! grep -v -x -F -f {before} {after}; }}; }} \\\n"
        f" && rm -f {before} {after}"
    )


def _site(stage: Stage) -> str:
    return " --system-site-packages" if stage.system_site_packages else ""


def _pth(stage: Stage) -> str:
    """The line that names an image venv's site-packages in /opt/venv (or nothing)."""
    if not stage.base_paths:
        return ""
    purelib = f"$({VENV}/bin/python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))')"
    return (
        f" \\\n && printf '%s\\n' {' '.join(stage.base_paths)} > \"{purelib}/_wheelhouse_base.pth\""
    )


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
    offline = not stage.packages or _offline_system(stage)
    network = " --network=none" if offline else ""
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
            f"{_installer_name(stage)} run",
            "# from the mount: no pip, no wheel file and no compiler end up in the image.",
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
    if stage.check and mounted:
        out += _check(stage)
    out += _app(stage)
    return "\n".join(out) + "\n"


def _pip_version(stage: Stage) -> str:
    return stage.pip_wheel.split("-")[1]


def _installer_name(stage: Stage) -> str:
    pip = f"pip {_pip_version(stage)}"
    return {"pip": pip, "uv": f"uv {UV_VERSION}", "auto": f"uv {UV_VERSION} (else {pip})"}[
        stage.installer
    ]


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
        # layered: only the layers' folders (hard links), not the wheels a second time
        *([] if stage.layers and stage.mode == "mount" else [f"!{stage.wheelhouse}/*.whl"]),
        f"!{stage.wheelhouse}/{LOCK_NAME}",
        f"!{stage.wheelhouse}/{TOOLS_DIR}",
    ]
    lines += [f"!{folder}" for folder in stage.layers]
    if stage.system_dir:
        lines.append(f"!{stage.system_dir}")
    if stage.app_wheel:
        lines.append(f"!{stage.app_wheel}")
    lines += [f"!{p}" for p in stage.app_files]
    return "\n".join(lines) + "\n"
