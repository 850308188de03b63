"""GPU temperature review from the real history store (SQLite)."""

from __future__ import annotations

from datetime import timedelta

from llm_upkeep import history
from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.temperature import longest_stretch, review_temperatures
from llm_upkeep.review.window import review_window
from llm_upkeep.telemetry import GpuReading, GpuSnapshot
from tests.review_fixtures import WEEK_END, planted_gpu_history

WINDOW = review_window(WEEK_END)


def week_samples(state_dir):
    return history.read_gpu_samples(state_dir, since=WINDOW.start, until=WINDOW.end)


def by_gpu(review):
    return {g.gpu: g for g in review.gpus}


def test_three_hours_at_87_on_gpu_1_is_sustained_heat_on_gpu_1_only(state_dir):
    hot_from = planted_gpu_history(state_dir, hot_gpu=1, hot_hours=3, hot_c=87.0)
    r = review_temperatures(week_samples(state_dir), ReviewConfig())
    g = by_gpu(r)
    assert r.verdict == "alert" and r.summary.startswith("sustained heat on GPU 1 (")
    assert g[1].status == "alert" and g[0].status == "ok"
    assert g[1].above_limit.minutes == 180 and g[1].above_limit.samples == 3
    assert g[1].above_limit.start == hot_from + timedelta(minutes=5)
    assert g[1].above_limit.peak_c == 87.0 and g[1].max_c == 87.0
    assert g[0].above_limit.minutes == 0 and g[0].max_c < 85
    assert g[1].thermal_throttle_samples == 3 and g[1].throttle_counts == {"sw_thermal_slowdown": 3}
    assert g[0].p95_c < g[1].max_c and g[1].samples == 168
    assert "3.0 h above 85 °C" in g[1].detail
    checks = {c.target: c for c in r.checks}
    assert checks["1"].status == "alert" and checks["0"].status == "ok"


def test_one_hot_hour_is_not_sustained_but_is_noted(state_dir):
    planted_gpu_history(state_dir, hot_gpu=1, hot_hours=1, hot_c=88.0)
    g = by_gpu(review_temperatures(week_samples(state_dir), ReviewConfig()))
    assert g[1].status == "warn" and g[1].above_limit.minutes == 60
    assert "briefly above 85" in g[1].detail and "thermal slowdown in 1" in g[1].detail


def test_near_its_own_slowdown_threshold_counts_even_below_85(state_dir):
    # slowdown at 87 °C, margin 5: 84 °C for 3 hours is too close although it is below 85
    planted_gpu_history(state_dir, hot_gpu=0, hot_hours=3, hot_c=84.0, slowdown=87.0)
    g = by_gpu(review_temperatures(week_samples(state_dir), ReviewConfig()))
    assert g[0].status == "alert" and g[0].above_limit.minutes == 0
    assert g[0].above_slowdown_margin.minutes == 180
    assert "within 5 °C of its slowdown threshold 87 °C" in g[0].detail
    assert g[1].status == "ok"


def test_missing_samples_break_a_stretch():
    h = 3600.0
    ts = [0, h, 2 * h, 6 * h, 7 * h]  # a 4-hour hole between the 3rd and 4th sample
    s = longest_stretch(ts, [90, 90, 90, 90, 90], [85] * 5, max_gap_s=1.5 * h)
    assert s.samples == 3 and s.minutes == 180


def test_no_samples_is_skipped_with_a_hint(state_dir):
    r = review_temperatures(week_samples(state_dir), ReviewConfig())
    assert r.verdict == "skipped" and "gpu-sampling" in r.summary


def test_samples_from_two_hosts_are_kept_apart(state_dir):
    for i in range(4):
        snap = GpuSnapshot(status="ok", taken_at=WINDOW.start + timedelta(hours=i + 1),
                           gpus=[GpuReading(index=0, temperature_c=90.0, slowdown_c=95.0)])  # fmt: skip
        history.append_gpu_samples(state_dir, snap, host="node-b")
        cool = GpuSnapshot(status="ok", taken_at=WINDOW.start + timedelta(hours=i + 1),
                           gpus=[GpuReading(index=0, temperature_c=50.0, slowdown_c=95.0)])  # fmt: skip
        history.append_gpu_samples(state_dir, cool)
    r = review_temperatures(week_samples(state_dir), ReviewConfig())
    assert {c.target: c.status for c in r.checks} == {"0": "ok", "node-b:0": "alert"}
