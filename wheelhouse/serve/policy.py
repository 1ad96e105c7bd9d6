"""The upstream proxy's view of a project page: what the upstream publishes of each file
(PEP 700 upload-time, PEP 592 yanked and its reason, requires-python, PEP 658/714 core
metadata's sha256), the supply-chain policy that hides some of it, and this server's own
pages rendered from what is left.

Policy (`wheelhouse serve --min-age 7d --exclude-newer 2026-01-01 --allow ... --deny ...`):

* a cooldown: a file uploaded less than `min_age` ago, or after `exclude_newer`, is not
  listed (most malicious releases are found and removed within days). A file whose
  upstream page gives no upload-time cannot be shown to be old enough: under a cooldown
  it is hidden too (PyPI's JSON pages give every file's upload-time);
* allow and deny lists of upstream project names (canonical; a trailing `*` is a
  prefix): a denied or not-allowed name is never asked of the upstream.

The pages say what was hidden and why: the JSON page's `meta` carries a `wheelhouse`
entry, the HTML page a `<meta name="wheelhouse:policy">` tag; /health shows the policy.
"""

from __future__ import annotations

import functools
import html
import json
import re
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.utils import canonicalize_name

from wheelhouse.serve.settings import Settings

FILES_PREFIX = "/-/files/"
_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?")
MAX_NAME = 128  # PyPI's longest project names are well under this
_SHA256 = re.compile(r"[0-9a-f]{64}")


def valid_project(name: str) -> bool:
    """A canonical (PEP 503) project name of a sane length: the only names that may
    cost an upstream request or a cache file."""
    return len(name) <= MAX_NAME and bool(_NAME.fullmatch(name)) and "--" not in name


def redact(text: str, url: str | None) -> str:
    """`text` without the credentials of `url` (user:token@ is shown as ***@)."""
    if not url:
        return text
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return text
    userinfo = parts.netloc.rsplit("@", 1)[0]
    text = text.replace(userinfo + "@", "***@")
    for secret in userinfo.split(":"):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
            text = text.replace(urllib.parse.unquote(secret), "***")
    return text


@dataclass(frozen=True, kw_only=True)
class UpstreamFile:
    filename: str
    url: str  # absolute, on the upstream (may carry its credentials: never shown)
    sha256: str
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked; "" yanked without a reason
    upload_time: str | None = None  # ISO 8601, as the upstream wrote it
    size: int | None = None
    metadata_sha256: str | None = None  # PEP 658/714, only when the upstream gives one

    @functools.cached_property
    def uploaded(self) -> float | None:
        """upload-time as a timestamp, parsed once (a page is filtered per request)."""
        return parse_time(self.upload_time) if self.upload_time else None


def parse_time(text: str) -> float | None:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@dataclass(frozen=True, kw_only=True)
class Policy:
    min_age: float = 0.0  # seconds
    exclude_newer: float | None = None  # a timestamp
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @property
    def cooldown(self) -> bool:
        return self.min_age > 0 or self.exclude_newer is not None

    def cutoff(self, now: float) -> float | None:
        """Files uploaded after this moment are hidden (None: no cooldown)."""
        limits = [now - self.min_age] if self.min_age > 0 else []
        if self.exclude_newer is not None:
            limits.append(self.exclude_newer)
        return min(limits) if limits else None

    def refuses(self, project: str) -> str | None:
        """Why the upstream is never asked for this project; None when it may be."""
        if any(_matches(project, p) for p in self.deny):
            return f"{project} is on this server's upstream deny list"
        if self.allow and not any(_matches(project, p) for p in self.allow):
            return f"{project} is not on this server's upstream allow list"
        return None

    def visible(self, files: list[UpstreamFile], now: float) -> tuple[list[UpstreamFile], int]:
        """(the files the policy lets through, how many it hid)."""
        cutoff = self.cutoff(now)
        if cutoff is None:
            return files, 0
        shown = [f for f in files if (t := f.uploaded) is not None and t <= cutoff]
        return shown, len(files) - len(shown)

    def describe(self) -> dict[str, Any]:
        """For /health and the pages."""
        doc: dict[str, Any] = {}
        if self.min_age:
            doc["min-age-seconds"] = self.min_age
        if self.exclude_newer is not None:
            doc["exclude-newer"] = _iso(self.exclude_newer)
        if self.allow:
            doc["allow"] = list(self.allow)
        if self.deny:
            doc["deny"] = list(self.deny)
        return doc


def from_settings(settings: Settings) -> Policy:
    newer = parse_time(settings.exclude_newer) if settings.exclude_newer else None
    return Policy(
        min_age=settings.min_age, exclude_newer=newer, allow=settings.allow, deny=settings.deny
    )


