"""Sizes and ages as people write them on a command line: 500M, 1.5GiB, 30d, 12h."""

from __future__ import annotations

import re

_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*")
_AGE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """Bytes, in powers of 1024 (M = MiB: what `du -h` shows); ValueError if not a size."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 500M, 5G)")
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_"))


def parse_age(text: str) -> float:
    """Seconds; ValueError if not an age."""
    m = _AGE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not an age (e.g. 12h, 30d, 2w)")
    return float(m.group(1)) * _AGE_UNITS[m.group(2).lower()]
