"""The anchors of an HTML page (PEP 503), with `<base href>` applied: what
`simple.parse_html` makes its links of. A module of its own so that `html.parser` loads
only when a page is HTML: a warm build reads none."""

from __future__ import annotations

import html.parser
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Anchor:
    url: str  # absolute, with its fragment
    attrs: Mapping[str, str | None]  # the tag's attributes (a repeated one: the last)


class _Parser(html.parser.HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.found: list[Anchor] = []
        self._attrs: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            href = dict(attrs).get("href")
            if href:
                self.base_url = urllib.parse.urljoin(self.base_url, href)
        elif tag == "a":
            self._attrs = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag != "a" or self._attrs is None:
            return
        attrs, self._attrs = self._attrs, None
        href = attrs.get("href")
        if href:
            self.found.append(Anchor(url=urllib.parse.urljoin(self.base_url, href), attrs=attrs))


def anchors(text: str, base_url: str) -> list[Anchor]:
    """Every `<a href>` of the page, in order."""
    parser = _Parser(base_url)
    parser.feed(text)
    parser.close()
    return parser.found
