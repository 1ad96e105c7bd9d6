"""Signed build records: which builder made a wheel, checked before a record is used.

A built record maps an input key to a wheel's sha256 (and a pure record an sdist to a
key); whoever can write a record can make the next build install any wheel, hash-checked
and all. So every record is signed by the builder that made it, and a store uses only
records signed by a key it trusts: this machine's own and the configured `trusted-keys`.

Ed25519 (the `cryptography` package), not HMAC with a team secret: a public key can be
handed to every machine that only *uses* builds (developers, read-only runners, another
team) without letting it sign, and a fleet either shares one signing key from its secret
store or gives each runner its own and trusts all their public keys. With HMAC every
machine that checks could also forge.

The signature covers the record's canonical JSON (every field, unknown ones included),
its kind and the key it is stored under, so a record cannot be moved to another key.

    {"key": ..., "sha256": ..., ..., "signature": {"alg": "ed25519", "key": "<base64
     public key>", "sig": "<base64>"}}
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelhouse.config import Config, TrustSettings
from wheelhouse.errors import ConfigError

if TYPE_CHECKING:  # imported when a key is first needed: most commands sign nothing
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNATURE = "signature"  # the record field that holds it
ALG = "ed25519"
PUBLIC_PREFIX = "ed25519:"
KEY_FILE = Path("keys") / "signing.key"  # under the cache dir
_DOMAIN = b"wheelhouse signed record 1\n"  # a signature over anything else never matches
_MEMO_DOMAIN = b"wheelhouse checked record 1\n"
# PKCS#8 of an Ed25519 key, as `openssl genpkey -algorithm ed25519` writes it: this
# prefix, then the 32-byte seed (read without cryptography's slower serialization module)
_PKCS8 = bytes.fromhex("302e020100300506032b657004220420")
_PEM = ("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----")
_FIX = (
    "point WHEELHOUSE_SIGNING_KEY / trust.signing-key at an Ed25519 private key in PEM "
    "(openssl genpkey -algorithm ed25519), or unset it to sign with this machine's own key"
)


def key_id(public: bytes) -> str:
    """How messages name a key: short, and not the key itself (a key is trusted by
    copying it from `wheelhouse cache pubkey` on its machine, never from a message)."""
    return hashlib.sha256(public).hexdigest()[:16]


def public_key_text(public: bytes) -> str:
    return PUBLIC_PREFIX + base64.b64encode(public).decode()


def canonical(kind: str, key: str, body: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the record without its signature, its kind and key."""
    doc = {"kind": kind, "key": key, "record": body}
    return _DOMAIN + json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def new_private_pem() -> str:
    """A new Ed25519 private key, PKCS#8 PEM (what openssl genpkey writes)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    body = base64.b64encode(_PKCS8 + seed).decode()
    return f"{_PEM[0]}\n{body}\n{_PEM[1]}\n"


def _load_pem(text: str, where: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    lines = text.strip().splitlines()
    if len(lines) >= 3 and (lines[0], lines[-1]) == _PEM:
        with contextlib.suppress(binascii.Error):
            der = base64.b64decode("".join(lines[1:-1]), validate=True)
            if len(der) == len(_PKCS8) + 32 and der.startswith(_PKCS8):
                return Ed25519PrivateKey.from_private_bytes(der[len(_PKCS8) :])
    # another encoding of a key (PKCS#8 v2 with the public key, say): the full parser
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: not an unencrypted Ed25519 private key in PEM", hint=_FIX)
    return key


def _read_or_make(path: Path) -> str:
    """This machine's own key file: read, or made (0600) when there is none. Written to a
    temp name and linked into place, so a second process never reads half a key, and
    two making one at once agree on the first."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_private_pem())
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text()


