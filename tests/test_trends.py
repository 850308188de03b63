"""Trends: the statistics on known series, and the weekly review's trends section on generated
28-day histories: a planted 2 %/day GPU-memory creep and a planted TTFT drift are found, a flat
noisy history is not."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import tomli_w

from llm_upkeep import history
from llm_upkeep.config import parse_config
from llm_upkeep.trends.config import TrendsConfig
from llm_upkeep.trends.review import review_trends
from llm_upkeep.trends.stats import trend_test
from tests.trend_fixtures import END, write_history


def _review(state, cfg=None):
    cfg = cfg or TrendsConfig()
    since = END - timedelta(weeks=cfg.weeks)
    return review_trends(history.read_checks(state, since=since, until=END),
                         history.read_gpu_samples(state, since=since, until=END), cfg)  # fmt: skip


def test_theil_sen_shrugs_off_outliers_and_mann_kendall_sees_a_trend():
    days = list(range(20))
    rising = [1.0 + 0.05 * d for d in days]
    rising[5], rising[12] = 40.0, -30.0  # two wild points: least squares would follow them
    t = trend_test(days, rising)
    assert t.slope_per_day == pytest.approx(0.05, rel=0.02)
    assert t.p_value < 0.001 and t.p_text() == "p < 0.001"
    flat = trend_test(days, [1.0] * 20)
    assert flat.slope_per_day == 0 and flat.p_value == 1.0
    assert trend_test([0, 1, 2], [1, 2, 3]) is None  # too short to say anything


def test_planted_leak_and_drift_are_found(tmp_path):
    write_history(tmp_path, creep_per_day=0.02, ttft_drift=2.0)
    r = _review(tmp_path)
    by = {(s.kind, s.target): s for s in r.series}
    assert str(r.verdict) == "warn"
    leak = by[("gpu_memory", "0")]
    assert leak.finding == "leak", leak.verdict
    assert "memory leak" in leak.verdict and "GPU memory up" in leak.verdict
    # found before the alert: the fitted level is still under 95 % and the projection says when
    assert leak.trend.end < 95 and leak.days_to_alert > 0
    drift = by[("ttft", "prod")]
    assert drift.finding == "drift", drift.verdict
    assert drift.verdict.startswith("TTFT up ") and " in 27 days" in drift.verdict and "p < 0.0" in drift.verdict
    assert 120 <= drift.trend.change_percent <= 280  # planted: 0.3 s to 0.9 s (+200 %)
    # the unplanted series stay quiet
    assert {k: s.finding for k, s in by.items() if s.finding} == {("gpu_memory", "0"): "leak", ("ttft", "prod"): "drift"}
    assert {c.check for c in r.checks if str(c.status) == "warn"} == {"trend_gpu_memory", "trend_ttft"}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_flat_noisy_history_finds_nothing(tmp_path, seed):
    write_history(tmp_path, seed=seed)
    r = _review(tmp_path)
    assert str(r.verdict) == "ok", [s.verdict for s in r.series if s.finding]
    assert len(r.series) == 6 and all(str(s.status) == "ok" for s in r.series)
    assert r.summary == "no drift or leak in 6 series over 4 week(s)"


def test_memory_that_follows_load_is_not_a_leak(tmp_path):
    """Busier later weeks raise memory (KV cache), but at comparable load it is flat."""
    write_history(tmp_path, seed=7)
    # a fortnight of extra, heavy load samples on top: memory high because busy, not leaking
    from llm_upkeep.telemetry import GpuReading, GpuSnapshot

    rnd = random.Random(0)
    for h in range(14 * 24):
        ts = END - timedelta(days=14) + timedelta(hours=h, minutes=31)
        gpus = [GpuReading(index=i, memory_used_bytes=int((0.40 + 0.15 + rnd.gauss(0, 0.01)) * 80 * 2**30),
                           memory_total_bytes=80 * 2**30, utilization_percent=100.0, temperature_c=75.0)
                for i in (0, 1)]  # fmt: skip
        history.append_gpu_samples(tmp_path, GpuSnapshot(status="ok", taken_at=ts, gpus=gpus))
    r = _review(tmp_path)
    assert not [s.verdict for s in r.series if s.finding]


def test_short_history_gets_no_verdict(tmp_path):
    write_history(tmp_path, days=5, creep_per_day=0.05)
    r = _review(tmp_path)
    assert str(r.verdict) == "skipped" and r.checks == []
    assert "7 days of data needed" in r.summary


@pytest.mark.prefect
def test_weekly_review_reports_leak_and_drift(prefect_harness, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    write_history(state, creep_per_day=0.02, ttft_drift=2.0)
    data = {"state_dir": str(state), "gpu": {"enabled": False}, "prometheus": {"textfile_dir": str(tmp_path / "prom")}}
    path = tmp_path / "llm-upkeep.toml"
    path.write_text(tomli_w.dumps(data))
    parse_config(data, str(path))
    from flows.weekly_review import weekly_review
    from llm_upkeep.review.report import render_report

    result = weekly_review(config_path=str(path), week_end=END, send_slack=False)
    s = result.sections["trends"]
    assert str(s.verdict) == "warn" and result.status == "degraded"
    assert "GPU 0: GPU memory up" in s.summary and "`prod`: TTFT up" in s.summary
    md = render_report(result)
    assert "## Trends: ⚠️ WARN" in md and "memory leak (playbook: restart the serving process)" in md
    assert "![Daily values and fitted trends](data:image/png;base64,iVBOR" in md  # the plot, inlined for the UI
    assert set(result.to_json()["sections"]) >= {"trends"}
    df = history.read_checks(state)
    assert {"trend_gpu_memory", "trend_ttft"} <= set(df[df.flow == "weekly-review"].check_name)
    # the verdicts reach Prometheus too (severity 2 = warn), for an alert rule on a leak
    prom = (tmp_path / "prom" / "llm_upkeep_weekly_review.prom").read_text()
    assert 'llm_upkeep_check_severity{check="trend_gpu_memory",flow="weekly_review",target="0"} 2.0' in prom
