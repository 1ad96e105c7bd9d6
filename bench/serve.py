#!/usr/bin/env python3
"""Benchmark `wheelhouse serve` against pypiserver, with nginx as the ceiling.

One tree for all three: the corpus of bench/index.py (default 3,000 small valid wheels
over 600 projects) plus one 16 MiB wheel, indexed once by `wheelhouse index` (untimed):

  wheelhouse  wheelhouse serve --target bench --workers N --no-access-log (uvicorn,
              httptools, uvloop; the page cache warmed by one pass over the pages)
  pypiserver  pypi-server run --backend cached-dir --server auto (which picks waitress,
              installed with it) over the same folder of wheels (from PyPI, in a venv of
              its own; --tools-venv reuses one)
  nginx       the static tree wheelhouse index wrote: /bench/simple/<p>/index.html, the
              wheels beside it; worker_processes N, sendfile, access_log off

All three run at once (each idle while another is measured), warmed up first. Load: wrk
(the same threads, connections and duration for all three), two runs per server and round
(rounds rotate the order; the median of --repeat rounds counts):

  pages  GET /simple/<project>/ (nginx: /bench/simple/<project>/) round-robin over every
         project, with pip's Accept header: requests/second
  file   GET of the 16 MiB wheel: MB/s

wheelhouse runs with every limit on (its defaults: head size and time, idle time, the
connection cap; uploads on, so the password gate and its rate limit too). Then, while
200 idle connections are held open (reopened as the server closes them) and 4 threads
flood it with bad-password uploads, its pages are measured again (wrk's p99).

Goals, printed at the end: wheelhouse >= 10x pypiserver, >= 0.5x nginx on pages and
>= 0.7x nginx on the file; page p99 <= 50 ms under that attack.
Missing nginx or wrk are installed with apt-get (needs root). Exit status 0 unless a tool
fails: this is a benchmark, not a test.
Usage: python bench/serve.py -h
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

from _install import install_wheelhouse  # bench/ is on sys.path: this script's folder
from index import clone, make_corpus, project_name

REPO = Path(__file__).resolve().parent.parent
TARGET = "bench"
PYPISERVER = ("pypiserver[cache]==2.4.2", "waitress==3.0.2")
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
GOAL_PYPISERVER = 10.0
GOAL_NGINX = 0.5  # pages
GOAL_NGINX_FILE = 0.7
GOAL_P99_MS = 50.0  # page p99 with 200 idle connections and a bad-password flood
BIG = "bigwheel-1.0-py3-none-any.whl"


def need(tool: str, package: str) -> str:
    sbin = Path(f"/usr/sbin/{tool}")
    found = shutil.which(tool) or (str(sbin) if sbin.exists() else None)
    if found:
        return found
    print(f"setup:       apt-get install {package} (untimed) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which(tool) or f"/usr/sbin/{tool}"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"the server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer within {timeout} s")


def big_wheel(folder: Path, size: int) -> None:
    """A valid wheel of `size` bytes of stored (incompressible) data."""
    info = "bigwheel-1.0.dist-info"
    with zipfile.ZipFile(folder / BIG, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: bigwheel\nVersion: 1.0\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr("bigwheel/data.bin", os.urandom(size))
        zf.writestr(f"{info}/RECORD", "")


def tools_venv(path: Path) -> Path:
    py = path / "bin" / "python"
    ok = (
        py.exists()
        and subprocess.run(
            [str(py), "-c", "import pypiserver, waitress"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not ok:
        print(f"setup:       pip install {' '.join(PYPISERVER)} (untimed) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PYPISERVER], check=True)
    return path


def wrk(wrk_bin: str, url: str, args: argparse.Namespace, script: Path | None) -> dict[str, float]:
    argv = [
        wrk_bin,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "-H",
        f"Accept: {PIP_ACCEPT}",
        "--timeout",
        "30s",
        "--latency",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=args.duration + 60
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    transfer = re.search(r"Transfer/sec:\s+([0-9.]+)([KMG]?B)", out)
    scale = {"B": 1e-6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}
    mbps = float(transfer.group(1)) * scale[transfer.group(2)] if transfer else 0.0
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)\b", out)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    p99_ms = float(p99.group(1)) * unit[p99.group(2)] if p99 else 0.0
    return {"rps": rps, "mbps": mbps, "errors": float(errors), "p99_ms": p99_ms}


class Attack:
    """What issue 17 found hurting everyone else: `idle` connections held open (each
    reopened as soon as the server closes it) and a flood of uploads with a bad password
    from `flooders` threads, against one server, until stop()."""

    def __init__(self, port: int, idle: int, flooders: int) -> None:
        import threading

        self.port = port
        self.done = threading.Event()
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.threads = [threading.Thread(target=self._hold, args=(idle,), daemon=True)]
        self.threads += [threading.Thread(target=self._flood, daemon=True) for _ in range(flooders)]
        for t in self.threads:
            t.start()

    def _hold(self, count: int) -> None:
        import select

        socks: list[socket.socket] = []
        while not self.done.is_set():
            while len(socks) < count:
                try:
                    socks.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))
                except OSError:
                    break
            readable, _, _ = select.select(socks, [], [], 0.2)
            for s in readable:  # the server closed it (idle timeout): open another
                s.close()
                socks.remove(s)
        for s in socks:
            s.close()

    def _flood(self) -> None:
        import base64
        import http.client

        auth = "Basic " + base64.b64encode(b"ci:not-the-password").decode()
        body = (
            b'--b\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n--b--\r\n'
        )
        headers = {"Authorization": auth, "Content-Type": "multipart/form-data; boundary=b"}
        while not self.done.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("POST", f"/{TARGET}/", body=body, headers=headers)
                status = conn.getresponse().status
                self.statuses[status] = self.statuses.get(status, 0) + 1
            except OSError:
                self.statuses[0] = self.statuses.get(0, 0) + 1
            finally:
                conn.close()

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join(timeout=30)


def rotate_script(path: Path, prefix: str, projects: list[str]) -> Path:
    """A wrk script: each request the next project's page."""
    names = ", ".join(f'"{p}"' for p in projects)
    path.write_text(
        f"local names = {{{names}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #names + 1\n"
        f'  return wrk.format("GET", "{prefix}" .. names[i] .. "/")\nend\n'
    )
    return path


