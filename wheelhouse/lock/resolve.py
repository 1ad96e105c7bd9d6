"""Resolver backends: pip-compile (on the host, or inside the target's builder image) and uv.

Both only *resolve* (pins and `# via` notes); the hashes are added afterwards from the
index's own data for the files the target can install (see hashes.py). That is what makes
the two backends write the same lock, and what keeps pip-compile from downloading every
file of every pinned version just to hash it.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wheelhouse import process
from wheelhouse.config import Config, Target
from wheelhouse.engine import FIND_PYTHON, Engine, EngineTimeoutError, Mount
from wheelhouse.errors import ResolveError, ToolError
from wheelhouse.fsutil import is_complete, publish_dir, staging_dir
from wheelhouse.lock import piperrors
from wheelhouse.lock.interpreter import TargetPython, check_builder, release
from wheelhouse.lock.lockfile import Pin, parse_pins

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
PREPARE_ROUNDS = 4  # builder images tried for one failed metadata build (recipe, discovery)

# (target, project, the failed build's output, images tried) -> a builder image to resolve
# in, with the system packages the project's recipe names or discovery found (or None:
# nothing new to try). The build layer provides it (build/lockprep.py): lock/ knows no
# recipes or images.
Prepare = Callable[[Target, str, str, tuple[str, ...]], "str | None"]
_CONTAINER_CA = "/etc/wheelhouse/ca-bundle.pem"


@dataclass(frozen=True, kw_only=True)
class Request:
    config: Config
    target: Target
    python: TargetPython  # the interpreter to resolve for, to the patch release if known
    seed: str  # pins the resolver should prefer (pip-compile/uv read the output file)
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    # constraint files beyond the config's, by absolute path: the final image's packages
    # (basestubs.py; their folder is one of the target's find-links, so mounted alike)
    constraints: tuple[Path, ...] = ()
    prepare: Prepare | None = None  # a builder image for a project whose metadata failed


class MetadataFailed(ResolveError):
    """pip-compile failed because one project's metadata could not be prepared (its
    setup.py or build backend needs a system library or tool)."""

    def __init__(self, message: str, hint: str, *, project: str, output: str) -> None:
        super().__init__(message, hint)
        self.project = project
        self.output = output


@dataclass(frozen=True, kw_only=True)
class Resolution:
    pins: list[Pin]
    where: str  # "host", "uv", or "container <image>": for the report
    python: str  # the Python version it was resolved for: "3.11.7"


def host_python() -> str:
    return "{}.{}.{}".format(*sys.version_info[:3])


def host_matches(target: Target) -> bool:
    """Whether this interpreter evaluates markers and tags as the target would (its minor
    release: where the patch release differs, lock.py checks each pin's Requires-Python)."""
    libc, _ = platform.libc_ver()
    return (
        sys.implementation.name == "cpython"
        and sys.version_info[:2] == target.python_tuple
        and sys.platform == "linux"
        and platform.machine() == target.arch
        and (libc or "musl") == target.libc
    )


def _rel(config: Config, path: Path) -> str:
    return config.rel(path)


def _common_args(req: Request) -> list[str]:
    """Flags both resolvers share, with index settings passed explicitly."""
    args = req.target.index.pip_args()
    if req.upgrade:
        args.append("--upgrade")
    for p in req.upgrade_packages:
        args += ["--upgrade-package", p]
    for c in req.config.constraints:
        args += ["--constraint", _rel(req.config, c)]
    for c in req.constraints:
        args += ["--constraint", str(c)]
    return args


def _binary_args(target: Target) -> list[str]:
    args = []
    if target.no_binary:
        args += ["--no-binary", ",".join(target.no_binary)]
    if target.only_binary:
        args += ["--only-binary", ",".join(target.only_binary)]
    return args


def _pip_compile_args(req: Request, out: str) -> list[str]:
    args = [
        "--quiet",
        "--no-header",
        "--annotate",
        "--no-emit-index-url",
        "--no-emit-trusted-host",
        "--no-emit-find-links",
        "--allow-unsafe",
        "--strip-extras",
        "--resolver=backtracking",
        *_common_args(req),
        "--output-file",
        out,
    ]
    binary = _binary_args(req.target)
    if binary:
        args += ["--pip-args", " ".join(binary)]
    return args + [_rel(req.config, p) for p in req.config.inputs]


def _timed_out(tool: str, req: Request, seconds: float) -> ResolveError:
    return ResolveError(
        f"{tool} did not finish resolving target {req.target.name!r} within {seconds:g} s "
        "and was stopped",
        hint="an index that stops answering or a package whose metadata build hangs does "
        "this (rerun with -v to see the command); if resolving only needs longer, raise "
        f"timeouts.resolve in wheelhouse.toml (e.g. --set timeouts.resolve={seconds * 4:g})",
    )


def _failed(tool: str, req: Request, res: process.Result) -> ResolveError:
    # pip-compile ends in pip's tracebacks; what they say is made a message here. uv's
    # own message is already one: it passes through.
    output = res.stdout + res.stderr
    project = None if tool == "uv" else piperrors.failed_metadata(output)
    if project is not None:
        return MetadataFailed(
            f"{tool} could not resolve target {req.target.name!r}:\n"
            + piperrors.explain_metadata(project, output),
            hint=f"{project} needs system packages to prepare its metadata: name them in "
            f"recipes/{project}.toml (build.apt / build.apk) and lock again (the target's "
            'builder image then prepares it), or use resolver = "uv" where its sdist '
            "has static metadata",
            project=project,
            output=output,
        )
    said = res.tail(25) if tool == "uv" else piperrors.explain(output)
    return ResolveError(
        f"{tool} could not resolve target {req.target.name!r}:\n{said}",
        hint="fix the conflicting or missing requirement named above in your inputs; "
        "rerun with -v to see the command",
    )


def start(req: Request, engine: Callable[[], Engine]) -> Callable[[], Resolution]:
    """Begin resolving; the returned function waits for the pins.

    uv runs in the background so that the caller's own work (importing the hashing code,
    prefetching index pages) overlaps it: a warm uv lock is dominated by fixed costs.
    """
    if req.config.resolver == "uv":
        return _start_uv(req)
    # the host's minor release is enough to start on the host: lock.py checks the pins
    # against the target's patch release, and calls in_builder() where they do not fit
    if host_matches(req.target):
        return lambda: _prepared(req, engine, lambda: _resolve_pip_host(req))
    return lambda: _prepared(req, engine, lambda: in_builder(req, engine()))


def _prepared(
    req: Request, engine: Callable[[], Engine], resolve: Callable[[], Resolution]
) -> Resolution:
    """`resolve()`; where it fails for want of a project's metadata, pip-compile again in
    a builder image with the system packages that project needs (its recipe's, then what
    discovery finds in the failed build's output), in bounded rounds."""
    try:
        return resolve()
    except MetadataFailed as e:
        if req.prepare is None:
            raise
        failed = e
    tried: tuple[str, ...] = ()
    for _round in range(PREPARE_ROUNDS):
        image = req.prepare(req.target, failed.project, failed.output, tried)
        if image is None or image in tried:
            break
        tried += (image,)
        try:
            return in_builder(req, engine(), image=image)
        except MetadataFailed as e:
            failed = e
    raise failed


def _resolve_pip_host(req: Request) -> Resolution:
    with tempfile.TemporaryDirectory(prefix="wheelhouse-lock-") as tmp:
        out = Path(tmp) / "lock.txt"
        out.write_text(req.seed)
        seconds = req.config.timeouts.resolve
        try:
            res = process.run(
                [sys.executable, "-m", "piptools", "compile", *_pip_compile_args(req, str(out))],
                cwd=req.config.root,
                env=process.tool_env(req.config),
                timeout=seconds,
            )
        except process.TimedOut:
            raise _timed_out("pip-compile", req, seconds) from None
        if not res.ok:
            raise _failed("pip-compile", req, res)
        pins = parse_pins(out.read_text(), "pip-compile output")
        return Resolution(pins=pins, where="host", python=host_python())


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin  # the `uv` wheel ships its binary and this finder

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise ToolError(
        'resolver = "uv" needs uv, which is not installed',
        hint="pip install 'wheelhouse[uv]', or set resolver = \"pip\"",
    )


def uv_platform(target: Target) -> str:
    if target.libc == "musl":
        return f"{target.arch}-unknown-linux-musl"
    major, minor = (int(x) for x in (target.libc_version or "2.17").split(".")[:2])
    if major == 2 and 17 <= minor <= 40:  # the manylinux levels uv knows by name
        return f"{target.arch}-manylinux_2_{minor}"
    return f"{target.arch}-unknown-linux-gnu"


def _start_uv(req: Request) -> Callable[[], Resolution]:
    tmp = tempfile.TemporaryDirectory(prefix="wheelhouse-lock-")
    out = Path(tmp.name) / "lock.txt"
    out.write_text(req.seed)
    args = [
        _uv_binary(),
        "pip",
        "compile",
        "--no-config",
        "--quiet",
        "--no-header",
        "--python-version",
        req.python.version,  # uv takes "3.11" for 3.11.0
        "--python-platform",
        uv_platform(req.target),
        # resolve *for* that version with the interpreter at hand (it builds any sdist whose
        # metadata the index lacks): never download one, and never look for one, which
        # runs every python on PATH (a pyenv shim is a shell script: ~130 ms a lock)
        "--python",
        sys.executable,
        "--no-python-downloads",
        # pip's rule: the best version across all indexes (backends must agree)
        "--index-strategy",
        "unsafe-best-match",
        *_common_args(req),
        *_binary_args(req.target),
        "--output-file",
        str(out),
        *[_rel(req.config, p) for p in req.config.inputs],
    ]
    running = process.start(args, cwd=req.config.root, env=process.tool_env(req.config))

    def finish() -> Resolution:
        with tmp:
            seconds = req.config.timeouts.resolve
            try:
                res = running.wait(timeout=seconds)
            except process.TimedOut:
                raise _timed_out("uv", req, seconds) from None
            if not res.ok:
                raise _failed("uv", req, res)
            pins = parse_pins(out.read_text(), "uv output")
            version = req.python.version
            return Resolution(pins=pins, where="uv", python=release(version) or f"{version}.0")

    return finish


# -- pip-compile inside the target's builder image --------------------------------------


def _piptools_wheels(config: Config, python_version: str) -> Path:
    """Wheels of pip-tools (same version as ours) for the container's Python, cached.

    Installed offline in the container, so the image needs nothing but python, and the
    resolver version inside matches the one on the host.
    """
    from importlib import metadata  # 12 ms to import: only when pip-tools is needed

    version = metadata.version("pip-tools")
    dest = config.cache_dir / "tools" / f"pip-tools-{version}-py{python_version}"
    if is_complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=dest.parent))
    res = process.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary",
            ":all:",
            "--python-version",
            python_version,
            "--dest",
            str(tmp),
            "--index-url",
            config.tools_index_url,
            f"pip-tools=={version}",
        ],
        env=process.tool_env(config),
        timeout=config.timeouts.resolve,
        limit="timeouts.resolve",
    )
    if not res.ok:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ToolError(
            f"cannot download pip-tools {version} for Python {python_version}: {res.tail(5)}",
            hint="check tools-index-url in wheelhouse.toml (default: PyPI) and your network",
        )
    return publish_dir(tmp, dest)


