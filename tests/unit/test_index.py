"""`wheelhouse index`: the static PEP 503/691 repository, checked with a JSON schema for
PEP 691/700/714 and byte-level checks of every page, link and metadata sidecar (see
fixtures_simple.check_tree); yanks, refusals, incremental runs and interrupted ones. Real
pip (file://, plain HTTP, --find-links) and the CLI are in
tests/integration/test_index_integration.py. No engine, no network."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, write
from fixtures_index import wheel_bytes
from fixtures_simple import changed, check_tree, pages, parse_page, put, sha256, snapshot, swap

from wheelhouse.errors import PublishError
from wheelhouse.index import reading as index_reading
from wheelhouse.index import writer as ix
from wheelhouse.index.fileops import FileWriter

# -- what the pages say -----------------------------------------------------------------------


def test_pages_escape_and_normalize(out: Path) -> None:
    ix.index_target(out / "slim")
    simple = out / "slim" / "simple"
    files = check_tree(simple)
    assert sorted(files) == ["alpha", "beta", "foo-bar-baz"]  # canonical names
    raw = (simple / "foo-bar-baz" / "index.html").read_text()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in raw
    assert files["foo-bar-baz"][0]["requires-python"] == ">=3.8,<4"
    assert files["foo-bar-baz"][0]["url"] == "../../foo_bar_baz-1.0-py3-none-any.whl"
    assert [f["filename"] for f in files["alpha"]] == [
        "alpha-1.0-py3-none-any.whl",
        "alpha-2.0-py3-none-any.whl",
    ]
    assert "requires-python" not in files["alpha"][0]
    doc = json.loads((simple / "alpha" / "index.json").read_bytes())
    assert doc["versions"] == ["1.0", "2.0"]
    assert doc["meta"] == {"api-version": "1.1"}


def test_hostile_values_are_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    hostile = '"><script>alert(1)</script><a x="'
    put(folder, "evil", "1.0", requires_python=hostile)
    write(folder / "yanked.toml", '"evil==1.0" = "</a><script>x</script>&"\n')
    ix.index_target(folder, yanks=ix.load_yanks(folder / "yanked.toml"))
    raw = (folder / "simple" / "evil" / "index.html").read_text()
    assert "<script" not in raw and raw.count("<a ") == 1
    (anchor,) = parse_page(folder / "simple" / "evil" / "index.html").anchors
    # escaped, not mangled: a parser gets the exact values back
    assert anchor["data-requires-python"] == hostile
    assert anchor["data-yanked"] == "</a><script>x</script>&"
    doc = check_tree(folder / "simple")
    assert doc["evil"][0]["requires-python"] == hostile


def test_upload_time_size_and_relative_urls(out: Path) -> None:
    wheel = out / "slim" / "beta-1.0-py3-none-any.whl"
    os.utime(wheel, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    ix.index_target(out / "slim")
    (f,) = json.loads((out / "slim" / "simple" / "beta" / "index.json").read_bytes())["files"]
    assert f["upload-time"] == "2023-11-14T22:13:20.123456Z"
    assert f["size"] == wheel.stat().st_size
    assert f["yanked"] is False
    for page in (out / "slim" / "simple").rglob("index.*"):
        text = page.read_text()
        assert "file:" not in text and str(out) not in text


def test_metadata_sidecar_is_exact_metadata_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    # CRLF line ends and a trailing body: the sidecar must be the bytes, not a re-encoding
    name = "crlf-1.0-py3-none-any.whl"
    metadata = b"Metadata-Version: 2.1\r\nName: crlf\r\nVersion: 1.0\r\n\r\nA body.\r\n"
    folder.mkdir()
    with zipfile.ZipFile(folder / name, "w") as zf:
        zf.writestr("crlf/__init__.py", b'__version__ = "1.0"\n')
        zf.writestr("crlf-1.0.dist-info/METADATA", metadata)
        zf.writestr("crlf-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nTag: py3-none-any\n")
        zf.writestr("crlf-1.0.dist-info/RECORD", b"")
    ix.index_target(folder)
    assert (folder / (name + ".metadata")).read_bytes() == metadata
    (f,) = check_tree(folder / "simple")["crlf"]
    assert f["core-metadata"] == {"sha256": sha256(metadata)}


# -- yanks ----------------------------------------------------------------------------------


def test_changing_yanks_rewrites_the_affected_pages(out: Path) -> None:
    ix.index_target(out / "slim")
    before = snapshot(out / "slim" / "simple")
    yanks = ix.Yanks(files={"beta-1.0-py3-none-any.whl": "bad"})
    report = ix.index_target(out / "slim", yanks=yanks)
    assert report.hashed == 0 and report.pages_written == 1
    assert changed(pages(before), pages(snapshot(out / "slim" / "simple"))) == {
        "beta/index.html",
        "beta/index.json",
    }
    assert check_tree(out / "slim" / "simple")["beta"][0]["yanked"] == "bad"
    ix.index_target(out / "slim")  # un-yanked again
    assert check_tree(out / "slim" / "simple")["beta"][0]["yanked"] is False


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('"alpha==one" = "x"\n', "'one' is not a valid version"),
        ('"alpha-1.0.tar.gz" = "x"\n', "neither a wheel file name nor project==version"),
        ('"alpha==1.0" = 3\n', "must be a reason (a string) or true"),
        ("this is not toml\n", "cannot be read as TOML"),
    ],
)
def test_bad_yanked_toml_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path / "yanked.toml", text)
    with pytest.raises(PublishError) as err:
        ix.load_yanks(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert err.value.exit_code == 13


# -- refusing bad wheels ----------------------------------------------------------------------


def test_name_or_version_mismatch_is_refused_and_the_index_kept(out: Path) -> None:
    ix.index_target(out / "slim")
    before = snapshot(out / "slim")
    # alpha 1.0's bytes under a 3.0 name: pip would install 1.0 when asked for 3.0
    (out / "slim" / "alpha-3.0-py3-none-any.whl").write_bytes(wheel_bytes("alpha", "1.0"))
    with pytest.raises(PublishError) as err:
        ix.index_target(out / "slim")
    message = str(err.value)
    assert "alpha-3.0-py3-none-any.whl" in message
    assert "alpha 3.0" in message and "Version: 1.0" in message
    assert "rebuild it, or rename it" in message and "the index is as it was" in message
    after = snapshot(out / "slim")
    del after["alpha-3.0-py3-none-any.whl"]
    assert after == before  # no page, no state, no sidecar touched
    (out / "slim" / "alpha-3.0-py3-none-any.whl").unlink()
    # a name mismatch too (gamma's bytes named beta 9.0)
    (out / "slim" / "beta-9.0-py3-none-any.whl").write_bytes(wheel_bytes("gamma", "9.0"))
    with pytest.raises(PublishError, match=r"says beta 9\.0 but its METADATA says Name: gamma"):
        ix.index_target(out / "slim")


def raw_wheel(path: Path, metadata: bytes, *, dist_info: str = "pkg-1.0.dist-info") -> Path:
    """A wheel with exactly this METADATA (and the minimum around it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/__init__.py", b'__version__ = "1.0"\n')
        zf.writestr(f"{dist_info}/METADATA", metadata)
        zf.writestr(f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nTag: py3-none-any\n")
        zf.writestr(f"{dist_info}/RECORD", b"")
    return path


def test_equal_names_and_versions_in_other_spellings_are_accepted(tmp_path: Path) -> None:
    # METADATA says My.Pkg 1.0.0, the file name my_pkg 1.0: the same project and version
    metadata = (
        b"Metadata-Version: 2.1\nname: My.Pkg\nVersion:  1.0.0\nRequires-Python: >=3.8,\n <4\n"
    )
    raw_wheel(tmp_path / "t" / "my_pkg-1.0-py3-none-any.whl", metadata)
    assert ix.index_target(tmp_path / "t").files == 1
    (f,) = check_tree(tmp_path / "t" / "simple")["my-pkg"]
    assert f["requires-python"] == ">=3.8, <4"  # a folded header, unfolded as email does


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "no-metadata", "bad-name"])
def test_corrupt_wheels_are_refused_and_the_index_kept(out: Path, how: str) -> None:
    ix.index_target(out / "slim")
    before = snapshot(out / "slim")
    name = "gamma-1.0-py3-none-any.whl"
    good = wheel_bytes("gamma", "1.0")
    if how == "truncated":
        data = good[: len(good) // 2]
    elif how == "empty":
        data = b""
    elif how == "garbage":
        data = b"PK\x03\x04" + os.urandom(300)
    elif how == "bad-name":
        name, data = "gamma-1.0.whl", good
    else:
        import io

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("gamma/__init__.py", "")
        data = buf.getvalue()
    (out / "slim" / name).write_bytes(data)
    with pytest.raises(PublishError) as err:
        ix.index_target(out / "slim")
    assert name in str(err.value)
    expected = {
        "truncated": "truncated or corrupt",
        "empty": "truncated or corrupt",
        "garbage": "truncated or corrupt",
        "no-metadata": "METADATA",
        "bad-name": "not a valid wheel file name",
    }[how]
    assert expected in str(err.value)
    after = snapshot(out / "slim")
    del after[name]
    assert after == before


def test_every_refused_wheel_is_named_at_once(out: Path) -> None:
    (out / "slim" / "x-1.0-py3-none-any.whl").write_bytes(b"nope")
    (out / "slim" / "y-1.0-py3-none-any.whl").write_bytes(wheel_bytes("z", "1.0"))
    with pytest.raises(PublishError) as err:
        ix.index_target(out / "slim")
    assert "2 wheels refused" in str(err.value)
    assert "x-1.0-py3-none-any.whl" in str(err.value) and "y-1.0-py3-none-any.whl" in str(err.value)
    assert not (out / "slim" / "simple" / "index.html").exists()  # nothing published at all


def test_reading_in_threads_refuses_and_publishes_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_reading, "_PARALLEL_BYTES", 0)  # as for big wheels: read in threads
    folder = tmp_path / "t"
    for i in range(30):
        put(folder, f"p{i}", "1.0", requires_python=">=3.8" if i % 2 else None)
    (folder / "bad-1.0-py3-none-any.whl").write_bytes(b"PK")
    (folder / "worse-1.0-py3-none-any.whl").write_bytes(wheel_bytes("other", "1.0"))
    with pytest.raises(PublishError, match="2 wheels refused") as err:
        ix.index_target(folder)
    assert "bad-1.0" in str(err.value) and "worse-1.0" in str(err.value)
    (folder / "bad-1.0-py3-none-any.whl").unlink()
    (folder / "worse-1.0-py3-none-any.whl").unlink()
    report = ix.index_target(folder)
    assert (report.hashed, report.pages_written) == (30, 31)
    assert len(check_tree(folder / "simple")) == 30


