"""pip-compile's failures as messages: what pip's tracebacks say, without the tracebacks.

pip-compile reports a conflict as pip's `ResolutionImpossible` traceback, whose last line
names neither package; the list of `RequirementInformation` it carries names both, and
who asked for each. A missing project ends in a traceback after pip's own ERROR line.
uv says all this itself (its message passes through resolve.py untouched).
"""

from __future__ import annotations

import re
import urllib.parse

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

_IMPOSSIBLE = "ResolutionImpossible: ["
_NOT_FOUND = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>.+?)"
    r"(?: \(from (?P<by>[^()]+)\))? \(from versions: (?P<have>.*)\)$"
)
_QUOTED = re.compile(r"'([^']*)'")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Impossible|Conflicted|NotFound)\b:")


# pip builds an sdist's metadata in /tmp/pip-resolve-<random>/<name>_<32 hex>/ (pip-compile's
# folder), or pip-install-/pip-req-build- ones: the one place its output names the project
_BUILD_DIR = re.compile(
    r"/pip-(?:resolve|install|req-build)-[^/\s]+/([A-Za-z0-9][\w.-]*?)_[0-9a-f]{32}/"
)
_METADATA_FAILED = (
    "MetadataGenerationFailed",
    "metadata-generation-failed",
    "Preparing metadata (pyproject.toml) exited",
    "python setup.py egg_info did not run successfully",
    "Getting requirements to build wheel did not run successfully",
)
# What a failed metadata build says about why, kept from its output for the message.
_CAUSE = re.compile(
    r"(fatal error:|ERROR:|[Nn]ot found|No such file or directory|No package '|"
    r"cannot find -l|Error: )"
)


def failed_metadata(output: str) -> str | None:
    """The project (canonical name) whose metadata pip could not prepare, when that is why
    pip-compile failed; else None."""
    if not any(m in output for m in _METADATA_FAILED):
        return None
    found = _BUILD_DIR.findall(output)
    if found:
        return canonicalize_name(found[-1])
    collecting = re.findall(r"^\s*Collecting ([A-Za-z0-9][\w.-]*)", output, re.M)
    return canonicalize_name(collecting[-1]) if collecting else None


def explain_metadata(project: str, output: str) -> str:
    """One message for a metadata build that failed: the project and the lines that say
    why (a missing header, pkg-config module, library or tool), never the traceback."""
    causes = [
        line.strip()
        for line in output.splitlines()
        if _CAUSE.search(line) and not line.lstrip().startswith(("File ", "pip._internal", "note:"))
        and "metadata-generation-failed" not in line and "subprocess-exited-with-error" not in line
    ]  # fmt: skip
    said = "\n".join(f"  {c}" for c in list(dict.fromkeys(causes))[-6:]) or "  (no reason given)"
    return f"{project}: its metadata could not be prepared (its build step failed):\n{said}"


def explain(output: str) -> str:
    """One message from pip-compile's stdout and stderr: the conflicting requirements and
    who asks for each, pip's ERROR lines, or else what is left without the tracebacks."""
    project = failed_metadata(output)
    if project is not None:
        return explain_metadata(project, output)
    lines = output.splitlines()
    said: list[str] = []
    conflict = _conflict(lines)
    if len(conflict) > 1:
        said.append("these requirements conflict (no version satisfies them all):")
        said += [f"  {req}  (asked for by {by})" for req, by in conflict]
    for line in lines:
        text = line.strip()
        if not text.startswith("ERROR: "):
            continue
        text = text[len("ERROR: ") :]
        m = _NOT_FOUND.match(text)
        if m:
            by = f" (asked for by {m['by']})" if m["by"] else ""
            have = m["have"] or "none"
            text = f"nothing on the indexes satisfies {m['req']}{by} (usable versions: {have})"
        said.append(text)
    return "\n".join(said) if said else _without_tracebacks(lines)


def _conflict(lines: list[str]) -> list[tuple[str, str]]:
    """(requirement, who asks for it) from the `ResolutionImpossible: [...]` line."""
    for line in lines:
        at = line.find(_IMPOSSIBLE)
        if at >= 0:
            items = _top_level(line[at + len(_IMPOSSIBLE) :].rstrip().removesuffix("]"))
            return [_information(item) for item in items]
    return []


def _top_level(text: str) -> list[str]:
    """`A(..), B(..)` -> ["A(..)", "B(..)"]: split at commas outside brackets and quotes."""
    items, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(text):
        if c == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [x for x in items if x]


def _information(item: str) -> tuple[str, str]:
    """`RequirementInformation(requirement=R, parent=P)` -> (R, P) in words."""
    body = item.removeprefix("RequirementInformation(").removesuffix(")")
    req, _, parent = body.rpartition(", parent=")
    req = req.removeprefix("requirement=")
    if req.startswith("SpecifierRequirement("):
        quoted = _QUOTED.search(req)
        req_text = quoted.group(1) if quoted else req
    else:  # ExplicitRequirement(<candidate>), RequiresPythonRequirement(...), ...
        req_text = _candidate(req).replace(" ", "==", 1)
    by = "your inputs" if parent.strip() == "None" else _candidate(parent)
    return req_text, by


def _candidate(text: str) -> str:
    """`LinkCandidate('<url> (from ...)')` (or ExtrasCandidate over one) -> "name version"."""
    quoted = _QUOTED.search(text)
    if not quoted:
        return text
    url = quoted.group(1).split(" (from ", 1)[0]
    filename = urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0])
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return quoted.group(1)
    extras = re.search(r"extras=frozenset\(\{([^}]*)\}\)", text)
    shown = str(name)
    if extras:
        shown += "[" + ",".join(sorted(_QUOTED.findall(extras.group(1)))) + "]"
    return f"{shown} {version}"


def _without_tracebacks(lines: list[str]) -> str:
    """The output less Python's tracebacks: each exception's own message is kept."""
    kept: list[str] = []
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback and line[:1] in (" ", "\t"):
            continue  # a frame
        in_traceback = False
        if line.startswith(("During handling of the above", "The above exception was")):
            continue
        if _EXCEPTION.match(line):
            line = line.split(": ", 1)[1] if ": " in line else line
        if line.strip():
            kept.append(line.strip())
    return "\n".join(kept[-15:]) or "(no output)"
