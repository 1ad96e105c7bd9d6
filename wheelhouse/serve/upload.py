"""The legacy upload API (what `twine upload` speaks): a multipart/form-data POST with
`:action=file_upload`, `name`, `version`, optional `sha256_digest`, and the file in
`content`.

The body is streamed into a temp file beside the target's wheels (a dot name: the index
never lists it), hashed as it comes, and never held in memory; it is cut off with 413
past the size limit. Then, in a worker thread: the file name must be a wheel's, the form's
name and version must match it, the sha256 must match when sent, the zip must be whole
(every member's CRC) and its METADATA's Name and Version must match the file name (the
index's own checks: `wheelhouse.index.inspect_wheel`). Only then is it linked into place
(a hard link, which fails if the name exists: two uploads of one name cannot both win) and
the target's index and the combined index are updated incrementally (`wheelhouse.index`).
A name that exists with other bytes is refused with 409; the same bytes again succeed and
change nothing. A refused upload writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import OutputBusyError, PublishError
from wheelhouse.index import WheelRefused, inspect_wheel
from wheelhouse.store import sha256_file

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks, MultipartParser

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_FIELDS_LIMIT = 8 << 20  # the form's other fields (twine sends the README as one)
_TAG_PART = re.compile(r"[a-z0-9_]+")  # packaging lowercases tags


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, kw_only=True)
class Form:
    """A received upload: its fields, and the file, in the target folder under a dot name
    until `commit` links it into place (or `discard` removes it)."""

    fields: dict[str, str]
    filename: str | None  # as sent (None: no file name in the part)
    tmp: str
    sha256: str
    size: int


# -- receiving ---------------------------------------------------------------------------


def _boundary(content_type: bytes | None) -> bytes:
    from python_multipart.multipart import parse_options_header

    if not content_type:
        raise Refused(400, "no Content-Type: send multipart/form-data (as twine does)")
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Refused(400, "the body must be multipart/form-data with a boundary")
    return boundary


def _check_length(declared: bytes | None, limit: int) -> None:
    try:
        if declared is not None and int(declared) > limit:
            raise Refused(413, f"the upload is {int(declared)} bytes; the limit is {limit}")
    except ValueError:
        raise Refused(400, "Content-Length is not a number") from None


class _Parts:
    """The multipart parser's callbacks: the `content` part streamed into a temp file in
    `folder` (hashed as it comes, never held in memory), the other parts into `fields`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.tmp: str | None = None
        self.size = 0
        self.digest = hashlib.sha256()
        self.ended = False
        self._fd: int | None = None
        self._headers: dict[bytes, bytes] = {}  # of the current part
        self._field = b""  # the header name being read
        self._name: str | None = None  # the current part's form field
        self._data: list[bytes] = []  # the current part's bytes (not `content`)
        self._fields_size = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        key = self._field.lower()
        self._headers[key] = self._headers.get(key, b"") + data[start:end]

    def on_header_end(self) -> None:
        self._field = b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._name = name
        if name == "content":
            if self._fd is not None:
                raise Refused(400, "more than one `content` part")
            # kept as sent: a name with a path in it is refused, never cut down to size
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd, self.tmp = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=self.folder)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._name == "content":
            assert self._fd is not None
            self.digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
            self.size += len(chunk)
        else:
            self._fields_size += len(chunk)
            if self._fields_size > _FIELDS_LIMIT:
                raise Refused(413, f"the form's fields exceed {_FIELDS_LIMIT} bytes")
            self._data.append(chunk)

    def on_part_end(self) -> None:
        name = self._name
        if name is not None and name != "content":
            self.fields[name] = b"".join(self._data).decode("utf-8", "replace")
        self._data.clear()
        self._headers = {}
        self._name = None

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        if self.tmp is not None:
            _unlink(self.tmp)
            self.tmp = None


async def receive_form(
    receive: Receive, headers: dict[bytes, bytes], folder: Path, limit: int
) -> Form:
    """Parse the multipart body, streaming the `content` part into a temp file in
    `folder`. Raises Refused (and removes the temp file) on a bad or oversized body."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser

    boundary = _boundary(headers.get(b"content-type"))
    _check_length(headers.get(b"content-length"), limit)
    parts = _Parts(folder)
    parser = MultipartParser(boundary, parts.callbacks(), max_header_count=16)
    try:
        await _feed(receive, parser, limit)
        parser.finalize()
        if not parts.ended:
            raise Refused(400, "the multipart body ends before its closing boundary")
        if parts.tmp is None:
            raise Refused(400, "no `content` part: the form must carry the file")
    except FormParserError as exc:
        parts.remove()
        raise Refused(400, f"malformed multipart body: {exc}") from None
    except BaseException:
        parts.remove()
        raise
    finally:
        parts.close()
    return Form(
        fields=parts.fields,
        filename=parts.filename,
        tmp=parts.tmp,
        sha256=parts.digest.hexdigest(),
        size=parts.size,
    )


async def _feed(receive: Receive, parser: MultipartParser, limit: int) -> None:
    """The body, as it arrives, into the parser; cut off past `limit` bytes."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "the client went away during the upload")
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise Refused(413, f"the upload is over the limit of {limit} bytes")
        if chunk:
            parser.write(chunk)
        if not message.get("more_body", False):
            return


