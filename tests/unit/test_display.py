"""The CLI's output helper: rich on a terminal, plain text otherwise; both show the same
cells, and text from errors or package names is never read as rich markup."""

from __future__ import annotations

import re

import pytest

from wheelhouse.display import Display, interactive

ROWS = [("slim", "20", "wheelhouse/slim"), ("py313", "3", "-")]


@pytest.mark.parametrize("rich", [True, False])
def test_table_shows_every_cell_in_pipe_separated_rows(
    rich: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    Display(rich=rich).table("wheelhouse build", ("target", "wheels", "folder"), ROWS)
    out = capsys.readouterr().out
    assert out.splitlines()[0].strip() == "wheelhouse build"
    cells = [
        [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]
        for line in out.splitlines()
        if re.match(r"^\s*[│┃|]", line)
    ]
    assert ["target", "wheels", "folder"] in cells
    assert ["slim", "20", "wheelhouse/slim"] in cells and ["py313", "3", "-"] in cells


@pytest.mark.parametrize("rich", [True, False])
def test_text_is_not_markup(rich: bool, capsys: pytest.CaptureFixture[str]) -> None:
    show = Display(rich=rich)
    show.event("failed", "pkg[extra]==1.0: [red]not markup[/red]")
    show.line("[bold]x[/bold]", err=True)
    err = capsys.readouterr().err
    assert "pkg[extra]==1.0: [red]not markup[/red]" in err
    assert "[bold]x[/bold]" in err


def test_plain_status_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    with Display(rich=False).status("planning") as status:
        status.update("fetching 3 files")
    assert capsys.readouterr() == ("", "")


def test_interactive_follows_stderr_and_force_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert interactive() is False  # pytest captures stderr: not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert interactive() is True