# -- incremental ----------------------------------------------------------------------------


def test_second_run_reads_and_writes_nothing(out: Path) -> None:
    first = ix.index_target(out / "slim")
    assert (first.hashed, first.pages_written) == (4, 4)  # 3 projects and the root
    before = snapshot(out / "slim")
    again = ix.index_target(out / "slim")
    assert (again.hashed, again.pages_written, again.pages_removed) == (0, 0, 0)
    assert snapshot(out / "slim") == before  # not even rewritten with the same bytes


def test_one_new_wheel_rewrites_one_page(out: Path) -> None:
    ix.index_target(out / "slim")
    before = snapshot(out / "slim" / "simple")
    put(out / "slim", "beta", "2.0", requires=["alpha"])
    report = ix.index_target(out / "slim")
    assert (report.hashed, report.pages_written) == (1, 1)  # the root lists the same projects
    after = snapshot(out / "slim" / "simple")
    assert changed(pages(before), pages(after)) == {"beta/index.html", "beta/index.json"}
    assert [f["filename"] for f in check_tree(out / "slim" / "simple")["beta"]] == [
        "beta-1.0-py3-none-any.whl",
        "beta-2.0-py3-none-any.whl",
    ]
    # a new project: its page and the root
    put(out / "slim", "gamma", "1.0")
    report = ix.index_target(out / "slim")
    assert (report.hashed, report.pages_written) == (1, 2)
    assert changed(pages(after), pages(snapshot(out / "slim" / "simple"))) == {
        "gamma/index.html",
        "gamma/index.json",
        "index.html",
        "index.json",
    }


