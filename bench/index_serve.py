#!/usr/bin/env python3
"""Does `wheelhouse serve` stall while `wheelhouse index` rewrites a big project's page?

One project with 2,000 versions (the wheels of bench/index.py), indexed once (untimed),
served by `wheelhouse serve --target bench`. wrk (--latency) requests that project's page
with pip's Accept header, twice for --duration seconds:

  idle       nothing else runs
  reindex    a loop adds one new version and runs `wheelhouse index -t bench` again and
             again: every run rewrites the 2,000-version page (both the target's and the
             combined index)
  small      the same loop, wrk on a one-version page no run rewrites: the share of the
             slowdown that is only the index run's CPU use (2 shared cores)

Printed: requests/second, p50 and p99 latency of each phase and the p99 ratio (goal: under
load unchanged, so near 1.0), the number of index runs, and any non-2xx responses (a page
must never be missing or half-written). Exit status 0 unless a tool fails.
Usage: python bench/index_serve.py -h
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _install import install_wheelhouse  # bench/ is on sys.path: this script's folder
from index import project_name, wheel
from serve import PIP_ACCEPT, free_port, stop, wait_for

TARGET = "bench"
MTIME = 1_700_000_000
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def latency(out: str, pct: str) -> float:
    """A percentile (ms) from wrk's --latency distribution."""
    m = re.search(rf"^\s+{pct}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
    if m is None:
        raise SystemExit(f"no {pct}% latency in wrk's output:\n{out}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def load(url: str, args: argparse.Namespace) -> dict[str, float]:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    argv += ["--latency", "-H", f"Accept: {PIP_ACCEPT}", "--timeout", "30s", url]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=args.duration + 60
    ).stdout
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency(out, "50"),
        "p99": latency(out, "99"),
        "bad": float(bad.group(1)) if bad else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per phase")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="wheelhouse serve workers")
    parser.add_argument(
        "--wheelhouse", help="a wheelhouse command to use (default: this checkout, installed)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-index-serve-"))
    exe = args.wheelhouse.split() if args.wheelhouse else [install_wheelhouse(work, "serve")]
    project = work / "project"
    folder = project / "out" / TARGET
    folder.mkdir(parents=True)
    (project / "wheelhouse.toml").write_text(
        f'output = "out"\ndefault-targets = ["{TARGET}"]\n\n[targets.{TARGET}]\nextends = "slim"\n'
    )
    name = project_name(0)
    for v in range(args.versions):
        filename, data = wheel(name, f"1.{v}.0", v)
        (folder / filename).write_bytes(data)
        os.utime(folder / filename, (MTIME, MTIME))
    other, data = wheel(project_name(1), "1.0.0", 1)  # a small page no run rewrites
    (folder / other).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELHOUSE_"))}
    env["WHEELHOUSE_CACHE_DIR"] = str(work / "cache")
    index = [*exe, "-C", str(project), "index", "-t", TARGET]
    subprocess.run(index, env=env, check=True, capture_output=True)
    port = free_port()
    serve = [*exe, "-C", str(project), "serve", "--port", str(port), "--target", TARGET]
    server = subprocess.Popen(
        [*serve, "--workers", str(args.workers), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/simple/{name.lower()}/"
        wait_for(url, server)
        page = urllib.request.urlopen(url, timeout=30).read()
        print(f"{args.versions} versions: the page is {len(page) / 1024:.0f} KiB", flush=True)
        load(url, argparse.Namespace(**{**vars(args), "duration": 2}))  # warm up
        idle = load(url, args)
        stop_flag = threading.Event()
        runs: list[float] = []

        def reindex() -> None:
            v = args.versions
            while not stop_flag.is_set():
                filename, data = wheel(name, f"1.{v}.0", v)
                (folder / filename).write_bytes(data)
                start = time.perf_counter()
                subprocess.run(index, env=env, check=True, capture_output=True)
                runs.append(time.perf_counter() - start)
                v += 1

        loop = threading.Thread(target=reindex)
        loop.start()
        try:
            busy = load(url, args)
            # the same load on a page no run rewrites: what is left is CPU contention
            small = load(f"http://127.0.0.1:{port}/simple/{project_name(1).lower()}/", args)
        finally:
            stop_flag.set()
            loop.join(timeout=600)
        print(f"{'phase':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for label, res in (("idle", idle), ("reindex", busy), ("  small", small)):
            print(
                f"{label:<10} {res['rps']:>8.0f} {res['p50']:>8.2f} {res['p99']:>8.2f} "
                f"{res['bad']:>8.0f}"
            )
        mean = sum(runs) / len(runs) if runs else float("nan")
        print(f"index runs during the load: {len(runs)} (each {mean:.2f} s on average)")
        print(f"p99 under reindex / idle: {busy['p99'] / idle['p99']:.2f}x")
        return 0
    finally:
        stop(server)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
