"""Log excerpts from real failed builds -> what was missing; and the choice among the
packages a file index names."""

from __future__ import annotations

import pytest

from wheelhouse.build.discover import Need, missing_packages, needs
from wheelhouse.build.provides import apk_provider, best, parse_answer, path_regex

# Each excerpt is quoted from a real build log (python-ldap, cffi, lxml, psycopg2,
# mysqlclient, a meson project, setuptools-rust, scikit-build, numpy's f2py, ...).
LOGS = [
    (
        "Modules/common.h:15:10: fatal error: lber.h: No such file or directory\n"
        "   15 | #include <lber.h>\n      |          ^~~~~~~~\ncompilation terminated.\n"
        "error: command '/usr/bin/gcc' failed with exit code 1",
        [Need(kind="header", name="lber.h")],
    ),
    (
        "src/lxml/includes/etree_defs.h:14:10: fatal error: libxml/xmlversion.h: "
        "No such file or directory",
        [Need(kind="header", name="libxml/xmlversion.h")],
    ),
    (
        "c/_cffi_backend.c:15:10: fatal error: 'ffi.h' file not found",
        [Need(kind="header", name="ffi.h")],
    ),
    (
        "Package libffi was not found in the pkg-config search path.\n"
        "Perhaps you should add the directory containing `libffi.pc'\n"
        "to the PKG_CONFIG_PATH environment variable\n"
        "No package 'libffi' found",
        [Need(kind="pkgconfig", name="libffi")],
    ),
    (
        "Package 'cairo', required by 'virtual:world', not found",
        [Need(kind="pkgconfig", name="cairo")],
    ),
    (
        # meson tries CMake too, and says so: that is no need for cmake
        "      dbus-gmain| Did not find CMake 'cmake'\n      dbus-gmain| Found CMake: NO\n"
        "      dbus-gmain| Run-time dependency glib-2.0 found: NO  (tried pkg-config and cmake)\n"
        '../subprojects/dbus-gmain/meson.build:108:11: ERROR: Dependency "glib-2.0" not found'
        ", tried pkgconfig and cmake",
        [Need(kind="pkgconfig", name="glib-2.0")],
    ),
    (
        "Run-time dependency gobject-introspection-1.0 found: NO (tried pkgconfig)\n"
        'meson.build:31:9: ERROR: Dependency "gobject-introspection-1.0" not found, '
        "tried pkgconfig",
        [Need(kind="pkgconfig", name="gobject-introspection-1.0")],
    ),
    (
        "/usr/bin/ld: cannot find -lpq: No such file or directory\n"
        "collect2: error: ld returned 1 exit status",
        [Need(kind="library", name="pq")],
    ),
    (
        "ld.lld: error: unable to find library -lssl",
        [Need(kind="library", name="ssl")],
    ),
    (
        "Error: pg_config executable not found.\n\n"
        "pg_config is required to build psycopg2 from source.  Please add the directory",
        [Need(kind="executable", name="pg_config")],
    ),
    (
        "/bin/sh: 1: mysql_config: not found\n/bin/sh: 1: mariadb_config: not found\n"
        "OSError: mysql_config not found",
        [
            Need(kind="executable", name="mysql_config"),
            Need(kind="executable", name="mariadb_config"),
        ],
    ),
    (
        "sh: xslt-config: not found\n** make sure the development packages of libxml2 "
        "and libxslt are installed **",
        [Need(kind="executable", name="xslt-config")],
    ),
    (
        "FileNotFoundError: [Errno 2] No such file or directory: 'pkg-config'",
        [Need(kind="executable", name="pkg-config")],
    ),
    (
        "error: can't find Rust compiler\n\nIf you are using an outdated pip version, it is "
        "possible a prebuilt wheel is available for this package but pip is not able",
        [Need(kind="executable", name="cargo")],
    ),
    (
        "      Checking for Rust toolchain....\n"
        "      Rust not found, installing into a temporary directory\n"
        "      httpx.ConnectError: [Errno -3] Temporary failure in name resolution",
        [Need(kind="executable", name="cargo")],
    ),
    (
        "Cargo, the Rust package manager, is not installed or is not on PATH.",
        [Need(kind="executable", name="cargo")],
    ),
    (
        "Problem with the CMake installation, aborting build. CMake executable is cmake\n"
        "FileNotFoundError: [Errno 2] No such file or directory: 'cmake'",
        [Need(kind="executable", name="cmake")],
    ),
    (
        "ImportError: libgomp.so.1: cannot open shared object file: No such file or directory",
        [Need(kind="soname", name="libgomp.so.1")],
    ),
    ("error: command 'gcc' failed: Permission denied", []),
]


