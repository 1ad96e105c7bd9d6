#!/usr/bin/env python3
"""Benchmark `wheelhouse build` against plain `pip wheel` and `pip download`, side by side.

One temporary project, one lock (made by `wheelhouse lock`), and the same lock file handed
to every tool, isolated from this machine's pip configuration:

  cold  wheelhouse build   empty WHEELHOUSE_CACHE_DIR (and an empty pip cache for the
                           build requirements it fetches); the builder images may exist
  cold  pip wheel          pip wheel --require-hashes -r LOCK -w DIR, empty pip cache
  warm  wheelhouse build   everything cached; the output folder is deleted first, so it
                           plans and assembles wheelhouse/<target>/ again
  warm  pip wheel rerun    the same pip wheel, warm pip cache, fresh output folder
  warm  pip download       pip download --require-hashes -r LOCK -d DIR, warm pip cache

The packages named by --no-binary (default: pyyaml) are compiled from source by every tool
(the target's no-binary, pip's --no-binary), so something is really built.

Goals: pip wheel cold / wheelhouse cold > 1 (faster even with nothing cached), pip wheel
rerun / wheelhouse warm >= 20. Exit status 0 unless a tool fails: this is a benchmark, not
a test. Only the standard library and subprocess are used. Usage: python bench/build.py -h
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from _install import install_wheelhouse  # bench/ is on sys.path: this script's folder

REPO = Path(__file__).resolve().parent.parent
ML_APP_INPUT = REPO / "examples" / "ml-app" / "requirements.in"
DEFAULT_EXTRAS = ("docopt", "pyyaml")  # a sdist-only pure package, a C extension
DEFAULT_NO_BINARY = ("pyyaml",)
PYPI = "https://pypi.org/simple"
HOST_PY = f"{sys.version_info.major}.{sys.version_info.minor}"
TIMEOUT = 3600  # seconds per run
TARGET = "slim"

GOAL_COLD = 1.0  # pip wheel cold / wheelhouse cold must be more than this
GOAL_WARM = 20.0  # pip wheel rerun / wheelhouse warm must be at least this

# scripts/test_images.py roles per host Python: (builder, final, glibc of the builder)
TEST_IMAGES = {
    "3.11": ("py311-builder", "py311-slim", "2.36"),  # Debian 12
    "3.13": ("py313-builder", "py313-builder", "2.41"),  # Debian 13
}

_BUILT = re.compile(r"^Successfully built (.+)$", re.M)


def _load_lock_bench() -> ModuleType:
    """bench/lock.py's helpers (copy_input, clean_env, _canon, ToolFailed)."""
    spec = importlib.util.spec_from_file_location("bench_lock", Path(__file__).with_name("lock.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_lb = _load_lock_bench()
ToolFailed = _lb.ToolFailed
clean_env: Callable[[dict[str, str] | None], dict[str, str]] = _lb.clean_env
copy_input: Callable[[Path, Path], None] = _lb.copy_input
_canon: Callable[[str], str] = _lb._canon


def run_checked(name: str, argv: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    """Run one command; its stdout+stderr, or ToolFailed with the tail of its output."""
    try:
        res = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise ToolFailed(f"{name}: timed out after {TIMEOUT} s") from e
    if res.returncode != 0:
        tail = "\n".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-25:])
        raise ToolFailed(f"{name} failed (exit {res.returncode}):\n  $ {' '.join(argv)}\n{tail}")
    return res.stdout + res.stderr


@dataclass(kw_only=True)
class Tool:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    output: Path  # deleted before every run
    # what the run did, from its output folder / log: (files, built-from-source names)
    inspect: Callable[[Path, str], tuple[int, list[str]]]
    times: list[float] = field(default_factory=list)
    files: int = 0
    built: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def run(self) -> float:
        shutil.rmtree(self.output, ignore_errors=True)
        start = time.perf_counter()
        log = run_checked(self.name, self.argv, cwd=self.cwd, env=self.env)
        seconds = time.perf_counter() - start
        self.files, self.built = self.inspect(self.output, log)
        return seconds

    def timed(self) -> float:
        self.times.append(self.run())
        return self.times[-1]

    @property
    def median(self) -> float:
        return statistics.median(self.times)


# -- what each run did ---------------------------------------------------------------------


def inspect_wheelhouse(folder: Path, _log: str) -> tuple[int, list[str]]:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise ToolFailed(f"wheelhouse build exited 0 but wrote no {manifest}")
    wheels = json.loads(manifest.read_text())["wheels"]
    return len(wheels), sorted(w["name"] for w in wheels if w["source"] == "built")


def wheelhouse_sources(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in json.loads((folder / "manifest.json").read_text())["wheels"]:
        counts[w["source"]] = counts.get(w["source"], 0) + 1
    return counts


def inspect_pip(folder: Path, log: str) -> tuple[int, list[str]]:
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    built = [_canon(n) for m in _BUILT.findall(log) for n in m.split()]
    return len(files), sorted(built)


def compiled(folder: Path, name: str) -> bool | None:
    """Whether `name`'s wheel in `folder` holds a compiled module (None: no such wheel)."""
    for whl in folder.glob("*.whl"):
        if _canon(whl.name.split("-")[0]) == _canon(name):
            with zipfile.ZipFile(whl) as z:
                return any(n.endswith(".so") or ".so." in n for n in z.namelist())
    return None


def builder_images(engine: str) -> set[str]:
    res = subprocess.run(
        [engine, "images", "--format", "{{.Repository}}:{{.Tag}}", "wheelhouse-builder"],
        capture_output=True,
        text=True,
        check=False,
    )
    return set(res.stdout.split()) if res.returncode == 0 else set()


# -- setup -----------------------------------------------------------------------------------


def test_images(engine: str) -> dict[str, str]:
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "test_images.py"), "--engine", engine],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    if res.returncode != 0:
        tail = "\n".join(res.stderr.strip().splitlines()[-15:])
        raise ToolFailed(f"scripts/test_images.py failed (exit {res.returncode}):\n{tail}")
    images: dict[str, str] = json.loads(res.stdout)
    return images


