"""index: wheel inspection and the static PEP 503/691 index of a wheelhouse.

The public names other packages use; the modules behind them are the index's own.
`publish_to_bucket` (and its report) load on first use: they bring the S3 upload code.
"""

from typing import TYPE_CHECKING, Any

from wheelhouse.index.fileops import index_lock
from wheelhouse.index.scan import Source
from wheelhouse.index.state import SIMPLE, YANKED_NAME, Yanks, load_yanks
from wheelhouse.index.wheelfile import WheelInfo, WheelRefused, inspect_wheel
from wheelhouse.index.writer import (
    COMBINED,
    IndexReport,
    index_all,
    index_combined,
    index_target,
    write_index,
)

if TYPE_CHECKING:
    from wheelhouse.index.publish import PublishReport, publish_to_bucket

__all__ = [
    "COMBINED",
    "SIMPLE",
    "YANKED_NAME",
    "IndexReport",
    "PublishReport",
    "Source",
    "WheelInfo",
    "WheelRefused",
    "Yanks",
    "index_all",
    "index_combined",
    "index_lock",
    "index_target",
    "inspect_wheel",
    "load_yanks",
    "publish_to_bucket",
    "write_index",
]

_LAZY = {"publish_to_bucket", "PublishReport"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from wheelhouse.index import publish

        return getattr(publish, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
