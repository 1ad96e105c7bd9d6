"""A real S3-protocol server on loopback for the store and publish tests (imported by
conftest.py).

moto's server mode (`moto_server`, from the `moto[server]` test extra) speaks the S3 REST
protocol over HTTP, with conditional writes (If-None-Match), ETags, bucket policies and,
when asked, signature/credential checks. It runs as its own process, so a test can
stop it (SIGSTOP) in the middle of an upload and let it go on afterwards with its state
intact, or kill it. Nothing here skips: moto is a test dependency.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["S3_ENV", "MotoServer", "moto_server", "plant_build", "s3_bucket"]

# Credentials for the moto server with checks off (any key works); isolate from ~/.aws.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "wheelhouse-test",
    "AWS_SECRET_ACCESS_KEY": "wheelhouse-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """`moto_server` on 127.0.0.1, in its own process."""

    def __init__(self, log: Path, *, check_credentials: bool = False) -> None:
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        assert binary, "moto_server not found: pip install 'moto[server]' (the test extra)"
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        if check_credentials:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # every request is authenticated
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise AssertionError(f"moto_server did not start: {log.read_text()}") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )

    def bucket(self, public: bool = False) -> str:
        name = f"wh-{secrets.token_hex(6)}"
        s3 = self.client()
        s3.create_bucket(Bucket=name)
        if public:  # anonymous GET, as a static website bucket has
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{name}/*",
                    }
                ],
            }
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        return name

    def keys(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        s3 = self.client()
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        return out

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.close()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    """A new, empty bucket of this test's own on the session's server."""
    return moto_server.bucket()


def plant_build(
    server: MotoServer,
    bucket: str,
    *,
    wheel: bytes,
    filename: str,
    build_key: str,
    sdist: str,
    built: Mapping[str, Any],
    pure: Mapping[str, Any],
    prefix: str = "team",
) -> None:
    """A wheel and the two records that lead a store to it, put into `bucket` under `prefix`
    as the store lays them out (store/s3.py): the blob whole under its own sha256 with its
    file name, `built/<build_key>.json` and `pure/<sdist's sha256>.json`. What someone with
    write access to a team's bucket can leave there; the tests say whether it is used."""
    client = server.client()
    sha = hashlib.sha256(wheel).hexdigest()
    client.put_object(
        Bucket=bucket,
        Key=f"{prefix}/blobs/{sha}",
        Body=wheel,
        Metadata={"filename": urllib.parse.quote(filename), "sha256": sha},
    )
    client.put_object(Bucket=bucket, Key=f"{prefix}/built/{build_key}.json", Body=json.dumps(built))
    client.put_object(Bucket=bucket, Key=f"{prefix}/pure/{sdist}.json", Body=json.dumps(pure))
