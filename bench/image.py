#!/usr/bin/env python3
"""Benchmark the final image three ways, side by side: size, build time, rebuild time.

The example app (examples/ml-app: Flask + scikit-learn + pandas) is locked and built once
with wheelhouse (untimed), then made into an image three ways from the same lock:

  single-stage   `pip install -r` (the lock, with hashes) in the full builder image, the
                 way a Dockerfile on python:3.12 usually does it; pip downloads from the
                 index during `docker build` (the host's CA bundle is copied into the
                 context for it, as a corporate TLS proxy needs)
  copy-wheels    the common multi-stage blog pattern: the wheels in a first stage, then
                 `COPY --from` them into the slim final stage, a venv with pip, `pip
                 install --no-index`, `rm -rf` the wheels (their layer stays in the image)
  uv guide       uv's Docker guide (bench/_image_rows.py): a cache mount and `uv pip install`
                 from the index; "cold" with an empty cache mount, "warm" with it filled
  wheelhouse pip `wheelhouse dockerfile --installer pip`: the wheelhouse bind-mounted for
                 one RUN, pip run from its wheel into a venv without pip, the app copied last
  wheelhouse uv  `wheelhouse dockerfile` (uv, hash-pinned, run from the mount, offline)

then a second app of generated stand-in wheels (>= 1 GB installed, on a loopback index):
one install layer vs `--layers auto`, cold, and rebuilt after one small pin is bumped
(--big-mb sets its size; 0 skips it).

Every Dockerfile copies app.py last, so all three can rebuild only the app's layer; each
builds with BuildKit (DOCKER_BUILDKIT=1) and its own `<Dockerfile>.dockerignore`. Cold
builds use `--no-cache` (the base images are present); then app.py changes (a comment line
is appended) and each image is rebuilt, --repeat times, the median counts. The figures:
build times, the image's size and its size over the slim base, the steps a rebuild ran,
and what `wheelhouse image-report` finds (wheel files and compilers in the image).

Here the test images of scripts/test_images.py (built from Debian packages; no registry is
reachable) play python:3.12 and python:3.12-slim: py311-builder (python3, pip, gcc) and
py311-slim (python3 and venv, no pip). The host's Python must be 3.11 for the test images;
pass --builder-image/--final-image (and --python-version) to use others.

Measures, does not test: exit status 0 unless a tool fails. Usage: python bench/image.py -h
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _image_rows as rows

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "ml-app"
PYPI = "https://pypi.org/simple"
TIMEOUT = 3600
TARGET = "slim"
CA_IN_CONTEXT = "ca.crt"


class ToolFailed(Exception):
    pass


def run(
    argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, what: str
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if res.returncode != 0:
        tail = "\n".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-25:])
        raise ToolFailed(f"{what} failed (exit {res.returncode}):\n  $ {' '.join(argv)}\n{tail}")
    return res


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This machine's environment minus pip/uv/wheelhouse settings; pip reads no config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "WHEELHOUSE_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    env.update(extra or {})
    return env


def ca_bundle() -> Path | None:
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


# -- the three Dockerfiles -----------------------------------------------------------------


def single_stage(builder: str, index_url: str, with_ca: bool) -> tuple[str, str]:
    ca = (
        f"COPY {CA_IN_CONTEXT} /etc/ssl/certs/bench-ca.crt\n"
        "ENV PIP_CERT=/etc/ssl/certs/bench-ca.crt\n"
        if with_ca
        else ""
    )
    dockerfile = f"""\
# single-stage: pip install -r in the full Python image (it has pip and a compiler)
FROM {builder}
{ca}COPY requirements.txt /tmp/requirements.txt
RUN python3 -m pip install --no-cache-dir --break-system-packages --require-hashes \\
      --index-url {index_url} -r /tmp/requirements.txt
WORKDIR /app
COPY app.py /app/app.py
CMD ["python3", "app.py", "smoke"]
"""
    ignore = f"*\n!requirements.txt\n!app.py\n{'!' + CA_IN_CONTEXT if with_ca else ''}\n"
    return dockerfile, ignore


def copy_wheels(builder: str, final: str) -> tuple[str, str]:
    wh = f"wheelhouse/{TARGET}"
    dockerfile = f"""\
# copy-wheels: the common multi-stage pattern. The wheels are made in a first stage (here:
# copied from the wheelhouse, where blogs run `pip wheel`), copied into the final stage,
# installed, and removed: the COPY layer still carries them.
FROM {builder} AS wheels
COPY {wh}/ /wheels/

