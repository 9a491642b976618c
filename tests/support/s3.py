"""An S3 API server on loopback (moto's, in a thread), and buckets filled from the corpus.

boto3 talks HTTP to it as to any S3-compatible store. moto keeps its buckets in this process,
so a server stopped and started again on the same port serves the same objects: what a store
that went away and came back looks like to a sync.
"""

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

CREDENTIALS_ENV = "TEST_S3"
ACCESS_KEY, SECRET_KEY = "test-access-key", "test-secret-do-not-show"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self) -> str:
        name = f"docs-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A running S3 server, and the credentials a source names with credentials_env."""
    monkeypatch.setenv(f"{CREDENTIALS_ENV}_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv(f"{CREDENTIALS_ENV}_SECRET_ACCESS_KEY", SECRET_KEY)
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()
