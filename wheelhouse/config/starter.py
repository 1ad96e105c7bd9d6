"""What `wheelhouse init` writes: a file of its own, so it reads as the user will see it.
Imported only by `init` (and its tests)."""

from __future__ import annotations

from pathlib import Path

STARTER = (Path(__file__).parent.parent / "_data" / "wheelhouse.toml").read_text(encoding="utf-8")
