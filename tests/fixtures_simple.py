"""A static simple repository as `wheelhouse index` writes it, and what the tests check it
with (imported by conftest.py): wheels put in a target folder, a JSON schema for PEP
691/700/714, `check_tree` (every page, link and metadata sidecar, byte by byte), snapshots
of a tree to see what a run rewrote, and the `out` folder most index tests start from."""

from __future__ import annotations

import hashlib
import html.parser
import json
import re
import zipfile
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urljoin

import jsonschema
import pytest
from fixtures_index import wheel_bytes, wheel_filename

__all__ = [
    "PROJECT_DETAIL_SCHEMA",
    "PROJECT_LIST_SCHEMA",
    "changed",
    "check_tree",
    "out",
    "pages",
    "parse_page",
    "put",
    "sha256",
    "snapshot",
]


def put(folder: Path, name: str, version: str, **kw: Any) -> Path:
    """A valid wheel in `folder` (see fixtures_index.wheel_bytes for the keywords)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / wheel_filename(name, version, kw.get("tags", "py3-none-any"))
    path.write_bytes(wheel_bytes(name, version, **kw))
    return path


def swap(folder: Path, name: str, version: str, **kw: Any) -> Path:
    """Replace a wheel with other bytes under the same name as a rebuild, `mv` or `install`
    does: a new file renamed over the name (a new inode; writing in place keeps it)."""
    path = folder / wheel_filename(name, version, kw.get("tags", "py3-none-any"))
    tmp = folder / f".{path.name}.swap"
    tmp.write_bytes(wheel_bytes(name, version, **kw))
    tmp.replace(path)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Links(html.parser.HTMLParser):
    """Anchors (attributes, as a browser or pip decodes them) and meta tags of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.meta: dict[str, str | None] = {}
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))
            self._text = []
        elif tag == "meta":
            d = dict(attrs)
            if d.get("name"):
                self.meta[str(d["name"])] = d.get("content")

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._text is not None:
            self.anchors[-1]["#text"] = "".join(self._text)
            self._text = None


def parse_page(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under `folder`: bytes, inode, mtime_ns (a rewrite changes the inode)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".tmp" not in p.relative_to(folder).parts:
            st = p.stat()
            out[p.relative_to(folder).as_posix()] = (p.read_bytes(), st.st_ino, st.st_mtime_ns)
    return out


def pages(snap: dict[str, tuple[bytes, int, int]]) -> dict[str, tuple[bytes, int, int]]:
    return {k: v for k, v in snap.items() if k.endswith(("index.html", "index.json"))}


def changed(
    before: dict[str, tuple[bytes, int, int]], after: dict[str, tuple[bytes, int, int]]
) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# -- PEP 691 (+ PEP 700, PEP 714) JSON schema ---------------------------------------------------

_HASHES = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]+$"},
}


_META = {
    "type": "object",
    "properties": {"api-version": {"type": "string", "const": "1.1"}},
    "required": ["api-version"],
}


PROJECT_LIST_SCHEMA = {
    "type": "object",
    "required": ["meta", "projects"],
    "properties": {
        "meta": _META,
        "projects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}},
            },
        },
    },
}


PROJECT_DETAIL_SCHEMA = {
    "type": "object",
    "required": ["meta", "name", "files", "versions"],
    "properties": {
        "meta": _META,
        "name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"},
        "versions": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["filename", "url", "hashes", "size", "upload-time"],
                "properties": {
                    "filename": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "minLength": 1},
                    "hashes": _HASHES,
                    "requires-python": {"type": "string"},
                    "core-metadata": {"oneOf": [{"type": "boolean"}, _HASHES]},
                    "dist-info-metadata": {"oneOf": [{"type": "boolean"}, _HASHES]},
                    "gpg-sig": {"type": "boolean"},
                    "yanked": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
                    "size": {"type": "integer", "minimum": 0},
                    "upload-time": {
                        "type": "string",
                        "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$",
                    },
                },
                "additionalProperties": False,
            },
        },
    },
}


def every_link_resolves(simple: Path) -> None:
    """Each page on its own (a run cut short between a project's HTML and its JSON leaves
    the two saying different things, both true): the root's projects have their pages;
    every file link resolves to a file with the advertised sha256, every advertised
    sidecar to the METADATA with the advertised sha256."""
    root = json.loads((simple / "index.json").read_text())
    named = [p["name"] for p in root["projects"]]
    named += [str(a["href"]).rstrip("/") for a in parse_page(simple / "index.html").anchors]
    for project in named:
        assert (simple / project / "index.html").is_file(), f"{project}: no page"
    for page_dir in (p for p in simple.iterdir() if p.is_dir() and p.name[0] != "."):
        doc = json.loads((page_dir / "index.json").read_text())
        links = [(f["url"], f["hashes"]["sha256"], f["core-metadata"]) for f in doc["files"]]
        for a in parse_page(page_dir / "index.html").anchors:
            url, _, fragment = str(a["href"]).partition("#sha256=")
            meta = a.get("data-core-metadata")
            links.append((url, fragment, {"sha256": meta.removeprefix("sha256=")} if meta else {}))
        for url, digest, meta in links:
            path = Path(unquote(urljoin(f"{page_dir.as_uri()}/", url)))
            path = Path(path.as_posix().removeprefix("file:"))
            assert sha256(path.read_bytes()) == digest, f"{page_dir.name}: {url}"
            if meta:
                sidecar = path.with_name(path.name + ".metadata").read_bytes()
                assert sha256(sidecar) == meta["sha256"], f"{page_dir.name}: {url} metadata"


