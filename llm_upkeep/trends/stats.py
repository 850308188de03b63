"""One robust trend test for a short daily series: Theil-Sen slope, Mann-Kendall p-value.

Why these two: daily figures from a monitoring probe are noisy and carry outliers (a cold load,
a busy hour). Theil-Sen (the median of pairwise slopes) ignores up to ~29 % of wild points where
least squares would follow them; Mann-Kendall asks only whether later days tend to be higher
than earlier ones, so it needs no normality and no linear shape. Mann-Kendall's S statistic is
Kendall's tau between time and value, so scipy's kendalltau gives its p-value (tie-corrected).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, Field

MIN_POINTS = 4  # below this Mann-Kendall cannot reach any useful level


class Trend(BaseModel):
    """A fitted trend over a daily series."""

    n: int = Field(description="Number of points (days with data).")
    span_days: float = Field(description="Days between the first and the last point.")
    slope_per_day: float = Field(description="Theil-Sen slope, value units per day.")
    start: float = Field(description="Fitted value at the first point.")
    end: float = Field(description="Fitted value at the last point.")
    change_percent: float | None = Field(description="(end / start - 1) * 100; None when start <= 0.")
    p_value: float = Field(description="Two-sided Mann-Kendall p-value (1.0 when undefined).")
    tau: float = Field(description="Kendall's tau between time and value (-1..1).")

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def p_text(self) -> str:
        """'p < 0.001', 'p < 0.01' or 'p = 0.23': how a person reads significance."""
        for level in (0.001, 0.01):
            if self.p_value < level:
                return f"p < {level:g}"
        return f"p = {self.p_value:.2f}"


def trend_test(days: Sequence[float], values: Sequence[float]) -> Trend | None:
    """Trend of `values` over `days` (day numbers); None when there are too few points to say."""
    from scipy.stats import kendalltau, theilslopes

    pts = [(float(d), float(v)) for d, v in zip(days, values, strict=True) if math.isfinite(v)]
    if len(pts) < MIN_POINTS or len({d for d, _ in pts}) < 2:
        return None
    xs = [d for d, _ in pts]
    ys = [v for _, v in pts]
    slope, intercept, _, _ = theilslopes(ys, xs)
    if len(set(ys)) == 1:
        tau, p = 0.0, 1.0
    else:
        res = kendalltau(xs, ys)
        tau, p = float(res.statistic), float(res.pvalue)
        if not math.isfinite(p):
            tau, p = 0.0, 1.0
    x0, x1 = min(xs), max(xs)
    start, end = intercept + slope * x0, intercept + slope * x1
    pct = (end / start - 1) * 100 if start > 0 else None
    return Trend(
        n=len(pts), span_days=round(x1 - x0, 3), slope_per_day=float(slope), start=float(start), end=float(end),
        change_percent=None if pct is None else round(pct, 2), p_value=p, tau=round(tau, 4),
    )  # fmt: skip