def nginx_conf(work: Path, root: Path, port: int, workers: int) -> Path:
    conf = work / "nginx.conf"
    conf.write_text(
        f"""worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ text/html html; application/json json; application/zip whl; }}
    default_type application/octet-stream;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    open_file_cache max=10000 inactive=60s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index index.html;
    }}
}}
"""
    )
    (work / "nginx-tmp").mkdir(exist_ok=True)
    return conf


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=600)
    parser.add_argument("--versions", type=int, default=5, help="wheels per project")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the median counts)")
    parser.add_argument("--big-mb", type=int, default=16, help="size of the file downloaded")
    parser.add_argument(
        "--access-log", action="store_true", help="wheelhouse writes its access log (to /dev/null)"
    )
    parser.add_argument("--tools-venv", type=Path, help="a venv to install/reuse pypiserver in")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    nginx_bin = need("nginx", "nginx-light")
    wrk_bin = need("wrk", "wrk")
    work = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-serve-"))
    work.chmod(0o755)  # nginx's workers run as another user (www-data) when started as root
    procs: list[subprocess.Popen[bytes]] = []
    try:
        venv = tools_venv(args.tools_venv or work / "tools-venv")
        wheelhouse = install_wheelhouse(work, extras="serve")
        corpus = work / "corpus"
        names = make_corpus(corpus, args.projects, args.versions)
        big_wheel(corpus, args.big_mb << 20)
        project = work / "project"
        project.mkdir()
        (project / "wheelhouse.toml").write_text(
            f'output = "out"\ndefault-targets = ["{TARGET}"]\n\n'
            f'[targets.{TARGET}]\nextends = "slim"\n'
        )
        clone(corpus, project / "out" / TARGET)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELHOUSE_"))}
        env["WHEELHOUSE_CACHE_DIR"] = str(work / "cache")
        subprocess.run(
            [wheelhouse, "-C", str(project), "index", "-t", TARGET],
            env=env,
            check=True,
            capture_output=True,
        )
        print(
            f"corpus: {len(names)} wheels over {args.projects} projects + a "
            f"{args.big_mb} MiB wheel; {args.workers} workers; wrk -t{args.threads} "
            f"-c{args.connections} -d{args.duration}s"
        )
        projects = sorted(
            {re.sub(r"[-_.]+", "-", project_name(i)).lower() for i in range(args.projects)}
        )
        servers: list[tuple[str, str, str, str]] = []  # name, base, page prefix, file url
        users = work / "users.txt"
        subprocess.run(
            [wheelhouse, "serve-user", str(users), "ci", "--password-stdin"],
            input=b"the right password\n",
            env=env,
            check=True,
            capture_output=True,
        )

        # wheelhouse serve, with its default limits (head size and time, idle time,
        # connection cap) and uploads on (the password gate and its rate limit)
        port = free_port()
        wh_port = port
        procs.append(
            subprocess.Popen(
                [
                    wheelhouse,
                    "-C",
                    str(project),
                    "serve",
                    "--port",
                    str(port),
                    "--target",
                    TARGET,
                    "--workers",
                    str(args.workers),
                    "--upload",  # every limit on: the password gate too
                    "--password-file",
                    str(users),
                    *([] if args.access_log else ["--no-access-log"]),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # the access log, with --access-log
            )
        )
        base = f"http://127.0.0.1:{port}"
        servers.append(("wheelhouse", base, "/simple/", f"{base}/{BIG}"))
        # pypiserver
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    str(venv / "bin" / "pypi-server"),
                    "run",
                    "-p",
                    str(port),
                    "-i",
                    "127.0.0.1",
                    "-a",
                    ".",
                    "-P",
                    ".",
                    "--disable-fallback",
                    "--backend",
                    "cached-dir",
                    "--server",
                    "auto",
                    "--log-stream",
                    "none",
                    str(corpus),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        base = f"http://127.0.0.1:{port}"
        servers.append(("pypiserver", base, "/simple/", f"{base}/packages/{BIG}"))
        # nginx over the static tree
        port = free_port()
        conf = nginx_conf(work, project / "out", port, args.workers)
        procs.append(subprocess.Popen([nginx_bin, "-c", str(conf), "-g", "daemon off;"]))
        base = f"http://127.0.0.1:{port}"
        servers.append(("nginx", base, f"/{TARGET}/simple/", f"{base}/{TARGET}/{BIG}"))

        short = argparse.Namespace(**{**vars(args), "duration": 2})
        few = argparse.Namespace(**{**vars(args), "connections": min(args.connections, 16)})
        scripts = {}
        for name, base, prefix, _ in servers:
            scripts[name] = rotate_script(work / f"{name}.lua", prefix, projects)
            wait_for(f"{base}{prefix}{projects[0]}/")
            wrk(wrk_bin, base, short, scripts[name])  # warm-up: fills each server's caches
        # All three run side by side (idle while another is measured), in rounds whose
        # order rotates, and the median counts: other load on the machine hits all alike.
        runs: dict[str, dict[str, list[dict[str, float]]]] = {
            name: {"pages": [], "file": []} for name, *_ in servers
        }
        for r in range(args.repeat):
            for name, base, _, file_url in servers[r % 3 :] + servers[: r % 3]:
                pages = wrk(wrk_bin, base, args, scripts[name])
                files = wrk(wrk_bin, file_url, few, None)
                runs[name]["pages"].append(pages)
                runs[name]["file"].append(files)
                print(
                    f"round {r + 1}: {name:<11} pages {pages['rps']:>9.0f} req/s   file "
                    f"{files['mbps']:>8.0f} MB/s   errors {int(pages['errors'] + files['errors'])}",
                    flush=True,
                )

        def median(values: list[dict[str, float]]) -> dict[str, float]:
            return {
                k: statistics.median(v[k] for v in values)
                if k != "errors"
                else sum(v[k] for v in values)
                for k in values[0]
            }

        results = {
            name: {phase: median(v) for phase, v in per.items()} for name, per in runs.items()
        }
        # pages again while 200 idle connections and a bad-password flood hit the server
        attack = Attack(wh_port, idle=200, flooders=4)
        try:
            # the flood reaches its steady state: a few checks, then 429s (fast, many)
            deadline = time.monotonic() + 60
            while 429 not in attack.statuses and time.monotonic() < deadline:
                time.sleep(0.2)
            attacked = wrk(wrk_bin, servers[0][1], args, scripts["wheelhouse"])
        finally:
            attack.stop()
        print(
            f"under attack: wheelhouse pages {attacked['rps']:.0f} req/s, p99 "
            f"{attacked['p99_ms']:.1f} ms; flood answers {attack.statuses}"
        )
        wh, ps, ng = results["wheelhouse"], results["pypiserver"], results["nginx"]
        print()
        print(f"{'':<11} {'pages req/s':>12} {'file MB/s':>10}")
        for name, row in results.items():
            print(f"{name:<11} {row['pages']['rps']:>12.0f} {row['file']['mbps']:>10.0f}")
        vs_ps = wh["pages"]["rps"] / ps["pages"]["rps"]
        vs_ng = wh["pages"]["rps"] / ng["pages"]["rps"]
        print()
        print(
            f"wheelhouse / pypiserver: pages {vs_ps:.1f}x, file "
            f"{wh['file']['mbps'] / ps['file']['mbps']:.1f}x"
        )
        print(
            f"wheelhouse / nginx:      pages {vs_ng:.2f}x, file "
            f"{wh['file']['mbps'] / ng['file']['mbps']:.2f}x"
        )
        verdict = {True: "PASS", False: "FAIL"}
        file_ng = wh["file"]["mbps"] / ng["file"]["mbps"]
        print(
            f"goals: pages >= {GOAL_PYPISERVER:g}x pypiserver: "
            f"{verdict[vs_ps >= GOAL_PYPISERVER]}, "
            f"pages >= {GOAL_NGINX:g}x nginx: {verdict[vs_ng >= GOAL_NGINX]}, "
            f"file >= {GOAL_NGINX_FILE:g}x nginx: {verdict[file_ng >= GOAL_NGINX_FILE]}, "
            f"p99 under attack <= {GOAL_P99_MS:g} ms: "
            f"{verdict[0 < attacked['p99_ms'] <= GOAL_P99_MS]}"
        )
        errors = sum(r[k]["errors"] for r in results.values() for k in r)
        if errors:
            print(f"warning: {int(errors)} failed requests (see the per-server lines)")
        return 0
    finally:
        for proc in procs:
            stop(proc)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
