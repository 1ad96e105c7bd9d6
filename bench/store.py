#!/usr/bin/env python3
"""Benchmark the shared S3 store: a second CI runner's build through the store against a
cold build, side by side in one run.

The same project and lock as bench/build.py (the example ML app plus docopt, and pyyaml
compiled from source), the Debian test images, and moto's S3 server on loopback (its own
process; `moto[server]` from the test extra):

  cold            wheelhouse build, empty cache, no store (what every runner pays without one)
  first runner    wheelhouse build, empty cache, empty bucket: builds and uploads
  second runner   wheelhouse build, empty cache, the bucket the first runner filled: every
                  file and built wheel comes from the store (the index is not asked)

Each timed run gets a fresh empty cache; the builder images exist before (an untimed
prime). Prints the medians and the ratio cold / second runner. Exit status 0 unless a
tool fails: this is a benchmark, not a test. Usage: python bench/store.py -h
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType

from _install import install_wheelhouse  # bench/ is on sys.path: this script's folder


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bb = _load("build")  # bench/build.py: the same project, lock and helpers
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if not binary:
        raise bb.ToolFailed("moto_server not found: pip install 'moto[server]' (the test extra)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise bb.ToolFailed(f"moto_server did not start: {log.read_text()[-2000:]}")


def make_bucket(url: str, name: str) -> None:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    ).create_bucket(Bucket=name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Second-runner build through the S3 store vs cold.")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each kind (default 3)")
    p.add_argument("--index-url", default=bb.PYPI, help=f"package index (default: {bb.PYPI})")
    p.add_argument(
        "--engine", default="/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = p.parse_args(argv)

    def say(line: str = "") -> None:
        print(line, flush=True)

    work = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-store-"))
    moto: subprocess.Popen[bytes] | None = None
    try:
        if bb.HOST_PY not in bb.TEST_IMAGES:
            p.error(f"run with Python {' or '.join(bb.TEST_IMAGES)} (the test images')")
        images = bb.test_images(args.engine)
        b_role, f_role, glibc = bb.TEST_IMAGES[bb.HOST_PY]
        project = work / "project"
        bb.write_project(
            project, None, bb.DEFAULT_EXTRAS, engine=args.engine, index_url=args.index_url,
            builder=images[b_role], final=images[f_role], libc_version=glibc,
            no_binary=bb.DEFAULT_NO_BINARY,
        )  # fmt: skip
        cwd = work / "cwd"
        cwd.mkdir()
        wh = [install_wheelhouse(work, extras="uv,s3"), "-C", str(project)]
        moto, url = start_moto(work / "moto.log")
        say(f"moto:        S3 server at {url} (its own process)")
        say("lock:        wheelhouse lock (untimed) ...")
        bb.run_checked(
            "wheelhouse lock", [*wh, "lock"], cwd=cwd, env=bb.wheelhouse_env(work / "lock-cache")
        )
        say("prime:       wheelhouse build in a throwaway cache, builder images (untimed) ...")
        bb.run_checked("prime", [*wh, "build"], cwd=cwd, env=bb.wheelhouse_env(work / "prime"))
        shutil.rmtree(work / "prime", ignore_errors=True)
        output = project / "wheelhouse" / bb.TARGET
        # the runners share one signing key, as a CI fleet does through its secret store:
        # each trusts the others' build records (made by `cache pubkey` in its own cache)
        bb.run_checked("key", [*wh, "cache", "pubkey"], cwd=cwd, env=bb.wheelhouse_env(work / "k"))
        signing_key = {"WHEELHOUSE_SIGNING_KEY": str(work / "k" / "keys" / "signing.key")}

        def run(label: str, cache: Path, store: str | None) -> tuple[float, dict[str, int]]:
            shutil.rmtree(output, ignore_errors=True)
            env = {**bb.wheelhouse_env(cache), **S3_ENV, **signing_key}
            argv = [*wh, *(["--store", store] if store else []), "build"]
            if store:
                argv[3:3] = ["--set", f"store.endpoint-url={url}"]
            t0 = time.perf_counter()
            bb.run_checked(label, argv, cwd=cwd, env=env)
            seconds = time.perf_counter() - t0
            sources = bb.wheelhouse_sources(output)
            say(f"{label:<30}{seconds:8.2f} s   {json.dumps(sources, sort_keys=True)}")
            return seconds, sources

        cold: list[float] = []
        first: list[float] = []
        second: list[float] = []
        second_sources: list[dict[str, int]] = []
        for i in range(args.repeat):
            bucket = f"bench-{i}-{os.getpid()}"
            make_bucket(url, bucket)
            store = f"s3://{bucket}/ci"
            cold.append(run(f"cold {i + 1}/{args.repeat}", work / f"cold-{i}", None)[0])
            first.append(run(f"first runner {i + 1}/{args.repeat}", work / f"a-{i}", store)[0])
            s, src = run(f"second runner {i + 1}/{args.repeat}", work / f"b-{i}", store)
            second.append(s)
            second_sources.append(src)
            for d in (f"cold-{i}", f"a-{i}", f"b-{i}"):
                shutil.rmtree(work / d, ignore_errors=True)
        med = statistics.median
        say()
        say(f"{'':<34}{'median s':>10}{'min s':>8}{'max s':>8}")
        for name, times in (
            ("cold (no store)", cold),
            ("first runner (uploads)", first),
            ("second runner (from the store)", second),
        ):
            say(f"{name:<34}{med(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}")
        say()
        if any(s.get("built") or s.get("downloaded") for s in second_sources):
            say(f"warning: a second runner built or downloaded: {second_sources}")
        say(f"cold / second runner         = {med(cold) / med(second):6.2f}x")
        say(f"first runner / cold          = {med(first) / med(cold):6.2f}x (the upload's cost)")
        return 0
    except bb.ToolFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if moto is not None:
            moto.send_signal(signal.SIGTERM)
            moto.wait(timeout=10)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
