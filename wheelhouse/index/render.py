"""The pages of a static index: PEP 503 HTML and PEP 691 JSON (PEP 629 repository
version, PEP 658/714 metadata, PEP 592 yanks, PEP 700 versions, size and upload-time).

Every link is relative (`../../foo-1.0-py3-none-any.whl`, `../../slim/foo-…` in a combined
index), so the tree can be moved, mounted or uploaded anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from operator import itemgetter

from packaging.version import Version

from wheelhouse.index.state import (
    INO,
    META_SHA256,
    META_SIZE,
    MTIME,
    PRIVATE,
    REQUIRES_PYTHON,
    SHA256,
    SIZE,
    VERSION,
    FileRecord,
)
from wheelhouse.index.wheelfile import parse_version

API_VERSION = "1.1"  # PEP 700 fields (versions, size, upload-time) need 1.1

# A file on a project page: (index key, its state record, its yank: a reason, True, False)
PageFile = tuple[str, FileRecord, str | bool]

_esc = html.escape
_HEAD = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
    f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
)


_json_str = json.encoder.encode_basestring_ascii  # how json.dumps writes a string


def _upload_time(mtime_ns: int) -> str:
    seconds, rest = divmod(mtime_ns, 1_000_000_000)
    hours, clock = divmod(seconds, 3600)
    return f"{_hour(hours)}{_CLOCK[clock // 60]}{clock % 60:02d}.{rest // 1000:06d}Z"


@functools.lru_cache(maxsize=4096)
def _hour(hours: int) -> str:
    # (files of an index were written over some days: each hour formatted once)
    return time.strftime("%Y-%m-%dT%H:", time.gmtime(hours * 3600))


_CLOCK = [f"{minute:02d}:" for minute in range(60)]
_PRIVATE_KEY = _json_str(PRIVATE)
_PLAIN = re.compile(r"[A-Za-z0-9._~/-]+").fullmatch  # nothing to quote or escape


def _url(key: str) -> str:
    # `+` (local versions) as %2B too: object storage reads a bare `+` in a path as a space
    return "../../" + (key if _PLAIN(key) else urllib.parse.quote(key))


@functools.lru_cache(maxsize=1024)
def _requires_python(value: str) -> tuple[str, str]:
    # (a few values on thousands of files): escaped for HTML and for JSON once each
    return _esc(value), _json_str(value)


def _by_version(file: PageFile) -> Version:
    return parse_version(file[1][VERSION])


def render_project(project: str, files: Sequence[PageFile]) -> tuple[bytes, bytes]:
    """(index.html, index.json) of one project. The JSON is the text json.dumps() makes of
    {"meta", "name", "versions", "files": [{…}], "_wheelhouse"}, written directly (a page
    per project, thousands of projects: no dicts built only to be serialized)."""
    # by version, then key: sorted by key, then by version (a stable sort)
    ordered = sorted(files, key=itemgetter(0))
    ordered.sort(key=_by_version)
    links = []
    entries = []
    versions: dict[str, None] = {}
    private = []
    for key, rec, yank in ordered:
        filename = key.rpartition("/")[2]
        # (html.escape and JSON's escapes only where a character could need them; a
        # quoted URL and a digest's hex never do)
        plain = _PLAIN(key) is not None
        url = "../../" + key if plain else _url(key)
        sha, meta_sha = rec[SHA256].hex(), rec[META_SHA256].hex()
        requires_python = rec[REQUIRES_PYTHON]
        version = rec[VERSION]
        attrs = f' href="{url}#sha256={sha}"'
        name_json = f'"{filename}"' if plain else _json_str(filename)
        entry = f'{{"filename": {name_json}, "url": "{url}", "hashes": {{"sha256": "{sha}"}}, '
        if requires_python:
            html_rp, json_rp = _requires_python(requires_python)
            attrs += f' data-requires-python="{html_rp}"'
            entry += f'"requires-python": {json_rp}, '
        meta = f"sha256={meta_sha}"
        attrs += f' data-dist-info-metadata="{meta}" data-core-metadata="{meta}"'
        if yank is False:
            yanked = "false"
        else:
            attrs += f' data-yanked="{_esc(yank if isinstance(yank, str) else "")}"'
            yanked = _json_str(yank) if isinstance(yank, str) and yank else "true"
        links.append(f"<a{attrs}>{filename if plain else _esc(filename)}</a><br>\n")
        entries.append(
            f'{entry}"core-metadata": {{"sha256": "{meta_sha}"}}, '
            f'"dist-info-metadata": {{"sha256": "{meta_sha}"}}, "yanked": {yanked}, '
            f'"size": {rec[SIZE]}, "upload-time": "{_upload_time(rec[MTIME])}"}}'
        )
        versions[version] = None
        # what the next run needs: stat stamps, METADATA size, version
        private.append(f"[{rec[MTIME]}, {rec[INO]}, {rec[META_SIZE]}, {_json_str(version)}]")
    name = _esc(project)
    page = (
        f"{_HEAD}<title>Links for {name}</title>\n</head>\n<body>\n"
        f"<h1>Links for {name}</h1>\n{''.join(links)}</body>\n</html>\n"
    )
    doc = (
        f'{{"meta": {{"api-version": "{API_VERSION}"}}, "name": {_json_str(project)}, '
        f'"versions": [{", ".join(map(_json_str, versions))}], '
        f'"files": [{", ".join(entries)}], {_PRIVATE_KEY}: [{", ".join(private)}]}}'
    )
    return page.encode(), doc.encode()


def render_root(projects: Iterable[str]) -> tuple[bytes, bytes]:
    """(index.html, index.json) of the root page: every project, in the order given."""
    names = list(projects)
    links = "".join(f'<a href="{_esc(p)}/">{_esc(p)}</a><br>\n' for p in names)
    page = f"{_HEAD}<title>Simple index</title>\n</head>\n<body>\n{links}</body>\n</html>\n"
    doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in names]}
    return page.encode(), json.dumps(doc).encode()


def page_key(files: Sequence[PageFile]) -> str:
    """A key of what a page shows: the page is rendered again only when it changes."""
    return hashlib.sha256(repr(sorted(files, key=lambda f: f[0])).encode()).hexdigest()[:32]