def _decode(block: object) -> tuple[bytes | None, bytes | None]:
    """(public key, signature) of a signature block; None for what is not one."""
    if not isinstance(block, dict) or block.get("alg") != ALG:
        return None, None
    try:
        public = base64.b64decode(str(block.get("key")), validate=True)
        sig = base64.b64decode(str(block.get("sig")), validate=True)
    except binascii.Error:
        return None, None
    return (public, sig) if len(public) == 32 and len(sig) == 64 else (None, None)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Whether a record may be used, and if not, why (for reports)."""

    ok: bool
    why: str = ""  # "unsigned", "signed by an unknown key 0123abcd...", ...
    signer: str | None = None  # the key id, when the record names one


class Keyring:
    """This machine's signing key and the public keys whose records it uses. The keys are
    read (or this machine's made) when first needed, once, whichever thread asks."""

    def __init__(self, cache_dir: Path, settings: TrustSettings | None = None) -> None:
        self.cache_dir = cache_dir
        self.settings = settings or TrustSettings()
        self._guard = threading.Lock()
        self._private: Ed25519PrivateKey | None = None
        self._trusted: dict[bytes, Ed25519PublicKey] = {}
        self._memo_key: bytes | None = None

    @classmethod
    def of(cls, config: Config) -> Keyring:
        return cls(config.cache_dir, config.trust)

    def _load(self) -> Ed25519PrivateKey:
        with self._guard:
            if self._private is None:
                from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

                private = self._private_key()
                trusted: dict[bytes, Ed25519PublicKey] = {}
                for text in self.settings.trusted_keys:  # their form checked by config/trust.py
                    raw = base64.b64decode(text.removeprefix(PUBLIC_PREFIX))
                    trusted[raw] = Ed25519PublicKey.from_public_bytes(raw)
                own = private.public_key()
                trusted[own.public_bytes_raw()] = own  # this machine's own: always trusted
                self._trusted, self._private = trusted, private
            return self._private

    def _private_key(self) -> Ed25519PrivateKey:
        return _load_pem(*self._key_text())

    def _key_text(self) -> tuple[str, str]:
        """The signing key's PEM text, and where it came from (for messages)."""
        s = self.settings
        if s.signing_key_pem is not None:
            return s.signing_key_pem, s.signing_key_source
        path = s.signing_key_file or self.cache_dir / KEY_FILE
        where = f"{s.signing_key_source} ({path})" if s.signing_key_source else str(path)
        try:
            text = path.read_text() if s.signing_key_file else _read_or_make(path)
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{where}: cannot read the signing key: {e}", hint=_FIX) from None
        return text, where

    def memo(self, kind: str, key: str, raw: bytes) -> str:
        """A MAC of a record's bytes, keyed by this machine's signing key and the trusted
        keys: the store keeps it beside a record whose signature checked (or that it
        wrote), so that reading the same bytes again needs no signature check, nor the
        `cryptography` import (~8 ms of a warm build). Only whoever holds the signing key
        can make one, and that one could sign anyway; a change of either key, or of the
        trusted ones, makes every memo a miss."""
        with self._guard:
            if self._memo_key is None:
                trusted = "\n".join(sorted(self.settings.trusted_keys))
                text = f"{self._key_text()[0]}\0{trusted}".encode()
                self._memo_key = hashlib.sha256(_MEMO_DOMAIN + text).digest()
        msg = b"\0".join((kind.encode(), key.encode(), raw))
        return hmac.new(self._memo_key, msg, "sha256").hexdigest()

    def public_key(self) -> str:
        """This machine's public key, as `trusted-keys` takes it."""
        return public_key_text(self._load().public_key().public_bytes_raw())

    def key_id(self) -> str:
        """This machine's key id, as messages name it."""
        return key_id(self._load().public_key().public_bytes_raw())

    def seal(self, kind: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with this machine's signature over it, its kind and its key."""
        private = self._load()
        body = {k: v for k, v in body.items() if k != SIGNATURE}
        sig = private.sign(canonical(kind, key, body))
        public = base64.b64encode(private.public_key().public_bytes_raw()).decode()
        signature = {"alg": ALG, "key": public, "sig": base64.b64encode(sig).decode()}
        return {**body, SIGNATURE: signature}

    def check(self, kind: str, key: str, doc: object) -> Verdict:
        """Whether `doc`, read from `kind/key`, is signed by a trusted key and unchanged."""
        from cryptography.exceptions import InvalidSignature

        self._load()
        if not isinstance(doc, dict):
            return Verdict(ok=False, why="not a record")
        block = doc.get(SIGNATURE)
        if block is None:
            return Verdict(ok=False, why="unsigned (an older wheelhouse's, or written by hand)")
        public, sig = _decode(block)
        if public is None or sig is None:
            return Verdict(ok=False, why="its signature is malformed")
        signer = key_id(public)
        verifier = self._trusted.get(public)
        if verifier is None:
            return Verdict(ok=False, why=f"signed by an unknown key {signer}", signer=signer)
        body = {k: v for k, v in doc.items() if k != SIGNATURE}
        try:
            verifier.verify(sig, canonical(kind, key, body))
        except InvalidSignature:
            why = f"altered after it was signed (key {signer}), or stored under another key"
            return Verdict(ok=False, why=why, signer=signer)
        return Verdict(ok=True, signer=signer)
