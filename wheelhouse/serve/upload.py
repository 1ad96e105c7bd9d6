"""The legacy upload API (what `twine upload` speaks): a multipart/form-data POST with
`:action=file_upload`, `name`, `version`, optional `sha256_digest`, and the file in
`content`.

The body is streamed into a temp file beside the target's wheels (a dot name: the index
never lists it), hashed as it comes, and never held in memory; it is cut off with 413
past the size limit. Then, in a worker thread: the file name must be a wheel's, the form's
name and version must match it, the sha256 must match when sent, the zip must be whole
(every member's CRC) and its METADATA's Name and Version must match the file name. Only
then is it linked into place (a hard link, which fails if the name exists: two uploads of
one name cannot both win) and the target's index and the combined index are updated
incrementally (`wheelhouse.index`). A name that exists with other bytes is refused with
409; the same bytes again succeed and change nothing. A refused upload writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import PublishError
from wheelhouse.index.writer import _headers, _metadata_member
from wheelhouse.index.writer import _Refused as _IndexRefused
from wheelhouse.store.local import sha256_file

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_FIELDS_LIMIT = 8 << 20  # the form's other fields (twine sends the README as one)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    tmp: str | None = None  # the uploaded file, in the target folder under a dot name
    sha256: str = ""
    size: int = 0


def _boundary(content_type: bytes | None) -> bytes:
    from python_multipart.multipart import parse_options_header

    if not content_type:
        raise Refused(400, "no Content-Type: send multipart/form-data (as twine does)")
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Refused(400, "the body must be multipart/form-data with a boundary")
    return boundary


async def receive_form(
    receive: Receive, headers: dict[bytes, bytes], folder: Path, limit: int
) -> Form:
    """Parse the multipart body, streaming the `content` part into a temp file in
    `folder`. Raises Refused (and removes the temp file) on a bad or oversized body."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    boundary = _boundary(headers.get(b"content-type"))
    declared = headers.get(b"content-length")
    try:
        if declared is not None and int(declared) > limit:
            raise Refused(413, f"the upload is {int(declared)} bytes; the limit is {limit}")
    except ValueError:
        raise Refused(400, "Content-Length is not a number") from None

    form = Form()
    state: dict[str, Any] = {"headers": {}, "field": b"", "name": None, "ended": False}
    parts: list[bytes] = []
    fields_size = 0
    fd: int | None = None
    digest = hashlib.sha256()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        key = state["field"].lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end() -> None:
        state["field"] = b""

    def on_headers_finished() -> None:
        nonlocal fd
        disposition = state["headers"].get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if name == "content":
            if fd is not None:
                raise Refused(400, "more than one `content` part")
            # kept as sent: a name with a path in it is refused, never cut down to size
            form.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            folder.mkdir(parents=True, exist_ok=True)
            fd, form.tmp = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=folder)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal fields_size
        chunk = data[start:end]
        if state["name"] == "content":
            assert fd is not None
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            form.size += len(chunk)
        else:
            fields_size += len(chunk)
            if fields_size > _FIELDS_LIMIT:
                raise Refused(413, f"the form's fields exceed {_FIELDS_LIMIT} bytes")
            parts.append(chunk)

    def on_part_end() -> None:
        name = state["name"]
        if name is not None and name != "content":
            form.fields[name] = b"".join(parts).decode("utf-8", "replace")
        parts.clear()
        state["headers"] = {}
        state["name"] = None

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
        max_header_count=16,
    )
    received = 0
    try:
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
                break
        parser.finalize()
        if not state["ended"]:
            raise Refused(400, "the multipart body ends before its closing boundary")
        if form.tmp is None:
            raise Refused(400, "no `content` part: the form must carry the file")
    except FormParserError as exc:
        discard(form)
        raise Refused(400, f"malformed multipart body: {exc}") from None
    except BaseException:
        discard(form)
        raise
    finally:
        if fd is not None:
            os.close(fd)
    form.sha256 = digest.hexdigest()
    return form


def discard(form: Form) -> None:
    if form.tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(form.tmp)  # noqa: PTH108
        form.tmp = None


def _check(form: Form) -> str:
    """The checks before anything is published; the wheel's file name."""
    action = form.fields.get(":action", "")
    if action != "file_upload":
        raise Refused(400, f":action is {action!r}; only file_upload is supported")
    filename = form.filename or ""
    if not filename or filename[0] == "." or any(c in filename for c in "/\\\x00"):
        raise Refused(400, f"{filename!r} is not a file name")
    if not filename.endswith(".whl"):
        raise Refused(400, f"{filename}: only wheels can be uploaded to a wheelhouse")
    try:
        project, version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise Refused(400, f"{filename} is not a valid wheel file name ({exc})") from None
    name = form.fields.get("name")
    if name is not None and canonicalize_name(name) != project:
        raise Refused(400, f"the form's name {name!r} is not the wheel's ({project})")
    sent_version = form.fields.get("version")
    if sent_version is not None:
        try:
            same = Version(sent_version) == version
        except InvalidVersion:
            same = False
        if not same:
            raise Refused(
                400, f"the form's version {sent_version!r} is not the wheel's ({version})"
            )
    sent = form.fields.get("sha256_digest", "").strip().lower()
    if sent and sent != form.sha256:
        raise Refused(
            400, f"{filename}: sha256 {form.sha256} is not the sha256_digest sent ({sent})"
        )
    assert form.tmp is not None
    _check_zip(form.tmp, filename, project, version)
    return filename


def _check_zip(path: str, filename: str, project: str, version: Version) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise Refused(400, f"{filename}: member {bad} is corrupt (CRC mismatch)")
            try:
                member = _metadata_member(zf, project)
            except _IndexRefused as exc:
                raise Refused(400, f"{filename} {exc.message}") from None
            headers = _headers(zf.read(member))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise Refused(400, f"{filename} is not a valid zip archive ({exc})") from None
    meta_name, meta_version = headers.get("Name", ""), headers.get("Version", "")
    try:
        same = canonicalize_name(meta_name) == project and Version(meta_version) == version
    except InvalidVersion:
        same = False
    if not same:
        raise Refused(
            400,
            f"{filename}: its METADATA says {meta_name} {meta_version}, "
            f"the file name {project} {version}",
        )


def commit(form: Form, folder: Path, reindex: Callable[[], None]) -> tuple[int, str]:
    """Check the received file and publish it (blocking: run it in a thread). Returns
    (status, message); raises Refused. The temp file is gone afterwards either way."""
    try:
        filename = _check(form)
        assert form.tmp is not None
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
            with contextlib.suppress(PublishError):
                reindex()  # the pages as they were
            raise Refused(400, exc.message) from None
        return 200, f"{filename} published"
    finally:
        discard(form)
