"""The weekly benchmark's result types and the judge step: grade, compare, record, pin.

No Prefect here: the flow calls these steps as tasks; the model-lifecycle flow can call
``judge_run`` directly with its own baseline policy.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.bench import baseline as bl
from llm_upkeep.bench.compare import Comparison, compare_runs
from llm_upkeep.bench.config import BenchmarkConfig
from llm_upkeep.bench.grading import grade_run, quality_summary, reference_answers
from llm_upkeep.bench.runner import RunResult
from llm_upkeep.bench.suites import Suite
from llm_upkeep.config import EndpointConfig

log = logging.getLogger(__name__)

JSON_METRICS = (
    "ttft_p50_s", "ttft_p99_s", "itl_p50_s", "tpot_p50_s", "e2e_p50_s",
    "output_tokens_per_s", "requests_per_s", "error_rate",
)  # fmt: skip


class EndpointBenchmark(BaseModel):
    """One endpoint (through one API) judged against its baseline."""

    target: str = Field(description="Endpoint name, with '/completions' for the completions API.")
    endpoint: str = Field(description="Endpoint name.")
    api: str = Field(description="chat | completions.")
    status: str = Field(default="ok", description="ok | regression | error.")
    run_id: str = Field(description="Run id (state_dir/benchmarks/runs/<run_id>.parquet).")
    metrics: dict[str, float | None] = Field(default_factory=dict, description="The JSON contract's metrics.")
    detail: dict[str, Any] = Field(default_factory=dict, description="Full run metrics (distributions).")
    quality: dict[str, Any] = Field(default_factory=dict, description="Quality summary.")
    baseline: dict[str, Any] | None = Field(default=None, description="Baseline used (None: none).")
    comparison: Comparison | None = Field(default=None, description="Comparison with the baseline.")
    regressions: list[dict[str, Any]] = Field(default_factory=list, description="What regressed.")
    notes: list[str] = Field(default_factory=list, description="What a reader should know.")
    plot_path: str | None = Field(default=None, description="Latency distribution PNG.")
    identity: dict[str, Any] = Field(default_factory=dict, description="Model digest and server version.")
    run: RunResult | None = Field(default=None, exclude=True, description="The run itself.")
    baseline_run: RunResult | None = Field(default=None, exclude=True, description="The baseline run.")

    def to_json(self) -> dict[str, Any]:
        q = self.quality or {}
        base = None
        if self.baseline is not None:
            base = dict(self.baseline)
            if self.comparison is not None:
                c = self.comparison
                base["metrics"] = {
                    d.metric: {
                        "baseline": d.baseline, "current": d.current, "delta_pct": d.delta_pct,
                        "p_value": d.p_value, "ci_pct": [d.ci_low_pct, d.ci_high_pct] if d.ci_low_pct is not None else None,
                        "significant": d.significant, "regression": d.regression,
                        "within_client_lag": d.within_client_lag,
                    }
                    for d in c.metrics
                }  # fmt: skip
                base["quality"] = c.quality
                base["drift"] = c.drift
                base["notes"] = c.notes
        return {
            "target": self.target,
            "metrics": {k: self.metrics.get(k) for k in JSON_METRICS},
            "quality": {"pass_rate": q.get("pass_rate"), "checks": q.get("checks", [])},
            "baseline": base,
            "regressions": self.regressions,
        }


class BenchmarkResult(BaseModel):
    """The weekly benchmark flow's typed result."""

    flow: str = Field(default="weekly-benchmark", description="Flow name.")
    status: str = Field(default="ok", description="ok | regression | degraded.")
    endpoints: list[EndpointBenchmark] = Field(default_factory=list, description="One per endpoint and API.")
    suite: dict[str, Any] = Field(default_factory=dict, description="Suite name, hash and source.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Load profile and caps.")
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="Start (UTC).")
    duration_s: float = Field(default=0.0, description="Wall time of the flow.")
    report_path: str | None = Field(default=None, description="Markdown report saved in state_dir.")
    alerts: list[dict[str, Any]] = Field(default_factory=list, description="Slack deliveries.")

    def to_json(self) -> dict[str, Any]:
        return {"flow": self.flow, "status": self.status, "endpoints": [e.to_json() for e in self.endpoints]}


def overall_status(results: list[EndpointBenchmark]) -> str:
    if any(r.status == "regression" for r in results):
        return "regression"
    if any(r.status == "error" for r in results):
        return "degraded"
    return "ok"


