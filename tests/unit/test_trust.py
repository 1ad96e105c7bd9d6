"""Record signatures on their own (store/signing.py): what a signature covers, which keys
load, and how a record reads back with its signature."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wheelhouse.config import TrustSettings
from wheelhouse.errors import ConfigError
from wheelhouse.store import BuildRecord, SdistRef, Store
from wheelhouse.store.signing import Keyring, Verdict

KEY = "a" * 64


def _record() -> dict[str, Any]:
    return BuildRecord(
        key="f" * 64,
        input_key=KEY,
        sha256="b" * 64,
        filename="demo-1.0-cp311-cp311-linux_x86_64.whl",
        sdist=SdistRef(filename="demo-1.0.tar.gz", sha256="c" * 64),
        target="slim",
        build_env=(("CFLAGS", "-O2"),),
        runtime_packages=("libyaml-0-2",),
        extra={"from_a_newer_version": [1, 2]},
    ).to_json()


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "cache")


def _change(value: object) -> object:
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, "x"]
    if isinstance(value, dict):
        return {**value, "x": "y"}
    return "x" if value is None else None


@pytest.mark.parametrize("field", sorted(_record()))
def test_the_signature_covers_every_field(keyring: Keyring, field: str) -> None:
    signed = keyring.seal("built", KEY, _record())
    assert keyring.check("built", KEY, signed).ok
    altered = copy.deepcopy(signed)
    altered[field] = _change(altered[field])
    verdict = keyring.check("built", KEY, altered)
    assert not verdict.ok and "altered after it was signed" in verdict.why


def test_the_signature_binds_the_kind_and_the_key_and_no_field_can_be_added(
    keyring: Keyring,
) -> None:
    signed = keyring.seal("built", KEY, _record())
    assert not keyring.check("built", "e" * 64, signed).ok
    assert not keyring.check("pure", KEY, signed).ok
    assert not keyring.check("built", KEY, {**signed, "added": True}).ok
    dropped = dict(signed)
    del dropped["log"]
    assert not keyring.check("built", KEY, dropped).ok


def test_signed_records_read_back_whole_and_without_the_signature(keyring: Keyring) -> None:
    signed = keyring.seal("built", KEY, _record())
    record = BuildRecord.from_json(signed)
    assert record is not None and "signature" not in record.extra
    assert record.to_json() == _record()  # what was signed, newer fields included


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (None, "unsigned"),
        ("text", "malformed"),
        ({"alg": "rsa", "key": "AAAA", "sig": "AAAA"}, "malformed"),
        ({"alg": "ed25519", "key": "not base64!", "sig": "AAAA"}, "malformed"),
        ({"alg": "ed25519", "key": "AAAA", "sig": "AAAA"}, "malformed"),  # too short
    ],
)
def test_malformed_signatures_are_refused(keyring: Keyring, block: object, why: str) -> None:
    doc: dict[str, Any] = {**_record(), "signature": block}
    if block is None:
        del doc["signature"]
    verdict = keyring.check("built", KEY, doc)
    assert not verdict.ok and why in verdict.why


def test_only_trusted_keys_and_its_own_are_trusted(tmp_path: Path) -> None:
    a, b, c = (Keyring(tmp_path / n) for n in "abc")
    trusting = Keyring(tmp_path / "d", TrustSettings(trusted_keys=(a.public_key(),)))
    assert trusting.check("built", KEY, a.seal("built", KEY, _record())).ok
    assert trusting.check("built", KEY, trusting.seal("built", KEY, _record())).ok
    verdict = trusting.check("built", KEY, c.seal("built", KEY, _record()))
    assert not verdict.ok and verdict.signer == c.key_id()
    assert verdict.why == f"signed by an unknown key {c.key_id()}"
    assert not b.check("built", KEY, a.seal("built", KEY, _record())).ok


@pytest.mark.parametrize("encoding", ["pkcs8", "openssl-v1"])
def test_keys_from_other_tools_load(tmp_path: Path, encoding: str) -> None:
    private = Ed25519PrivateKey.generate()
    if encoding == "pkcs8":  # cryptography's own PEM writer (the full parser reads it)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    else:  # `openssl genpkey -algorithm ed25519`'s exact layout
        der = bytes.fromhex("302e020100300506032b657004220420") + private.private_bytes_raw()
        body = base64.b64encode(der).decode()  # 64 characters: one line
        pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    keyring = Keyring(tmp_path, TrustSettings(signing_key_pem=pem, signing_key_source="env"))
    raw = private.public_key().public_bytes_raw()
    assert keyring.public_key() == "ed25519:" + base64.b64encode(raw).decode()


def test_an_encrypted_or_foreign_key_is_a_config_error(tmp_path: Path) -> None:
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        .decode()
    )
    keyring = Keyring(tmp_path, TrustSettings(signing_key_pem=pem, signing_key_source="env"))
    with pytest.raises(ConfigError, match="env: not an unencrypted Ed25519 private key"):
        keyring.public_key()


# -- the store's memo of a checked record -------------------------------------------------


def _store(cache: Path, trusted: tuple[str, ...] = ()) -> Store:
    return Store(cache, Keyring(cache, TrustSettings(trusted_keys=trusted)))


def test_a_record_read_again_is_not_checked_again_and_a_changed_one_is(tmp_path: Path) -> None:
    store = _store(tmp_path / "cache")
    # written as it came (a record fetched from elsewhere): not vouched for until checked
    store.put_record("built", KEY, store.keyring.seal("built", KEY, _record()))
    checks: list[str] = []
    real = store.keyring.check

    def counting(kind: str, key: str, doc: object) -> Verdict:
        checks.append(key)
        return real(kind, key, doc)

    store.keyring.check = counting  # type: ignore[method-assign]
    assert store.read_record("built", KEY) is not None
    assert store.read_record("built", KEY) is not None
    assert checks == [KEY]  # checked once, then by its memo
    store.record_pure("c" * 64, KEY)  # sealed here: its memo written with it
    pure = store.read_record("pure", "c" * 64)
    assert pure is not None and pure["key"] == KEY
    assert checks == [KEY]
    path = store.record_path("built", KEY)
    doc = json.loads(path.read_text())
    doc["sha256"] = "d" * 64  # altered on disk: the memo no longer fits, the signature fails
    path.write_text(json.dumps(doc, sort_keys=True))
    assert store.read_record("built", KEY) is None
    assert checks == [KEY, KEY]


def test_a_memo_made_up_or_copied_does_not_pass_a_forged_record(tmp_path: Path) -> None:
    store, other = _store(tmp_path / "cache"), _store(tmp_path / "other")
    forged = other.keyring.seal("built", KEY, _record())  # signed by a key not trusted here
    text = json.dumps(forged, sort_keys=True)
    store.record_path("built", KEY).write_text(text)
    memo = store.root / "built" / f".{KEY}.checked"
    # the memo that the other machine would write for the same bytes, then garbage
    memo.write_text(other.keyring.memo("built", KEY, text.encode()))
    assert store.read_record("built", KEY) is None
    memo.write_bytes(b"\xff" * 64)  # not even text
    assert store.read_record("built", KEY) is None


def test_a_key_no_longer_trusted_makes_its_checked_records_misses(tmp_path: Path) -> None:
    signer = Keyring(tmp_path / "signer")
    cache = tmp_path / "cache"
    trusting = _store(cache, (signer.public_key(),))
    trusting.put_record("built", KEY, signer.seal("built", KEY, _record()))
    assert trusting.read_record("built", KEY) is not None  # checked, memo written
    assert trusting.read_record("built", KEY) is not None  # by the memo
    assert _store(cache).read_record("built", KEY) is None  # the key taken out of trust
