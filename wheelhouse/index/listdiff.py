"""Comparing a folder's listing with its snapshot (see snapshot.py) as bytes, not name by
name.

A folder lists its entries in the same order from one run to the next where nothing moved:
the listing's names, joined, are mostly the snapshot's, shifted where entries came and
went. `diff` finds those places with memory compares and a look-ahead of some KB (a place
counts where the entry after it comes soon after too), and settles what is left by name,
so it is exact in any order; past `limit` differences, or where the two stop meeting, it
gives up (a listing in another order costs one slow run, which writes the snapshot again).

A snapshot's last entries may have no place: those with no inode, the sidecars that the
run that wrote it created after it listed the folder (see `delta.snapshot_after`). The
listing has them somewhere among the rest. They are found by name wherever the listing has
them and count as no difference, and the compare of the rest stops before them: compared
in place, a run's hundreds of sidecars would count twice each against `limit`, and one of
them that happened to follow another in both would read as the place where the two meet,
far on, making all between look gone.
"""

from __future__ import annotations

import bisect
import mmap
import os
from typing import NamedTuple

from wheelhouse.index.snapshot import Blob, Entries, Ints, let_go, raw

_WINDOW = 1 << 16  # bytes looked ahead for the place where the listings meet again
HOLD = 1 << 18  # bytes of a map's pages compared before they are let go of
_NEAR = 512  # bytes within which the entry after a place must come in the other listing
_STEP = 4096  # bytes compared at first: then twice as many each time, up to
_MAX_STEP = 1 << 16  # (a slice is a copy: one this small reuses the same memory)
_APART = 64  # differences in a row with no place where the two meet: another order


class Diff(NamedTuple):
    """A listing (new) against a snapshot (old), entry by entry (indexes)."""

    runs: list[tuple[int, int, int]]  # (new, old, count): the same names, in a row
    inserted: list[int]  # new entries not at their place in the old listing
    deleted: list[tuple[int, str]]  # old entries not at their place in the new, with names
    replaced: list[tuple[int, int]]  # (new, old) in a run: the same name, another inode


class _Unplaced:
    """The snapshot's last entries with no inode (no place in it): where they start (in
    bytes and entries), their names, and how many of them the listing has had so far."""

    def __init__(self, old: Blob, old_inos: Ints) -> None:
        count = first = len(old_inos)
        while first and not old_inos[first - 1]:
            first -= 1
        at = len(old) - 1  # (the NUL after the last name)
        for _ in range(count - first):
            at = old.rfind(b"\0", 0, at)
        self.at, self.first = at + 1, first
        names = bytes(old[self.at : -1]).split(b"\0") if first < count else []
        self.names = dict(zip(names, range(first, count), strict=True))
        self.found = 0

    def has(self, name: bytes) -> bool:
        """Whether an entry of the listing is one of them (counted: no difference)."""
        if not self.names or name not in self.names:
            return False
        self.found += 1
        return True

    def within(self, limit: int, unpaired: int, new: Blob, i: int) -> bool:
        """Whether the listing differs in `limit` entries or fewer, where `unpaired` entries of
        both are at no place in the other (each of them among it), the listing's from `i`
        on looked up among these first."""
        if unpaired - len(self.names) > limit:  # (even were each of them one of these)
            return False
        if i < len(new) and self.names:
            for name in bytes(new[i:-1]).split(b"\0"):
                self.has(name)
        return unpaired + len(self.names) - 2 * self.found <= limit

    def deleted(self) -> list[tuple[int, str]]:
        """All of them, named, as entries of the snapshot not at a place in the listing
        (those the listing has too are settled by name, as moved)."""
        return [(j, os.fsdecode(name)) for name, j in self.names.items()]


def diff(listing: Entries, old: Blob, old_inos: Ints, *, limit: int) -> Diff | None:
    """Where `listing` differs from the snapshot's names `old` (as `encode_names` gives
    them) and inodes; None when more than `limit` entries do, or when the two stop meeting
    again (another order: a copy, another file system)."""
    new, starts, new_inos = listing.blob, listing.starts, listing.inos
    unplaced = _Unplaced(old, old_inos)
    placed = unplaced.at  # (the compare in place stops here)
    dropped = dropped_new = 0  # the pages of each before these are let go of (see let_go)
    runs: list[tuple[int, int, int]] = []
    inserted: list[int] = []
    deleted: list[tuple[int, str]] = []
    i = j = 1  # where the current entries start
    ei = ej = 0  # their indexes
    apart = 0  # differences in a row where neither entry comes further on in the other
    while i < len(new) and j < placed:
        n = _common(new, i, old, j, len(new), placed)
        # the entries alike whole: those that end before i + n (found in their starts)
        k = bisect.bisect_right(starts, i + n, ei + 1) - ei - 1
        if k:
            cut = starts[ei + k]
            runs.append((ei, ej, k))
            ei, ej, j, i = ei + k, ej + k, j + cut - i, cut
        if i >= len(new) or j >= placed:
            break
        end_new = new.find(b"\0", i) + 1
        if unplaced.has(bytes(new[i : end_new - 1])):
            inserted.append(ei)
            ei, i = ei + 1, end_new
            continue
        end_old = old.find(b"\0", j) + 1
        at_new, at_old = _meet(new, i, end_new, old, j, end_old, placed)
        if at_new >= 0 or at_old >= 0:
            apart = 0
        if at_new >= 0 and (at_old < 0 or at_new - i <= at_old - j):
            k = new[i : at_new + 1].count(b"\0")  # entries that came before it
            inserted.extend(range(ei, ei + k))
            ei, i = ei + k, at_new + 1
        elif at_old >= 0:
            k = old[j : at_old + 1].count(b"\0")
            deleted.extend(zip(range(ej, ej + k), _names(old, j, at_old), strict=True))
            ej, j = ej + k, at_old + 1
        else:  # neither is near: one each, and on
            apart += 1
            if apart > _APART:
                return None
            inserted.append(ei)
            deleted.append((ej, os.fsdecode(bytes(old[j : end_old - 1]))))
            ei, ej, i, j = ei + 1, ej + 1, end_new, end_old
        if len(inserted) + len(deleted) - unplaced.found > limit:
            return None
        dropped = _let_go_behind(old, dropped, j)
        dropped_new = _let_go_behind(new, dropped_new, i)
    unpaired = len(inserted) + len(deleted) + len(new_inos) - ei + unplaced.first - ej
    if not unplaced.within(limit, unpaired, new, i):
        return None
    inserted.extend(range(ei, len(new_inos)))
    if j < placed:
        deleted.extend(zip(range(ej, unplaced.first), _names(old, j, placed - 1), strict=True))
    deleted.extend(unplaced.deleted())
    replaced = _replaced(runs, new_inos, old_inos)
    _let_go_all(new, old, raw(new_inos), raw(old_inos))  # (every map was looked at)
    return Diff(runs, inserted, deleted, replaced)


