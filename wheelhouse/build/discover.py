"""What a failed source build was missing, read from its log: pure text, no I/O.

Compilers, linkers, pkg-config, meson, CMake and setup.py scripts each say "missing" in
their own words; each pattern below is one of those sentences, quoted from a real log (see
tests/unit/test_discover.py). What is found is a `Need` (kind + name), which
`provides.find_providers` turns into the distro package that ships the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

NeedKind = Literal["header", "pkgconfig", "library", "soname", "executable"]
KINDS: tuple[NeedKind, ...] = ("header", "pkgconfig", "library", "soname", "executable")


@dataclass(frozen=True, kw_only=True, order=True)
class Need:
    """One thing a build (or an image) lacks: a header (`libxml/parser.h`), a pkg-config
    module (`libffi`), a library to link (`-lz` -> `z`), a shared library's soname
    (`libgomp.so.1`) or an executable (`pg_config`)."""

    kind: NeedKind
    name: str

    def __str__(self) -> str:
        shown = {
            "header": self.name,
            "pkgconfig": f"pkg-config module {self.name}",
            "library": f"-l{self.name}",
            "soname": self.name,
            "executable": f"{self.name} (executable)",
        }
        return shown[self.kind]


_NAME = r"[A-Za-z0-9_.+/-]+"
_EXE = r"[A-Za-z0-9_.+-]+"
_RAW: tuple[tuple[NeedKind, str], ...] = (
        # gcc: "fatal error: lber.h: No such file or directory"
        ("header", rf"fatal error: ({_NAME}\.h(?:h|pp|xx)?): No such file or directory"),
        # clang: "fatal error: 'ffi.h' file not found"
        ("header", rf"fatal error: '({_NAME}\.h(?:h|pp|xx)?)' file not found"),
        # pkg-config: "Package libffi was not found in the pkg-config search path."
        ("pkgconfig", rf"Package ({_EXE}) was not found in the pkg-config search path"),
        # pkgconf: "Package 'libffi', required by 'virtual:world', not found"
        ("pkgconfig", rf"Package '({_EXE})', required by '[^']*', not found"),
        # old pkg-config / CMake's FindPkgConfig: "No package 'libxml-2.0' found"
        ("pkgconfig", rf"No package '({_EXE})' found"),
        # meson: 'Dependency "libxml-2.0" not found' / "Run-time dependency x found: NO"
        ("pkgconfig", rf'Dependency "?({_EXE})"? not found'),
        ("pkgconfig", rf"Run-time dependency ({_EXE}) found: NO"),
        # GNU ld: "/usr/bin/ld: cannot find -lpq: No such file or directory"; lld too
        ("library", rf"(?:cannot|unable to) find (?:library )?-l({_EXE})"),
        # the dynamic loader: "libgomp.so.1: cannot open shared object file"
        ("soname", rf"({_EXE}\.so(?:\.\d+)*): cannot open shared object file"),
        # sh: "sh: 1: pg_config: not found", "/bin/sh: xml2-config: not found"
        ("executable", rf"sh: (?:\d+: |line \d+: )?({_EXE}): (?:command )?not found"),
        # Python: "[Errno 2] No such file or directory: 'mysql_config'"
        ("executable", rf"\[Errno 2\] No such file or directory: '(?:/usr/bin/)?({_EXE})'"),
        # psycopg2: "Error: pg_config executable not found."; mysqlclient: "mysql_config
        # not found"; others: "pkg-config not found", "xslt-config: not found"
        ("executable", rf"\b({_EXE}-config|{_EXE}_config) (?:executable )?not found"),
        ("executable", r"\b(pkg-config|cmake|swig|cargo|rustc|gfortran|nasm|yasm)"
         r"(?: executable)?:? (?:command )?not found"),
        # "Could not find pkg-config" / "Cannot find pkg-config" (gobject, pygobject...)
        ("executable", r"(?:Could not|Cannot|Can't) find (pkg-config|cmake|swig)\b"),
)  # fmt: skip
_PATTERNS = tuple((kind, re.compile(p)) for kind, p in _RAW)

# Things said in words, not as a name: each means one executable.
_PHRASES: tuple[tuple[str, str], ...] = (
    ("can't find Rust compiler", "cargo"),  # setuptools-rust
    ("Cargo, the Rust package manager, is not installed", "cargo"),  # maturin
    ("Do you have cargo in your PATH", "cargo"),
    ("Rust not found, installing into a temporary directory", "cargo"),  # maturin's puccinialin
    ("Unable to find cargo", "cargo"),
    ("CMake must be installed to build", "cmake"),  # scikit-build
    ("No CMAKE_CXX_COMPILER could be found", "g++"),
    ("command 'g++' failed: No such file or directory", "g++"),
    ("gfortran: not found", "gfortran"),
    ("Unknown compiler(s): [['gfortran'", "gfortran"),
    ("Could not find a Fortran compiler", "gfortran"),
)

# Names the patterns catch that are never a package's (shells, Python, the build itself).
_IGNORED = frozenset({"python", "python3", "sh", "bash", "pip", "setup.py", "conftest.h"})


def needs(log: str) -> tuple[Need, ...]:
    """What the log says was missing, each once, in the order first said."""
    found: dict[Need, None] = {}
    for line in log.splitlines():
        for kind, pattern in _PATTERNS:
            for m in pattern.finditer(line):
                name = m.group(1).strip().rstrip(".:")
                if name and name not in _IGNORED:
                    found.setdefault(Need(kind=kind, name=name), None)
        for phrase, exe in _PHRASES:
            if phrase in line:
                found.setdefault(Need(kind="executable", name=exe), None)
    # a header that says what it is also reached through pkg-config is kept: the two may
    # be shipped by the same package (the lookup merges them) or by two
    return tuple(found)


def missing_packages(
    providers: Iterable[tuple[Need, str | None]], have: Iterable[str]
) -> tuple[list[str], list[Need]]:
    """(packages to add, needs that nothing provides) from a lookup's answers: a package
    the image already gets is not added again."""
    had = set(have)
    add: list[str] = []
    unknown: list[Need] = []
    for need, package in providers:
        if package is None:
            unknown.append(need)
        elif package not in had and package not in add:
            add.append(package)
    return add, unknown
