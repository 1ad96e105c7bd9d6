"""The output folders of a build: their locks, the indexes of what was assembled, and the
removal of the wheels no longer wanted.

From assembly to the last removal a build holds each target's folder lock
(`wheelhouse/<target>/simple/.index.lock`, taken in name order, so two builds never wait
on each other in a circle); `wheelhouse index` and the server's uploads take the same lock
to index that folder. The combined index (`wheelhouse/simple/`) reads every target's
folder under the output folder's lock (`wheelhouse/simple/.index.lock`), always taken
last.
The order of a build, each step visible to readers only when whole:

    new wheels -> lock.txt, manifest.json (assemble.py) -> the target's pages and the
    combined pages, written for the new wheels only -> removals

The pages and the removals happen under the root's lock as well as the folder's: once this
run's pages stop listing a wheel, no other run can list it again before it is removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from wheelhouse.build.assemble import Output, remove_stale, stale
from wheelhouse.config import Config, Target
from wheelhouse.fsutil import LOCK_FILE, Wait
from wheelhouse.index import SIMPLE, IndexReport, index_all, index_lock


@contextmanager
def hold(config: Config, targets: Sequence[Target], wait: Wait) -> Iterator[None]:
    """The targets' output folder locks, in name order."""
    with ExitStack() as stack:
        for name in sorted({t.name for t in targets}):
            folder = config.output / name
            stack.enter_context(index_lock(folder, wait=wait, label=config.rel(folder)))
        yield


def finish(
    config: Config,
    assembled: Sequence[tuple[Target, Output]],
    *,
    index: bool,
    wait: Wait,
    metadata_cache: Path | None,
    on_event: Callable[[str, str], None],
) -> list[IndexReport]:
    """The indexes of the assembled folders (unless `index` is False), then the removals.
    Without indexes, a folder that an index lists keeps its old wheels (its pages still
    link them) until a build that writes the indexes."""
    if not assembled:
        return []
    root = config.output
    with index_lock(root, wait=wait, label=config.rel(root)):
        reports = _index(config, assembled, wait, metadata_cache, on_event) if index else []
        for _, output in assembled:
            if index or not _indexed(config, output.folder):
                remove_stale(output)
            elif old := stale(output):
                on_event(
                    "kept",
                    f"{len(old)} old wheels kept in {config.rel(output.folder)}/: its indexes "
                    "still list them (a build that writes the indexes removes them)",
                )
    return reports


def _indexed(config: Config, folder: Path) -> bool:
    """Whether a page may list the folder's wheels: its own index or the combined one
    (anything in their simple/ folders but the lock)."""
    return any(
        p.name != LOCK_FILE
        for simple in (folder / SIMPLE, config.output / SIMPLE)
        if simple.is_dir()
        for p in simple.iterdir()
    )


def _index(
    config: Config,
    assembled: Sequence[tuple[Target, Output]],
    wait: Wait,
    metadata_cache: Path | None,
    on_event: Callable[[str, str], None],
) -> list[IndexReport]:
    on_event("index", "writing the indexes")
    return index_all(
        config,
        [t for t, _ in assembled],
        sha256={t.name: o.sha256 for t, o in assembled},
        metadata_cache=metadata_cache,
        wait=wait,
        exact=True,  # the folders still hold the wheels removed next: not listed
    )
