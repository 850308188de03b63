"""The scheduled-restart flow end to end: a real restart command (tests/restart_sim.py stops the
simulator process and starts a new one on the same port) and the recovery probe that must wait
for the new process to answer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import tomli_w

from llm_upkeep.config import parse_config
from tests.llamacpp_fixtures import free_port

pytestmark = pytest.mark.prefect
HELPER = Path(__file__).with_name("restart_sim.py")
ROOT = Path(__file__).resolve().parents[1]


class Service:
    """A simulator running detached, like a systemd service, managed through tests/restart_sim.py."""

    def __init__(self, tmp_path: Path, name: str):
        self.name = name
        self.port = free_port()
        self.pid_file = tmp_path / f"{name}.pid"
        self.log = tmp_path / f"{name}.log"

    def args(self, action: str, *extra: str) -> list[str]:
        return [sys.executable, str(HELPER), action, "{target}", "--pid-file", str(self.pid_file),
                "--port", str(self.port), "--log", str(self.log), *extra]  # fmt: skip

    def run(self, action: str) -> None:
        cmd = [a.replace("{target}", self.name) for a in self.args(action)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30, env=child_env())

    @property
    def pid(self) -> int:
        return int(self.pid_file.read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/version", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not answer:\n{self.log.read_text()[-2000:]}")


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def alive(pid: int) -> bool:
    from tests.restart_sim import alive as _alive

    return _alive(pid)


@pytest.fixture
def services(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])  # the restart command's environment
    made: list[Service] = []

    def make(name: str) -> Service:
        s = Service(tmp_path, name)
        s.run("start")
        s.wait_ready()
        made.append(s)
        return s

    yield make
    for s in made:
        s.run("stop")


def write_config(tmp_path: Path, services: list[Service], restart: dict, staging: Service | None = None) -> str:
    endpoints = [{"name": s.name, "api": "ollama", "url": s.url, "model": "llama3:8b"} for s in services]
    if staging is not None:
        endpoints.append({"name": staging.name, "api": "ollama", "url": staging.url, "model": "llama3:8b",
                          "staging": True})  # fmt: skip
    data = {
        "state_dir": str(tmp_path / "state"),
        "endpoints": endpoints,
        "health": {"probe_max_tokens": 4, "ttft_alert_s": 2.0},
        # {target} is the endpoint name; the helper finds the service by the pid file it is given,
        # so one command serves one endpoint here (the flow is narrowed to it by `endpoints`).
        "restart": {"recover_timeout_s": 20.0, "max_per_day": 2, **restart},
    }
    path = tmp_path / "llm-upkeep.toml"
    path.write_text(tomli_w.dumps(data))
    parse_config(data, str(path))
    return str(path)


def run_flow(config_path: str, endpoints: list[str] | None = None):
    from flows.scheduled_restart import scheduled_restart

    return asyncio.run(scheduled_restart(config_path=config_path, endpoints=endpoints))


def ledger(tmp_path: Path) -> list[dict]:
    path = next((tmp_path / "state").rglob("restart*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_restart_really_restarts_and_the_probe_waits_for_the_server(prefect_harness, services, tmp_path):
    a = services("a")
    staging = services("staging")
    before, staging_pid = a.pid, staging.pid
    cfg = write_config(tmp_path, [a], {"dry_run": False, "command": a.args("restart")}, staging=staging)
    result = run_flow(cfg)
    assert result.status == "ok", result
    (action,) = result.actions  # the staging endpoint is never restarted by the schedule
    assert action.target == "a" and action.decision == "executed" and action.returncode == 0
    assert action.recovered is True and action.recovery_s is not None
    # A real restart: the old process is gone, a new one serves the same port.
    assert a.pid != before and not alive(before) and alive(a.pid)
    assert staging.pid == staging_pid and alive(staging_pid)
    events = ledger(tmp_path)
    assert [e.get("event") for e in events] == [None, "recovery"]
    assert events[1]["recovered"] is True


def test_a_server_that_does_not_come_back_is_degraded(prefect_harness, services, tmp_path):
    a = services("a")
    before = a.pid
    cfg = write_config(tmp_path, [a], {"dry_run": False, "command": a.args("restart", "--no-start"),
                                       "recover_timeout_s": 3.0})  # fmt: skip
    t0 = time.monotonic()
    result = run_flow(cfg)
    assert result.status == "degraded", result
    (action,) = result.actions
    assert action.decision == "executed" and action.recovered is False and action.recovery_s is None
    assert not alive(before)
    assert time.monotonic() - t0 < 60  # gave up after recover_timeout_s, did not hang


def test_dry_run_and_the_budget_leave_the_server_alone(prefect_harness, services, tmp_path):
    a, b = services("a"), services("b")
    pids = (a.pid, b.pid)
    cfg = write_config(tmp_path, [a, b], {"dry_run": True, "command": a.args("restart")})
    result = run_flow(cfg, endpoints=["a"])  # the parameter narrows to one endpoint
    assert result.status == "ok"
    assert [(x.target, x.decision, x.recovered) for x in result.actions] == [("a", "dry_run", None)]
    cfg = write_config(tmp_path, [a], {"dry_run": False, "max_per_day": 0, "command": a.args("restart")})
    result = run_flow(cfg)
    assert result.status == "degraded"
    assert [(x.decision, x.recovered) for x in result.actions] == [("over_budget", None)]
    assert (a.pid, b.pid) == pids and alive(pids[0]) and alive(pids[1])
