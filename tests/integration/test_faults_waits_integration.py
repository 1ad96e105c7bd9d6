"""Every wait ends, through the real CLI (and the real boto3, pip-compile and uv): an S3
endpoint that accepts connections and never answers, a resolver stuck in a package's
metadata hook, a package index that never answers. Each ends within its configured (here
small) limit, with its exit code and a message naming what was waited for and the
setting to raise, and leaves no process behind.

No test here times anything: the limits are what the messages report, and each run has
a generous guard (`timeout=`) only so that a regression fails instead of hanging.
The engine's waits and SIGTERM: tests/docker/test_faults_waits.py; the mechanics in one
process: tests/unit/test_faults_waits_unit.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Wheelhouse, write
from fixtures_index import LocalIndex
from fixtures_s3 import S3_ENV
from fixtures_silent import SilentServer, ended, sleepy_sdist

from wheelhouse.config import StoreSettings
from wheelhouse.errors import StoreError
from wheelhouse.store.s3 import ATTEMPTS, Bucket

GUARD = 300  # seconds: only so that a hang fails the test instead of stalling the suite


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


def _config(index: LocalIndex, extra: str = "") -> str:
    # Python 3.11 as the host has: pip-compile runs here, and nothing needs the engine
    return f"""
default-targets = ["slim"]

[index]
index-url = "{index.url}"

[targets.slim]
python-version = "3.11"
builder-image = "builder:1"
final-image = "final:1"
{extra}"""


@pytest.fixture
def locked(wh: Wheelhouse, project: Path, fresh_index: LocalIndex) -> Wheelhouse:
    """A project whose lock names two wheels of the index (no source build)."""
    write(project / "wheelhouse.toml", _config(fresh_index))
    write(project / "requirements.in", "gamma\nzeta\n")
    wh("lock", timeout=GUARD)
    wh.env.update(S3_ENV)
    return wh


# -- S3 ------------------------------------------------------------------------------------


def test_a_silent_endpoint_costs_one_call_then_fails_at_once(
    silent: SilentServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    settings = StoreSettings(
        url="s3://wh-test/p", bucket="wh-test", prefix="p", endpoint_url=silent.url, timeout=0.5
    )
    bucket = Bucket(settings)
    with caplog.at_level(logging.WARNING, logger="wheelhouse.s3"), pytest.raises(StoreError) as err:
        bucket.head("blobs/0")
    assert ATTEMPTS == 3 and silent.connections == 3  # botocore's max_attempts would be 4
    waits = [r.getMessage() for r in caplog.records]
    assert waits == [f"waiting for {silent.url} (attempt {n}/3) ..." for n in (2, 3)]
    msg = err.value.message
    assert msg.startswith(f"HEAD s3://wh-test/p/blobs/0: cannot reach {silent.url}: ")
    assert "ReadTimeoutError (3 attempts, each waiting up to 0.5 s" in msg
    assert "raise `timeout` in [store] (now 0.5 s)" in (err.value.hint or "")
    # known gone: every later call fails at once, without a connection
    for call in (lambda: bucket.head("blobs/1"), lambda: bucket.get_bytes("built/k.json")):
        with pytest.raises(StoreError, match="cannot reach"):
            call()
    assert silent.connections == 3


def test_build_with_a_silent_store_ends_with_exit_14(
    locked: Wheelhouse, project: Path, silent: SilentServer
) -> None:
    store = f'[store]\nurl = "s3://wh-test/team"\nendpoint-url = "{silent.url}"\ntimeout = 1\n'
    config = project / "wheelhouse.toml"
    config.write_text(config.read_text() + store)
    res = locked("build", check=False, timeout=GUARD)
    assert res.returncode == 14, res.stderr
    err = res.stderr
    assert f"waiting for {silent.url} (attempt 2/3) ..." in err
    assert f"waiting for {silent.url} (attempt 3/3) ..." in err
    assert "attempt 4" not in err and "Traceback" not in err
    assert f"cannot reach {silent.url}: ReadTimeoutError (3 attempts" in err
    assert "hint: nothing half-written is visible there" in err
    # two blobs asked for in parallel at most: the rest failed without a connection
    assert silent.connections <= 2 * ATTEMPTS
    assert not (project / "wheelhouse").exists()


def test_publish_to_a_silent_endpoint_ends_with_exit_14(
    locked: Wheelhouse, project: Path, silent: SilentServer
) -> None:
    locked("build", timeout=GUARD)
    res = locked(
        "--set", "store.url=s3://wh-test/cache", "--set", "store.timeout=1",
        "publish", "-t", "slim", "s3://wh-site/prod", "--endpoint-url", silent.url,
        check=False, timeout=GUARD,
    )  # fmt: skip
    assert res.returncode == 14, res.stderr
    assert f"LIST s3://wh-site/prod/slim/: cannot reach {silent.url}" in res.stderr
    assert f"waiting for {silent.url} (attempt 3/3)" in res.stderr
    assert "Traceback" not in res.stderr


# -- resolvers -----------------------------------------------------------------------------


@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_a_resolver_stuck_in_a_metadata_hook_is_stopped(
    wh: Wheelhouse, project: Path, fresh_index: LocalIndex, tmp_path: Path, resolver: str
) -> None:
    filename, data = sleepy_sdist("stuckpkg", metadata_sleep=600)
    fresh_index.add_bytes(filename, data)
    write(project / "wheelhouse.toml", _config(fresh_index, '\n[timeouts]\nresolve = "3s"\n'))
    (project / "wheelhouse.toml").write_text(
        f'resolver = "{resolver}"\n' + (project / "wheelhouse.toml").read_text()
    )
    write(project / "requirements.in", "gamma\nstuckpkg\n")
    pids = tmp_path / "pids"
    res = wh("lock", check=False, timeout=GUARD, env={"WHEELHOUSE_TEST_PIDS": str(pids)})
    assert res.returncode == 6, res.stderr
    tool = "pip-compile" if resolver == "pip" else "uv"
    assert f"{tool} did not finish resolving target 'slim' within 3 s" in res.stderr
    assert "--set timeouts.resolve=12" in res.stderr and "Traceback" not in res.stderr
    # the hook ran (in a process pip or uv started) and was killed with the resolver
    hooks = [int(p) for p in pids.read_text().split()]
    assert hooks and all(ended(p) for p in hooks)
    assert not (project / "locks/slim.txt").exists()
