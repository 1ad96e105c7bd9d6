"""List the distributions an image's interpreter can import, and the constraint files the
image declares for pip; prints one JSON line.

Runs inside the image under its own python (3.8+, stdlib only; on 3.7 and older the
*.dist-info folders on sys.path are read directly). Only the metadata headers a resolver
needs are sent back (name, version, Requires-Dist, Requires-Python, Provides-Extra), not
the long description: a vendor image holds hundreds of distributions."""

from __future__ import annotations

import configparser
import glob
import json
import os
import sys
from email.parser import HeaderParser

KEEP = ("Requires-Dist", "Requires-Python", "Provides-Extra")


def headers(text: str) -> dict[str, object]:
    msg = HeaderParser().parsestr(text, headersonly=True)
    out: dict[str, object] = {"name": msg.get("Name", ""), "version": msg.get("Version", "")}
    for key in KEEP:
        out[key.lower().replace("-", "_")] = [str(v) for v in msg.get_all(key) or []]
    return out


def with_metadata() -> list[tuple[dict[str, object], str]]:
    found = []
    try:
        from importlib import metadata
    except ImportError:  # Python 3.7 and older
        for folder in sys.path:
            for info in sorted(glob.glob(os.path.join(folder or ".", "*.dist-info"))):
                try:
                    with open(os.path.join(info, "METADATA"), encoding="utf-8") as f:
                        found.append((headers(f.read()), folder))
                except OSError:
                    continue
        return found
    for dist in metadata.distributions():
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        where = str(getattr(dist, "_path", ""))
        found.append((headers(text), os.path.dirname(where) if where else ""))
    return found


def constraint_files() -> list[dict[str, object]]:
    """PIP_CONSTRAINT and `constraint` in pip's config files, as pip reads them."""
    out = []
    for name in ("PIP_CONSTRAINT", "UV_CONSTRAINT"):
        out += [("env " + name, p) for p in os.environ.get(name, "").split()]
    dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    configs = [os.path.join(d, "pip", "pip.conf") for d in dirs] + ["/etc/pip.conf"]
    home = os.path.expanduser("~")
    configs += [os.path.join(home, ".pip", "pip.conf"), os.path.join(home, ".config/pip/pip.conf")]
    configs += [os.path.join(sys.prefix, "pip.conf")]
    if os.environ.get("PIP_CONFIG_FILE"):
        configs.append(os.environ["PIP_CONFIG_FILE"])
    for conf in configs:
        parser = configparser.RawConfigParser()
        try:
            parser.read(conf)
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "constraint"):
                for p in parser.get(section, "constraint").split():
                    out.append((conf, p))
    return [
        {"declared_by": by, "path": p, "exists": os.path.isfile(p), "text": read_small(p)}
        for by, p in out
    ]


def read_small(path: str) -> str:
    """A constraint file's text (what the lock applies too), up to 1 MB."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(1 << 20)
    except (OSError, ValueError):
        return ""


def main() -> None:
    seen = set()
    dists = []
    for meta, location in with_metadata():
        key = str(meta["name"]).lower().replace("_", "-").replace(".", "-")
        if not meta["name"] or not meta["version"] or key in seen:
            continue  # the first on sys.path is the one imported
        seen.add(key)
        meta["location"] = location
        dists.append(meta)
    answer = {
        "python": sys.executable,
        "prefix": sys.prefix,
        "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
        "distributions": sorted(dists, key=lambda d: str(d["name"]).lower()),
        "constraint_files": constraint_files(),
    }
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
