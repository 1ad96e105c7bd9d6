"""Hashes for a target's lock, taken from the index's own data.

Only files the target can install are hashed: wheels whose tags fit the target, and the
sdist where no wheel does (or no-binary asks for it). No file is downloaded unless an index
publishes no hash for it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.version import Version

from wheelhouse.config import Target
from wheelhouse.errors import ResolveError
from wheelhouse.lock.lockfile import Pin
from wheelhouse.simple import Distribution, FileLink, IndexClient
from wheelhouse.tags import target_tags


def _files(
    pin: Pin, target: Target, client: IndexClient, accepted: frozenset[Tag]
) -> tuple[list[Distribution], bool]:
    """The files of `pin` the target installs, and whether that is a source build."""
    dists = client.release_files(target.index, pin.name, pin.version)
    wheels = [d for d in dists if d.tags & accepted]
    sdists = [d for d in dists if not d.tags]
    policy = target.binary_policy(pin.name)
    if policy == "no-binary":
        chosen, source = sdists, True
    elif wheels:
        chosen, source = wheels, False
    elif policy == "only-binary":
        raise ResolveError(
            f"{pin.spec}: no wheel fits target {target.name!r} ({target.describe()}) and "
            "only-binary forbids building it",
            hint=f"allow a source build (remove it from targets.{target.name}.only-binary) "
            "or constrain it to a version that has a wheel",
        )
    else:
        chosen, source = sdists, True
    if not chosen:
        have = ", ".join(sorted({d.link.filename for d in dists})[:5]) or "no files"
        raise ResolveError(
            f"{pin.spec}: no file fits target {target.name!r} ({target.describe()}); "
            f"the indexes have: {have}",
            hint="constrain it to a version with a wheel for this target or an sdist",
        )
    return chosen, source


def hash_pins(pins: list[Pin], target: Target, client: IndexClient) -> list[Pin]:
    """Each pin with the hashes of the files the target installs. The pages are fetched
    together (the client's pool; those fresh in its cache are read at once), the files
    chosen here, and only a file whose index publishes no hash is downloaded, in a pool:
    a thread per pin cost a warm lock ~100 ms, each start waiting for the GIL."""
    accepted = frozenset(target_tags(target))
    for pin in pins:
        for url in target.index.all_index_urls:
            client.prefetch(url, pin.name, pin.version)
    chosen = [_files(pin, target, client, accepted) for pin in pins]
    unhashed = {d.link for files, _ in chosen for d in files if not d.link.sha256}
    digests: dict[FileLink, str] = {}
    if unhashed:
        with ThreadPoolExecutor(max_workers=16) as pool:
            digests = dict(zip(unhashed, pool.map(client.sha256_of, unhashed), strict=True))
    return [
        replace(
            pin,
            hashes=tuple(sorted({f"sha256:{d.link.sha256 or digests[d.link]}" for d in files})),
            source_build=source,
        )
        for pin, (files, source) in zip(pins, chosen, strict=True)
    ]


def not_for_python(pins: list[Pin], target: Target, client: IndexClient, python: str) -> list[str]:
    """The pins one of whose files (those the lock takes) excludes Python `python` by its
    Requires-Python: resolved for another patch release, they would not install on this
    one. The index pages are those hash_pins just read."""
    version = Version(python)
    accepted = frozenset(target_tags(target))
    out = []
    for pin in pins:
        for d in _files(pin, target, client, accepted)[0]:
            text = d.link.requires_python
            try:
                excluded = bool(text) and version not in SpecifierSet(text or "")
            except InvalidSpecifier:
                excluded = False  # pip ignores what it cannot parse; so does this
            if excluded:
                out.append(f"{pin.spec} (Requires-Python {text})")
                break
    return out
