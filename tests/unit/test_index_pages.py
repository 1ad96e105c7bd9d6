"""Project pages are the same bytes whatever way they are built: the pinned pages of a
varied project (local versions, `+` and `!` quoted, a non-ASCII name, yanks with and
without a reason, Requires-Python with `<` and quotes, a combined index's prefix, mtimes
before 1970), a page of many versions in PEP 440 order, and the JSON page is the text
json.dumps() writes of what it holds, with upload-times as time.strftime() writes them."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
from pathlib import Path

from wheelhouse.index.render import PageFile, render_project

PINNED = Path(__file__).parent.parent / "fixtures" / "index-pages"


def _rec(
    size: int, mtime: int, ino: int, project: str, version: str, rp: str | None, meta_size: int
) -> list[object]:
    # (the order of state.FileRecord: size, mtime, inode, project, version, sha256,
    # Requires-Python, METADATA's sha256, METADATA's size)
    return [
        size,
        mtime,
        ino,
        project,
        version,
        hashlib.sha256(f"w{ino}".encode()).digest(),
        rp,
        hashlib.sha256(f"m{ino}".encode()).digest(),
        meta_size,
    ]


ODD: list[PageFile] = [
    (
        "odd_name-1.0+local.2-py3-none-any.whl",
        _rec(1234, 1_700_000_000_123_456_789, 11, "odd-name", "1.0+local.2", ">=3.8,<4", 321),
        False,
    ),
    (
        "odd_name-1.0-py3-none-any.whl",
        _rec(99, 0, 12, "odd-name", "1.0", None, 10),
        'broken <build> & "quoted"',
    ),
    (
        "odd_name-1.0.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        _rec(5, -1_000_000_001, 13, "odd-name", "1.0.0", "", 7),
        True,
    ),
    (
        "slim/odd_name-2.0rc1-py3-none-any.whl",
        _rec(77, 1_600_000_000_000_000_000, 14, "odd-name", "2.0rc1", '>="3" <x>', 8),
        "",
    ),
    (
        "odd_name-1!0.5-py3-none-any.whl",
        _rec(1, 1_650_000_000_999_999_999, 15, "odd-name", "1!0.5", "~=3.10", 9),
        False,
    ),
    (
        "odd_nam\u00e9-0.9-py3-none-any.whl",
        _rec(2, 1_650_000_003_000_000_000, 16, "odd-name", "0.9", "\u2265 3", 9),
        "\u00e9\n\t\\",
    ),
]

MANY_VERSIONS = [
    "1.9",
    "1.10",
    "1.0.post1",
    "1.0",
    "1.0a1",
    "1.0b2",
    "1.0rc1",
    "1.0.dev3",
    "2!0.1",
    "0.0.1",
    "1.0+abc.5",
    "1.0+abc.10",
    "1.0+2",
    "10.0",
    "9.99.999",
    "1.0.post1.dev2",
    "3.0",
    "3.0.0.0",
]
TAGS = ["py3-none-any", "cp312-cp312-win_amd64", "cp311-abi3-macosx_11_0_arm64"]


def _many() -> list[PageFile]:
    files: list[PageFile] = []
    for i, (tag, version) in enumerate(itertools.product(TAGS, MANY_VERSIONS)):
        rec = _rec(
            100 + i,
            1_700_000_000_000_000_000 + i * 3_600_000_000_123,
            100 + i,
            "many",
            version,
            ">=3.9" if i % 2 else None,
            50 + i,
        )
        files.append((f"many-{version}-{tag}.whl", rec, i % 7 == 0))
    return files


def test_a_varied_project_page_is_the_pinned_bytes_in_any_input_order() -> None:
    want = ((PINNED / "odd-name.html").read_bytes(), (PINNED / "odd-name.json").read_bytes())
    orders = [ODD, ODD[::-1], random.Random(18).sample(ODD, len(ODD))]
    for files in orders:
        assert render_project("odd-name", files) == want


def test_a_page_of_many_versions_is_the_pinned_bytes_in_pep_440_order() -> None:
    files = _many()
    random.Random(3).shuffle(files)
    page, doc = render_project("many", files)
    # (the digests of the pages rendered by json.dumps of the page's dict, before it was
    # written directly)
    assert hashlib.sha256(page).hexdigest() == (
        "126e9f916feb2d29910732052789f0364e105d4babcd223d856495ab68610f9d"
    )
    assert hashlib.sha256(doc).hexdigest() == (
        "bb80db78e00f96690bb2634a5ac2bc889c52d09460aaef35f3dddbde9c158bde"
    )
    versions = json.loads(doc)["versions"]
    assert versions[:9] == [
        "0.0.1",
        "1.0.dev3",
        "1.0a1",
        "1.0b2",
        "1.0rc1",
        "1.0",
        "1.0+abc.5",
        "1.0+abc.10",
        "1.0+2",
    ]
    assert versions[-3:] == ["9.99.999", "10.0", "2!0.1"]
    # a version's files in key order
    names = [f["filename"] for f in json.loads(doc)["files"][:3]]
    assert names == sorted(names)


def _random_files(rnd: random.Random) -> list[PageFile]:
    chars = "az09._-+!~ %\u00e9\u2603\"<>&'\\\n\t\x7f"
    files: list[PageFile] = []
    for i in range(rnd.randint(1, 12)):
        stem = "".join(rnd.choice(chars) for _ in range(rnd.randint(1, 12)))
        version = rnd.choice(MANY_VERSIONS)
        key = rnd.choice(["", "slim/", "a b/"]) + f"{stem}-{version}-{i}-py3-none-any.whl"
        rp = rnd.choice([None, "", ">=3.8", '<4,>"3"', "\u2265\x00"])
        yanks: list[str | bool] = [False, True, "", "why & <how>", "\u00e9\u2028\x1f"]
        yank = rnd.choice(yanks)
        mtime = rnd.choice([0, -1, rnd.randrange(-(2**62), 2**62)])
        rec = _rec(rnd.randrange(2**40), mtime, i, "p", version, rp, rnd.randrange(2**20))
        files.append((key, rec, yank))
    return files


def test_the_json_page_is_what_json_dumps_writes() -> None:
    rnd = random.Random(691)
    for _ in range(300):
        files = _random_files(rnd)
        name = rnd.choice(["p", "odd-name", '\u00e9"\\'])
        _, doc = render_project(name, files)
        parsed = json.loads(doc)
        assert json.dumps(parsed).encode() == doc
        assert parsed["name"] == name
        by_name = {f[0].rpartition("/")[2]: f for f in files}
        for entry in parsed["files"]:
            _key, rec, yank = by_name[entry["filename"]]
            seconds, rest = divmod(rec[1], 1_000_000_000)
            clock = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            assert entry["upload-time"] == f"{clock}.{rest // 1000:06d}Z"
            assert entry["yanked"] == (yank if yank != "" else True)
            assert entry.get("requires-python") == (rec[6] or None)
            assert entry["size"] == rec[0]
