"""Requirement inputs: read and validate before any resolver sees them.

A resolver's error for a typo in requirements.in is a wall of pip output; checking each
line with `packaging` first lets us name the file, the line and the bad text.
"""

from __future__ import annotations

import hashlib
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from wheelhouse.errors import InputError, not_utf8

# pip requirement-file options that are harmless to a resolver. Index options are not
# among them: an index the resolver sees but the hasher and the digest do not is a lie.
_VALUE_OPTIONS = {"--no-binary", "--only-binary", "--pre", "--prefer-binary", "--use-feature"}
_INCLUDE_OPTIONS = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
}


@dataclass(frozen=True, kw_only=True)
class InputFile:
    path: Path
    sha256: str


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with comments stripped and backslash continuations joined, as pip reads them."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if line.lstrip().startswith("#"):
            line = ""
        elif " #" in line or "\t#" in line:
            line = line.split(" #", 1)[0].split("\t#", 1)[0]
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def _check_requirements_file(path: Path, root: Path, seen: set[Path], out: list[InputFile]) -> None:
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    shown = _shown(path, root)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{shown}: requirements file not found",
            hint="create it, or list the right files under `inputs` in wheelhouse.toml",
        ) from None
    except OSError as e:
        raise InputError(f"{shown}: cannot read: {e.strerror}") from None
    out.append(InputFile(path=path, sha256=hashlib.sha256(data).hexdigest()))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise not_utf8(shown, e, InputError) from None
    for number, line in _logical_lines(text):
        where = f"{shown}:{number}"
        if line.startswith("-"):
            try:
                words = shlex.split(line)
            except ValueError as e:
                raise InputError(f"{where}: cannot parse option line {line!r}: {e}") from None
            opt, _, inline = words[0].partition("=")
            value = inline or (words[1] if len(words) > 1 else "")
            if opt in _INCLUDE_OPTIONS:
                if not value:
                    raise InputError(f"{where}: {opt} needs a file name")
                _check_requirements_file(path.parent / value, root, seen, out)
            elif opt in ("-e", "--editable"):
                continue  # a local project or VCS URL; the resolver validates it
            elif opt not in _VALUE_OPTIONS:
                raise InputError(
                    f"{where}: unsupported option {opt!r}",
                    hint="index settings belong in wheelhouse.toml [index], so that every "
                    "target and resolver sees the same ones",
                )
            continue
        check_requirement(line, where)


def check_requirement(text: str, where: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as e:
        raise InputError(
            f"{where}: invalid requirement {text!r}: {e}",
            hint="use PEP 508 syntax, e.g. 'flask>=3,<4' or 'numpy==2.1.*'",
        ) from None


def _check_pyproject(path: Path, root: Path, out: list[InputFile]) -> None:
    shown = _shown(path, root)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{shown}: not found", hint="list existing files under `inputs`") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise not_utf8(shown, e, InputError) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{shown}: not valid TOML: {e}") from None
    project = doc.get("project")
    if not isinstance(project, dict) or "dependencies" not in project:
        raise InputError(
            f"{shown}: has no [project].dependencies to lock",
            hint="add them (PEP 621), or name a requirements.in under `inputs`",
        )
    deps = project["dependencies"]
    if not isinstance(deps, list):
        raise InputError(f"{shown}: project.dependencies must be a list of strings")
    for i, dep in enumerate(deps):
        where = f"{shown}: project.dependencies[{i}]"
        if not isinstance(dep, str):
            raise InputError(f"{where} = {dep!r}: expected a string")
        check_requirement(dep, where)
    out.append(InputFile(path=path.resolve(), sha256=hashlib.sha256(data).hexdigest()))


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def check_inputs(paths: tuple[Path, ...], root: Path) -> list[InputFile]:
    """Validate requirement inputs (and files they include); return them with digests."""
    out: list[InputFile] = []
    seen: set[Path] = set()
    for path in paths:
        if path.name == "pyproject.toml":
            _check_pyproject(path, root, out)
        else:
            _check_requirements_file(path, root, seen, out)
    return out
