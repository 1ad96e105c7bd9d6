"""Requirement inputs: read and validate before any resolver sees them.

A resolver's error for a typo in requirements.in is a wall of pip output; checking each
line with `packaging` first lets us name the file, the line and the bad text. What no
resolver handles well is refused here too: absurd sizes (pip-compile spent 46 s on one
100 KB line and over 11 minutes on 1 MB), circular `-r` includes (pip recurses until it
crashes) and editable VCS requirements (nothing to hash).
"""

from __future__ import annotations

import hashlib
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from wheelhouse.errors import InputError, not_utf8

# Limits far above any real requirements file (README "Locking" documents them)
MAX_FILE_BYTES = 1024 * 1024  # one requirements file or pyproject.toml
MAX_LINE_CHARS = 8 * 1024  # one line, or one requirement continued over several lines
MAX_LINES = 10_000  # lines of one file, or dependencies of one pyproject.toml
MAX_FILES = 100  # requirement and constraint files read in all, includes counted
_VCS = ("git+", "hg+", "svn+", "bzr+")
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


def _read_bounded(path: Path, shown: str, what: str) -> bytes:
    """At most MAX_FILE_BYTES (+1 to tell): a device or a huge file is not read whole."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(
            f"{shown}: {what} not found",
            hint="create it, or list the right files under `inputs` in wheelhouse.toml",
        ) from None
    except OSError as e:
        raise InputError(f"{shown}: cannot read: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(
            f"{shown}: over the {MAX_FILE_BYTES // 2**20} MiB limit for a {what}",
            hint="requirement inputs are small text files: check that `inputs` (or an -r/-c "
            "line) names the file you meant",
        )
    return data


def _check_lengths(text: str, shown: str) -> None:
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise InputError(
            f"{shown}: {len(lines):,} lines, over the limit of {MAX_LINES:,}",
            hint="check that it is the requirements file you meant; split a generated one "
            "with -r includes",
        )
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS:
            raise _long_line(f"{shown}:{number}", len(line))


def _long_line(where: str, length: int) -> InputError:
    return InputError(
        f"{where}: a line of {length:,} characters, over the limit of {MAX_LINE_CHARS:,} "
        f"({MAX_LINE_CHARS // 1024} KiB)",
        hint="a requirement is one short line, e.g. 'flask>=3,<4': remove or shorten this one "
        "(stray whitespace or pasted data?)",
    )


@dataclass(kw_only=True)
class _Reader:
    """The walk over requirement files and their includes: `chain` is the files being
    read (a cycle returns to one of them), `seen` every file read (read once)."""

    root: Path
    seen: set[Path]
    chain: list[Path]
    out: list[InputFile]

    def include(self, where: str, opt: str, value: str, parent: Path) -> None:
        if not value:
            raise InputError(f"{where}: {opt} needs a file name")
        target = (parent / value).resolve()
        if target in self.chain:
            cycle = " -> ".join(_shown(p, self.root) for p in [*self.chain, target])
            raise InputError(
                f"{where}: {opt} {value} includes a file that is including it: {cycle}",
                hint="remove one of the -r/-c lines of this circle",
            )
        if target not in self.seen and len(self.seen) >= MAX_FILES:
            raise InputError(
                f"{where}: {opt} {value}: more than {MAX_FILES} requirement and constraint "
                "files in all",
                hint="merge them into fewer files",
            )
        self.file(target)

    def file(self, path: Path) -> None:
        path = path.resolve()
        if path in self.seen:
            return
        self.seen.add(path)
        shown = _shown(path, self.root)
        data = _read_bounded(path, shown, "requirements file")
        self.out.append(InputFile(path=path, sha256=hashlib.sha256(data).hexdigest()))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise not_utf8(shown, e, InputError) from None
        _check_lengths(text, shown)
        self.chain.append(path)
        for number, line in _logical_lines(text):
            where = f"{shown}:{number}"
            if len(line) > MAX_LINE_CHARS:  # continued over lines each within the limit
                raise _long_line(where, len(line))
            if line.startswith("-"):
                self.option(where, line, path)
            else:
                check_requirement(line, where)
        self.chain.pop()

    def option(self, where: str, line: str, path: Path) -> None:
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise InputError(f"{where}: cannot parse option line {line!r}: {e}") from None
        opt, _, inline = words[0].partition("=")
        value = inline or (words[1] if len(words) > 1 else "")
        if opt in _INCLUDE_OPTIONS:
            self.include(where, opt, value, path.parent)
        elif opt in ("-e", "--editable"):
            if value.lower().startswith(_VCS):
                raise _vcs(where, value)
            # a local project: the resolver validates it
        elif opt not in _VALUE_OPTIONS:
            raise InputError(
                f"{where}: unsupported option {opt!r}",
                hint="index settings belong in wheelhouse.toml [index], so that every "
                "target and resolver sees the same ones",
            )


def _vcs(where: str, value: str) -> InputError:
    return InputError(
        f"{where}: {value!r} is a VCS checkout, which a lock cannot pin: a lock holds "
        "released files by their hashes",
        hint="publish the project (or put a wheel of it in a find-links folder, see "
        "wheelhouse.toml [index]) and require it by name and version, e.g. 'mylib==1.2'",
    )


def check_requirement(text: str, where: str) -> Requirement:
    try:
        req = Requirement(text)
    except InvalidRequirement as e:
        raise InputError(
            f"{where}: invalid requirement {text!r}: {e}",
            hint="use PEP 508 syntax, e.g. 'flask>=3,<4' or 'numpy==2.1.*'",
        ) from None
    if req.url and req.url.lower().startswith(_VCS):
        raise _vcs(where, text)
    return req


def _check_pyproject(path: Path, root: Path, out: list[InputFile]) -> None:
    shown = _shown(path, root)
    data = _read_bounded(path, shown, "file")
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
    if len(deps) > MAX_LINES:
        raise InputError(f"{shown}: {len(deps):,} dependencies, over the limit of {MAX_LINES:,}")
    for i, dep in enumerate(deps):
        where = f"{shown}: project.dependencies[{i}]"
        if not isinstance(dep, str):
            raise InputError(f"{where} = {dep!r}: expected a string")
        if len(dep) > MAX_LINE_CHARS:
            raise _long_line(where, len(dep))
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
    reader = _Reader(root=root, seen=set(), chain=[], out=out)
    for path in paths:
        if path.name == "pyproject.toml":
            _check_pyproject(path, root, out)
        else:
            reader.file(path)
    return out
