"""Unit tests for wheelhouse.inputs: requirement files and pyproject.toml are checked with
`packaging` before any resolver sees them, and errors name the file and line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import write

from wheelhouse.errors import InputError
from wheelhouse.lock.inputs import _logical_lines, check_inputs, check_requirement


def check(root: Path, *names: str) -> list[Path]:
    return [f.path for f in check_inputs(tuple(root / n for n in names), root.resolve())]


def fails(root: Path, *names: str) -> InputError:
    with pytest.raises(InputError) as info:
        check(root, *names)
    assert info.value.exit_code == 4
    return info.value


# -- requirements files -------------------------------------------------------------------


def test_valid_file_returns_path_and_digest(tmp_path: Path) -> None:
    text = "flask>=3,<4\nnumpy==2.1.*\nrequests[socks]>=2.31 ; python_version >= '3.8'\n"
    write(tmp_path / "requirements.in", text)
    files = check_inputs((tmp_path / "requirements.in",), tmp_path.resolve())
    assert len(files) == 1
    assert files[0].path == (tmp_path / "requirements.in").resolve()
    assert files[0].sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_malformed_line_names_file_line_and_text(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "# web\nflask>=3\n\nnumpy>=>2\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message.startswith("requirements.in:4: ")
    assert "'numpy>=>2'" in err.message
    assert err.hint is not None and "PEP 508" in err.hint


@pytest.mark.parametrize(
    "bad", ["flask=3", "flask >=", "flask[extra", "numpy; python_version >> '3'", "=="]
)
def test_malformed_requirements(tmp_path: Path, bad: str) -> None:
    write(tmp_path / "requirements.in", f"six\n{bad}\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message.startswith("requirements.in:2: ")
    assert f"invalid requirement {bad!r}" in err.message


def test_missing_requirements_file(tmp_path: Path) -> None:
    err = fails(tmp_path, "requirements.in")
    assert "requirements.in" in err.message and "not found" in err.message
    assert err.hint is not None and "inputs" in err.hint


def test_include_is_followed_and_returned(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "-r base.in\n--constraint=cons/c.txt\nflask\n")
    write(tmp_path / "base.in", "six\n")
    write(tmp_path / "cons" / "c.txt", "-r ../base.in\nsix==1.16.0\n")  # cycle-safe
    paths = check(tmp_path, "requirements.in")
    root = tmp_path.resolve()
    assert paths == [root / "requirements.in", root / "base.in", root / "cons" / "c.txt"]


def test_missing_include(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "flask\n-r other.in\n")
    err = fails(tmp_path, "requirements.in")
    assert "other.in" in err.message and "not found" in err.message


def test_malformed_line_in_include_names_the_included_file(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "-r sub/other.in\n")
    write(tmp_path / "sub" / "other.in", "six\n\nflask==\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message.startswith("sub/other.in:3: ")
    assert "'flask=='" in err.message


def test_include_without_a_name(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "six\n-r\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message == "requirements.in:2: -r needs a file name"


def test_unsupported_option(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "six\n--no-index\n")
    err = fails(tmp_path, "requirements.in")
    assert "requirements.in:2" in err.message and "'--no-index'" in err.message
    assert err.hint is not None and "wheelhouse.toml" in err.hint


@pytest.mark.parametrize(
    "option",
    [
        "--index-url https://mirror.example/simple",
        "-i https://mirror.example/simple",
        "--extra-index-url https://mirror.example/simple",
        "--find-links ./wheels",
        "-f ./wheels",
    ],
)
def test_index_options_in_requirements_are_refused(tmp_path: Path, option: str) -> None:
    """pip-compile and uv obey index options in an input file, so the resolver would use
    an index that wheelhouse's hashing, reachability check and inputs digest do not know:
    they are not harmless, and the hint for other options already says where they belong."""
    write(tmp_path / "requirements.in", f"six\n{option}\n")
    err = fails(tmp_path, "requirements.in")
    assert "requirements.in:2" in err.message
    assert err.hint is not None and "wheelhouse.toml [index]" in err.hint


def test_harmless_options_and_editables_pass(tmp_path: Path) -> None:
    write(
        tmp_path / "requirements.in",
        "--only-binary :all:\n--prefer-binary\n-e ./local-project\nsix\n",
    )
    assert check(tmp_path, "requirements.in") == [(tmp_path / "requirements.in").resolve()]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_bytes(b"six\n\xff\xfe\n")
    err = fails(tmp_path, "requirements.in")
    assert "requirements.in" in err.message and "UTF-8" in err.message


def test_continuation_lines_and_comments_parse(tmp_path: Path) -> None:
    write(
        tmp_path / "requirements.in",
        "# a comment line\n"
        "   # an indented comment\n"
        "flask>=3 \\\n"
        "    ,<4   # trailing comment\n"
        "\n"
        "requests\\\n"
        "[socks]\t# tab comment\n"
        "numpy==2.1.*  # pinned for the ABI\n",
    )
    assert check(tmp_path, "requirements.in")


def test_logical_lines() -> None:
    text = (
        "# header\n"  # 1
        "flask>=3 \\\n"  # 2
        "    ,<4\n"  # 3
        "\n"  # 4
        "six  # comment\n"  # 5
        "pkg @ https://example.org/pkg-1.0.tar.gz#sha256=abc\n"  # 6: '#' in a URL stays
        "last \\\n"  # 7: continuation at end of file
    )
    assert _logical_lines(text) == [
        (2, "flask>=3      ,<4"),
        (5, "six"),
        (6, "pkg @ https://example.org/pkg-1.0.tar.gz#sha256=abc"),
        (7, "last"),
    ]


def test_error_in_continued_line_names_its_first_line(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "six\nflask>=3 \\\n    ,,<4\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message.startswith("requirements.in:2: ")


def test_check_requirement() -> None:
    req = check_requirement("Flask[async]>=3", "x:1")
    assert req.name == "Flask" and req.extras == {"async"}
    with pytest.raises(InputError, match=r"^x:9: invalid requirement 'flask>'"):
        check_requirement("flask>", "x:9")


# -- pyproject.toml ----------------------------------------------------------------------


def test_pyproject_dependencies_are_validated(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "app"\nversion = "1"\ndependencies = ["flask>=3", "numpy=>2"]\n',
    )
    err = fails(tmp_path, "pyproject.toml")
    assert "pyproject.toml: project.dependencies[1]" in err.message
    assert "'numpy=>2'" in err.message


def test_pyproject_valid(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "app"\nversion = "1"\ndependencies = ["flask>=3", "six"]\n',
    )
    files = check_inputs((path,), tmp_path.resolve())
    assert [f.path for f in files] == [path.resolve()]
    assert files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_pyproject_without_dependencies(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "app"\ndynamic = ["dependencies"]\n')
    err = fails(tmp_path, "pyproject.toml")
    assert "pyproject.toml" in err.message and "[project].dependencies" in err.message


def test_pyproject_dependencies_not_a_list(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "app"\ndependencies = "flask"\n')
    err = fails(tmp_path, "pyproject.toml")
    assert "project.dependencies must be a list of strings" in err.message


def test_pyproject_dependency_that_is_not_a_string(tmp_path: Path) -> None:
    """`5` would pass as the name "5"; PEP 621 says dependencies are strings."""
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "app"\nversion = "1"\ndependencies = ["flask", 5]\n',
    )
    err = fails(tmp_path, "pyproject.toml")
    assert "project.dependencies[1]" in err.message


def test_pyproject_invalid_toml_and_missing(tmp_path: Path) -> None:
    err = fails(tmp_path, "pyproject.toml")
    assert "pyproject.toml" in err.message and "not found" in err.message
    write(tmp_path / "pyproject.toml", "[project\n")
    err = fails(tmp_path, "pyproject.toml")
    assert "pyproject.toml" in err.message and "not valid TOML" in err.message


def test_several_inputs(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "app"\nversion = "1"\ndependencies = ["six"]\n',
    )
    write(tmp_path / "dev.in", "pytest\n")
    root = tmp_path.resolve()
    assert check(tmp_path, "pyproject.toml", "dev.in") == [root / "pyproject.toml", root / "dev.in"]
