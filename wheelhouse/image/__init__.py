"""image: the final stage (Dockerfile) and the image report.

Modules: stage (the Stage model and its rendering: pure; sysrun, its system-package
RUN), manifest (the typed view of a wheelhouse's manifest.json), tools (the pinned pip
wheel, uv and the app's wheel, put in place), dockerfile (`wheelhouse dockerfile`:
manifest, probe, build mode, render), report (`wheelhouse image-report`); elf (the sonames
platform wheels need), system (runtime packages fetched ahead, the soname -> package
lookup), finish (both, for the final stage), layers (install layers).

The names other packages use are re-exported below, except the two commands' entry
points, `dockerfile.dockerfile()` and `report.report()`: they share their modules' names,
and re-exporting them here would hide the modules.
"""

from wheelhouse.image.dockerfile import InstallMode, Result, detect_mode
from wheelhouse.image.manifest import Manifest, read_manifest
from wheelhouse.image.report import Finding, Layer, Report
from wheelhouse.image.stage import (
    IGNORE_SUFFIX,
    PIP_FILENAME,
    UV_VERSION,
    Installer,
    Mode,
    Stage,
    build_command,
    dockerignore,
    render,
)

__all__ = [
    "IGNORE_SUFFIX",
    "PIP_FILENAME",
    "UV_VERSION",
    "Finding",
    "InstallMode",
    "Installer",
    "Layer",
    "Manifest",
    "Mode",
    "Report",
    "Result",
    "Stage",
    "build_command",
    "detect_mode",
    "dockerignore",
    "read_manifest",
    "render",
]
