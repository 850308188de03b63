"""The weekly review's trends section: daily series from the history store, a trend test on each,
and a verdict a person can act on.

Series:
- per endpoint, the daily median (p50) of the daily-health probe's TTFT and decode tokens/s;
- per GPU, the daily median of memory used (percent of total) over the samples taken at
  comparable load and temperature (utilization and temperature near that GPU's own median), so a
  busier week is not mistaken for a leak.

A verdict needs both a significant Mann-Kendall p-value and a change large enough to matter; the
memory verdict also projects when the alert threshold would be reached at the fitted rate: the
playbook's memory leak, found while it is still below the alert.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.trends.config import TrendsConfig
from llm_upkeep.trends.stats import Trend, trend_test

SERIES_LABEL = {"ttft": "TTFT", "tokens_per_second": "decode tokens/s", "gpu_memory": "GPU memory"}


class SeriesVerdict(BaseModel):
    """One series, its trend and what it means."""

    kind: str = Field(description="ttft | tokens_per_second | gpu_memory")
    target: str = Field(description="Endpoint name, or host:gpu for GPU memory.")
    unit: str = Field(description="Unit of the daily values.")
    status: Status = Field(description="warn for a drift or leak; ok when flat; skipped when too short.")
    verdict: str = Field(description="One line, e.g. 'TTFT up 41 % in 21 days, p < 0.01'.")
    finding: str | None = Field(default=None, description="drift | leak, when there is one.")
    trend: Trend | None = Field(default=None, description="The fitted trend (None when too short).")
    days: list[str] = Field(default_factory=list, description="Days (YYYY-MM-DD) of the daily values.")
    values: list[float] = Field(default_factory=list, description="Daily values, one per day.")
    days_to_alert: float | None = Field(
        default=None, description="GPU memory: days until the alert threshold at the fitted rate."
    )


class TrendsReview(BaseModel):
    """The trends section of the weekly review."""

    verdict: Status = Field(description="warn when any series drifts or leaks; skipped without history.")
    summary: str = Field(description="One line.")
    checks: list[CheckResult] = Field(default_factory=list, description="One check per series with a verdict.")
    weeks: int = Field(description="Weeks of history read.")
    series: list[SeriesVerdict] = Field(default_factory=list, description="Every series tested.")


def _daily(df: pd.DataFrame, col: str) -> pd.Series:
    day = df["ts"].dt.tz_convert("UTC").dt.floor("D")
    return df.groupby(day)[col].median().dropna()


def _fit(series: pd.Series) -> tuple[Trend | None, list[str], list[float]]:
    t0 = series.index.min()
    x = [(d - t0).total_seconds() / 86400 for d in series.index]
    return (
        trend_test(x, series.tolist()),
        [d.strftime("%Y-%m-%d") for d in series.index],
        [round(float(v), 4) for v in series],
    )


def _change(t: Trend) -> str:
    pct = t.change_percent or 0.0
    word = "up" if pct >= 0 else "down"
    return f"{word} {abs(pct):.0f} % in {t.span_days:.0f} days"


def judge_endpoint(kind: str, target: str, series: pd.Series, cfg: TrendsConfig) -> SeriesVerdict:
    unit = "s" if kind == "ttft" else "tok/s"
    label = SERIES_LABEL[kind]
    trend, days, values = _fit(series)
    base = SeriesVerdict(kind=kind, target=target, unit=unit, status=Status.SKIPPED, verdict="", days=days,
                         values=values, trend=trend)  # fmt: skip
    if trend is None or len(days) < cfg.min_days:
        base.verdict = f"{label}: {len(days)} day(s) of data, {cfg.min_days} needed for a verdict"
        return base
    pct = trend.change_percent
    if kind == "ttft":
        bad = pct is not None and pct >= cfg.ttft_drift_percent
    else:
        bad = pct is not None and -pct >= cfg.tokens_per_second_drop_percent
    fmt = "{:.3g}"
    line = (f"{label} {_change(trend)} ({fmt.format(trend.start)} → {fmt.format(trend.end)} {unit}), "
            f"{trend.p_text()}")  # fmt: skip
    if bad and trend.significant(cfg.alpha):
        base.status, base.finding = Status.WARN, "drift"
        base.verdict = line + ": degrading (playbook: memory leak in the serving process; restart it)"
    else:
        base.status = Status.OK
        base.verdict = line + ": no drift"
    return base


def comparable_samples(g: pd.DataFrame, cfg: TrendsConfig) -> pd.DataFrame:
    """Samples at comparable load and temperature: near this GPU's median of each (when reported)."""
    keep = pd.Series(True, index=g.index)
    util = g["utilization_percent"]
    if util.notna().any():
        keep &= (util - util.median()).abs() <= cfg.load_band_percent
    temp = g["temperature_c"]
    if temp.notna().any():
        keep &= (temp - temp.median()).abs() <= cfg.temperature_band_c
    return g[keep]


