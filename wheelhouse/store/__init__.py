"""store: the content-addressed cache (local, layered over S3) and its maintenance.

The public names every other package uses; the modules behind them are the store's own.
"""

from wheelhouse.store.local import Store, sha256_file
from wheelhouse.store.records import Blob, BuildRecord, Built, SdistRef

__all__ = ["Blob", "BuildRecord", "Built", "SdistRef", "Store", "sha256_file"]
