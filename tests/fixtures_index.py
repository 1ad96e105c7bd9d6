"""A real package index for tests: PEP 503 HTML and PEP 691 JSON over HTTP on loopback.

The index is a folder of files served by a ThreadingHTTPServer on 127.0.0.1 (port 0).
Every page is generated from the folder when it is requested, so a test can publish a
new release mid-test and the next resolver run sees it. Pages carry what real indexes
carry: `#sha256=` fragments (JSON `hashes`), `data-requires-python` (HTML-escaped) /
`requires-python`, and PEP 658/714 metadata files for wheels.

The files are made here, byte-for-byte deterministic:

* wheels for any tag, with `.dist-info/METADATA`, `WHEEL`, `RECORD` and a module;
* sdists that pip and uv can get metadata from, and build, with no network: they carry
  an in-tree PEP 517 backend (`requires = []`, `backend-path = ["."]`), so no setuptools.

    index = LocalIndex(tmp_path / "index").start()
    index.add_wheel("alpha", "1.0", requires_python=">=3.12")
    index.add_sdist("delta", "1.0", requires=["gamma"])
    index.url        # http://127.0.0.1:PORT/simple

Fixtures: `local_index` (session scoped, the default corpus; do not change it),
`fresh_index` (a new index with the default corpus per test: change it freely) and
`make_index` (a factory for empty or default indexes).

Run `python tests/fixtures_index.py` to serve the default corpus for manual poking.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import io
import json
import posixpath
import re
import shutil
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.tags import parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

__all__ = [
    "DEFAULT_CORPUS",
    "JSON_V1",
    "IndexRequest",
    "LocalIndex",
    "RecordingProxy",
    "fresh_index",
    "local_index",
    "make_index",
    "outside_network",
    "populate_default",
    "sdist_bytes",
    "sdist_filename",
    "wheel_bytes",
    "wheel_filename",
]

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_TAR_MTIME = 315532800  # 1980-01-01, like the zip entries


# -- file makers ------------------------------------------------------------------------


def _dist_name(name: str) -> str:
    """The escaped name used in wheel and sdist file names and .dist-info folders."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _module_name(name: str) -> str:
    return _dist_name(name)


