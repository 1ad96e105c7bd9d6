"""`[trust]`: who signs this machine's build records and whose records it uses. Imported
only when the table or its environment variables are given."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from wheelhouse.config.model import TrustSettings
from wheelhouse.errors import ConfigError
from wheelhouse.tomltable import TableReader

TRUST_KEYS = ("signing-key", "trusted-keys")

# an Ed25519 public key as `wheelhouse cache pubkey` prints it: 32 bytes, standard base64
PUBLIC_KEY = re.compile(r"ed25519:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


def trust_settings(
    raw: Mapping[str, Any], source: str, root: Path, env: Mapping[str, str]
) -> TrustSettings:
    """`[trust]`: `signing-key` (a key file; WHEELHOUSE_SIGNING_KEY, a path or the PEM
    itself, overrides it) and `trusted-keys`, to which WHEELHOUSE_TRUSTED_KEYS adds. The
    key files are read when a record is first signed or checked (store/signing.py)."""
    r = TableReader(TableReader(raw, "", source).table_of("trust"), "trust", source)
    r.check_keys(TRUST_KEYS)
    keys = [
        (f"{source}: trust.trusted-keys[{i}]", k) for i, k in enumerate(r.str_list("trusted-keys"))
    ]
    extra = env.get("WHEELHOUSE_TRUSTED_KEYS", "").replace(",", " ").split()
    keys += [("WHEELHOUSE_TRUSTED_KEYS", k) for k in extra]
    for where, key in keys:
        if not PUBLIC_KEY.fullmatch(key):
            raise ConfigError(
                f"{where} = {key!r}: expected an Ed25519 public key (ed25519:<base64>)",
                hint="copy it from `wheelhouse cache pubkey` on the machine that signs",
            )
    settings = TrustSettings(trusted_keys=tuple(dict.fromkeys(k for _, k in keys)))
    given = env.get("WHEELHOUSE_SIGNING_KEY", "").strip()
    if given.startswith("-----BEGIN"):
        return replace(settings, signing_key_pem=given, signing_key_source="WHEELHOUSE_SIGNING_KEY")
    if given:
        where, path = "WHEELHOUSE_SIGNING_KEY", Path(given).expanduser()
    elif (configured := r.text("signing-key")) is not None:
        where, path = f"{source}: trust.signing-key", Path(configured).expanduser()
        path = path if path.is_absolute() else root / path
    else:
        return settings
    if not path.is_file():
        raise ConfigError(
            f"{where} = {str(path)!r}: no such file",
            hint="point it at an Ed25519 private key in PEM (openssl genpkey -algorithm "
            "ed25519), or unset it to sign with this machine's own key",
        )
    return replace(settings, signing_key_file=path, signing_key_source=where)
