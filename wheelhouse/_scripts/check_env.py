"""The final stage's last check: every extension module in the venv loads its shared
libraries. Each compiled file (`*.so`) of the environment is loaded with the dynamic
loader (ctypes, RTLD_LAZY: libraries, not symbols; no module code runs), and a library
that cannot be found fails the build with the module, the library, the distribution
that installed it and the system package that provides the library.

Runs inside the image under the venv's python (3.8+, stdlib only):
    /opt/venv/bin/python -B check_env.py [LIBRARIES_JSON]
LIBRARIES_JSON maps a soname to the distro package wheelhouse knows provides it.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import sysconfig

# glibc: "libgomp.so.1: cannot open shared object file"; musl: "Error loading shared
# library libgomp.so.1: No such file or directory"
MISSING = re.compile(
    r"(?:([^\s:]+): cannot open shared object file"
    r"|Error loading shared library ([^\s:]+): No such file)"
)


# Brought by the host at run time (the NVIDIA driver), never by the image: not missing.
HOST_PROVIDED = ("libcuda.so", "libnvidia-ml.so")


def owners(site: str) -> dict[str, str]:
    """file path -> the distribution whose RECORD lists it."""
    out: dict[str, str] = {}
    for entry in os.listdir(site):
        if not entry.endswith(".dist-info"):
            continue
        name = entry[: -len(".dist-info")].rsplit("-", 1)[0]
        try:
            with open(os.path.join(site, entry, "RECORD")) as f:
                for line in f:
                    path = line.rsplit(",", 2)[0]
                    out[os.path.normpath(os.path.join(site, path))] = name
        except OSError:
            pass
    return out


def main() -> int:
    site = sysconfig.get_paths()["platlib"]
    libraries: dict[str, str] = {}
    if len(sys.argv) > 1 and os.path.isfile(sys.argv[1]):
        with open(sys.argv[1]) as f:
            libraries = json.load(f)
    who = owners(site)
    failures = []
    checked = 0
    for folder, _, files in os.walk(site):
        for name in sorted(files):
            if not (name.endswith(".so") or ".so." in name):
                continue
            path = os.path.join(folder, name)
            checked += 1
            try:
                ctypes.CDLL(path, mode=os.RTLD_LAZY | os.RTLD_LOCAL)
            except OSError as e:
                m = MISSING.search(str(e))
                if m is None:
                    continue  # a symbol or another loader complaint: not a missing library
                lib = m.group(1) or m.group(2)
                if lib.startswith(HOST_PROVIDED):
                    continue
                failures.append((os.path.relpath(path, site), lib, who.get(path, "?")))
    for module, lib, dist in failures:
        package = libraries.get(lib)
        where = f"the system package {package}" if package else "no system package wheelhouse knows"
        print(
            f"wheelhouse: {module} (from {dist}) needs {lib}, which the image lacks "
            f"(provided by {where})",
            file=sys.stderr,
        )
    if failures:
        print(
            "wheelhouse: add the packages to the runtime packages (a recipe's [runtime]) "
            "and rerun `wheelhouse dockerfile`",
            file=sys.stderr,
        )
        return 1
    print(f"wheelhouse: {checked} compiled files load their libraries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
