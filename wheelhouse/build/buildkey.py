"""An sdist's build key: what the wheel built from it is a function of (the store looks
built wheels up by it)."""

from __future__ import annotations

import hashlib
import json

from wheelhouse.config import Target

BUILD_FORMAT = "1"  # bump when the way wheels are built changes: every key changes


def input_key(
    *,
    sdist_sha256: str,
    target: Target,
    builder_tag: str,
    recipe_digest: str | None,
    base_pins: tuple[str, ...] = (),
) -> str:
    """What a built wheel is a function of, knowable without network or containers.

    The builder tag is itself a content hash of Dockerfile.builder, the base image id and
    the system packages; build-dependency pins are resolved when a build happens and kept
    in the provenance record (and in the full key).
    """
    doc: dict[str, object] = {
        "format": BUILD_FORMAT,
        "sdist": sdist_sha256,
        "target": {
            "python": target.python_version,
            "libc": [target.libc, target.libc_version],
            "arch": target.arch,
            "cuda": target.cuda,
        },
        "builder": builder_tag,
        "recipe": recipe_digest,
        "env": list(target.build_env),
        "repair": target.repair,
    }
    if base_pins:  # build requirements held to the final image's versions (deps.py)
        doc["base-pins"] = list(base_pins)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
