"""The trends plot: one panel per series, daily values and the fitted Theil-Sen line; a series with
a finding (drift, leak) is drawn in red with its verdict as the title."""

from __future__ import annotations

from datetime import datetime

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from llm_upkeep.plots import figure_png  # noqa: E402
from llm_upkeep.trends.review import SERIES_LABEL  # noqa: E402

MAX_PANELS = 8


def plot_trends(series: list[dict]) -> bytes | None:
    """PNG of up to MAX_PANELS series (findings first); None when no series has data."""
    rows = [s for s in series if s.get("days")]
    rows.sort(key=lambda s: (s.get("finding") is None, s["kind"], s["target"]))
    rows = rows[:MAX_PANELS]
    if not rows:
        return None
    cols = 2 if len(rows) > 1 else 1
    nrows = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 2.6 * nrows), squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax, s in zip(axes.flat, rows, strict=False):
        days = [datetime.strptime(d, "%Y-%m-%d") for d in s["days"]]
        color = "tab:red" if s.get("finding") else "tab:blue"
        ax.plot(days, s["values"], "o", ms=3, color=color, alpha=0.7)
        t = s.get("trend")
        if t:
            ax.plot([days[0], days[-1]], [t["start"], t["end"]], "-", color=color, lw=2)
        who = f"GPU {s['target']}" if s["kind"] == "gpu_memory" else s["target"]
        label = SERIES_LABEL.get(s["kind"], s["kind"])
        title = f"{who}: {s['verdict'].split(', p')[0]}" if s.get("finding") else f"{who}: {label}, no trend"
        ax.set_title(title[:95], fontsize=8, color=color)
        ax.set_ylabel(s["unit"], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
    fig.tight_layout()
    return figure_png(fig)
