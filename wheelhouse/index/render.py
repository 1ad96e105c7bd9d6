"""The pages of a static index: PEP 503 HTML and PEP 691 JSON (PEP 629 repository
version, PEP 658/714 metadata, PEP 592 yanks, PEP 700 versions, size and upload-time).

Every link is relative (`../../foo-1.0-py3-none-any.whl`, `../../slim/foo-…` in a combined
index), so the tree can be moved, mounted or uploaded anywhere.
"""

from __future__ import annotations

import functools
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


def _esc(text: str) -> str:
    """html.escape(text): its own replacements, in its order (importing html loads its
    entity table, milliseconds at every start of `wheelhouse index`)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


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
    # (a few values on thousands of files): its HTML attribute and JSON field, made once
    return f' data-requires-python="{_esc(value)}"', f'"requires-python": {_json_str(value)}, '


def _yanked(yank: str | bool) -> tuple[str, str]:
    """A yank's HTML attribute and JSON value."""
    if yank is False:
        return "", "false"
    reason = yank if isinstance(yank, str) else ""
    return f' data-yanked="{_esc(reason)}"', _json_str(reason) if reason else "true"


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
    no_yank = _yanked(False)
    for key, rec, yank in ordered:
        filename = key.rpartition("/")[2]
        # (html.escape and JSON's escapes only where a character could need them; a
        # quoted URL and a digest's hex never do)
        if _PLAIN(key) is None:
            url, shown, name_json = _url(key), _esc(filename), _json_str(filename)
        else:
            url, shown, name_json = "../../" + key, filename, f'"{filename}"'
        sha, meta_sha = rec[SHA256].hex(), rec[META_SHA256].hex()
        requires_python = rec[REQUIRES_PYTHON]
        html_rp, json_rp = _requires_python(requires_python) if requires_python else ("", "")
        html_yank, yanked = no_yank if yank is False else _yanked(yank)
        links.append(
            f'<a href="{url}#sha256={sha}"{html_rp} data-dist-info-metadata="sha256={meta_sha}"'
            f' data-core-metadata="sha256={meta_sha}"{html_yank}>{shown}</a><br>\n'
        )
        entries.append(
            f'{{"filename": {name_json}, "url": "{url}", "hashes": {{"sha256": "{sha}"}}, '
            f'{json_rp}"core-metadata": {{"sha256": "{meta_sha}"}}, '
            f'"dist-info-metadata": {{"sha256": "{meta_sha}"}}, "yanked": {yanked}, '
            f'"size": {rec[SIZE]}, "upload-time": "{_upload_time(rec[MTIME])}"}}'
        )
        version = rec[VERSION]
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