FROM {final}
COPY --from=wheels /wheels /wheels
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --require-hashes \\
      --find-links /wheels -r /wheels/lock.txt \\
 && rm -rf /wheels
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY app.py /app/app.py
CMD ["python", "app.py", "smoke"]
"""
    ignore = f"*\n!{wh}/*.whl\n!{wh}/lock.txt\n!app.py\n"
    return dockerfile, ignore


# -- one way of making the image -------------------------------------------------------------


@dataclass(kw_only=True)
class Way:
    name: str
    dockerfile: Path
    network: bool  # does its build need the network
    tag: str
    cold: float = 0.0
    rebuilds: list[float] = field(default_factory=list)
    steps_run: list[str] = field(default_factory=list)  # of the last rebuild
    steps_total: int = 0
    size: int = 0
    report: dict[str, object] = field(default_factory=dict)
    install_step: str = ""  # a string in its install RUN, for that step's seconds
    install: float = 0.0  # the install step's seconds in the cold build

    def build(self, engine: str, context: Path, *, no_cache: bool) -> float:
        argv = [engine, "build", "--progress=plain", "-f", str(self.dockerfile), "-t", self.tag]
        if not self.network:
            argv += ["--network", "none"]
        if no_cache:
            argv.append("--no-cache")
        start = time.perf_counter()
        res = run(
            [*argv, str(context)],
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            what=f"docker build ({self.name})",
        )
        seconds = time.perf_counter() - start
        self.steps_run, self.steps_total = steps_run(res.stdout + res.stderr)
        if no_cache and self.install_step:
            self.install = rows.step_seconds(res.stdout + res.stderr, self.install_step)
        return seconds


def steps_run(log: str) -> tuple[list[str], int]:
    """BuildKit's plain progress: the build steps that were not CACHED, and how many there
    were (the FROM lines excluded)."""
    names: dict[str, str] = {}
    cached: set[str] = set()
    for line in log.splitlines():
        m = re.match(r"#(\d+) \[(?:\S+ )?\d+/\d+\] (.*)$", line)
        if m:
            if not m.group(2).startswith("FROM "):
                names[m.group(1)] = " ".join(m.group(2).split())
            continue
        m = re.match(r"#(\d+) CACHED$", line)
        if m:
            cached.add(m.group(1))
    return [names[k] for k in names if k not in cached], len(names)


def image_size(engine: str, ref: str) -> int:
    res = run([engine, "image", "inspect", "--format", "{{.Size}}", ref], what="image inspect")
    return int(res.stdout.strip())


# -- the benchmark ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one script, top to bottom: set up, run each tool, print the table
    p = argparse.ArgumentParser(
        description="Build the example app's image three ways (single-stage pip, copy-wheels "
        "multi-stage, wheelhouse dockerfile): sizes, build and rebuild times."
    )
    p.add_argument(
        "--engine",
        default="/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker",
        help="docker client with BuildKit (default: /usr/bin/docker)",
    )
    p.add_argument("--index-url", default=PYPI, help=f"index for every tool (default: {PYPI})")
    p.add_argument(
        "--builder-image", default=None, help="full image (default: the py311-builder test image)"
    )
    p.add_argument(
        "--final-image", default=None, help="slim final image (default: the py311-slim test image)"
    )
    p.add_argument("--python-version", default="3.11", help="the images' Python (3.11)")
    p.add_argument(
        "--repeat", type=int, default=3, help="rebuilds after an app change, per way (default: 3)"
    )
    p.add_argument("--keep", action="store_true", help="keep the project and the images")
    p.add_argument(
        "--big-mb", type=int, default=1100, help="the stand-in app's size in MB (0: skip it)"
    )
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")

    def say(line: str = "") -> None:
        print(line, flush=True)

    work = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-image-"))
    ways: list[Way] = []
    started = time.perf_counter()
    try:
        builder, final = args.builder_image, args.final_image
        if not (builder and final):
            say(f"test images: python scripts/test_images.py --engine {args.engine} ...")
            res = run(
                [sys.executable, str(REPO / "scripts" / "test_images.py"), "--engine", args.engine],
                what="scripts/test_images.py",
            )
            images = json.loads(res.stdout)
            builder = builder or images["py311-builder"]
            final = final or images["py311-slim"]

        # -- the project, its lock and its wheelhouse (untimed) --------------------------
        project = work / "project"
        project.mkdir()
        for name in ("app.py", "requirements.in"):
            shutil.copy(EXAMPLE / name, project / name)
        (project / "wheelhouse.toml").write_text(
            f'resolver = "uv"\nengine = "{args.engine}"\ndefault-targets = ["{TARGET}"]\n\n'
            f'[index]\nindex-url = "{args.index_url}"\n\n[targets.{TARGET}]\n'
            f'python-version = "{args.python_version}"\nbuilder-image = "{builder}"\n'
            f'final-image = "{final}"\n'
        )
        env = clean_env({"WHEELHOUSE_CACHE_DIR": str(work / "cache")})
        wh = [sys.executable, "-P", "-m", "wheelhouse"]
        t0 = time.perf_counter()
        run([*wh, "lock"], cwd=project, env=env, what="wheelhouse lock")
        t1 = time.perf_counter()
        run([*wh, "build"], cwd=project, env=env, what="wheelhouse build")
        t2 = time.perf_counter()
        run([*wh, "build"], cwd=project, env=env, what="wheelhouse build (warm)")
        t3 = time.perf_counter()
        run(
            [
                *wh,
                "dockerfile",
                "--target",
                TARGET,
                "--app",
                "app.py",
                "--cmd",
                "python app.py smoke",
                "--whole",
                "--install",
                "mount",
                "--output",
                "Dockerfile.wheelhouse",
            ],
            cwd=project,
            env=env,
            what="wheelhouse dockerfile",
        )
        run(
            [*wh, "dockerfile", "--target", TARGET, "--app", "app.py", "--cmd",
             "python app.py smoke", "--whole", "--install", "mount", "--installer", "pip",
             "--output", "Dockerfile.whpip"],
            cwd=project, env=env, what="wheelhouse dockerfile --installer pip",
        )  # fmt: skip
        wheels = list((project / "wheelhouse" / TARGET).glob("*.whl"))
        say(
            f"wheelhouse:  lock {t1 - t0:.1f} s, build {t2 - t1:.1f} s (cold cache), "
            f"rebuild {t3 - t2:.2f} s (warm); {len(wheels)} wheels, "
            f"{sum(w.stat().st_size for w in wheels) / 1e6:.1f} MB (untimed below)"
        )

        shutil.copy(project / "locks" / f"{TARGET}.txt", project / "requirements.txt")
        ca = ca_bundle()
        if ca:
            shutil.copy(ca, project / CA_IN_CONTEXT)
        suffix = os.urandom(4).hex()
        shutil.copy(project / "wheelhouse" / TARGET / ".tools" / "uv", project / "uv")
        for name, (text, ignore) in (
            ("single", single_stage(builder, args.index_url, ca is not None)),
            ("copy", copy_wheels(builder, final)),
            ("uvguide", rows.uv_guide(final, args.index_url, ca is not None, f"bench-{suffix}")),
        ):
            (project / f"Dockerfile.{name}").write_text(text)
            (project / f"Dockerfile.{name}.dockerignore").write_text(ignore)

        ways = [
            Way(
                name="single-stage pip",
                dockerfile=project / "Dockerfile.single",
                network=True,
                tag=f"wheelhouse-bench-single:{suffix}",
                install_step="pip install",
            ),
            Way(
                name="copy-wheels",
                dockerfile=project / "Dockerfile.copy",
                network=False,
                tag=f"wheelhouse-bench-copy:{suffix}",
                install_step="pip install",
            ),
            Way(  # a fresh cache id: its cache mount starts empty
                name="uv guide cold",
                dockerfile=project / "Dockerfile.uvguide",
                network=True,
                tag=f"wheelhouse-bench-uvcold:{suffix}",
                install_step="uv venv",
            ),
            Way(  # built right after it: the same cache mount, now filled
                name="uv guide warm",
                dockerfile=project / "Dockerfile.uvguide",
                network=True,
                tag=f"wheelhouse-bench-uvwarm:{suffix}",
                install_step="uv venv",
            ),
            Way(
                name="wheelhouse pip",
                dockerfile=project / "Dockerfile.whpip",
                network=False,
                tag=f"wheelhouse-bench-whpip:{suffix}",
                install_step="-m venv",
            ),
            Way(
                name="wheelhouse uv",
                dockerfile=project / "Dockerfile.wheelhouse",
                network=False,
                tag=f"wheelhouse-bench-wheelhouse:{suffix}",
                install_step="-m venv",
            ),
        ]

        # -- cold builds ---------------------------------------------------------------
        say()
        for w in ways:
            w.cold = w.build(args.engine, project, no_cache=True)
            w.size = image_size(args.engine, w.tag)
            out = run(
                [*wh, "--engine", args.engine, "image-report", w.tag, "--json"],
                cwd=work,
                env=env,
                what=f"image-report {w.tag}",
            )
            w.report = json.loads(out.stdout)
            say(
                f"cold        {w.name:<18}{w.cold:8.2f} s   {w.size / 1e6:8.1f} MB   "
                f"install step {w.install:.2f} s"
            )
            smoke = run(
                [args.engine, "run", "--rm", "--network", "none", w.tag],
                what=f"smoke check of {w.name}",
            )
            if not smoke.stdout.startswith("smoke ok"):
                raise ToolFailed(f"{w.name}: the smoke check printed {smoke.stdout!r}")

        # -- app-only changes ------------------------------------------------------------
        for i in range(args.repeat):
            with (project / "app.py").open("a") as f:
                f.write(f"\n# app-only change {i + 1} {suffix}\n")  # unique: no cache hit
            for w in ways:  # round-robin, so noise spreads over every way
                s = w.build(args.engine, project, no_cache=False)
                w.rebuilds.append(s)
                say(
                    f"rebuild {i + 1}/{args.repeat} {w.name:<18}{s:8.2f} s   "
                    f"ran: {', '.join(x[:40] for x in w.steps_run) or '-'}"
                )

        # -- report ----------------------------------------------------------------------
        base = image_size(args.engine, final)
        say()
        say(f"app: examples/ml-app ({len(wheels)} pinned wheels)   index: {args.index_url}")
        say(f"images: full {builder}, slim {final} ({base / 1e6:.1f} MB)   engine {args.engine}")
        say()
        say(
            f"{'way':<18}{'cold s':>8}{'install s':>10}{'rebuild s':>11}{'rebuilt':>9}"
            f"{'image MB':>10}{'over slim':>11}{'wheels':>8}{'compilers':>11}"
        )
        say("-" * 96)
        for w in ways:
            findings = w.report.get("findings", [])
            assert isinstance(findings, list)
            n_wheels = sum(1 for f in findings if f["kind"] == "wheel")
            n_cc = sum(1 for f in findings if f["kind"] == "compiler")
            say(
                f"{w.name:<18}{w.cold:>8.1f}{w.install:>10.2f}"
                f"{statistics.median(w.rebuilds):>11.2f}"
                f"{len(w.steps_run):>5}/{w.steps_total:<3}{w.size / 1e6:>10.1f}"
                f"{(w.size - base) / 1e6:>11.1f}{n_wheels:>8}{n_cc:>11}"
            )
        say()
        say(
            "wheels/compilers: what `wheelhouse image-report` finds in the whole image (the "
            f"slim base itself has {_base_wheels(wh, args.engine, final, env, work)} wheel files "
            "from python3-venv, for ensurepip)"
        )
        single, copy, _, uv_warm, ours_pip, ours = ways
        say(
            f"install step: wheelhouse pip / wheelhouse uv = {ours_pip.install / ours.install:.1f}x"
            f"; cold build: uv guide warm / wheelhouse uv = {uv_warm.cold / ours.cold:.2f}x"
        )
        say(
            f"image size: single-stage / wheelhouse = {single.size / ours.size:.2f}x, "
            f"copy-wheels / wheelhouse = {copy.size / ours.size:.2f}x"
        )
        say(
            f"over the slim base: copy-wheels adds {(copy.size - ours.size) / 1e6:.1f} MB "
            "more than wheelhouse (the wheels' COPY layer, pip and setuptools in the venv)"
        )
        if args.big_mb > 0:
            say()
            rows.big_app(
                work / "big", args.engine, final, args.python_version, args.big_mb, wh,
                clean_env, run, say,
            )  # fmt: skip
        say(f"(total {time.perf_counter() - started:.0f} s)")
        if args.keep:
            say(f"kept: {work} and images {', '.join(w.tag for w in ways)}")
        return 0
    except ToolFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            for w in ways:
                subprocess.run(
                    [args.engine, "rmi", "--force", w.tag], capture_output=True, check=False
                )
            shutil.rmtree(work, ignore_errors=True)


def _base_wheels(wh: list[str], engine: str, image: str, env: dict[str, str], cwd: Path) -> int:
    out = run(
        [*wh, "--engine", engine, "image-report", image, "--json"],
        cwd=cwd,
        env=env,
        what=f"image-report {image}",
    )
    return sum(1 for f in json.loads(out.stdout)["findings"] if f["kind"] == "wheel")


if __name__ == "__main__":
    sys.exit(main())
