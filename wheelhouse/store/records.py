"""What the store holds, as typed values: a stored file (Blob) and the provenance record
of a built wheel (BuildRecord), the one shape every module passes around and the JSON
written under store/built/, into S3 and into each manifest's `provenance`. In the store
the JSON also carries the builder's signature (store/signing.py), which the record itself
does not hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Blob:
    """A file in the store, named by its sha256 (and its real file name)."""

    sha256: str
    filename: str
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True, kw_only=True)
class SdistRef:
    filename: str
    sha256: str


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("not a list of strings")
    return tuple(value)


def _opt(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("not a string")
    return value


@dataclass(frozen=True, kw_only=True)
class BuildRecord:
    """How one wheel was built: its inputs, the images, the time and the log. The JSON
    form keeps the keys it always had (manifests and stores written before read the same)."""

    key: str  # the full key: input key + the build dependencies' hashes
    input_key: str  # what the store looks the wheel up by
    sha256: str  # the wheel's
    filename: str
    sdist: SdistRef
    target: str = ""
    cuda: str | None = None
    builder_cuda: str | None = None
    builder_image: str = ""
    builder_image_id: str = ""
    base_image: str = ""
    base_image_id: str = ""
    python: str = ""
    recipe: str | None = None
    build_requirements: tuple[str, ...] = ()
    build_dependencies: tuple[str, ...] = ()
    build_env: tuple[tuple[str, str], ...] = ()
    source_date_epoch: str = ""
    linked_libraries: tuple[str, ...] = ()
    runtime_packages: tuple[str, ...] = ()
    started: str = ""
    finished: str = ""
    log: str = ""
    wheelhouse: str = ""
    # system packages discovery added to the recipe for this build (build/discover.py)
    learned_packages: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys of a newer version, kept

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            key=self.key,
            input_key=self.input_key,
            sha256=self.sha256,
            filename=self.filename,
            sdist={"filename": self.sdist.filename, "sha256": self.sdist.sha256},
            target=self.target,
            cuda=self.cuda,
            builder_cuda=self.builder_cuda,
            builder_image=self.builder_image,
            builder_image_id=self.builder_image_id,
            base_image=self.base_image,
            base_image_id=self.base_image_id,
            python=self.python,
            recipe=self.recipe,
            build_requirements=list(self.build_requirements),
            build_dependencies=list(self.build_dependencies),
            build_env=dict(self.build_env),
            source_date_epoch=self.source_date_epoch,
            linked_libraries=list(self.linked_libraries),
            runtime_packages=list(self.runtime_packages),
            started=self.started,
            finished=self.finished,
            log=self.log,
            wheelhouse=self.wheelhouse,
        )
        if self.learned_packages:  # absent otherwise: records from before read the same
            doc["learned_packages"] = list(self.learned_packages)
        return doc

    @classmethod
    def from_json(cls, doc: object) -> BuildRecord | None:
        """None for anything that is not a record in this shape (a miss: rebuilt and
        overwritten), never a half-read record."""
        if not isinstance(doc, dict):
            return None
        try:
            sdist = doc.get("sdist") or {}
            env = doc.get("build_env") or {}
            if not isinstance(sdist, dict) or not isinstance(env, dict):
                return None
            text = {
                k: doc.get(k, "")
                for k in (
                    "key", "input_key", "sha256", "filename", "target", "builder_image",
                    "builder_image_id", "base_image", "base_image_id", "python",
                    "source_date_epoch", "started", "finished", "log", "wheelhouse",
                )
            }  # fmt: skip
            if not all(isinstance(v, str) for v in text.values()):
                return None
            if not text["sha256"] or not text["filename"]:
                return None
            # "signature": the store's envelope (store/signing.py), not the record's
            known = {*text, "sdist", "build_env", "cuda", "builder_cuda", "recipe",
                     "build_requirements", "build_dependencies", "linked_libraries",
                     "runtime_packages", "learned_packages", "signature"}  # fmt: skip
            return cls(
                **text,
                sdist=SdistRef(
                    filename=str(sdist.get("filename", "")), sha256=str(sdist.get("sha256", ""))
                ),
                cuda=_opt(doc.get("cuda")),
                builder_cuda=_opt(doc.get("builder_cuda")),
                recipe=_opt(doc.get("recipe")),
                build_requirements=_strs(doc.get("build_requirements", [])),
                build_dependencies=_strs(doc.get("build_dependencies", [])),
                build_env=tuple(sorted((str(k), str(v)) for k, v in env.items())),
                linked_libraries=_strs(doc.get("linked_libraries", [])),
                runtime_packages=_strs(doc.get("runtime_packages", [])),
                learned_packages=_strs(doc.get("learned_packages", [])),
                extra={k: v for k, v in doc.items() if k not in known},
            )
        except ValueError:
            return None


@dataclass(frozen=True, kw_only=True)
class Built:
    """A built wheel in the store and how it was made."""

    blob: Blob
    record: BuildRecord


def safe_filename(name: str) -> bool:
    """A wheel or sdist file name and nothing else (no path): what the store accepts from
    a remote object's metadata or an archive member as the name of a blob."""
    # imported here: packaging's parsers are not needed by most users of the records
    from wheelhouse.simple import parse_filename

    return "/" not in name and "\\" not in name and parse_filename(name) is not None
