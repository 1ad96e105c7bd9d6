"""The proxy reads an upstream's PEP 503 page with the lock's parser (simple.py): what it
keeps of each file (hash, requires-python, yanked and its reason, core metadata)."""

from __future__ import annotations

from wheelhouse.serve.policy import parse_html_page
from wheelhouse.simple import parse_html

SHA = "ab" * 32
META = "cd" * 32
PAGE = f"""<!DOCTYPE html><html><head><base href="/files/"></head><body>
<a href="a-1.0-py3-none-any.whl#sha256={SHA.upper()}" data-requires-python="&gt;=3.9"
   data-core-metadata="sha256={META}">a-1.0-py3-none-any.whl</a>
<a href="a-1.1-py3-none-any.whl#sha256={SHA}" data-yanked="broken &amp; bad"
   data-dist-info-metadata="true">a-1.1-py3-none-any.whl</a>
<a href="a-1.2-py3-none-any.whl#sha256={SHA}" data-yanked="">a-1.2-py3-none-any.whl</a>
<a href="a-1.3-py3-none-any.whl#md5=0123">a-1.3-py3-none-any.whl</a>
</body></html>"""


def test_the_proxy_keeps_what_the_upstream_page_says_of_each_file() -> None:
    files = parse_html_page(PAGE, "https://up.example/simple/a/")
    assert [f.filename for f in files] == [  # no sha256: nothing to check it by, not listed
        "a-1.0-py3-none-any.whl",
        "a-1.1-py3-none-any.whl",
        "a-1.2-py3-none-any.whl",
    ]
    first, second, third = files
    assert first.url == "https://up.example/files/a-1.0-py3-none-any.whl"  # <base> applied
    assert first.sha256 == SHA
    assert first.requires_python == ">=3.9"
    assert first.yanked is None
    assert first.metadata_sha256 == META
    assert second.yanked == "broken & bad"
    assert second.metadata_sha256 is None  # "true": no hash to check the metadata by
    assert third.yanked == ""  # yanked without a reason


def test_the_lock_parser_reads_the_same_fields() -> None:
    links = parse_html(PAGE, "https://up.example/simple/a/")
    assert [link.yanked for link in links] == [False, True, True, False]
    assert [link.yanked_reason for link in links] == [None, "broken & bad", "", None]
    assert links[0].core_metadata == f"sha256={META}"
    assert links[1].core_metadata == "true"
    assert links[3].sha256 is None