def judge_gpu_memory(target: str, g: pd.DataFrame, cfg: TrendsConfig, alert_percent: float) -> SeriesVerdict:
    g = g[g["memory_used_bytes"].notna() & (g["memory_total_bytes"].fillna(0) > 0)].copy()
    g["memory_percent"] = 100.0 * g["memory_used_bytes"] / g["memory_total_bytes"]
    comp = comparable_samples(g, cfg)
    trend, days, values = _fit(_daily(comp, "memory_percent")) if not comp.empty else (None, [], [])
    v = SeriesVerdict(kind="gpu_memory", target=target, unit="% of memory", status=Status.SKIPPED, verdict="",
                      days=days, values=values, trend=trend)  # fmt: skip
    if trend is None or len(days) < cfg.min_days:
        v.verdict = f"GPU memory: {len(days)} day(s) at comparable load, {cfg.min_days} needed for a verdict"
        return v
    pct = trend.change_percent
    line = (f"GPU memory {_change(trend)} at comparable load ({trend.start:.1f} % → {trend.end:.1f} % used), "
            f"{trend.p_text()}")  # fmt: skip
    if pct is not None and pct >= cfg.memory_growth_percent and trend.significant(cfg.alpha):
        v.status, v.finding = Status.WARN, "leak"
        if trend.end < alert_percent and trend.slope_per_day > 0:
            v.days_to_alert = round((alert_percent - trend.end) / trend.slope_per_day, 1)
            when = f"at this rate it reaches the {alert_percent:g} % alert in {v.days_to_alert:.0f} days"
        else:
            when = f"already at the {alert_percent:g} % alert"
        v.verdict = f"{line}: memory leak (playbook: restart the serving process); {when}"
    else:
        v.status = Status.OK
        v.verdict = line + ": no leak"
    return v


def review_trends(
    checks: pd.DataFrame, gpu_samples: pd.DataFrame, cfg: TrendsConfig, *, gpu_memory_alert_percent: float = 95.0
) -> TrendsReview:
    """Every endpoint's and every GPU's trend over the history given (read for the last cfg.weeks)."""
    series: list[SeriesVerdict] = []
    if not checks.empty:
        probes = checks[(checks["flow"] == "daily-health") & checks["value"].notna()
                        & checks["status"].isin(["ok", "warn", "alert"])]  # fmt: skip
        for kind in ("ttft", "tokens_per_second"):
            rows = probes[probes["check_name"] == kind]
            for target, g in rows.groupby("target", sort=True):
                series.append(judge_endpoint(kind, str(target), _daily(g, "value"), cfg))
    if not gpu_samples.empty:
        for (host, gpu), g in gpu_samples.groupby(["host", "gpu"], sort=True):
            target = f"{gpu}" if host == "local" else f"{host}:{gpu}"
            series.append(judge_gpu_memory(target, g, cfg, gpu_memory_alert_percent))
    return summarize(series, cfg)


def summarize(series: list[SeriesVerdict], cfg: TrendsConfig) -> TrendsReview:
    checks = [
        CheckResult(
            check=f"trend_{s.kind}", target=s.target, status=s.status,
            value=None if s.trend is None else s.trend.change_percent, unit="%",
            threshold={"ttft": cfg.ttft_drift_percent, "tokens_per_second": cfg.tokens_per_second_drop_percent,
                       "gpu_memory": cfg.memory_growth_percent}[s.kind],
            detail=s.verdict, data={"p_value": None if s.trend is None else s.trend.p_value},
        )
        for s in series if s.status != Status.SKIPPED
    ]  # fmt: skip
    found = [s for s in series if s.finding]
    if not series or all(s.status == Status.SKIPPED for s in series):
        summary = f"not enough history for a trend ({cfg.min_days} days of data needed)"
        verdict = Status.SKIPPED
    elif found:
        summary = "; ".join(f"{_who(s)}: {s.verdict.split(':')[0]}" for s in found)
        verdict = Status.WARN
    else:
        tested = sum(1 for s in series if s.status != Status.SKIPPED)
        summary = f"no drift or leak in {tested} series over {cfg.weeks} week(s)"
        verdict = Status.OK
    return TrendsReview(verdict=verdict, summary=summary, checks=checks, weeks=cfg.weeks, series=series)


def _who(s: SeriesVerdict) -> str:
    return f"GPU {s.target}" if s.kind == "gpu_memory" else f"`{s.target}`"


def trend_window(end: datetime, cfg: TrendsConfig) -> tuple[datetime, datetime]:
    return end - timedelta(weeks=cfg.weeks), end


def render_trends_md(d: dict[str, Any]) -> list[str]:
    """Markdown rows of the trends section (from TrendsReview's JSON details)."""
    rows = d.get("series") or []
    if not rows:
        return []
    from llm_upkeep.plots import markdown_image
    from llm_upkeep.trends.plot import plot_trends

    img = markdown_image(plot_trends(rows), "Daily values and fitted trends")
    out = [img, ""] if img else []
    out += ["| series | target | days | change | p | verdict |", "|---|---|---:|---:|---|---|"]
    icon = {"ok": "✅", "warn": "⚠️", "skipped": "⏭️"}
    for s in rows:
        t = s.get("trend") or {}
        pct = t.get("change_percent")
        p = t.get("p_value")
        out.append(
            f"| {SERIES_LABEL.get(s['kind'], s['kind'])} | {s['target']} | {len(s.get('days') or [])} | "
            f"{'—' if pct is None else f'{round(pct):+d} %'} | {'—' if p is None else f'{p:.3g}'} | "
            f"{icon.get(s['status'], '')} {s['verdict'].replace('|', '/')} |"
        )
    return out + [""]
