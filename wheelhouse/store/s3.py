"""The shared store on S3-compatible object storage: the boto3 client, one bucket and
prefix (`Bucket`), and the remote store on it (`S3Store`) that store/layered.py reads
through and writes behind.

Layout under `s3://bucket/prefix/` (every key content addressed or input addressed, so
immutable: runners never overwrite each other's objects):

    blobs/<sha256>            a wheel or sdist; its file name in the object's metadata
    built/<input-key>.json    the provenance record of the wheel built for that key, signed
    pure/<sdist-sha256>.json  {"key": ...}: this sdist builds a pure wheel (any target), signed

Puts are conditional (`If-None-Match: *`) where the service supports it; elsewhere a HEAD
first, which is safe because equal keys hold equal bytes.

Credentials come from boto3's standard chain and are never printed: errors name the
bucket, the operation and S3's error code, nothing the client sent.

Every call is bounded: `[store] timeout` seconds per connect and per read, ATTEMPTS
attempts (botocore's standard retry mode: a transient error or a timeout is retried
after a jittered backoff of at most 0.1 s here), a "waiting for <endpoint> (attempt 2/3)"
line before each retry, and once the service is found unreachable every later call
fails at once, so a run with many objects to ask about waits one call's time, not one
per object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from wheelhouse.config import StoreSettings
from wheelhouse.errors import StoreAccessError, StoreError, ToolError
from wheelhouse.store.records import safe_filename

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("wheelhouse.s3")
ATTEMPTS = 3  # per call, the first included

# S3 error codes that mean "who you are" or "what you may do", not "it is not there"
_ACCESS_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "AllAccessDisabled",
    "403",
}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
# the service does not know If-None-Match on PUT: fall back to HEAD-then-PUT
_NO_CONDITIONAL = {"NotImplemented", "501", "InvalidArgument", "InvalidRequest"}
_ACCESS_HINT = (
    "wheelhouse takes credentials from the standard AWS chain (AWS_ACCESS_KEY_ID / "
    "AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, ~/.aws/credentials, an instance "
    "role): check them and the bucket's policy"
)


def client(settings: StoreSettings) -> S3Client:
    """A boto3 S3 client for the store's service; credentials from the standard chain."""
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:
        raise ToolError(
            f"{settings.url}: the S3 store needs boto3, which is not installed",
            hint="pip install 'wheelhouse[s3]'",
        ) from None
    boto = BotoConfig(
        connect_timeout=settings.timeout,
        read_timeout=settings.timeout,
        # total_max_attempts counts the first attempt; botocore's max_attempts does not
        retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
        # path-style works on every S3-compatible service; virtual hosts need DNS per bucket
        s3={"addressing_style": "path"} if settings.endpoint_url else {},
        max_pool_connections=16,
    )
    session = boto3.session.Session()
    s3 = session.client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=boto
    )
    s3.meta.events.register("request-created.s3", _RetryNotice(settings.timeout))
    return s3


class _RetryNotice:
    """Before a retry: a line saying whom we wait for (through the CLI's logging, or
    logging's last-resort stderr handler), so a slow service is never plain silence.
    Calls made in parallel (a prefetch makes 16) retry together: one line per attempt
    number and timeout period says it for all of them."""

    def __init__(self, period: float) -> None:
        self._period = period
        self._said: dict[int, float] = {}  # attempt -> when it was last said
        self._lock = threading.Lock()

    def __call__(self, request: Any, **kwargs: Any) -> None:
        attempt = getattr(request, "context", {}).get("retries", {}).get("attempt", 1)
        if attempt <= 1:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._said.get(attempt, -math.inf) < self._period:
                return
            self._said[attempt] = now
        parts = urllib.parse.urlsplit(str(request.url))
        log.warning("waiting for %s://%s (attempt %d/%d) ...", *parts[:2], attempt, ATTEMPTS)


