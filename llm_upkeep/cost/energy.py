"""Energy per GPU over a window, from the history's NVML samples.

Preferred: the NVML total-energy counter (``energy_mj``, millijoules since the driver loaded). The
energy between two samples is the counter's increase; a decrease means the counter restarted (driver
reload, reboot), and then the energy since the restart is the new reading itself (the counter began
at 0), as Prometheus' increase() treats counter resets. Fallback, for a pair of samples without both
counter readings: trapezoidal integration of ``power_w`` when the samples are at most
``max_gap_s`` apart (instantaneous power sampled hourly is an estimate, the counter is exact).

An interval that straddles the window's edge or midnight is split in proportion to time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd

from llm_upkeep import history

MJ_PER_KWH = 3.6e9  # millijoules in one kilowatt-hour


@dataclass
class GpuEnergy:
    host: str
    gpu: int
    kwh: float = 0.0
    counter_kwh: float = 0.0
    power_kwh: float = 0.0
    resets: int = 0
    covered_s: float = 0.0
    samples: int = 0
    daily_kwh: dict[date, float] = field(default_factory=dict)

    @property
    def method(self) -> str:
        if self.counter_kwh and self.power_kwh:
            return "counter+power"
        if self.power_kwh:
            return "power"
        return "counter" if self.samples else "none"


def split_by_day(a: datetime, b: datetime, start: datetime, end: datetime) -> list[tuple[date, float]]:
    """Fractions of the interval [a, b) that fall on each UTC day inside [start, end)."""
    total = (b - a).total_seconds()
    if total <= 0:
        return []
    lo, hi = max(a, start), min(b, end)
    out = []
    t = lo
    while t < hi:
        next_midnight = datetime.combine(t.date() + timedelta(days=1), datetime.min.time(), tzinfo=t.tzinfo)
        seg_end = min(hi, next_midnight)
        out.append((t.date(), (seg_end - t).total_seconds() / total))
        t = seg_end
    return out


def _num(v) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def integrate_gpu(rows: pd.DataFrame, start: datetime, end: datetime, max_gap_s: float) -> GpuEnergy:
    """Energy of one GPU's samples (sorted by ts) within [start, end)."""
    host, gpu = str(rows["host"].iloc[0]), int(rows["gpu"].iloc[0])
    out = GpuEnergy(host, gpu)
    ts = list(rows["ts"])
    en = [_num(v) for v in rows["energy_mj"]]
    pw = [_num(v) for v in rows["power_w"]]
    out.samples = int(sum(1 for t in ts if start <= t < end))
    for i in range(1, len(ts)):
        a, b = ts[i - 1].to_pydatetime(), ts[i].to_pydatetime()
        dt = (b - a).total_seconds()
        if dt <= 0 or b <= start or a >= end:
            continue
        if en[i - 1] is not None and en[i] is not None:
            d = en[i] - en[i - 1]
            if d < 0:
                out.resets += 1
                d = en[i]
            kwh, kind = d / MJ_PER_KWH, "counter"
        elif pw[i - 1] is not None and pw[i] is not None and dt <= max_gap_s:
            kwh, kind = (pw[i - 1] + pw[i]) / 2 * dt / 3.6e6, "power"  # W*s -> kWh
        else:
            continue
        for day, frac in split_by_day(a, b, start, end):
            share = kwh * frac
            out.kwh += share
            if kind == "counter":
                out.counter_kwh += share
            else:
                out.power_kwh += share
            out.daily_kwh[day] = out.daily_kwh.get(day, 0.0) + share
            out.covered_s += dt * frac
    return out


def gpu_energy(
    state_dir, start: datetime, end: datetime, *, max_gap_s: float = 7200.0, hosts: list[str] | None = None
) -> list[GpuEnergy]:
    """kWh per (host, GPU) in [start, end) from the history store."""
    margin = timedelta(seconds=max(max_gap_s, 6 * 3600))
    df = history.read_gpu_samples(state_dir, since=start - margin, until=end + margin)
    if df.empty:
        return []
    if hosts:
        df = df[df["host"].isin(hosts)]
    out = []
    for (_host, _gpu), rows in df.sort_values("ts").groupby(["host", "gpu"], sort=True):
        g = integrate_gpu(rows.reset_index(drop=True), start, end, max_gap_s)
        if g.samples or g.kwh:
            out.append(g)
    return out
