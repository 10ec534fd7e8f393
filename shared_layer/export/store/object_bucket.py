"""An S3-compatible bucket (AWS S3, MinIO, Ceph, moto) through boto3: the export's destination.

Narrow on purpose: check that the bucket is there and ours, put an object and verify it, read
one back, list and delete under a prefix. Errors say whose fault they are: `BucketMisconfigured`
(wrong bucket, endpoint or credentials: fix the settings; raised by `check` at start-up) and
UpstreamUnavailable (the store does not answer: try again later).

Example::

    bucket = Bucket(BucketConfig(endpoint_url="http://127.0.0.1:9000", bucket="ads-log-export",
                                 region="us-east-1", access_key_id=key, secret_access_key=secret))
    bucket.check()                      # at start: raises BucketMisconfigured with the reason
    bucket.put_verified("a/b.json.gz", body, sha256=digest)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared_layer.kernel.errors import AdServerError, UpstreamFailed, UpstreamUnavailable

__all__ = ["Bucket", "BucketConfig", "BucketMisconfigured"]

_DELETE_BATCH: Final = 1000  # S3's limit per DeleteObjects call
_CREDENTIAL_CODES: Final = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken"}
)


class BucketMisconfigured(AdServerError):
    """The bucket's settings are wrong (no such bucket, credentials refused, bad endpoint)."""

    status = 500
    code = "INTERNAL"


@dataclass(frozen=True, slots=True)
class BucketConfig:
    endpoint_url: str | None  # None: AWS's own endpoint for the region
    bucket: str
    region: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 10.0
    attempts: int = 3


class Bucket:
    """One bucket; thread-safe (boto3 clients are)."""

    def __init__(self, config: BucketConfig) -> None:
        self.config = config
        self.name = config.bucket
        self._s3: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            config=Config(
                connect_timeout=config.connect_timeout_s,
                read_timeout=config.read_timeout_s,
                retries={"max_attempts": config.attempts, "mode": "standard"},
                s3={"addressing_style": "path"},  # MinIO and moto without DNS names
            ),
        )

    @property
    def where(self) -> str:
        return f"bucket {self.name!r} at {self.config.endpoint_url or 'AWS ' + self.config.region}"

    def check(self) -> None:
        """The bucket exists and these credentials may use it; else BucketMisconfigured saying
        which of the two is wrong (or UpstreamUnavailable when nothing answers)."""
        try:
            self._s3.head_bucket(Bucket=self.name)
            self._s3.list_objects_v2(Bucket=self.name, MaxKeys=1)
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise BucketMisconfigured(f"{self.where} does not exist") from exc
            if code in _CREDENTIAL_CODES:
                raise BucketMisconfigured(
                    f"{self.where}: the credentials were refused ({code}); check the "
                    "export-s3-access-key-id and export-s3-secret-access-key secrets"
                ) from exc
            raise BucketMisconfigured(f"{self.where}: {code} {exc}") from exc
        except BotoCoreError as exc:
            raise UpstreamUnavailable(f"{self.where} cannot be reached: {exc}") from exc

    def put_verified(self, key: str, body: bytes, *, sha256: str, content_type: str) -> None:
        """Put one object, then read its metadata back: the size, our sha256 and (for a plain
        PUT) the ETag, which is the MD5 of the bytes the store received, must match."""
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        self._call(
            "put_object",
            Bucket=self.name,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata={"sha256": sha256},
        )
        head = self._call("head_object", Bucket=self.name, Key=key)
        etag = str(head.get("ETag", "")).strip('"')
        if (
            head.get("ContentLength") != len(body)
            or head.get("Metadata", {}).get("sha256") != sha256
            or (len(etag) == 32 and "-" not in etag and etag != md5)
        ):
            raise UpstreamFailed(f"{self.where}: {key} does not read back as written")

    def get(self, key: str) -> bytes:
        answer = self._call("get_object", Bucket=self.name, Key=key)
        try:
            return answer["Body"].read()
        except BotoCoreError as exc:
            raise UpstreamUnavailable(f"{self.where}: reading {key} failed: {exc}") from exc

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", Bucket=self.name, Prefix=prefix, **token)
            found.extend(o["Key"] for o in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return found
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def delete(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        for start in range(0, len(batch), _DELETE_BATCH):
            chunk = [{"Key": k} for k in batch[start : start + _DELETE_BATCH]]
            self._call("delete_objects", Bucket=self.name, Delete={"Objects": chunk, "Quiet": True})

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._s3, operation)(**params)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500:
                raise UpstreamUnavailable(f"{self.where}: {operation} failed: {exc}") from exc
            raise UpstreamFailed(f"{self.where}: {operation} refused: {exc}") from exc
        except BotoCoreError as exc:
            raise UpstreamUnavailable(f"{self.where}: {operation} failed: {exc}") from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
