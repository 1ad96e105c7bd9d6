"""HTTP Basic authentication for uploads against a password file of argon2id hashes.

The file has one `user:hash` line per user (`#` comments and blank lines allowed), the
hash in argon2's PHC string form (`$argon2id$v=19$m=...`). `wheelhouse serve-user FILE NAME`
adds or replaces a user. argon2id is the password-hashing competition's winner and what
OWASP recommends first: memory-hard, so a stolen file is expensive to brute-force.

The file is read again whenever its stat changes, so users can be added while the server
runs. A verified (user, password) pair is remembered by its sha256 for a minute: a twine
upload of many files costs one argon2 verification (~50 ms of CPU), not one per file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import threading
import time
from pathlib import Path

from wheelhouse.errors import ConfigError
from wheelhouse.fsutil import atomic_write

_REMEMBER = 60.0


def read_users(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the password file ({exc.strerror})",
            hint=f"create it with `wheelhouse serve-user {path} NAME`",
        ) from None
    users = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith("$argon2"):
            raise ConfigError(
                f"{path}:{number}: not a `user:$argon2id$...` line",
                hint=f"add users with `wheelhouse serve-user {path} NAME`",
            )
        users[user] = hashed
    return users


def add_user(path: Path, user: str, password: str) -> bool:
    """Add or replace `user` in the file (made 0600); True when the user was new."""
    from argon2 import PasswordHasher

    if not user or ":" in user or any(c.isspace() for c in user):
        raise ConfigError(
            f"{user!r} is not a valid user name", hint="use letters, digits, '-', '_' or '.'"
        )
    if len(password) < 8:
        raise ConfigError("the password is shorter than 8 characters", hint="use a longer one")
    users = read_users(path) if path.exists() else {}
    new = user not in users
    users[user] = PasswordHasher().hash(password)
    text = "".join(f"{u}:{h}\n" for u, h in users.items())
    atomic_write(path, text, mode=0o600)
    return new


class Authenticator:
    """Checks an `Authorization: Basic ...` header value against the password file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}
        self._ok: dict[bytes, float] = {}  # sha256(header) -> when verified
        self._lock = threading.Lock()
        from argon2 import PasswordHasher

        self._dummy = PasswordHasher().hash(os.urandom(16).hex())
        self._users_now()  # a broken file is an error at start, not at the first upload

    def _users_now(self) -> dict[str, str]:
        st = os.stat(self.path)  # noqa: PTH116
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._users = read_users(self.path)
                self._stamp = stamp
                self._ok.clear()
            return self._users

    def check(self, header: str | None) -> str | None:
        """The user name when the header carries valid credentials, else None. Blocking
        (argon2 takes tens of milliseconds): call it from a worker thread."""
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        if not header or header[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        try:
            users = self._users_now()
        except (OSError, ConfigError):
            return None  # the file went away or broke: nobody gets in
        hashed = users.get(user)
        key = hashlib.sha256(f"{hashed}\0{decoded}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            when = self._ok.get(key)
        if when is not None and now - when < _REMEMBER:
            return user
        try:
            # an unknown user costs the same verification: the time taken does not say
            # which users exist
            PasswordHasher().verify(hashed or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if hashed is None:
            return None
        with self._lock:
            self._ok[key] = now
        return user


class Throttled(Exception):
    """No check now: `status` 429 (this client failed too often) or 503 (the checks are
    all busy), with the seconds to wait."""

    def __init__(self, status: int, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.message = message


class Gate:
    """Password checks on a pool of their own, bounded, with a per-client failure limit.

    argon2id takes ~50 ms of CPU and 64 MiB of memory per check: on the shared thread
    pool a flood of bad passwords slowed downloads by seconds and took hundreds of MB.
    Here at most `threads` checks run at once and `queue` wait (past that: 503); a client
    (by address) whose checks failed `failures` times within `window` seconds gets 429
    with Retry-After until the oldest failure is that old, without a check being run."""

    def __init__(
        self,
        auth: Authenticator,
        *,
        threads: int = 2,
        failures: int = 5,
        window: float = 60.0,
        queue: int = 16,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.auth = auth
        self.failures = failures
        self.window = window
        self.queue = queue
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="wheelhouse-auth", initializer=_lowest_priority
        )
        self._waiting = 0
        self._failed: dict[str, list[float]] = {}  # client -> times of recent failures

    def retry_after(self, client: str, now: float) -> int | None:
        times = self._failed.get(client)
        if not times:
            return None
        while times and now - times[0] >= self.window:
            times.pop(0)
        if not times:
            del self._failed[client]
            return None
        if len(times) < self.failures:
            return None
        return max(1, math.ceil(times[0] + self.window - now))

    def _failure(self, client: str, now: float) -> None:
        if client not in self._failed and len(self._failed) >= _CLIENTS:
            self._failed.pop(next(iter(self._failed)))  # bounded: the oldest client goes
        times = self._failed.setdefault(client, [])
        times.append(now)
        del times[: -self.failures]

    async def check(self, client: str, header: str | None) -> str | None:
        """The user, or None (bad credentials); raises Throttled."""
        import asyncio

        if not header:
            return None  # nothing to check: no cost, no failure counted
        wait = self.retry_after(client, time.monotonic())
        if wait is not None:
            raise Throttled(429, wait, "too many failed logins from this address")
        if self._waiting >= self.queue:
            raise Throttled(503, 1, "too many logins are being checked: retry in a moment")
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            user = await loop.run_in_executor(self._pool, self.auth.check, header)
        finally:
            self._waiting -= 1
        if user is None:
            self._failure(client, time.monotonic())
        return user


_CLIENTS = 10_000  # clients whose failures are remembered


def _lowest_priority() -> None:
    """Linux gives each thread its own nice value: a check thread at 19 takes only the
    CPU the event loop (pages, files) leaves, so a flood of logins slows logins only."""
    import contextlib
    import threading

    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
