"""The memory-leak rule for hosts whose servers pre-allocate GPU memory.

vLLM reserves ``gpu_memory_utilization`` (0.9 by default, 0.95 common) of every GPU it uses at
start, SGLang ``mem_fraction_static``, TGI its KV pool: a device near 95 % full is how such a host
looks on a good day, so the device total cannot tell a leak. What can: one process's own GPU
memory growing over days at comparable load. This module (1) takes the device-total alert
off such hosts, saying why, and (2) judges each GPU process by its trend in history: the
median of pairwise slopes (Theil-Sen, so one odd sample cannot fake or hide a trend) over the
samples of the same process instance (a restart starts a new trend) whose running-request
count is within ``leak_load_tolerance`` of the latest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import combinations
from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only in annotations; pandas costs 1 s to import on a loaded machine (CLI start)
    import pandas as pd

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.config import EndpointConfig
from llm_upkeep.servermetrics.config import ServerMetricsConfig
from llm_upkeep.servermetrics.scrape import MetricsReading

DAY_S = 86400.0


def preallocating_endpoints(
    endpoints: list[EndpointConfig], readings: list[MetricsReading], cfg: ServerMetricsConfig
) -> list[str]:
    """Endpoints of this run whose server pre-allocates: named in config, or a vLLM/SGLang/TGI /metrics."""
    by_name = {r.endpoint: r for r in readings}
    out = []
    for e in endpoints:
        r = by_name.get(e.name)
        if e.name in cfg.preallocating_endpoints or (r and r.metrics and r.metrics.preallocates):
            out.append(e.name)
    return out


def host_running(readings: list[MetricsReading]) -> float | None:
    """Running requests over the host's servers: the load a memory sample is taken at."""
    vals = [r.metrics.running for r in readings if r.metrics is not None and r.metrics.running is not None]
    return float(sum(vals)) if vals else None


def relax_device_total(checks: list[CheckResult], prealloc: list[str]) -> list[CheckResult]:
    """gpu_memory alerts on a pre-allocating host become ok, with the reason in the detail."""
    if not prealloc:
        return checks
    out = []
    for c in checks:
        if c.check == "gpu_memory" and c.status == Status.ALERT:
            c = c.model_copy(
                update={
                    "status": Status.OK,
                    "detail": f"{c.detail}; not a leak signal here: {', '.join(prealloc)} pre-allocate GPU "
                    "memory, so leaks are judged from each process's trend (gpu_memory_trend)",
                }
            )
        out.append(c)
    return out


def theil_sen_slope(xs: list[float], ys: list[float]) -> float:
    slopes = [
        (y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in combinations(zip(xs, ys, strict=True), 2) if x2 != x1
    ]
    return median(slopes) if slopes else 0.0


def check_memory_trends(
    samples: pd.DataFrame, cfg: ServerMetricsConfig, now: datetime, latest_running: float | None
) -> list[CheckResult]:
    """gpu_memory_trend per process seen in the newest sample: alert at leak_growth_percent_per_day."""
    if samples.empty:
        return []
    out = []
    newest_ts = samples["ts"].max()
    current = samples[samples["ts"] == newest_ts]
    for _, cur in current.iterrows():
        gpu, pid, name = int(cur["gpu"]), int(cur["pid"]), cur["process"] or "?"
        target = f"{gpu}:{name}[{pid}]"
        s = samples[(samples["gpu"] == gpu) & (samples["pid"] == pid)]
        s = s[s["ts"] >= now - timedelta(days=cfg.leak_window_days)]
        if latest_running is not None:
            s = s[s["running"].notna() & ((s["running"] - latest_running).abs() <= cfg.leak_load_tolerance)]
            load = f"at {latest_running:g}±{cfg.leak_load_tolerance:g} running requests"
        else:
            s = s[s["running"].isna()]
            load = "load unknown (no /metrics)"
        span_h = (s["ts"].max() - s["ts"].min()).total_seconds() / 3600 if len(s) else 0.0
        if len(s) < cfg.leak_min_samples or span_h < cfg.leak_min_span_hours:
            out.append(
                CheckResult(
                    check="gpu_memory_trend", target=target, status=Status.SKIPPED, unit="%/day",
                    threshold=cfg.leak_growth_percent_per_day,
                    detail=f"{len(s)} comparable sample(s) over {span_h:.0f} h {load}; need "
                    f"{cfg.leak_min_samples} over {cfg.leak_min_span_hours:g} h of this process",
                )
            )  # fmt: skip
            continue
        t0 = s["ts"].min()
        xs = [(t - t0).total_seconds() / DAY_S for t in s["ts"]]
        total = float(cur["total_bytes"] or 0) or float(s["used_bytes"].max())
        ys = [100.0 * float(v) / total for v in s["used_bytes"]]
        slope = theil_sen_slope(xs, ys)
        leaking = slope >= cfg.leak_growth_percent_per_day
        gib = float(cur["used_bytes"]) / 1024**3
        out.append(
            CheckResult(
                check="gpu_memory_trend", target=target, status=Status.ALERT if leaking else Status.OK,
                value=round(slope, 3), unit="%/day", threshold=cfg.leak_growth_percent_per_day,
                detail=f"GPU {gpu} process {name}[{pid}] holds {gib:.1f} GiB; trend over {len(s)} samples "
                f"in {span_h / 24:.1f} days {load}" + ("; growing: memory leak" if leaking else "; steady"),
                data={"gpu": gpu, "pid": pid},
            )
        )  # fmt: skip
    return out


def restart_reason(checks: list[CheckResult]) -> str | None:
    """Why a trend says restart (runbook: memory leak), or None."""
    hot = [c for c in checks if c.check == "gpu_memory_trend" and c.status == Status.ALERT]
    if not hot:
        return None
    what = ", ".join(f"{c.target} +{c.value:g} %/day" for c in hot)
    return f"GPU memory growing: {what} >= {hot[0].threshold:g} %/day (runbook: memory leak)"
