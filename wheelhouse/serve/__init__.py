"""`wheelhouse serve`: the wheelhouse as an internal pip index over HTTP.

Runs on uvicorn (with httptools and uvloop): a small, well-kept ASGI server with a C HTTP
parser, graceful shutdown on SIGTERM (in-flight requests finish) and a multi-process mode
(one listening socket shared by N workers), with a protocol of its own (protocol.py) that
adds the limits a shared network needs (head size and time, idle time, a connection cap)
and answers cached pages without ASGI. h11, uvicorn's protocol with a head-size limit, ran
at a third of plain httptools' pages per second; the hardened protocol at twice it. The
app is a raw ASGI callable (wheelhouse.serve.app), not a framework. bench/serve.py
measures it against pypiserver and nginx, and under an idle-socket and login flood.

Modules: app (routes, pages, the access log), negotiate (PEP 691 Accept), static (page
cache, file streaming, ranges, files checked to lie under their folder), upload (twine's
legacy upload API), auth (argon2id password file; the gate: its own pool, rate limits),
upstream (an upstream index through the store), policy (upstream pages, the cooldown and
project lists, this server's pages of them), protocol (limits; cached pages and
zero-copy files without ASGI), paths (URL rules), settings.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.config import Config, ServeSettings
from wheelhouse.errors import ServeError
from wheelhouse.serve.settings import ENV, Settings

if TYPE_CHECKING:
    import uvicorn

INSTALL_HINT = "pip install 'wheelhouse[serve]'"
_NEEDED = ("uvicorn", "httptools", "uvloop", "python_multipart", "argon2")


def check_installed(modules: Sequence[str] = _NEEDED) -> None:
    """A clear error naming the extra when the server's packages are missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ServeError(
            f"wheelhouse serve needs packages that are not installed: {', '.join(missing)}",
            hint=f"install them with: {INSTALL_HINT}",
        )


# the options are the config's [serve] table, with the command line's values laid over it
ServeOptions = ServeSettings


def settings_for(cfg: Config, opts: ServeOptions) -> Settings:
    """Check the options against the config; what the server processes get."""
    from wheelhouse.serve.policy import canonical_patterns

    chosen = [cfg.target(n).name for n in opts.targets]  # unknown names: ConfigError
    if opts.upload and opts.password_file is None:
        raise ServeError(
            "--upload needs --password-file: uploads are never open to anyone",
            hint="create one with `wheelhouse serve-user FILE NAME`, then pass "
            "--password-file FILE",
        )
    policy = opts.min_age or opts.exclude_newer or opts.allow or opts.deny
    if policy and not opts.upstream:
        raise ServeError(
            "an upstream policy (min-age, exclude-newer, allow, deny) needs an upstream",
            hint="add --upstream [URL] (or `upstream` in [serve]), or drop the policy",
        )
    if opts.upstream is not None:
        _check_upstream(opts.upstream)
    if opts.password_file is not None and not opts.password_file.is_file():
        raise ServeError(
            f"{opts.password_file}: no such password file",
            hint=f"create it with `wheelhouse serve-user {opts.password_file} NAME`",
        )
    if not cfg.output.is_dir():
        if not (opts.upload or opts.upstream):
            raise ServeError(
                f"{cfg.rel(cfg.output)} does not exist: there is nothing to serve",
                hint="run `wheelhouse build` first (or serve with --upload / --upstream)",
            )
        cfg.output.mkdir(parents=True)
    return Settings(
        root=str(cfg.output.resolve()),
        targets=tuple(chosen) if chosen else tuple(cfg.targets),
        all_targets=tuple(cfg.targets),
        alias=chosen[0] if len(chosen) == 1 else None,
        combined=not chosen,
        upload=opts.upload,
        password_file=str(opts.password_file.resolve()) if opts.password_file else None,
        max_upload=opts.max_upload,
        upstream=opts.upstream,
        upstream_ttl=opts.upstream_ttl,
        cache_dir=str(cfg.cache_dir),
        ca_bundle=str(cfg.ca_bundle) if cfg.ca_bundle else None,
        access_log=opts.access_log,
        max_url=opts.max_url,
        max_head=opts.max_header_size,
        max_headers=opts.max_headers,
        head_timeout=opts.head_timeout,
        idle_timeout=opts.idle_timeout,
        body_timeout=opts.body_timeout,
        max_connections=_connection_cap(opts.max_connections, opts.workers),
        auth_failures=opts.auth_failures,
        auth_window=opts.auth_window,
        min_age=opts.min_age,
        exclude_newer=_exclude_newer(opts.exclude_newer),
        allow=canonical_patterns(opts.allow),
        deny=canonical_patterns(opts.deny),
    )


