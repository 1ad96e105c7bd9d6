"""A full run, project by project: each project's wheels get their objects, their records
(from its JSON page where the stamp matches, else read and hashed) and their sidecars, and
its pages are rendered and staged (`fileops.Staging`), a chunk of projects at a time; none
of it is kept past its chunk. Once every wheel is checked, the staged pages are published
by renames (a refused wheel publishes nothing, as in any run).

What a full run holds besides one chunk is its listings: each folder's wheel names with
their inode numbers and projects, and the names its sidecars are for, grouped by project
(`grouped.Grouped`: held for a small folder, in unnamed files for a big one); not an
object, a stamp and a record per wheel (~1 KB a wheel, when every one was read before
any page was written), nor a dict of the names and a set of the sidecars (300-500). A
chunk's cost is bounded (`fanout.MOST_COST`): a bigger run has more chunks, not bigger
ones. A big run's
chunks go to forked workers (`fanout`: they read, check and render; this process writes
the sidecars as each chunk comes, and stages its pages). The combined index of the same
run takes each target's listing over and reads the records from the target's pages
(`scan.look_up`): no wheel is read twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableSet, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wheelhouse.index import fanout
from wheelhouse.index.fileops import FileWriter, Staging, write_project
from wheelhouse.index.grouped import Grouped, Sidecars, list_grouped
from wheelhouse.index.plan import Plan, matched_yanks
from wheelhouse.index.reading import read_wheel, refusal, write_sidecar
from wheelhouse.index.render import PageFile, render_project
from wheelhouse.index.scan import (
    Found,
    Listing,
    Seen,
    Source,
    check_duplicates,
    look_up,
    sidecar_lost,
    source_stamp,
    stamp_files,
)
from wheelhouse.index.state import PROJECT, VERSION, Yanks, load_project
from wheelhouse.index.upkeep import log_rows
from wheelhouse.index.wheelfile import WheelRefused

# the work of a full run, in the units of `fanout.workers`: a wheel, plus this per page
# (measured: a page ~65 us to render and ~90 us to write, a small wheel ~120 us to read)
PAGE_COST = 10
FORK_COST = 6000  # forked workers from this cost on (a fan-out costs 10-30 ms)
CHUNK_COST = 20_000  # the most work in one chunk where the run does it in-process


@dataclass(kw_only=True)
class Whole:
    """Every wheel of a full run's folders: one listing per folder, in the sources' order."""

    parts: list[Grouped]
    sidecars: dict[str, MutableSet[str]]  # per source prefix: the wheels whose sidecar is there
    seen: dict[str, Seen | None]

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def part(self, src: Source) -> Grouped:
        """The listing of one folder."""
        return next(part for part in self.parts if part.source is src)

    def rows(self) -> Iterator[tuple[str, str, int]]:
        """(index key, project, inode) of every wheel, for the log."""
        for part in self.parts:
            prefix = part.source.prefix
            for name, ino, project in part.wheel_rows():
                yield prefix + name, project, ino

    def files(self) -> Iterator[tuple[str, str]]:
        """(file name, project) of every wheel."""
        for part in self.parts:
            for name, _, project in part.wheel_rows():
                yield name, project


class Every:
    """Every wheel a run found: a full run's listings (`wholerun.Whole`), or objects."""

    def __init__(self, found: Sequence[Found] | Whole, sources: Sequence[Source]) -> None:
        self.found, self.sources = found, sources

    def rows(self) -> Iterator[tuple[str, str, int]]:
        """(index key, project, inode) of each, for the log."""
        found = self.found
        return found.rows() if isinstance(found, Whole) else log_rows(found)

    def of(self, src: Source) -> Sequence[Found]:
        """The wheels of one folder."""
        found = self.found
        if isinstance(found, Whole):
            return found.part(src)
        return found if len(self.sources) == 1 else [f for f in found if f.source is src]

    def matched_yanks(self, yanks: Yanks) -> set[str]:
        found = self.found
        if not yanks.keys():  # (iterating a catalog makes an object per wheel)
            return set()
        files = (
            found.files() if isinstance(found, Whole) else ((f.filename, f.project) for f in found)
        )
        return matched_yanks(yanks, files)


