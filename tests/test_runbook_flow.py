"""The runbook flow under the Prefect test harness: approval of a risky fix given through the
Prefect API (what the UI's resume form sends), a pause that times out, the incident report
artifact, chaining from daily health, the deployment and its automation, and the CLI contract."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import tomli_w
import yaml

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.health import HealthResult
from llm_upkeep.sim.llm_server import SimServer
from tests.runbook_fixtures import healthy_behavior, sim_endpoint

pytestmark = pytest.mark.prefect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_config(tmp_path, endpoints, **sections) -> str:
    data = {
        "state_dir": str(tmp_path / "state"), "endpoints": endpoints, "gpu": {"enabled": False},
        "health": {"disk_paths": [], "probe_retries": 0},
        "restart": {"dry_run": False, "command": []},
        "runbook": {"verify_timeout_s": 5.0, "verify_interval_s": 0.1, "approval_poll_s": 1},
    }  # fmt: skip
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    p = tmp_path / "runbook.toml"
    p.write_text(tomli_w.dumps(data))
    return str(p)


@pytest.fixture
def sim():
    s = SimServer(healthy_behavior()).start()
    yield s
    s.stop()


def run_in_thread(coro_fn):
    box: dict = {}

    def target():
        try:
            box["result"] = asyncio.run(coro_fn())
        except BaseException as exc:  # surfaced by the test
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    return t, box


async def paused_runbook_run(timeout_s: float = 60.0):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))  # fmt: skip
            if runs:
                return runs[0]
            await asyncio.sleep(0.3)
    raise AssertionError("the runbook never paused for approval")


async def artifact(key: str, flow_run_id=None):
    """The artifact under `key`, of this flow run when given (other tests write the same key)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    flt = ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
    if flow_run_id is not None:
        flt.flow_run_id = ArtifactFilterFlowRunId(any_=[flow_run_id])
    async with get_client() as client:
        arts = await client.read_artifacts(artifact_filter=flt)
    return arts[0] if arts else None


def test_risky_repull_waits_for_approval_given_in_the_ui(prefect_harness, tmp_path, sim, watchers):
    from prefect.flow_runs import resume_flow_run

    from flows.runbook import runbook

    sim.set_fault("gibberish")
    watchers(sim, lambda r: r["path"] == "/api/pull", lambda r: setattr(sim.behavior, "fault", None))
    cfg = write_config(tmp_path, [sim_endpoint(sim)], runbook={"approval_timeout_s": 60})
    t, box = run_in_thread(lambda: runbook(config_path=cfg))
    run = asyncio.run(paused_runbook_run())
    assert run.state.state_details.run_input_keyset  # the UI shows a form
    assert not any(r["path"] == "/api/pull" for r in sim.requests)  # nothing risky before approval
    resume_flow_run(run.id, run_input={"approve": ["repull_model:sim"], "note": "ok by the on-call"})
    t.join(90)
    assert "error" not in box, box.get("error")
    res = box["result"]
    inc = res.incidents[0]
    assert res.status == "recovered" and inc.symptom == "gibberish" and inc.outcome == "recovered"
    assert any(
        e.kind == "approval" and "approved in the Prefect UI: ok by the on-call" in e.text
        for e in inc.timeline
    )
    md = asyncio.run(artifact("runbook-incident-report", run.id))
    assert md is not None and "`gibberish` on `sim`" in md.data and "RECOVERED" in md.data


def test_unanswered_approval_times_out_and_escalates(prefect_harness, tmp_path, sim):
    from prefect.client.orchestration import get_client

    from flows.runbook import runbook

    sim.set_fault("gibberish")
    cfg = write_config(tmp_path, [sim_endpoint(sim)], runbook={"approval_timeout_s": 2})
    state = asyncio.run(runbook(config_path=cfg, return_state=True))
    assert state.is_completed(), state  # a timed-out pause is an escalation, not a failed run
    res = state.result()
    inc = res.incidents[0]
    assert res.status == "escalated" and "approval timed out after 2 s" in inc.summary

    async def final_state():
        async with get_client() as client:
            return (await client.read_flow_run(state.state_details.flow_run_id)).state

    assert asyncio.run(final_state()).is_completed()


def test_cli_run_without_approval_escalates_risky_fixes(prefect_harness, tmp_path, sim):
    from flows.runbook import runbook

    sim.set_fault("gibberish")
    cfg = write_config(tmp_path, [sim_endpoint(sim)])
    res = asyncio.run(runbook(config_path=cfg, wait_for_approval=False))
    assert res.status == "escalated" and "no approval was requested" in res.incidents[0].summary


def test_chained_from_a_degraded_daily_health_run(prefect_harness, tmp_path, sim, hooks):
    from prefect import flow

    from flows.runbook import chain_from_health
    from tests.runbook_fixtures import restart_sim

    sim.behavior.slow_first_token_s = 1.0
    sim.set_fault("slow_first_token")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = write_config(tmp_path, [sim_endpoint(sim)], health={"ttft_alert_s": 0.5},
                       restart={"command": restart.command("{target}")})  # fmt: skip
    ttft = CheckResult(check="ttft", target="sim", status=Status.ALERT, value=1.02, unit="s", threshold=0.5)
    degraded = HealthResult(status="degraded", checks=[ttft])

    @flow(name="daily-health-stand-in")
    async def parent(h: HealthResult):
        return await chain_from_health(h, cfg)

    res = asyncio.run(parent(degraded))
    inc = res.incidents[0]
    assert res.trigger == "daily-health" and inc.symptom == "slow_ttft" and inc.outcome == "recovered"
    assert "daily-health: ttft alert 1.02 s" in inc.diagnosis.evidence
    assert asyncio.run(parent(HealthResult(status="ok", checks=[]))) is None


def test_prefect_yaml_has_the_runbook_deployment_and_its_automation():
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers

    deps = {d["name"]: d for d in yaml.safe_load(open(os.path.join(ROOT, "prefect.yaml")))["deployments"]}
    d = deps["runbook"]
    assert d["entrypoint"] == "flows/runbook.py:runbook" and not d.get("schedules")
    (trigger,) = _initialize_deployment_triggers("runbook/runbook", d["triggers"])
    assert "prefect.flow-run.Failed" in trigger.expect
    assert trigger.match_related.root == {
        "prefect.resource.role": "flow",
        "prefect.resource.name": "daily-health",
    }
    assert trigger.parameters["trigger"].startswith("automation")


def cli(args, env):
    return subprocess.run([sys.executable, "-m", "llm_upkeep.cli", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **env}, cwd=ROOT)  # fmt: skip


def test_cli_json_contract_dry_run_and_exit_codes(prefect_harness, tmp_path, sim):
    from prefect.settings import PREFECT_API_URL

    env = {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_TO_API_ENABLED": "false"}
    cfg = write_config(
        tmp_path, [sim_endpoint(sim)], restart={"command": ["systemctl", "restart", "{target}"]}
    )
    r = cli(["run", "runbook", "--config", cfg, "--json"], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout) == {"flow": "runbook", "status": "ok", "incidents": []}

    sim.set_fault("refused")
    r = cli(["run", "runbook", "--config", cfg, "--json", "--dry-run"], env)
    assert r.returncode == 1, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert set(out) == {"flow", "status", "incidents"} and out["status"] == "dry_run"
    (inc,) = out["incidents"]
    assert set(inc) == {"target", "symptom", "cause", "evidence", "action", "result"}
    assert inc["symptom"] == "connection_refused" and inc["target"] == "sim"
    assert "restart: dry_run" in inc["action"] and inc["result"].startswith("dry run: would restart sim")
    assert "Traceback" not in r.stderr
