"""`llm-upkeep run daily-health` through the warm background runner: reused, replaced when the
environment changes, its own Prefect server when none is configured, one line when that fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
import tomli_w

from llm_upkeep.sim.llm_server import SimBehavior, SimServer

IDLE = {"LLM_UPKEEP_CLI_IDLE_S": "20", "LLM_UPKEEP_CLI_BACKGROUND": "1"}  # conftest turns it off elsewhere


def cli(args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "llm_upkeep.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def write_config(tmp_path, url):
    data = {"state_dir": str(tmp_path / "state"), "gpu": {"enabled": False},
            "endpoints": [{"name": "a", "api": "ollama", "url": url, "model": "llama3:8b"}],
            "health": {"probe_retries": 0, "disk_paths": [str(tmp_path)]}}  # fmt: skip
    p = tmp_path / "c.toml"
    p.write_text(tomli_w.dumps(data))
    return str(p)


def runner(tmp_path) -> dict:
    return json.loads((tmp_path / "state" / "cli" / "runner.json").read_text())


def stop_runner(tmp_path) -> None:
    """Ask it to leave (a request with a fingerprint it does not have) so no test leaves one behind."""
    from llm_upkeep.background import _ask

    sock = tmp_path / "state" / "cli" / "run.sock"
    if sock.exists():
        _ask(sock, {"fingerprint": "leave"}, 10)


@pytest.fixture
def api_env(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, **IDLE, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_TO_API_ENABLED": "false"}


def test_runner_is_reused_and_replaced_when_the_environment_changes(api_env, tmp_path):
    with SimServer(SimBehavior(ttft_s=0.05, itl_s=0.01, tokens=16)) as sim:
        cfg = write_config(tmp_path, sim.url)
        try:
            r1 = cli(["run", "daily-health", "--config", cfg, "--json"], api_env)
            assert r1.returncode == 0, r1.stderr[-3000:]
            assert json.loads(r1.stdout)["status"] == "ok"
            assert "background runner" in r1.stderr and "Traceback" not in r1.stderr
            pid = runner(tmp_path)["pid"]
            r2 = cli(["run", "daily-health", "--config", cfg], api_env)
            assert r2.returncode == 0 and r2.stdout.startswith("daily-health: OK")
            assert runner(tmp_path)["pid"] == pid, "the warm runner answered the second run"
            r3 = cli(["run", "daily-health", "--config", cfg, "--json"], {**api_env, "T15_SOMETHING_NEW": "1"})
            assert r3.returncode == 0, r3.stderr[-3000:]
            assert runner(tmp_path)["pid"] != pid, "a runner started with other settings is not used"
            r4 = cli(["run", "daily-health", "--config", cfg, "--json", "--in-process"], api_env)
            assert r4.returncode == 0 and "background runner" not in r4.stderr
        finally:
            stop_runner(tmp_path)


def test_server_that_cannot_start_is_one_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(IDLE, LLM_UPKEEP_SERVER_START_TIMEOUT_S="0.2")
    cfg = write_config(tmp_path, "http://127.0.0.1:9")
    r = cli(["run", "daily-health", "--config", cfg, "--json"], env)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("llm-upkeep: cannot start the local Prefect server")
    assert "did not answer within 0.2 s" in lines[0]


def test_without_a_server_the_runner_starts_one_and_the_run_stays_in_its_ui(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(IDLE)
    with SimServer(SimBehavior(ttft_s=0.05, itl_s=0.01, tokens=16)) as sim:
        cfg = write_config(tmp_path, sim.url)
        try:
            r = cli(["run", "daily-health", "--config", cfg, "--json"], env)
            assert r.returncode == 0, r.stderr[-3000:]
            assert "Traceback" not in r.stderr and "Error flushing" not in r.stderr
            api = runner(tmp_path)["api_url"]
            assert api.startswith("http://127.0.0.1:")
            t0 = time.monotonic()
            while True:  # the server stores runs a little after the client finishes
                runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 10}, timeout=10).json()
                done = [x for x in runs if x["state_type"] == "COMPLETED"]
                if done or time.monotonic() - t0 > 30:
                    break
                time.sleep(0.5)
            assert len(done) == 1
        finally:
            stop_runner(tmp_path)
