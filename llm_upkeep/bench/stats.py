"""Statistics of the benchmark: percentiles, one-sided Mann-Whitney U, bootstrap CI of a median change.

Why these: latency samples are skewed and heavy-tailed, so medians and rank tests describe them
better than means and t-tests; the bootstrap CI tells a reader how large the change plausibly is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import mannwhitneyu

PERCENTILES = (50, 90, 99)


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean, min, max and p50/p90/p99 (linear interpolation, numpy's and pandas' default)."""
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    out: dict[str, float | int | None] = {"n": int(a.size)}
    if a.size == 0:
        out.update({"mean": None, "min": None, "max": None, **{f"p{p}": None for p in PERCENTILES}})
        return out
    out.update({"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())})
    for p, v in zip(PERCENTILES, np.percentile(a, PERCENTILES), strict=True):
        out[f"p{p}"] = float(v)
    return out


def mann_whitney_worse(
    baseline: Sequence[float], current: Sequence[float], higher_is_worse: bool
) -> float | None:
    """One-sided p-value that `current` is stochastically worse than `baseline`; None if too few samples."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    if b.size < 3 or c.size < 3:
        return None
    alternative = "greater" if higher_is_worse else "less"
    if np.ptp(np.concatenate([b, c])) == 0:
        return 1.0  # identical samples: no evidence of any change
    return float(mannwhitneyu(c, b, alternative=alternative, method="auto").pvalue)


def bootstrap_median_change_ci(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap CI of (median(current) / median(baseline) - 1) * 100, in percent."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    if b.size < 3 or c.size < 3:
        return None
    rng = np.random.default_rng(seed)
    mb = np.median(rng.choice(b, size=(n_boot, b.size), replace=True), axis=1)
    mc = np.median(rng.choice(c, size=(n_boot, c.size), replace=True), axis=1)
    ok = mb != 0
    if not ok.any():
        return None
    change = (mc[ok] / mb[ok] - 1.0) * 100.0
    lo, hi = np.percentile(change, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return float(lo), float(hi)


def pct_change(baseline: float | None, current: float | None) -> float | None:
    if baseline is None or current is None or baseline == 0:
        return None
    return (current / baseline - 1.0) * 100.0