def write_project(
    project: Path,
    src: Path | None,
    extras: tuple[str, ...],
    *,
    engine: str,
    index_url: str,
    builder: str,
    final: str,
    libc_version: str | None,
    no_binary: tuple[str, ...],
) -> None:
    project.mkdir()
    if src is not None:
        copy_input(src, project)
    else:
        (project / "requirements.in").write_text(
            ML_APP_INPUT.read_text().rstrip("\n") + "\n" + "".join(f"{e}\n" for e in extras)
        )
    lines = [
        'inputs = ["requirements.in"]',
        f"engine = {_toml_str(engine)}",
        f'default-targets = ["{TARGET}"]',
        "",
        "[index]",
        f"index-url = {_toml_str(index_url)}",
        "",
        f"[targets.{TARGET}]",
        f'python-version = "{HOST_PY}"',
        f"builder-image = {_toml_str(builder)}",
        f"final-image = {_toml_str(final)}",
    ]
    if libc_version:
        lines.append(f"libc-version = {_toml_str(libc_version)}")
    if no_binary:
        lines.append("no-binary = [" + ", ".join(_toml_str(n) for n in no_binary) + "]")
    (project / "wheelhouse.toml").write_text("\n".join(lines) + "\n")


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wheelhouse_env(cache: Path) -> dict[str, str]:
    """wheelhouse's cache, and an XDG cache for the pip it runs to fetch build requirements
    (wheelhouse strips PIP_CACHE_DIR, so pip would otherwise use this machine's pip cache)."""
    return clean_env({"WHEELHOUSE_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(cache / "xdg")})


def pip_env(cache: Path, extra: dict[str, str]) -> dict[str, str]:
    return clean_env({"PIP_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(cache / "xdg"), **extra})


# -- the benchmark ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one script, top to bottom: set up, run each tool, print the table
    p = argparse.ArgumentParser(
        description="Time wheelhouse build (cold and warm) against pip wheel and pip download "
        "on the same lock.",
    )
    p.add_argument(
        "--input",
        type=Path,
        default=None,
        help="requirements input (default: examples/ml-app/requirements.in plus "
        + " and ".join(DEFAULT_EXTRAS)
        + ")",
    )
    p.add_argument(
        "--no-binary",
        action="append",
        default=None,
        metavar="NAME",
        help="compile this package from source in every tool; repeatable or "
        f"comma-separated (default: {','.join(DEFAULT_NO_BINARY)}; '' for none)",
    )
    p.add_argument("--index-url", default=PYPI, help=f"index for every tool (default: {PYPI})")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed warm runs per tool, after one untimed warm-up (default: 3)",
    )
    p.add_argument(
        "--cold-repeat",
        type=int,
        default=1,
        help="timed cold runs per tool, each with fresh empty caches (default: 1)",
    )
    p.add_argument(
        "--engine",
        default="/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker",
        help="container engine (default: /usr/bin/docker if present)",
    )
    p.add_argument(
        "--builder-image",
        default=None,
        help="the target's builder image (default: scripts/test_images.py's image for this Python)",
    )
    p.add_argument(
        "--final-image",
        default=None,
        help="the target's final image (default: the test slim image, else the builder image)",
    )
    p.add_argument(
        "--libc-version",
        default=None,
        help="the builder image's glibc version (default: the test image's, else the "
        "built-in slim target's 2.36)",
    )
    p.add_argument(
        "--no-prime",
        action="store_true",
        help="do not make sure the builder images exist (an untimed build in a "
        "throwaway cache) before the cold runs",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary project and caches")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.cold_repeat < 1:
        p.error("repeat counts must be at least 1")
    no_binary = tuple(
        _canon(n)
        for v in (args.no_binary if args.no_binary is not None else DEFAULT_NO_BINARY)
        for n in v.split(",")
        if n.strip()
    )

    def say(line: str = "") -> None:
        print(line, flush=True)

    work = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-build-"))
    started = time.perf_counter()
    try:
        # -- images --------------------------------------------------------------------------
        libc = args.libc_version
        if args.builder_image:
            builder, final = args.builder_image, args.final_image or args.builder_image
            images_label = builder
        else:
            if HOST_PY not in TEST_IMAGES:
                p.error(
                    f"pip runs on this Python ({HOST_PY}), the target must match it: "
                    f"run with Python {' or '.join(TEST_IMAGES)}, or pass --builder-image"
                )
            say(f"test images: python scripts/test_images.py --engine {args.engine} ...")
            images = test_images(args.engine)
            b_role, f_role, glibc = TEST_IMAGES[HOST_PY]
            builder, final = images[b_role], args.final_image or images[f_role]
            libc = libc or glibc
            images_label = f"{builder} (scripts/test_images.py)"

        # -- the project and its lock ---------------------------------------------------------
        project = work / "project"
        src = args.input.resolve() if args.input else None
        if src is not None and not src.is_file():
            p.error(f"--input {args.input}: no such file")
        write_project(
            project,
            src,
            DEFAULT_EXTRAS,
            engine=args.engine,
            index_url=args.index_url,
            builder=builder,
            final=final,
            libc_version=libc,
            no_binary=no_binary,
        )
        input_label = (
            str(args.input)
            if args.input
            else f"{ML_APP_INPUT.relative_to(REPO)} + {' + '.join(DEFAULT_EXTRAS)}"
        )
        cwd = work / "cwd"  # a neutral folder, as every tool's working directory
        cwd.mkdir()
        wh = [install_wheelhouse(work), "-C", str(project)]
        say("lock:        wheelhouse lock (untimed) ...")
        t0 = time.perf_counter()
        run_checked(
            "wheelhouse lock", [*wh, "lock"], cwd=cwd, env=wheelhouse_env(work / "lock-cache")
        )
        lock_file = project / "locks" / f"{TARGET}.txt"
        lock_text = lock_file.read_text()
        pins = len(re.findall(r"^[A-Za-z0-9][^\s=]*==", lock_text, re.M))
        say(f"             {pins} pins in {time.perf_counter() - t0:.1f} s -> {lock_file.name}")
        output = project / "wheelhouse" / TARGET  # deleted before every run

        # pip: no config, explicit index, the same lock and the same source builds
        pip_extra: dict[str, str] = {}
        notes: list[str] = []
        if "pyyaml" in no_binary:
            if Path("/usr/include/yaml.h").exists():
                pip_extra["PYYAML_FORCE_LIBYAML"] = "1"  # as wheelhouse's pyyaml recipe does
            else:
                notes.append(
                    "note: no libyaml headers on this host: pip builds pyyaml "
                    "without its C extension (less work than wheelhouse does)"
                )
        nb = ["--no-binary", ",".join(no_binary)] if no_binary else []
        pip_wheel = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--require-hashes",
            "--index-url",
            args.index_url,
            *nb,
            "-r",
            str(lock_file),
            "-w",
        ]
        pip_download = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--require-hashes",
            "--index-url",
            args.index_url,
            *nb,
            "-r",
            str(lock_file),
            "-d",
        ]

        # -- prime: the builder images exist before the cold runs -------------------------
        before = builder_images(args.engine)
        if not args.no_prime:
            say("prime:       wheelhouse build in a throwaway cache (untimed) ...")
            t0 = time.perf_counter()
            run_checked(
                "wheelhouse build (prime)",
                [*wh, "build"],
                cwd=cwd,
                env=wheelhouse_env(work / "prime-cache"),
            )
            shutil.rmtree(work / "prime-cache", ignore_errors=True)
            shutil.rmtree(output, ignore_errors=True)
            made = builder_images(args.engine) - before
            say(
                f"             {time.perf_counter() - t0:.1f} s, "
                + (
                    f"built builder image(s) {', '.join(sorted(made))}"
                    if made
                    else "the builder images were already present"
                )
            )
            images_note = "builder images present before the cold runs" + (
                " (built by the untimed prime)" if made else ""
            )
        else:
            images_note = ""

        # -- cold: fresh empty caches every round, the last round's caches stay for warm -----
        say()
        cold_wh = Tool(
            name="wheelhouse build",
            argv=[*wh, "build"],
            cwd=cwd,
            env={},
            output=output,
            inspect=inspect_wheelhouse,
        )
        cold_pip = Tool(
            name="pip wheel",
            argv=[*pip_wheel, str(work / "pip-wheel-out")],
            cwd=cwd,
            env={},
            output=work / "pip-wheel-out",
            inspect=inspect_pip,
        )
        wh_cache = pip_cache = work
        for i in range(args.cold_repeat):
            for old in (wh_cache, pip_cache):
                if old != work:
                    shutil.rmtree(old, ignore_errors=True)
            wh_cache, pip_cache = work / f"wh-cache-{i}", work / f"pip-cache-{i}"
            cold_wh.env = wheelhouse_env(wh_cache)
            cold_pip.env = pip_env(pip_cache, pip_extra)
            order = [cold_wh, cold_pip] if i % 2 == 0 else [cold_pip, cold_wh]
            for t in order:  # alternate who goes first: the index's CDN warms up too
                before_run = builder_images(args.engine)
                s = t.timed()
                say(f"cold {i + 1}/{args.cold_repeat}    {t.name:<18}{s:8.2f} s")
                if t is cold_wh and builder_images(args.engine) - before_run:
                    t.notes.append(f"run {i + 1} built builder image(s)")
        cold_sources = wheelhouse_sources(output)
        cold_compiled = {n: (compiled(output, n), compiled(cold_pip.output, n)) for n in no_binary}
        wh_names = {w.name for w in output.glob("*.whl")}
        pip_names = {w.name for w in cold_pip.output.glob("*.whl")}

        # -- warm ---------------------------------------------------------------------------
        warm_wh = Tool(
            name="wheelhouse build",
            argv=cold_wh.argv,
            cwd=cwd,
            env=wheelhouse_env(wh_cache),
            output=output,
            inspect=inspect_wheelhouse,
        )
        warm_pip = Tool(
            name="pip wheel rerun",
            argv=cold_pip.argv,
            cwd=cwd,
            env=pip_env(pip_cache, pip_extra),
            output=cold_pip.output,
            inspect=inspect_pip,
        )
        dl_out = work / "pip-download-out"
        warm_dl = Tool(
            name="pip download",
            argv=[*pip_download, str(dl_out)],
            cwd=cwd,
            env=pip_env(pip_cache, pip_extra),
            output=dl_out,
            inspect=inspect_pip,
        )
        warm = [warm_wh, warm_pip, warm_dl]
        say()
        for t in warm:
            say(f"warm-up     {t.name:<18}{t.run():8.2f} s (not counted)")
        not_warm: list[str] = []
        for i in range(args.repeat):  # round-robin, so noise spreads over every tool
            for t in warm:
                s = t.timed()
                say(f"warm {i + 1}/{args.repeat}    {t.name:<18}{s:8.2f} s")
                if t is warm_wh:
                    src_counts = wheelhouse_sources(output)
                    if src_counts.get("downloaded") or src_counts.get("built"):
                        not_warm.append(f"run {i + 1}: {src_counts}")

        # -- report -------------------------------------------------------------------------
        rows = [("cold", cold_wh), ("cold", cold_pip)] + [("warm", t) for t in warm]
        say()
        say(f"input: {input_label}   index: {args.index_url}   python: {HOST_PY}")
        say(
            f"lock:  {pins} pins (wheelhouse lock), given to every tool; "
            f"compiled from source: {', '.join(no_binary) or 'nothing'}"
        )
        say(f"image: {images_label}; engine {args.engine}")
        say()
        say(
            f"{'':<6}{'tool':<18}{'runs':>5}{'median s':>10}{'min s':>8}{'max s':>8}"
            f"{'files':>7}  built from source"
        )
        say("-" * 80)
        for phase, t in rows:
            built = ", ".join(t.built) or "-"
            extra = f"  ({'; '.join(t.notes)})" if t.notes else ""
            say(
                f"{phase:<6}{t.name:<18}{len(t.times):>5}{t.median:>10.2f}{min(t.times):>8.2f}"
                f"{max(t.times):>8.2f}{t.files:>7}  {built}{extra}"
            )
        say()
        say(
            "wheelhouse cold: "
            + ", ".join(f"{v} {k}" for k, v in sorted(cold_sources.items()))
            + (f"; {images_note}" if images_note else "")
        )
        say(
            "wheelhouse warm: "
            + ", ".join(f"{v} {k}" for k, v in sorted(wheelhouse_sources(output).items()))
            + "; output folder deleted before every run"
        )
        for n, (w, pw) in cold_compiled.items():
            say(f"{n}: compiled module in the wheel: wheelhouse {_yn(w)}, pip wheel {_yn(pw)}")
        if wh_names == pip_names:
            say(f"wheels: wheelhouse and pip wheel made the same {len(wh_names)} wheel files")
        else:
            say(
                "warning: the wheel files differ: wheelhouse only "
                f"{sorted(wh_names - pip_names)}, pip wheel only {sorted(pip_names - wh_names)}"
            )
        if not_warm:
            say("warning: a warm wheelhouse run still downloaded or built: " + "; ".join(not_warm))
        for n in notes:
            say(n)

        cold_ratio = cold_pip.median / cold_wh.median
        warm_ratio = warm_pip.median / warm_wh.median
        dl_ratio = warm_dl.median / warm_wh.median
        cold_ok, warm_ok = cold_ratio > GOAL_COLD, warm_ratio >= GOAL_WARM
        say()
        say(f"pip wheel cold / wheelhouse cold   = {cold_ratio:7.2f}x  (goal > {GOAL_COLD:g}x)")
        say(f"pip wheel rerun / wheelhouse warm  = {warm_ratio:7.2f}x  (goal >= {GOAL_WARM:g}x)")
        say(f"pip download / wheelhouse warm     = {dl_ratio:7.2f}x")
        say(
            f"goals: cold >{GOAL_COLD:g}x: {'PASS' if cold_ok else 'FAIL'}, "
            f"warm >={GOAL_WARM:g}x: {'PASS' if warm_ok else 'FAIL'}"
        )
        say(f"(total {time.perf_counter() - started:.0f} s)")
        if args.keep:
            say(f"temporary project and caches kept in {work}")
        return 0
    except ToolFailed as e:
        print(f"error: {e}", file=sys.stderr)
        if args.keep:
            print(f"temporary project and caches kept in {work}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _yn(v: bool | None) -> str:
    return {True: "yes", False: "NO", None: "no wheel"}[v]


if __name__ == "__main__":
    sys.exit(main())
