"""Downloads on the host, in parallel, each checked against the hash the lock allows
before it enters the store: a mismatch fails closed and names package and both hashes."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from wheelhouse.build.plan import Item
from wheelhouse.errors import HashMismatchError, IndexUnreachableError
from wheelhouse.simple import IndexClient, file_path, redact
from wheelhouse.store import Blob, Store


def fetch_one(item: Item, client: IndexClient, store: Store) -> Blob:
    link = item.dist.link
    expected = item.sha256
    have = store.get(expected)
    if have is not None:
        return have
    tmpdir = store.tempdir("dl-")
    tmp = tmpdir / "file"
    h = hashlib.sha256()
    try:
        if link.url.startswith("file://"):
            with file_path(link.url).open("rb") as src, tmp.open("wb") as out:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
        else:
            resp = client.get(link.url, stream=True)
            with resp:
                if resp.status_code >= 400:
                    raise IndexUnreachableError(
                        f"{item.pin.name}: {redact(link.url)} answered HTTP {resp.status_code}",
                        hint="check the index and your credentials, then rerun",
                    )
                with tmp.open("wb") as out:
                    for block in resp.iter_content(1 << 20):
                        h.update(block)
                        out.write(block)
        actual = h.hexdigest()
        if actual != expected:
            raise HashMismatchError(
                f"{item.pin.name} {item.pin.version}: {link.filename} has sha256 {actual}, "
                f"but the lock expects {expected}",
                hint="the index or a proxy served other bytes than were locked; nothing was "
                "stored. If the release really changed, re-lock; otherwise treat it as tampering",
            )
        return store.put(tmp, link.filename, sha256=actual)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def fetch_all(
    items: Sequence[Item],
    client: IndexClient,
    store: Store,
    *,
    on_done: Callable[[Item, Blob], None] = lambda i, b: None,
    workers: int = 8,
) -> dict[str, Blob]:
    """Fetch every item (wheels to install, sdists to build); sha256 -> stored blob."""
    out: dict[str, Blob] = {}

    def one(item: Item) -> None:
        blob = fetch_one(item, client, store)
        out[item.sha256] = blob
        on_done(item, blob)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in [pool.submit(one, i) for i in items]:
            fut.result()  # the first failure propagates; others finish or are dropped
    return out