def _exclude_newer(text: str | None) -> str | None:
    """An ISO 8601 date or time (a date means its midnight, UTC), checked here: a typo
    is an error at start, not a policy that hides nothing."""
    if text is None:
        return None
    from wheelhouse.serve.policy import parse_time

    if parse_time(text) is None:
        raise ServeError(
            f"--exclude-newer {text!r}: not an ISO 8601 date or time",
            hint='e.g. 2026-01-31 or "2026-01-31T12:00:00Z"',
        )
    return text


def _connection_cap(wanted: int, workers: int) -> int:
    """Connections per worker: what was asked, but under the open-file limit (raised to
    its hard limit first), with room for the files and pages being served: past it a
    worker closes idle connections instead of failing accept() (protocol.py)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    room = max(16, soft - 64)  # files being streamed, the log, the store, threads
    return max(1, min(wanted, room))


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        message = f"cannot listen on {host}:{port}: {exc.strerror}"
        raise ServeError(message, hint=_bind_hint(exc)) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _bind_hint(exc: OSError) -> str:
    """What to do where the address cannot be listened on: its host, or its port."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (
            "--host must be an address of this machine: 127.0.0.1 (the default), "
            "0.0.0.0 or :: for every interface"
        )
    if exc.errno == errno.EACCES:
        return "ports below 1024 need privileges: pick --port 1024 or above (0: any free)"
    return "pick another --port (0 lets the system choose), or stop what uses it"


def _check_upstream(url: str) -> None:
    """An upstream is an http(s) index: anything else would fail each request later."""
    from urllib.parse import urlsplit

    from wheelhouse.simple import redact

    try:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname and parts.port != 0:
            return
        shown = redact(url)
    except ValueError:  # (a port that is no number: its credentials unknown, none shown)
        shown = url.rpartition("@")[2]
    raise ServeError(
        f"upstream {shown!r} is not the http(s) URL of an index",
        hint="e.g. --upstream https://pypi.org/simple/ (or --upstream alone: PyPI)",
    )


def serve(
    cfg: Config, opts: ServeOptions, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT. `on_ready(url)` once the socket listens."""
    check_installed()
    settings = settings_for(cfg, opts)
    if settings.password_file:
        from wheelhouse.errors import ConfigError
        from wheelhouse.serve.auth import read_users

        try:
            read_users(Path(settings.password_file))
        except ConfigError as exc:
            raise ServeError(exc.message, hint=exc.hint) from None
    import uvicorn

    many = opts.workers > 1
    first = _bind(opts.host, opts.port, reuse_port=many)
    port = first.getsockname()[1]
    sockets = [first] + [_bind(opts.host, port, reuse_port=True) for _ in range(opts.workers - 1)]
    os.environ[ENV] = settings.to_env()  # a worker's app reads its settings here
    from wheelhouse.serve.protocol import Limits, protocol_class

    limits = Limits(
        max_url=settings.max_url,
        max_head=settings.max_head,
        max_headers=settings.max_headers,
        head_timeout=settings.head_timeout,
        idle_timeout=settings.idle_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
    config = uvicorn.Config(
        "wheelhouse.serve.app:create_app",
        factory=True,
        http=protocol_class(limits),
        loop="uvloop",
        lifespan="off",
        access_log=False,  # the app writes its own structured access log
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
        timeout_keep_alive=max(1, round(settings.idle_timeout)),
    )
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    _exit_cleanly_on_signals()
    if on_ready is not None:
        on_ready(f"http://{host}:{port}/")
    if many:
        _run_workers(config, sockets)
    else:
        uvicorn.Server(config).run(sockets=sockets)


def _exit_cleanly_on_signals() -> None:
    """uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again under the
    handler that was there before it: this one makes that a normal exit (status 0), as a
    service manager expects of a stop it asked for."""
    import signal

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _run_workers(config: uvicorn.Config, sockets: list[socket.socket]) -> None:
    """One forked uvicorn per socket. The sockets share the port through SO_REUSEPORT,
    so the kernel spreads connections evenly over the workers (with one shared socket,
    whichever worker wakes first takes them). SIGTERM is passed on to every worker, which
    finishes its in-flight requests; Ctrl-C reaches them all through the process group."""
    import signal

    import uvicorn

    pids = []
    for sock in sockets:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker
            code = 1
            try:
                for other in sockets:
                    if other is not sock:
                        other.close()
                uvicorn.Server(config).run(sockets=[sock])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            finally:
                os._exit(code)
        pids.append(pid)
    for sock in sockets:
        sock.close()

    def forward(signum: int, _frame: object) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers got it too: wait for them
    for pid in pids:
        os.waitpid(pid, 0)
