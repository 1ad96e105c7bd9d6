"""How the CLI shows progress and tables: rich on a terminal, plain text otherwise.

Only the CLI uses this. Piped into a CI log or a script, a spinner is noise and rich costs
~35 ms to import, a sixth of a warm build; plain output is also what a script parses. The
plain table keeps rich's shape (`|`-separated cells, header first) so both read the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

_STYLE = {"built": "green", "failed": "red"}


class Status(Protocol):
    def update(self, text: str) -> None: ...


class _NoStatus:
    def update(self, text: str) -> None:
        pass


def interactive() -> bool:
    """Someone watches stderr (or FORCE_COLOR asks for rich anyway)."""
    return bool(os.environ.get("FORCE_COLOR")) or sys.stderr.isatty()


class Display:
    def __init__(self, rich: bool | None = None) -> None:
        self.rich = interactive() if rich is None else rich
        self._out: Any = None
        self._err: Any = None
        if self.rich:
            from rich.console import Console

            self._out = Console(highlight=False)
            self._err = Console(stderr=True, highlight=False)

    @contextmanager
    def status(self, text: str) -> Iterator[Status]:
        if not self.rich:
            yield _NoStatus()
            return
        with self._err.status(text, spinner="dots") as status:
            yield status

    def event(self, kind: str, message: str) -> None:
        """One line on stderr: `  built  pyyaml==6.0.3 -> pyyaml-….whl`."""
        if self.rich:
            self._err.print(f"{kind:>6}  {message}", style=_STYLE.get(kind, ""), markup=False)
        else:
            print(f"{kind:>6}  {message}", file=sys.stderr, flush=True)

    def line(self, text: str, *, err: bool = False) -> None:
        if self.rich:
            (self._err if err else self._out).print(text, markup=False)
        else:
            print(text, file=sys.stderr if err else sys.stdout, flush=True)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.rich:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for col in columns:
                table.add_column(col)
            for row in rows:
                table.add_row(*row)
            self._out.print(table)
            return
        widths = [max(len(str(c)) for c in col) for col in zip(columns, *rows, strict=True)]

        def fmt(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        lines = [title, fmt(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [fmt(r) for r in rows]
        print("\n".join(lines), flush=True)