def test_removed_and_replaced_wheels(out: Path) -> None:
    ix.index_target(out / "slim")
    slim = out / "slim"
    (slim / "alpha-2.0-py3-none-any.whl").unlink()
    (slim / "foo_bar_baz-1.0-py3-none-any.whl").unlink()
    # the same name with other bytes (a rebuild, which links a new file over the name, as
    # `mv` and `install` do): hashed again, new hash on the page
    swap(slim, "beta", "1.0", requires=["alpha>=1"])
    report = ix.index_target(slim)
    assert (report.hashed, report.pages_removed) == (1, 1)
    files = check_tree(slim / "simple")
    assert sorted(files) == ["alpha", "beta"]
    assert files["beta"][0]["hashes"]["sha256"] == sha256(
        (slim / "beta-1.0-py3-none-any.whl").read_bytes()
    )
    assert not (slim / "alpha-2.0-py3-none-any.whl.metadata").exists()
    assert not (slim / "foo_bar_baz-1.0-py3-none-any.whl.metadata").exists()
    assert b"alpha>=1" in (slim / "beta-1.0-py3-none-any.whl.metadata").read_bytes()


def test_a_wheel_rewritten_in_place_is_caught_by_a_full_run(out: Path) -> None:
    """An incremental run trusts a listed name whose inode is the same (it stats no file of
    an unchanged project); `--full` (full=True) stats every wheel and re-hashes one whose
    bytes changed under the same inode, as `cp` over a published wheel does."""
    slim = out / "slim"
    ix.index_target(slim)
    target = slim / "beta-1.0-py3-none-any.whl"
    ino = target.stat().st_ino
    target.write_bytes(wheel_bytes("beta", "1.0", requires=["alpha>=1"]))  # same inode
    assert target.stat().st_ino == ino
    assert ix.index_target(slim).hashed == 0
    report = ix.write_index(slim, [ix.Source(folder=slim)], full=True)
    assert (report.hashed, report.pages_written) == (1, 4)
    assert check_tree(slim / "simple")["beta"][0]["hashes"]["sha256"] == sha256(target.read_bytes())