async def judge_run(
    run: RunResult,
    suite: Suite,
    cfg: BenchmarkConfig,
    state_dir: str | Path,
    *,
    endpoint: EndpointConfig | None = None,
    http: httpx.AsyncClient | None = None,
    save_baseline: bool = False,
    baseline_run: RunResult | None = None,
    record: bool = True,
) -> EndpointBenchmark:
    """Grade the run against its baseline, compare, record the run, pin it when asked (or first).

    baseline_run: judge against this run instead of the pinned one (model-lifecycle use).
    """
    res = EndpointBenchmark(
        target=run.label, endpoint=run.target, api=run.api, run_id=run.run_id, run=run,
        identity=run.identity.model_dump(),
    )  # fmt: skip
    ref = None
    if baseline_run is None:
        ref = bl.find_baseline(state_dir, run)
        if ref is not None:
            try:
                baseline_run = bl.load_baseline(state_dir, ref)
            except bl.BaselineError as exc:
                res.notes.append(f"baseline {ref.baseline_id} unreadable, judged without it: {exc}")
                ref = None
    else:
        ref = bl.BaselineRef(
            baseline_id=baseline_run.run_id, pinned_at=baseline_run.started_at, reason="given",
            model_digest=baseline_run.identity.model_digest, server_version=baseline_run.identity.server_version,
            run_started_at=baseline_run.started_at,
            match="exact" if baseline_run.identity.model_digest == run.identity.model_digest else "model_changed",
        )  # fmt: skip
    if baseline_run is not None and not any(r.checks for r in baseline_run.measured()):
        await grade_run(baseline_run, suite)

    refs = reference_answers(baseline_run) if baseline_run is not None else None
    res.quality = await grade_run(
        run, suite, reference=refs, endpoint=endpoint, http=http, embedding_model=cfg.embedding_model
    )
    res.metrics = run.summary_metrics()
    res.detail = run.metrics()
    res.baseline_run = baseline_run
    m = res.detail
    if m["ok"] == 0:
        res.status = "error"
        kinds = ", ".join(f"{k}: {v}" for k, v in m["error_kinds"].items())
        res.notes.append(f"every measured request failed ({kinds})")

    if baseline_run is not None and ref is not None and m["ok"] > 0:
        res.comparison = compare_runs(baseline_run, run, cfg.thresholds, match=ref.match)
        res.regressions = res.comparison.regressions
        res.notes += res.comparison.notes
        if ref.match != "exact":
            res.notes.append(_match_note(ref, run))
        if res.regressions:
            res.status = "regression"
    compared = ref if baseline_run is not None else None
    new_pin: bl.BaselineRef | None = None
    if record:
        bl.save_run(state_dir, run)
        if m["ok"] > 0 and save_baseline:
            new_pin = bl.pin_baseline(state_dir, run, "save-baseline")
            res.notes.append("this run is now the pinned baseline (--save-baseline)")
        elif m["ok"] > 0 and cfg.auto_baseline and compared is None:
            allowed, why = bl.may_auto_pin(state_dir, run)
            if allowed:
                new_pin = bl.pin_baseline(state_dir, run, "first-run")
                res.notes.append(f"no baseline yet: this run was pinned as the baseline ({why})")
            else:
                res.notes.append(f"no baseline for this suite and settings, and not pinned: {why}")
        elif compared is None:
            res.notes.append("no baseline: run with --save-baseline to pin this run")
    if compared is not None:
        res.baseline = bl.describe_baseline(compared)
        res.baseline["pinned_now"] = new_pin is not None
        res.baseline["new_baseline_run_id"] = new_pin.baseline_id if new_pin else None
    elif new_pin is not None:
        res.baseline = bl.describe_baseline(new_pin, pinned_now=True, note=res.notes[-1])
        res.baseline["new_baseline_run_id"] = new_pin.baseline_id
    if res.quality.get("pass_rate") is None and m["ok"] > 0:
        res.notes.append("no answer had an evaluable check")
    return res


def _match_note(ref: bl.BaselineRef, run: RunResult) -> str:
    parts = []
    if ref.model_digest != run.identity.model_digest:
        parts.append(f"model digest changed since the baseline ({ref.model_digest[:19]} -> "
                     f"{run.identity.model_digest[:19]}); the new model is judged against the old one "
                     "and is not pinned unless you run --save-baseline")  # fmt: skip
    if ref.server_version != run.identity.server_version:
        parts.append(f"server version changed ({ref.server_version} -> {run.identity.server_version})")
    return "; ".join(parts)


def regrade_quality(run: RunResult) -> dict[str, Any]:
    """Quality summary of an already graded run (e.g. one read back from Parquet)."""
    return quality_summary(run)
