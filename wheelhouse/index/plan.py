"""What an index run must look at, and the records of what it shows.

A run lists its changed source folders (`scan`), then checks only the projects with a file
that is new, gone, replaced (another inode under its name) or missing its sidecar, or whose
page is missing (a full run: `wholerun`). A checked project's files are stat'ed and get
their records from the project's JSON page where the stat stamp matches, else are read and
hashed. Nothing here writes a page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableSet, Sequence
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from packaging.utils import canonicalize_name, parse_wheel_filename

from wheelhouse.index.fileops import FileWriter
from wheelhouse.index.reading import read_new
from wheelhouse.index.scan import (
    Catalog,
    Changes,
    Found,
    check_duplicates,
    look_up,
    project_of,
    sidecar_lost,
    stamp_files,
)
from wheelhouse.index.state import (
    FileRecord,
    Log,
    Yanks,
    load_project,
    log_entry,
)


class Plan(NamedTuple):  # a NamedTuple costs less to import than a dataclass
    """What this run must look at."""

    touched: dict[str, list[Found]]  # project -> all its files, for the projects to check
    changed: dict[str, bool]  # project -> its page must be written (filled in by reading)
    projects: set[str]  # every project the pages list after this run
    found: Sequence[Found]  # every file
    keys: set[str]  # every file the pages list after this run (empty: the log was)


def plan_run(
    found: Sequence[Found],
    known: Log,
    existing: set[str],
    sidecars: Mapping[str, MutableSet[str]],
) -> Plan:
    """The projects to check in an incremental run: those with a file that is new, gone,
    replaced (its inode is not the log's) or missing its sidecar, and those whose page is
    missing. (A target index's incremental run takes `delta.plan_changes` instead:
    this one compares every file.)"""
    touched: set[str] = set()
    # (what the pages list and the log forgets; nothing to forget where the log is empty)
    keys = {f.key for f in found} if known.ino else set()
    get, project_in_log, touch = known.ino.get, known.project, touched.add
    for f in found:  # (a plain loop: it sees every file of a changed folder, every run)
        ino = get(f.key)
        if ino is None:
            # (a wheel handed on by the target's index of this run knows its project)
            project = f.project or project_of(f.filename)
            touch(project)
        else:
            project = project_in_log[f.key]
            if ino != f.ino:
                touch(project)
        f.project = project
    touched.update(_sidecar_lost(found, sidecars))
    projects = {f.project for f in found}
    touched.update(project_in_log[k] for k in known.ino.keys() - keys)
    touched.update(projects - existing)
    files = files_of(found, touched, every=touched >= projects)
    return Plan(
        touched=files,
        changed={p: p not in existing for p in touched},
        projects=projects,
        found=found,
        keys=keys,
    )


def _sidecar_lost(found: Sequence[Found], sidecars: Mapping[str, MutableSet[str]]) -> set[str]:
    """The projects of the wheels whose sidecar is missing (in the folders this index owns)."""
    lost: set[str] = set()
    for source, items in groupby(found, attrgetter("source")):  # (each source's are together)
        if source.owner:
            present = sidecars[source.prefix]
            lost.update(f.project for f in items if f.filename not in present)
    return lost


def files_of(found: Sequence[Found], projects: set[str], *, every: bool) -> dict[str, list[Found]]:
    """The files of each of `projects` (`every`: they are all the projects of `found`)."""
    if isinstance(found, Catalog):  # (objects made for those files only)
        return found.select(projects)
    files: dict[str, list[Found]] = {p: [] for p in projects}
    if every:
        for f in found:
            files[f.project].append(f)
    elif projects:
        for f in found:
            if f.project in projects:
                files[f.project].append(f)
    return files


def log_changes(plan: Plan, known: Log) -> dict[str, str]:
    """The log entries this run adds: files that are new or replaced (both are in a
    checked project)."""
    added = {}
    get = known.ino.get
    for items in plan.touched.values():
        for f in items:
            if get(f.key) != f.ino:
                added[f.key] = log_entry(f.project, f.ino)
    return added


def plan_mirrored(
    found: Sequence[Found], mirror: Mapping[str, Changes], existing: set[str]
) -> Plan:
    """The plan of an index whose log agrees, for each of its folders, with the log of the
    target index that has just run over it (see writer.py): that index's changes are this
    one's, and no file is compared with a log. Projects whose page is missing too."""
    touched: set[str] = set().union(*(c.touched for c in mirror.values()))
    projects: set[str] = set().union(*(c.projects for c in mirror.values()))
    touched |= projects - existing
    return Plan(
        touched=files_of(found, touched, every=touched >= projects),
        changed={p: p not in existing for p in touched},
        projects=projects,
        found=found,
        keys=set(),
    )


def mirrored_log(mirror: Mapping[str, Changes]) -> tuple[dict[str, str], set[str]]:
    """The log lines (added, removed) a mirroring index appends: its folders' changes."""
    added = {p + name: e for p, c in mirror.items() for name, e in c.added.items()}
    removed = {p + name for p, c in mirror.items() for name in c.removed}
    return added, removed


def plan_yanks(plan: Plan, old: Mapping[str, str | bool], new: Mapping[str, str | bool]) -> None:
    """Check, and render again, the pages of the projects whose yanks changed."""
    for key in old.keys() | new.keys():
        if old.get(key, None) != new.get(key, None):
            name = key.partition("==")[0] if "==" in key else key
            project = canonicalize_name(name.strip()) if "==" in key else project_of(key)
            if project in plan.projects:
                files = plan.touched.setdefault(project, [])
                if not files:
                    files.extend(f for f in plan.found if f.project == project)
                plan.changed[project] = True


def read_projects(
    simple: Path,
    plan: Plan,
    sidecars: Mapping[str, MutableSet[str]],
    writer: FileWriter,
    *,
    trusted: bool,
) -> int:
    """Give every file of the touched projects its record: from the project's state where
    its stamp matches, else read (writing its sidecar). Marks the projects whose page
    changes. Raises PublishError, before any page is written, if a wheel is refused."""
    todo: list[Found] = []
    states: dict[str, dict[str, FileRecord]] = {}
    for project, items in plan.touched.items():
        stamp_files(items)
        own = load_project(simple / project) if trusted and items else {}  # (gone: none)
        states[project] = own
        todo.extend(look_up(items, own, trusted))
    count = len(todo)
    read_new(todo, writer, sidecars)
    # a sidecar that went missing: written again (a full run also checks each one's size)
    lost = [
        f
        for items in plan.touched.values()
        for f in items
        if not f.fresh and f.source.owner and sidecar_lost(f, sidecars, dirty=False)
    ]
    read_new(lost, writer, sidecars)
    for project, items in plan.touched.items():
        items[:] = check_duplicates(items)
        own = states[project]
        if len(own) != len(items) or any(not f.known or own[f.key] != f.rec for f in items):
            plan.changed[project] = True
    return count


def matched_yanks(yanks: Yanks, files: Iterable[tuple[str, str]]) -> set[str]:
    """The yanked.toml keys that match a file here, of its (file name, project): from file
    names, no record needed."""
    if not yanks.keys():
        return set()
    matched = set()
    for filename, project in files:
        if filename in yanks.files:
            matched.add(filename)
        if project in yanks.projects:
            hit = yanks.releases.get((project, parse_wheel_filename(filename)[1]))
            if hit is not None:
                matched.add(hit[0])
    return matched