def list_whole(sources: Sequence[Source], listings: dict[Path, Listing], where: Path) -> Whole:
    """Each source folder listed (once: names and inode numbers, no stat), or handed on by
    its target's index of this run; a big listing into unnamed files in `where` (the
    index's `simple/`: see grouped.Names)."""
    whole = Whole(parts=[], sidecars={}, seen={})
    for src in sources:
        listing = listings.pop(src.folder, None)  # (used once: the combined index comes last)
        if listing is not None:
            wheels = listing.wheels
            if isinstance(wheels, Grouped):
                part = wheels.handed(src)
            else:
                part = Grouped.of(wheels, src, where)
            whole.parts.append(part)
            whole.sidecars[src.prefix] = listing.sidecars
            whole.seen[src.prefix] = listing.seen
            continue
        whole.seen[src.prefix] = Seen(source_stamp(src), time.time_ns())
        part = list_grouped(src, where)
        whole.parts.append(part)
        whole.sidecars[src.prefix] = Sidecars(part)
    return whole


@dataclass(kw_only=True)
class Done:
    """What `read_whole` did: the pages are staged, not yet published."""

    projects: set[str]
    order: list[str]  # the same, sorted
    staging: Staging
    hashed: int = 0
    files: int = 0  # listed on the pages (one file name in two folders: once)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (path, why, hint)


@dataclass
class _Result:
    """One chunk's work, sent back by a worker (pickled): no record, no object per wheel.
    A project is its place in the chunk, a wheel its place in that project's wheels of
    each folder: this process keeps its own strings, not a copy of each."""

    pages: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    # (project, folder, wheel, METADATA, its cache file, whether a sidecar is there)
    sidecars: list[tuple[int, int, int, bytes, Path | None, bool]] = field(default_factory=list)
    stale: list[tuple[int, str]] = field(default_factory=list)  # (folder, wheel) sidecars
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (path, why, hint)
    hashed: int = 0
    files: int = 0


@dataclass(frozen=True)
class _Reader:
    simple: Path
    whole: Whole
    yanks: Yanks
    trusted: bool

    def chunk(self, projects: Sequence[str]) -> _Result:
        out = _Result()
        for k, project in enumerate(projects):
            self.project(k, project, out)
        return out

    def project(self, k: int, project: str, out: _Result) -> None:
        """Check one project's wheels (each sidecar to write goes in `out`) and render its
        pages; none where one of its wheels is refused."""
        items: list[Found] = []
        places: dict[int, tuple[int, int]] = {}
        present: dict[str, MutableSet[str]] = {}  # per folder: the project's sidecars
        # (in the order of the sources: the first of one file name in two is linked)
        for i, part in enumerate(self.whole.parts):
            wheels = part.project_wheels(project)
            for j, f in enumerate(wheels):
                items.append(f)
                places[id(f)] = (i, j)
            prefix = part.source.prefix
            if not part.listed:  # (another index's listing: this run's set of them)
                present[prefix] = self.whole.sidecars[prefix]
                continue
            present[prefix] = sidecars = part.project_sidecars(project)
            if part.source.owner and sidecars:  # sidecars of wheels that are gone
                out.stale += [(i, n) for n in sidecars - {f.filename for f in wheels}]
        stamp_files(items)
        own = load_project(self.simple / project) if self.trusted else {}
        todo = look_up(items, own, self.trusted)
        out.hashed += len(todo)
        # a sidecar that went missing, or may be short (a full run follows an
        # interruption, a restart or --full): written again
        todo += [
            f
            for f in items
            if f.rec is not None and f.source.owner and sidecar_lost(f, present, dirty=True)
        ]
        ok = True
        for f in todo:
            try:
                cache = read_wheel(f)
            except WheelRefused as exc:
                out.refused.append((str(f.source.folder / f.filename), exc.message, exc.hint))
                ok = False
                continue
            assert f.metadata is not None
            there = f.filename in present[f.source.prefix]
            out.sidecars.append((k, *places[id(f)], f.metadata, cache, there))
        if ok:
            items = check_duplicates(items)
            out.files += len(items)
            out.pages.append((k, *render_project(project, _page_files(items, self.yanks))))


