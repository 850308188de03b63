"""The evaluate-model and rollback-model flows end to end, against the store-backed Ollama simulator,
with approval given (or denied) through the Prefect API while the flow is paused."""

from __future__ import annotations

import asyncio

import pytest

from llm_upkeep.models.store import read_manifest
from tests.models_fixtures import ALIAS, CANDIDATE, Approver

pytestmark = pytest.mark.prefect


def evaluate(lab, **kw):
    from flows.evaluate_model import evaluate_model

    return asyncio.run(
        evaluate_model(candidate=CANDIDATE, endpoint="prod", config_path=str(lab.config_path), **kw)
    )


def artifact(key: str, flow_run_id):
    """The artifact of this flow run (other tests in the session publish under the same keys)."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    flt = ArtifactFilter(
        key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
    )
    with get_client(sync_client=True) as c:
        arts = c.read_artifacts(artifact_filter=flt)
    return arts[0] if arts else None


def test_manual_approval_through_the_api_promotes(prefect_harness, ollama_lab, models_slack):
    approver = Approver(True, "benchmarks look fine")
    approver.start()
    r = evaluate(ollama_lab)
    approver.join(10)
    assert approver.error is None, approver.error
    assert r.status == "promoted", r.detail
    assert r.decision.by == "person" and r.decision.note == "benchmarks look fine"
    assert "Promote `llama3:8b-v2` on `prod`?" in approver.description
    assert [p.endpoint for p in r.pulls] == ["staging", "prod"]
    assert r.verification.ok and r.verification.files == 3
    assert r.benchmark.compared and "measured on prod now" in r.benchmark.reference
    assert r.switch.ok and r.switch.to_digest == "sha256:" + ollama_lab.v2_digest
    # Served model and store agree: the candidate is live; the old one kept under its own tag.
    assert ollama_lab.prod.behavior.digest == ollama_lab.v2_digest
    assert read_manifest(ollama_lab.store, ALIAS).digest == "sha256:" + ollama_lab.v2_digest
    prog = artifact("model-pull-prod-llama3-8b-v2", approver.flow_run_id)
    assert prog is not None and prog.type == "progress" and float(prog.data) == 100.0
    md = artifact("model-evaluation-prod", approver.flow_run_id)
    assert md is not None and "Candidate `llama3:8b-v2` on staging `staging`" in md.data
    assert any("PROMOTED" in m.get("text", "") for m in models_slack.messages)
    # the pause was announced first, with the run's page in the UI
    waiting = [m.get("text", "") for m in models_slack.messages if "waits for approval" in m.get("text", "")]
    assert len(waiting) == 1 and f"/runs/flow-run/{approver.flow_run_id}" in waiting[0]
    assert r.approval_notice["status"] == "sent"


def test_denied_approval_is_a_clean_rejection(prefect_harness, ollama_lab, models_slack):
    approver = Approver(False, "wait for the next quantization")
    approver.start()
    r = evaluate(ollama_lab)
    approver.join(10)
    assert approver.error is None, approver.error
    assert r.status == "rejected" and r.switch is None
    assert r.decision.note == "wait for the next quantization"
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest
    assert read_manifest(ollama_lab.store, ALIAS).digest == "sha256:" + ollama_lab.v1_digest
    assert any("REJECTED" in m.get("text", "") for m in models_slack.messages)


def test_auto_policy_does_not_promote_a_regression(prefect_harness, ollama_lab, models_slack):
    ollama_lab.write_config('approval = "auto"\n')
    ollama_lab.staging.behavior.slowdown = 4.0
    r = evaluate(ollama_lab, approval="auto")
    assert r.status == "not_promoted", r.detail
    assert r.benchmark.status == "regression" and r.benchmark.regressions
    # slowdown doubles TTFT and inter-token gaps: the note names what regressed (which of the
    # latency metrics passes the host-lag guard depends on how busy the machine is)
    assert "regressions" in r.decision.note and any(m in r.decision.note for m in ("ttft", "e2e", "itl", "tpot"))
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest


def test_failed_post_promotion_probe_rolls_back(prefect_harness, ollama_lab, models_slack):
    ollama_lab.write_config('approval = "auto"\n')
    ollama_lab.prod.broken.add(ollama_lab.v2_digest)
    r = evaluate(ollama_lab, approval="auto")
    assert r.status == "rolled_back", r.detail
    assert r.switch is not None and not r.switch.ok and "http_5xx" in r.switch.ready.last_error
    assert r.rollback is not None and r.rollback.ok, r.rollback
    # The served model is the old one again.
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest
    assert read_manifest(ollama_lab.store, ALIAS).digest == "sha256:" + ollama_lab.v1_digest
    assert any("ROLLED BACK" in m.get("text", "") for m in models_slack.messages)


def test_a_retry_resumes_where_the_run_stopped(prefect_harness, ollama_lab, models_slack):
    from flows.evaluate_model import evaluate_model

    ollama_lab.write_config('approval = "auto"\n')
    ollama_lab.prod.copy_failures = 1  # the first promotion attempt fails: the flow run fails, then retries
    flow = evaluate_model.with_options(retries=1, retry_delay_seconds=0)
    r = asyncio.run(flow(candidate=CANDIDATE, endpoint="prod", config_path=str(ollama_lab.config_path),
                         approval="auto"))  # fmt: skip
    assert r.status == "promoted", r.detail
    assert ollama_lab.prod.copy_failures == 0
    pulls = [q for q in ollama_lab.prod.requests if q["path"] == "/api/pull"]
    assert len(pulls) == 1, "the pull finished in the first attempt and was not repeated"
    bench = [q for q in ollama_lab.staging.requests
             if q["path"] == "/api/chat" and (q["json"] or {}).get("model") == CANDIDATE]  # fmt: skip
    assert len(bench) == 1 + 3 * 4, "the benchmark (1 warm-up + 3 x 4 prompts) ran once"


def test_rollback_flow_reports_its_seconds(prefect_harness, ollama_lab, models_slack):
    from flows.rollback_model import rollback_model_flow
    from llm_upkeep.config import load_config
    from llm_upkeep.models.promote import promote_model

    cfg = load_config(ollama_lab.config_path)

    async def pull():
        from llm_upkeep.clients import OllamaClient, make_http_client

        async with make_http_client() as http:
            return [p async for p in OllamaClient(cfg.endpoint("prod"), http).pull(CANDIDATE)]

    asyncio.run(pull())
    assert promote_model(cfg, CANDIDATE, endpoint="prod").ok
    res = asyncio.run(rollback_model_flow(endpoint="prod", config_path=str(ollama_lab.config_path)))
    assert res.ok and res.action == "rollback" and res.seconds > 0
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest
    assert any("rollback on prod: OK" in m.get("text", "") for m in models_slack.messages)


def test_cli_run_evaluate_and_rollback_json(prefect_harness, ollama_lab, models_slack):
    """`llm-upkeep run evaluate-model --approval auto --json` then `run rollback-model --json`."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    root = Path(__file__).resolve().parent.parent
    ollama_lab.write_config('approval = "auto"\n')

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "llm_upkeep.cli", "run", *a, "--config",
                               str(ollama_lab.config_path), "--json"], capture_output=True, text=True,
                              timeout=300, cwd=root, env=env)  # fmt: skip

    p = cli("evaluate-model", CANDIDATE, "--endpoint", "prod", "--approval", "auto")
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["status"] == "promoted" and out["decision"]["by"] == "auto"
    assert "markdown" not in out["benchmark"] and out["switch"]["ok"]
    p = cli("rollback-model", "--endpoint", "prod")
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["ok"] and out["seconds"] > 0 and out["to_digest"] == "sha256:" + ollama_lab.v1_digest
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest
