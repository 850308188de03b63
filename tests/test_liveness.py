"""Liveness: the state machine (one message per change, a failed delivery stays owed), and the
flow against a simulator that really stops listening and comes back: exactly one alert and one
"resolved" with the outage length, nothing on the quiet runs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import tomli_w

from llm_upkeep.config import parse_config
from llm_upkeep.liveness.state import EndpointState, human_duration, mark_delivered, observe
from llm_upkeep.sim.slack_sink import SlackSink

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)


def fold(seq, down_after=1, deliver=lambda t: True):
    st, out = EndpointState(), []
    for i, ok in enumerate(seq):
        t = observe(st, ok, None if ok else "connection_refused: x", T0 + timedelta(minutes=5 * i), down_after)
        if t is not None:
            out.append((i, t.kind, t.outage_s))
            if deliver(t):
                mark_delivered(st, t)
    return out


def test_one_message_per_change():
    assert fold([True, True, False, False, False, True, True]) == [(2, "down", None), (5, "resolved", 900.0)]
    assert fold([True] * 5) == []


def test_a_blip_shorter_than_down_after_runs_says_nothing():
    assert fold([True, False, True, False, False, True], down_after=2) == [(4, "down", None), (5, "resolved", 600.0)]  # the outage began at the first failure


def test_undelivered_message_stays_owed_and_nobody_hears_resolved_for_an_unheard_down():
    tries = iter([False, True, False, True])  # down fails once, resolved fails once
    out = fold([False, False, True, True], deliver=lambda t: next(tries))
    assert out == [(0, "down", None), (1, "down", None), (2, "resolved", 600.0), (3, "resolved", 600.0)]
    # the down was never delivered: the recovery is not announced either
    assert fold([False, True], deliver=lambda t: False) == [(0, "down", None)]
    assert human_duration(754) == "12 min 34 s" and human_duration(3 * 3600 + 60) == "3 h 1 min"


@pytest.fixture
def slack(monkeypatch):
    with SlackSink() as sink:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", sink.webhook_url)
        yield sink


def config(tmp_path, sim, **liveness):
    data = {
        "state_dir": str(tmp_path / "state"),
        "endpoints": [{"name": "prod", "api": "openai", "url": sim.url, "model": sim.behavior.model,
                       "timeout_s": 3.0, "connect_timeout_s": 1.0, "read_timeout_s": 2.0}],
        "alerts": {"slack_webhook_url_env": "TEST_SLACK_WEBHOOK"},
        "liveness": {"confirm_retries": 1, "confirm_delay_s": 0.05, **liveness},
    }  # fmt: skip
    path = tmp_path / "llm-upkeep.toml"
    path.write_text(tomli_w.dumps(data))
    parse_config(data, str(path))
    return str(path)


def liveness_artifacts():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["liveness-events"])))


@pytest.mark.prefect
def test_endpoint_down_and_up_gives_one_alert_and_one_resolved(prefect_harness, sim_factory, slack, tmp_path):
    from flows.liveness import liveness

    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=4)
    cfg = config(tmp_path, sim)
    before = len(liveness_artifacts())

    def run():
        return asyncio.run(liveness(config_path=cfg))

    r = run()
    assert r.status == "ok" and r.probes[0].ok and r.transitions == [] and slack.messages == []
    gen = [q for q in sim.requests if q["path"].endswith("/chat/completions")]
    assert len(gen) == 1 and gen[0]["json"]["max_tokens"] == 1  # one request, one token
    sim.set_fault("refused")  # the listener really closes: connection refused
    r1, r2 = run(), run()
    assert r1.status == "degraded" and "connection_refused" in r1.probes[0].error and r1.probes[0].attempts == 2
    assert [t.kind for t in r1.transitions] == ["down"] and r2.transitions == []
    sim.set_fault(None)
    r3, r4 = run(), run()
    assert [t.kind for t in r3.transitions] == ["resolved"] and r4.transitions == [] and r4.status == "ok"

    texts = [json.dumps(m) for m in slack.messages]
    assert len(texts) == 2, texts
    assert "LLM endpoint prod is DOWN" in texts[0] and "connection_refused" in texts[0] and "Process crashed" in texts[0]
    assert "RESOLVED: LLM endpoint prod serves again" in texts[1] and " s down" in texts[1]
    assert r3.transitions[0].outage_s > 0
    # artifacts only on the two runs that changed something
    assert len(liveness_artifacts()) - before == 2


@pytest.mark.prefect
def test_failed_delivery_is_sent_on_the_next_run(prefect_harness, sim_factory, slack, tmp_path):
    from flows.liveness import liveness

    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=4)
    cfg = config(tmp_path, sim, confirm_retries=0)
    sim.set_fault("http_500")
    slack.fail_with = 500
    r1 = asyncio.run(liveness(config_path=cfg))
    assert r1.sent == [] and slack.messages == []
    slack.fail_with = None
    r2 = asyncio.run(liveness(config_path=cfg))
    assert r2.sent == ["prod:down"] and len(slack.messages) == 1
    assert "http_5xx" in json.dumps(slack.messages[0])


@pytest.mark.prefect
def test_cli_run_liveness_json_and_exit_code(prefect_harness, sim_factory, slack, tmp_path, capsys):
    from llm_upkeep.cli import main

    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=4)
    cfg = config(tmp_path, sim, confirm_retries=0)
    assert main(["run", "liveness", "--config", cfg, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flow"] == "liveness" and out["status"] == "ok" and out["probes"][0]["ok"] is True
    sim.set_fault("refused")
    assert main(["run", "liveness", "--config", cfg]) == 1
    text = capsys.readouterr().out
    assert "liveness: DEGRADED" in text and "DOWN prod" in text and "connection_refused" in text
    assert "message owed: prod down; delivered: True" in text and len(slack.messages) == 1
