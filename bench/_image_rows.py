"""bench/image.py's rows for the fast and layered final stage (issue 16):

- uv's Docker-guide pattern: the uv binary copied in (the guide's `COPY --from=ghcr.io/
  astral-sh/uv /uv /bin/`: here the same static binary, from the context, as no registry
  can be reached), `RUN --mount=type=cache,target=/root/.cache/uv` + `uv pip install -r`
  the lock from the index, link mode copy; cold (a fresh cache id) and with the cache
  mount warm (the same id, `--no-cache` for the layers);
- the install step's own seconds, from BuildKit's log, for every way;
- a >= 1 GB app of generated stand-in wheels (random bytes, stored uncompressed, so
  installed = wheel bytes) on a loopback index: one layer vs `--layers auto`, cold, then
  after bumping one small pin: the rebuild's seconds and the bytes of the layers it made.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import itertools
import json
import os
import re
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CA_IN_CONTEXT = "ca.crt"


def uv_guide(final: str, index_url: str, with_ca: bool, cache_id: str) -> tuple[str, str]:
    ca = (
        f"COPY {CA_IN_CONTEXT} /etc/ssl/certs/bench-ca.crt\n"
        "ENV SSL_CERT_FILE=/etc/ssl/certs/bench-ca.crt\n"
        if with_ca
        else ""
    )
    dockerfile = f"""\
# uv's Docker guide: uv copied in, a cache mount for uv's cache, install from the index
FROM {final}
COPY uv /usr/local/bin/uv
{ca}ENV UV_LINK_MODE=copy
RUN --mount=type=cache,id={cache_id},target=/root/.cache/uv \\
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    uv venv /opt/venv --python /usr/bin/python3 \\
 && uv pip install --python /opt/venv/bin/python --index-url {index_url} \\
      --require-hashes -r /tmp/requirements.txt
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY app.py /app/app.py
CMD ["python", "app.py", "smoke"]
"""
    ignore = f"*\n!requirements.txt\n!app.py\n!uv\n{'!' + CA_IN_CONTEXT if with_ca else ''}\n"
    return dockerfile, ignore


def step_seconds(log: str, needle: str) -> float:
    """Seconds of the build steps whose command holds `needle` (BuildKit's plain log:
    "#7 [3/5] RUN ..." then "#7 DONE 12.3s"); 0.0 for a cached or missing step."""
    ids = set()
    total = 0.0
    for line in log.splitlines():
        m = re.match(r"#(\d+) \[(?:\S+ )?\d+/\d+\] (.*)$", line)
        if m and needle in m.group(2):
            ids.add(m.group(1))
            continue
        m = re.match(r"#(\d+) DONE ([0-9.]+)s$", line)
        if m and m.group(1) in ids:
            total += float(m.group(2))
    return total


# -- the big app ------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def stand_in_wheel(folder: Path, name: str, version: str, size: int) -> Path:
    """A pure wheel holding `size` random bytes (stored: installs to the same bytes)."""
    info = f"{name}-{version}.dist-info"
    files: list[tuple[str, bytes]] = [(f"{name}/__init__.py", f"V = {version!r}\n".encode())]
    chunk = 64 * 1024 * 1024
    for i in range(0, size, chunk):
        files.append((f"{name}/data{i // chunk}.bin", os.urandom(min(chunk, size - i))))
    files += [
        (f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
                          b"Tag: py3-none-any\n"),
    ]  # fmt: skip
    record = "".join(f"{p},sha256={_b64(d)},{len(d)}\n" for p, d in files) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for p, d in [*files, (f"{info}/RECORD", record.encode())]:
            zf.writestr(zipfile.ZipInfo(p, (1980, 1, 1, 0, 0, 0)), d)
    return path


def write_index(root: Path) -> None:
    """A PEP 503 index of the wheels in root/files/, with sha256 fragments."""
    by_project: dict[str, list[Path]] = {}
    for wheel in sorted((root / "files").glob("*.whl")):
        by_project.setdefault(wheel.name.split("-")[0], []).append(wheel)
    for project, wheels in by_project.items():
        links = "".join(
            f'<a href="../../files/{w.name}#sha256={_sha256(w)}">{w.name}</a>\n' for w in wheels
        )
        page = root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """root over HTTP on loopback; yields the index URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def new_layer_bytes(old: list[dict[str, object]], new: list[dict[str, object]]) -> int:
    """Bytes of the layers of `new` (image-report's layers) that `old` does not have."""
    have = {str(x["diff_id"]) for x in old}
    return sum(int(str(x["size"])) for x in new if str(x["diff_id"]) not in have)


