"""The files the final stage reads besides the wheelhouse, put in place on the host:
the pinned pip wheel in `<output>/<target>/.tools/` (from the store, else downloaded once
from the tools index and checked against the pin), and the app's own pure wheel in
`<output>/.app/<target>/`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from wheelhouse import process
from wheelhouse.config import Config, IndexSettings, Target
from wheelhouse.errors import BuildError, HashMismatchError, ToolError
from wheelhouse.fsutil import link_into
from wheelhouse.image.stage import (
    APP_DIR,
    CHECK_SCRIPT,
    LIBRARIES_NAME,
    PIP_FILENAME,
    PIP_SHA256,
    PIP_VERSION,
    TOOLS_DIR,
    UV_BINARY,
    UV_VERSION,
    UV_WHEELS,
    check_context_path,
)

if TYPE_CHECKING:
    from wheelhouse.store import Blob, Store


# -- the pip wheel ----------------------------------------------------------------------


def ensure_pip(
    config: Config,
    folder: Path,
    *,
    keep: tuple[str, ...] = (UV_BINARY, f".{UV_BINARY}.sha256", CHECK_SCRIPT, LIBRARIES_NAME),
) -> Path:
    """The pinned pip wheel in `<folder>/.tools/`: from the store when it is there, else
    fetched from the tools index and checked against the pinned sha256. Other files
    there but `keep` are removed."""
    from wheelhouse.store import Store

    store = Store(config.cache_dir)
    blob = store.get(PIP_SHA256) or _download(
        config, store, "pip", PIP_VERSION, PIP_FILENAME, PIP_SHA256
    )
    tools = folder / TOOLS_DIR
    tools.mkdir(parents=True, exist_ok=True)
    link_into(blob.path, tools, blob.filename)
    for old in tools.iterdir():
        if old.name not in (PIP_FILENAME, *keep) and old.is_file():
            old.unlink()
    return tools / PIP_FILENAME


def ensure_uv(config: Config, folder: Path, arch: str) -> Path | None:
    """The pinned uv binary in `<folder>/.tools/` (from its hash-pinned musllinux wheel:
    a static executable that runs on glibc and musl images alike); None when wheelhouse
    pins no uv for `arch`."""
    import zipfile

    from wheelhouse.fsutil import atomic_write
    from wheelhouse.store import Store

    if arch not in UV_WHEELS:
        return None
    filename, sha256 = UV_WHEELS[arch]
    dest = folder / TOOLS_DIR / UV_BINARY
    stamp = folder / TOOLS_DIR / f".{UV_BINARY}.sha256"
    if dest.is_file() and stamp.is_file() and stamp.read_text() == sha256:
        return dest
    store = Store(config.cache_dir)
    blob = store.get(sha256) or _download(config, store, "uv", UV_VERSION, filename, sha256)
    with zipfile.ZipFile(blob.path) as zf:
        data = zf.read(f"uv-{UV_VERSION}.data/scripts/uv")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, data, mode=0o755, durable=False)
    atomic_write(stamp, sha256, durable=False)
    return dest


def _download(
    config: Config, store: Store, project: str, version: str, filename: str, sha256: str
) -> Blob:
    from wheelhouse.simple import IndexClient, redact

    index = IndexSettings(index_url=config.tools_index_url)
    with IndexClient(ca_bundle=config.ca_bundle, cache_dir=config.cache_dir) as client:
        dists = client.release_files(index, project, version)
        dist = next((d for d in dists if d.link.filename == filename), None)
        if dist is None:
            raise ToolError(
                f"{filename} is not on the tools index {redact(config.tools_index_url)}",
                hint="set tools-index-url in wheelhouse.toml to an index that has "
                f"{project} {version} (PyPI does)",
            )
        if dist.link.sha256 not in (None, sha256):
            raise HashMismatchError(
                f"{filename}: the tools index says sha256 {dist.link.sha256}, wheelhouse "
                f"pins {sha256}",
                hint=f"the index serves another file under {project}'s name: do not use it",
            )
        have = store.get(sha256)
        if have is not None:
            return have
        tmpdir = store.tempdir("dl-")
        try:
            dest = tmpdir / filename
            client.download(dist.link, dest, expected=sha256, what=f"{project} {version}")
            return store.put(dest, filename, sha256=sha256)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


# -- the app's wheel --------------------------------------------------------------------


def build_app_wheel(config: Config, target: Target, project: Path) -> str:
    """The project's wheel, built on the host (`pip wheel --no-deps`, its build backend
    from the tools index) into `<output>/.app/<target>/`. Only a pure-Python wheel fits
    every target; a project with compiled code belongs in the requirements."""

    dest = config.output / APP_DIR / target.name
    tmp = dest.parent / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        args = [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
            "--index-url", config.tools_index_url, "--wheel-dir", str(tmp), str(project),
        ]  # fmt: skip
        res = process.run(
            args,
            env=process.tool_env(config),
            timeout=config.timeouts.build,
            limit="timeouts.build",
        )
        built = sorted(tmp.glob("*.whl"))
        if not res.ok or len(built) != 1:
            raise BuildError(
                f"cannot build a wheel of the app {config.rel(project)}:\n{res.tail(10)}",
                hint="check its pyproject.toml; its build backend comes from tools-index-url",
            )
        try:
            tags = parse_wheel_filename(built[0].name)[3]
        except InvalidWheelFilename as e:
            raise BuildError(f"the app's wheel has a bad name: {e}") from None
        if not all(t.platform == "any" for t in tags):
            raise BuildError(
                f"the app {config.rel(project)} built a platform wheel ({built[0].name}): it "
                "has compiled code, which must be built for the target, not the host",
                hint="list it in your requirements (a path or URL) so `wheelhouse build` "
                "builds it in the target's builder image",
            )
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("*.whl"):
            old.unlink()
        shutil.move(built[0], dest / built[0].name)
        return check_context_path(config.rel(dest / built[0].name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
