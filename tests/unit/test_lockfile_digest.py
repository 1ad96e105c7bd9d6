"""The lock-digest: a lock cut short or edited anywhere reads as damaged; one written
before lock-digests existed reads as unverified (and its pins as before); the digest is
the sha256 of every other line, so the same lock is the same bytes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from wheelhouse.errors import InputError
from wheelhouse.lock import lockfile
from wheelhouse.lock.lockfile import LockFile, Pin


def h(c: str) -> str:
    return "sha256:" + c * 64


LOCK = LockFile(
    target="slim",
    target_description="cp3.11.2, glibc 2.36, x86_64",
    inputs_digest="sha256:" + "f" * 64,
    pins=(
        Pin(name=canonicalize_name("alpha"), version="1.0", hashes=(h("1"), h("2")), via=("x",)),
        Pin(name=canonicalize_name("beta"), version="2.0", hashes=(h("3"),), source_build=True),
        Pin(name=canonicalize_name("gamma"), version="3.0", hashes=(h("4"), h("5"), h("6"))),
    ),
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slim.txt"
    path.write_bytes(text.encode())
    return path


def integrity(tmp_path: Path, text: str) -> str:
    back = lockfile.read(write(tmp_path, text))
    assert back is not None
    return back.integrity


def test_the_digest_is_the_sha256_of_every_other_line() -> None:
    text = LOCK.render()
    lines = text.splitlines()
    m = re.fullmatch(r"# lock-digest: (sha256:[0-9a-f]{64})", lines[3])
    assert m, lines[3]
    rest = "".join(f"{line}\n" for i, line in enumerate(lines) if i != 3)
    assert m.group(1) == "sha256:" + hashlib.sha256(rest.encode()).hexdigest()
    assert LOCK.render() == text  # deterministic: the same lock, the same bytes


def test_an_intact_lock_reads_back_whole(tmp_path: Path) -> None:
    back = lockfile.read(write(tmp_path, LOCK.render()))
    assert back is not None
    assert back.integrity == "intact"
    assert back.pins == LOCK.pins
    assert back.render() == LOCK.render()


def test_line_ends_turned_into_crlf_still_match(tmp_path: Path) -> None:
    assert integrity(tmp_path, LOCK.render().replace("\n", "\r\n")) == "intact"


def pin_boundaries(text: str) -> list[int]:
    """Offsets where a pin line starts (a cut there leaves whole pins only)."""
    return [m.start() for m in re.finditer(r"^[a-z]", text, flags=re.MULTILINE)]


def test_a_lock_cut_at_any_pin_boundary_is_damaged(tmp_path: Path) -> None:
    text = LOCK.render()
    cuts = pin_boundaries(text)[1:]
    assert len(cuts) == 2
    for cut in cuts:
        short = text[:cut]
        assert lockfile.parse_pins(short, "x")  # what a reader without the digest accepts
        assert integrity(tmp_path, short) == "damaged", short


@pytest.mark.parametrize("keep", [10, 40, 63])
def test_a_lock_cut_mid_hash_is_damaged_not_a_parse_error(tmp_path: Path, keep: int) -> None:
    text = LOCK.render()
    at = text.index(h("5")) + len("sha256:") + keep
    back = lockfile.read(write(tmp_path, text[:at]))
    assert back is not None and back.integrity == "damaged"


def test_a_lock_cut_mid_name_is_damaged(tmp_path: Path) -> None:
    text = LOCK.render()
    at = text.index("gamma==") + 3  # "gam": the parser alone would call it not a pin
    with pytest.raises(Exception, match="not a pinned requirement"):
        lockfile.parse_pins(text[:at], "x")
    back = lockfile.read(write(tmp_path, text[:at]))
    assert back is not None and back.integrity == "damaged"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("alpha==1.0", "alpha==0.9"),  # a version
        (h("3"), h("7")),  # a hash swapped
        (f"    --hash={h('2')}\n", ""),  # a hash removed (the line before keeps its "\")
        ("# source-builds: beta", "# source-builds: -"),  # the header
        ("    # via x\n", ""),  # even a comment
        ("gamma==3.0", "gamma==3.0 "),  # trailing whitespace
    ],
)
def test_an_edited_lock_is_damaged(tmp_path: Path, old: str, new: str) -> None:
    text = LOCK.render()
    assert old in text
    assert integrity(tmp_path, text.replace(old, new, 1)) == "damaged"


def test_an_edited_digest_line_is_damaged(tmp_path: Path) -> None:
    text = LOCK.render()
    digest = text.splitlines()[3].split(": ")[1]
    assert integrity(tmp_path, text.replace(digest, h("0"))) == "damaged"


def test_a_lock_without_a_digest_is_unverified_and_reads_as_before(tmp_path: Path) -> None:
    """What an older wheelhouse wrote: no lock-digest line."""
    old = "".join(f"{x}\n" for x in LOCK.render().splitlines() if "lock-digest" not in x)
    back = lockfile.read(write(tmp_path, old))
    assert back is not None
    assert back.integrity == "unverified"
    assert back.pins == LOCK.pins
    assert back.inputs_digest == LOCK.inputs_digest


def test_a_cut_above_the_digest_leaves_nothing_that_passes_for_a_lock(tmp_path: Path) -> None:
    text = LOCK.render()
    short = text[: text.index("# lock-digest")]
    back = lockfile.read(write(tmp_path, short))
    assert back is not None
    # unverified, but with no pins and no inputs-digest: build refuses it ("pins
    # nothing") and `lock --check` calls it stale
    assert (back.integrity, back.pins, back.inputs_digest) == ("unverified", (), "")


def test_a_lock_that_is_not_utf8_is_refused_naming_the_byte_not_a_crash(tmp_path: Path) -> None:
    data = LOCK.render().encode().replace(b"alpha==1.0", b"alpha==\xff.0")
    path = tmp_path / "slim.txt"
    path.write_bytes(data)
    offset = data.index(b"\xff")
    with pytest.raises(InputError) as info:
        lockfile.read(path)
    assert info.value.message == f"{path}: not UTF-8 at byte {offset}"
