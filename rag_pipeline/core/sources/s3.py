"""An S3-compatible bucket prefix as a source: its configuration, listing and reads.

Works with any store speaking the S3 API (AWS, MinIO, Ceph, R2, GCS in interoperability
mode): ListObjectsV2 for the listing, GetObject for the bytes. Credentials come from named
environment variables only; the configuration holds their prefix, never a secret.
"""

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

# A prefix of environment variable names: <PREFIX>_ACCESS_KEY_ID, <PREFIX>_SECRET_ACCESS_KEY
# and, optionally, <PREFIX>_SESSION_TOKEN.
CREDENTIALS_ENV = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-_]{1,254}")


class SourceError(Exception):
    """A source that cannot be synced as configured, or could not be reached; one line."""


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    credentials_env: str | None = None

    def __post_init__(self) -> None:
        if not _BUCKET.fullmatch(self.bucket):
            raise SourceError(f"{self.bucket!r} is not a bucket name")
        if self.credentials_env is not None and not CREDENTIALS_ENV.fullmatch(self.credentials_env):
            raise SourceError(
                "credentials_env is the prefix of environment variable names "
                "(<PREFIX>_ACCESS_KEY_ID, <PREFIX>_SECRET_ACCESS_KEY): capitals, digits and '_'"
            )
        if self.endpoint_url is not None and not self.endpoint_url.startswith(
            ("http://", "https://")
        ):
            raise SourceError("endpoint_url must be an http:// or https:// URL")

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "S3Config":
        return cls(
            **{k: config.get(k) for k in ("endpoint_url", "region", "credentials_env")},
            bucket=config["bucket"],
            prefix=config.get("prefix") or "",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    last_modified: float
    size: int


def credentials(config: S3Config, environ: Mapping[str, str]) -> dict[str, str]:
    """boto3's credential arguments from the environment; none without credentials_env (then
    boto3's own chain applies: AWS_* variables, a profile, an instance role)."""
    if config.credentials_env is None:
        return {}
    prefix = config.credentials_env
    names = {
        "aws_access_key_id": f"{prefix}_ACCESS_KEY_ID",
        "aws_secret_access_key": f"{prefix}_SECRET_ACCESS_KEY",
    }
    missing = [name for name in names.values() if not environ.get(name)]
    if missing:
        raise SourceError(f"credentials_env names {', '.join(missing)}, which is not set")
    found = {arg: environ[name] for arg, name in names.items()}
    if environ.get(f"{prefix}_SESSION_TOKEN"):
        found["aws_session_token"] = environ[f"{prefix}_SESSION_TOKEN"]
    return found


class Bucket:
    """One bucket prefix, read through boto3 with bounded timeouts and retries."""

    def __init__(
        self, config: S3Config, environ: Mapping[str, str], timeout_s: float = 30.0
    ) -> None:
        self.config = config
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region or "us-east-1",
            config=Config(
                connect_timeout=min(timeout_s, 10.0),
                read_timeout=timeout_s,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
            **credentials(config, environ),
        )

    def probe(self) -> None:
        """One listing request of at most one key: SourceError, in the words of the store,
        when the bucket cannot be listed with these credentials."""
        try:
            self.client.list_objects_v2(
                Bucket=self.config.bucket, Prefix=self.config.prefix, MaxKeys=1
            )
        except (BotoCoreError, ClientError, HTTPError, OSError) as exc:
            raise SourceError(
                f"listing s3://{self.config.bucket}/{self.config.prefix}: {exc}"
            ) from exc

    def list(self) -> list[ObjectInfo]:
        """Every object under the prefix, by key; a listing cut short raises SourceError, so
        a partial listing never reads as objects deleted."""
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.config.bucket, Prefix=self.config.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue  # a folder marker, not an object
                    found.append(
                        ObjectInfo(
                            key=item["Key"],
                            etag=item["ETag"].strip('"'),
                            last_modified=item["LastModified"].timestamp(),
                            size=int(item["Size"]),
                        )
                    )
        except (BotoCoreError, ClientError, HTTPError, OSError) as exc:
            raise SourceError(
                f"listing s3://{self.config.bucket}/{self.config.prefix}: {exc}"
            ) from exc
        return sorted(found, key=lambda obj: obj.key)

    def read(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes; more than `max_bytes` raises ValueError as soon as the stream
        passes the cap, whatever the listing said its size was."""
        try:
            body = self.client.get_object(Bucket=self.config.bucket, Key=key)["Body"]
            chunks, total = [], 0
            for chunk in body.iter_chunks(1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    body.close()
                    raise ValueError(f"larger than the limit of {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        except (BotoCoreError, ClientError, HTTPError, OSError) as exc:
            raise SourceError(f"reading s3://{self.config.bucket}/{key}: {exc}") from exc