def _local_mounts(req: Request) -> list[Mount]:
    """file:// indexes and find-links folders, visible in the container at the same path."""
    mounts = []
    idx = req.target.index
    for loc in (*idx.all_index_urls, *idx.find_links):
        if loc.startswith("file://"):
            path = Path(urllib.parse.unquote(urllib.parse.urlsplit(loc).path))
        elif "://" in loc:
            continue
        else:
            path = Path(loc)
        if path.exists():
            mounts.append(Mount(source=path.resolve(), target=str(path.resolve())))
    return mounts


def container_env(config: Config) -> dict[str, str]:
    """Proxy variables and the CA bundle, as the host has them: works behind a TLS proxy."""
    env = {
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "HOME": "/tmp",
        "PIP_CACHE_DIR": "/wh-pip-cache",
    }
    for var in _PROXY_VARS:
        for name in (var, var.lower()):
            if name in os.environ:
                env[name] = os.environ[name]
    if config.ca_bundle:
        env.update(
            PIP_CERT=_CONTAINER_CA, SSL_CERT_FILE=_CONTAINER_CA, REQUESTS_CA_BUNDLE=_CONTAINER_CA
        )
    return env


def in_builder(req: Request, engine: Engine, *, image: str | None = None) -> Resolution:
    """pip-compile inside the target's builder image (or `image`, one made from it with
    system packages): its own interpreter decides."""
    target = req.target
    image = image or target.builder_image
    key = f"targets.{target.name}.builder-image"
    info = engine.probe(image, key=key)
    check_builder(target, info)
    tools = _piptools_wheels(req.config, target.python_version)
    uid = os.getuid()
    user = (uid, os.getgid()) if uid != 0 else (65534, 65534)  # root runs it as nobody
    pip_cache = req.config.cache_dir / "container-pip-cache"
    pip_cache.mkdir(parents=True, exist_ok=True)
    if uid == 0:  # the container's user owns it: never world-writable
        os.chown(pip_cache, *user)
    pip_cache.chmod(0o700)
    from wheelhouse.store import Store  # 4 ms to import: only for a lock in a container

    with staging_dir(Store(req.config.cache_dir).tmp, "lock-") as out:
        (out / "lock.txt").write_text(req.seed)
        (out / "lock.txt").chmod(0o666)
        mounts = [
            Mount(source=req.config.root, target="/src"),
            Mount(source=out, target="/out", read_only=False),
            Mount(source=tools, target="/wh-tools"),
            Mount(source=pip_cache, target="/wh-pip-cache", read_only=False),
            *_local_mounts(req),
        ]
        if req.config.ca_bundle:
            mounts.append(Mount(source=req.config.ca_bundle, target=_CONTAINER_CA))
        # pip too, from the same folder: a venv's own pip can be too old for today's
        # indexes (Debian 12's 23.0.1 fails on PEP 691 JSON pages with metadata hashes)
        script = (
            f'set -e; {FIND_PYTHON}; "$PY" -m venv /tmp/wh-venv; '
            "/tmp/wh-venv/bin/pip install --quiet --no-index --find-links /wh-tools "
            "--upgrade pip pip-tools; "
            'exec /tmp/wh-venv/bin/pip-compile "$@"'
        )
        with engine.container(
            image,
            ["sh", "-c", script, "pip-compile", *_pip_compile_args(req, "/out/lock.txt")],
            mounts=mounts,
            env=container_env(req.config),
            # resolving needs the index: the host's network view, loopback and proxies
            # included; builds (not this) run with --network none
            network="host",
            user=f"{user[0]}:{user[1]}",
            workdir="/src",
        ) as c:
            try:
                res = c.run(key="resolve")
            except EngineTimeoutError as e:
                if e.key != "resolve":
                    raise
                raise _timed_out(f"pip-compile in {image}", req, e.seconds) from None
        if not res.ok:
            raise _failed(f"pip-compile in {image}", req, res)
        text = (out / "lock.txt").read_text()
    return Resolution(
        pins=parse_pins(text, "pip-compile output"),
        where=f"container {image}",
        python=info.python_version,
    )
