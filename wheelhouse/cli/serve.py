"""`wheelhouse serve` and `wheelhouse serve-user`."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from wheelhouse.cli.common import Context, age_type, size_type, split_names


@click.command()
@click.option("--host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="0: any free.  [default: 8080]"
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
    default=None,
    help="Server processes, each on its own SO_REUSEPORT socket.  [default: 1]",
)
@click.option(
    "--upload", is_flag=True, default=None, help="Accept twine uploads (needs --password-file)."
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="user:argon2-hash lines (make them with `wheelhouse serve-user`).",
)
@click.option(
    "--max-upload-size",
    "max_upload",
    type=size_type(),
    help="Largest upload body.  [default: 512M]",
)
@click.option(
    "--upstream",
    is_flag=False,
    flag_value="https://pypi.org/simple/",
    default=None,
    metavar="[URL]",
    help="Projects not in the wheelhouse come from this index (PyPI without a URL), "
    "hash-checked and cached in the store. Credentials in it are never shown.",
)
@click.option(
    "--upstream-ttl",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds an upstream page is reused before it is asked again.  [default: 600]",
)
@click.option(
    "--min-age",
    type=age_type(),
    default=None,
    help="Hide upstream files uploaded less than this long ago (e.g. 7d): a cooldown "
    "against freshly published malicious releases.",
)
@click.option(
    "--exclude-newer",
    metavar="DATE",
    default=None,
    help="Hide upstream files uploaded after this ISO 8601 date or time.",
)
@click.option(
    "--allow-upstream",
    "allow",
    multiple=True,
    help="Only these upstream projects (comma-separated or repeated; `name*` is a prefix).",
)
@click.option(
    "--deny-upstream",
    "deny",
    multiple=True,
    help="Never these upstream projects (comma-separated or repeated; `name*` is a prefix).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    help="Connections per worker; past it the longest idle one is closed.  [default: 1000]",
)
@click.option(
    "--no-access-log", "access_log", flag_value=False, default=None, help="No access log lines."
)
@click.pass_obj
def serve(
    obj: Context,
    /,
    target_names: tuple[str, ...],
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    **given: Any,
) -> None:
    """Serve the wheelhouse as a pip index (PEP 503/691): /simple/ (combined),
    /<target>/simple/, uploads (twine) and an upstream cache with a policy. Every option
    can also be set in wheelhouse.toml's [serve] table. Stop with Ctrl-C or SIGTERM."""
    from wheelhouse import serve as serve_mod

    cfg = obj.config()
    changes = {k: v for k, v in given.items() if v is not None}
    if target_names:
        changes["targets"] = tuple(split_names(target_names))
    if allow:
        changes["allow"] = tuple(split_names(allow))
    if deny:
        changes["deny"] = tuple(split_names(deny))
    from wheelhouse.config.serve import ServeSettings

    opts = dataclasses.replace(cfg.serve or ServeSettings(), **changes)

    def ready(url: str) -> None:
        single = len(opts.targets) == 1
        index = f"{url}simple/" if single or not opts.targets else f"{url}<target>/simple/"
        click.echo(f"serving {index} (pip: --index-url {index})", nl=True)
        sys.stdout.flush()

    serve_mod.serve(cfg, opts, on_ready=ready)


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
