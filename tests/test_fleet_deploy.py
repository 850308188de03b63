"""`llm-upkeep deploy` against a real Prefect server (the test harness's), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import tomli_w

from llm_upkeep.deploy import load_deployments, project_dir

pytestmark = pytest.mark.prefect
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def api_url(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def deploy(
    api_url: str, *args: str, timeout: float = 400, retries: bool = True
) -> tuple[int, dict | None, str]:
    # Prefect's client retries a 503, which a busy SQLite-backed server answers now and then (seen on
    # a loaded 2-core machine); only the no-server test turns retries off, to fail fast.
    env = dict(os.environ, PREFECT_API_URL=api_url)
    if not retries:
        env["PREFECT_CLIENT_MAX_RETRIES"] = "0"
    env.pop("LLM_UPKEEP_CONFIG", None)
    p = subprocess.run(
        [sys.executable, "-m", "llm_upkeep.cli", "deploy", "--json", *args],
        cwd="/", env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    try:
        doc = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    return p.returncode, doc, p.stdout + p.stderr


def get(api_url: str, path: str, body: dict | None = None):
    r = httpx.post(f"{api_url}{path}", json=body or {}, timeout=30)
    r.raise_for_status()
    return r.json()


def test_deploy_registers_every_deployment_with_schedule_pool_and_pull_step(api_url):
    rc, doc, out = deploy(api_url, "--pool", "upkeep-test")
    assert rc == 0, out[-4000:]
    assert doc["ok"] and doc["created_pools"] == ["upkeep-test"]
    pool = httpx.get(f"{api_url}/work_pools/upkeep-test", timeout=10).json()
    assert pool["type"] == "process"
    expected = {s.name: s for s in load_deployments(project_dir())}
    found = {
        d["name"]: d for d in get(api_url, "/deployments/filter") if d["work_pool_name"] == "upkeep-test"
    }
    assert set(expected) <= set(found)
    for name, spec in expected.items():
        d = found[name]
        got = sorted(
            (s["schedule"].get("cron"), s["schedule"]["timezone"], s["active"]) for s in d["schedules"]
        )
        assert got == sorted((s.cron, s.timezone, s.active) for s in spec.schedules), name
        assert d["entrypoint"] == spec.entrypoint
        # prefect deploy resolves {{ $LLM_UPKEEP_PROJECT_DIR }} when it registers: the checkout deployed
        # from, so every host keeps its checkout at that same path (docs/operations.md).
        step = d["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
        assert step["directory"] == str(project_dir())
    # Deploying again updates in place: same deployments, pool not re-created.
    rc, doc2, out = deploy(api_url, "--pool", "upkeep-test")
    assert rc == 0 and doc2["created_pools"] == [], out[-3000:]
    again = [d for d in get(api_url, "/deployments/filter") if d["work_pool_name"] == "upkeep-test"]
    assert len(again) == len(found)


def test_deploy_without_a_server_says_so(tmp_path):
    rc, doc, out = deploy("http://127.0.0.1:9/api", "--pool", "x", timeout=120, retries=False)
    assert rc == 1
    assert doc == {"ok": False, "error": doc["error"]} and "cannot reach the Prefect server" in doc["error"]
    assert "Traceback" not in out


def test_fleet_deploy_puts_host_work_on_host_queues(api_url, tmp_path):
    specs = {s.name: s for s in load_deployments(project_dir())}
    daily, sampling = specs["daily-health"], specs["gpu-sampling"]
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(
        tomli_w.dumps(
            {
                "endpoints": [
                    {
                        "name": "a",
                        "api": "ollama",
                        "url": "http://127.0.0.1:1",
                        "model": "m",
                        "host": "gpu-a",
                    },
                    {
                        "name": "b",
                        "api": "ollama",
                        "url": "http://127.0.0.1:2",
                        "model": "m",
                        "host": "gpu-b",
                    },
                ],
                "fleet": {"work_pool": "fleet-test", "hosts": [{"name": "gpu-a"}, {"name": "gpu-b"}]},
            }
        )
    )
    rc, doc, out = deploy(api_url, "--config", str(cfg))
    assert rc == 0, out[-4000:]
    found = {d["name"]: d for d in get(api_url, "/deployments/filter") if d["work_pool_name"] == "fleet-test"}
    assert found["daily-health"]["work_queue_name"] == "central"
    assert found["daily-health"]["parameters"] == {"scope": "central"}
    for h in ("gpu-a", "gpu-b"):
        d = found[f"daily-health-{h}"]
        assert d["work_queue_name"] == f"host-{h}"
        assert d["parameters"] == {"scope": "host", "host": h}
        assert d["schedules"] == []  # dispatched by the central run, never on its own schedule
        s = found[f"gpu-sampling-{h}"]
        assert (s["work_queue_name"], s["parameters"]) == (f"host-{h}", {"host": h})
        assert s["schedules"][0]["schedule"]["cron"] == sampling.schedules[0].cron  # one schedule, prefect.yaml's
    assert found["daily-health"]["schedules"][0]["schedule"]["cron"] == daily.schedules[0].cron
    assert "gpu-sampling" not in found  # NVML exists only on the hosts
    queues = {q["name"] for q in get(api_url, "/work_pools/fleet-test/queues/filter")}
    assert {"central", "host-gpu-a", "host-gpu-b"} <= queues


def test_a_partial_registration_names_prefects_error_in_the_json():
    from llm_upkeep.deploy import DeployReport

    out = (
        "View Deployment in UI: http://127.0.0.1:1/deployments/x\nTraceback (most recent call last):\n"
        '  File "runner.py", line 504, in _create\nprefect.deployments.runner.DeploymentApplyError: '
        "Error while applying deployment: Server error '503 Service Unavailable'\n\n"
    )
    doc = DeployReport("http://127.0.0.1:1/api", ["p"], [], missing=["runbook"], output=out).to_json()
    assert doc["ok"] is False and doc["error"].startswith("prefect.deployments.runner.DeploymentApplyError")
    assert "error" not in DeployReport("http://127.0.0.1:1/api", ["p"], [], output=out).to_json()