def test_lost_sidecar_and_page_are_restored(out: Path) -> None:
    ix.index_target(out / "slim")
    (out / "slim" / "alpha-1.0-py3-none-any.whl.metadata").unlink()
    shutil.rmtree(out / "slim" / "simple" / "beta")
    (out / "slim" / "simple" / "index.json").unlink()
    report = ix.index_target(out / "slim")
    assert report.pages_written == 2  # beta's page and the root
    check_tree(out / "slim" / "simple")


def test_corrupt_state_means_a_full_run(out: Path) -> None:
    ix.index_target(out / "slim")
    (out / "slim" / "simple" / ix.STATE_NAME).write_text("{not json")
    report = ix.index_target(out / "slim")
    assert (report.hashed, report.pages_written) == (4, 4)
    check_tree(out / "slim" / "simple")


def test_a_restart_since_the_last_run_rewrites_every_page(out: Path) -> None:
    """Pages are not fsynced one by one: after the machine restarts (a new boot id), the
    first run renders every page again and checks the sidecars, without hashing."""
    ix.index_target(out / "slim")
    state_path = out / "slim" / "simple" / ix.STATE_NAME
    state = json.loads(state_path.read_bytes())
    if state["boot"] is None:
        pytest.skip("no boot id on this system: pages are fsynced instead")
    state["boot"] = "another-boot"
    state_path.write_text(json.dumps(state))
    sidecar = out / "slim" / "beta-1.0-py3-none-any.whl.metadata"
    sidecar.write_bytes(b"")  # what a crash can leave of a file written just before it
    (out / "slim" / "simple" / "alpha" / "index.html").write_bytes(b"")
    report = ix.index_target(out / "slim")
    assert (report.hashed, report.pages_written) == (0, 4)
    check_tree(out / "slim" / "simple")
    assert ix.index_target(out / "slim").pages_written == 0


