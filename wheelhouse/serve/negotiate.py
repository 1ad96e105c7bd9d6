"""PEP 691 content negotiation on the Accept header (and the `format` query parameter).

A project page exists in three representations. The client's Accept header (RFC 9110:
media ranges with q-values, the most specific range decides a type's q) picks one; when
two tie, the server's order below decides. No Accept header means `*/*`. A header that
accepts none of them gets 406.
"""

from __future__ import annotations

from functools import lru_cache

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
# PEP 691: `latest` stands for the newest version the server speaks (v1 here)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}
# server preference on a tie: plain HTML first, so `*/*` (curl, old clients) gets a page
# every client understands; pip asks for JSON with the highest q and gets it
CANDIDATES = (TEXT_HTML, HTML_V1, JSON_V1)


def _ranges(accept: str) -> list[tuple[str, float]]:
    out = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mime = fields[0].lower()
        if not mime:
            continue
        q = 1.0
        for f in fields[1:]:
            key, _, value = f.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        out.append((_ALIASES.get(mime, mime), q))
    return out


def _q(candidate: str, ranges: list[tuple[str, float]]) -> float | None:
    """The q of the most specific range matching the candidate; None when none does."""
    kind = candidate.split("/", 1)[0] + "/*"
    best: tuple[int, float] | None = None
    for mime, q in ranges:
        specificity = 3 if mime == candidate else 2 if mime == kind else 1 if mime == "*/*" else 0
        if specificity and (best is None or specificity > best[0]):
            best = (specificity, q)
    return None if best is None else best[1]


@lru_cache(maxsize=256)  # clients send a handful of distinct headers, over and over
def choose(accept: str | None) -> str | None:
    """The content type to answer with, or None (406)."""
    ranges = _ranges(accept) if accept and accept.strip() else [("*/*", 1.0)]
    best, best_q = None, 0.0
    for candidate in CANDIDATES:
        q = _q(candidate, ranges)
        if q is not None and q > best_q:
            best, best_q = candidate, q
    return best


def from_format(value: str) -> str | None:
    """PEP 691's optional `?format=` URL parameter: an exact content type, or None."""
    # an unencoded `+` in a query string reads as a space
    value = value.strip().lower().replace(" ", "+")
    value = _ALIASES.get(value, value)
    return value if value in CANDIDATES else None


@lru_cache(maxsize=64)
def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() in ("gzip", "*"):
            q = 1.0
            for f in fields[1:]:
                key, _, value = f.partition("=")
                if key.strip().lower() == "q":
                    try:
                        q = float(value)
                    except ValueError:
                        q = 0.0
            return q > 0
    return False