class Bucket:
    """One bucket and prefix: keys relative to the prefix, every failure a StoreError or
    StoreAccessError that names the object and the operation."""

    def __init__(self, settings: StoreSettings, s3: S3Client | None = None) -> None:
        self.settings = settings
        self._s3 = s3
        self._lock = threading.Lock()
        self.conditional = True  # If-None-Match on PUT, until the service says no
        self._unreachable: str | None = None  # why, once a call found the service gone

    @property
    def s3(self) -> S3Client:
        with self._lock:
            if self._s3 is None:
                self._s3 = client(self.settings)
            return self._s3

    def key(self, rel: str) -> str:
        return f"{self.settings.prefix}/{rel}" if self.settings.prefix else rel

    def url(self, rel: str) -> str:
        return f"s3://{self.settings.bucket}/{self.key(rel)}"

    @contextmanager
    def _errors(self, op: str, rel: str) -> Iterator[None]:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            NoCredentialsError,
        )
        from botocore.exceptions import ConnectionError as Unreachable

        if self._unreachable is not None:  # found gone already: don't wait for it again
            raise self._unreachable_error(op, rel, self._unreachable)
        try:
            yield
        except NoCredentialsError:
            raise StoreAccessError(
                f"{self.settings.url}: no credentials found for {op} {self.url(rel)}",
                hint=_ACCESS_HINT,
            ) from None
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", "?"))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _ACCESS_CODES or status == 403:
                raise StoreAccessError(
                    f"{op} {self.url(rel)}: the service refused the request ({code})",
                    hint=_ACCESS_HINT,
                ) from None
            if code == "NoSuchBucket":
                raise StoreError(
                    f"{op} {self.url(rel)}: bucket {self.settings.bucket!r} does not exist",
                    hint="create it, or fix the store URL / endpoint-url",
                ) from None
            raise StoreError(
                f"{op} {self.url(rel)}: the service answered {code} (HTTP {status})",
                hint="rerun; if it persists, check the service and the store settings",
            ) from None
        except (Unreachable, HTTPClientError) as e:  # refused, reset, timed out: after retries
            self._unreachable = type(e).__name__
            raise self._unreachable_error(op, rel, self._unreachable) from None
        except BotoCoreError as e:
            raise self._unreachable_error(op, rel, type(e).__name__) from None

    def _unreachable_error(self, op: str, rel: str, why: str) -> StoreError:
        where = self.settings.endpoint_url or "the S3 service"
        timeout = f"{self.settings.timeout:g}"
        return StoreError(
            f"{op} {self.url(rel)}: cannot reach {where}: {why} ({ATTEMPTS} attempts, "
            f"each waiting up to {timeout} s to connect and {timeout} s for an answer)",
            hint="nothing half-written is visible there; rerun when the service is back. "
            f"If it is only slow, raise `timeout` in [store] (now {timeout} s)",
        )

    def head(self, rel: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        log.debug("s3 HEAD %s", self.url(rel))
        with self._errors("HEAD", rel):
            try:
                return dict(self.s3.head_object(Bucket=self.settings.bucket, Key=self.key(rel)))
            except ClientError as e:
                if str(e.response.get("Error", {}).get("Code")) in _MISSING_CODES:
                    return None
                raise
        return None  # pragma: no cover - _errors always raises

    def download(self, rel: str, dest: BinaryIO) -> tuple[str, dict[str, str]] | None:
        """Stream the object into `dest`: (its sha256, its metadata), or None if absent."""
        from botocore.exceptions import ClientError

        log.debug("s3 GET %s", self.url(rel))
        h = hashlib.sha256()
        with self._errors("GET", rel):
            try:
                obj = self.s3.get_object(Bucket=self.settings.bucket, Key=self.key(rel))
            except ClientError as e:
                if str(e.response.get("Error", {}).get("Code")) in _MISSING_CODES:
                    return None
                raise
            for block in obj["Body"].iter_chunks(1 << 20):
                h.update(block)
                dest.write(block)
            return h.hexdigest(), dict(obj.get("Metadata", {}))
        return None  # pragma: no cover

    def get_bytes(self, rel: str) -> bytes | None:
        import io

        buf = io.BytesIO()
        return buf.getvalue() if self.download(rel, buf) is not None else None

    def put(
        self,
        rel: str,
        body: Path | bytes,
        *,
        content_type: str,
        metadata: dict[str, str] | None = None,
        immutable: bool = True,
        cache_control: str | None = None,
    ) -> bool:
        """Upload; False when `immutable` and the key already exists (its bytes are the
        same by construction, so nothing is overwritten)."""
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {
            "Bucket": self.settings.bucket,
            "Key": self.key(rel),
            "ContentType": content_type,
            "Metadata": metadata or {},
        }
        if cache_control:
            args["CacheControl"] = cache_control
        if immutable and not self.conditional and self.head(rel) is not None:
            return False
        log.debug("s3 PUT %s", self.url(rel))
        with self._errors("PUT", rel):
            for _attempt in range(2):
                try:
                    call: dict[str, Any] = {**args, **self._condition(immutable)}
                    if isinstance(body, Path):
                        with body.open("rb") as f:
                            self.s3.put_object(Body=f, **call)
                    else:
                        self.s3.put_object(Body=body, **call)
                    return True
                except ClientError as e:
                    code = str(e.response.get("Error", {}).get("Code"))
                    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                    if immutable and (code == "PreconditionFailed" or status == 412):
                        return False  # another runner put the same bytes first
                    if immutable and self.conditional and code in _NO_CONDITIONAL:
                        self.conditional = False  # an older service: HEAD, then PUT
                        if self.head(rel) is not None:
                            return False
                        continue
                    raise
        return True  # pragma: no cover

    def _condition(self, immutable: bool) -> dict[str, str]:
        return {"IfNoneMatch": "*"} if immutable and self.conditional else {}

    def delete(self, rel: str) -> None:
        log.debug("s3 DELETE %s", self.url(rel))
        with self._errors("DELETE", rel):
            self.s3.delete_object(Bucket=self.settings.bucket, Key=self.key(rel))

    def listing(self, under: str = "") -> dict[str, str]:
        """rel key -> ETag (quotes stripped) of every object under `under`."""
        out: dict[str, str] = {}
        start = self.key(under)
        strip = len(self.key("")) if self.settings.prefix else 0
        log.debug("s3 LIST %s", self.url(under))
        with self._errors("LIST", under):
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.settings.bucket, Prefix=start
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    out[obj["Key"][strip:]] = obj.get("ETag", "").strip('"')
        return out


class S3Store:
    """A layered.RemoteStore on an S3 bucket (see the module docstring for the layout)."""

    def __init__(self, settings: StoreSettings, bucket: Bucket | None = None) -> None:
        self.url = settings.url
        self.bucket = bucket or Bucket(settings)
        self.on_corrupt: Callable[[str], None] = lambda what: None
        self._corrupt: set[str] = set()  # keys seen corrupt this run: replaced on upload

    def fetch_blob(self, sha256: str, tmpdir: Path) -> tuple[Path, str] | None:
        rel = f"blobs/{sha256}"
        tmp = tmpdir / "remote"
        with tmp.open("wb") as f:
            got = self.bucket.download(rel, f)
        if got is None:
            return None
        digest, meta = got
        filename = urllib.parse.unquote(meta.get("filename", ""))
        if digest != sha256 or not safe_filename(filename):
            self._corrupt.add(rel)
            why = f"sha256 {digest}" if digest != sha256 else f"file name {filename!r}"
            self.on_corrupt(f"{self.bucket.url(rel)} has {why}: not used")
            return None
        return tmp, filename

    def has_blob(self, sha256: str) -> bool:
        return self.bucket.head(f"blobs/{sha256}") is not None

    def upload_blob(self, sha256: str, path: Path, filename: str) -> bool:
        rel = f"blobs/{sha256}"
        if rel in self._corrupt:  # heal it: same key, the right bytes
            self.bucket.delete(rel)
            self._corrupt.discard(rel)
        return self.bucket.put(
            rel,
            path,
            content_type="application/octet-stream",
            metadata={"filename": urllib.parse.quote(filename), "sha256": sha256},
        )

    def fetch_record(self, kind: str, key: str) -> dict[str, Any] | None:
        rel = f"{kind}/{key}.json"
        data = self.bucket.get_bytes(rel)
        if data is None:
            return None
        try:
            record = json.loads(data)
        except ValueError:
            record = None
        want = "sha256" if kind == "built" else "key"
        if not isinstance(record, dict) or not isinstance(record.get(want), str):
            self._corrupt.add(rel)
            self.on_corrupt(f"{self.bucket.url(rel)} is not a {kind} record: not used")
            return None
        return record

    def distrust(self, kind: str, key: str) -> None:
        self._corrupt.add(f"{kind}/{key}.json")  # replaced, like a corrupt object

    def upload_record(self, kind: str, key: str, record: dict[str, Any]) -> bool:
        rel = f"{kind}/{key}.json"
        if rel in self._corrupt:
            self.bucket.delete(rel)
            self._corrupt.discard(rel)
        body = json.dumps(record, sort_keys=True).encode()
        return self.bucket.put(rel, body, content_type="application/json")