def timed(receive: Receive, seconds: float) -> Receive:
    """`receive` that waits at most `seconds` for each piece of the body: a body that
    stalls ends in 408, not in a connection (and a temp file) held forever."""

    async def get() -> MutableMapping[str, Any]:
        try:
            return await asyncio.wait_for(receive(), seconds)
        except TimeoutError:
            raise Refused(408, f"the upload's body stalled for {seconds:g} s") from None

    return get


def discard(form: Form) -> None:
    _unlink(form.tmp)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)  # noqa: PTH108


# -- checking and publishing -------------------------------------------------------------


def _check(form: Form) -> str:
    """The checks before anything is published; the wheel's file name."""
    action = form.fields.get(":action", "")
    if action != "file_upload":
        raise Refused(400, f":action is {action!r}; only file_upload is supported")
    filename, project, version = _check_filename(form.filename or "")
    _check_fields(form, project, version)
    sent = form.fields.get("sha256_digest", "").strip().lower()
    if sent and sent != form.sha256:
        raise Refused(
            400, f"{filename}: sha256 {form.sha256} is not the sha256_digest sent ({sent})"
        )
    _check_inflated_size(form, filename)
    try:
        inspect_wheel(
            Path(form.tmp), filename=filename, size=form.size, sha256=form.sha256, check_crc=True
        )
    except WheelRefused as exc:
        raise Refused(400, f"{filename}: {exc.message}") from None
    return filename


_MAX_RATIO = 200  # inflated / uploaded bytes: binaries inflate 2-5x, text-heavy wheels ~10x
_RATIO_FROM = 256 << 20  # below this many inflated bytes, any ratio (a tiny wheel is cheap)


def _check_inflated_size(form: Form, filename: str) -> None:
    """A zip bomb is refused by what its central directory declares, before the CRC
    check inflates every member: a small upload must not cost minutes of CPU."""
    import zipfile

    try:
        with zipfile.ZipFile(form.tmp) as zf:
            inflated = sum(zi.file_size for zi in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # inspect_wheel says what is wrong with it
    if inflated > _RATIO_FROM and inflated > form.size * _MAX_RATIO:
        raise Refused(
            400,
            f"{filename}: its members inflate to {inflated} bytes from {form.size}: over "
            f"{_MAX_RATIO}x, a zip bomb, not a wheel",
        )


def _check_filename(filename: str) -> tuple[str, str, Version]:
    """(the file name, its project, its version): a wheel's name, and only a name."""
    if not filename or filename[0] == "." or any(c in filename for c in "/\\\x00"):
        raise Refused(400, f"{filename!r} is not a file name")
    if not filename.endswith(".whl"):
        raise Refused(400, f"{filename}: only wheels can be uploaded to a wheelhouse")
    try:
        project, version, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise Refused(400, f"{filename!r} is not a valid wheel file name ({exc})") from None
    # packaging parses any text between the dashes as tags: a tag is letters, digits and
    # `_` only (PEP 425), never markup, quotes or line breaks that would reach the pages
    for tag in tags:
        for part in (tag.interpreter, tag.abi, tag.platform):
            if not _TAG_PART.fullmatch(part):
                raise Refused(400, f"{filename!r}: {part!r} is not a valid wheel tag (PEP 425)")
    return filename, project, version


def _check_fields(form: Form, project: str, version: Version) -> None:
    """The form's name and version, where sent, are the wheel's."""
    name = form.fields.get("name")
    if name is not None and canonicalize_name(name) != project:
        raise Refused(400, f"the form's name {name!r} is not the wheel's ({project})")
    sent_version = form.fields.get("version")
    if sent_version is None:
        return
    try:
        same = Version(sent_version) == version
    except InvalidVersion:
        same = False
    if not same:
        raise Refused(400, f"the form's version {sent_version!r} is not the wheel's ({version})")


def commit(form: Form, folder: Path, reindex: Callable[[], None]) -> tuple[int, str]:
    """Check the received file and publish it (blocking: run it in a thread). Returns
    (status, message); raises Refused. The temp file is gone afterwards either way."""
    try:
        filename = _check(form)
        final = folder / filename
        try:
            os.link(form.tmp, final)  # never replaces: an existing name is kept
        except FileExistsError:
            if sha256_file(final) == form.sha256:
                reindex()  # in case an earlier upload stopped before indexing it
                return 200, f"{filename} is already here with the same bytes"
            raise Refused(
                409, f"{filename} already exists with other bytes: a file name is never reused"
            ) from None
        os.chmod(final, 0o644)  # noqa: PTH101
        try:
            reindex()
        except PublishError as exc:
            final.unlink(missing_ok=True)
            # the index may have written its PEP 658 sidecar before it refused the wheel
            final.with_name(filename + ".metadata").unlink(missing_ok=True)
            with contextlib.suppress(PublishError):
                reindex()  # the pages as they were
            raise Refused(400, exc.message) from None
        return 200, f"{filename} published"
    except OutputBusyError as exc:  # the file is kept, not yet listed: a retry lists it
        raise Refused(503, f"{exc.message}: retry the upload in a while") from None
    finally:
        discard(form)
