"""The month's cost review against a hand calculation to the cent: planted energy-counter history
(with a restart), a power-only GPU, token counts from a request log; plus token counters scraped from
a real simulator's /metrics across a server restart."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from llm_upkeep.cost.config import CostConfig, TokenSource
from llm_upkeep.cost.plot import PNG_MAGIC, plot_daily
from llm_upkeep.cost.report import comparison_table, render_report
from llm_upkeep.cost.review import PriceTableError, load_price_table, month_window, review_costs
from llm_upkeep.cost.tokens import counter_tokens, read_counter_samples, record_token_counters
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from tests.cost_helpers import END, PERIOD, START, plant_month, write_requests
from tests.llm_fixtures import endpoint_for


@pytest.fixture
def month(state_dir, tmp_path):
    plant_month(state_dir)
    write_requests(tmp_path / "requests.jsonl")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"as_of": "2026-10-01", "currency": "USD", "models": [
        {"provider": "acme", "model": "big", "input_per_1m": 2.00, "output_per_1m": 8.00}]}))  # fmt: skip
    return CostConfig(
        price_per_kwh=0.31, pue=1.2, other_power_w=100, hosting_monthly=50, hardware_price=7200,
        amortization_months=36, currency="EUR", currency_per_usd=0.9, capacity_output_tokens_per_s=50,
        token_sources=[TokenSource(kind="log", path=str(tmp_path / "requests.jsonl"))],
        cloud_price_table_path=str(prices),
    )  # fmt: skip


def test_month_matches_hand_calculation_to_the_cent(month, state_dir):
    r = review_costs(month, state_dir, START, END, period=PERIOD, today=date(2026, 11, 1))
    assert r.status == "ok" and r.period == "2026-10"
    # Energy. GPU 0 (counter): 400 h x 0.3 + 0.15 after the restart + 343 h x 0.4 = 257.35 kWh.
    #         GPU 1 (power):   744 h x 250 W = 186 kWh.  Other: 100 W x 744 h = 74.4 kWh.
    gpus = {g.gpu: g for g in r.gpus}
    assert round(gpus[0].kwh, 3) == 257.35 and gpus[0].resets == 1 and gpus[0].method == "counter"
    assert round(gpus[1].kwh, 3) == 186.0 and gpus[1].method == "power"
    assert round(r.gpu_kwh, 3) == 443.35 and round(r.other_kwh, 3) == 74.4
    # (443.35 + 74.4) x PUE 1.2 = 621.3 kWh; x 0.31 EUR = 192.603 EUR
    assert round(r.facility_kwh, 3) == 621.3
    assert round(r.energy_cost, 2) == 192.60
    # Hosting 50 EUR; hardware 7200 / 36 = 200 EUR; total 442.603 EUR
    assert round(r.hosting_cost, 2) == 50.00 and round(r.hardware_cost, 2) == 200.00
    assert round(r.total_cost, 2) == 442.60
    # Tokens: 31 d x 100 x (1500 in, 500 out) + 744 h x (800 in, 200 out)
    assert r.input_tokens == 4_650_000 + 595_200 == 5_245_200
    assert r.output_tokens == 1_550_000 + 148_800 == 1_698_800
    # Per 1M: input = 442.603 / (5,245,200 + 4 x 1,698,800) x 1e6 = 442.603 / 12,040,400 x 1e6 = 36.76
    assert round(r.cost_per_1m_input, 2) == 36.76
    assert round(r.cost_per_1m_output, 2) == 147.04  # 4 x 36.7598...
    assert round(r.cost_per_1m_blended, 2) == 63.74  # 442.603 / 6,944,000 x 1e6
    # Cloud: prices x 0.9 EUR/USD = 1.80 / 7.20; 5.2452 x 1.80 + 1.6988 x 7.20 = 21.67 EUR
    [c] = r.comparisons
    assert (c.input_per_1m, c.output_per_1m) == (pytest.approx(1.8), pytest.approx(7.2))
    assert round(c.cloud_cost, 2) == 21.67 and round(c.saving, 2) == -420.93
    # Break even at 442.603 / 21.67272 = 20.42x the traffic; utilization now
    # 1,698,800 / (50 tok/s x 2,678,400 s) = 1.27 %, so break-even at 25.9 %
    assert round(c.break_even_factor, 2) == 20.42
    assert round(r.utilization, 4) == 0.0127 and round(c.break_even_utilization, 3) == 0.259
    # Daily rows add up to the month
    assert len(r.daily) == 31
    assert round(sum(d.cost for d in r.daily), 2) == 442.60
    assert sum(d.input_tokens for d in r.daily) == 5_245_200


def test_report_table_and_plot(month, state_dir, tmp_path):
    r = review_costs(month, state_dir, START, END, period=PERIOD, today=date(2026, 11, 1))
    png = plot_daily(r, tmp_path / "reports")
    assert png.name == "cost-review-2026-10.png" and png.read_bytes()[:8] == PNG_MAGIC
    r.plot_path = str(png)
    md = render_report(r)
    assert "| **total** | **442.60 EUR** |" in md and "cost-review-2026-10.png" in md
    assert "![Daily cost and tokens](data:image/png;base64,iVBOR" in md  # inlined for the Prefect UI
    [row] = comparison_table(r)
    assert row["cloud model"] == "acme/big" and row["saving (EUR)"] == -420.93
    assert r.to_json()["flow"] == "cost-review"


def test_missing_data_degrades_and_notes_why(state_dir):
    cfg = CostConfig(price_per_kwh=0.3)
    r = review_costs(cfg, state_dir, START, END, period=PERIOD)
    assert r.status == "degraded"
    assert any("no GPU samples" in n for n in r.notes) and any("token_sources" in n for n in r.notes)
    assert review_costs(CostConfig(), state_dir, START, END).status == "skipped"


def test_shipped_price_table_and_staleness(state_dir, tmp_path):
    t = load_price_table()
    assert t.currency == "USD" and t.as_of.year >= 2025 and len(t.models) >= 10
    assert all(m.output_per_1m >= m.input_per_1m for m in t.models)
    plant_month(state_dir)
    cfg = CostConfig(price_per_kwh=0.3, token_sources=[], compare_models=["openai/gpt-4o-mini"])
    r = review_costs(cfg, state_dir, START, END, today=date(2026, 11, 28))
    assert [c.model for c in r.comparisons] == ["gpt-4o-mini"]
    assert any("price table is" in n and "days old" in n for n in r.notes)
    bad = tmp_path / "p.json"
    bad.write_text('{"as_of": "2026-01-01", "models": [{"provider": "x"}]}')
    with pytest.raises(PriceTableError, match=str(bad)):
        load_price_table(bad)


def test_month_window():
    assert month_window("2026-02")[1] - month_window("2026-02")[0] == timedelta(days=28)
    s, e, label = month_window(None, datetime(2026, 11, 28, tzinfo=UTC))
    assert (s, e, label) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), "2026-10")
    s, _, _ = month_window(None, datetime(2026, 1, 1, 7, tzinfo=UTC))
    assert s == datetime(2025, 12, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        month_window("October")


def test_token_counters_from_real_metrics_across_a_restart(state_dir):
    """Sample a real /metrics, serve requests, restart the server (counters back to 0), sample again."""
    t = [START + timedelta(days=d) for d in (1, 10, 20, 30)]

    async def chat(http, sim, n):
        for _ in range(n):
            r = await http.post(sim.url + "/v1/chat/completions",
                                json={"model": sim.behavior.model, "messages": [{"role": "user", "content": "hi there"}]})  # fmt: skip
            assert r.status_code == 200

    async def go():
        async with httpx.AsyncClient(trust_env=False) as http:
            with SimServer(SimBehavior(tokens=5, ttft_s=0, itl_s=0)) as sim:
                ep = endpoint_for(sim, name="vllm", api="openai")
                await record_token_counters(state_dir, [ep], http, now=t[0])  # 0 / 0
                await chat(http, sim, 3)  # 3 x (2 in, 5 out)
                await record_token_counters(state_dir, [ep], http, now=t[1])  # 6 / 15
            with SimServer(SimBehavior(tokens=5, ttft_s=0, itl_s=0)) as sim2:  # restarted: counters at 0
                ep = endpoint_for(sim2, name="vllm", api="openai")
                await chat(http, sim2, 2)
                await record_token_counters(state_dir, [ep], http, now=t[2])  # 4 / 10 after the restart
                await chat(http, sim2, 1)
                return await record_token_counters(state_dir, [ep], http, now=t[3])  # 6 / 15

    notes = asyncio.run(go())
    assert "counters prompt=6 output=15" in notes[0]
    samples = read_counter_samples(state_dir, "vllm")
    assert [(p, o) for _, p, o in samples] == [(0, 0), (6, 15), (4, 10), (6, 15)]
    tc = counter_tokens(samples, START, END, "metrics vllm")
    # 6/15 before the restart, 4/10 counted from 0 after it, then +2/+5
    assert (tc.input_tokens, tc.output_tokens, tc.resets) == (12, 30, 1)