@pytest.mark.parametrize(("log", "expected"), LOGS, ids=[str(i) for i in range(len(LOGS))])
def test_needs_from_real_logs(log: str, expected: list[Need]) -> None:
    assert list(needs(log)) == expected


def test_each_need_once_in_the_order_first_said() -> None:
    log = "fatal error: zlib.h: No such file or directory\n" * 2 + "cannot find -lz\n"
    assert needs(log) == (Need(kind="header", name="zlib.h"), Need(kind="library", name="z"))


def test_missing_packages_leaves_out_what_the_image_has() -> None:
    a, b, c = (Need(kind="header", name=n) for n in ("a.h", "b.h", "c.h"))
    add, unknown = missing_packages(
        [(a, "liba-dev"), (b, "libb-dev"), (c, None), (a, "liba-dev")], have=["libb-dev"]
    )
    assert add == ["liba-dev"]
    assert unknown == [c]


def test_best_provider_prefers_the_standard_place_and_dev_packages() -> None:
    header = Need(kind="header", name="lber.h")
    assert (
        best(
            header,
            [("libfoo-dev", "/usr/include/foo/lber.h"), ("libldap-dev", "/usr/include/lber.h")],
        )
        == "libldap-dev"
    )
    ffi = Need(kind="header", name="ffi.h")
    candidates = [
        ("libffi-dev", "/usr/include/x86_64-linux-gnu/ffi.h"),
        ("gcc-12-plugin-dev", "/usr/lib/gcc/x86_64-linux-gnu/12/plugin/include/ffi.h"),
    ]
    assert best(ffi, candidates) == "libffi-dev"
    assert best(ffi, [("libffi-dbgsym", "/usr/include/ffi.h")]) is None
    assert best(ffi, []) is None


def test_path_regex_and_apk_names() -> None:
    import re

    rx = re.compile(path_regex(Need(kind="header", name="libxml/parser.h")))
    assert rx.search("/usr/include/libxml2/libxml/parser.h")
    assert not rx.search("/usr/include/libxml2/libxmlXparser.h")
    lib = re.compile(path_regex(Need(kind="library", name="pq")))
    assert lib.search("/usr/lib/x86_64-linux-gnu/libpq.so")
    assert not lib.search("/usr/lib32/libpq.so")
    assert apk_provider(Need(kind="soname", name="libgomp.so.1")) == "so:libgomp.so.1"
    assert apk_provider(Need(kind="executable", name="pg_config")) == "cmd:pg_config"
    assert apk_provider(Need(kind="header", name="lber.h")) is None


def test_parse_answer() -> None:
    n1, n2 = Need(kind="executable", name="pg_config"), Need(kind="header", name="x.h")
    text = "@family apt\n@@ 0\nlibpq-dev: /usr/bin/pg_config\n@@ 1\n"
    answer = parse_answer(text, [n1, n2])
    assert answer.family == "apt"
    assert answer.providers == {n1: "libpq-dev", n2: None}


def test_apt_and_apk_errors_are_found_in_an_image_builds_output() -> None:
    from wheelhouse.build.provides import package_errors

    # Docker's classic builder colours a step's stderr and runs it into the line before
    apt = (
        "Reading package lists...\nBuilding dependency tree...\x1b[91mE: Unable to locate "
        "package libacl1-devv\n\x1b[0mThe command '/bin/sh -c set -eu; ...' returned a "
        "non-zero code: 100"
    )
    assert package_errors(apt) == "E: Unable to locate package libacl1-devv"
    pieces = (
        "\x1b[91mE\x1b[0m\x1b[91m: \x1b[0m\x1b[91mUnable to locate package x-devv\x1b[0m\x1b[91m"
    )
    assert package_errors(pieces) == "E: Unable to locate package x-devv"
    apk = "ERROR: unable to select packages:\n  yaml-devv (no such package):\n    required by:"
    assert package_errors(apk) == "ERROR: unable to select packages:\nyaml-devv (no such package):"
    assert package_errors("Step 1/5 : FROM x\nSuccessfully built abc") == ""
