"""Which distro package ships a file: the distro's own file index, read in a lookup image.

Debian/Ubuntu: the Contents indices (`apt-file`), fetched through the image's own apt
sources (the same mirror its packages come from) once, when the lookup image is built; the
lookup image is tagged by the base image's id, so the next lookup reuses it. Alpine: the
provider names of the APKINDEX (`so:libz.so.1`, `pc:zlib`, `cmd:pg_config`), refreshed
the same way; Alpine has no index of headers or of `-lX` link names, so those are not found.

The lookups themselves run offline (`--network none`) in that image. Any Debian- or
Alpine-based image will do, builder or final: `find_providers` is also how a final image's
missing sonames are mapped to the packages to install.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wheelhouse.build.discover import Need
from wheelhouse.engine import Engine, EngineTimeoutError
from wheelhouse.errors import EngineError

LOOKUP_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
USER root
RUN set -eu; \\
    if command -v apt-get >/dev/null; then \\
        apt-get update; \\
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apt-file; \\
        apt-file update || echo "apt-file update: some Contents failed; using the rest" >&2; \\
        ls /var/lib/apt/lists/ | grep -q Contents \\
            || { echo "no Contents file could be fetched" >&2; exit 1; }; \\
    elif command -v apk >/dev/null; then \\
        apk update; \\
    else \\
        echo "no apt-get or apk in ${BASE}: no package index to look in" >&2; exit 1; \\
    fi
"""

# Run in the lookup image with WHEELHOUSE_NEEDS = one "<index> <perl regex> <apk name>" a
# line. Prints "@@ <index>" then that need's candidates as "<package>: <path>" lines.
LOOKUP_SCRIPT = r"""
set -u
if command -v apt-file >/dev/null; then
    echo "@family apt"
    printf '%s\n' "$WHEELHOUSE_NEEDS" | while read -r i regex apk; do
        echo "@@ $i"
        apt-file search --regexp "$regex" 2>/dev/null | head -n 200
    done
elif [ -d /var/cache/apk ]; then
    echo "@family apk"
    for f in /var/cache/apk/APKINDEX.*.tar.gz; do tar -xzOf "$f" APKINDEX; done \
        > /tmp/index 2>/dev/null
    printf '%s\n' "$WHEELHOUSE_NEEDS" | while read -r i regex apk; do
        echo "@@ $i"
        [ "$apk" = "-" ] && continue
        awk -v want="$apk" '
            /^P:/ { pkg = substr($0, 3) }
            /^p:/ { n = split(substr($0, 3), a, " ");
                    for (k = 1; k <= n; k++) { sub(/=.*/, "", a[k]);
                        if (a[k] == want) print pkg ": " want } }
        ' /tmp/index | head -n 50
    done
else
    echo "no package index in this image" >&2; exit 3
fi
"""


def package_errors(log: str) -> str:
    """The package manager's error lines in an image build's log: apt's `E: Unable to
    locate package libfoo-dev`, apk's `ERROR: unable to select packages:` and the
    `  libfoo (no such package):` lines under it."""
    # the classic builder colours a step's stderr, in pieces ("\x1b[91mE\x1b[0m\x1b[91m: "),
    # and may run it into the stdout line before it ("Building dependency tree...E: ...")
    text = re.sub(r"\x1b\[[0-9;]*m", "", log)
    found = []
    for line in text.splitlines():
        m = _PACKAGE_ERROR.search(line)
        if m:
            found.append(m.group(1).strip())
    return "\n".join(dict.fromkeys(found))


_PACKAGE_ERROR = re.compile(r"(?:^|\.\.\.)\s*((?:E|ERROR): .*|\S+ \(no such package\).*)$")


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """One lookup's answers, and what the terminal should be told about it."""

    family: str  # "apt" / "apk"
    providers: Mapping[Need, str | None]


def path_regex(need: Need) -> str:
    """The Contents paths that satisfy `need` (a Perl regex for `apt-file --regexp`): any
    multiarch triplet, never lib32/libx32 (another architecture's)."""
    name = re.escape(need.name).replace("/", r"\/")
    if need.kind == "header":
        return rf"^/usr/include/(.+/)?{name}$"
    if need.kind == "pkgconfig":
        return rf"^/usr/(lib/([^/]+/)?|share/)pkgconfig/{name}\.pc$"
    if need.kind == "library":
        return rf"^/(usr/)?lib/([^/]+/)?lib{name}\.(so|a)$"
    if need.kind == "soname":
        return rf"^/(usr/)?lib/([^/]+/)?{name}$"
    return rf"^/(usr/)?s?bin/{name}$"


