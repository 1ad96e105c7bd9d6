#!/usr/bin/env python3
"""Builds the images the docker tests run against, from Debian packages only.

No container registry can be reached, so nothing is pulled: each Debian suite is made with
`debootstrap --variant=minbase`, imported as a base image (`docker import`), and the Dockerfiles
in tests/images/ install python3 (and a compiler, for builders) on top with apt.

Every image is tagged by a short hash of its inputs (the Dockerfile's text, the suite, the
base's recipe), so an image is built only when it is missing or its inputs changed, and is
reused across runs and checkouts otherwise. A lock file serialises concurrent callers.

    python scripts/test_images.py [--engine /usr/bin/docker] [--prune]

prints a JSON object role -> image tag on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES_DIR = REPO / "tests" / "images"
MIRROR = os.environ.get("WHEELHOUSE_TEST_MIRROR", "http://deb.debian.org/debian")
VARIANT = "minbase"
REPO_PREFIX = "wheelhouse-test"
LABEL = "io.wheelhouse.test=1"
# Bump to rebuild every image (e.g. after changing how bases are made below).
RECIPE = "1"


@dataclass(frozen=True)
class Spec:
    role: str
    suite: str  # Debian suite the image is made from
    dockerfile: str  # a file in tests/images/
    # the host's CA bundle goes into the build context as ca.crt, for a stage that pip
    # installs from PyPI behind a TLS-intercepting proxy (it is not kept in the image)
    needs_ca: bool = False


SPECS: tuple[Spec, ...] = (
    Spec("py311-builder", "bookworm", "builder.Dockerfile"),  # Debian 12: python 3.11, glibc 2.36
    Spec("py311-slim", "bookworm", "slim.Dockerfile"),
    Spec("py313-builder", "trixie", "builder.Dockerfile"),  # Debian 13: python 3.13, glibc 2.41
    # CUDA 13 toolkit from PyPI in /usr/local/cuda, no Python: plays nvidia/cuda:*-devel
    Spec("gpu-builder", "bookworm", "gpu-builder.Dockerfile", needs_ca=True),
    # a vendor ML base stand-in: numpy, pandas and a local-version package system-wide
    Spec("mlbase", "bookworm", "mlbase.Dockerfile", needs_ca=True),
)


class ImageBuildError(RuntimeError):
    """An image could not be made; the message ends with the tail of the log."""


def default_engine() -> str:
    """Debian's 20.10 client: the newer `docker` first on PATH here lacks buildx."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def cache_root() -> Path:
    env = os.environ.get("WHEELHOUSE_TEST_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "wheelhouse-test"


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def base_tag(suite: str) -> str:
    return f"{REPO_PREFIX}/debian-{suite}:{_hash(RECIPE, suite, VARIANT, MIRROR)}"


def image_tag(spec: Spec) -> str:
    text = (IMAGES_DIR / spec.dockerfile).read_text()
    return f"{REPO_PREFIX}/{spec.role}:{_hash(RECIPE, text, spec.suite, base_tag(spec.suite))}"


def image_tags() -> dict[str, str]:
    """Role -> tag for the current inputs, without building anything."""
    return {s.role: image_tag(s) for s in SPECS}


def _log(msg: str) -> None:
    print(f"[test-images] {msg}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run(
    argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, what: str
) -> None:
    """Run a command with its output appended to `log`; raise with the log's tail on failure."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.run(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            check=False,
        )
    if proc.returncode != 0:
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}); log: {log}\n{_tail(log)}")


def _exists(engine: str, ref: str) -> bool:
    return (
        subprocess.run(
            [engine, "image", "inspect", "--format", "{{.Id}}", ref],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def _check_engine(engine: str) -> str:
    path = shutil.which(engine)
    if path is None:
        raise ImageBuildError(
            f"container engine {engine!r} not found: install Docker (Debian: apt-get install "
            "docker.io) or set --engine / WHEELHOUSE_TEST_ENGINE"
        )
    res = subprocess.run(
        [path, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if res.returncode != 0 or not res.stdout.strip():
        raise ImageBuildError(
            f"the container engine ({path}) is not running: {res.stderr.strip()[-500:]}"
        )
    return path


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "images.lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log("another process is making the images; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _unmount_under(tree: Path, root: Sequence[str]) -> None:
    """A failed debootstrap can leave /proc or /sys mounted inside the tree."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(tree.resolve()) + "/"
    points = [m.split()[1] for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run([*root, "umount", "-l", point], check=False, capture_output=True)


def _as_root() -> list[str]:
    """How to run debootstrap: directly as root, else through passwordless sudo."""
    if os.geteuid() == 0:
        return []
    if (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode == 0
    ):
        return ["sudo", "-n"]
    raise ImageBuildError(
        "debootstrap needs root to make the base images: run "
        "`sudo python scripts/test_images.py` once (the images are reused after that)"
    )


def _rootfs_tar(suite: str, cache: Path, log: Path) -> Path:
    """A minbase debootstrap of `suite` as a tar file, made once and kept in the cache."""
    tar = cache / "rootfs" / f"{base_tag(suite).rsplit(':', 1)[1]}-{suite}.tar"
    if tar.is_file():
        _log(f"{suite}: reusing the cached root filesystem {tar}")
        return tar
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        raise ImageBuildError("debootstrap is not installed: apt-get install debootstrap")
    root = _as_root()
    tar.parent.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix=f"debootstrap-{suite}-", dir=cache))
    part = tar.with_suffix(f".part{os.getpid()}")
    try:
        _log(f"{suite}: debootstrap --variant={VARIANT} (about 30-60 s)")
        _run(
            [*root, "debootstrap", f"--variant={VARIANT}", suite, str(tree), MIRROR],
            log,
            what=f"debootstrap {suite}",
        )
        # what apt downloaded is not part of the image (the Dockerfiles run apt-get update)
        _run(
            [
                *root,
                "find",
                str(tree / "var/cache/apt/archives"),
                str(tree / "var/lib/apt/lists"),
                "-maxdepth",
                "1",
                "-type",
                "f",
                "-delete",
            ],
            log,
            what=f"cleaning the {suite} tree",
        )
        _run(
            [*root, "tar", "-C", str(tree), "--numeric-owner", "-cf", str(part), "."],
            log,
            what=f"tar of the {suite} tree",
        )
        part.replace(tar)
    finally:
        _unmount_under(tree, root)
        if root:
            subprocess.run([*root, "rm", "-rf", str(tree), str(part)], check=False)
        shutil.rmtree(tree, ignore_errors=True)
        part.unlink(missing_ok=True)
    return tar


