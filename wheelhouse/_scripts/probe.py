"""Probe an image's interpreter, libc, distro and CUDA; prints one JSON line.

Runs inside the image under its own python (3.8+, stdlib only)."""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig

MANAGERS = (
    ("apt", "/usr/bin/apt-get"),
    ("apk", "/sbin/apk"),
    ("dnf", "/usr/bin/dnf"),
    ("microdnf", "/usr/bin/microdnf"),
)


def libc() -> tuple[str, str]:
    name, version = platform.libc_ver()
    if name == "glibc":
        return name, version
    version = ""
    for ld in glob.glob("/lib/ld-musl-*.so.1"):  # musl prints its version when run
        out = subprocess.run([ld], capture_output=True, text=True).stderr
        m = re.search(r"Version\s+(\d+\.\d+)", out)
        if m:
            version = m.group(1)
    return "musl", version


def os_release() -> dict[str, str]:
    rel: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    k, _, v = line.strip().partition("=")
                    rel[k] = v.strip('"')
            break
    return rel


def main() -> None:
    name, version = libc()
    rel = os_release()
    manager = next((m for m, path in MANAGERS if os.path.exists(path)), None)
    answer = {
        "python": sys.executable,
        "python_version": platform.python_version(),
        "implementation": sys.implementation.name,
        "soabi": sysconfig.get_config_var("SOABI") or "",
        "libc": name,
        "libc_version": ".".join(version.split(".")[:2]),
        "arch": platform.machine(),
        "distro": rel.get("ID", ""),
        "distro_like": rel.get("ID_LIKE", "").split(),
        "package_manager": manager,
        "cuda": os.environ.get("CUDA_VERSION") or None,
    }
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
