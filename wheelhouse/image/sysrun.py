"""The final stage's RUN that installs the runtime system packages: the files
`wheelhouse dockerfile` fetched (system.py), from a bind mount with no network, apt's
lists, caches and logs in tmpfs mounts so none of them lands in the layer; else (no files
fetched: dnf images, no engine, the legacy builder) from the distro's mirror with its
cleanup, in one layer. Pure text, like stage.py, which calls it.
"""

from __future__ import annotations

SYSTEM_MOUNT = "/tmp/wheelhouse-system"


def system_lines(
    *, family: str | None, packages: tuple[str, ...], system_dir: str | None, offline: bool
) -> list[str]:
    """The stage's lines that install `packages` (checked names): from the fetched files
    in `system_dir` with no network (`offline`), else from the distro's mirror."""
    if not packages:
        return []
    if offline:
        assert system_dir is not None
        return _offline(family, packages, system_dir)
    names = " ".join(packages)
    commands = {
        "apt": (
            "apt-get update \\\n"
            " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
            f"{names} \\\n"
            " && rm -rf /var/lib/apt/lists/*"
        ),
        "apk": f"apk add --no-cache {names}",
        "dnf": f"dnf install -y --setopt=install_weak_deps=False {names} \\\n && dnf clean all",
        "microdnf": f"microdnf install -y {names} \\\n && microdnf clean all",
    }
    assert family in commands
    return [
        "# runtime system packages of the wheels built from source (apt/apk in one layer "
        "with its cleanup)",
        f"RUN {commands[family]}",
    ]


def _offline(family: str | None, packages: tuple[str, ...], system_dir: str) -> list[str]:
    """The fetched package files, installed from the bind mount with no network; apt's
    cache, lists and logs live in tmpfs mounts for this RUN only, so the layer holds
    the installed files and the package database, nothing else."""
    mount = f"--mount=type=bind,source={system_dir},target={SYSTEM_MOUNT}"
    if family == "apt":
        tmpfs = "".join(
            f" \\\n    --mount=type=tmpfs,target={t}"
            for t in ("/var/cache/apt", "/var/lib/apt/lists", "/var/log/apt")
        )
        run = (
            f"RUN {mount}{tmpfs} \\\n"
            "    mkdir -p /var/cache/apt/archives/partial /var/lib/apt/lists/partial \\\n"
            " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n"
            f"      -o Dpkg::Options::=--log=/dev/null {SYSTEM_MOUNT}/*.deb"
        )
    else:
        run = f"RUN {mount} \\\n    apk add --no-network --no-cache {SYSTEM_MOUNT}/*.apk"
    return [
        f"# runtime system packages ({' '.join(packages)}) and their dependencies: the distro's",
        f"# own files, fetched by `wheelhouse dockerfile` into {system_dir}/, installed offline",
        run,
    ]
