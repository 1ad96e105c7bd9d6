#!/usr/bin/env python3
"""Benchmark `wheelhouse lock` against plain pip-compile and plain uv, side by side.

Four tools lock the same requirements input against the same index, each in its own
temporary project, isolated from this machine's pip/uv configuration:

  wheelhouse-pip     wheelhouse -C DIR --set resolver=pip lock
  wheelhouse-uv      wheelhouse -C DIR --set resolver=uv lock
  pip-compile        pip-compile --generate-hashes --allow-unsafe --strip-extras
  uv pip compile     uv pip compile --generate-hashes

wheelhouse is installed as a user has it (bench/_install.py: a venv of its own, not an
editable install), and plain uv is the uv binary of that venv, the one wheelhouse runs.
Every tool runs once to warm its caches (pip's and uv's HTTP caches, wheelhouse's cache in
a temporary WHEELHOUSE_CACHE_DIR), then the timed repeats run round-robin. Every run is a
*fresh* lock: the previous output is deleted first, so no tool gets to reuse its old pins.

Goals: plain pip-compile / wheelhouse-pip >= 5x (speed-up), wheelhouse-uv / plain uv <= 1.5x
(overhead). Exit status 0 unless a tool fails: this is a benchmark, not a test.

Only the standard library and subprocess are used. Usage: python bench/lock.py --help
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _install import install_wheelhouse  # bench/ is on sys.path: this script's folder

REPO = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = REPO / "examples" / "ml-app" / "requirements.in"
FALLBACK_INPUT = "flask\nscikit-learn\nnumpy\npandas\ngunicorn\n"
PYPI = "https://pypi.org/simple"
# the patch release too: the target is this interpreter exactly, so wheelhouse resolves on
# the host with no builder image to probe (what the bench compares is the resolvers)
HOST_PY = "{}.{}.{}".format(*sys.version_info[:3])
TIMEOUT = 1800  # seconds per run; plain pip-compile with hashes is slow, not stuck

GOAL_PIP = 5.0  # plain pip-compile / wheelhouse-pip must be at least this
GOAL_UV = 1.5  # wheelhouse-uv / plain uv must be at most this

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)
_HASH = re.compile(r"--hash[= ]sha256:[0-9a-fA-F]{64}")
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)", re.M)


class ToolFailed(Exception):
    pass


@dataclass(kw_only=True)
class Tool:
    name: str
    project: Path  # this tool's own temporary project
    output: Path  # the lock file it writes; deleted before every run
    argv: list[str]
    env: dict[str, str]
    repeats: int
    times: list[float] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)
    hashes: int = 0
    pin_sets: set[tuple[tuple[str, str], ...]] = field(default_factory=set)

    def run(self) -> float:
        if self.output.exists():
            self.output.unlink()
        start = time.perf_counter()
        try:
            res = subprocess.run(
                self.argv,
                cwd=self.project,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ToolFailed(f"{self.name}: timed out after {TIMEOUT} s") from e
        seconds = time.perf_counter() - start
        if res.returncode != 0:
            tail = "\n".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-25:])
            raise ToolFailed(
                f"{self.name} failed (exit {res.returncode}):\n  $ {' '.join(self.argv)}\n{tail}"
            )
        if not self.output.is_file():
            raise ToolFailed(f"{self.name}: exited 0 but wrote no {self.output}")
        text = self.output.read_text()
        self.pins = {_canon(m[1]): m[2] for m in _PIN.finditer(text)}
        self.hashes = len(_HASH.findall(text))
        self.pin_sets.add(tuple(sorted(self.pins.items())))
        return seconds

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def _canon(name: str) -> str:
    """PEP 503 normalisation (stdlib only)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This machine's environment minus pip/uv/wheelhouse settings; pip reads no config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "WHEELHOUSE_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(extra or {})
    return env


