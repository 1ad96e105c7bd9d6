"""A target index's incremental run, at a cost that follows what changed rather than the
size of the index: its folder's entries are compared with its log (a dict of file name
-> inode number) as the folder is listed (nothing is kept of a wheel the log lists
with the same inode, and counts prove that none of the log's is gone), so that only the
new, replaced, removed and sidecar-less files are looked at further; the wheels are a
`Catalog`, with an object only for the files of the projects the run checks. Same plan as
`plan.plan_run`, which compares every file (full runs, combined indexes that cannot take a
target's changes).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from wheelhouse.index.plan import Plan
from wheelhouse.index.scan import (
    Catalog,
    Listing,
    Seen,
    Source,
    compare_listing,
    list_wheels,
    project_of,
    source_stamp,
)
from wheelhouse.index.state import FolderStamp, Log, log_entry


class Delta(NamedTuple):
    found: Catalog
    sidecars: dict[str, set[str]]  # per source prefix (one here): wheels with a sidecar
    seen: dict[str, Seen | None]  # the folder's stamp before it was listed (None: not listed)
    plan: Plan
    added: dict[str, str]  # the log's new lines: file name -> log entry
    removed: set[str]  # file names the pages stop listing


def plan_changes(
    src: Source, known: Log, existing: set[str], *, unchanged: FolderStamp | None
) -> Delta:
    """The plan of an incremental run over one folder this index owns (no `only`, no
    prefix), against a log that describes its pages (`known`, taken over: its dicts become
    the catalog's). `unchanged`: the folder's recorded stamp; while it holds, the folder is
    not listed (see writer.py)."""
    stamp = source_stamp(src)
    ino, project = known.ino, known.project
    touched: set[str] = set()
    new: dict[str, int] = {}
    removed: set[str] = set()
    if unchanged is not None and stamp == unchanged:
        seen = None
        present = set(ino)  # (every sidecar: the run that recorded the stamp saw them)
    else:
        seen = Seen(stamp, time.time_ns())
        compared = compare_listing(src, ino)
        new = compared.new  # new, or replaced (another inode)
        if compared.whole:  # (the usual run: files added or replaced, none removed)
            present = set(ino)  # (each has its sidecar)
            present.update(compared.extra)
            ino.update(new)
            lost = [name for name in new if name not in present]
        else:  # a wheel is gone, or a sidecar: listed again, to learn which
            listed, present = list_wheels(src)
            new = {name: i for name, i in listed.items() if ino.get(name) != i}
            removed = ino.keys() - listed.keys()
            touched.update(project.pop(name) for name in removed)
            lost = list(listed.keys() - present)
            ino = listed
        for name in new:
            project[name] = project_of(name)
        touched.update(project[name] for name in (*new, *lost))
    projects = set(project.values())
    touched |= projects - existing
    catalog = Catalog(src, ino, project)
    plan = Plan(
        touched=catalog.select(touched),
        changed={p: p not in existing for p in touched},
        projects=projects,
        found=catalog,
        keys=set(),
    )
    added = {name: log_entry(project[name], i) for name, i in new.items()}
    return Delta(catalog, {src.prefix: present}, {src.prefix: seen}, plan, added, removed)


def covers(sources: Sequence[Source], listings: Mapping[Path, Listing]) -> bool:
    """Whether `plan_changes` can plan an incremental run over `sources`: one folder this
    index owns and publishes whole (a target's), not listed yet in this run."""
    if len(sources) != 1:
        return False
    src = sources[0]
    return src.owner and not src.prefix and src.only is None and src.folder not in listings
