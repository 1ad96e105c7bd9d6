#!/usr/bin/env python3
"""Benchmark discovery of system packages: the corpus built from source with zero config.

For each package of tests/fixtures/sysdeps-corpus.toml (real sdists that need system
libraries or tools, with no recipe here), side by side:

  wheelhouse   `wheelhouse lock` + `wheelhouse build` in a fresh project with no recipe
               (one cache for the whole run: the lookup image, the Contents indices and
               the builder images are shared, as on a user's machine)
  pip wheel    what a user would otherwise run: `pip wheel --no-deps --no-binary NAME`
               in the same builder image (Dockerfile.builder on the target's base, no
               recipe's packages), with the network for pip (build requirements)

and prints per package: built with zero config (yes/no) by each, the discovery rounds,
the packages learned, the time, and the runtime packages found; then the zero-config rates
and their ratio. Goal: >= 90% zero-config for wheelhouse on glibc. Exit status 0 unless
the setup fails: a benchmark, not a test. Uses the Debian test images
(scripts/test_images.py). Usage: python bench/sysdeps.py [-h] [--only a,b] [--no-pip]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "sysdeps-corpus.toml"
PYPI = "https://pypi.org/simple"
TIMEOUT = 1800
GOAL = 0.9
CA = "/etc/ssl/certs/ca-certificates.crt"
# target -> (builder role, final role, python, glibc) among scripts/test_images.py's images
TARGETS = {
    "slim": ("py311-builder", "py311-slim", "3.11", "2.36"),
    "py313": ("py313-builder", "py313-builder", "3.13", "2.41"),
}


@dataclass(kw_only=True)
class Row:
    name: str
    version: str
    target: str
    found_by: str
    ok: bool = False
    rounds: int = 0
    learned: list[str] = field(default_factory=list)
    runtime: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pip_ok: bool | None = None  # None: not run
    pip_seconds: float = 0.0
    note: str = ""


def _images_module() -> ModuleType:
    path = REPO / "scripts" / "test_images.py"
    spec = importlib.util.spec_from_file_location("test_images", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "WHEELHOUSE_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        WHEELHOUSE_CACHE_DIR=str(cache),
        UV_CACHE_DIR=str(cache / "uv"),
        NO_COLOR="1",
        COLUMNS="200",
        PYTHONPATH=str(REPO),
    )
    return env


def run_wheelhouse(row: Row, work: Path, cache: Path, engine: str, images: dict[str, str]) -> None:
    builder, final, python, glibc = TARGETS[row.target]
    project = work / row.name
    project.mkdir(parents=True)
    (project / "wheelhouse.toml").write_text(
        f'resolver = "uv"\nengine = "{engine}"\ndefault-targets = ["{row.target}"]\n'
        f'[index]\nindex-url = "{PYPI}"\n[targets.{row.target}]\n'
        f'python-version = "{python}"\nlibc-version = "{glibc}"\n'
        f'builder-image = "{images[builder]}"\nfinal-image = "{images[final]}"\n'
        f'no-binary = ["{row.name}"]\n'
    )
    (project / "requirements.in").write_text(f"{row.name}=={row.version}\n")
    env = _env(cache)
    started = time.perf_counter()
    for args in (["lock"], ["build", "--no-index"]):
        res = subprocess.run(
            [sys.executable, "-P", "-m", "wheelhouse", *args],
            cwd=project, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        if res.returncode != 0:
            row.seconds = time.perf_counter() - started
            row.note = (res.stderr.strip().splitlines() or ["?"])[0][:80]
            row.rounds = len(re.findall(r"discovery round \d+", res.stderr))
            return
    row.seconds = time.perf_counter() - started
    manifest = json.loads((project / "wheelhouse" / row.target / "manifest.json").read_text())
    wheel = next(w for w in manifest["wheels"] if w["name"] == row.name)
    record = wheel["provenance"] or {}
    row.ok = wheel["source"] == "built"
    row.learned = list(record.get("learned_packages", []))
    row.runtime = list(wheel.get("runtime_packages", []))
    row.rounds = len(re.findall(r"discovery round \d+", res.stderr))


def plain_builder(engine: str, base: str) -> str:
    """Dockerfile.builder on `base` with no recipe's packages: the image a user has."""
    sys.path.insert(0, str(REPO))
    from wheelhouse.build.images import dockerfile_text
    from wheelhouse.config import load

    with tempfile.TemporaryDirectory() as d:
        text = dockerfile_text(load(Path(d)))
        (Path(d) / "Dockerfile").write_text(text)
        tag = f"wheelhouse-bench-plain:{abs(hash((text, base))) % 10**12}"
        subprocess.run(
            [engine, "build", "-q", "-t", tag, "--build-arg", f"BASE={base}", d],
            env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True, check=True,
            timeout=TIMEOUT,
        )  # fmt: skip
    return tag


