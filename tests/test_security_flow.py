"""The security-audit flow under Prefect: report and findings artifacts, Slack on high severity, and the
CLI's JSON contract and exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from llm_upkeep.sim.slack_sink import SlackSink

FIX = Path(__file__).parent / "fixtures" / "firewall"


def _artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in arts if a.key}


def write_config(tmp_path, sim, *, webhook=None, secure=False):
    env = tmp_path / "server.env"
    env.write_text("OPENAI_API_KEY=sk-flowtest-abcdefghijklmnop\n")
    os.chmod(env, 0o600 if secure else 0o644)
    data = {
        "state_dir": str(tmp_path / "state"),
        "endpoints": [{"name": "llm", "api": "ollama", "url": f"http://127.0.0.1:{sim.port}",
                       "model": sim.behavior.model}],
        "security": {"firewall_commands": False, "extra_ports": [11434],
                     "nft_json_path": str(FIX / ("nft-restrictive" if secure else "nft-open") / "nft.json"),
                     "config_files": [str(env)]},
    }  # fmt: skip
    if webhook:
        data["alerts"] = {"slack_webhook_url_env": "AUDIT_WEBHOOK"}
    p = tmp_path / "c.toml"
    p.write_text(tomli_w.dumps(data))
    os.chmod(p, 0o600)
    return p


def test_flow_reports_and_alerts_on_high_severity(prefect_harness, tmp_path, monkeypatch):
    from flows.security_audit import security_audit

    with SlackSink() as sink, SimServer(SimBehavior(version="0.17.1"), host="0.0.0.0") as sim:
        monkeypatch.setenv("AUDIT_WEBHOOK", sink.webhook_url)
        conf = write_config(tmp_path, sim, webhook=True)
        state = asyncio.run(security_audit(config_path=str(conf), return_state=True))
        assert state.is_completed()
        result = state.result()
        assert result.status == "degraded"
        assert {"exposure.bind:llm", "firewall.open:11434"} <= {f.id for f in result.findings}
        assert [a.status for a in result.alerts] == ["sent"]
        assert len(sink.messages) == 1
        msg = json.dumps(sink.messages[0])
        assert "Security audit" in msg and "sk-flowtest" not in msg
    arts = _artifacts(state.state_details.flow_run_id)
    assert {"security-audit-report", "security-audit-findings"} <= set(arts)
    assert "# Security audit: DEGRADED" in arts["security-audit-report"].data


def cli(args, env):
    return subprocess.run([sys.executable, "-m", "llm_upkeep.cli", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **env})  # fmt: skip


@pytest.fixture
def api_env(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_TO_API_ENABLED": "false"}


def test_cli_json_and_exit_codes(api_env, tmp_path):
    with SimServer(SimBehavior(version="0.17.1"), host="0.0.0.0") as sim:
        conf = write_config(tmp_path, sim)
        r = cli(["run", "security-audit", "--config", str(conf), "--json"], api_env)
    assert r.returncode == 1, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["flow"] == "security-audit" and out["status"] == "degraded"
    f = {x["id"]: x for x in out["findings"]}["exposure.bind:llm"]
    assert set(f) == {"id", "category", "severity", "title", "target", "evidence", "fix"}
    assert f["severity"] == "high" and f["evidence"]

    bad = tmp_path / "bad.toml"
    bad.write_text("[security]\nallowed_networks = ['10.0.0.300/8']\n")
    r = cli(["run", "security-audit", "--config", str(bad), "--json"], api_env)
    assert r.returncode == 2
    err = json.loads(r.stdout)
    assert err["error"] == "config" and err["key"] == "security.allowed_networks"
