"""Downloads on the host, in parallel, each checked against the hash the lock allows
before it enters the store: a mismatch fails closed and names package and both hashes."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence

from wheelhouse.build.plan import Item
from wheelhouse.simple import IndexClient
from wheelhouse.store import Blob, Store


def fetch_one(item: Item, client: IndexClient, store: Store) -> Blob:
    expected = item.sha256
    have = store.get(expected)
    if have is not None:
        return have
    tmpdir = store.tempdir("dl-")
    try:
        link = item.dist.link
        what = f"{item.pin.name} {item.pin.version}"
        client.download(link, tmpdir / "file", expected=expected, what=what)
        return store.put(tmpdir / "file", link.filename, sha256=expected)
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
    if not items:  # a warm build: not even the thread pool's module
        return out
    from concurrent.futures import ThreadPoolExecutor

    def one(item: Item) -> None:
        blob = fetch_one(item, client, store)
        out[item.sha256] = blob
        on_done(item, blob)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, i) for i in items]
        try:
            for fut in futures:
                fut.result()  # the first failure propagates; others finish or are dropped
        except BaseException:  # a failure, Ctrl-C or SIGTERM: start no more downloads
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return out