def check_tree(simple: Path, *, complete: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Everything a client may rely on, for every page of an index: the JSON passes the
    schema and says what the HTML says; every link is relative and resolves to a file whose
    sha256 and size are the advertised ones; every sidecar holds the wheel's METADATA bytes
    with the advertised hash; the root links a page for every project it names (and, when
    `complete`, names every page there is: an interrupted run may have written a new
    project's page and not yet the root that links it). Returns {project: JSON files}."""
    root_html = parse_page(simple / "index.html")
    root_json = json.loads((simple / "index.json").read_bytes())
    jsonschema.validate(root_json, PROJECT_LIST_SCHEMA)
    assert root_html.meta["pypi:repository-version"] == "1.1"
    names = [cast(str, a["#text"]) for a in root_html.anchors]  # set for every anchor
    assert [a["href"] for a in root_html.anchors] == [f"{n}/" for n in names]
    assert [p["name"] for p in root_json["projects"]] == names
    on_disk = sorted(p.name for p in simple.iterdir() if p.is_dir() and p.name[0] != ".")
    assert set(names) <= set(on_disk), "the root links a project page that is not there"
    if complete:
        assert on_disk == sorted(names), "a project page that the root does not link"
    out = {}
    for name in on_disk:
        page_dir = simple / name
        page = parse_page(page_dir / "index.html")
        doc = json.loads((page_dir / "index.json").read_bytes())
        jsonschema.validate(doc, PROJECT_DETAIL_SCHEMA)
        assert page.meta["pypi:repository-version"] == "1.1"
        assert doc["name"] == name
        assert len(page.anchors) == len(doc["files"]) > 0
        versions = []
        for a, f in zip(page.anchors, doc["files"], strict=True):
            href = str(a["href"])
            url, _, fragment = href.partition("#")
            assert "://" not in href and not href.startswith("/"), href
            assert url == f["url"] and a["#text"] == f["filename"]
            assert fragment == f"sha256={f['hashes']['sha256']}"
            path = Path(unquote(urljoin(f"file://{page_dir}/", url)[len("file://") :]))
            data = path.read_bytes()  # the link resolves to a file that is there
            assert sha256(data) == f["hashes"]["sha256"] and len(data) == f["size"]
            assert path.name == f["filename"]
            assert a.get("data-requires-python") == f.get("requires-python")
            meta = path.with_name(path.name + ".metadata").read_bytes()
            with zipfile.ZipFile(path) as zf:
                inside = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
                assert meta == zf.read(inside[0])
            assert f["core-metadata"] == f["dist-info-metadata"] == {"sha256": sha256(meta)}
            assert (
                a["data-core-metadata"] == a["data-dist-info-metadata"] == f"sha256={sha256(meta)}"
            )
            if f["yanked"] is False:
                assert "data-yanked" not in a
            else:
                assert a["data-yanked"] == ("" if f["yanked"] is True else f["yanked"])
            versions.append(re.split(r"-", f["filename"])[1])
        assert doc["versions"] == list(dict.fromkeys(versions))
        out[name] = doc["files"]
    return out


# -- the output folder most tests index ------------------------------------------------------


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output folder with one target `slim`: alpha 1.0, alpha 2.0 (needs Python 3.99),
    beta 1.0 (needs alpha), and Foo_Bar.baz 1.0 (an odd name, Requires-Python with `<`)."""
    o = tmp_path / "wheelhouse"
    slim = o / "slim"
    put(slim, "alpha", "1.0")
    put(slim, "alpha", "2.0", requires_python=">=3.99")
    put(slim, "beta", "1.0", requires=["alpha"])
    put(slim, "Foo_Bar.baz", "1.0", requires_python=">=3.8,<4")
    return o


def fast_runs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Per index run from now on: whether it compared its listing with the snapshot
    (`delta.plan_listed`), not with the log."""
    from wheelhouse.index import delta

    fast: list[bool] = []
    real = delta.plan_listed

    def counting(*args: Any, **kw: Any) -> Any:
        result = real(*args, **kw)
        fast.append(result is not None)
        return result

    monkeypatch.setattr(delta, "plan_listed", counting)
    return fast
