"""The one place that talks to the container engine, through its CLI.

docker and podman speak the same CLI, so the binary is just a setting. Containers are
context managers that always remove what they created, also on Ctrl-C or SIGTERM
(cibuildwheel's pattern): `docker run --rm` would leave the container running if the
client were killed. Every call has a time limit (`[timeouts]`): an engine that accepts
and never answers ends in an EngineError naming the call and the limit to raise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from wheelhouse import process
from wheelhouse._scripts import script
from wheelhouse.config import Target, Timeouts
from wheelhouse.errors import ConfigError, EngineError
from wheelhouse.fsutil import atomic_write

LABEL = "io.wheelhouse.managed=1"
PROBE_VERSION = "v2"  # bump when _scripts/probe.py's answers change meaning
NO_PYTHON = 127  # FIND_PYTHON's exit status: the image has no interpreter
Limit = Literal["engine", "image", "build", "resolve"]  # the fields of config.Timeouts


class EngineTimeoutError(EngineError):
    """An engine call ran past its limit, `timeouts.<key>`; its client was killed (and a
    container it ran is removed by the container's context)."""

    def __init__(self, *, command: str, seconds: float, key: Limit) -> None:
        hint = (
            "check that the engine is healthy (`docker info`)"
            if key == "engine"
            else "if it only needs longer"
        )
        super().__init__(
            f"the container engine did not finish `{command}` within {seconds:g} s",
            hint=f"{hint}; to wait longer, raise timeouts.{key} in wheelhouse.toml "
            f"(e.g. --set timeouts.{key}={seconds * 4:g})",
        )
        self.command = command
        self.seconds = seconds
        self.key = key


@dataclass(frozen=True, kw_only=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True

    def arg(self) -> str:
        opt = ",readonly" if self.read_only else ""
        return f"type=bind,source={self.source},target={self.target}{opt}"


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    """What an image's interpreter and libc are, probed once and cached by image id."""

    image_id: str
    python: str  # the interpreter's path inside the image
    python_version: str  # "3.11.2"
    implementation: str  # "cpython"
    soabi: str
    libc: Literal["glibc", "musl"]
    libc_version: str  # "2.36" / "1.2"
    arch: str
    distro: str  # os-release ID, e.g. "debian", "alpine", "ubuntu"
    distro_like: tuple[str, ...] = ()
    package_manager: str | None = None  # "apt", "apk", "dnf", or None
    cuda: str | None = None  # CUDA_VERSION as NVIDIA's images set it, e.g. "12.6.3"

    @property
    def python_minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])


# Finds the image's interpreter instead of assuming a path: official images have
# /usr/local/bin/python, Debian's have /usr/bin/python3.
FIND_PYTHON = (
    "PY=$(command -v python3 || command -v python) || "
    '{ echo "wheelhouse: no python3 or python on PATH in this image" >&2; exit 127; }'
)


class Container:
    """A container created on enter and force-removed on exit, whatever happens. (A
    handle, not a record: a plain class, not made at import time as a dataclass is.)"""

    def __init__(
        self,
        *,
        engine: Engine,
        image: str,
        command: Sequence[str],
        mounts: Sequence[Mount] = (),
        env: Mapping[str, str] | None = None,
        network: str = "none",
        user: str | None = None,
        workdir: str | None = None,
    ) -> None:
        self.engine = engine
        self.image = image
        self.command = command
        self.mounts = mounts
        self.env: Mapping[str, str] = env or {}
        self.network = network
        self.user = user
        self.workdir = workdir
        self.id: str | None = None
        self.name: str | None = None

    def __enter__(self) -> Container:
        import secrets  # a container is made: not in a warm build

        name = f"wheelhouse-{secrets.token_hex(6)}"
        # --rm as well: if this process is killed, the daemon still removes the container
        # when it exits (`rm --force` on exit covers every other case)
        args = ["create", "--rm", "--name", name, "--label", LABEL, "--network", self.network]
        if self.user:
            args += ["--user", self.user]
        if self.workdir:
            args += ["--workdir", self.workdir]
        for m in self.mounts:
            args += ["--mount", m.arg()]
        for k, v in sorted(self.env.items()):
            args += ["--env", f"{k}={v}"]
        args += [self.image, *self.command]
        self.name = name
        try:
            res = self.engine.run(*args)
        except BaseException:
            # interrupted or timed out after the daemon may have made it: remove it by name
            with process.cleanup(), contextlib.suppress(EngineError):
                self.engine.run("rm", "--force", name)
            raise
        if not res.ok:
            self.engine.ensure()
            raise EngineError(
                f"cannot create a container from {self.image}: {res.tail(5)}",
                hint="check the image name and that the engine is healthy (`docker info`)",
            )
        self.id = res.stdout.strip()
        return self

    def run(self, timeout: float | None = None, *, key: Limit = "engine") -> process.Result:
        """Start it and wait for its command: up to `timeout` s, else timeouts.<key>. Past
        it, EngineTimeoutError; leaving the context then kills and removes the container."""
        assert self.id, "use the container as a context manager"
        return self.engine.within(key, "start", "--attach", self.id, seconds=timeout)

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if not self.id:
            return
        # a cleanup: it runs also while the run is cancelled, and is not killed by it
        with process.cleanup():
            try:
                self.engine.run("rm", "--force", "--volumes", self.id)
            except EngineError:
                if exc_type is None:
                    raise
                # what is propagating says more; the daemon removes the container (--rm)
                # once its command ends


