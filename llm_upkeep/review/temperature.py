"""GPU temperature review from the history store: is any GPU running hot for hours, not minutes?

Per GPU: max, p95, the longest stretch above the fixed limit (85 °C, the playbook's "cooling
trouble") and above the device's own slowdown threshold minus a margin, and how often the
clocks were cut for thermal or power reasons. Missing samples break a stretch: no data is not heat.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from llm_upkeep.checks import SEVERITY, CheckResult, Status
from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.telemetry import THERMAL_REASONS

POWER_REASONS = frozenset({"sw_power_cap", "hw_power_brake_slowdown"})


class Stretch(BaseModel):
    minutes: float = Field(default=0.0, description="Length of the longest stretch, minutes.")
    start: datetime | None = Field(default=None, description="When it began (UTC).")
    end: datetime | None = Field(default=None, description="Last hot sample (UTC).")
    samples: int = Field(default=0, description="Samples in it.")
    peak_c: float | None = Field(default=None, description="Hottest sample in it.")


class GpuHeat(BaseModel):
    host: str = Field(description="Host the samples came from.")
    gpu: int = Field(description="NVML index.")
    name: str | None = Field(default=None, description="Product name.")
    samples: int = Field(description="Temperature samples in the week.")
    max_c: float | None = Field(default=None, description="Hottest sample.")
    p95_c: float | None = Field(default=None, description="95th percentile.")
    slowdown_c: float | None = Field(default=None, description="Device slowdown threshold (latest).")
    above_limit: Stretch = Field(
        default_factory=Stretch, description="Longest stretch above the fixed limit."
    )
    above_slowdown_margin: Stretch = Field(
        default_factory=Stretch, description="Longest stretch above slowdown minus margin."
    )
    throttle_counts: dict[str, int] = Field(
        default_factory=dict, description="Samples per clock event reason."
    )
    thermal_throttle_samples: int = Field(default=0, description="Samples with thermal slowdown active.")
    power_throttle_samples: int = Field(default=0, description="Samples with a power cap/brake active.")
    status: Status = Field(description="alert: sustained heat; warn: hot or throttled briefly.")
    detail: str = Field(default="", description="One line.")


class TemperatureReview(BaseModel):
    verdict: Status = Field(description="Worst GPU.")
    summary: str = Field(description="One line.")
    samples: int = Field(default=0, description="Samples read.")
    gpus: list[GpuHeat] = Field(default_factory=list, description="One entry per GPU.")
    checks: list[CheckResult] = Field(default_factory=list, description="gpu_heat per GPU.")


def longest_stretch(
    ts: list[float], temps: list[float], limits: list[float | None], max_gap_s: float
) -> Stretch:
    """Longest run of consecutive samples above their limit; each sample stands for one interval."""
    if not ts:
        return Stretch()
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False) if 0 < b - a <= max_gap_s]
    interval = float(np.median(gaps)) if gaps else max_gap_s
    best: Stretch = Stretch()
    i, n = 0, len(ts)
    while i < n:
        lim = limits[i]
        if lim is None or not temps[i] > lim:
            i += 1
            continue
        j = i
        while (
            j + 1 < n
            and limits[j + 1] is not None
            and temps[j + 1] > limits[j + 1]
            and ts[j + 1] - ts[j] <= max_gap_s
        ):
            j += 1
        minutes = (ts[j] - ts[i] + interval) / 60
        if minutes > best.minutes:
            best = Stretch(
                minutes=round(minutes, 1), start=datetime.fromtimestamp(ts[i], UTC),
                end=datetime.fromtimestamp(ts[j], UTC), samples=j - i + 1, peak_c=max(temps[i : j + 1]),
            )  # fmt: skip
        i = j + 1
    return best


def _gpu_heat(host: str, gpu: int, g: pd.DataFrame, cfg: ReviewConfig) -> GpuHeat:
    g = g.sort_values("ts")
    t = g.dropna(subset=["temperature_c"])
    ts = [x.timestamp() for x in t["ts"]]
    temps = [float(x) for x in t["temperature_c"]]
    max_gap = cfg.max_sample_gap_minutes * 60
    fixed = longest_stretch(ts, temps, [cfg.temperature_threshold_c] * len(ts), max_gap)
    slow = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else float(v) - cfg.temperature_margin_c
            for v in t["slowdown_c"]]  # fmt: skip
    rel = longest_stretch(ts, temps, slow, max_gap)
    reasons: Counter = Counter()
    thermal = power = 0
    for rs in g["throttle_reasons"]:
        rs = set(rs or [])
        reasons.update(rs)
        thermal += bool(rs & THERMAL_REASONS)
        power += bool(rs & POWER_REASONS)
    slowdown = next(
        (float(v) for v in reversed(list(t["slowdown_c"])) if v is not None and not pd.isna(v)), None
    )
    name = next((v for v in reversed(list(g["name"])) if v), None)
    heat = GpuHeat(
        host=host, gpu=gpu, name=name, samples=len(temps),
        max_c=max(temps) if temps else None, p95_c=round(float(np.percentile(temps, 95)), 1) if temps else None,
        slowdown_c=slowdown, above_limit=fixed, above_slowdown_margin=rel,
        throttle_counts=dict(sorted(reasons.items())), thermal_throttle_samples=thermal,
        power_throttle_samples=power, status=Status.OK,
    )  # fmt: skip
    sustained = cfg.sustained_minutes
    parts = []
    if fixed.minutes >= sustained:
        parts.append(f"{fixed.minutes / 60:.1f} h above {cfg.temperature_threshold_c:g} °C from {fixed.start:%a %H:%M}"
                     f" (peak {fixed.peak_c:g} °C)")  # fmt: skip
    if rel.minutes >= sustained and slowdown is not None:
        parts.append(f"{rel.minutes / 60:.1f} h within {cfg.temperature_margin_c:g} °C of its slowdown "
                     f"threshold {slowdown:g} °C")  # fmt: skip
    if parts:
        heat.status = Status.ALERT
        heat.detail = "sustained heat: " + "; ".join(parts) + ". Check fans, airflow, datacenter temperature."
    elif not temps:
        heat.status = Status.SKIPPED
        heat.detail = "no temperature readings"
    else:
        hot = heat.max_c is not None and heat.max_c > cfg.temperature_threshold_c
        if hot or thermal:
            heat.status = Status.WARN
        heat.detail = (
            f"max {heat.max_c:g} °C, p95 {heat.p95_c:g} °C"
            + (f"; briefly above {cfg.temperature_threshold_c:g} °C ({fixed.minutes:.0f} min)" if hot else "")
            + (f"; thermal slowdown in {thermal} sample(s)" if thermal else "")
            + (f"; power cap in {power} sample(s)" if power else "")
        )
    return heat


def review_temperatures(samples: pd.DataFrame, cfg: ReviewConfig) -> TemperatureReview:
    """Per-GPU heat from the week's gpu_samples rows (history.read_gpu_samples)."""
    if samples is None or samples.empty:
        return TemperatureReview(
            verdict=Status.SKIPPED,
            summary="no GPU samples this week (is the hourly gpu-sampling deployment running?)",
            checks=[CheckResult(check="gpu_heat", target="all", status=Status.SKIPPED, detail="no samples")],
        )
    gpus = [
        _gpu_heat(str(host), int(gpu), g, cfg)
        for (host, gpu), g in samples.groupby(["host", "gpu"], sort=True)
    ]
    checks = [
        CheckResult(
            check="gpu_heat", target=str(h.gpu) if h.host == "local" else f"{h.host}:{h.gpu}", status=h.status,
            value=h.above_limit.minutes, unit="min above limit", threshold=cfg.temperature_threshold_c,
            detail=h.detail,
        )
        for h in gpus
    ]  # fmt: skip
    verdict = max(checks, key=lambda c: SEVERITY[c.status]).status
    hot = [c.target for c in checks if c.status == Status.ALERT]
    summary = (
        f"sustained heat on GPU {', '.join(hot)}" if hot else f"{len(gpus)} GPU(s), no sustained heat"
    ) + f" ({len(samples)} samples)"
    return TemperatureReview(verdict=verdict, summary=summary, samples=len(samples), gpus=gpus, checks=checks)
