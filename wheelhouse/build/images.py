"""A target's builder images: the base image probed once, and the images made from
Dockerfile.builder plus the system packages a recipe names, tagged by a content hash."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

from wheelhouse.config import Config, Target
from wheelhouse.engine import Engine, EngineTimeoutError, ImageInfo, NoPythonError
from wheelhouse.errors import BuildError, ConfigError, EngineError, not_utf8
from wheelhouse.recipes import Recipe
from wheelhouse.store import Store


def dockerfile_text(config: Config) -> str:
    """The project's own Dockerfile.builder overrides the shipped one."""
    own = config.root / "Dockerfile.builder"
    if own.is_file():
        try:
            return own.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise not_utf8(config.rel(own), e, ConfigError) from None
    # a plain file in the package, as _scripts' are (importlib.resources would cost a warm
    # build more to import than this read)
    shipped = Path(__file__).parent.parent / "_data" / "Dockerfile.builder"
    return shipped.read_text(encoding="utf-8")


def cuda_fits(builder: str, target: str) -> bool:
    """CUDA's minor version compatibility: what a toolkit X.m builds runs on every X.n
    runtime with n >= m (same soname, libcudart.so.X), not on another major version."""
    b = re.match(r"(\d+)\.(\d+)", builder)
    t = re.match(r"(\d+)\.(\d+)", target)
    if not b or not t:
        return False
    return b[1] == t[1] and int(b[2]) <= int(t[2])


class BuilderImages:
    """The builder images of one target. Thread-safe: builds of one run share it."""

    def __init__(self, engine: Engine, config: Config, target: Target, store: Store) -> None:
        self.engine = engine
        self.target = target
        self.store = store
        self.dockerfile = dockerfile_text(config)
        self._base: tuple[str, ImageInfo] | None = None
        self._lock = threading.Lock()
        self._image_guard = threading.Lock()  # base() holds _lock while it builds an image
        self._image_locks: dict[str, threading.Lock] = {}

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

    @property
    def info(self) -> ImageInfo:
        return self.base()[1]

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
        return self.info.package_manager or "none"

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

    def ensure(self, recipe: Recipe | None) -> str:
        """The builder image for this recipe, built when the engine does not have it."""
        packages = " ".join(sorted(recipe.build_for(self.family))) if recipe else ""
        try:
            return self._ensure(
                self.tag_for(recipe),
                packages if self.family == "apt" else "",
                packages if self.family == "apk" else "",
            )
        except EngineTimeoutError:
            raise  # names its timeouts key
        except EngineError as e:
            if recipe is None or not packages:
                raise
            raise EngineError(
                f"{recipe.source}: {e.message}",
                hint=f"check build.{self.family} in {recipe.source} ({packages}); {e.hint}",
            ) from None

    def _ensure(self, tag: str, apt: str, apk: str) -> str:
        with self._image_guard:
            lock = self._image_locks.setdefault(tag, threading.Lock())
        with lock, self.store.lock("image-" + tag.replace(":", "-")):
            if not self.engine.has_image(tag):
                log = self.store.root / "logs" / f"image-{tag.split(':')[1]}.log"
                try:
                    self.engine.build_image(
                        tag,
                        self.dockerfile,
                        {
                            "BASE": self.target.builder_image,
                            "APT_PACKAGES": apt,
                            "APK_PACKAGES": apk,
                        },
                        log,
                    )
                except EngineTimeoutError:
                    raise
                except EngineError as e:
                    # discovery's log reader loads only when an image build fails
                    from wheelhouse.build.provides import package_errors

                    said = package_errors(log.read_text()) if log.is_file() else ""
                    if not said:
                        raise
                    # apt's / apk's own words, not the last lines of docker's output
                    raise EngineError(
                        f"building the builder image {tag} failed:\n{said}", hint=e.hint
                    ) from None
        return tag
