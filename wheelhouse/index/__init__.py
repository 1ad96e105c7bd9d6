"""index: wheel inspection and the static PEP 503/691 index of a wheelhouse.

The public names other packages use; the modules behind them are the index's own. Each
loads on first use: `wheelhouse index` starts listing a target's folder (`ahead`) before
it imports the rest, and `publish_to_bucket` brings the S3 upload code.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wheelhouse.index.fileops import index_lock
    from wheelhouse.index.publish import PublishReport, publish_to_bucket
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

_WHERE = {  # name -> its module
    "index_lock": "fileops",
    "PublishReport": "publish",
    "publish_to_bucket": "publish",
    "Source": "scan",
    "SIMPLE": "state",
    "YANKED_NAME": "state",
    "Yanks": "state",
    "load_yanks": "state",
    "WheelInfo": "wheelfile",
    "WheelRefused": "wheelfile",
    "inspect_wheel": "wheelfile",
    "COMBINED": "writer",
    "IndexReport": "writer",
    "index_all": "writer",
    "index_combined": "writer",
    "index_target": "writer",
    "write_index": "writer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"wheelhouse.index.{module}"), name)
    globals()[name] = value  # (found here from now on)
    return value
