"""Which of the sonames the wheels need does this image lack, and which of its distro's
packages provides each. Prints the names of the packages to fetch (one line) and writes
the findings as JSON to $WHEELHOUSE_SONAMES_OUT.

Input ($WHEELHOUSE_SONAMES): {"soname": ["candidate package", ...], ...}. A candidate is
chosen when the package manager knows it (`apt-cache show`; apk resolves `so:` names
itself). Runs inside the final image under its own python (3.8+, stdlib only), after
`apt-get update`, in a throwaway container.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess

DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")


def known_libraries() -> set[str]:
    """The sonames the dynamic loader finds: ldconfig's cache (glibc), else the
    standard folders and musl's path file."""
    names = set()
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=60).stdout
        for line in out.splitlines()[1:]:
            names.add(line.strip().split(" ", 1)[0])
    except (OSError, subprocess.SubprocessError):
        pass
    dirs = list(DIRS)
    for path in glob.glob("/etc/ld-musl-*.path"):
        with open(path) as f:
            dirs += f.read().replace(":", "\n").split()
    for folder in dirs:
        for path in glob.glob(os.path.join(folder, "*.so*")) + glob.glob(
            os.path.join(folder, "*-linux-*", "*.so*")
        ):
            names.add(os.path.basename(path))
    return names


def package_known(name: str) -> bool:
    if name.startswith("so:"):  # apk resolves providers itself
        return True
    try:
        res = subprocess.run(
            ["apt-cache", "show", "--no-all-versions", name],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0 and bool(res.stdout.strip())


def main() -> None:
    wanted = json.loads(os.environ.get("WHEELHOUSE_SONAMES", "{}"))
    have = known_libraries()
    found = {}
    for soname, candidates in sorted(wanted.items()):
        if soname in have:
            continue
        found[soname] = next((c for c in candidates if package_known(c)), None)
    with open(os.environ["WHEELHOUSE_SONAMES_OUT"], "w") as f:
        json.dump(found, f, sort_keys=True)
    print(" ".join(sorted({p for p in found.values() if p})))


if __name__ == "__main__":
    main()
