"""The store's check of the pinned wheels' bytes, started before the pipeline's modules
load. A warm build whose output folder was deleted reads every wheel it will link again
(store/local.py: the unlink moved their ctime); started first, in a thread, that read
overlaps the ~30 ms of imports instead of following them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from wheelhouse.config import Config, Target
from wheelhouse.lock.lockfile import read_target_lock
from wheelhouse.store import Store
from wheelhouse.store.signing import Keyring


class StoreCheck:
    """Opens the store, reads each target's lock (its errors are raised here, first) and
    starts checking the pinned files; `store()` waits until every check is done, so no
    planning lookup meets a file that a check is dropping."""

    def __init__(self, config: Config, targets: Sequence[Target]) -> None:
        self.keyring = Keyring.of(config)  # signs this run's records, checks what it reads
        self._store = Store(config.cache_dir, self.keyring)
        self.pinned = [
            h.removeprefix("sha256:")
            for t in targets
            for pin in read_target_lock(config, t).pins
            for h in pin.hashes
        ]
        self._thread = threading.Thread(target=self._check, name="store-check", daemon=True)
        self._thread.start()

    def _check(self) -> None:
        # an error here (a file gone, a read-only cache) is met again, and reported, by
        # the build's own lookup of that file
        with contextlib.suppress(OSError), self._store.in_use():
            self._store.check_ahead(self.pinned)

    def store(self) -> Store:
        """The store, once every check is done (local reads and hashing: bounded by the
        size of the pinned files, no outside party to wait for)."""
        self._thread.join()
        return self._store