def _matches(project: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return project.startswith(pattern[:-1])
    return project == pattern


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_patterns(names: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for n in names:
        star = n.endswith("*")
        base = str(canonicalize_name(n[:-1] if star else n))
        out.append(base + "*" if star else base)
    return tuple(out)


# -- reading the upstream's page ------------------------------------------------------------


def _sha_of(value: object) -> str | None:
    """A PEP 658/714 value: {"sha256": hex} in JSON, "sha256=hex" in HTML; True/"true"
    (metadata without a hash) cannot be checked, so it is not passed on."""
    if isinstance(value, dict):
        got = value.get("sha256")
    elif isinstance(value, str) and value.startswith("sha256="):
        got = value[7:]
    else:
        return None
    return got.lower() if isinstance(got, str) and _SHA256.fullmatch(got.lower()) else None


def parse_json_page(data: bytes, base_url: str) -> list[UpstreamFile]:
    doc = json.loads(data)
    out = []
    for f in doc.get("files", []):
        sha = str((f.get("hashes") or {}).get("sha256") or "").lower()
        if not _SHA256.fullmatch(sha):
            continue  # no hash, nothing to check the bytes against: not listed
        yanked = f.get("yanked", False)
        meta = f.get("core-metadata", f.get("dist-info-metadata"))
        size = f.get("size")
        out.append(
            UpstreamFile(
                filename=str(f["filename"]),
                url=urllib.parse.urljoin(base_url, str(f["url"])),
                sha256=sha,
                requires_python=f.get("requires-python") or None,
                yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
                upload_time=f.get("upload-time") if isinstance(f.get("upload-time"), str) else None,
                size=size if isinstance(size, int) else None,
                metadata_sha256=_sha_of(meta),
            )
        )
    return out


def parse_html_page(text: str, base_url: str) -> list[UpstreamFile]:
    """A PEP 503 page's files, read by the lock's parser (simple.py); a file without a
    sha256 has nothing to check its bytes against: not listed."""
    from wheelhouse.simple import parse_html

    return [
        UpstreamFile(
            filename=link.filename,
            url=link.url,
            sha256=link.sha256,
            requires_python=link.requires_python or None,
            yanked=(link.yanked_reason or "") if link.yanked else None,
            metadata_sha256=_sha_of(link.core_metadata),
        )
        for link in parse_html(text, base_url)
        if link.sha256 is not None
    ]


# -- this server's pages --------------------------------------------------------------------


def file_href(f: UpstreamFile) -> str:
    return f"{FILES_PREFIX}{f.sha256}/{urllib.parse.quote(f.filename)}"


def render(
    project: str, files: list[UpstreamFile], policy: Policy, hidden: int
) -> tuple[bytes, bytes]:
    """This server's PEP 503 and PEP 691 (v1.1: PEP 700 fields) pages for upstream files,
    linked through it."""
    rows = []
    entries = []
    versions: set[str] = set()
    for f in sorted(files, key=lambda x: x.filename):
        href = file_href(f)
        attrs = f'href="{html.escape(href)}#sha256={f.sha256}"'
        entry: dict[str, Any] = {
            "filename": f.filename,
            "url": href,
            "hashes": {"sha256": f.sha256},
            "yanked": f.yanked if f.yanked else f.yanked is not None,
        }
        if f.requires_python:
            attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
            entry["requires-python"] = f.requires_python
        if f.yanked is not None:
            attrs += f' data-yanked="{html.escape(f.yanked)}"'
        if f.metadata_sha256:
            digest = f"sha256={f.metadata_sha256}"
            attrs += f' data-dist-info-metadata="{digest}" data-core-metadata="{digest}"'
            entry["core-metadata"] = entry["dist-info-metadata"] = {"sha256": f.metadata_sha256}
        if f.upload_time:
            entry["upload-time"] = f.upload_time
        if f.size is not None:
            entry["size"] = f.size
        rows.append(f"    <a {attrs}>{html.escape(f.filename)}</a><br>\n")
        entries.append(entry)
        if (v := _version_of(f.filename)) is not None:
            versions.add(v)
    said = policy.describe()
    if said:
        said["hidden-files"] = hidden
    note = ""
    if said:
        content = html.escape(json.dumps(said, separators=(",", ":")))
        note = f'    <meta name="wheelhouse:policy" content="{content}">\n'
    name = html.escape(project)
    page = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.1">\n'
        f"{note}    <title>Links for {name}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {name}</h1>\n" + "".join(rows) + "  </body>\n</html>\n"
    )
    meta: dict[str, Any] = {"api-version": "1.1"}
    if said:
        meta["wheelhouse"] = {"policy": said}
    doc = {"meta": meta, "name": project, "files": entries, "versions": sorted(versions)}
    return page.encode(), json.dumps(doc, separators=(",", ":")).encode()


def _version_of(filename: str) -> str | None:
    from wheelhouse.simple import parse_filename

    parsed = parse_filename(filename)
    return str(parsed[1]) if parsed else None
