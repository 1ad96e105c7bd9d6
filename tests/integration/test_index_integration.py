"""`wheelhouse index` read by its clients: real pip through file://, plain HTTP (a static
server on loopback) and --find-links, and the `wheelhouse index` command. The page-level
checks are in tests/unit/test_index.py. No engine, no network."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Wheelhouse, isolated_env, write
from fixtures_index import wheel_bytes
from fixtures_simple import check_tree, put, snapshot, swap

from wheelhouse.errors import PublishError
from wheelhouse.index import writer as ix

# -- pip ------------------------------------------------------------------------------------


def pip(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", *args],
        env=isolated_env(tmp_path / "pip-cache"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def installed(target: Path) -> dict[str, str]:
    """{module: __version__} of what pip put in --target."""
    out = {}
    for init in target.glob("*/__init__.py"):
        m = re.search(r'__version__ = "([^"]+)"', init.read_text())
        if m:
            out[init.parent.name] = m.group(1)
    return out


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """A plain static HTTP server (no index logic) over `folder`: (base URL, paths asked)."""
    asked: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            asked.append(self.path)

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


# -- installing with pip ----------------------------------------------------------------------


def test_pip_installs_through_file_url(out: Path, tmp_path: Path) -> None:
    report = ix.index_target(out / "slim")
    assert (report.projects, report.files, report.hashed) == (3, 4, 4)
    check_tree(out / "slim" / "simple")
    target = tmp_path / "site"
    pip(
        tmp_path,
        "--index-url",
        (out / "slim" / "simple").as_uri() + "/",
        "--target",
        str(target),
        "beta",
        "foo-bar-baz",
    )
    # alpha 2.0 needs Python 3.99: only data-requires-python keeps pip on 1.0
    assert installed(target) == {"alpha": "1.0", "beta": "1.0", "foo_bar_baz": "1.0"}


def test_pip_installs_through_plain_http_using_pep658_metadata(out: Path, tmp_path: Path) -> None:
    ix.index_target(out / "slim")
    target = tmp_path / "site"
    with serve(out) as (base, asked):
        pip(tmp_path, "--index-url", f"{base}/slim/simple/", "--target", str(target), "beta")
    assert installed(target) == {"alpha": "1.0", "beta": "1.0"}
    # pip took the dependencies from the .metadata files (it checks their advertised hash)
    assert "/slim/beta-1.0-py3-none-any.whl.metadata" in asked
    assert "/slim/alpha-1.0-py3-none-any.whl.metadata" in asked
    # and never looked at alpha 2.0: data-requires-python ruled it out from the page alone
    assert not [p for p in asked if "alpha-2.0" in p]


def test_pip_dry_run_report_resolves_from_metadata_files(out: Path, tmp_path: Path) -> None:
    ix.index_target(out / "slim")
    report = tmp_path / "report.json"
    with serve(out) as (base, asked):
        pip(
            tmp_path,
            "--dry-run",
            "--report",
            str(report),
            "--index-url",
            f"{base}/slim/simple/",
            "beta",
        )
    got = {
        i["metadata"]["name"]: i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert got == {"beta": "1.0", "alpha": "1.0"}
    assert {p for p in asked if p.endswith(".metadata")} == {
        "/slim/beta-1.0-py3-none-any.whl.metadata",
        "/slim/alpha-1.0-py3-none-any.whl.metadata",
    }


def test_pip_find_links_ignores_sidecars(out: Path, tmp_path: Path) -> None:
    ix.index_target(out / "slim")
    assert (out / "slim" / "beta-1.0-py3-none-any.whl.metadata").is_file()
    target = tmp_path / "site"
    pip(
        tmp_path,
        "--no-index",
        "--find-links",
        str(out / "slim"),
        "--target",
        str(target),
        "beta",
        "Foo_Bar.baz",
    )
    assert installed(target) == {"alpha": "1.0", "beta": "1.0", "foo_bar_baz": "1.0"}


def test_local_versions_through_file_and_http(tmp_path: Path) -> None:
    folder = tmp_path / "wheelhouse" / "gpu"
    put(folder, "torchlike", "2.0")
    put(folder, "torchlike", "2.0+cu126")
    ix.index_target(folder)
    (f, g) = check_tree(folder / "simple")["torchlike"]
    assert f["url"] == "../../torchlike-2.0-py3-none-any.whl"
    assert g["url"] == "../../torchlike-2.0%2Bcu126-py3-none-any.whl"  # S3 reads `+` as a space
    assert g["filename"] == "torchlike-2.0+cu126-py3-none-any.whl"
    by_file = tmp_path / "by-file"
    pip(
        tmp_path,
        "--index-url",
        (folder / "simple").as_uri() + "/",
        "--target",
        str(by_file),
        "torchlike==2.0+cu126",
    )
    assert installed(by_file) == {"torchlike": "2.0+cu126"}
    by_http = tmp_path / "by-http"
    with serve(folder.parent) as (base, asked):
        pip(
            tmp_path,
            "--index-url",
            f"{base}/gpu/simple/",
            "--target",
            str(by_http),
            "torchlike==2.0+cu126",
        )
    assert installed(by_http) == {"torchlike": "2.0+cu126"}
    assert "/gpu/torchlike-2.0%2Bcu126-py3-none-any.whl.metadata" in asked


# -- yanks ----------------------------------------------------------------------------------


def test_yanks_are_rendered_and_pip_skips_them(out: Path, tmp_path: Path) -> None:
    put(out / "slim", "alpha", "1.5")
    write(
        out / "yanked.toml",
        textwrap.dedent("""\
        "alpha-1.5-py3-none-any.whl" = "broken: use 1.0"
        "Foo_Bar.Baz==1.0.0" = true
        "nosuch==1.0" = "matches nothing"
    """),
    )
    yanks = ix.load_yanks(out / "yanked.toml")
    report = ix.index_target(out / "slim", yanks=yanks)
    assert report.unmatched_yanks == ("nosuch==1.0",)
    files = check_tree(out / "slim" / "simple")
    assert [f["yanked"] for f in files["alpha"]] == [False, "broken: use 1.0", False]
    assert files["foo-bar-baz"][0]["yanked"] is True  # zero-padded version, any name spelling
    raw = (out / "slim" / "simple" / "alpha" / "index.html").read_text()
    assert 'data-yanked="broken: use 1.0"' in raw
    assert 'data-yanked=""' in (out / "slim" / "simple" / "foo-bar-baz" / "index.html").read_text()
    # pip passes over a yanked file unless pinned to it exactly
    target = tmp_path / "site"
    uri = (out / "slim" / "simple").as_uri() + "/"
    pip(tmp_path, "--index-url", uri, "--target", str(target), "alpha>=1.0,<2")
    assert installed(target) == {"alpha": "1.0"}
    pinned = tmp_path / "pinned"
    pip(tmp_path, "--index-url", uri, "--target", str(pinned), "alpha==1.5")
    assert installed(pinned) == {"alpha": "1.5"}


# -- the combined index -----------------------------------------------------------------------


def test_combined_index_over_two_targets(tmp_path: Path) -> None:
    o = tmp_path / "wheelhouse"
    put(o / "slim", "alpha", "1.0")
    put(o / "slim", "common", "1.0")
    put(o / "alpine", "beta", "1.0", requires=["common"])
    (o / "alpine" / "common-1.0-py3-none-any.whl").write_bytes(
        (o / "slim" / "common-1.0-py3-none-any.whl").read_bytes()
    )
    put(o / "alpine", "alpha", "1.0", tags="cp311-cp311-musllinux_1_1_x86_64")
    ix.index_target(o / "slim")  # the combined index reuses this one's hashes
    report = ix.index_combined(o, [o / "slim", o / "alpine"])
    assert (report.files, report.hashed) == (4, 3)  # common once; alpine's files read
    files = check_tree(o / "simple")
    assert sorted(files) == ["alpha", "beta", "common"]
    assert [f["url"] for f in files["common"]] == ["../../slim/common-1.0-py3-none-any.whl"]
    assert sorted(f["url"] for f in files["alpha"]) == [
        "../../alpine/alpha-1.0-cp311-cp311-musllinux_1_1_x86_64.whl",
        "../../slim/alpha-1.0-py3-none-any.whl",
    ]
    target = tmp_path / "site"
    with serve(o) as (base, _):
        pip(tmp_path, "--index-url", f"{base}/simple/", "--target", str(target), "beta")
    assert installed(target) == {"beta": "1.0", "common": "1.0"}
    # the same file name with other bytes in two targets: which one would pip get?
    swap(o / "alpine", "common", "1.0", requires=["beta"])
    before = snapshot(o / "simple")
    with pytest.raises(PublishError) as err:
        ix.index_combined(o, [o / "slim", o / "alpine"])
    assert "common-1.0-py3-none-any.whl differs between" in str(err.value)
    assert str(o / "slim") in str(err.value) and str(o / "alpine") in str(err.value)
    assert snapshot(o / "simple") == before


# -- the command ----------------------------------------------------------------------------


def test_cli_index_all_targets(wh: Wheelhouse, tmp_path: Path) -> None:
    write(wh.project / "wheelhouse.toml", 'default-targets = ["slim", "alpine"]\n')
    o = wh.project / "wheelhouse"
    put(o / "slim", "alpha", "1.0")
    put(o / "alpine", "beta", "1.0")
    write(o / "yanked.toml", '"beta==1.0" = "gone"\n"gamma==1.0" = "typo"\n')
    proc = wh("index")
    assert "slim: wheelhouse/slim/simple/ 1 projects, 1 files [1 hashed, 2 pages written" in (
        proc.stdout
    )
    assert "alpine: wheelhouse/alpine/simple/ 1 projects" in proc.stdout
    assert "combined: wheelhouse/simple/ 2 projects, 2 files [0 hashed" in proc.stdout
    assert "yanked.toml: no wheel matches gamma==1.0" in proc.stdout
    assert check_tree(o / "simple")["beta"][0]["yanked"] == "gone"
    check_tree(o / "slim" / "simple")
    proc = wh("index", "-t", "slim")
    assert "slim: wheelhouse/slim/simple/ 1 projects, 1 files [0 hashed, 0 pages written" in (
        proc.stdout
    )
    assert "combined: wheelhouse/simple/ 2 projects" in proc.stdout  # alpine still in it
    (o / "slim" / "alpha-2.0-py3-none-any.whl").write_bytes(b"broken")
    proc = wh("index", check=False)
    assert proc.returncode == 13
    assert "publish error" in proc.stderr and "alpha-2.0-py3-none-any.whl" in proc.stderr
    assert "hint:" in proc.stderr
    proc = wh("index", "-t", "gpu", check=False)
    assert proc.returncode == 13 and "wheelhouse build --target gpu" in proc.stderr


def test_cli_index_full_catches_a_wheel_rewritten_in_place(wh: Wheelhouse) -> None:
    """`cp` over a published wheel keeps its inode: an incremental run, which lists folders
    and stats no unchanged project, keeps the old page; `index --full` re-hashes it."""
    write(wh.project / "wheelhouse.toml", 'default-targets = ["slim"]\n')
    o = wh.project / "wheelhouse"
    path = put(o / "slim", "alpha", "1.0")
    wh("index")
    path.write_bytes(wheel_bytes("alpha", "1.0", requires=["beta"]))  # in place
    proc = wh("index")
    assert "[0 hashed" in proc.stdout
    proc = wh("index", "--full")
    assert "slim: wheelhouse/slim/simple/ 1 projects, 1 files [1 hashed" in proc.stdout
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for simple in (o / "slim" / "simple", o / "simple"):
        assert check_tree(simple)["alpha"][0]["hashes"]["sha256"] == digest
