"""store: the content-addressed cache (local, layered over S3) and its maintenance.

Infrastructure below the pipeline's stages: it imports none of them, and takes what it
needs from them as typed arguments. The names every other package uses are here; the
rest is public in the module named for it: layered (the read-through/write-behind store,
RemoteStats), s3 (Bucket, S3Store), runs (record_run), maintain (stats, verify, prune) and
archive (export, import_archive).
"""

from wheelhouse.store.local import RecordKind, Store, sha256_file
from wheelhouse.store.records import Blob, BuildRecord, Built, SdistRef, safe_filename

__all__ = [
    "Blob",
    "BuildRecord",
    "Built",
    "RecordKind",
    "SdistRef",
    "Store",
    "safe_filename",
    "sha256_file",
]
