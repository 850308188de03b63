"""The whole audit (no Prefect): an insecure set-up gives a finding with evidence in every part, a
hardened one gives none. Real sockets, real files and modes, real captured firewall listings."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llm_upkeep.config import parse_config
from llm_upkeep.security.audit import run_audit
from llm_upkeep.security.report import findings_table, render_report, slack_message
from llm_upkeep.sim.llm_server import SimBehavior, SimServer

FIX = Path(__file__).parent / "fixtures" / "firewall"
NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SECRET = "sk-prod-0123456789abcdefghij"


def nginx(ip, t, status):
    return f'{ip} - - [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "POST /api/chat HTTP/1.1" {status} 99 "-" "curl/8"'


def setup_files(tmp: Path, *, secure: bool, attack: bool):
    env = tmp / "ollama.env"
    env.write_text(f"OLLAMA_HOST=127.0.0.1\nOPENAI_API_KEY={SECRET}\n")
    os.chmod(env, 0o600 if secure else 0o644)
    models = tmp / "models"
    models.mkdir()
    (models / "blob").write_text("weights")
    os.chmod(models / "blob", 0o644)
    prompts = tmp / "prompts"
    prompts.mkdir()
    (prompts / "system.txt").write_text("You are helpful.")
    lines = [nginx("10.20.0.5", T0 + timedelta(minutes=i), 200) for i in range(200)]
    if attack:
        lines += [nginx("203.0.113.66", T0 + timedelta(hours=3, seconds=i), 401) for i in range(60)]
    log = tmp / "access.log"
    log.write_text("\n".join(lines) + "\n")
    return env, models, prompts, log


def make_config(tmp: Path, sim: SimServer, *, secure: bool, attack: bool, **endpoint):
    env, models, prompts, log = setup_files(tmp, secure=secure, attack=attack)
    ep = {"name": "llm", "api": "ollama", "url": f"http://127.0.0.1:{sim.port}", "model": sim.behavior.model,
          **endpoint}  # fmt: skip
    return parse_config({
        "state_dir": str(tmp / "state"),
        "endpoints": [ep],
        "security": {
            "extra_ports": [11434],
            "firewall_commands": False,
            "nft_json_path": str(FIX / ("nft-restrictive" if secure else "nft-open") / "nft.json"),
            "config_files": [str(env)], "model_dirs": [str(models)], "prompt_templates": [str(prompts)],
            "access_logs": [{"path": str(log), "format": "nginx"}],
            "allowed_networks": ["10.20.0.0/16", "127.0.0.0/8"],
        },
    })  # fmt: skip


def test_insecure_setup_gives_a_finding_with_evidence_in_every_part(tmp_path):
    with SimServer(SimBehavior(version="0.12.6"), host="0.0.0.0") as sim:
        cfg = make_config(tmp_path, sim, secure=False, attack=True)
        result = asyncio.run(run_audit(cfg, now=NOW))
    assert result.status == "degraded"
    by_id = {f.id: f for f in result.findings}
    expected = {
        "exposure.bind:llm", "exposure.no-auth:llm", "exposure.dangerous-routes:llm", "versions.cve:llm",
        "firewall.open:11434", f"files.secret-readable:{tmp_path / 'ollama.env'}",
        f"access.auth-burst:{tmp_path / 'access.log'}",
    }  # fmt: skip
    assert expected <= set(by_id), sorted(by_id)
    for fid in expected:
        assert by_id[fid].evidence and by_id[fid].fix, fid
    assert any(f"0.0.0.0:{sim.port}" in e for e in by_id["exposure.bind:llm"].evidence)
    assert any("CVE-2026-7482" in e for e in by_id["versions.cve:llm"].evidence)
    assert any("tcp dport 11434 accept" in e for e in by_id["firewall.open:11434"].evidence)
    assert any("mode 0644" in e for e in by_id[f"files.secret-readable:{tmp_path / 'ollama.env'}"].evidence)
    assert "203.0.113.66" in by_id[f"access.auth-burst:{tmp_path / 'access.log'}"].evidence[0]
    assert result.findings[0].severity == "critical"  # worst first

    md = render_report(result)
    assert "# Security audit: DEGRADED" in md and SECRET not in md
    rows = findings_table(result)
    assert len(rows) == len(result.findings) and set(rows[0]) == {
        "severity",
        "id",
        "title",
        "evidence",
        "fix",
    }
    text, blocks = slack_message(result, "high")
    assert "Security audit" in text and blocks[0]["type"] == "header"
    assert SECRET not in str(result.to_json())


def test_hardened_setup_gives_no_findings(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_KEY", "k-hardened-0123456789")
    with SimServer(SimBehavior(version="0.19.1", api_key="k-hardened-0123456789"), host="127.0.0.1") as sim:
        cfg = make_config(tmp_path, sim, secure=True, attack=False, api="openai", api_key_env="LLM_KEY")
        result = asyncio.run(run_audit(cfg, now=NOW))
    assert result.findings == [], [f.id for f in result.findings]
    assert result.status == "ok"
    assert {s.name: s.status for s in result.sections} == {
        "exposure": "ok", "versions": "ok", "firewall": "ok", "files": "ok", "access": "ok"}  # fmt: skip
    notes = {s.name: " ".join(s.notes) for s in result.sections}
    assert "loopback only" in notes["exposure"] and "vllm 0.19.1" in notes["versions"]
    assert "port 11434: restricted" in notes["firewall"]
    assert slack_message(result, "high") is None


@pytest.mark.parametrize("broken", ["cve_table_path"])
def test_broken_section_degrades_but_others_still_report(tmp_path, broken):
    with SimServer(SimBehavior(version="0.19.1"), host="127.0.0.1") as sim:
        cfg = make_config(tmp_path, sim, secure=True, attack=False)
        cfg.security.cve_table_path = str(tmp_path / "missing.json")
        result = asyncio.run(run_audit(cfg, now=NOW))
    sec = {s.name: s for s in result.sections}
    assert sec["versions"].status == "error" and "cannot read" in sec["versions"].notes[0]
    assert result.status == "degraded" and sec["exposure"].status == "ok"
