"""Compare a run with its baseline: per-metric deltas with significance, quality, answer drift,
and the regression verdict.

Significance (docs/metrics.md): a one-sided Mann-Whitney U test over the per-request samples
(is `now` stochastically worse than the baseline?), at level `alpha`. A latency or throughput
metric regresses only when its median moved in the bad direction by more than its threshold
AND the test is significant; the threshold keeps tiny-but-real shifts quiet, the test keeps
noise quiet. A 95 % percentile-bootstrap CI of the median's relative change is reported beside
each delta for the reader; it does not vote.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from llm_upkeep.bench.checks import lexical_similarity, normalize_text
from llm_upkeep.bench.config import RegressionThresholds
from llm_upkeep.bench.grading import reference_answers
from llm_upkeep.bench.runner import RunResult
from llm_upkeep.bench.stats import bootstrap_median_change_ci, mann_whitney_worse, pct_change

# metric name in reports, per-request sample column, higher is worse, threshold attribute (None: report only)
METRIC_SPECS: list[tuple[str, str, bool, str | None]] = [
    ("ttft_p50_s", "ttft_s", True, "ttft_p50_pct"),
    ("e2e_p50_s", "e2e_s", True, "e2e_p50_pct"),
    ("tpot_p50_s", "tpot_s", True, "tpot_p50_pct"),
    ("decode_tokens_per_s_p50", "decode_tokens_per_s", False, "tokens_per_s_pct"),
    ("ttft_p99_s", "ttft_s", True, None),
    ("itl_p50_s", "itl_s", True, None),
]


class MetricDelta(BaseModel):
    metric: str = Field(description="Metric name, e.g. ttft_p50_s.")
    baseline: float | None = Field(default=None, description="Baseline value.")
    current: float | None = Field(default=None, description="Value now.")
    delta_pct: float | None = Field(default=None, description="(now / baseline - 1) * 100.")
    p_value: float | None = Field(default=None, description="One-sided Mann-Whitney U p (now worse).")
    ci_low_pct: float | None = Field(default=None, description="95 % bootstrap CI of the median change, low.")
    ci_high_pct: float | None = Field(
        default=None, description="95 % bootstrap CI of the median change, high."
    )
    significant: bool = Field(default=False, description="p_value < alpha.")
    higher_is_worse: bool = Field(default=True, description="Direction of 'worse'.")
    threshold_pct: float | None = Field(default=None, description="Regression threshold, percent.")
    regression: bool = Field(default=False, description="Worse beyond threshold and significant.")
    shift_s: float | None = Field(
        default=None, description="The change as time added to one request (s), for the client-lag rule."
    )
    within_client_lag: bool = Field(
        default=False, description="Worse and significant, but no larger than the benchmark host's own lag."
    )


class Comparison(BaseModel):
    baseline_run_id: str = Field(description="Baseline run id.")
    match: str = Field(default="exact", description="How the baseline matches (exact, model_changed...).")
    metrics: list[MetricDelta] = Field(default_factory=list, description="Per-metric comparison.")
    quality: dict[str, Any] = Field(default_factory=dict, description="Pass rates on comparable checks.")
    drift: dict[str, Any] = Field(default_factory=dict, description="Answer drift against the baseline.")
    prompts: list[dict[str, Any]] = Field(default_factory=list, description="Per-prompt table rows.")
    checks: list[dict[str, Any]] = Field(default_factory=list, description="Per-check pass rates, both runs.")
    regressions: list[dict[str, Any]] = Field(
        default_factory=list, description="What regressed, and by how much."
    )
    notes: list[str] = Field(default_factory=list, description="What a reader should know.")

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def requests_frame(run: RunResult) -> pd.DataFrame:
    """Measured requests as a DataFrame (one row per request; checks kept as a list column)."""
    rows = [r.model_dump() for r in run.measured()]
    cols = ["prompt_id", "job", "repeat", "ok", "error_kind", "ttft_s", "e2e_s", "tpot_s",
            "decode_tokens_per_s", "output_tokens", "itl_s", "answer", "checks"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def check_frame(run: RunResult) -> pd.DataFrame:
    """One row per (request, check) with passed True/False/None."""
    rows = []
    for r in run.measured():
        if not r.ok:
            continue
        for c in r.checks:
            rows.append({"seq": r.seq, "prompt_id": r.prompt_id, "job": r.job, "check": c["name"],
                         "type": c["type"], "passed": c["passed"], "score": c.get("score")})  # fmt: skip
    return pd.DataFrame(rows, columns=["seq", "prompt_id", "job", "check", "type", "passed", "score"])


def _samples(df: pd.DataFrame, col: str) -> list[float]:
    ok = df[df["ok"]]
    if col == "itl_s":
        return [float(x) for lst in ok["itl_s"] for x in (lst if lst is not None else [])]
    return [float(x) for x in ok[col].dropna()]


def _stat(values: list[float], metric: str) -> float | None:
    if not values:
        return None
    q = 0.99 if metric.endswith("_p99_s") else 0.5
    return float(pd.Series(values).quantile(q))


def client_lag_budget(baseline: RunResult, current: RunResult) -> float:
    """Time the two benchmark runs may have added on their own: the sum of their loop-lag p99s."""
    return float((baseline.client_lag_s or {}).get("p99") or 0.0) + float(
        (current.client_lag_s or {}).get("p99") or 0.0
    )


def _shift_s(col: str, bv: float, cv: float, tokens: float) -> float:
    """The median's change as time added to one request (s)."""
    if col in ("ttft_s", "e2e_s"):
        return cv - bv
    if col == "tpot_s":
        return (cv - bv) * max(1.0, tokens - 1)
    if col == "decode_tokens_per_s":
        return (1.0 / cv - 1.0 / bv) * max(1.0, tokens - 1) if bv > 0 and cv > 0 else float("inf")
    return cv - bv