def read_whole(
    simple: Path,
    whole: Whole,
    existing: set[str],
    yanks: Yanks,
    writer: FileWriter,
    *,
    trusted: bool,
) -> Done:
    """Give every wheel its record and sidecar and stage every project's pages, a chunk of
    projects at a time (see the module doc). Raises PublishError naming every refused
    wheel, with nothing staged left and every published page untouched."""
    reader = _Reader(simple, whole, yanks, trusted)
    parts = whole.parts
    projects = sorted(set().union(*(part.projects() for part in parts)))
    done = Done(projects=set(projects), order=projects, staging=Staging(simple, writer, existing))

    def apply(chunk: Sequence[str], result: _Result) -> None:
        for k, i, j, metadata, cache, there in result.sidecars:
            part = parts[i]
            name = part.wheel_name(chunk[k], j)
            write_sidecar(part.source, name, metadata, cache, writer, there=there)
            whole.sidecars[part.source.prefix].add(name)
        for i, name in result.stale:
            stale = whole.sidecars[parts[i].source.prefix]
            assert isinstance(stale, Sidecars)  # (a listed part's)
            stale.stale.add(name)
        done.refused += result.refused
        done.hashed += result.hashed
        done.files += result.files
        if not done.refused:  # (after a refusal nothing is staged: it would be discarded)
            for k, page, doc in result.pages:
                done.staging.add(chunk[k], page, doc)

    costs = [PAGE_COST + sum(part.count(p) for part in parts) for p in projects]
    try:
        processes = fanout.workers(sum(costs), FORK_COST)
        if processes:
            what = "reading wheels and rendering pages"
            fanout.run(reader.chunk, projects, costs, processes=processes, what=what, apply=apply)
        else:
            for chunk in fanout.split(projects, costs, sum(costs) // CHUNK_COST + 1):
                apply(chunk, reader.chunk(chunk))
        if done.refused:
            raise refusal(sorted(done.refused))
    except BaseException:
        done.staging.discard()
        raise
    return done


def _page_files(items: Sequence[Found], yanks: Yanks) -> list[PageFile]:
    files: list[PageFile] = []
    for f in items:
        rec = f.rec
        assert rec is not None
        files.append((f.key, rec, yanks.lookup(f.filename, rec[PROJECT], rec[VERSION])[0]))
    return files


def write_pages(
    simple: Path,
    plan: Plan,
    changed: Sequence[str],
    yanks: Yanks,
    writer: FileWriter,
    existing: set[str],
) -> None:
    """An incremental run's project pages whose files changed, each with its state: no
    reader ever sees a page that links what is not there (sidecars were written before)."""

    def render(project: str) -> tuple[bytes, bytes]:
        # (the JSON page carries the project's state)
        return render_project(project, _page_files(plan.touched[project], yanks))

    def write(projects: Sequence[str], pages: Sequence[tuple[bytes, bytes]]) -> None:
        for project, (page, doc) in zip(projects, pages, strict=True):
            write_project(writer, simple, project, page, doc, new=project not in existing)

    # file creation is kernel work, and threads on a few shared cores only added lock
    # traffic (measured: no faster, more system time); a big run's pages are rendered by
    # forked workers (`fanout`) while this process writes them
    costs = [PAGE_COST + len(plan.touched[p]) for p in changed]
    processes = fanout.workers(sum(costs), FORK_COST)
    if not processes:
        for project in changed:
            write((project,), (render(project),))
        return
    fanout.run(
        lambda projects: [render(p) for p in projects],
        changed,
        costs,
        processes=processes,
        what="rendering pages",
        apply=write,
    )
