#!/usr/bin/env python3
"""Benchmark a final image on a vendor ML base, three ways side by side: image size over
the base, and lock + build time with and without a base.

The base is a stand-in vendor image made from Debian packages (no registry is reachable):
scripts/test_images.py's `mlbase` (python3 with numpy 1.26.4 and pandas 2.2.2 installed
system-wide from PyPI, and a local-version package), plus --fill distributions at local
versions no index has (dist-info only), so the base holds 150+ like a real vendor image.
The app requires pandas and flask.

  naive       `base-packages = "ignore"`: the lock pins the index's newest numpy and pandas
              and the final stage installs them again into /opt/venv (today's default on
              other tools)
  hand        the hand workaround: a constraints file from the base's `pip freeze` and the
              generated Dockerfile edited to `venv --system-site-packages` (pip then skips
              what the base already has)
  inherit     `base-packages = "inherit"` (the default when the base has packages)

Figures: each image's size over the base; what the venv holds (its files and symlinks, as
the engine counts a layer): the bytes of the packages the base lacks; the wheelhouse's
wheels; lock + build time (cold caches per way), and the ratio of inherit's to the same
requirements on the plain slim image, without a base.

Measures, does not test. Usage: python bench/base.py [--engine /usr/bin/docker] [--fill 150]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = "pandas\nflask\n"


def sh(argv: list[str], cwd: Path | None = None, stdin: str | None = None) -> str:
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, input=stdin, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
    return res.stdout


def filled_base(engine: str, base: str, fill: int) -> str:
    """`base` plus `fill` dist-info-only distributions at local versions."""
    tag = f"wheelhouse-bench/mlbase-filled:{fill}"
    lines = [f"FROM {base}", "RUN set -e; site=/usr/local/lib/python3.11/dist-packages; \\"]
    lines.append(
        f"    for i in $(seq 1 {fill}); do d=$site/vendorpkg$i-1.0+local.dist-info; mkdir $d; "
        "printf 'Metadata-Version: 2.1\\nName: vendorpkg%s\\nVersion: 1.0+local\\n' $i "
        "> $d/METADATA; done"
    )
    with tempfile.TemporaryDirectory() as ctx:
        (Path(ctx) / "Dockerfile").write_text("\n".join(lines) + "\n")
        sh([engine, "build", "-q", "-t", tag, ctx])
    return tag


def project(root: Path, engine: str, images: dict[str, str], final: str, extra: str) -> Path:
    root.mkdir(parents=True)
    (root / "requirements.in").write_text(REQUIREMENTS)
    (root / "wheelhouse.toml").write_text(
        f'resolver = "uv"\nengine = "{engine}"\ndefault-targets = ["ml"]\n'
        f'[targets.ml]\npython-version = "3.11"\nbuilder-image = "{images["py311-builder"]}"\n'
        f'final-image = "{final}"\n{extra}\n'
    )
    return root


def wheelhouse(root: Path, *args: str) -> None:
    # this checkout's wheelhouse, each way with a cold cache of its own
    env = {**os.environ, "WHEELHOUSE_CACHE_DIR": str(root / "cache"), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-P", "-m", "wheelhouse", *args]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise SystemExit(f"wheelhouse {' '.join(args)} failed:\n{res.stdout}{res.stderr}")


def lock_build(root: Path) -> float:
    start = time.monotonic()
    wheelhouse(root, "lock")
    wheelhouse(root, "build")
    return time.monotonic() - start


def image(engine: str, root: Path, tag: str, hand: bool = False) -> None:
    wheelhouse(root, "dockerfile", "--output", "Dockerfile", "--whole")
    if hand:  # the edit a user makes by hand (lost on every `wheelhouse dockerfile`)
        text = (root / "Dockerfile").read_text()
        (root / "Dockerfile").write_text(
            text.replace("venv --without-pip", "venv --without-pip --system-site-packages")
        )
    cmd = [engine, "build", "--network=none", "-q", "-f", "Dockerfile", "-t", tag, "."]
    res = subprocess.run(
        cmd, cwd=root, capture_output=True, text=True, check=False, env={"DOCKER_BUILDKIT": "1"}
    )
    if res.returncode != 0:
        raise SystemExit(f"docker build failed:\n{res.stderr[-3000:]}")


def size(engine: str, tag: str) -> int:
    return int(sh([engine, "image", "inspect", "--format", "{{.Size}}", tag]).strip())


def venv_bytes(engine: str, tag: str) -> int:
    # what the engine counts in a layer: regular files and symlinks (not directories)
    find = ["find", "/opt/venv", "(", "-type", "f", "-o", "-type", "l", ")", "-printf", "%s\n"]
    out = sh([engine, "run", "--rm", "--network", "none", tag, *find])
    return sum(int(x) for x in out.split())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", default="/usr/bin/docker")
    ap.add_argument("--fill", type=int, default=150)
    args = ap.parse_args()
    script = [sys.executable, str(REPO / "scripts" / "test_images.py"), "--engine", args.engine]
    images: dict[str, str] = json.loads(sh(script))
    base = filled_base(args.engine, images["mlbase"], args.fill)
    count = len(
        json.loads(sh([args.engine, "run", "--rm", base, "pip", "list", "--format", "json"]))
    )
    freeze = sh([args.engine, "run", "--rm", base, "pip", "freeze"])
    tags = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        ways = {
            "naive": 'base-packages = "ignore"',
            "hand": 'base-packages = "ignore"',
            "inherit": "",
        }
        times: dict[str, float] = {}
        for way, extra in ways.items():
            root = project(Path(tmp) / way, args.engine, images, base, extra)
            if way == "hand":  # pins what the index has of the base's freeze
                kept = [x for x in freeze.splitlines() if "==" in x and "+" not in x]
                (root / "constraints.txt").write_text("\n".join(kept) + "\n")
                text = (root / "wheelhouse.toml").read_text()
                (root / "wheelhouse.toml").write_text('constraints = ["constraints.txt"]\n' + text)
            times[way] = lock_build(root)
            tag = f"wheelhouse-bench/base-{way}:1"
            image(args.engine, root, tag, hand=way == "hand")
            tags.append(tag)
            wheels = sum(f.stat().st_size for f in (root / "wheelhouse/ml").glob("*.whl"))
            rows.append(
                (
                    way,
                    size(args.engine, tag) - size(args.engine, base),
                    venv_bytes(args.engine, tag),
                    wheels,
                )
            )
        # the same requirements without a base: the plain slim image
        root = project(Path(tmp) / "nobase", args.engine, images, images["py311-slim"], "")
        times["no base"] = lock_build(root)
    print(f"base: {base}, {count} distributions (pip list)")
    head = (
        f"{'over base':>12} {'venv files':>12} {'ratio':>8} {'wheelhouse':>12} {'lock+build':>11}"
    )
    print(f"{'way':<10} {head}")
    for way, over, venv, wheels in rows:
        mb = f"{over / 1e6:>10.1f} MB {venv / 1e6:>10.1f} MB {over / venv:>8.3f}"
        print(f"{way:<10} {mb} {wheels / 1e6:>9.1f} MB {times[way]:>9.1f} s")
    print(
        f"no base    lock+build {times['no base']:.1f} s; "
        f"inherit / no base = {times['inherit'] / times['no base']:.2f}x, "
        f"inherit / naive = {times['inherit'] / times['naive']:.2f}x"
    )
    for tag in tags:
        subprocess.run([args.engine, "rmi", "--force", tag], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
