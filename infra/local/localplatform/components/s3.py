"""An S3-compatible bucket for the log-level export: moto's standalone server.

On a cluster or with docker-compose the export writes to a real S3, MinIO or Ceph; here moto's
server (`moto[server]`, pinned in requirements/dev.txt) is a real HTTP S3 endpoint. It keeps
objects in memory: a restart is an empty store (so the bucket is made again after every start),
which is why the tests stand in for an outage by stopping the process (SIGSTOP), not by
restarting it. It listens where function replicas reach it (the bridge address, when present),
and tools on the host use the same address.
"""

from __future__ import annotations

import os
import signal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..component import Command, Component
from ..profile import REPO_ROOT
from . import _addresses

BUCKET = "ads-log-export"
REGION = "us-east-1"
MOTO_SERVER = REPO_ROOT / ".venv" / "bin" / "moto_server"


class S3(Component):
    name = "s3"
    start_timeout_s = 30.0

    def host(self) -> str:
        return _addresses.bridge_ip_if_present(self.profile) or "127.0.0.1"

    def command(self) -> Command:
        return Command(
            [str(MOTO_SERVER), "-H", self.host(), "-p", str(self.profile.ports.s3)],
            env={"MOTO_S3_DEFAULT_MAX_KEYS": "1000"},
        )

    def address(self) -> str:
        return f"http://{self.host()}:{self.profile.ports.s3}"

    def client(self, **config: object) -> object:
        """A boto3 S3 client for tests and tools (moto accepts any credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.address(),
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 (moto checks no credentials)
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2, **config),
        )

    def healthy(self) -> bool:
        try:
            self.client().list_buckets()  # type: ignore[attr-defined]
        except (BotoCoreError, ClientError):
            return False
        return True

    def after_start(self) -> None:
        """The export's bucket, made again after every start (moto keeps nothing)."""
        client = self.client()
        try:
            client.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise

    def pause(self) -> None:
        """An outage: the process stops answering (connections hang) but keeps its objects."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        pid = self.pid()
        if pid is None:
            raise RuntimeError("s3 (moto) is not running")
        os.killpg(pid, sig)
