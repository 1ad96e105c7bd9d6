"""`[timeouts]`, and the durations other tables take (`[store]`'s timeout)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from wheelhouse.config.model import Timeouts
from wheelhouse.tomltable import TableReader

TIMEOUT_KEYS = ("engine", "image", "build", "resolve")

_SECONDS = r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*"  # compiled (and cached by re) when first used


def seconds(r: TableReader, name: str, default: float) -> float:
    """A duration: a number of seconds, or a string like "90", "90s", "20m", "2h" (what
    `--set timeouts.build=2h` gives)."""
    value = r.table.get(name, default)
    if isinstance(value, str) and (m := re.fullmatch(_SECONDS, value)):
        value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise r.fail(name, r.table.get(name), 'a number of seconds > 0 (or e.g. "20m", "2h")')
    return float(value)


def read_timeouts(table: Mapping[str, Any], source: str) -> Timeouts:
    r = TableReader(table, "timeouts", source)
    r.check_keys(TIMEOUT_KEYS)
    default = Timeouts()
    return Timeouts(**{k: seconds(r, k, getattr(default, k)) for k in TIMEOUT_KEYS})
