"""What every command shares: the context (config, engine), the error rendering,
the target option and the size/age parameter types."""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from wheelhouse import config as config_mod
from wheelhouse.errors import WheelhouseError, filesystem_error, system_error

if TYPE_CHECKING:
    from wheelhouse.engine import Engine


@dataclass
class Context:
    project_dir: Path | None
    config_file: Path | None
    overrides: tuple[str, ...]
    engine: str | None
    store: str | None = None
    _config: config_mod.Config | None = None

    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(
                self.project_dir,
                config_file=self.config_file,
                overrides=self.overrides,
                engine=self.engine,
                store=self.store,
            )
        return self._config

    def loaded_cache_dir(self) -> Path | None:
        """The cache folder, when the config is loaded and the command used it (an error's
        hint says which it is)."""
        return self._config.used_cache_dir() if self._config is not None else None

    def engine_factory(self) -> Callable[[], Engine]:
        cfg = self.config()

        @functools.cache
        def make() -> Engine:
            from wheelhouse.engine import Engine

            # no up-front `docker version`: a failing call checks the engine then, so a
            # fully cached build pays for one `image inspect`, not two round trips
            return Engine(cfg.engine, cfg.cache_dir, cfg.timeouts)

        return make


def fail(err: WheelhouseError) -> NoReturn:
    click.secho(f"wheelhouse: {err.kind}: {err.message}", fg="red", err=True)
    if err.hint:
        click.echo(f"  hint: {err.hint}", err=True)
    sys.exit(err.exit_code)


INTERNAL = 70  # (sysexits' EX_SOFTWARE) an error of wheelhouse's own, not the user's


def internal_error(err: Exception) -> NoReturn:
    """An error no layer expected (a bug of wheelhouse's or of a library's): one line that
    says so, and the traceback kept in a file of its own for the report, not shown to the
    user (where no file can be written, shown after all)."""
    import tempfile
    import traceback

    trace = "".join(traceback.format_exception(err))
    click.secho(f"wheelhouse: internal error: {type(err).__name__}: {err}", fg="red", err=True)
    try:
        fd, path = tempfile.mkstemp(prefix="wheelhouse-error-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(trace)
    except OSError:
        click.echo(trace, err=True, nl=False)
        where = "the traceback above"
    else:
        where = f"the traceback in {path}"
    click.echo(
        f"  hint: a bug in wheelhouse, not in what you gave it: please report it with {where}",
        err=True,
    )
    sys.exit(INTERNAL)


@contextmanager
def cancellation() -> Iterator[list[int]]:
    """SIGTERM (what a CI cancel sends) is handled as Ctrl-C is: the first of either kills
    the running commands (process.cancel: worker threads' ones too) and raises
    KeyboardInterrupt in the main thread, so every container's context removes its
    container on the way out. Later signals are ignored while that bounded cleanup runs.
    Yields the signals received."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:
            return
        received.append(signum)
        process = sys.modules.get("wheelhouse.process")  # not imported: nothing ran yet
        if process is not None and hasattr(process, "cancel"):
            process.cancel()
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield received  # only the main thread may set handlers (an embedding caller)
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Group(click.Group):
    """Turns WheelhouseError into a message and its exit code, never a traceback; a
    filesystem's refusal anywhere (a full disk, a read-only folder) into a FilesystemError
    naming the path (one translation here, not one per write), and any other error the
    system reported into its own words and exit 1, never a traceback (but for an output
    closed early, `| head`: click's main ends that quietly); any other error into one line
    and exit 70 (`internal_error`); Ctrl-C into exit 130 and SIGTERM into 143 (128 + the
    signal, as a shell reports them)."""

    def invoke(self, ctx: click.Context) -> Any:
        with cancellation() as received:
            try:
                return super().invoke(ctx)
            except WheelhouseError as err:
                fail(err)
            except BrokenPipeError:
                raise  # (click's main: exit 1, and nothing more written to a closed pipe)
            except OSError as err:
                obj = ctx.find_object(Context)
                cache_dir = obj.loaded_cache_dir() if obj is not None else None
                fail(filesystem_error(err, cache_dir=cache_dir) or system_error(err))
            except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
                raise  # (click's own: usage errors, --help, an answer of no)
            except Exception as err:  # noqa: BLE001 (the last word: see internal_error)
                internal_error(err)
            except KeyboardInterrupt:
                if signal.SIGTERM in received:
                    click.echo("wheelhouse: terminated", err=True)
                    sys.exit(128 + signal.SIGTERM)
                click.echo("wheelhouse: interrupted", err=True)
                sys.exit(128 + signal.SIGINT)


def split_names(values: Sequence[str]) -> list[str]:
    return [n for v in values for n in v.split(",") if n]


target_option = click.option(
    "-t",
    "--target",
    "target_names",
    multiple=True,
    help="Target(s) to work on (default: default-targets). Repeat or comma-separate.",
)


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


class Unit(click.ParamType):  # type: ignore[type-arg]
    """A size (500M, 5G) or an age (12h, 30d), parsed by wheelhouse.units."""

    def __init__(self, name: str, parse: Callable[[str], float], *, zero_ok: bool) -> None:
        self.name = name
        self._parse = parse
        self._zero_ok = zero_ok

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float):
            return value
        try:
            number = self._parse(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if number < 0 or (number == 0 and not self._zero_ok):
            self.fail(f"{value!r}: must be more than 0", param, ctx)
        return number


def size_type(*, zero_ok: bool = False) -> Unit:
    from wheelhouse.units import parse_size

    return Unit("size", parse_size, zero_ok=zero_ok)


def age_type() -> Unit:
    from wheelhouse.units import parse_age

    return Unit("age", parse_age, zero_ok=True)


def verbose_logging() -> bool:
    import logging

    return logging.getLogger("wheelhouse").level == logging.DEBUG
