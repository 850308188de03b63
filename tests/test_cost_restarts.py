"""Token counts that survive restarts: the hourly sampler reads each server's counters over HTTP,
increases are computed the way Prometheus' increase() does (a drop is a restart, each counter on
its own), and the cost review of the first month, across two restarts, has the exact total."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from llm_upkeep.config import parse_config
from llm_upkeep.cost.tokens import counter_tokens, read_counter_samples
from llm_upkeep.servermetrics.sampling import sample_servers

RECORDED = (Path(__file__).parent / "fixtures" / "server_metrics" / "vllm_v1.prom").read_text()
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def scripted_month(step_h: int = 6):
    """(time, prompt counter, output counter) every step_h hours of November, two restarts, and the
    tokens truly served in November (what increase() must add up to)."""
    out, p, o = [], 50_000.0, 20_000.0  # the server ran before sampling began: not this month's tokens
    served_p = served_o = 0.0
    n = (DEC - NOV) // timedelta(hours=step_h)
    for i in range(n):
        t = NOV + timedelta(hours=step_h * i)
        if i > 0:
            dp, do = 100.0 + i, 40.0 + 2 * i
            if i in (41, 93):  # restarted in this interval: counters began again at 0 and reached dp, do
                p, o = dp, do
            else:
                p, o = p + dp, o + do
            served_p, served_o = served_p + dp, served_o + do
        out.append((t, p, o))
    return out, served_p, served_o


def test_increase_treats_each_counter_on_its_own():
    t = [NOV + timedelta(hours=h) for h in range(4)]
    samples = [(t[0], 100, 10), (t[1], 150, 30), (t[2], 20, 45), (t[3], 70, 5)]
    tc = counter_tokens(samples, NOV, DEC, "x")
    # prompt: +50, reset -> +20, +50 = 120; output: +20, +15, reset -> +5 = 40
    assert (tc.input_tokens, tc.output_tokens, tc.resets) == (120, 40, 2)


def config(tmp_path, sim, ollama_url):
    data = {
        "state_dir": str(tmp_path / "state"),
        "endpoints": [
            {"name": "vllm", "api": "openai", "url": sim.url, "model": "m"},
            {"name": "ollama", "api": "ollama", "url": ollama_url, "model": "llama3:8b"},
        ],
        "cost": {"hosting_monthly": 100, "currency": "USD",
                 "token_sources": [{"kind": "metrics", "endpoint": "vllm"}]},
    }  # fmt: skip
    p = tmp_path / "llm-upkeep.toml"
    p.write_text(tomli_w.dumps(data))
    return parse_config(data, str(p)), str(p)


@pytest.mark.prefect
def test_first_month_with_two_restarts_gets_the_exact_total(prefect_harness, sim_factory, tmp_path):
    sim = sim_factory(metrics_text=RECORDED)
    ollama = sim_factory()
    cfg, path = config(tmp_path, sim, ollama.url)
    month, served_p, served_o = scripted_month()
    state = str(tmp_path / "state")

    async def sample_all():
        for t, p, o in month:  # what the hourly gpu-sampling does, at the scripted times
            sim.behavior.metrics_values = {"vllm:prompt_tokens_total": p, "vllm:generation_tokens_total": o}
            notes = await sample_servers(cfg, state, None, now=t)
        return notes

    notes = asyncio.run(sample_all())
    assert any(n.startswith("ollama: no token counters") for n in notes)
    samples = read_counter_samples(state, "vllm")
    assert len(samples) == len(month) and samples[41][1] < samples[40][1]  # the restart is in the history

    from flows.cost_review import cost_review

    review = asyncio.run(cost_review(config_path=path, month="2026-11"))
    assert (review.input_tokens, review.output_tokens) == (served_p, served_o)
    assert any("restarted 2 time(s)" in n for n in review.notes), review.notes
    assert any(
        "ollama: Ollama exports no token counters" in n and "NOT in this review" in n for n in review.notes
    )
    # What a once-a-month reading would have seen: the last value minus the first, blind to restarts.
    assert month[-1][2] - month[0][2] < served_o / 3


@pytest.mark.prefect
def test_hourly_gpu_sampling_samples_the_counters(prefect_harness, sim_factory, tmp_path, monkeypatch):
    import sys

    from tests.fakes import pynvml as fake_nvml

    fake_nvml.configure(
        devices=[fake_nvml.FakeDevice(processes=[(77, 5 * 1024**3)], process_names={77: "vllm"})]
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    sim = sim_factory(metrics_text=RECORDED)
    cfg, path = config(tmp_path, sim, sim_factory().url)
    from flows.gpu_sampling import gpu_sampling

    result = gpu_sampling(config_path=path)
    assert result.status == "ok"
    (sample,) = read_counter_samples(cfg.state_dir, "vllm")
    assert sample[1:] == (8_432_911.0, 2_113_408.0)  # the recording's vllm:prompt/generation_tokens_total
    from llm_upkeep.servermetrics import store

    procs = store.read_process_samples(cfg.state_dir, "local", NOV)
    assert list(procs["pid"]) == [77] and list(procs["running"]) == [48.0]  # load at that moment
