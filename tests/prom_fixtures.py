"""Debian's Prometheus components on loopback for the export tests: free ports, temp dirs, and
every process stopped at teardown."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (.ci/run installs it)")
    return path


class Proc:
    """A started component: its URL, and a stop that never leaves it behind."""

    def __init__(self, args: list[str], url: str, ready_path: str, log: Path, timeout_s: float = 30.0,
                 env: dict[str, str] | None = None):  # fmt: skip
        self.url = url
        self.log = log
        with open(log, "wb") as out:
            self.p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.p.poll() is not None:
                raise RuntimeError(f"{args[0]} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + ready_path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{args[0]} not ready in {timeout_s} s: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


def start_node_exporter(tmp: Path, textfile_dir: Path) -> Proc:
    port = free_port()
    return Proc([need("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{port}",
                 "--collector.disable-defaults", "--collector.textfile",
                 f"--collector.textfile.directory={textfile_dir}"],
                f"http://127.0.0.1:{port}", "/metrics", tmp / "node-exporter.log")  # fmt: skip


def start_prometheus(tmp: Path, scrape: str) -> Proc:
    port = free_port()
    cfg = tmp / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: node\n    static_configs:\n"
        f"      - targets: ['{scrape}']\n"
    )
    (tmp / "tsdb").mkdir(exist_ok=True)
    return Proc([need("prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                f"http://127.0.0.1:{port}", "/-/ready", tmp / "prometheus.log", timeout_s=60)  # fmt: skip


def start_pushgateway(tmp: Path) -> Proc:
    port = free_port()
    return Proc([need("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"],
                f"http://127.0.0.1:{port}", "/-/ready", tmp / "pushgateway.log")
