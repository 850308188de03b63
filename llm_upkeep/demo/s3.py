"""The demo's S3: a moto server on loopback with the backup bucket made, and the demo's keys."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from llm_upkeep.demo.settings import BUCKET

ACCESS_KEY, SECRET_KEY = "demo-access-key", "demo-secret-key"


class S3Service:
    def __init__(self) -> None:
        self.server: Any = None
        self.url = ""

    def start(self, say: Callable[[str], None]) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        s3.start()
        self.server = s3
        self.url = f"http://127.0.0.1:{s3.get_host_and_port()[1]}"
        import boto3
        from botocore.config import Config as BotoConfig

        client = boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=BotoConfig(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}),
        )  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        say(f"  S3 server (moto)           {self.url}  (bucket {BUCKET})")

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop()
            self.server = None
