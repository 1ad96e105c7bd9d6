"""An upload whose folder another run holds (a build, `wheelhouse index`): the request
waits a bounded time, then gets 503 with the file kept; a retry lists it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fixtures_index import wheel_bytes

from wheelhouse.errors import OutputBusyError
from wheelhouse.serve import upload

WHEEL = "alpha-1.0-py3-none-any.whl"


def _form(folder: Path, data: bytes) -> upload.Form:
    tmp = folder / ".upload-1.tmp"
    tmp.write_bytes(data)
    fields = {":action": "file_upload", "name": "alpha", "version": "1.0"}
    sha = hashlib.sha256(data).hexdigest()
    return upload.Form(fields=fields, filename=WHEEL, tmp=str(tmp), sha256=sha, size=len(data))


def test_an_upload_into_a_busy_folder_is_503_and_the_retry_lists_it(tmp_path: Path) -> None:
    data = wheel_bytes("alpha", "1.0")
    indexed: list[str] = []

    def busy() -> None:
        raise OutputBusyError(f"{tmp_path} is in use by another run")

    with pytest.raises(upload.Refused) as info:
        upload.commit(_form(tmp_path, data), tmp_path, busy)
    assert info.value.status == 503 and "retry the upload" in info.value.message
    assert (tmp_path / WHEEL).read_bytes() == data  # kept, for the retry to list
    assert not (tmp_path / ".upload-1.tmp").exists()
    status, message = upload.commit(_form(tmp_path, data), tmp_path, lambda: indexed.append("x"))
    assert (status, indexed) == (200, ["x"]) and "same bytes" in message
