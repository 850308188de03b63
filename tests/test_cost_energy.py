"""Energy from the history's GPU samples: NVML counter increases with a restart, the power fallback,
and intervals split at the window's edges and at midnight."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest

from llm_upkeep import history
from llm_upkeep.cost.energy import gpu_energy, split_by_day

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)


def plant(state_dir, rows):
    """rows: (ts, host, gpu, power_w, energy_mj); inserted like the hourly sampler stores them."""
    full = [(t.isoformat(), h, g, None, None, None, None, None, None, None, None, p, None, e, "[]", None, None)
            for t, h, g, p, e in rows]  # fmt: skip
    with closing(history.connect(state_dir)) as c, c:
        c.executemany("INSERT INTO gpu_samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", full)


def test_counter_with_reset_matches_hand_calculation(state_dir):
    rows = []
    e = 0
    for k in range(-1, 746):  # hourly; one sample before and one after October
        t = START + timedelta(hours=k)
        if k == -1:
            e = 1_000_000_000
        elif k == 0:
            e = 9_000_000_000  # large jump outside the window: must not count
        elif k <= 400:
            e += 1_080_000_000  # 0.3 kWh per hour
        elif k == 401:
            e = 540_000_000  # driver reload: the counter restarted and shows 0.15 kWh since then
        elif k <= 744:
            e += 1_440_000_000  # 0.4 kWh per hour
        else:
            e += 99_000_000_000  # after the window: must not count
        rows.append((t, "gpu1", 0, 300.0, e))
    plant(state_dir, rows)
    [g] = gpu_energy(state_dir, START, END)
    # Hand calculation: 400 h x 0.3 kWh + 0.15 kWh (restart) + 343 h x 0.4 kWh = 120 + 0.15 + 137.2
    assert round(g.kwh, 6) == 257.35
    assert g.resets == 1 and g.method == "counter" and g.samples == 744
    assert g.covered_s == 744 * 3600
    assert round(g.daily_kwh[START.date()], 6) == 7.2  # 24 x 0.3
    assert round(sum(g.daily_kwh.values()), 6) == 257.35


def test_power_fallback_and_gaps(state_dir):
    rows = []
    for k in range(0, 49):
        if 20 < k < 24:
            continue  # a 4-hour hole: power is not integrated across it
        rows.append((START + timedelta(hours=k), "gpu1", 1, 200.0 if k % 2 else 300.0, None))
    plant(state_dir, rows)
    [g] = gpu_energy(state_dir, START, END, max_gap_s=7200)
    # 48 h of pairs minus the 4 h gap (20->24) = 44 h at a trapezoid mean of 250 W = 11 kWh
    assert round(g.kwh, 9) == 11.0 and g.method == "power" and g.covered_s == 44 * 3600
    [g] = gpu_energy(state_dir, START, END, max_gap_s=5 * 3600)
    # the gap is now bridged: samples 20 and 24 both read 300 W, so it adds 4 h x 300 W = 1.2 kWh
    assert round(g.kwh, 9) == 12.2


def test_interval_straddling_the_window_is_prorated(state_dir):
    t0 = START - timedelta(minutes=30)
    plant(state_dir, [(t0, "h", 0, None, 0), (t0 + timedelta(hours=1), "h", 0, None, 3_600_000_000)])  # 1 kWh
    [g] = gpu_energy(state_dir, START, END)
    assert g.kwh == pytest.approx(0.5)


def test_hosts_filter_and_empty_history(state_dir):
    assert gpu_energy(state_dir, START, END) == []
    plant(state_dir, [(START, "a", 0, None, 0), (START + timedelta(hours=1), "a", 0, None, 3_600_000_000),
                      (START, "b", 0, None, 0), (START + timedelta(hours=1), "b", 0, None, 7_200_000_000)])  # fmt: skip
    assert [(g.host, g.kwh) for g in gpu_energy(state_dir, START, END, hosts=["b"])] == [("b", 2.0)]


def test_split_by_day():
    a = datetime(2026, 10, 1, 23, 0, tzinfo=UTC)
    parts = split_by_day(a, a + timedelta(hours=2), START, END)
    assert parts == [(a.date(), 0.5), ((a + timedelta(hours=1)).date(), 0.5)]
