"""`llm-upkeep run weekly-benchmark` end to end under the Prefect test harness: the JSON contract,
exit codes, the baseline, artifacts, the report and plot in state_dir, and Slack on regression."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import tomli_w
import yaml

from llm_upkeep import cli
from llm_upkeep.config import parse_config
from llm_upkeep.sim.slack_sink import SlackSink
from tests.timing import EARLY_S, bare_stream, nearer_first_token

pytestmark = pytest.mark.prefect

METRIC_KEYS = {"ttft_p50_s", "ttft_p99_s", "itl_p50_s", "tpot_p50_s", "e2e_p50_s", "output_tokens_per_s",
               "requests_per_s", "error_rate"}  # fmt: skip


@pytest.fixture
def slack(monkeypatch):
    with SlackSink() as sink:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", sink.webhook_url)
        yield sink


def make_config(tmp_path, sim, **bench) -> str:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "tiny", "max_tokens": 6,
        "prompts": [{"id": f"p{i}", "prompt": f"item {i}", "checks": [{"type": "contains", "value": "fox"}]}
                    for i in range(3)],
    }))  # fmt: skip
    data = {
        "state_dir": str(tmp_path / "state"),
        "endpoints": [{"name": "sim", "api": "openai", "url": sim.url, "model": sim.behavior.model}],
        "alerts": {"slack_webhook_url_env": "TEST_SLACK_WEBHOOK"},
        "benchmark": {"profile": "concurrent", "concurrency": 3, "repeats": 3, "warmup": 1, "ramp_up_s": 0.05,
                      "suite": "tiny.yaml", **bench},
    }  # fmt: skip
    path = tmp_path / "llm-upkeep.toml"
    path.write_text(tomli_w.dumps(data))
    parse_config(data, str(path))
    return str(path)


def run_cli(capsys, *args) -> tuple[int, dict]:
    code = cli.main(["run", "weekly-benchmark", *args])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # exactly one JSON document on stdout
    return code, json.loads(out[0])


async def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as c:
        arts = await c.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["benchmark-comparison", "benchmark-prompts"])
            )
        )
    return {a.key for a in arts}


def test_cli_json_baseline_regression_and_slack(prefect_harness, sim_factory, slack, tmp_path, capsys):
    # Generation (5 x 120 ms) much longer than the first token, so TTFT and e2e cannot be confused.
    sim = sim_factory(ttft_s=0.2, itl_s=0.12, tokens=6)
    cfg = make_config(tmp_path, sim)
    bare_ttft, bare_e2e = bare_stream(sim.url, sim.behavior.model, max_tokens=6)

    code, doc = run_cli(capsys, "--config", cfg, "--json", "--save-baseline")
    assert code == 0, doc
    assert set(doc) == {"flow", "status", "endpoints"} and doc["flow"] == "weekly-benchmark"
    assert doc["status"] == "ok"
    (e,) = doc["endpoints"]
    assert set(e) == {"target", "metrics", "quality", "baseline", "regressions"}
    assert e["target"] == "sim" and set(e["metrics"]) == METRIC_KEYS
    m = e["metrics"]
    assert nearer_first_token(m["ttft_p50_s"], bare_ttft, bare_e2e), (m, bare_ttft, bare_e2e)
    assert m["e2e_p50_s"] >= bare_e2e - EARLY_S, (m, bare_e2e)  # the whole answer is timed
    assert e["metrics"]["error_rate"] == 0
    assert set(e["quality"]) == {"pass_rate", "checks"} and e["quality"]["pass_rate"] == 1.0
    assert e["baseline"]["pinned_now"] and e["baseline"]["reason"] == "save-baseline"
    assert e["regressions"] == [] and slack.messages == []

    sim.behavior.slowdown = 2.0
    code, doc = run_cli(capsys, "--config", cfg, "--json")
    assert code == 1 and doc["status"] == "regression", doc
    (e,) = doc["endpoints"]
    assert {r["metric"] for r in e["regressions"]} >= {"ttft_p50_s", "e2e_p50_s"}
    assert e["baseline"]["match"] == "exact" and not e["baseline"]["pinned_now"]
    assert e["baseline"]["metrics"]["ttft_p50_s"]["significant"] is True

    (msg,) = slack.messages
    table = msg["blocks"][1]["text"]["text"]
    assert "ttft_p50_s" in table and "```" in table and "REGRESSION" in table

    state = Path(tmp_path / "state" / "benchmarks")
    assert len(list((state / "runs").glob("*.parquet"))) == 2
    assert len(list((state / "plots").glob("*.png"))) == 2
    (report, *_) = sorted((state / "reports").glob("*.md"), reverse=True)
    md = report.read_text()
    assert "## sim: REGRESSION" in md and ".png" in md
    assert asyncio.run(_artifact_keys()) == {"benchmark-comparison", "benchmark-prompts"}


def test_cli_overrides_and_human_output(prefect_harness, sim_factory, slack, tmp_path, capsys):
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=4)
    cfg = make_config(tmp_path, sim)
    code = cli.main(["run", "weekly-benchmark", "--config", cfg, "--profile", "constant_rate", "--rate", "40",
                     "--repeats", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "weekly-benchmark: OK" in out and "pass rate 100%" in out
    assert "pinned as the baseline" in out
    assert len([r for r in sim.requests if r["path"] == "/v1/chat/completions"]) == 1 + 3


def test_config_and_suite_errors_exit_2_without_starting_prefect(tmp_path, sim_factory, capsys):
    sim = sim_factory()
    cfg = make_config(tmp_path, sim)
    assert cli.main(["run", "weekly-benchmark", "--config", cfg, "--concurrency", "0", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["error"] == "config" and err["key"] == "benchmark.concurrency"

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprompts:\n  - {id: a, prompt: q, checks: [{type: regex, pattern: '(('}]}\n")
    assert cli.main(["run", "weekly-benchmark", "--config", cfg, "--suite", str(bad), "--json"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["key"] == "prompts[0:a].checks[0]" and err["file"] == str(bad)

    with pytest.raises(SystemExit) as ei:
        cli.main(["run", "weekly-benchmark", "--profile", "burst"])
    assert ei.value.code == 2
    capsys.readouterr()

    cfg2 = make_config(tmp_path, sim, endpoints=["nope"])
    assert cli.main(["run", "weekly-benchmark", "--config", cfg2]) == 2
    assert "no endpoint named 'nope'" in capsys.readouterr().err
