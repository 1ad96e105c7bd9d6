"""`wheelhouse serve` and `wheelhouse serve-user`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wheelhouse.cli.common import (
    Context,
    size_type,
    split_names,
)

if TYPE_CHECKING:
    pass


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free."
)
@click.option(
    "-t",
    "--target",
    "target_names",
    multiple=True,
    help="Serve only these targets (default: all, plus the combined /simple/); one target "
    "is also served at /simple/.",
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes, each on its own SO_REUSEPORT socket.",
)
@click.option("--upload", is_flag=True, help="Accept twine uploads (needs --password-file).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="user:argon2-hash lines (make them with `wheelhouse serve-user`).",
)
@click.option(
    "--max-upload-size",
    "max_upload",
    type=size_type(),
    default="512M",
    show_default=True,
    help="Largest upload body.",
)
@click.option(
    "--upstream",
    is_flag=False,
    flag_value="https://pypi.org/simple/",
    default=None,
    metavar="[URL]",
    help="Projects not in the wheelhouse come from this index (PyPI without a URL), "
    "hash-checked and cached in the store.",
)
@click.option(
    "--upstream-ttl",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds an upstream page is reused before it is asked again.",
)
@click.option("--no-access-log", is_flag=True, help="Do not write JSON access log lines.")
@click.pass_obj
def serve(
    obj: Context,
    host: str,
    port: int,
    target_names: tuple[str, ...],
    workers: int,
    upload: bool,
    password_file: Path | None,
    max_upload: int,
    upstream: str | None,
    upstream_ttl: float,
    no_access_log: bool,
) -> None:
    """Serve the wheelhouse as a pip index (PEP 503/691): /simple/ (combined),
    /<target>/simple/, uploads (twine) and an upstream cache. Stop with Ctrl-C or SIGTERM."""
    from wheelhouse import serve as serve_mod

    opts = serve_mod.ServeOptions(
        host=host,
        port=port,
        targets=tuple(split_names(target_names)),
        workers=workers,
        upload=upload,
        password_file=password_file,
        max_upload=max_upload,
        upstream=upstream,
        upstream_ttl=upstream_ttl,
        access_log=not no_access_log,
    )

    def ready(url: str) -> None:
        single = len(opts.targets) == 1
        index = f"{url}simple/" if single or not opts.targets else f"{url}<target>/simple/"
        click.echo(f"serving {index} (pip: --index-url {index})", nl=True)
        sys.stdout.flush()

    serve_mod.serve(obj.config(), opts, on_ready=ready)


@click.command("serve-user")
@click.argument("password_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def serve_user(password_file: Path, name: str, password_stdin: bool) -> None:
    """Add (or change) an upload user in a password file for `wheelhouse serve`."""
    from wheelhouse.serve import check_installed
    from wheelhouse.serve.auth import add_user

    check_installed(("argon2",))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    new = add_user(password_file, name, password)
    click.echo(f"{'added' if new else 'changed'} {name} in {password_file}")
