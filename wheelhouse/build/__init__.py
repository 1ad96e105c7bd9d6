"""build: one BuildSession per run; plan -> fetch -> compile -> assemble -> record.

`build` is the entry: it starts the store's check of the pinned files (early.py) before
the pipeline's modules load, then runs session.build."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this package's modules load when `build` runs, not on import
    from wheelhouse.build.session import BuildReport, Event
    from wheelhouse.config import Config, Target
    from wheelhouse.engine import Engine
    from wheelhouse.fsutil import Wait


def build(
    config: Config,
    targets: Sequence[Target],
    *,
    engine: Callable[[], Engine],
    jobs: int | None = None,
    keep_going: bool = False,
    dry_run: bool = False,
    index: bool = True,
    wait: Wait | None = None,
    on_event: Event | None = None,
    save_recipes: bool = False,
) -> BuildReport:
    """session.build, with the store's check of the pinned files started first."""
    from wheelhouse.build.early import StoreCheck

    check = StoreCheck(config, targets)
    from wheelhouse.build import session
    from wheelhouse.fsutil import WAIT

    return session.build(
        config,
        targets,
        engine=engine,
        jobs=jobs,
        keep_going=keep_going,
        dry_run=dry_run,
        index=index,
        wait=wait or WAIT,
        on_event=on_event or (lambda kind, msg: None),
        save_recipes=save_recipes,
        check=check,
    )
