"""Typed, strict reading of TOML tables (wheelhouse.toml, recipes): every error names the
file and the dotted key, quotes the bad value and says what was expected."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wheelhouse.errors import ConfigError, not_utf8


def read_toml(path: Path, shown: str | None = None) -> dict[str, Any]:
    """A TOML file as a dict; errors name it as `shown` (default: its path)."""
    label = shown or str(path)
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as e:
        raise not_utf8(label, e, ConfigError) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{label}: not valid TOML: {e}", hint="fix the syntax at that line"
        ) from None
    except OSError as e:
        raise ConfigError(f"{label}: cannot read: {e.strerror}") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    import difflib  # only for a misspelt key

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


class TableReader:
    """Typed access to one TOML table; errors carry the file and dotted key."""

    def __init__(self, table: Mapping[str, Any], where: str, source: str) -> None:
        self.table = table
        self.where = where
        self.source = source

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, value: Any, expected: str, hint: str | None = None) -> ConfigError:
        return ConfigError(
            f"{self.source}: {self.key(name)} = {show(value)}: expected {expected}", hint=hint
        )

    def check_keys(self, allowed: Sequence[str]) -> None:
        if not isinstance(self.table, Mapping):
            raise ConfigError(f"{self.source}: {self.where} = {show(self.table)}: expected a table")
        for k in self.table:
            if k not in allowed:
                raise ConfigError(
                    f"{self.source}: unknown key {self.key(k)!r}",
                    hint=did_you_mean(k, allowed) or f"known keys: {', '.join(allowed)}",
                )

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.table.get(name, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, value, "a string")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.table.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, value, "true or false")
        return value

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = self.text(name, default)
        if value is None or value not in choices:
            raise self.fail(name, value, "one of " + ", ".join(map(repr, choices)))
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.table.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, value, "a list of strings")
        return tuple(value)

    def str_map(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self.table.get(name, {})
        if not isinstance(value, Mapping):
            raise self.fail(name, value, "a table of strings")
        for k, v in value.items():
            if not isinstance(v, str):
                raise ConfigError(
                    f"{self.source}: {self.key(name)}.{k} = {show(v)}: expected a string",
                    hint='quote environment values, e.g. CFLAGS = "-O2"',
                )
        return tuple(sorted(value.items()))

    def table_of(self, name: str) -> Mapping[str, Any]:
        value = self.table.get(name, {})
        if not isinstance(value, Mapping):
            raise self.fail(name, value, "a table")
        return value


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return f"{value!r} ({type(value).__name__})"
