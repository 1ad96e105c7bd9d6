"""Inputs no resolver should see, refused by lock/inputs.py with the file, the line, the
limit and what to do: absurd sizes, circular includes, VCS checkouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write

from wheelhouse.errors import InputError
from wheelhouse.lock import inputs
from wheelhouse.lock.inputs import check_inputs


def fails(root: Path, *names: str) -> InputError:
    with pytest.raises(InputError) as info:
        check_inputs(tuple(root / n for n in names), root.resolve())
    assert info.value.exit_code == 4
    return info.value


def passes(root: Path, *names: str) -> list[str]:
    files = check_inputs(tuple(root / n for n in names), root.resolve())
    return [f.path.relative_to(root.resolve()).as_posix() for f in files]


# -- sizes ------------------------------------------------------------------------------


def test_a_line_of_a_million_spaces_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "six\n" + " " * 1_000_000 + "\nflask\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message == (
        "requirements.in:2: a line of 1,000,000 characters, over the limit of 8,192 (8 KiB)"
    )
    assert err.hint is not None and "one short line" in err.hint


def test_a_line_at_the_limit_passes(tmp_path: Path) -> None:
    line = "six" + " " * (inputs.MAX_LINE_CHARS - 3)
    write(tmp_path / "requirements.in", f"{line}\n")
    assert passes(tmp_path, "requirements.in") == ["requirements.in"]
    write(tmp_path / "requirements.in", f"{line} \n")
    assert "8,193 characters" in fails(tmp_path, "requirements.in").message


def test_a_requirement_continued_past_the_limit_is_refused(tmp_path: Path) -> None:
    """Each physical line is short; joined by backslashes, the requirement is not."""
    text = "six\nflask \\\n" + ("    " + "x" * 100 + " \\\n") * 100 + "    >=3\n"
    write(tmp_path / "requirements.in", text)
    err = fails(tmp_path, "requirements.in")
    assert err.message.startswith("requirements.in:2: a line of ")
    assert "over the limit of 8,192" in err.message


def test_a_file_over_the_size_limit_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", ("six\n" * (inputs.MAX_FILE_BYTES // 4)) + "x\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message == "requirements.in: over the 1 MiB limit for a requirements file"
    assert err.hint is not None and "names the file you meant" in err.hint


def test_an_endless_include_is_refused(tmp_path: Path) -> None:
    """-r /dev/zero: read whole, it would never end; read bounded, it is too big."""
    write(tmp_path / "requirements.in", "six\n-r /dev/zero\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message == "/dev/zero: over the 1 MiB limit for a requirements file"


def test_too_many_lines_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "\n" * inputs.MAX_LINES + "six\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message == "requirements.in: 10,001 lines, over the limit of 10,000"


def test_too_many_included_files_are_refused(tmp_path: Path) -> None:
    for i in range(inputs.MAX_FILES + 1):
        write(tmp_path / f"r{i}.in", f"-r r{i + 1}.in\n" if i < inputs.MAX_FILES else "six\n")
    err = fails(tmp_path, "r0.in")
    assert err.message == (
        "r99.in:1: -r r100.in: more than 100 requirement and constraint files in all"
    )
    # and one file fewer is fine
    write(tmp_path / "r99.in", "six\n")
    assert len(passes(tmp_path, "r0.in")) == inputs.MAX_FILES


def test_pyproject_dependency_over_the_limit_is_refused(tmp_path: Path) -> None:
    dep = "six" + " " * 9000
    write(tmp_path / "pyproject.toml", f'[project]\ndependencies = ["flask", "{dep}"]\n')
    err = fails(tmp_path, "pyproject.toml")
    assert err.message.startswith("pyproject.toml: project.dependencies[1]: a line of 9,003")


# -- includes -----------------------------------------------------------------------------


def test_a_file_including_itself_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "six\n-r requirements.in\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message == (
        "requirements.in:2: -r requirements.in includes a file that is including it: "
        "requirements.in -> requirements.in"
    )
    assert err.hint is not None and "remove one of the -r/-c lines" in err.hint


def test_a_circle_of_includes_is_refused_with_the_circle(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "six\n-r sub/a.in\n")
    write(tmp_path / "sub" / "a.in", "flask\n\n--requirement=b.in\n")
    write(tmp_path / "sub" / "b.in", "-c ../requirements.in\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message == (
        "sub/b.in:1: -c ../requirements.in includes a file that is including it: "
        "requirements.in -> sub/a.in -> sub/b.in -> requirements.in"
    )


def test_a_file_included_twice_is_no_circle(tmp_path: Path) -> None:
    write(tmp_path / "requirements.in", "-r a.in\n-r b.in\n-c b.in\n")
    write(tmp_path / "a.in", "-r common.in\nsix\n")
    write(tmp_path / "b.in", "-r common.in\nflask\n")
    write(tmp_path / "common.in", "attrs\n")
    assert passes(tmp_path, "requirements.in") == ["requirements.in", "a.in", "common.in", "b.in"]


# -- VCS checkouts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "-e git+https://github.com/pallets/flask.git#egg=flask",
        "--editable=git+ssh://git@example.com/x/mylib.git@v1#egg=mylib",
        "-e hg+https://example.com/repo#egg=thing",
        "mylib @ git+https://example.com/x/mylib.git@v1",
    ],
)
def test_vcs_requirements_are_refused(tmp_path: Path, line: str) -> None:
    write(tmp_path / "requirements.in", f"six\n{line}\n")
    err = fails(tmp_path, "requirements.in")
    assert err.message.startswith("requirements.in:2: ")
    assert "is a VCS checkout, which a lock cannot pin" in err.message
    assert err.hint is not None and "require it by name and version" in err.hint


def test_local_editables_and_url_wheels_still_pass(tmp_path: Path) -> None:
    write(
        tmp_path / "requirements.in",
        "-e ./local-project\nthing @ https://example.com/thing-1.0-py3-none-any.whl\n",
    )
    assert passes(tmp_path, "requirements.in") == ["requirements.in"]