def test_missing_folder_is_refused_without_creating_it(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="does not exist"):
        ix.index_target(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


# -- interruptions --------------------------------------------------------------------------


def test_failure_mid_run_leaves_a_valid_index_and_the_next_run_completes(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix.index_target(out / "slim")
    for v in ("3.0", "4.0"):
        put(out / "slim", "alpha", v)
    for name in ("delta", "epsilon", "zeta"):
        put(out / "slim", name, "1.0")
    real = FileWriter.write
    pages_seen = []

    def failing(self: FileWriter, dest: str, data: bytes, **kw: Any) -> None:
        if dest.endswith("index.html"):
            pages_seen.append(dest)
            if len(pages_seen) == 3:
                raise OSError(28, "No space left on device")
        real(self, dest, data, **kw)

    real_create = FileWriter.create

    def failing_create(self: FileWriter, dest: str, data: bytes, **kw: Any) -> bool:
        if dest.endswith("index.html"):  # a new project's page, in its staging folder
            pages_seen.append(dest)
            if len(pages_seen) == 3:
                raise OSError(28, "No space left on device")
        return real_create(self, dest, data, **kw)

    monkeypatch.setattr(FileWriter, "write", failing)
    monkeypatch.setattr(FileWriter, "create", failing_create)
    with pytest.raises(OSError, match="No space left"):
        ix.index_target(out / "slim")
    monkeypatch.setattr(FileWriter, "write", real)
    monkeypatch.setattr(FileWriter, "create", real_create)
    # every page there is whole and true; the root links only pages that are there
    check_tree(out / "slim" / "simple", complete=False)
    assert (out / "slim" / "simple" / ix.DIRTY_NAME).exists()
    report = ix.index_target(out / "slim")
    # each page's state is written with it: only the wheels no page shows yet (epsilon's,
    # zeta's) are read again
    assert report.hashed == 2
    files = check_tree(out / "slim" / "simple")
    assert sorted(files) == ["alpha", "beta", "delta", "epsilon", "foo-bar-baz", "zeta"]
    assert len(files["alpha"]) == 4
    assert not (out / "slim" / "simple" / ix.DIRTY_NAME).exists()
    assert ix.index_target(out / "slim").pages_written == 0


_SLOW_INDEX = r"""
import sys, time
from pathlib import Path
from wheelhouse.index import writer as ix
from wheelhouse.index.fileops import FileWriter
real = FileWriter.write
def slow(self, dest, data, **kw):
    real(self, dest, data, **kw)
    if dest.endswith("index.json"):
        sys.stdout.write("page\n")  # one write: pages are written from several threads
        sys.stdout.flush()
        time.sleep(0.05)
FileWriter.write = slow
real_create = FileWriter.create
def slow_create(self, dest, data, **kw):
    done = real_create(self, dest, data, **kw)
    if dest.endswith("index.json"):  # a new project's page
        sys.stdout.write("page\n")
        sys.stdout.flush()
        time.sleep(0.05)
    return done
FileWriter.create = slow_create
ix.index_target(Path(sys.argv[1]))
print("done", flush=True)
"""


def test_killed_mid_run_leaves_a_valid_index_and_the_next_run_completes(
    out: Path, tmp_path: Path
) -> None:
    ix.index_target(out / "slim")
    before = check_tree(out / "slim" / "simple")
    for i in range(40):
        put(out / "slim", f"new{i}", "1.0")
    put(out / "slim", "alpha", "3.0")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_INDEX, str(out / "slim")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    for _ in range(5):  # a few pages written, then SIGKILL: no cleanup code runs
        assert proc.stdout.readline() == "page\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    files = check_tree(out / "slim" / "simple", complete=False)
    assert set(before) <= set(files)  # nothing that was published went away
    assert (out / "slim" / "simple" / ix.DIRTY_NAME).exists()
    report = ix.index_target(out / "slim")
    # all pages re-rendered; the wheels of pages written with their state are not read again
    assert report.hashed <= 41 and report.pages_written == 3 + 40 + 1
    files = check_tree(out / "slim" / "simple")
    assert len(files) == 3 + 40 and len(files["alpha"]) == 3
    assert ix.index_target(out / "slim").pages_written == 0
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".new-" in p.name]
    assert not leftovers


def test_temp_files_of_a_dead_run_are_removed(out: Path) -> None:
    ix.index_target(out / "slim")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    simple = out / "slim" / "simple"
    planted = [
        out / "slim" / f".alpha-1.0-py3-none-any.whl.metadata.{dead.pid}.7.tmp",
        simple / "beta" / f".index.html.{dead.pid}.3.tmp",
        simple / f".index.json.{dead.pid}.9.tmp",
        simple / ".new-gamma" / "index.html",
    ]
    for p in planted:
        write(p, "half")
    (simple / ix.DIRTY_NAME).touch()  # as the interrupted run left it
    ix.index_target(out / "slim")
    assert [p for p in planted if p.exists()] == []
    assert not (simple / ".new-gamma").exists()
    check_tree(simple)
    # a live process's temp file (another run writing a sidecar) is left alone
    live = out / "slim" / f".beta-1.0-py3-none-any.whl.metadata.{os.getpid()}.1.tmp"
    write(live, "busy")
    ix.index_target(out / "slim")
    assert live.exists()


def test_concurrent_runs_serialize(out: Path) -> None:
    results: list[ix.IndexReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ix.index_target(out / "slim"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.hashed for r in results) == [0, 0, 0, 4]  # one did the work
    check_tree(out / "slim" / "simple")