def compare_metrics(baseline: RunResult, current: RunResult, th: RegressionThresholds) -> list[MetricDelta]:
    b, c = requests_frame(baseline), requests_frame(current)
    budget = client_lag_budget(baseline, current)
    tokens = float(c[c["ok"]]["output_tokens"].median()) if c["ok"].any() else 1.0
    out = []
    for metric, col, higher_worse, attr in METRIC_SPECS:
        bs, cs = _samples(b, col), _samples(c, col)
        bv, cv = _stat(bs, metric), _stat(cs, metric)
        d = MetricDelta(metric=metric, baseline=bv, current=cv, delta_pct=pct_change(bv, cv),
                        higher_is_worse=higher_worse, threshold_pct=getattr(th, attr) if attr else None)  # fmt: skip
        if attr:
            d.p_value = mann_whitney_worse(bs, cs, higher_worse)
            ci = bootstrap_median_change_ci(bs, cs)
            if ci:
                d.ci_low_pct, d.ci_high_pct = ci
            d.significant = d.p_value is not None and d.p_value < th.alpha
            if d.delta_pct is not None and d.threshold_pct is not None:
                worse = d.delta_pct > d.threshold_pct if higher_worse else d.delta_pct < -d.threshold_pct
                d.shift_s = _shift_s(col, bv, cv, tokens)
                # A change no larger than the benchmark host's own scheduling lag may be the host's.
                d.within_client_lag = worse and d.significant and abs(d.shift_s) <= budget
                d.regression = worse and d.significant and not d.within_client_lag
        out.append(d)
    bm, cm = baseline.metrics(), current.metrics()
    for metric, higher_worse in (
        ("output_tokens_per_s", False),
        ("requests_per_s", False),
        ("error_rate", True),
    ):
        out.append(MetricDelta(metric=metric, baseline=bm[metric], current=cm[metric],
                               delta_pct=pct_change(bm[metric], cm[metric]), higher_is_worse=higher_worse))  # fmt: skip
    return out


def _answer_pass_rate(df: pd.DataFrame) -> float | None:
    """Share of answers whose checks (in df) all passed."""
    if df.empty:
        return None
    per_answer = df.groupby("seq")["passed"].all()
    return float(per_answer.mean())