def run_pip(row: Row, engine: str, image: str) -> None:
    argv = [
        engine, "run", "--rm", "-v", f"{CA}:/ca.crt:ro", "-e", "PIP_CERT=/ca.crt",
        "-e", f"PIP_INDEX_URL={PYPI}", "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1", "-e", "HOME=/tmp",
        image, "sh", "-c", 'PY=$(command -v python3 || command -v python); "$PY" -m pip wheel '
        f'--no-deps --no-binary {row.name} -w /tmp/w "{row.name}=={row.version}"',
    ]  # fmt: skip
    started = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    row.pip_seconds = time.perf_counter() - started
    row.pip_ok = res.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated package names")
    ap.add_argument("--no-pip", action="store_true", help="skip the pip wheel side")
    ap.add_argument("--engine", default="/usr/bin/docker")
    args = ap.parse_args()
    corpus: list[dict[str, Any]] = tomllib.loads(CORPUS.read_text())["package"]
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    rows = [
        Row(name=p["name"], version=p["version"], target=p.get("target", "slim"),
            found_by=p["found-by"])
        for p in corpus
        if not only or p["name"] in only
    ]  # fmt: skip
    images: dict[str, str] = _images_module().ensure_images(args.engine)
    targets = {r.target for r in rows}
    plain = (
        {}
        if args.no_pip
        else {t: plain_builder(args.engine, images[TARGETS[t][0]]) for t in targets}
    )
    with tempfile.TemporaryDirectory(prefix="bench-sysdeps-") as tmp:
        work, cache = Path(tmp) / "projects", Path(tmp) / "cache"
        for row in rows:
            run_wheelhouse(row, work, cache, args.engine, images)
            if not args.no_pip:
                run_pip(row, args.engine, plain[row.target])
            _print_row(row)
    _summary(rows, pip=not args.no_pip)
    return 0


def _print_row(r: Row) -> None:
    pip = "-" if r.pip_ok is None else ("yes" if r.pip_ok else "no") + f" {r.pip_seconds:5.1f}s"
    print(
        f"{r.name:<12} {r.target:<6} {r.found_by:<18} zero-config {'yes' if r.ok else 'no ':<3} "
        f"rounds {r.rounds}  {r.seconds:6.1f}s  learned [{' '.join(r.learned)}]  "
        f"pip wheel: {pip}  runtime [{' '.join(r.runtime[:6])}{' …' if len(r.runtime) > 6 else ''}]"
        + (f"  ({r.note})" if r.note else ""),
        flush=True,
    )


def _summary(rows: list[Row], *, pip: bool) -> None:
    glibc = list(rows)  # every target here is glibc (Debian)
    ok = sum(r.ok for r in glibc)
    rate = ok / len(glibc) if glibc else 0.0
    print(f"\nwheelhouse zero-config: {ok}/{len(glibc)} = {rate:.0%} (goal >= {GOAL:.0%})")
    print(f"wheelhouse total time: {sum(r.seconds for r in rows):.0f} s, "
          f"rounds: {sum(r.rounds for r in rows)}")  # fmt: skip
    if pip:
        pip_ok = sum(bool(r.pip_ok) for r in rows)
        print(f"pip wheel zero-config:  {pip_ok}/{len(rows)} = {pip_ok / len(rows):.0%}")
        if pip_ok:
            print(f"ratio wheelhouse / pip wheel zero-config builds: {ok / pip_ok:.1f}x")
        else:
            print(f"pip wheel built none of them: wheelhouse built {ok} more")


if __name__ == "__main__":
    sys.exit(main())
