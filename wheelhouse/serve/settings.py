"""What a server process needs to know, as plain data: the CLI makes it, and worker
processes (spawned by uvicorn) get it back from an environment variable as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

ENV = "WHEELHOUSE_SERVE_SETTINGS"
PYPI_SIMPLE = "https://pypi.org/simple/"
DEFAULT_MAX_UPLOAD = 512 << 20  # bytes: big CUDA wheels are hundreds of MB
DEFAULT_TTL = 600.0  # seconds an upstream page is fresh: PyPI's own simple-page max-age


@dataclass(frozen=True, kw_only=True)
class Settings:
    root: str  # the output folder: simple/ (combined) and <target>/ folders
    targets: tuple[str, ...]  # served as /<target>/
    all_targets: tuple[str, ...]  # every configured target (the combined index's folders)
    alias: str | None = None  # one --target: /simple/... and /<file> mean that target's
    combined: bool = True  # /simple/ is the combined index (no --target given)
    upload: bool = False
    password_file: str | None = None
    max_upload: int = DEFAULT_MAX_UPLOAD
    upstream: str | None = None
    upstream_ttl: float = DEFAULT_TTL
    cache_dir: str = ""
    ca_bundle: str | None = None
    access_log: bool = True

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        raw = json.loads(os.environ[ENV])
        raw["targets"] = tuple(raw["targets"])
        raw["all_targets"] = tuple(raw["all_targets"])
        return cls(**raw)
