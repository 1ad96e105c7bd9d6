"""Alpine's half of the lookup, run for real on an APKINDEX made here (no Alpine image or
apk mirror can be reached from these machines): LOOKUP_SCRIPT's provider search over the
index text, then `parse_answer`."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from wheelhouse.build.discover import Need
from wheelhouse.build.provides import LOOKUP_SCRIPT, apk_provider, parse_answer

INDEX = """\
C:Q1abc=
P:libgomp
V:13.2.1_git20231014-r0
p:so:libgomp.so.1=1.0.0

C:Q1def=
P:postgresql16-dev
V:16.1-r0
p:cmd:ecpg=16.1-r0 cmd:pg_config=16.1-r0 pc:libecpg=16.1 pc:libpq=16.1

"""


def test_apk_provider_names_are_found_in_the_index(tmp_path: Path) -> None:
    cache = tmp_path / "apk"
    cache.mkdir()
    data = INDEX.encode()
    with tarfile.open(cache / "APKINDEX.abcd.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("APKINDEX")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    needs = [
        Need(kind="soname", name="libgomp.so.1"),
        Need(kind="executable", name="pg_config"),
        Need(kind="pkgconfig", name="libpq"),
        Need(kind="header", name="libpq-fe.h"),  # no header index on Alpine
        Need(kind="executable", name="nothing-ships-this"),
    ]
    lines = "\n".join(f"{i} - {apk_provider(n) or '-'}" for i, n in enumerate(needs))
    # the apk half of the script, pointed at this folder instead of /var/cache/apk
    apk_half = LOOKUP_SCRIPT.split("elif [ -d /var/cache/apk ]; then", 1)[1].split("\nelse", 1)[0]
    script = apk_half.replace("/var/cache/apk", str(cache)).replace(
        "/tmp/index", str(tmp_path / "i")
    )
    res = subprocess.run(
        ["sh", "-c", script], env={"WHEELHOUSE_NEEDS": lines, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    answer = parse_answer(res.stdout, needs)
    assert answer.family == "apk"
    assert answer.providers == {
        needs[0]: "libgomp",
        needs[1]: "postgresql16-dev",
        needs[2]: "postgresql16-dev",
        needs[3]: None,
        needs[4]: None,
    }
