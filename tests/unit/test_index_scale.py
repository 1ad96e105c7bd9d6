"""`wheelhouse index` at scale: what a run touches. An incremental run reads the state of
the projects it changes and no other, appends to the log instead of rewriting a state of
every file, and lists each folder once for the target and the combined index; a full run
writes new sidecars and new project folders in place (no temp file, no rename per file);
the struct-based zip reader agrees with zipfile. Counts of calls, never times."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fixtures_index import wheel_bytes
from fixtures_simple import check_tree, put, sha256, swap

from wheelhouse.index import delta, scan, state, upkeep
from wheelhouse.index import writer as ix
from wheelhouse.index.snapshot import SNAPSHOT_NAME
from wheelhouse.index.state import LOG_NAME, load_log, load_project
from wheelhouse.index.wheelfile import WheelRefused, inspect_wheel


@pytest.fixture(autouse=True)
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written before a run show an older ctime than its start (the kernel's clock
    lags, never leads): without the slack, what the next run rechecks is exact."""
    monkeypatch.setattr(upkeep, "SLACK", 0)


def scandirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders os.scandir lists from now on, in order."""
    listed: list[str] = []
    real = os.scandir

    def counting(path: Any = ".") -> Any:
        listed.append(os.fsdecode(path))  # (a str or bytes path)
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    return listed


def both(out: Path) -> ix.IndexReport:
    """`out/slim`'s index, then the combined one, as one `wheelhouse index` run makes them."""
    listings: dict[Path, ix.Listing] = {}
    ix.write_index(out / "slim", [ix.Source(folder=out / "slim")], listings=listings)
    return ix.index_combined(out, [out / "slim"], listings=listings)


