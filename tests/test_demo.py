"""The full demo, looked at through its console output and the Prefect API it leaves up.

One demo (every deployment of prefect.yaml) is shared by these tests and the browser test.
"""

from __future__ import annotations

import httpx
import pytest

from llm_upkeep.deploy import load_deployments, project_dir

pytestmark = pytest.mark.demo


def api(demo, path: str, body: dict | None = None):
    r = httpx.post(f"{demo.ui_url}/api{path}", json=body or {}, timeout=30)
    r.raise_for_status()
    return r.json()


def test_output_tells_a_newcomer_where_to_click(demo_stack):
    out = demo_stack.output
    u = demo_stack.ui_url
    assert f"the Prefect UI is at {u}" in out
    assert f"{u}/deployments" in out
    assert "open its Artifacts tab" in out and f"{u}/runs/flow-run/" in out
    assert f"{u}/artifacts/key/daily-health-report" in out
    assert "Press Ctrl-C to stop everything" in out
    # The Slack receiver printed the alert about the planted fault as it arrived.
    slack = [line for line in demo_stack.lines if line.startswith("[slack]")]
    assert any("vllm-slow" in line and "ttft" in line for line in slack), out[-4000:]


def test_every_deployment_is_registered_with_its_schedule(demo_stack):
    expected = {s.name: s for s in load_deployments(project_dir())}
    found = {d["name"]: d for d in api(demo_stack, "/deployments/filter")}
    assert set(expected) <= set(found)
    for name, spec in expected.items():
        got = sorted(
            (s["schedule"].get("cron"), s["schedule"].get("timezone"), s["active"])
            for s in found[name]["schedules"]
        )
        want = sorted((s.cron, s.timezone, s.active) for s in spec.schedules)
        assert got == want, name
        assert not found[name]["paused"], f"{name} paused: serve must not pause schedules"
    # The config the demo wrote reaches every flow that takes one, visibly.
    dh = found["daily-health"]
    assert dh["parameters"]["config_path"] == str(demo_stack.state_dir / "llm-upkeep-demo.toml")


def test_each_flow_ran_once_and_daily_health_reports_the_fault(demo_stack):
    summary = demo_stack.summary()
    runs = {r["deployment"]: r for r in summary["runs"]}
    assert set(runs) == {s.name for s in load_deployments(project_dir())}
    from llm_upkeep.demo import DEMO_SKIP

    not_ok = {
        n: (r["state"], r["message"])
        for n, r in runs.items()
        if r["state"] not in ("COMPLETED", "PAUSED") and not (r["state"] == "SKIPPED" and n in DEMO_SKIP)
    }
    assert not not_ok, not_ok
    run_id = runs["daily-health"]["run_id"]
    arts = api(demo_stack, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    by_key = {a["key"]: a for a in arts}
    assert {"daily-health-report", "daily-health-checks"} <= set(by_key)
    table = by_key["daily-health-checks"]["data"]
    rows = table if isinstance(table, list) else __import__("json").loads(table)
    ttft = {r["target"]: r for r in rows if r["check"] == "ttft"}
    assert ttft["ollama-healthy"]["status"] == "ok"
    assert ttft["vllm-slow"]["status"] == "alert" and ttft["vllm-slow"]["value"] >= 2.0


def test_flow_runs_leave_logs_in_the_ui(demo_stack):
    run_id = {r["deployment"]: r for r in demo_stack.summary()["runs"]}["daily-health"]["run_id"]
    logs = api(demo_stack, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
    assert any("daily health:" in entry["message"] for entry in logs)
