"""The cost-review flow under Prefect (artifacts, plot in state_dir) and the CLI contract."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import tomli_w

from llm_upkeep.cost.plot import PNG_MAGIC
from tests.cost_helpers import plant_month, write_requests


def _artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in arts if a.key}


def write_config(tmp_path):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    plant_month(state)
    write_requests(tmp_path / "requests.jsonl")
    data = {
        "state_dir": str(state),
        "cost": {"price_per_kwh": 0.31, "pue": 1.2, "other_power_w": 100, "hosting_monthly": 50,
                 "hardware_price": 7200, "amortization_months": 36, "currency": "EUR",
                 "currency_per_usd": 0.9, "compare_models": ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4"],
                 "token_sources": [{"kind": "log", "path": str(tmp_path / "requests.jsonl")}]},
    }  # fmt: skip
    p = tmp_path / "c.toml"
    p.write_text(tomli_w.dumps(data))
    return p, state


def test_flow_publishes_report_table_and_plot(prefect_harness, tmp_path):
    from flows.cost_review import cost_review

    conf, state = write_config(tmp_path)
    st = asyncio.run(cost_review(config_path=str(conf), month="2026-10", return_state=True))
    assert st.is_completed()
    r = st.result()
    assert r.status == "ok" and round(r.total_cost, 2) == 442.60
    assert {c.model for c in r.comparisons} == {"gpt-4o-mini", "claude-sonnet-4"}
    assert r.plot_path == str(state / "reports" / "cost-review-2026-10.png")
    with open(r.plot_path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    arts = _artifacts(st.state_details.flow_run_id)
    assert {"cost-review-report", "cost-review-comparison"} <= set(arts)
    assert (
        "**442.60 EUR**" in arts["cost-review-report"].data
        and "cost-review-2026-10.png" in arts["cost-review-report"].data
    )


@pytest.fixture
def api_env(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_TO_API_ENABLED": "false"}


def cli(args, env=None):
    return subprocess.run([sys.executable, "-m", "llm_upkeep.cli", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})})  # fmt: skip


def test_cli_json_contract(api_env, tmp_path):
    conf, _ = write_config(tmp_path)
    r = cli(["run", "cost-review", "--config", str(conf), "--month", "2026-10", "--json"], api_env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["flow"] == "cost-review" and out["status"] == "ok" and out["period"] == "2026-10"
    assert round(out["total_cost"], 2) == 442.60 and out["currency"] == "EUR"
    assert round(out["cost_per_1m_input"], 2) == 36.76 and round(out["cost_per_1m_output"], 2) == 147.04
    # a month with no data: degraded, exit 1
    r = cli(["run", "cost-review", "--config", str(conf), "--month", "2025-01", "--json"], api_env)
    assert r.returncode == 1 and json.loads(r.stdout)["status"] == "degraded"


def test_cli_usage_errors_exit_2(tmp_path):
    r = cli(["run", "cost-review", "--month", "Oct"])
    assert r.returncode == 2 and "YYYY-MM" in r.stderr
    bad = tmp_path / "c.toml"
    bad.write_text("[cost]\npue = 0.5\n")
    r = cli(["run", "cost-review", "--config", str(bad), "--json"])
    assert r.returncode == 2 and json.loads(r.stdout)["key"] == "cost.pue"
