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
    upstream: str | None = None  # with its credentials: never shown (see redact())
    upstream_ttl: float = DEFAULT_TTL
    cache_dir: str = ""
    ca_bundle: str | None = None
    access_log: bool = True
    # connection limits (protocol.Limits)
    max_url: int = 8 << 10
    max_head: int = 64 << 10
    max_headers: int = 100
    head_timeout: float = 10.0
    idle_timeout: float = 15.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    # password checks (auth.Gate)
    auth_threads: int = 2
    auth_failures: int = 5  # failed checks per client within auth_window ...
    auth_window: float = 60.0  # ... before it gets 429 until the oldest expires
    # upstream policy (policy.Policy)
    min_age: float = 0.0  # seconds: upstream files younger than this are hidden
    exclude_newer: str | None = None  # ISO 8601: files uploaded after it are hidden
    allow: tuple[str, ...] = ()  # upstream projects allowed (empty: all)
    deny: tuple[str, ...] = ()  # upstream projects never fetched

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        raw = json.loads(os.environ[ENV])
        for key in ("targets", "all_targets", "allow", "deny"):
            raw[key] = tuple(raw[key])
        return cls(**raw)
