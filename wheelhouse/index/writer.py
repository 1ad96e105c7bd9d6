"""`wheelhouse index`: a static package repository over folders of wheels.

Every folder `<output>/<target>/` gets `simple/`, and `<output>/` gets a combined
`simple/` over every target's wheels. Served as `--index-url file://…/simple/`, by any
static HTTP server or from object storage, it carries:

* PEP 503 HTML (`simple/index.html`, `simple/<project>/index.html`) with `#sha256=` on every
  link, `data-requires-python`, and PEP 629 `pypi:repository-version` 1.1;
* PEP 691 JSON with the same data beside every page (`index.json`, api-version 1.1), for a
  server that negotiates on Accept;
* PEP 658/714 metadata: `<wheel>.metadata` beside each wheel holds the exact bytes of its
  `.dist-info/METADATA`, advertised as `data-dist-info-metadata` / `data-core-metadata` and
  JSON `dist-info-metadata` / `core-metadata`;
* PEP 700 `versions`, `size` and `upload-time` (the wheel file's mtime) in JSON;
* PEP 592 yanks from `yanked.toml` (never by deleting a wheel): `data-yanked` / `yanked`.

Every link is relative (`../../foo-1.0-py3-none-any.whl`, `../../slim/foo-…` in the combined
index): the tree can be moved, mounted or uploaded anywhere.

Validation: each new wheel is read by `wheelfile.inspect_wheel`; a file name that does not
parse, a corrupt or truncated zip, a missing METADATA, or a name or version that is not
METADATA's is refused (PublishError) before any page is written.

Incremental, at a cost that follows what changed, not the size of the index: every page's
JSON carries, under the private key `_wheelhouse` (PEP 691 leaves `_` keys to the index),
each file's stat stamp (size, mtime_ns, inode) and what its records need besides the page;
`simple/.index-files` is an append log of the files the pages list with their inode numbers
(`key<TAB>project<TAB>inode`, `key<TAB>-<TAB>-` once gone; read from its cache
`simple/.index-files.cache` and the lines after it, see `logcache`), and
`simple/.index-state.json` is small (format, boot id, yanks, and each source folder's stamp:
inode, mtime, ctime). A folder whose stamp is the one recorded is not even listed: no entry
was added to it, removed or renamed since a run that saw it whole (the stamp is recorded
only when it did not move during that run, and was taken a clock tick or more before the
listing, so that a later change always shows a later time). A changed folder is listed once
(one scandir, names and inode numbers, no stat per wheel), and a target's listing is
compared as bytes with the snapshot of its last one (`simple/.index-listing`, naming the
log it agrees with: `snapshot`, `delta`), else with its log: only the files of the projects
the run checks get an object (`listed.Listed`, `scan.Catalog`), and the combined index of
the same run takes over the listing and those objects with their records. A run checks only the
projects with a file that is new, gone, replaced (another inode under its name: `wheelhouse
build`, `mv`, `install` and `cp --remove-destination` all make one) or missing its sidecar,
and those whose page is missing; it stats their files, reads those projects' JSON pages,
hashes only files whose stamp changed, renders only pages whose files changed, appends a few
lines to the log and rewrites the small state. A full run (no state, a restart, an
interrupted run, `--full`) stats every wheel, renders every page and writes the log whole.
Known limit: a wheel whose bytes are rewritten in place (`cp` over it: same name, same
inode; or deleted and copied again between two runs where the file system reuses the inode
number) is not noticed until a full run; pip and uv refuse it meanwhile (its hash is not the
page's), never install it. A file name is one set of bytes on any index (pip's cache and
CDNs assume it).

Atomic without a snapshot swap: pip, uv and every other client read one page per project
and then its files, never the tree as a whole, so what a reader must never see is a page that
links a file that is not there, or half a page. Files a page may link are replaced whole (a
temp file beside it, renamed over it); files no page links yet are written in place, with
no temp file or rename: a new wheel's sidecar (O_EXCL: one that is there is replaced whole),
and the pages of a new project, written inside a hidden folder that one rename makes
`<project>/`. The order keeps the promise at every instant: sidecars first, then project
pages, then the root page, and only then are the pages of projects that are gone removed.
(A generation folder swapped by a symlink would hard-link every page into each one, and
needs symlinks, which object storage and some servers lack.)

Interruptions: the state is written last, and `simple/.index-dirty` is present while pages
are being written, so the run after an interrupted one re-renders every page (the stamps in
the pages an interrupted run wrote spare their files a re-hash) and checks every sidecar's
size; a sidecar written in place by a run that stopped before its page is for a wheel the
log does not list yet, so the next run reads that wheel again and replaces it whole; temp
files of dead runs are removed. A refused wheel leaves every page and the state as they
were. Durability: no fsync per page (seconds for a big index); the state records the boot
id, and the first run after a restart (when written data can be lost) re-renders every page
and checks the sidecars (with no boot id: the files are fsynced before the state).

A full run goes project by project (`wholerun`): a chunk of projects at a time, their
wheels get their records and sidecars and their pages are rendered and staged where no
reader is sent; once every wheel is checked, renames publish the staged pages (a refused
wheel discards them). It holds the folders' listings and one chunk, not a record per wheel.

Cores: a big full run's chunks, and a big incremental run's new wheels then its pages, go
to forked workers (`fanout`: Linux, 2+ CPUs, no other thread) while this process writes
every file as their results come, in the order above (pages once every sidecar is
written); a worker's refusal, error or death ends the run as the same event in one
process would. `wheelhouse index` has a child list a target's folder while it loads this
code (`ahead`).

Entry points: `index_target(folder)`, `index_combined(output, folders)`, `index_all(config,
targets)` (`wheelhouse index`, the end of a build); `write_index(root, sources)` under them.
Pieces: `scan` (finding and reading wheels), `plan` (which projects a run checks), `delta`
(the same for a target's incremental run), `wholerun` (a full run), `wheelfile` (one
wheel), `state` (the state, the log, yanks), `render` (pages), `fileops` (atomic writes),
`upkeep` (the log's writes, the folders' stamps, leftovers), `settled` (a run with nothing
to do stops at once).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.errors import PublishError
from wheelhouse.fsutil import WAIT, Wait, crash_point, remove_tree
from wheelhouse.index.delta import covers, keep_listing, plan_target
from wheelhouse.index.fileops import FileWriter, boot_id, index_lock, write_small
from wheelhouse.index.plan import (
    log_changes,
    mirrored_log,
    plan_mirrored,
    plan_run,
    plan_yanks,
    read_projects,
)
from wheelhouse.index.render import render_root
from wheelhouse.index.scan import Changes, Found, Listing, Source, scan
from wheelhouse.index.settled import Settled, keep_settled, read_settled, simple_seen
from wheelhouse.index.state import (
    DIRTY_NAME,
    NO_YANKS,
    SIMPLE,
    STATE_NAME,
    YANKED_NAME,
    IndexState,
    Yanks,
    empty_log,
    load_log,
    load_state,
    load_yanks,
)
from wheelhouse.index.upkeep import (
    check_places,
    drop_strays,
    existing_projects,
    log_stamp,
    mirror_of,
    paused_gc,
    tidy_sources,
    unchanged_folders,
    write_log,
)
from wheelhouse.index.wholerun import Every, Whole, list_whole, read_whole, write_pages

if TYPE_CHECKING:
    from wheelhouse.config import Config, Target
    from wheelhouse.index.ahead import ListedAhead

__all__ = [
    "COMBINED",
    "DIRTY_NAME",
    "SIMPLE",
    "STATE_NAME",
    "YANKED_NAME",
    "IndexReport",
    "Listing",
    "Source",
    "Yanks",
    "index_all",
    "index_combined",
    "index_target",
    "load_yanks",
    "write_index",
]

COMBINED = "combined"


@dataclass(frozen=True, kw_only=True)
class IndexReport:
    name: str  # the target, or "combined"
    path: Path  # the simple/ folder
    projects: int
    files: int
    hashed: int  # files read and hashed in this run (new or changed stat stamp)
    pages_written: int  # project pages plus the root page (each an .html and a .json)
    pages_removed: int
    elapsed: float
    unmatched_yanks: tuple[str, ...] = ()  # yanked.toml keys that match no file here
    settled: bool = False  # nothing changed since a run that found nothing to do: settled.py


def write_index(
    root: Path,
    sources: Sequence[Source],
    *,
    yanks: Yanks = NO_YANKS,
    name: str = "",
    listings: dict[Path, Listing] | None = None,
    wait: Wait = WAIT,
    label: str | None = None,
    full: bool = False,
) -> IndexReport:
    """Write or update `root/simple/` over the wheels of `sources` (see the module doc).
    Raises PublishError, with every published page untouched, if a wheel is refused.

    `listings`: shared by the calls of one run (index_all): what a call learns of its own
    source folders is added to it, and a later call uses it instead of listing them again.
    One run per index: the lock of `root` (a build of that folder holds the same one), for
    up to `wait`; `label` names `root` in the error when the wait runs out. `full`: stat
    every wheel and render every page (what a run after an interruption does)."""
    listings = {} if listings is None else listings
    start = time.perf_counter()
    simple = root / SIMPLE
    check_places(simple, sources)
    with index_lock(root, wait=wait, label=label), paused_gc():
        seen_simple = simple_seen(simple)  # (before this run writes there)
        old = load_state(simple)
        boot = boot_id()
        yanks_key = yanks.digest()
        # render every page when there is no state, when pages were being written as a run
        # stopped, or when the machine restarted since the last run (see below); the
        # records in the pages still spare the hashing where the state is valid
        dirty = full or old is None or (simple / DIRTY_NAME).exists() or old.boot != boot
        # the log is the one the state describes (not lost, cut short or edited by hand):
        # only then may a folder go unlisted, or a target's changes stand for this index's
        log_now = log_stamp(simple)  # (None: no log)
        trusted = old if old is not None and not dirty and old.log == log_now else None
        settled = read_settled(simple, sources, trusted, yanks_key, seen_simple)
        if settled is not None:  # nothing to do: see settled.py
            return replace(_report(name, simple, settled, 0, 0, 0, start), settled=True)
        mirror, mirrors = mirror_of(sources, listings, trusted)
        existing = existing_projects(simple, sources, dirty=dirty)
        unchanged = trusted.folders if trusted else {}
        writer = FileWriter(track=boot is None)
        found: Sequence[Found] | Whole
        added: Mapping[str, str]
        removed: Collection[str]
        touched: Collection[str]
        delta, target = None, covers(sources, listings)  # (a target's folder, not listed yet)
        if dirty:  # a full run, project by project: wholerun.py
            whole = list_whole(sources, listings, simple)
            done = read_whole(simple, whole, existing, yanks, writer, trusted=old is not None)
            found, sidecars, seen, projects = whole, whole.sidecars, whole.seen, done.projects
            added, removed, touched, log_size = {}, (), projects, 0
            hashed, files = done.hashed, done.files
            changed, publish = done.order, done.staging.commit
            yanks_changed = old is not None and old.yanks != yanks_key
        else:
            if mirror is None and target:  # a target's incremental run: delta.py
                token = log_now if old is not None else None
                delta, log_size = plan_target(
                    simple, sources[0], existing, token, unchanged.get("")
                )
                found, sidecars, seen, plan, added, removed = delta
            else:
                # (a mirroring index need not read its log: see the module doc)
                known = load_log(simple) if old is not None and mirror is None else empty_log()
                log_size = known.lines
                found, sidecars, seen = scan(sources, listings, known=known, unchanged=unchanged)
                if mirror is None:
                    plan = plan_run(found, known, existing, sidecars)
                    added = log_changes(plan, known)
                    removed = known.ino.keys() - plan.keys
                else:
                    plan = plan_mirrored(found, mirror, existing)
                    (added, removed) = mirrored_log(mirror)
                    log_size = trusted.lines if trusted else 0
            yanks_changed = old is not None and old.yanks != yanks_key
            if old is not None and yanks_changed:  # the pages of what was yanked or unyanked
                plan_yanks(plan, old.yanked, yanks.entries())
            hashed = read_projects(simple, plan, sidecars, writer, trusted=old is not None)
            changed = [p for p, files in plan.touched.items() if files and plan.changed[p]]
            changed.sort()
            projects, touched = plan.projects, plan.touched.keys()
            # one file in two targets is listed once
            files = len(found) if len(sources) == 1 else len({f.filename for f in found})

            def publish() -> None:
                write_pages(simple, plan, changed, yanks, writer, existing)

        drop_strays(simple, existing, projects)
        root_stale = (
            dirty
            or projects != existing
            or not (simple / "index.html").exists()
            or not (simple / "index.json").exists()
        )
        gone = sorted(existing - projects)
        if changed or root_stale or gone:
            # an interruption from here on leaves pages the state does not describe
            write_small(simple / DIRTY_NAME, b"", durable=boot is None)
            publish()
            _root_then_gone(simple, writer, projects if root_stale else None, gone)
        # the log before what the next index of the run is handed: its stamp, after
        logged = bool(added or removed or dirty)
        every = Every(found, sources)
        lines = (
            write_log(simple, every.rows, len(found), added, removed, log_size, whole=dirty)
            if logged
            else 0
        )
        after = log_stamp(simple) if logged else log_now
        if target and (delta is not None or dirty):  # (after the log it names)
            listed = delta or every.of(sources[0])
            keep_listing(simple, sources[0], listed, lines if logged else log_size, after)
        token = after if logged or old is None else old.log
        before = trusted.log if trusted else None
        tidy_sources(
            sources,
            every.of,
            sidecars,
            listings,
            seen,
            Changes(
                before=before,
                after=token,
                added=added,
                removed=frozenset(removed),
                touched=frozenset(touched),
                projects=frozenset(projects),
            ),
        )
        folders = unchanged_folders(sources, seen, old.folders if old else {})
        new_state = None
        if (
            changed
            or root_stale
            or gone
            or logged
            or yanks_changed
            or (old is not None and (folders != old.folders or mirrors != old.mirrors))
        ):
            # Durability: an fsync per page costs seconds for a big index, and sync()
            # flushes the whole machine. Where the kernel has a boot id the state records it
            # instead: the first run after a restart (the only way to lose written data)
            # re-renders every page and checks every sidecar, and a state cut short is
            # invalid JSON, which means a full run. Elsewhere: fsync, then the state.
            if boot is None:
                writer.fsync()
            new_state = IndexState(
                boot=boot,
                yanks=yanks_key,
                yanked=yanks.entries(),
                folders=folders,
                log=token,
                lines=lines if logged else log_size,
                mirrors=mirrors,
            )
            write_small(simple / STATE_NAME, new_state.to_json(), durable=boot is None)
            (simple / DIRTY_NAME).unlink(missing_ok=True)
        unmatched = tuple(sorted(yanks.keys() - every.matched_yanks(yanks)))
        counted = Settled(len(projects), files, unmatched)
        # (the state as it was, which this run found agreeing with its log: nothing to do)
        keep_settled(simple, seen_simple, counted, idle=trusted is not None and new_state is None)
        return _report(
            name, simple, counted, hashed, len(changed) + int(root_stale), len(gone), start
        )


def _root_then_gone(
    simple: Path, writer: FileWriter, projects: Collection[str] | None, gone: list[str]
) -> None:
    """The root page over `projects` (None: it stands), after the pages it links; then the
    pages of the projects that are `gone`, once the root stopped linking them."""
    if projects is not None:
        page, doc = render_root(sorted(projects))
        writer.write(f"{simple}/index.html", page)
        writer.write(f"{simple}/index.json", doc)
    for project in gone:
        crash_point()
        remove_tree(simple / project)


def _report(
    name: str, simple: Path, done: Settled, hashed: int, written: int, removed: int, start: float
) -> IndexReport:
    return IndexReport(
        name=name,
        path=simple,
        projects=done.projects,
        files=done.files,
        hashed=hashed,
        pages_written=written,
        pages_removed=removed,
        elapsed=time.perf_counter() - start,
        unmatched_yanks=done.unmatched_yanks,
    )


# -- entry points ------------------------------------------------------------------------


def index_target(
    folder: Path, *, yanks: Yanks = NO_YANKS, name: str | None = None, wait: Wait = WAIT
) -> IndexReport:
    """`folder/simple/` over the wheels in `folder` (any folder of wheels will do)."""
    return write_index(
        folder, [Source(folder=folder)], yanks=yanks, name=name or folder.name, wait=wait
    )


def index_combined(
    output: Path,
    folders: Sequence[Path],
    *,
    yanks: Yanks = NO_YANKS,
    listings: dict[Path, Listing] | None = None,
    wait: Wait = WAIT,
    label: str | None = None,
    only: Mapping[Path, frozenset[str]] | None = None,
    full: bool = False,
    ahead: ListedAhead | None = None,
) -> IndexReport:
    """`output/simple/` over the wheels of every folder (each inside `output`), linked as
    `../../<folder>/<file>` (one file name in two folders: the same bytes). It holds the
    lock of `output`, not of each folder: a build removes a wheel only holding that lock
    too, after this index stopped listing it (build/session.py). `only`: see Source.only."""
    sources = [
        Source(
            folder=f,
            prefix=f.relative_to(output).as_posix() + "/",
            owner=False,
            only=(only or {}).get(f),
            ahead=ahead if ahead is not None and ahead.folder == f else None,
        )
        for f in folders
    ]
    return write_index(
        output,
        sources,
        yanks=yanks,
        name=COMBINED,
        listings=listings,
        wait=wait,
        label=label,
        full=full,
    )


def index_all(
    config: Config,
    targets: Sequence[Target],
    *,
    sha256: Mapping[str, Mapping[str, str]] | None = None,
    metadata_cache: Path | None = None,
    wait: Wait = WAIT,
    exact: bool = False,
    full: bool = False,
    ahead: ListedAhead | None = None,
) -> list[IndexReport]:
    """Index each target's output folder, then the combined index over every configured
    target that has an output folder. Yanks come from `<output>/yanked.toml`. `sha256`:
    per target, the hashes of files the caller vouches for (see Source.sha256); `exact`:
    and those are all the wheels to publish for that target (a build's: see Source.only,
    the folder may still hold wheels the build removes next); `full`: see write_index;
    `ahead`: a folder listed ahead (ahead.py). Each index holds its folder's lock
    (`wheelhouse/<target>/`, then `wheelhouse/`) as it runs, never two at once."""
    if SIMPLE in config.targets:
        raise PublishError(
            f"a target named {SIMPLE!r} would have its wheels where the combined index goes "
            f"({config.rel(config.output / SIMPLE)})",
            hint="rename the target in the config",
        )
    yanks = load_yanks(config.output / YANKED_NAME)
    reports = []
    listings: dict[Path, Listing] = {}
    only = {
        config.output / name: frozenset(files) for name, files in (sha256 or {}).items() if exact
    }
    for target in targets:
        folder = config.output / target.name
        if not folder.is_dir():
            raise PublishError(
                f"{config.rel(folder)} does not exist: target {target.name!r} has no wheels yet",
                hint=f"run `wheelhouse build --target {target.name}` first",
            )
        source = Source(
            folder=folder,
            sha256=(sha256 or {}).get(target.name, {}),
            metadata_cache=metadata_cache,
            only=only.get(folder),
            ahead=ahead if ahead is not None and ahead.folder == folder else None,
        )
        reports.append(
            write_index(
                folder,
                [source],
                yanks=yanks,
                name=target.name,
                listings=listings,
                wait=wait,
                label=config.rel(folder),
                full=full,
            )
        )
    folders = [config.output / n for n in config.targets if (config.output / n).is_dir()]
    if folders:
        reports.append(
            index_combined(
                config.output,
                folders,
                yanks=yanks,
                listings=listings,
                wait=wait,
                label=config.rel(config.output),
                only=only,
                full=full,
                ahead=ahead,
            )
        )
    return reports
