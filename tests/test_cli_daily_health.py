"""The CLI contract: one JSON object on stdout, logs on stderr, exit codes 0/1/2."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
import tomli_w

from llm_upkeep.clients import make_http_client
from llm_upkeep.config import load_config
from llm_upkeep.probe import probe_endpoint
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from tests.timing import as_true_as_bare, on_schedule


def cli(args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "llm_upkeep.cli", *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "LLM_UPKEEP_CLI_IDLE_S": "5", **(env or {})},  # background runners leave soon
    )  # fmt: skip


@pytest.fixture
def api_env(prefect_harness):
    """Point the CLI's flow at the session's test server instead of a new temporary one."""
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_TO_API_ENABLED": "false"}


async def bare_probes(endpoints, max_tokens):
    async with make_http_client() as http:
        return await asyncio.gather(*[probe_endpoint(e, http, max_tokens=max_tokens) for e in endpoints])


def write_config(tmp_path, endpoints, **extra):
    data = {"state_dir": str(tmp_path / "state"), "endpoints": endpoints, "gpu": {"enabled": False},
            "health": {"probe_retries": 0, "disk_paths": [str(tmp_path)]}, **extra}  # fmt: skip
    p = tmp_path / "c.toml"
    p.write_text(tomli_w.dumps(data))
    return p


def test_config_error_exit_2_names_key_and_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[health]\nttft_alert_s = 'soon'\n")
    r = cli(["run", "daily-health", "--config", str(p), "--json"])
    assert r.returncode == 2
    assert "health.ttft_alert_s" in r.stderr and str(p) in r.stderr
    assert "Traceback" not in r.stderr
    out = json.loads(r.stdout)
    assert out["error"] == "config" and out["key"] == "health.ttft_alert_s"


def test_usage_error_exit_2():
    assert cli(["run", "no-such-flow"]).returncode == 2


def test_json_contract_and_ttft_vs_playbook_curl(api_env, tmp_path):
    """True TTFT 300 ms, 20 ms between 60 tokens: ttft reads 0.30 s, e2e about 1.5 s; the
    playbook's curl (total time of a non-streamed request) reads about 1.5 s and calls it TTFT."""
    beh = SimBehavior(ttft_s=0.3, itl_s=0.02, tokens=60)
    with SimServer(beh) as a, SimServer(SimBehavior(ttft_s=0.3, itl_s=0.02, tokens=60)) as b:
        eps = [
            {"name": "ollama-a", "api": "ollama", "url": a.url, "model": beh.model},
            {"name": "openai-b", "api": "openai", "url": b.url, "model": beh.model},
        ]
        cfg = write_config(tmp_path, eps, health={"probe_retries": 0, "probe_max_tokens": 60,
                                                  "disk_paths": [str(tmp_path)]})  # fmt: skip
        eps = load_config(str(cfg)).endpoints
        before = asyncio.run(bare_probes(eps, 60))
        r = cli(["run", "daily-health", "--config", str(cfg), "--json"], env=api_env)
        assert r.returncode == 0, r.stderr[-3000:]
        out = json.loads(r.stdout)  # exactly one JSON document on stdout
        assert set(out) == {"flow", "status", "checks", "alerts", "actions"}
        assert out["flow"] == "daily-health" and out["status"] == "ok"
        for c in out["checks"]:
            assert set(c) == {"check", "target", "status", "value", "unit", "threshold", "detail"}
        checks = {(c["check"], c["target"]): c for c in out["checks"]}
        # The same servers probed bare just before and just after (the machine's delay of the
        # moment, on either side of the run): the flow's readings are as true, +- 10 ms.
        after = asyncio.run(bare_probes(eps, 60))
        for t, b0, b1 in zip(("ollama-a", "openai-b"), before, after, strict=True):
            ttft, e2e = checks[("ttft", t)]["value"], checks[("e2e_latency", t)]["value"]
            assert as_true_as_bare(ttft, 0.30, max(b0.ttft_s, b1.ttft_s)), (ttft, b0.ttft_s, b1.ttft_s)
            assert checks[("ttft", t)]["unit"] == "s"
            assert as_true_as_bare(e2e, 1.48, max(b0.e2e_s, b1.e2e_s)), (e2e, b0.e2e_s, b1.e2e_s)
        # The playbook's measurement: curl -w %{time_total} on a non-streamed request.
        t0 = time.perf_counter()
        httpx.post(f"{a.url}/api/generate", json={"model": beh.model, "prompt": "test", "stream": False,
                                                  "options": {"num_predict": 60}}, timeout=10)  # fmt: skip
        curl_total = time.perf_counter() - t0
        assert on_schedule(curl_total, 1.48, late=0.5)


def test_degraded_exit_1_and_human_summary(api_env, tmp_path):
    with SimServer(SimBehavior()) as a:
        a.set_fault("http_500")
        cfg = write_config(tmp_path, [{"name": "x", "api": "ollama", "url": a.url, "model": "llama3:8b"}])
        r = cli(["run", "daily-health", "--config", str(cfg), "--no-runbook"], env=api_env)
        assert r.returncode == 1, r.stderr[-2000:]
        assert "DEGRADED" in r.stdout and "endpoint_up" in r.stdout and "http_5xx" in r.stdout
        assert "Traceback" not in r.stderr