def test_one_new_wheel_reads_one_project_and_appends_to_the_log(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slim = out / "slim"
    for i in range(12):
        put(slim, f"proj{i}", "1.0")
    ix.index_target(slim)
    log = slim / "simple" / LOG_NAME
    before = log.stat()
    loaded: list[Path] = []

    def counting(folder: Path) -> dict[str, Any]:
        loaded.append(folder)
        return load_project(folder)

    monkeypatch.setattr("wheelhouse.index.plan.load_project", counting)
    put(slim, "proj3", "2.0")
    report = ix.index_target(slim)
    assert (report.hashed, report.pages_written) == (1, 1)
    assert [p.name for p in loaded] == ["proj3"]  # no other project's state is read
    after = log.stat()
    assert after.st_ino == before.st_ino and after.st_size > before.st_size  # appended
    files = check_tree(slim / "simple")
    assert [f["filename"] for f in files["proj3"]] == [
        "proj3-1.0-py3-none-any.whl",
        "proj3-2.0-py3-none-any.whl",
    ]
    # a removal is appended too; the log always names exactly what the pages list
    (slim / "proj5-1.0-py3-none-any.whl").unlink()
    loaded.clear()
    assert ix.index_target(slim).pages_removed == 1
    assert loaded == [] and log.stat().st_ino == before.st_ino
    known = load_log(slim / "simple").ino
    listed = {f["filename"] for page in check_tree(slim / "simple").values() for f in page}
    assert set(known) == listed
    assert ix.index_target(slim).pages_written == 0


def test_a_long_log_is_written_whole(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slim = out / "slim"
    monkeypatch.setattr(upkeep, "COMPACT_AT", 0)
    ix.index_target(slim)
    for v in ("3.0", "4.0", "5.0"):
        put(slim, "alpha", v)
        ix.index_target(slim)
        (slim / f"alpha-{v}-py3-none-any.whl").unlink()
        ix.index_target(slim)
    lines = (slim / "simple" / LOG_NAME).read_text().splitlines()
    assert len(lines) <= 2 * 4  # never more than twice the files listed
    assert set(load_log(slim / "simple").ino) == {p.name for p in slim.glob("*.whl")}


def test_the_target_and_combined_index_list_a_folder_once(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slim = out / "slim"
    listed = scandirs(monkeypatch)
    listings: dict[Path, ix.Listing] = {}
    ix.write_index(slim, [ix.Source(folder=slim)], listings=listings)
    report = ix.index_combined(out, [slim], listings=listings)
    # (a full run: listed once more as it ends, for the listing's snapshot, see delta.py)
    assert listed.count(str(slim)) == 2
    assert (report.files, report.hashed) == (4, 0)  # the combined index reused the records
    assert not listings  # taken by the combined index: its wheels are not held twice
    check_tree(out / "simple")


def test_a_page_whose_digest_is_damaged_is_rebuilt_from_the_wheels(out: Path) -> None:
    """A project's records come from its JSON page: one that is not hex there (a page
    edited or damaged by hand) is no record, and the project's wheels are read again."""
    slim = out / "slim"
    ix.index_target(slim)
    page = slim / "simple" / "beta" / "index.json"
    doc = json.loads(page.read_bytes())
    doc["files"][0]["hashes"]["sha256"] = "not a digest"
    page.write_text(json.dumps(doc))
    put(slim, "beta", "2.0")
    report = ix.index_target(slim)
    assert (report.hashed, report.pages_written) == (2, 1)  # beta 1.0 again, and 2.0
    files = check_tree(slim / "simple")
    assert [f["filename"] for f in files["beta"]] == [
        "beta-1.0-py3-none-any.whl",
        "beta-2.0-py3-none-any.whl",
    ]


def test_new_sidecars_and_project_folders_are_written_in_place(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file no page links yet needs no temp file and rename: one open per sidecar, one
    rename per new project folder (its pages written inside it first)."""
    slim = out / "slim"
    replaced: list[str] = []
    real = os.replace

    def counting(src: Any, dst: Any) -> None:
        replaced.append(os.fspath(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", counting)
    ix.index_target(slim)
    simple = slim / "simple"
    assert not [d for d in replaced if d.endswith(".metadata")]
    assert not [d for d in replaced if Path(d).parent != simple]  # only root, state, log
    files = check_tree(simple)
    assert sorted(files) == ["alpha", "beta", "foo-bar-baz"]
    # a sidecar that is there (a rewritten wheel's) is replaced whole, never truncated
    swap(slim, "beta", "1.0", requires=["alpha>=1"])
    replaced.clear()
    ix.index_target(slim)
    assert str(slim / "beta-1.0-py3-none-any.whl.metadata") in replaced
    check_tree(simple)


def _rezip(data: bytes, *, stored: bool = False, comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", method) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=method)
        dst.comment = comment
    return buf.getvalue()


@pytest.mark.parametrize("shape", ["deflated", "stored", "comment"])
def test_the_quick_zip_reader_agrees_with_zipfile(tmp_path: Path, shape: str) -> None:
    data = _rezip(
        wheel_bytes("alpha", "1.0", requires=["beta"]),
        stored=shape == "stored",
        comment=b"a comment: zipfile's path" if shape == "comment" else b"",
    )
    path = tmp_path / "alpha-1.0-py3-none-any.whl"
    path.write_bytes(data)
    info = inspect_wheel(path)
    with zipfile.ZipFile(path) as zf:
        assert info.metadata == zf.read("alpha-1.0.dist-info/METADATA")
    # a flipped byte in a member's data is refused whichever way the zip is read
    member = data.index(b"PK\x03\x04")
    name_len, extra_len = (
        int.from_bytes(data[member + 26 : member + 28], "little"),
        int.from_bytes(data[member + 28 : member + 30], "little"),
    )
    at = member + 30 + name_len + extra_len + 2
    path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    with pytest.raises(WheelRefused):
        inspect_wheel(path)


def test_a_local_header_that_names_its_member_otherwise_is_refused(tmp_path: Path) -> None:
    """The quick reader finds each member's data from its local header and checks that the
    header names the member as the central directory does (its name and its length)."""
    data = bytearray(wheel_bytes("alpha", "1.0"))
    first = data.index(b"PK\x03\x04")
    name_len = int.from_bytes(data[first + 26 : first + 28], "little")
    data[first + 26 : first + 28] = (name_len - 1).to_bytes(2, "little")
    path = tmp_path / "alpha-1.0-py3-none-any.whl"
    path.write_bytes(bytes(data))
    with pytest.raises(WheelRefused, match="not a readable zip file"):
        inspect_wheel(path)


@pytest.mark.parametrize("member", ["alpha-1.0.dist-info/METADATA", "alpha/data.bin"])
def test_the_quick_zip_reader_leaves_a_bomb_to_the_checked_path(
    tmp_path: Path, member: str
) -> None:
    """A small wheel whose member inflates to 40 MiB: the quick reader does not inflate
    it in memory; the checked path refuses a METADATA that size and streams the rest."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alpha/__init__.py", "")
        if not member.endswith("METADATA"):
            zf.writestr(
                "alpha-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n"
            )
        zf.writestr(member, b"\0" * (40 << 20))
    path = tmp_path / "alpha-1.0-py3-none-any.whl"
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size < 200_000
    if member.endswith("METADATA"):
        with pytest.raises(WheelRefused, match="METADATA of 41943040 bytes"):
            inspect_wheel(path)
    else:
        assert inspect_wheel(path).project == "alpha"


def test_an_unchanged_folder_is_not_listed_and_a_changed_one_is(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that saw a folder whole and unchanged records its stamp; the next run does not
    list it (its wheels are the log's). A wheel added, removed or renamed moves the stamp:
    listed again. A run that wrote into the folder (a sidecar) records nothing."""
    slim = out / "slim"
    listed = scandirs(monkeypatch)
    ix.index_target(slim)  # writes the sidecars: the folder moved during the run
    ix.index_target(slim)  # lists it again, writes nothing: records its stamp
    listed.clear()
    report = ix.index_target(slim)
    assert str(slim) not in listed
    assert (report.files, report.hashed, report.pages_written) == (4, 0, 0)
    put(slim, "alpha", "3.0")
    report = ix.index_target(slim)
    assert str(slim) in listed
    assert (report.files, report.hashed, report.pages_written) == (5, 1, 1)
    assert "alpha-3.0-py3-none-any.whl" in {
        f["filename"] for f in check_tree(slim / "simple")["alpha"]
    }
    ix.index_target(slim)
    (slim / "alpha-3.0-py3-none-any.whl").rename(slim / "alpha-3.0-py3-none-any.whl.bak")
    listed.clear()
    report = ix.index_target(slim)
    assert str(slim) in listed and report.files == 4
    assert "alpha-3.0-py3-none-any.whl" not in {
        f["filename"] for f in check_tree(slim / "simple")["alpha"]
    }


def test_a_folder_stamp_is_not_trusted_when_it_is_too_recent(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change in the same clock tick as the stamp would not move it: a stamp no older
    than the slack is not recorded, and the next run lists the folder."""
    slim = out / "slim"
    monkeypatch.setattr(upkeep, "SLACK", 3600 * 10**9)
    ix.index_target(slim)
    ix.index_target(slim)
    state = json.loads((slim / "simple" / ix.STATE_NAME).read_bytes())
    assert state["folders"] == {}
    monkeypatch.setattr(upkeep, "SLACK", 0)
    ix.index_target(slim)
    state = json.loads((slim / "simple" / ix.STATE_NAME).read_bytes())
    assert list(state["folders"]) == [""]


def test_the_combined_index_mirrors_the_target_index_of_the_same_run(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the combined index's log agrees with the log of the target index that has just
    run (their tokens), the target's changes are its own: its log is not read. A target
    indexed alone in between breaks the agreement: the combined index compares again."""
    slim = out / "slim"
    read: list[Path] = []
    real = load_log

    def counting(simple: Path) -> Any:
        read.append(simple)
        return real(simple)

    monkeypatch.setattr(ix, "load_log", counting)  # (the names writer.py and delta.py call)
    monkeypatch.setattr(delta, "load_log", counting)

    both(out)
    put(slim, "alpha", "3.0")
    read.clear()
    report = both(out)
    assert read == []  # the target compares its listing with its last one (see delta.py)
    assert (report.hashed, report.pages_written) == (0, 1)
    (slim / "beta-1.0-py3-none-any.whl").unlink()
    read.clear()
    assert both(out).pages_removed == 1 and read == []
    put(slim, "alpha", "4.0")
    ix.index_target(slim)  # the combined index misses this change of the target's log
    put(slim, "gamma", "1.0")
    read.clear()
    report = both(out)
    assert read == [out / "simple"]
    assert report.pages_written == 3  # alpha (4.0), gamma and the root
    files = check_tree(out / "simple")
    assert {f["filename"] for f in files["alpha"]} == {
        f"alpha-{v}-py3-none-any.whl" for v in ("1.0", "2.0", "3.0", "4.0")
    }
    assert "beta" not in files and "gamma" in files
    # the log says what the pages list, whichever way it was written
    listed = {"slim/" + f["filename"] for page in files.values() for f in page}
    assert set(real(out / "simple")[0]) == listed
    read.clear()
    both(out)
    assert read == []  # agreeing again


def test_a_lost_log_is_never_taken_for_an_empty_folder(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state records the stamp of the log it describes: a log deleted or cut short by
    hand is not trusted to stand for an unlisted folder, nor for a target's changes."""
    slim = out / "slim"

    both(out)
    both(out)  # the folder's stamp recorded; the combined index agrees with the target's log
    before = {p: check_tree(p) for p in (slim / "simple", out / "simple")}
    (slim / "simple" / LOG_NAME).unlink()  # the folder is unchanged: its stamp holds
    both(out)
    assert {p: check_tree(p) for p in before} == before
    assert set(load_log(slim / "simple").ino) == {p.name for p in slim.glob("*.whl")}
    (out / "simple" / LOG_NAME).write_bytes(b"")
    put(slim, "gamma", "1.0")
    both(out)
    for simple, pages in before.items():
        after = check_tree(simple)
        assert set(after) == set(pages) | {"gamma"}
        assert all(after[p] == pages[p] for p in pages)
    assert set(load_log(out / "simple").ino) == {"slim/" + p.name for p in slim.glob("*.whl")}


def test_an_incremental_run_makes_objects_only_for_the_projects_it_checks(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder's listing and the log are compared as two dicts: a wheel of a project
    nothing touched gets no object, in the target index or the combined one."""
    slim = out / "slim"
    for i in range(12):
        put(slim, f"proj{i}", "1.0")
    both(out)
    made: list[str] = []
    real = scan.Found.__init__

    def counting(self: scan.Found, key: str, *args: Any) -> None:
        made.append(key)
        real(self, key, *args)

    monkeypatch.setattr(scan.Found, "__init__", counting)
    put(slim, "proj3", "2.0")
    swap(slim, "proj7", "1.0", requires=["x"])
    (slim / "proj9-1.0-py3-none-any.whl").unlink()
    listings: dict[Path, ix.Listing] = {}
    target = ix.write_index(slim, [ix.Source(folder=slim)], listings=listings)
    combined = ix.index_combined(out, [slim], listings=listings)
    assert sorted(made) == [
        "proj3-1.0-py3-none-any.whl",
        "proj3-2.0-py3-none-any.whl",
        "proj7-1.0-py3-none-any.whl",
    ]  # (the combined index takes over the same objects)
    assert (target.hashed, target.pages_written, target.pages_removed) == (2, 3, 1)
    assert (combined.hashed, combined.pages_written, combined.pages_removed) == (0, 3, 1)
    for simple in (slim / "simple", out / "simple"):
        files = check_tree(simple)
        assert "proj9" not in files and len(files["proj3"]) == 2
        proj7 = slim / files["proj7"][0]["filename"]
        assert files["proj7"][0]["hashes"]["sha256"] == sha256(proj7.read_bytes())
    assert not (slim / "proj9-1.0-py3-none-any.whl.metadata").exists()
    made.clear()
    assert both(out).pages_written == 0 and made == []


@pytest.mark.parametrize("chunk", [1 << 18, 40])
def test_the_log_is_read_by_stride_and_line_by_line_when_a_line_is_odd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Every line has three fields: key, project, inode (`-`, `-` once the pages stop
    listing the key); the last line of a key counts; a line cut short by a crash does not.
    A line edited by hand (another number of fields) costs a slower read, not the others.
    Read a slice at a time (`chunk` bytes and the rest of a line): the same."""
    monkeypatch.setattr(state, "_CHUNK", chunk)
    log = tmp_path / LOG_NAME
    lines = [
        "a-1.0-py3-none-any.whl\ta\t11",
        "b-1.0-py3-none-any.whl\tb\t12",
        "a-1.0-py3-none-any.whl\ta\t13",  # replaced
        "b-1.0-py3-none-any.whl\t-\t-",  # gone
        "c-1.0-py3-none-any.whl\tc\t14",
    ]
    log.write_text("\n".join(lines) + "\nd-1.0-py3-none-any.whl\td\t1")  # (cut short)
    read = load_log(tmp_path)
    assert (read.ino, read.project, read.lines) == (
        {"a-1.0-py3-none-any.whl": 13, "c-1.0-py3-none-any.whl": 14},
        {"a-1.0-py3-none-any.whl": "a", "c-1.0-py3-none-any.whl": "c"},
        5,
    )
    log.write_text("\n".join([*lines[:2], "junk", "x\ty\tz\tw", *lines[2:]]) + "\n")
    odd = load_log(tmp_path)
    assert (odd.ino, odd.project, odd.lines) == (read.ino, read.project, 7)
    log.write_text("")
    assert load_log(tmp_path).ino == {}


def test_a_stray_file_in_the_index_folder_is_no_page(out: Path) -> None:
    """Project folders are found by name (no entry per name): a file someone put among
    them is left alone, and is not taken for a page to remove at every run."""
    slim = out / "slim"
    ix.index_target(slim)
    (slim / "simple" / "NOTES.txt").write_text("mine")
    put(slim, "alpha", "3.0")
    assert ix.index_target(slim).pages_removed == 0
    assert ix.index_target(slim).pages_written == 0  # the root page is not rewritten
    assert (slim / "simple" / "NOTES.txt").read_text() == "mine"
    assert "NOTES.txt" not in (slim / "simple" / "index.html").read_text()


def test_a_run_that_only_adds_lists_the_folder_once_and_keeps_nothing_of_the_rest(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing is compared with the log as it is read; counts prove that every wheel
    of the log is still there with its sidecar. Only a run where one is gone lists the
    folder again, to learn which. A new wheel whose sidecar a stopped run left (written in
    place, before its page) gets it replaced whole."""
    slim = out / "slim"
    ix.index_target(slim)
    relisted: list[Path] = []
    real = scan.list_wheels

    def counting(src: scan.Source) -> Any:
        relisted.append(src.folder)
        return real(src)

    monkeypatch.setattr("wheelhouse.index.delta.list_wheels", counting)
    wheel = put(slim, "gamma", "1.0")
    Path(f"{wheel}.metadata").write_bytes(b"Metadata-Version: 2.1\nName: cut sh")
    swap(slim, "alpha", "1.0", requires=["x"])
    report = ix.index_target(slim)
    assert (report.hashed, relisted) == (2, [])
    with zipfile.ZipFile(wheel) as zf:
        assert Path(f"{wheel}.metadata").read_bytes() == zf.read("gamma-1.0.dist-info/METADATA")
    check_tree(slim / "simple")
    # from here on the run compares the listing with the last one's snapshot: what is gone
    # is what the compare finds missing, with no second listing
    (slim / "beta-1.0-py3-none-any.whl").unlink()
    assert ix.index_target(slim).pages_removed == 1 and relisted == []
    (slim / "alpha-1.0-py3-none-any.whl.metadata").unlink()
    ix.index_target(slim)
    assert (slim / "alpha-1.0-py3-none-any.whl.metadata").is_file()
    check_tree(slim / "simple")
    # without it, a wheel gone from the log's means a second listing, to learn which
    (slim / "simple" / SNAPSHOT_NAME).unlink()
    (slim / "gamma-1.0-py3-none-any.whl").unlink()
    assert ix.index_target(slim).pages_removed == 1 and relisted == [slim]
    check_tree(slim / "simple")