def _meet(
    new: Blob, i: int, end_new: int, old: Blob, j: int, end_old: int, placed: int
) -> tuple[int, int]:
    """Where the old entry (at `j`) comes further on in the new listing, and the new one
    (at `i`) in the old up to `placed` (-1: not within the look-ahead), each only where the
    entry after it comes soon after too: else a name that moved far would skip a stretch."""
    at_new = new.find(old[j - 1 : end_old], i, i + _WINDOW)
    if at_new >= 0 and not _follows(old, end_old, placed, new, at_new + end_old - j + 1):
        at_new = -1
    at_old = old.find(new[i - 1 : end_new], j, min(j + _WINDOW, placed))
    if at_old >= 0 and not _follows(new, end_new, len(new), old, at_old + end_new - i + 1):
        at_old = -1
    return at_new, at_old


def _follows(a: Blob, at: int, stop: int, b: Blob, to: int) -> bool:
    """Whether the entry of `a` at `at` comes in `b` soon after `to` (or `a` has none left
    before `stop`)."""
    if at >= stop:
        return True
    entry = a[at - 1 : a.find(b"\0", at) + 1]  # (its name between NULs: a whole name)
    return b.find(entry, to - 1, to + _NEAR) >= 0


def _names(blob: Blob, start: int, end: int) -> list[str]:
    """The names of the entries from `start` to the NUL at `end`."""
    return os.fsdecode(bytes(blob[start:end])).split("\0")


def _let_go_behind(data: Blob, done: int, at: int) -> int:
    """Let go of a mapped listing's pages from `done` (a page's start, where the last call
    stopped) to a look-ahead before `at`, where a compare is: nothing behind it is looked
    at again. Where it stopped now."""
    if not isinstance(data, mmap.mmap) or at - done < HOLD + _WINDOW:
        return done
    end = (at - _WINDOW) // mmap.PAGESIZE * mmap.PAGESIZE
    let_go(data, done, end - done)
    return end


def _let_go_all(*maps: Blob) -> None:
    for data in maps:
        let_go(data, 0, len(data))


def _common(a: Blob, i: int, b: Blob, j: int, stop: int, b_stop: int) -> int:
    """How many bytes `a` from `i` (up to `stop`) and `b` from `j` (up to `b_stop`) have
    alike: compared a block at a time, the blocks doubling up to 64 KB, then halving into
    the one that differs."""
    end = min(stop - i, b_stop - j)
    done, step = 0, _STEP
    freed_a, freed = i // mmap.PAGESIZE * mmap.PAGESIZE, j // mmap.PAGESIZE * mmap.PAGESIZE
    while done < end:
        freed_a = _let_go_behind(a, freed_a, i + done)
        freed = _let_go_behind(b, freed, j + done)
        n = min(step, end - done)
        if a[i + done : i + done + n] != b[j + done : j + done + n]:
            low, high = done, done + n  # alike up to low; not up to high
            while high - low > 1:
                mid = (low + high) // 2
                if a[i + low : i + mid] == b[j + low : j + mid]:
                    low = mid
                else:
                    high = mid
            return low
        done, step = done + n, min(step * 2, _MAX_STEP)
    return end


def _replaced(
    runs: list[tuple[int, int, int]], new_inos: Ints, old_inos: Ints
) -> list[tuple[int, int]]:
    """The entries of `runs` whose inode differs (their numbers compared as bytes, where
    they lie)."""
    a, b = raw(new_inos), raw(old_inos)
    out = []
    for ei, ej, k in runs:
        s = 0
        while s < k:
            same = _common(a, 8 * (ei + s), b, 8 * (ej + s), 8 * (ei + k), len(b)) // 8
            s += same
            if s < k:
                out.append((ei + s, ej + s))
                s += 1
    return out
