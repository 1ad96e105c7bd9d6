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
    PIP_FILENAME,
    PIP_SHA256,
    PIP_VERSION,
    TOOLS_DIR,
    check_context_path,
)

if TYPE_CHECKING:
    from wheelhouse.store import Blob, Store


# -- the pip wheel ----------------------------------------------------------------------


def ensure_pip(config: Config, folder: Path) -> Path:
    """The pinned pip wheel in `<folder>/.tools/`: from the store when it is there, else
    fetched from the tools index and checked against the pinned sha256."""
    from wheelhouse.store import Store

    store = Store(config.cache_dir)
    blob = store.get(PIP_SHA256) or _download_pip(config, store)
    tools = folder / TOOLS_DIR
    tools.mkdir(parents=True, exist_ok=True)
    link_into(blob.path, tools, blob.filename)
    for old in tools.iterdir():
        if old.name != PIP_FILENAME and old.is_file():
            old.unlink()
    return tools / PIP_FILENAME


def _download_pip(config: Config, store: Store) -> Blob:
    from wheelhouse.simple import IndexClient, redact

    index = IndexSettings(index_url=config.tools_index_url)
    with IndexClient(ca_bundle=config.ca_bundle, cache_dir=config.cache_dir) as client:
        dists = client.release_files(index, "pip", PIP_VERSION)
        dist = next((d for d in dists if d.link.filename == PIP_FILENAME), None)
        if dist is None:
            raise ToolError(
                f"{PIP_FILENAME} is not on the tools index {redact(config.tools_index_url)}",
                hint="set tools-index-url in wheelhouse.toml to an index that has pip "
                f"{PIP_VERSION} (PyPI does)",
            )
        if dist.link.sha256 not in (None, PIP_SHA256):
            raise HashMismatchError(
                f"{PIP_FILENAME}: the tools index says sha256 {dist.link.sha256}, wheelhouse "
                f"pins {PIP_SHA256}",
                hint="the index serves another file under pip's name: do not use it",
            )
        have = store.get(PIP_SHA256)
        if have is not None:
            return have
        tmpdir = store.tempdir("dl-")
        try:
            dest = tmpdir / PIP_FILENAME
            client.download(dist.link, dest, expected=PIP_SHA256, what=f"pip {PIP_VERSION}")
            return store.put(dest, PIP_FILENAME, sha256=PIP_SHA256)
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