def compare_runs(
    baseline: RunResult, current: RunResult, thresholds: RegressionThresholds, *, match: str = "exact"
) -> Comparison:
    """Judge `current` against `baseline`; both must have been graded (grading.grade_run)."""
    th = thresholds
    comp = Comparison(baseline_run_id=baseline.run_id, match=match)
    comp.metrics = compare_metrics(baseline, current, th)
    bound = [f"{name}: {r.client_bound}" for name, r in (("now", current), ("baseline", baseline)) if r.client_bound]
    if bound:
        # The client set the pace: its latencies include its own queueing, so no speed verdict.
        for d in comp.metrics:
            d.regression = False
        comp.notes.append("no speed verdict: the benchmark client, not the server, was the bottleneck ("
                          + "; ".join(bound) + "); rerun with fewer streams or on a quieter host")  # fmt: skip
    lagged = [d for d in comp.metrics if d.within_client_lag]
    if lagged:
        budget = client_lag_budget(baseline, current)
        comp.notes.append(
            "not judged a regression: "
            + ", ".join(f"{d.metric} {d.delta_pct:+.0f} %" for d in lagged)
            + f" adds no more time per request than the benchmark host's own event-loop lag "
            f"({budget * 1000:.1f} ms, p99 now + at baseline): the host running the benchmark was busy"
        )
    for d in comp.metrics:
        if d.regression:
            comp.regressions.append({
                "kind": "speed", "metric": d.metric, "baseline": d.baseline, "current": d.current,
                "delta_pct": round(d.delta_pct, 2) if d.delta_pct is not None else None,
                "threshold_pct": d.threshold_pct, "p_value": d.p_value,
                "detail": f"{d.metric} {'up' if d.higher_is_worse else 'down'} {abs(d.delta_pct or 0):.1f} % "
                          f"(threshold {d.threshold_pct:g} %, p={d.p_value:.2g})",
            })  # fmt: skip

    bm, cm = baseline.metrics(), current.metrics()
    if cm["error_rate"] - bm["error_rate"] > th.error_rate_increase:
        comp.regressions.append({
            "kind": "errors", "metric": "error_rate", "baseline": bm["error_rate"], "current": cm["error_rate"],
            "detail": f"error rate {bm['error_rate']:.0%} -> {cm['error_rate']:.0%} "
                      f"({', '.join(f'{k}: {v}' for k, v in cm['error_kinds'].items())})",
        })  # fmt: skip

    # Quality: only checks evaluated in both runs (a baseline never grades similarity to itself).
    bc, cc = check_frame(baseline), check_frame(current)
    bev = bc[bc["passed"].notna()]
    cev = cc[cc["passed"].notna()]
    comparable = set(zip(bev["prompt_id"], bev["check"], strict=True)) & set(
        zip(cev["prompt_id"], cev["check"], strict=True)
    )

    def restrict(df: pd.DataFrame) -> pd.DataFrame:
        keys = list(zip(df["prompt_id"], df["check"], strict=True))
        mask = pd.Series([k in comparable for k in keys], index=df.index, dtype=bool)
        return df[mask].astype({"passed": bool})

    bq, cq = restrict(bev), restrict(cev)
    b_rate, c_rate = _answer_pass_rate(bq), _answer_pass_rate(cq)
    comp.quality = {
        "baseline_pass_rate": b_rate,
        "current_pass_rate": c_rate,
        "delta": (c_rate - b_rate) if b_rate is not None and c_rate is not None else None,
        "comparable_checks": len(comparable),
    }

    # Per-check and per-prompt tables (pandas merge of the two runs).
    def per(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        if df.empty:
            return pd.DataFrame(columns=[*keys, "pass_rate", "n"])
        g = df.groupby(keys)["passed"]
        return pd.DataFrame({"pass_rate": g.mean(), "n": g.size()}).reset_index()

    pc = per(bq, ["prompt_id", "check"]).merge(
        per(cq, ["prompt_id", "check"]),
        on=["prompt_id", "check"],
        how="outer",
        suffixes=("_baseline", "_now"),
    )
    comp.checks = [
        {"prompt": r["prompt_id"], "check": r["check"], "baseline_pass_rate": _f(r["pass_rate_baseline"]),
         "pass_rate": _f(r["pass_rate_now"])}
        for r in pc.to_dict(orient="records")
    ]  # fmt: skip

    bprompt = (
        bq.groupby(["prompt_id", "seq"])["passed"].all().groupby("prompt_id").mean()
        if not bq.empty
        else pd.Series(dtype=float)
    )
    cprompt = (
        cq.groupby(["prompt_id", "seq"])["passed"].all().groupby("prompt_id").mean()
        if not cq.empty
        else pd.Series(dtype=float)
    )
    newly_failing = sorted(p for p, v in bprompt.items() if v == 1.0 and cprompt.get(p, 1.0) < 1.0)

    if b_rate is not None and c_rate is not None and b_rate - c_rate > th.pass_rate_drop:
        comp.regressions.append({
            "kind": "quality", "metric": "pass_rate", "baseline": b_rate, "current": c_rate,
            "delta": c_rate - b_rate, "threshold": th.pass_rate_drop, "prompts": newly_failing,
            "detail": f"pass rate {b_rate:.0%} -> {c_rate:.0%} (drop > {th.pass_rate_drop:.0%})"
                      + (f"; now failing: {', '.join(newly_failing)}" if newly_failing else ""),
        })  # fmt: skip

    # Answer drift: similarity checks (graded against the baseline's answers) and changed answers.
    refs = reference_answers(baseline)
    sim = cc[(cc["type"] == "similarity") & cc["passed"].notna()]
    cur = requests_frame(current)
    cur = cur[cur["ok"]]
    changed = {}
    lex = {}
    for pid, grp in cur.groupby("prompt_id"):
        if pid in refs:
            ans = grp["answer"].iloc[0]
            changed[pid] = normalize_text(ans) != normalize_text(refs[pid])
            lex[pid] = lexical_similarity(ans, refs[pid])
    sim_fail = float((~sim["passed"].astype(bool)).mean()) if not sim.empty else None
    comp.drift = {
        "method": current.similarity_method,
        "similarity_checks": int(len(sim)),
        "similarity_fail_rate": sim_fail,
        "similarity_mean": float(sim["score"].astype(float).mean()) if not sim.empty else None,
        "answers_changed": int(sum(changed.values())),
        "prompts_compared": len(changed),
    }
    if sim_fail is not None and sim_fail > th.pass_rate_drop:
        drifted = sorted(set(sim[~sim["passed"].astype(bool)]["prompt_id"]))
        comp.regressions.append({
            "kind": "drift", "metric": "similarity_to_baseline", "baseline": 0.0, "current": sim_fail,
            "threshold": th.pass_rate_drop, "prompts": drifted,
            "detail": f"{sim_fail:.0%} of answers drifted from the baseline answers "
                      f"({current.similarity_method}): {', '.join(drifted)}",
        })  # fmt: skip

    # Per-prompt rows (speed and quality, baseline vs now).
    b_all, c_all = requests_frame(baseline), requests_frame(current)

    def prompt_speed(df: pd.DataFrame) -> pd.DataFrame:
        ok = df[df["ok"]]
        if ok.empty:
            return pd.DataFrame(columns=["prompt_id", "ttft_p50_s", "e2e_p50_s", "tokens"])
        g = ok.groupby("prompt_id")
        return pd.DataFrame({"ttft_p50_s": g["ttft_s"].median(), "e2e_p50_s": g["e2e_s"].median(),
                             "tokens": g["output_tokens"].median()}).reset_index()  # fmt: skip

    ps = prompt_speed(b_all).merge(
        prompt_speed(c_all), on="prompt_id", how="outer", suffixes=("_baseline", "_now")
    )
    rows = []
    for r in ps.to_dict(orient="records"):
        pid = r["prompt_id"]
        rows.append({
            "prompt": pid,
            "ttft_p50_s_baseline": _f(r.get("ttft_p50_s_baseline")), "ttft_p50_s": _f(r.get("ttft_p50_s_now")),
            "e2e_p50_s_baseline": _f(r.get("e2e_p50_s_baseline")), "e2e_p50_s": _f(r.get("e2e_p50_s_now")),
            "pass_rate_baseline": _f(bprompt.get(pid)), "pass_rate": _f(cprompt.get(pid)),
            "answer_changed": changed.get(pid), "lexical_similarity": _f(lex.get(pid)),
        })  # fmt: skip
    comp.prompts = rows
    return comp


def _f(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(x) else x