class NoPythonError(EngineError):
    """The image has no python3/python on its PATH (NVIDIA's CUDA images, distro bases)."""


class Engine:
    def __init__(self, binary: str, cache_dir: Path, timeouts: Timeouts | None = None) -> None:
        self.binary = binary
        self.cache_dir = cache_dir
        self.timeouts = timeouts or Timeouts()
        self._checked = False

    def run(
        self, *args: str, timeout: float | None = None, env: Mapping[str, str] | None = None
    ) -> process.Result:
        """One CLI call, limited to `timeout` s (default: timeouts.engine)."""
        seconds = self.timeouts.engine if timeout is None else timeout
        try:
            return process.run(
                [self.binary, *args],
                timeout=seconds,
                env={**os.environ, **env} if env else None,
                missing=EngineError(
                    f"container engine {self.binary!r} not found",
                    hint="install Docker (Debian: apt-get install docker.io) or Podman, or "
                    "point --engine / WHEELHOUSE_ENGINE at its binary",
                ),
            )
        except process.TimedOut:
            command = " ".join([Path(self.binary).name, *args[:2]])
            raise EngineTimeoutError(command=command, seconds=seconds, key="engine") from None

    def within(
        self,
        key: Limit,
        *args: str,
        seconds: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> process.Result:
        """A call limited by timeouts.<key> (or `seconds`): an image pull or build, a
        container's command. A timeout names that key."""
        limit = getattr(self.timeouts, key) if seconds is None else seconds
        try:
            return self.run(*args, timeout=limit, env=env)
        except EngineTimeoutError as e:
            raise EngineTimeoutError(command=e.command, seconds=limit, key=key) from None

    def check(self) -> str:
        """The server's version; a clear error when the engine is missing or stopped."""
        res = self.run("version", "--format", "{{.Server.Version}}")
        version = res.stdout.strip()
        if not res.ok or not version or version == "<no value>":
            text = res.stderr.strip()
            if "permission denied" in text.lower():
                raise EngineError(
                    f"no permission to use the engine ({self.binary}): {text.splitlines()[-1]}",
                    hint="add yourself to the 'docker' group, or run with sudo",
                )
            last = text.splitlines()[-1] if text else "no answer"
            raise EngineError(
                f"the container engine ({self.binary}) is not running: {last}",
                hint="start it (`sudo systemctl start docker`, or `sudo dockerd &`), or set "
                "DOCKER_HOST / the engine's context to a running one",
            )
        self._checked = True
        return version

    def ensure(self) -> None:
        if not self._checked:
            self.check()

    def _inspect_id(self, ref: str) -> tuple[str | None, process.Result | None]:
        """The image id of `ref`, or None when it is not present; with the CLI's answer
        when the CLI was asked. Asks the engine's API socket when it is Docker's local
        default (a millisecond, where starting the CLI costs 30 ms: a warm build is mostly
        this); anything else goes through the CLI."""
        socket_path = _local_docker_socket(self.binary)
        if socket_path is not None:
            seconds = self.timeouts.engine
            found = _api_image_id(socket_path, ref, timeout=seconds)
            if found is _SILENT:  # the CLI would wait on the same socket: say so now
                command = f"GET /images/{ref}/json on unix://{socket_path}"
                raise EngineTimeoutError(command=command, seconds=seconds, key="engine")
            if found is not _UNKNOWN:
                return (found if isinstance(found, str) else None), None
        res = self.run("image", "inspect", "--format", "{{.Id}}", ref)
        return (res.stdout.strip() if res.ok else None), res

    def image_id(self, ref: str, *, key: str | None = None, pull: bool = True) -> str:
        """The local image id of `ref`, pulling it once if it is not present."""
        found, res = self._inspect_id(ref)
        if found:
            return found
        if res is None:  # the API said no: the CLI is asked too, and trusted if it says yes
            res = self.run("image", "inspect", "--format", "{{.Id}}", ref)
            if res.ok:
                return res.stdout.strip()
        self.ensure()  # a stopped engine fails here with a clear message, not as "no image"
        if pull:
            pulled = self.within("image", "pull", "--quiet", ref)
            if pulled.ok:
                return self.image_id(ref, key=key, pull=False)
            reason = pulled.tail(2)
        else:
            reason = res.tail(2)
        where = f" ({key})" if key else ""
        raise EngineError(
            f"image {ref!r}{where} is not present and could not be pulled: {reason}",
            hint="pull or build it first (`docker pull`, `docker load`), or set "
            + (f"{key} to an image you have" if key else "another image"),
        )

    def has_image(self, ref: str) -> bool:
        return self._inspect_id(ref)[0] is not None

    def build_image(
        self, tag: str, dockerfile: str, build_args: Mapping[str, str], log: Path
    ) -> None:
        """`docker build` from a Dockerfile text with an empty context. The classic builder
        (DOCKER_BUILDKIT=0) needs no buildx plugin and works with podman's CLI too."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="wheelhouse-ctx-") as ctx:
            (Path(ctx) / "Dockerfile").write_text(dockerfile)
            args = ["build", "--tag", tag, "--label", LABEL]
            for k, v in sorted(build_args.items()):
                args += ["--build-arg", f"{k}={v}"]
            res = self.within("image", *args, ctx, env={"DOCKER_BUILDKIT": "0"})
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(res.stdout + res.stderr)
        if not res.ok:
            raise EngineError(
                f"building the builder image {tag} failed:\n{res.tail(15)}",
                hint=f"full log: {log}. Check the system package names in your recipes",
            )

    # -- images built from a context, and what is in them ----------------------------------

    def versions(self) -> tuple[str, str]:
        """(client, server) versions, e.g. ("20.10.24+dfsg1", "20.10.24+dfsg1"); a clear
        EngineError when the engine is missing or stopped."""
        res = self.run("version", "--format", "{{json .}}")
        try:
            data = json.loads(res.stdout)
            client, server = data.get("Client") or {}, data.get("Server") or {}
            versions = str(client.get("Version") or ""), str(server.get("Version") or "")
        except (ValueError, AttributeError):
            versions = ("", "")
        if not res.ok or not versions[1]:
            self.check()  # says why (not running, no permission)
        return versions

    def has_buildx(self) -> bool:
        """Whether the client has BuildKit through the buildx plugin (clients >= 23)."""
        return self.run("buildx", "version").ok

    def build(
        self,
        context: Path,
        dockerfile: Path,
        tag: str,
        *,
        network_none: bool = True,
        no_cache: bool = False,
        buildkit: bool = True,
        timeout: float | None = None,
    ) -> process.Result:
        """`docker build` of a context with BuildKit (DOCKER_BUILDKIT=1: the 20.10 client's
        built-in one, `RUN --mount` without a `# syntax=` line); the caller reads the Result
        (plain progress: each step and whether it was CACHED)."""
        args = ["build", "--file", str(dockerfile), "--tag", tag]
        if buildkit:
            args.append("--progress=plain")
        if network_none:
            args += ["--network", "none"]
        if no_cache:
            args.append("--no-cache")
        env = {"DOCKER_BUILDKIT": "1" if buildkit else "0"}
        return self.within("image", *args, str(context), seconds=timeout, env=env)

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """`image inspect` of one local image (no pull)."""
        res = self.run("image", "inspect", ref)
        if not res.ok:
            self.ensure()
            raise EngineError(
                f"no image {ref!r}: {res.tail(2)}", hint="build or pull it first (`docker images`)"
            )
        data: list[dict[str, Any]] = json.loads(res.stdout)
        return data[0]

    def save(self, ref: str, dest: Path) -> None:
        """`docker save` of a local image into a tar file (its layers and config)."""
        res = self.within("image", "save", "--output", str(dest), ref)
        if not res.ok:
            self.ensure()
            raise EngineError(
                f"cannot save image {ref!r}: {res.tail(3)}",
                hint="check the image name (`docker images`) and free disk space in TMPDIR",
            )

    def container(self, image: str, command: Sequence[str], **kw: object) -> Container:
        return Container(engine=self, image=image, command=command, **kw)  # type: ignore[arg-type]

    def probe(self, ref: str, *, key: str | None = None) -> ImageInfo:
        """Interpreter, ABI, libc of an image; cached by image id (tags move, ids do not)."""
        image_id = self.image_id(ref, key=key)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", image_id)
        cache = self.cache_dir / "probes" / PROBE_VERSION / f"{safe}.json"
        no_python = NoPythonError(
            f"image {ref!r} has no python3 or python on its PATH",
            hint="a target's final image needs a Python; builder images get one from "
            "Dockerfile.builder",
        )
        try:
            data = json.loads(cache.read_text())
            if data.get("no_python"):  # remembered too: a warm build starts no container
                raise no_python
            data["distro_like"] = tuple(data.get("distro_like", ()))
            return ImageInfo(**data)
        except (OSError, ValueError, TypeError):
            pass
        command = ["sh", "-c", f'{FIND_PYTHON}; exec "$PY" -c "$WHEELHOUSE_PROBE"']
        with self.container(image_id, command, env={"WHEELHOUSE_PROBE": script("probe")}) as c:
            res = c.run()
        if res.returncode == NO_PYTHON and "no python3 or python" in res.stderr:
            atomic_write(cache, json.dumps({"no_python": True}))
            raise no_python
        if not res.ok:
            raise EngineError(
                f"cannot probe image {ref!r}: {res.tail(3)}",
                hint="a target's image needs sh and python3 (or python) on its PATH",
            )
        data = json.loads(res.stdout.strip().splitlines()[-1])
        info = ImageInfo(image_id=image_id, **{**data, "distro_like": tuple(data["distro_like"])})
        atomic_write(cache, json.dumps(asdict(info), sort_keys=True))
        return info


_UNKNOWN = object()  # the API could not answer: ask the CLI
_SILENT = object()  # the API accepted the request and did not answer in time


def _local_docker_socket(binary: str) -> str | None:
    """Docker's default unix socket, when the CLI would talk to it: the binary is docker's,
    and neither DOCKER_HOST nor a context points elsewhere."""
    if not Path(binary).name.startswith("docker") or shutil.which(binary) is None:
        return None  # a missing binary gets the CLI path's clear error
    if os.environ.get("DOCKER_CONTEXT", "default") != "default":
        return None
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://") or "/var/run/docker.sock"
    config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    if not host and config.is_file():
        try:
            if json.loads(config.read_text()).get("currentContext", "default") != "default":
                return None
        except (OSError, ValueError, AttributeError):
            return None
    return path if Path(path).exists() else None


def _api_image_id(socket_path: str, ref: str, timeout: float = 10.0) -> object:
    """GET /images/<ref>/json over the unix socket: the id, None (404), _UNKNOWN, or
    _SILENT when nothing came back within `timeout` s.
    HTTP/1.0 by hand: one small request, and http.client would cost more to import
    than the CLI call saves."""
    from urllib.parse import quote

    try:  # the C module: `socket` would cost a warm build more than this call (its enums)
        import _socket as sockets
    except ImportError:  # not CPython
        import socket as sockets  # type: ignore[no-redef]

    request = f"GET /images/{quote(ref, safe='')}/json HTTP/1.0\r\nHost: docker\r\n\r\n"
    chunks: list[bytes] = []
    try:
        sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(request.encode())
            while chunk := sock.recv(65536):  # HTTP/1.0: the server closes after the body
                chunks.append(chunk)
        finally:
            sock.close()
    except TimeoutError:
        return _SILENT
    except OSError:
        return _UNKNOWN
    try:
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split()
        code = int(status[1]) if len(status) > 1 else 0
        if code == 404:
            return None
        if code != 200:
            return _UNKNOWN
        image_id = json.loads(body).get("Id")
    except (OSError, ValueError, AttributeError):
        return _UNKNOWN
    return image_id if isinstance(image_id, str) and image_id else _UNKNOWN


def with_libc(targets: Sequence[Target], engine: Callable[[], Engine]) -> list[Target]:
    """Targets whose libc-version is unset take their final image's: musllinux_1_1 or
    _1_2 by the image's musl, manylinux_2_X by its glibc. The probe is cached by image id,
    so this starts a container once per image, not once per run."""
    out = []
    for t in targets:
        if t.libc_version is None:
            key = f"targets.{t.name}.final-image"
            info = engine().probe(t.final_image, key=key)
            if info.libc != t.libc or not info.libc_version:
                raise ConfigError(
                    f"target {t.name!r} is {t.libc}, but its final image {t.final_image} is "
                    f"{info.libc} {info.libc_version or '(version unknown)'}",
                    hint=f"fix targets.{t.name}.libc, or set targets.{t.name}.libc-version",
                )
            t = replace(t, libc_version=info.libc_version)
        out.append(t)
    return out