def big_app(
    work: Path,
    engine: str,
    final: str,
    python_version: str,
    big_mb: int,
    wh: list[str],
    clean_env: Callable[[dict[str, str]], dict[str, str]],
    run: Callable[..., subprocess.CompletedProcess[str]],
    say: Callable[[str], None],
) -> None:
    """One install layer vs `--layers auto` for an app of `big_mb` MB of stand-in wheels:
    cold builds, then rebuilds after a one-pin bump of a small package."""
    files = work / "index" / "files"
    files.mkdir(parents=True)
    heavy = [(f"heavy{i}", big_mb * 1_000_000 // 4) for i in range(1, 5)]
    small = [("mid", 8_000_000), *[(f"small{i}", 20_000) for i in range(1, 9)]]
    for name, size in [*heavy, *small]:
        stand_in_wheel(files, name, "1.0", size)
    stand_in_wheel(files, "small1", "1.1", 20_000)  # the bump
    write_index(work / "index")
    # one project (build context) per way, sharing the store: BuildKit keeps one copy of
    # a context between builds, and two Dockerfiles with different ignore files taking
    # turns in one folder would make it send the 1 GB again each time
    projects = {way: work / f"project-{way}" for way in ("one", "layers")}
    env = clean_env({"WHEELHOUSE_CACHE_DIR": str(work / "cache")})
    names = [n for n, _ in [*heavy, *small]]
    tags: list[str] = []
    times: dict[str, float] = {}
    layers: dict[str, list[dict[str, object]]] = {}
    sizes: dict[str, int] = {}
    try:
        with serve(work / "index") as url:
            for project in projects.values():
                project.mkdir()
                (project / "app.py").write_text('print("smoke ok")\n')
                (project / "wheelhouse.toml").write_text(
                    f'resolver = "uv"\nengine = "{engine}"\ndefault-targets = ["slim"]\n\n'
                    f'[index]\nindex-url = "{url}"\n\n[targets.slim]\n'
                    f'python-version = "{python_version}"\nbuilder-image = "{final}"\n'
                    f'final-image = "{final}"\n'
                )
            # each way's cold build and its rebuild in a row, as a user would: another
            # project's build in between can make BuildKit send a context again
            for (way, layers_arg), (phase, pin) in itertools.product(
                (("one", "1"), ("layers", "auto")),
                (("cold", "small1==1.0"), ("bumped", "small1==1.1")),
            ):
                project = projects[way]
                reqs = [pin if n == "small1" else n for n in names]
                (project / "requirements.in").write_text("\n".join(reqs) + "\n")
                run([*wh, "lock"], cwd=project, env=env, what="wheelhouse lock (big)")
                run([*wh, "build"], cwd=project, env=env, what="wheelhouse build (big)")
                run(
                    [*wh, "dockerfile", "-t", "slim", "--app", "app.py", "--cmd",
                     "python app.py", "--whole", "--install", "mount", "--layers",
                     layers_arg, "-o", "Dockerfile"],
                    cwd=project, env=env, what="wheelhouse dockerfile (big)",
                )  # fmt: skip
                tag = f"wheelhouse-bench-big-{way}:{phase}-{os.urandom(3).hex()}"
                tags.append(tag)
                argv = [engine, "build", "--progress=plain", "--network", "none",
                        "-f", "Dockerfile", "-t", tag]  # fmt: skip
                if phase == "cold":
                    argv.append("--no-cache")
                start = time.perf_counter()
                run([*argv, "."], cwd=project, env={**os.environ, "DOCKER_BUILDKIT": "1"},
                    what=f"docker build (big, {way})")  # fmt: skip
                times[f"{phase} {way}"] = time.perf_counter() - start
                out = run([*wh, "image-report", tag, "--json"], cwd=project, env=env,
                          what="image-report (big)")  # fmt: skip
                report = json.loads(out.stdout)
                layers[f"{phase} {way}"] = report["layers"]
                sizes[f"{phase} {way}"] = int(report["size"])
    finally:
        for tag in tags:
            subprocess.run([engine, "rmi", "--force", tag], capture_output=True, check=False)
    installed = sum(s for _, s in [*heavy, *small]) / 1e6
    say(f"big app: {len(names)} stand-in wheels, {installed:.0f} MB installed; one pin "
        "(small1, 20 kB) bumped 1.0 -> 1.1")  # fmt: skip
    say(f"{'way':<14}{'cold s':>8}{'bump rebuild s':>16}{'rebuild/cold':>14}"
        f"{'changed MB':>12}{'changed/image':>15}")  # fmt: skip
    say("-" * 79)
    for way, label in (("one", "one layer"), ("layers", "layers auto")):
        cold, bumped = times[f"cold {way}"], times[f"bumped {way}"]
        changed = new_layer_bytes(layers[f"cold {way}"], layers[f"bumped {way}"])
        size = sizes[f"bumped {way}"]
        say(f"{label:<14}{cold:>8.1f}{bumped:>16.2f}{bumped / cold:>13.1%}"
            f"{changed / 1e6:>12.1f}{changed / size:>14.2%}")  # fmt: skip
