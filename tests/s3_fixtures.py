"""S3 on loopback for tests: moto's server in a thread (awscrt installed, so CRC64NVME is real).

``moto_s3`` is one server for the session; ``killable_s3`` is a server of its own that a test
can kill (listening socket and open keep-alive connections closed, so clients see refused
connections) and restart on the same port. Moto keeps objects in process memory, so a
restarted server still holds what arrived before the kill.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_ENV = "LLM_UPKEEP_TEST_S3_KEY"
SECRET_ENV = "LLM_UPKEEP_TEST_S3_SECRET"


class MotoS3:
    def __init__(self) -> None:
        self.port = 0
        self._server: ThreadedMotoServer | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        srv = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        srv.start()
        self.port = srv.get_host_and_port()[1]
        inner = srv._server
        assert inner is not None
        orig = inner.get_request

        def get_request():
            sock, addr = orig()
            with self._lock:
                self._conns.add(sock)
            return sock, addr

        inner.get_request = get_request  # type: ignore[method-assign]
        self._server = srv

    def kill(self) -> None:
        """Stop accepting and cut every open connection, like a crashed server."""
        srv = self._server
        if srv is None:
            return
        inner = srv._server
        assert inner is not None
        inner.shutdown()
        inner.server_close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = None

    def restart(self) -> None:
        self.start()

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}),
        )

    def new_bucket(self) -> str:
        name = f"bkt-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_s3():
    s3 = MotoS3()
    s3.start()
    yield s3
    s3.kill()


@pytest.fixture
def killable_s3():
    s3 = MotoS3()
    s3.start()
    yield s3
    s3.kill()


@pytest.fixture
def s3_env(monkeypatch):
    """Credentials through env var names (as the config names them), no ~/.aws influence."""
    monkeypatch.setenv(ACCESS_ENV, "testing")
    monkeypatch.setenv(SECRET_ENV, "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return {"access_key_id_env": ACCESS_ENV, "secret_access_key_env": SECRET_ENV}