def uv_binary(python: str) -> str:
    """The uv that wheelhouse itself runs (the `uv` wheel's binary in `python`'s
    environment), not a shell shim."""
    res = subprocess.run(
        [python, "-c", "from uv import find_uv_bin; print(find_uv_bin())"],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode == 0 and res.stdout.strip():
        return res.stdout.strip()
    found = shutil.which("uv")
    if not found:
        raise ToolFailed("uv is not installed (pip install uv)")
    return found


def copy_input(src: Path, dest_dir: Path) -> None:
    """The input as DIR/requirements.in, plus the -r/-c files it names (relative paths)."""
    shutil.copyfile(src, dest_dir / "requirements.in")
    seen: set[Path] = {src.resolve()}
    todo = [(src.resolve(), dest_dir / "requirements.in")]
    while todo:
        path, copied = todo.pop()
        for ref in _INCLUDE.findall(path.read_text()):
            if "://" in ref or Path(ref).is_absolute():
                continue
            child = (path.parent / ref).resolve()
            if child in seen or not child.is_file():
                continue
            seen.add(child)
            target = (copied.parent / ref).resolve()
            if not target.is_relative_to(dest_dir.resolve()):
                continue  # outside the temporary project: the tool will name it as missing
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(child, target)
            todo.append((child, target))


def make_tools(
    work: Path,
    src: Path,
    index_url: str,
    wheelhouse: str,
    uv: str,
    repeat: int,
    pip_compile_repeat: int,
) -> list[Tool]:
    cache = work / "wheelhouse-cache"  # shared by both wheelhouse tools and all their runs
    cache.mkdir()
    tools = []

    def project(slug: str) -> Path:
        d = work / slug
        d.mkdir()
        copy_input(src, d)
        return d

    for backend in ("pip", "uv"):
        d = project(f"wheelhouse-{backend}")
        (d / "wheelhouse.toml").write_text(
            'inputs = ["requirements.in"]\n'
            'default-targets = ["slim"]\n\n'
            f"[index]\nindex-url = {_toml_str(index_url)}\n\n"
            f'[targets.slim]\npython-version = "{HOST_PY}"\n'
        )
        tools.append(
            Tool(
                name=f"wheelhouse-{backend}",
                project=d,
                output=d / "locks" / "slim.txt",
                argv=[
                    wheelhouse,
                    "-C",
                    str(d),
                    "--set",
                    f"resolver={backend}",
                    "lock",
                ],
                env=clean_env({"WHEELHOUSE_CACHE_DIR": str(cache)}),
                repeats=repeat,
            )
        )

    d = project("pip-compile")
    tools.append(
        Tool(
            name="pip-compile",
            project=d,
            output=d / "requirements.txt",
            argv=[
                sys.executable,
                "-m",
                "piptools",
                "compile",
                "--quiet",
                "--generate-hashes",
                "--allow-unsafe",
                "--strip-extras",
                "--index-url",
                index_url,
                "--output-file",
                "requirements.txt",
                "requirements.in",
            ],
            env=clean_env(),
            repeats=pip_compile_repeat,
        )
    )

    d = project("uv")
    tools.append(
        Tool(
            name="uv pip compile",
            project=d,
            output=d / "requirements.txt",
            argv=[
                uv,
                "pip",
                "compile",
                "--no-config",
                "--quiet",
                "--generate-hashes",
                "--python",
                sys.executable,
                "--index-url",
                index_url,
                "--output-file",
                "requirements.txt",
                "requirements.in",
            ],
            env=clean_env(),
            repeats=repeat,
        )
    )
    return tools


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bench(tools: list[Tool], say: Callable[[str], None]) -> None:
    for t in tools:
        say(f"warm-up  {t.name:<15} ...")
        say(f"         {t.name:<15} {t.run():8.2f} s (not counted)")
    rounds = max(t.repeats for t in tools)
    for i in range(rounds):  # round-robin, so network noise spreads over every tool
        for t in tools:
            if i < t.repeats:
                t.times.append(t.run())
                say(f"run {i + 1}/{t.repeats}  {t.name:<15} {t.times[-1]:8.2f} s")


def report(tools: list[Tool], src_label: str, index_url: str) -> list[str]:
    by = {t.name: t for t in tools}
    out = [
        "",
        f"input: {src_label}   index: {index_url}   python: {HOST_PY}",
        "",
        f"{'tool':<16}{'runs':>5}{'median s':>10}{'min s':>8}{'max s':>8}{'pins':>6}{'hashes':>8}",
        "-" * 61,
    ]
    for t in tools:
        out.append(
            f"{t.name:<16}{len(t.times):>5}{t.median:>10.2f}{min(t.times):>8.2f}"
            f"{max(t.times):>8.2f}{len(t.pins):>6}{t.hashes:>8}"
        )
    out.append(
        "(wheelhouse hashes only the files the target can install; the plain tools hash "
        "every file of each pin)"
    )

    # the pins: all four must agree, and each tool with itself across runs
    out.append("")
    names = sorted(set().union(*(t.pins for t in tools)))
    differ = [n for n in names if len({t.pins.get(n) for t in tools}) > 1]
    if differ:
        out.append(f"warning: the tools pinned different versions for {len(differ)} project(s):")
        for n in differ:
            out.append(f"  {n}: " + ", ".join(f"{t.name}={t.pins.get(n, '-')}" for t in tools))
    else:
        out.append(
            f"pins: all {len(tools)} tools agree on {len(names)} pins: "
            + " ".join(f"{n}=={tools[0].pins[n]}" for n in names)
        )
    for t in tools:
        if len(t.pin_sets) > 1:
            out.append(f"warning: {t.name} pinned different versions across its runs")

    pip_ratio = by["pip-compile"].median / by["wheelhouse-pip"].median
    uv_ratio = by["wheelhouse-uv"].median / by["uv pip compile"].median
    pip_ok, uv_ok = pip_ratio >= GOAL_PIP, uv_ratio <= GOAL_UV
    out += [
        "",
        f"plain pip-compile / wheelhouse-pip = {pip_ratio:6.2f}x  (goal >= {GOAL_PIP:g}x)",
        f"wheelhouse-uv / plain uv           = {uv_ratio:6.2f}x  (goal <= {GOAL_UV:g}x)",
        f"goals: pip-backend >={GOAL_PIP:g}x: {'PASS' if pip_ok else 'FAIL'}, "
        f"uv-backend <={GOAL_UV:g}x: {'PASS' if uv_ok else 'FAIL'}",
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Time wheelhouse lock (pip and uv backends) against plain pip-compile "
        "and plain uv pip compile on the same input.",
    )
    p.add_argument(
        "--input",
        type=Path,
        default=None,
        help=f"requirements input (default: {DEFAULT_INPUT.relative_to(REPO)}, "
        "else a built-in 5-package list)",
    )
    p.add_argument("--index-url", default=PYPI, help=f"index for every tool (default: {PYPI})")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per tool after the warm-up; the median counts (default: 3)",
    )
    p.add_argument(
        "--pip-compile-repeat",
        type=int,
        default=None,
        help="timed runs of plain pip-compile, which takes ~30 s each (default: --repeat)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = p.parse_args(argv)
    if args.repeat < 1 or (args.pip_compile_repeat is not None and args.pip_compile_repeat < 1):
        p.error("repeat counts must be at least 1")

    def say(line: str) -> None:
        print(line, flush=True)

    work = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-lock-"))
    try:
        if args.input is not None:
            src = args.input.resolve()
            if not src.is_file():
                p.error(f"--input {args.input}: no such file")
            label = str(args.input)
        elif DEFAULT_INPUT.is_file():
            src, label = DEFAULT_INPUT, str(DEFAULT_INPUT.relative_to(REPO))
        else:
            src = work / "fallback.in"
            src.write_text(FALLBACK_INPUT)
            label = "built-in list (" + FALLBACK_INPUT.strip().replace("\n", ", ") + ")"
            say(f"note: {DEFAULT_INPUT.relative_to(REPO)} does not exist yet; using {label}")
        wheelhouse = install_wheelhouse(work)
        tools = make_tools(
            work,
            src,
            args.index_url,
            wheelhouse,
            uv_binary(str(Path(wheelhouse).with_name("python"))),
            args.repeat,
            args.pip_compile_repeat or args.repeat,
        )
        started = time.perf_counter()
        bench(tools, say)
        for line in report(tools, label, args.index_url):
            say(line)
        say(f"(total {time.perf_counter() - started:.0f} s)")
        if args.keep:
            say(f"temporary projects kept in {work}")
        return 0
    except ToolFailed as e:
        print(f"error: {e}", file=sys.stderr)
        if args.keep:
            print(f"temporary projects kept in {work}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