def _ensure_base(engine: str, suite: str, cache: Path) -> str:
    tag = base_tag(suite)
    if _exists(engine, tag):
        return tag
    start = time.monotonic()
    log = cache / "logs" / f"base-{suite}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    tar = _rootfs_tar(suite, cache, log)
    _log(f"{suite}: docker import -> {tag}")
    _run(
        [
            engine,
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            f"LABEL {LABEL}",
            "--change",
            'CMD ["bash"]',
            str(tar),
            tag,
        ],
        log,
        what=f"docker import of {suite}",
    )
    _log(f"{suite}: base image ready in {time.monotonic() - start:.0f} s")
    return tag


def ca_bundle() -> Path:
    """The CA bundle the host's pip trusts (the TLS-intercepting proxy's CA is in it)."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(var) and Path(os.environ[var]).is_file():
            return Path(os.environ[var])
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    if default.is_file():
        return default
    raise ImageBuildError(
        "no CA bundle for the gpu-builder image's pip: set PIP_CERT to a PEM bundle"
    )


def _build(engine: str, spec: Spec, base: str, tag: str, cache: Path) -> None:
    start = time.monotonic()
    log = cache / "logs" / f"{spec.role}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    _log(f"{spec.role}: building {tag} from {spec.dockerfile} on {base} (log: {log})")
    with tempfile.TemporaryDirectory(prefix=f"context-{spec.role}-") as tmp:
        context = IMAGES_DIR
        if spec.needs_ca:  # a context of its own: the repository's stays free of certs
            context = Path(tmp)
            shutil.copy(IMAGES_DIR / spec.dockerfile, context / spec.dockerfile)
            shutil.copy(ca_bundle(), context / "ca.crt")
        _run(
            [
                engine,
                "build",
                "--tag",
                tag,
                "--build-arg",
                f"BASE={base}",
                "--label",
                LABEL,
                "--label",
                f"io.wheelhouse.test.role={spec.role}",
                "--rm",
                "--force-rm",
                "--file",
                str(context / spec.dockerfile),
                str(context),
            ],
            log,
            # the classic builder works with every client; BuildKit needs buildx with new ones
            env={"DOCKER_BUILDKIT": "0"},
            what=f"docker build of {spec.role}",
        )
    _log(f"{spec.role}: built in {time.monotonic() - start:.0f} s")


def ensure_images(engine: str) -> dict[str, str]:
    """Role -> image tag; builds only the images that are missing. Safe to call concurrently."""
    start = time.monotonic()
    engine = _check_engine(engine)
    cache = cache_root()
    tags = image_tags()
    with _locked(cache):
        missing = [s for s in SPECS if not _exists(engine, tags[s.role])]
        if not missing:
            return tags
        _log("building " + ", ".join(s.role for s in missing) + f" (cache: {cache})")
        suites = sorted({s.suite for s in missing})
        # one worker per base and per image: builds wait on their base, never on each other
        with ThreadPoolExecutor(max_workers=len(suites) + len(missing)) as pool:
            bases: dict[str, Future[str]] = {
                suite: pool.submit(_ensure_base, engine, suite, cache) for suite in suites
            }

            def make(spec: Spec) -> None:
                _build(engine, spec, bases[spec.suite].result(), tags[spec.role], cache)

            builds = [pool.submit(make, s) for s in missing]
            errors = [f.exception() for f in builds]
        failed = [e for e in errors if e is not None]
        if failed:
            raise failed[0]
    _log(f"images ready in {time.monotonic() - start:.0f} s")
    return tags


def prune(engine: str) -> list[str]:
    """Remove test images (and bases) that the current inputs no longer name."""
    engine = _check_engine(engine)
    keep = set(image_tags().values()) | {base_tag(s) for s in {x.suite for x in SPECS}}
    res = subprocess.run(
        [engine, "images", "--filter", f"label={LABEL}", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = [r for r in res.stdout.split() if r.startswith(REPO_PREFIX + "/") and r not in keep]
    for ref in stale:
        _log(f"removing stale {ref}")
        subprocess.run([engine, "rmi", ref], capture_output=True, check=False)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        default=os.environ.get("WHEELHOUSE_TEST_ENGINE") or default_engine(),
        help="container engine binary (default: $WHEELHOUSE_TEST_ENGINE, else /usr/bin/docker)",
    )
    parser.add_argument(
        "--prune", action="store_true", help="also remove test images of older inputs"
    )
    args = parser.parse_args(argv)
    try:
        tags = ensure_images(args.engine)
        if args.prune:
            prune(args.engine)
    except ImageBuildError as e:
        print(f"test-images: {e}", file=sys.stderr)
        return 1
    print(json.dumps(tags, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
