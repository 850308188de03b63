"""The demo as a black box: `llm-upkeep demo` in a subprocess, read like a newcomer reads it.

Every process the demo starts inherits a unique marker in its environment, so a test can
find any survivor after the demo stopped, however it was started (server, serve, flow runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER_ENV = "LLM_UPKEEP_DEMO_TEST_MARKER"
DEMO_UP_S = 900  # how long demo_stack waits for the whole demo to come up


def pytest_configure(config):
    config.addinivalue_line("markers", "demo: starts `llm-upkeep demo` (a Prefect server and its flows)")


def pytest_collection_modifyitems(config, items):
    """The first test to use demo_stack pays for starting the demo (2.5 min on an idle 2-core
    machine, over 5 min on a busy one): give it the time the fixture itself waits, not the
    suite's 300 s per test, which would fail every demo test on a slow machine."""
    for item in items:
        if "demo_stack" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEMO_UP_S + 300))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.environ().get(MARKER_ENV) == marker and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
    return found


def cmdline_of(p: psutil.Process) -> str:
    """The command line, or "" for a process that exited while we looked (short-lived ones do)."""
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


@dataclass
class DemoProcess:
    state_dir: Path
    port: int
    args: list[str] = field(default_factory=list)
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    lines: list[str] = field(default_factory=list)

    def start(self) -> DemoProcess:
        env = dict(os.environ)
        env[MARKER_ENV] = self.marker
        for k in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_LOGGING_TO_API_ENABLED", "LLM_UPKEEP_CONFIG"):
            env.pop(k, None)
        cmd = [sys.executable, "-m", "llm_upkeep.cli", "demo", "--state-dir", str(self.state_dir),
               "--port", str(self.port), *self.args]  # fmt: skip
        # Own session: the signals below reach the demo alone, as Ctrl-C in its terminal would.
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            if self.proc.poll() is not None:
                self._reader.join(5)
                return any(text in line for line in self.lines)
            time.sleep(0.2)
        return False

    def interrupt(self, sig: int = signal.SIGINT, timeout_s: float = 90.0) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self._reader.join(5)

    def survivors(self, settle_s: float = 5.0) -> list[psutil.Process]:
        """Processes still carrying the marker (after a short settle for exit races)."""
        deadline = time.monotonic() + settle_s
        while True:
            left = processes_with_marker(self.marker)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.25)

    def kill_survivors(self) -> None:
        for p in processes_with_marker(self.marker):
            with contextlib.suppress(psutil.Error):
                p.kill()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def summary(self) -> dict:
        return json.loads((self.state_dir / "demo-summary.json").read_text())


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory):
    """The full demo (every deployment of prefect.yaml), kept running for the tests that look at it."""
    demo = DemoProcess(tmp_path_factory.mktemp("demo") / "state", free_port()).start()
    try:
        if not demo.wait_for("Press Ctrl-C", timeout_s=DEMO_UP_S):
            pytest.fail(f"the demo did not come up (exit {demo.proc.poll()}):\n{demo.output[-6000:]}")
        yield demo
    finally:
        demo.interrupt()
        demo.kill_survivors()
