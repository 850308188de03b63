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
    not_ok = {
        n: (r["state"], r["message"]) for n, r in runs.items() if r["state"] not in ("COMPLETED", "PAUSED")
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


def test_model_chain_promoted_then_rolled_back_for_real(demo_stack):
    """evaluate-model promoted the candidate on the store-backed production Ollama (auto policy),
    rollback-model put the previous version back: the Prefect API, the store, the lock and the
    switch history on disk all say so."""
    from llm_upkeep.config import load_config
    from llm_upkeep.demo import CANDIDATE, CURRENT, HEALTHY, PROD_MODEL
    from llm_upkeep.models.active import read_history
    from llm_upkeep.models.endpoints import lock_path, managed_endpoint
    from llm_upkeep.models.hashing import Hasher
    from llm_upkeep.models.lock import read_lock
    from llm_upkeep.models.promote import backup_tag, verify_ollama_tag
    from llm_upkeep.models.store import blob_path, read_manifest
    from llm_upkeep.models.verify import verify_models

    runs = {r["deployment"]: r for r in demo_stack.summary()["runs"]}
    for name in ("evaluate-model", "rollback-model"):
        run = httpx.get(f"{demo_stack.ui_url}/api/flow_runs/{runs[name]['run_id']}", timeout=30).json()
        assert run["state"]["type"] == "COMPLETED", (name, run["state"])
    evaluate, rollback = runs["evaluate-model"], runs["rollback-model"]
    assert (
        f"promoted {CANDIDATE} on {HEALTHY}" in evaluate["result"] and "auto approval" in evaluate["result"]
    )
    assert f"rolled {HEALTHY} back to {CURRENT}" in rollback["result"]
    # The console says what each did, on the line that reports the run's end.
    assert any(
        x.startswith("  evaluate-model: Completed after") and evaluate["result"] in x
        for x in demo_stack.lines
    )
    assert any(
        x.startswith("  rollback-model: Completed after") and rollback["result"] in x
        for x in demo_stack.lines
    )
    slack = [line for line in demo_stack.lines if line.startswith("[slack]")]
    assert any(f"Model {CANDIDATE} on {HEALTHY}: PROMOTED" in line for line in slack), slack
    assert any(f"Model rollback on {HEALTHY}: OK" in line for line in slack), slack

    # The evaluation was published for its run: candidate on staging, compared with production.
    arts = api(
        demo_stack, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [evaluate["run_id"]]}}}
    )
    md = {a["key"]: a for a in arts}[f"model-evaluation-{HEALTHY}"]["data"]
    assert f"Candidate `{CANDIDATE}` on staging `ollama-staging`" in md

    state = demo_stack.state_dir
    store, registry = state / "ollama-models", state / "ollama-registry"
    v1, v2 = read_manifest(registry, CURRENT).digest, read_manifest(registry, CANDIDATE).digest
    assert v1 != v2
    # Production serves the previous version again; the candidate stays on disk, blobs intact.
    assert read_manifest(store, PROD_MODEL).digest == v1
    cand = read_manifest(store, CANDIDATE)
    assert cand.digest == v2 and all(blob_path(store, la.digest).is_file() for la in cand.layers)
    cfg = load_config(state / "llm-upkeep-demo.toml")
    with Hasher(2) as h:
        assert verify_ollama_tag(managed_endpoint(cfg, HEALTHY), CANDIDATE, h) == []
    report = verify_models(cfg, endpoint=HEALTHY)
    assert report.ok, [p.public() for p in report.problems]
    # The lock follows the switches: the alias is pinned at v1 again, the candidate at v2.
    pins = read_lock(lock_path(cfg)).endpoints[HEALTHY]  # in the config's state_dir
    assert pins.tag(PROD_MODEL).digest == v1 and pins.tag(CANDIDATE).digest == v2
    # History: one promotion to the candidate, then the rollback that undoes it.
    hist = read_history(state / "data" / "models" / HEALTHY)
    promote, back = hist[-2], hist[-1]
    assert promote.action == "promote" and promote.ok and promote.to_version == CANDIDATE
    assert promote.from_digest == v1 and promote.to_digest == v2
    assert back.action == "rollback" and back.ok and back.undoes == promote.id
    assert back.to_version == backup_tag(PROD_MODEL, v1.split(":")[1]) and back.to_digest == v1


def test_weekly_review_asks_the_local_registry_about_the_pinned_models(demo_stack):
    """models.lock pins the current version; the review asks the demo's registry (not the internet):
    the version tag is up to date, upstream's llama3:8b moved to the candidate."""
    from llm_upkeep.demo import CURRENT, PROD_MODEL

    run_id = {r["deployment"]: r for r in demo_stack.summary()["runs"]}["weekly-review"]["run_id"]
    arts = api(demo_stack, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    table = {a["key"]: a for a in arts}["weekly-review-model-updates"]["data"]
    rows = table if isinstance(table, list) else __import__("json").loads(table)
    status = {r["model"]: r["status"] for r in rows}
    assert status[CURRENT] == "up_to_date" and status[PROD_MODEL] == "update_available", rows