def apk_provider(need: Need) -> str | None:
    """Alpine's provider name for `need`, or None where the APKINDEX has none."""
    prefix = {"pkgconfig": "pc:", "soname": "so:", "executable": "cmd:"}.get(need.kind)
    return None if prefix is None else prefix + need.name


_TRIPLET = re.compile(r"/(lib|include)/[^/]+-linux-[^/]+/")


def best(need: Need, candidates: Sequence[tuple[str, str]]) -> str | None:
    """The package to install for `need` among (package, path) candidates: the file
    nearest the standard place (`/usr/include/lber.h` before `/usr/include/x/lber.h`),
    then a -dev package for build files, then the shorter name; never a debug package."""
    usable = [(p, f) for p, f in candidates if not p.endswith(("-dbg", "-dbgsym"))]
    if not usable:
        return None
    wants_dev = need.kind in ("header", "pkgconfig", "library")

    def rank(item: tuple[str, str]) -> tuple[int, int, int, str]:
        package, path = item
        # a multiarch folder (/usr/include/x86_64-linux-gnu/) is the standard place too
        depth = path.count("/") - (1 if _TRIPLET.search(path) else 0)
        dev = 0 if (package.endswith("-dev") or not wants_dev) else 1
        return (depth, dev, len(package), package)

    return min(usable, key=rank)[0]


def parse_answer(text: str, needs: Sequence[Need]) -> Lookup:
    """LOOKUP_SCRIPT's output -> the best package per need (None: nothing ships it)."""
    family = ""
    found: dict[int, list[tuple[str, str]]] = {i: [] for i in range(len(needs))}
    current: int | None = None
    for line in text.splitlines():
        if line.startswith("@family "):
            family = line.split()[1]
        elif line.startswith("@@ "):
            current = int(line.split()[1])
        elif current is not None and ": " in line:
            package, path = line.split(": ", 1)
            found[current].append((package.strip(), path.strip()))
    return Lookup(family=family, providers={n: best(n, found[i]) for i, n in enumerate(needs)})


def lookup_tag(base_id: str) -> str:
    doc = LOOKUP_DOCKERFILE + base_id
    return f"wheelhouse-lookup:{hashlib.sha256(doc.encode()).hexdigest()[:16]}"


def find_providers(
    engine: Engine, image: str, needs: Sequence[Need], *, logs: Path
) -> Mapping[Need, str | None]:
    """The distro package that ships each need, read from `image`'s distro file index
    (None where nothing does). The lookup image (`image` + the index) is built once per
    image id; the lookup runs offline. `logs`: where the lookup image's build log goes."""
    return lookup(engine, image, needs, logs=logs).providers


def lookup(engine: Engine, image: str, needs: Sequence[Need], *, logs: Path) -> Lookup:
    """`find_providers`, with the distro family the answer came from."""
    if not needs:
        return Lookup(family="", providers={})
    tag = lookup_tag(engine.image_id(image))
    if not engine.has_image(tag):
        log = logs / f"lookup-{tag.split(':')[1]}.log"
        try:
            engine.build_image(tag, LOOKUP_DOCKERFILE, {"BASE": image}, log)
        except EngineTimeoutError:
            raise
        except EngineError as e:
            said = package_errors(log.read_text()) if log.is_file() else ""
            raise EngineError(
                f"cannot read {image}'s package file index:\n"
                + (said or e.message.split("\n", 1)[-1]),
                hint=f"the image's apt/apk mirror must serve its file index (Debian: the "
                f"Contents files, for apt-file); full log: {log}",
            ) from None
    lines = [f"{i} {path_regex(n)} {apk_provider(n) or '-'}" for i, n in enumerate(needs)]
    with engine.container(
        tag,
        ["sh", "-c", LOOKUP_SCRIPT],
        env={"WHEELHOUSE_NEEDS": "\n".join(lines)},
        network="none",
    ) as c:
        res = c.run(key="build")
    if not res.ok:
        raise EngineError(
            f"looking up packages in {image}'s file index failed: {res.tail(5)}",
            hint="the image needs apt-get (Debian/Ubuntu) or apk (Alpine) and its mirror",
        )
    return parse_answer(res.stdout, needs)
