"""Generated history for the trend tests: 28 days of daily-health probes and hourly GPU samples,
with a daily load cycle (busy days, quiet nights), noise, an occasional outlier, and optionally
a planted GPU-memory creep and a planted TTFT drift."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llm_upkeep import history
from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.telemetry import GpuReading, GpuSnapshot

END = datetime(2026, 11, 30, tzinfo=UTC)
TOTAL = 80 * 2**30


def write_history(
    state_dir: Path, *, seed: int = 1, days: int = 28, creep_per_day: float = 0.0, ttft_drift: float = 0.0,
    end: datetime = END,
) -> None:  # fmt: skip
    """creep_per_day: GPU 0's memory baseline grows by this fraction of itself per day (0.02 = 2 %/day).
    ttft_drift: endpoint 'prod' TTFT grows from 0.3 s by this factor over the days (2.0 = to 0.9 s)."""
    rnd = random.Random(seed)
    start = end - timedelta(days=days)
    for d in range(days):
        ts = start + timedelta(days=d, hours=6)
        checks = []
        for name, base in (("prod", 0.3), ("steady", 0.5)):
            drift = 1 + (ttft_drift * d / (days - 1) if name == "prod" else 0.0)
            ttft = base * drift * rnd.lognormvariate(0, 0.08)
            if rnd.random() < 0.05:  # a cold load or a busy minute
                ttft *= 3
            tps = 45 * rnd.lognormvariate(0, 0.05)
            checks += [
                CheckResult(check="ttft", target=name, status=Status.OK, value=round(ttft, 4), unit="s"),
                CheckResult(check="tokens_per_second", target=name, status=Status.OK, value=round(tps, 2),
                            unit="tok/s"),
            ]  # fmt: skip
        history.append_checks(state_dir, checks, flow="daily-health", run_id=f"r{d}", ts=ts)
    rows = []
    for h in range(days * 24):
        ts = start + timedelta(hours=h, minutes=7)
        day = h / 24
        load = 55 + 35 * math.sin(2 * math.pi * ((ts.hour - 9) / 24)) + rnd.uniform(-8, 8)
        load = min(100.0, max(0.0, load))
        gpus = []
        for idx in (0, 1):
            base = 0.40 * (1 + creep_per_day * day if idx == 0 else 1.0)
            kv = 0.15 * load / 100  # KV cache follows the load
            frac = min(0.99, base + kv + rnd.gauss(0, 0.01))
            gpus.append(GpuReading(
                index=idx, name="NVIDIA H100 80GB HBM3", uuid=f"GPU-{idx:08d}", memory_used_bytes=int(frac * TOTAL),
                memory_total_bytes=TOTAL, utilization_percent=round(load, 1),
                temperature_c=round(40 + 0.35 * load + rnd.uniform(-2, 2), 1), power_w=150 + 5 * load,
                power_limit_w=700.0,
            ))  # fmt: skip
        rows.append(GpuSnapshot(status="ok", taken_at=ts, driver_version="550.54.15", cuda_version="12.4", gpus=gpus))
    history.append_gpu_snapshots(state_dir, rows)