def _metadata(
    name: str,
    version: str,
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    metadata_version: str = "2.1",
) -> str:
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {name}, a test package made by tests/fixtures_index.py",
    ]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _zip(entries: Sequence[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def wheel_filename(name: str, version: str, tags: str = "py3-none-any") -> str:
    return f"{_dist_name(name)}-{Version(version)}-{tags}.whl"


def wheel_bytes(
    name: str,
    version: str,
    tags: str = "py3-none-any",
    requires: Sequence[str] = (),
    requires_python: str | None = None,
) -> bytes:
    """A valid wheel: module, METADATA, WHEEL (one Tag line per expanded tag), RECORD."""
    version = str(Version(version))
    expanded = sorted(str(t) for t in parse_tag(tags))
    pure = all(t.endswith("-none-any") for t in expanded)
    mod = _module_name(name)
    info = f"{_dist_name(name)}-{version}.dist-info"
    wheel_meta = "Wheel-Version: 1.0\nGenerator: fixtures_index\n"
    wheel_meta += f"Root-Is-Purelib: {'true' if pure else 'false'}\n"
    wheel_meta += "".join(f"Tag: {t}\n" for t in expanded)
    files = [
        (f"{mod}/__init__.py", f'__version__ = "{version}"\nTAGS = "{tags}"\n'.encode()),
        (f"{info}/METADATA", _metadata(name, version, requires, requires_python).encode()),
        (f"{info}/WHEEL", wheel_meta.encode()),
    ]
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files)
    record += f"{info}/RECORD,,\n"
    return _zip([*files, (f"{info}/RECORD", record.encode())])


def sdist_filename(name: str, version: str) -> str:
    return f"{_dist_name(name)}-{Version(version)}.tar.gz"


# The in-tree PEP 517 backend every generated sdist carries. Stdlib only, so a build
# environment with nothing installed (build-system.requires = []) can run it offline.
_BACKEND = '''\
"""A tiny PEP 517 backend: metadata from PKG-INFO, a py3-none-any wheel of the packages."""

import base64
import hashlib
import os
import re
import tarfile
import zipfile
from email.parser import HeaderParser

_SKIP = {"PKG-INFO", "pyproject.toml", "backend.py"}


def _meta():
    with open("PKG-INFO", encoding="utf-8") as f:
        text = f.read()
    msg = HeaderParser().parsestr(text)
    return text, msg["Name"], msg["Version"]


def _dist(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _files():
    out = []
    for top in sorted(os.listdir(".")):
        if top in _SKIP or not os.path.isdir(top) or top.startswith("."):
            continue
        for folder, dirs, names in os.walk(top):
            dirs.sort()
            for n in sorted(names):
                if n.endswith(".pyc"):
                    continue
                path = os.path.join(folder, n)
                with open(path, "rb") as f:
                    out.append((path.replace(os.sep, "/"), f.read()))
    return out


def _dist_info():
    text, name, version = _meta()
    info = "%s-%s.dist-info" % (_dist(name), version)
    wheel = "Wheel-Version: 1.0\\nGenerator: fixtures_index backend\\n"
    wheel += "Root-Is-Purelib: true\\nTag: py3-none-any\\n"
    return info, [(info + "/METADATA", text.encode()), (info + "/WHEEL", wheel.encode())]


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info, files = _dist_info()
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    for path, data in files:
        with open(os.path.join(metadata_directory, path), "wb") as f:
            f.write(data)
    return info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _, name, version = _meta()
    info, meta = _dist_info()
    files = _files() + meta
    record = ""
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record += "%s,sha256=%s,%d\\n" % (path, digest.decode(), len(data))
    record += info + "/RECORD,,\\n"
    files.append((info + "/RECORD", record.encode()))
    filename = "%s-%s-py3-none-any.whl" % (_dist(name), version)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w",
                         zipfile.ZIP_DEFLATED) as zf:
        for path, data in files:
            zi = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    _, name, version = _meta()
    base = "%s-%s" % (_dist(name), version)
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tf:
        for top in sorted(os.listdir(".")):
            if not top.startswith("."):
                tf.add(top, arcname=base + "/" + top)
    return filename
'''


def sdist_bytes(
    name: str,
    version: str,
    requires: Sequence[str] = (),
    requires_python: str | None = None,
) -> bytes:
    """A valid sdist (PEP 625 name, PKG-INFO, pyproject.toml) with an in-tree backend."""
    version = str(Version(version))
    base = f"{_dist_name(name)}-{version}"
    mod = _module_name(name)
    deps = ", ".join(json.dumps(r) for r in requires)
    pyproject = (
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
    )
    if requires_python:
        pyproject += f'requires-python = "{requires_python}"\n'
    files = [
        ("PKG-INFO", _metadata(name, version, requires, requires_python).encode()),
        ("backend.py", _BACKEND.encode()),
        ("pyproject.toml", pyproject.encode()),
        (f"{mod}/__init__.py", f'__version__ = "{version}"\nTAGS = "sdist"\n'.encode()),
    ]
    return sdist_tarball(base, [base, f"{base}/{mod}"], dict(files))


def sdist_tarball(base: str, folders: Sequence[str], files: Mapping[str, bytes]) -> bytes:
    """A reproducible .tar.gz (fixed mtimes and modes, PAX): `folders`, then `files`
    (path under `base` -> bytes) in sorted order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for folder in folders:
            ti = tarfile.TarInfo(folder)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, _TAR_MTIME
            tf.addfile(ti)
        for path, data in sorted(files.items()):
            ti = tarfile.TarInfo(f"{base}/{path}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, _TAR_MTIME
            tf.addfile(ti, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


# -- reading files back (the index is backed by a folder, not by what add_* was told) ----


@dataclass(frozen=True)
class _FileInfo:
    filename: str
    project: str  # canonical name
    version: Version
    sha256: str
    size: int
    requires_python: str | None
    metadata: bytes | None  # PEP 658: a wheel's METADATA, served as <file>.metadata


def _read_file(path: Path) -> _FileInfo | None:
    name = path.name
    data = path.read_bytes()
    metadata: bytes | None = None
    try:
        if name.endswith(".whl"):
            project, version, _, _ = parse_wheel_filename(name)
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                meta = [
                    n
                    for n in zf.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
                ]
                metadata = zf.read(meta[0]) if meta else None
            text = metadata.decode() if metadata else ""
        elif name.endswith((".tar.gz", ".zip")):
            project, version = parse_sdist_filename(name)
            text = ""
            if name.endswith(".tar.gz"):
                with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                    for member in tf.getmembers():
                        if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                            f = tf.extractfile(member)
                            text = f.read().decode() if f else ""
                            break
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, zipfile.BadZipFile, tarfile.TarError):
        return None
    requires_python = HeaderParser().parsestr(text).get("Requires-Python") if text else None
    return _FileInfo(
        filename=name,
        project=canonicalize_name(project),
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        requires_python=requires_python,
        metadata=metadata,
    )


# -- the index ------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexRequest:
    """One request the server answered, for tests that assert who fetched what."""

    method: str
    path: str
    user_agent: str
    accept: str
    status: int
    content_type: str

    @property
    def is_file(self) -> bool:
        return self.path.startswith("/files/") and not self.path.endswith(".metadata")


def _accepts_json(accept: str) -> bool:
    """Content negotiation between PEP 691 JSON and HTML by the Accept header's q values."""
    best: dict[str, float] = {}
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mime, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            key, _, value = f.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[mime] = max(q, best.get(mime, 0.0))
    json_q = best.get(JSON_V1, 0.0)
    html_q = max(best.get(HTML_V1, 0.0), best.get("text/html", 0.0), best.get("*/*", 0.0))
    return json_q > 0 and json_q >= html_q


class LocalIndex:
    """A folder of wheels and sdists, served as a PEP 503/691 simple index on loopback.

    Knobs a test may turn at any time (pages are made per request):
      serve_json        answer PEP 691 JSON when the Accept header asks for it
      advertise_hashes  put sha256 in the pages (off: an index that publishes no hashes)
      serve_metadata    PEP 658/714 `.metadata` files for wheels
      wrong_hashes      {filename: hex} advertised instead of the real sha256
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.serve_json = True
        self.advertise_hashes = True
        self.serve_metadata = True
        self.wrong_hashes: dict[str, str] = {}
        self.requests: list[IndexRequest] = []
        self._lock = threading.Lock()
        self._infos: dict[tuple[str, int, int], _FileInfo | None] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> LocalIndex:
        index = self

        class Handler(_Handler):
            pass

        Handler.index = index
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"local-index-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LocalIndex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "the index is not started"
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The index URL to give pip/uv/wheelhouse: http://127.0.0.1:PORT/simple"""
        return f"{self.base}/simple"

    def file_url(self, filename: str) -> str:
        return f"{self.base}/files/{urllib.parse.quote(filename)}"

    # publishing

    def add_bytes(self, filename: str, data: bytes) -> Path:
        path = self.root / filename
        tmp = path.with_name(f".{filename}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a half-written file is never listed
        return path

    def add_file(self, path: Path) -> Path:
        return self.add_bytes(Path(path).name, Path(path).read_bytes())

    def add_wheel(
        self,
        name: str,
        version: str,
        tags: str = "py3-none-any",
        requires: Sequence[str] = (),
        requires_python: str | None = None,
    ) -> Path:
        return self.add_bytes(
            wheel_filename(name, version, tags),
            wheel_bytes(name, version, tags, requires, requires_python),
        )

    def add_sdist(
        self,
        name: str,
        version: str,
        requires: Sequence[str] = (),
        requires_python: str | None = None,
    ) -> Path:
        return self.add_bytes(
            sdist_filename(name, version), sdist_bytes(name, version, requires, requires_python)
        )

    def remove(self, filename: str) -> None:
        (self.root / filename).unlink()

    # reading

    def _all(self) -> list[_FileInfo]:
        out = []
        for path in sorted(self.root.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            st = path.stat()
            key = (path.name, st.st_mtime_ns, st.st_size)
            with self._lock:
                if key not in self._infos:
                    self._infos[key] = _read_file(path)
                info = self._infos[key]
            if info is not None:
                out.append(info)
        return out

    def files(self, project: str | None = None, version: str | None = None) -> list[str]:
        """File names, optionally of one project (and version)."""
        want = canonicalize_name(project) if project else None
        return [
            f.filename
            for f in self._all()
            if (want is None or f.project == want)
            and (version is None or f.version == Version(version))
        ]

    def sha256(self, filename: str) -> str:
        return hashlib.sha256((self.root / filename).read_bytes()).hexdigest()

    def hashes(self, *filenames: str) -> set[str]:
        """{"sha256:<hex>", ...} as a lock spells them."""
        return {f"sha256:{self.sha256(f)}" for f in filenames}

    def projects(self) -> list[str]:
        return sorted({f.project for f in self._all()})

    def file_requests(self, user_agent_prefix: str = "") -> list[str]:
        """File names downloaded (not .metadata), optionally by one client."""
        with self._lock:
            reqs = list(self.requests)
        return [
            urllib.parse.unquote(r.path.rsplit("/", 1)[-1])
            for r in reqs
            if r.is_file
            and r.method == "GET"
            and r.status == 200
            and r.user_agent.startswith(user_agent_prefix)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _log(self, request: IndexRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # pages

    def _advertised(self, f: _FileInfo) -> str | None:
        if not self.advertise_hashes:
            return None
        return self.wrong_hashes.get(f.filename, f.sha256)

    def project_html(self, project: str) -> str:
        rows = []
        for f in self._all():
            if f.project != project:
                continue
            href = "../../files/" + urllib.parse.quote(f.filename)
            digest = self._advertised(f)
            if digest:
                href += f"#sha256={digest}"
            attrs = f'href="{html.escape(href)}"'
            if f.requires_python:
                attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
            if self.serve_metadata and f.metadata is not None:
                meta = f"sha256={hashlib.sha256(f.metadata).hexdigest()}"
                attrs += f' data-core-metadata="{meta}" data-dist-info-metadata="{meta}"'
            rows.append(f"    <a {attrs}>{html.escape(f.filename)}</a><br>")
        return (
            "<!DOCTYPE html>\n<html>\n  <head>\n"
            '    <meta name="pypi:repository-version" content="1.1">\n'
            f"    <title>Links for {project}</title>\n  </head>\n  <body>\n"
            f"    <h1>Links for {project}</h1>\n" + "\n".join(rows) + "\n  </body>\n</html>\n"
        )

    def project_json(self, project: str) -> str:
        files = []
        versions = set()
        for f in self._all():
            if f.project != project:
                continue
            versions.add(f.version)
            digest = self._advertised(f)
            entry: dict[str, object] = {
                "filename": f.filename,
                "url": "../../files/" + urllib.parse.quote(f.filename),
                "hashes": {"sha256": digest} if digest else {},
                "size": f.size,
                "yanked": False,
            }
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            if self.serve_metadata and f.metadata is not None:
                meta = {"sha256": hashlib.sha256(f.metadata).hexdigest()}
                entry["core-metadata"] = meta
                entry["dist-info-metadata"] = meta
            files.append(entry)
        doc = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": files,
            "versions": [str(v) for v in sorted(versions)],
        }
        return json.dumps(doc, indent=1)

    def root_html(self) -> str:
        rows = "\n".join(f'    <a href="{p}/">{p}</a><br>' for p in self.projects())
        return (
            "<!DOCTYPE html>\n<html>\n  <head>\n"
            '    <meta name="pypi:repository-version" content="1.1">\n'
            "    <title>Simple index</title>\n  </head>\n  <body>\n"
            + rows
            + "\n  </body>\n</html>\n"
        )

    def root_json(self) -> str:
        doc = {"meta": {"api-version": "1.1"}, "projects": [{"name": p} for p in self.projects()]}
        return json.dumps(doc, indent=1)


class _Handler(BaseHTTPRequestHandler):
    """/simple/ and /simple/<project>/ (HTML or JSON), /files/<file>[.metadata]."""

    index: LocalIndex
    protocol_version = "HTTP/1.1"
    server_version = "fixtures-index/1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the request log is self.index.requests

    def do_GET(self) -> None:
        self._respond(body=True)

    def do_HEAD(self) -> None:
        self._respond(body=False)

    def _respond(self, *, body: bool) -> None:
        status, ctype, data, extra = self._route()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=0, must-revalidate")
        if ctype.startswith(("application/vnd.pypi", "text/html")):
            self.send_header("Vary", "Accept")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(data)
        self.index._log(
            IndexRequest(
                method=self.command,
                path=urllib.parse.urlsplit(self.path).path,
                user_agent=self.headers.get("User-Agent", ""),
                accept=self.headers.get("Accept", ""),
                status=status,
                content_type=ctype,
            )
        )

    def _route(self) -> tuple[int, str, bytes, dict[str, str]]:
        index = self.index
        path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
        want_json = index.serve_json and _accepts_json(self.headers.get("Accept", ""))
        parts = [p for p in path.split("/") if p]
        if parts == ["simple"]:
            if not self.path.split("?")[0].endswith("/"):
                return 301, "text/plain", b"", {"Location": "/simple/"}
            if want_json:
                return 200, JSON_V1, index.root_json().encode(), {}
            return 200, "text/html; charset=utf-8", index.root_html().encode(), {}
        if len(parts) == 2 and parts[0] == "simple":
            project = canonicalize_name(parts[1])
            if project != parts[1] or not self.path.split("?")[0].endswith("/"):
                return 301, "text/plain", b"", {"Location": f"/simple/{project}/"}
            if project not in index.projects():
                return 404, "text/plain", b"no such project\n", {}
            if want_json:
                return 200, JSON_V1, index.project_json(project).encode(), {}
            page = index.project_html(project).encode()
            return 200, "text/html; charset=utf-8", page, {}
        if len(parts) == 2 and parts[0] == "files":
            name = parts[1]
            if name.endswith(".metadata") and index.serve_metadata:
                target = index.root / name[: -len(".metadata")]
                info = _read_file(target) if target.is_file() else None
                if info is None or info.metadata is None:
                    return 404, "text/plain", b"no metadata\n", {}
                return 200, "text/plain; charset=utf-8", info.metadata, {}
            target = index.root / name
            if name.startswith(".") or not target.is_file():
                return 404, "text/plain", b"no such file\n", {}
            return 200, "application/octet-stream", target.read_bytes(), {}
        return 404, "text/plain", b"not found\n", {}


# -- the outside world, as seen by a proxy that refuses everything ----------------------


class RecordingProxy:
    """An HTTP(S) proxy on loopback that refuses every request and records the host asked
    for. With its `env` (HTTP(S)_PROXY set, NO_PROXY for loopback), anything a command tries
    to reach beyond this machine shows up in `hosts`, and fails fast instead of hanging."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _refuse(self) -> None:
                target = self.path
                host = (
                    target.split(":")[0]
                    if self.command == "CONNECT"
                    else (urllib.parse.urlsplit(target).hostname or target)
                )
                with proxy._lock:
                    proxy.hosts.append(host)
                self.send_response(403, "outside network refused by the test proxy")
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

            do_CONNECT = do_GET = do_HEAD = do_POST = _refuse

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def env(self) -> dict[str, str]:
        no_proxy = "127.0.0.1,localhost,::1"
        return {
            "HTTP_PROXY": self.url,
            "HTTPS_PROXY": self.url,
            "ALL_PROXY": self.url,
            "http_proxy": self.url,
            "https_proxy": self.url,
            "all_proxy": self.url,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# -- the default corpus ---------------------------------------------------------------

DEFAULT_CORPUS = """\
alpha 1.0 (any Python) and 2.0 (Requires-Python >=3.12): 3.11 pins 1.0, 3.13 pins 2.0
beta 1.0 requires gamma; python_version < "3.12"
gamma 1.0
delta 1.0: sdist only (a source build), requires gamma
epsilon 1.0: cp311 manylinux_2_17, cp313 manylinux_2_17, cp311 musllinux_1_1 wheels + sdist
zeta 1.0, eta 1.0: tests publish 1.1 of each to exercise --upgrade(-package)
"""


def populate_default(index: LocalIndex) -> LocalIndex:
    """The package set the lock tests are designed around (see DEFAULT_CORPUS)."""
    index.add_wheel("alpha", "1.0")
    index.add_sdist("alpha", "1.0")
    index.add_wheel("alpha", "2.0", requires_python=">=3.12")
    index.add_sdist("alpha", "2.0", requires_python=">=3.12")
    index.add_wheel("beta", "1.0", requires=['gamma; python_version < "3.12"'])
    index.add_wheel("gamma", "1.0")
    index.add_sdist("delta", "1.0", requires=["gamma"])
    for tags in (
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp313-cp313-manylinux_2_17_x86_64",
        "cp311-cp311-musllinux_1_1_x86_64",
    ):
        index.add_wheel("epsilon", "1.0", tags=tags)
    index.add_sdist("epsilon", "1.0")
    index.add_wheel("zeta", "1.0")
    index.add_wheel("eta", "1.0")
    return index


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    """The default corpus, shared by the whole session: do not add to it (use fresh_index)."""
    with LocalIndex(tmp_path_factory.mktemp("local-index")) as index:
        populate_default(index)
        yield index


@pytest.fixture
def make_index(tmp_path: Path) -> Iterator[Callable[..., LocalIndex]]:
    """make_index(default=True) -> a new, started index of its own (closed after the test)."""
    made: list[LocalIndex] = []

    def make(default: bool = True) -> LocalIndex:
        index = LocalIndex(tmp_path / f"index-{len(made)}").start()
        made.append(index)
        return populate_default(index) if default else index

    yield make
    for index in made:
        index.close()


@pytest.fixture
def fresh_index(make_index: Callable[..., LocalIndex]) -> LocalIndex:
    """The default corpus on an index of this test's own: publish, hide hashes, etc."""
    return make_index()


@pytest.fixture
def outside_network() -> Iterator[RecordingProxy]:
    """A refusing proxy: pass `outside_network.env` to a command, then assert on `.hosts`."""
    proxy = RecordingProxy()
    yield proxy
    proxy.close()


if __name__ == "__main__":  # pragma: no cover - manual use
    import tempfile
    import time

    folder = Path(tempfile.mkdtemp(prefix="fixtures-index-"))
    with LocalIndex(folder) as idx:
        populate_default(idx)
        print(f"serving {folder} at {idx.url} (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    shutil.rmtree(folder, ignore_errors=True)
