"""Daily health: turn probe results into checks, decide restarts, render the report.

No Prefect here: the flow in flows/daily_health.py resolves config, calls these, persists
and reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from llm_upkeep.alerts import Delivery, runbook_hint
from llm_upkeep.checks import CheckResult, Status, overall_status
from llm_upkeep.config import Config, HealthConfig
from llm_upkeep.fleet_parts import HostPart
from llm_upkeep.probe import ProbeResult
from llm_upkeep.restart import RestartOutcome
from llm_upkeep.servermetrics.leak import restart_reason as leak_restart_reason

# Ollama reports load_duration; above this the probe paid for a cold model load.
COLD_LOAD_WARN_S = 5.0


def check_probe(p: ProbeResult, h: HealthConfig) -> list[CheckResult]:
    """endpoint_up, ttft, e2e_latency, tokens_per_second (+ model_load, gpu_offload on Ollama)."""
    t = p.endpoint
    if not p.ok:
        kind = p.error_kind or "unknown"
        up = CheckResult(
            check="endpoint_up", target=t, status=Status.ALERT, value=0, unit="bool",
            detail=f"{kind}: {p.error_detail or ''}".strip().rstrip(":"),
            data={"error_kind": kind},
        )  # fmt: skip
        not_measured = f"not measured: endpoint down ({kind})"
        rest = [
            CheckResult(check=c, target=t, status=Status.SKIPPED, unit=u, detail=not_measured)
            for c, u in (("ttft", "s"), ("e2e_latency", "s"), ("tokens_per_second", "tok/s"))
        ]
        return [up, *rest]

    out = [CheckResult(check="endpoint_up", target=t, status=Status.OK, value=1, unit="bool")]
    warn_at = h.ttft_warn_s if h.ttft_warn_s is not None else h.ttft_alert_s / 2
    ttft = p.ttft_s
    if ttft is None:
        out.append(
            CheckResult(
                check="ttft", target=t, status=Status.ERROR, unit="s", detail="no content token received"
            )
        )
    else:
        st = Status.ALERT if ttft > h.ttft_alert_s else Status.WARN if ttft > warn_at else Status.OK
        out.append(
            CheckResult(
                check="ttft", target=t, status=st, value=round(ttft, 4), unit="s", threshold=h.ttft_alert_s,
                detail="time to first content token (client side)",
            )
        )  # fmt: skip
    e2e_st = Status.OK
    if h.e2e_alert_s is not None and p.e2e_s is not None and p.e2e_s > h.e2e_alert_s:
        e2e_st = Status.ALERT
    out.append(
        CheckResult(
            check="e2e_latency", target=t, status=e2e_st,
            value=None if p.e2e_s is None else round(p.e2e_s, 4), unit="s", threshold=h.e2e_alert_s,
            detail=f"{p.output_tokens or 0} tokens ({p.tokens_source})",
        )
    )  # fmt: skip
    tps = p.decode_tokens_per_s
    tps_st = Status.OK
    if tps is None:
        tps_st = Status.SKIPPED
    elif h.min_tokens_per_s is not None and tps < h.min_tokens_per_s:
        tps_st = Status.WARN
    out.append(
        CheckResult(
            check="tokens_per_second", target=t, status=tps_st,
            value=None if tps is None else round(tps, 2), unit="tok/s", threshold=h.min_tokens_per_s,
            detail="decode rate after the first token" if tps is not None else "fewer than 2 tokens",
        )
    )  # fmt: skip
    load = (p.server or {}).get("load_duration_s")
    if load is not None:
        out.append(
            CheckResult(
                check="model_load", target=t, status=Status.WARN if load > COLD_LOAD_WARN_S else Status.OK,
                value=round(load, 3), unit="s", threshold=COLD_LOAD_WARN_S,
                detail="cold load: the model was not resident" if load > COLD_LOAD_WARN_S else "model resident",
            )
        )  # fmt: skip
    for m in p.ps or []:
        size, vram = m.get("size") or 0, m.get("size_vram")
        if size and vram is not None:
            pct = 100.0 * vram / size
            out.append(
                CheckResult(
                    check="gpu_offload", target=t, status=Status.WARN if vram < size else Status.OK,
                    value=round(pct, 1), unit="% in VRAM", threshold=100,
                    detail=f"{m.get('name', p.model)}: {vram}/{size} bytes in VRAM",
                )
            )  # fmt: skip
    return out


def plan_restarts(cfg: Config, checks: list[CheckResult], endpoints=None) -> dict[str, str]:
    """Endpoints to restart and why (runbook: TTFT over threshold or GPU memory leak).

    A GPU memory alert restarts every production endpoint this run covers (they share the GPUs
    of this host); a TTFT alert restarts that endpoint only.
    """
    plan: dict[str, str] = {}
    endpoints = cfg.endpoints if endpoints is None else endpoints
    if cfg.restart.on_ttft:
        for c in checks:
            if c.check == "ttft" and c.status == Status.ALERT:
                plan[c.target] = f"TTFT {c.value:.2f} s > {c.threshold:g} s (runbook: memory leak)"
    if cfg.restart.on_gpu_memory:
        hot = [c for c in checks if c.check == "gpu_memory" and c.status == Status.ALERT]
        if hot:
            why = ", ".join(f"GPU {c.target} at {c.value:.0f}%" for c in hot)
            for e in endpoints:
                if not e.staging:
                    plan.setdefault(e.name, f"{why} > {hot[0].threshold:g}% (runbook: memory leak)")
        trend = leak_restart_reason(checks)  # pre-allocating servers: a process's own growth
        for e in endpoints if trend else ():
            if not e.staging:
                plan.setdefault(e.name, trend)
    return plan


class HealthResult(BaseModel):
    """The typed result of one daily health run."""

    flow: str = Field(default="daily-health", description="Flow name, for JSON consumers.")
    status: str = Field(description="ok | degraded | failed | nothing_checked (no endpoint, every check skipped)")
    checks: list[CheckResult] = Field(default_factory=list, description="Every check, in order.")
    alerts: list[Delivery] = Field(default_factory=list, description="Slack deliveries.")
    actions: list[RestartOutcome] = Field(
        default_factory=list, description="Restarts decided, with outcomes."
    )
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="Start (UTC).")
    duration_s: float = Field(default=0.0, description="Wall time of the run.")
    error: str | None = Field(default=None, description="Why the run failed, when it did.")
    runbook_status: str | None = Field(default=None, description="Status of the chained runbook run, if any.")
    hosts: list[HostPart] = Field(
        default_factory=list, description="Fleet: each host's part of this run (missing ones included)."
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "status": self.status,
            "checks": [c.public() for c in self.checks],
            "alerts": [a.model_dump(mode="json") for a in self.alerts],
            "actions": [a.model_dump(mode="json") for a in self.actions],
            **({"note": self.error} if self.error else {}),
        }


def summarize(checks: list[CheckResult]) -> str:
    return overall_status(checks)


_ICON = {"ok": "✅", "warn": "⚠️", "alert": "🚨", "error": "❌", "skipped": "⏭️"}


def _v(c: CheckResult) -> str:
    if c.value is None:
        return "—"
    if isinstance(c.value, float):
        return f"{c.value:.3f}".rstrip("0").rstrip(".")
    return str(c.value)


def render_report(result: HealthResult) -> str:
    """The markdown health report (Prefect artifact and `--format md`)."""
    lines = [
        f"# Daily health: {result.status.upper()}",
        "",
        f"Run at {result.started_at:%Y-%m-%d %H:%M:%S} UTC, {result.duration_s:.1f} s. "
        f"TTFT is measured to the first content token, not total request time.",
        "",
    ]
    failing = [c for c in result.checks if c.status in (Status.WARN, Status.ALERT, Status.ERROR)]
    if failing:
        lines += ["## Needs attention", ""]
        for c in failing:
            hint = runbook_hint(c)
            fix = f" Likely cause: {hint[0]}. Fix: {hint[1]}." if hint else ""
            lines.append(f"- {_ICON[c.status]} **{c.check}** on `{c.target}`: {_v(c)} {c.unit or ''} "
                         f"{c.detail}.{fix}")  # fmt: skip
        lines.append("")
    lines += [
        "## Checks",
        "",
        "| check | target | status | value | unit | threshold | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.checks:
        thr = "" if c.threshold is None else f"{c.threshold:g}"
        detail = (c.detail or "").replace("|", "\\|")
        lines.append(
            f"| {c.check} | {c.target} | {_ICON[c.status]} {c.status} | {_v(c)} | {c.unit or ''} | {thr} | {detail} |"
        )
    if result.actions:
        lines += ["", "## Actions", ""]
        for a in result.actions:
            rec = "" if a.recovered is None else f", recovered: {a.recovered}"
            lines.append(f"- restart `{a.target}`: **{a.decision}** ({a.reason}; {a.restarts_in_window}/{a.budget} "
                         f"used today{rec}) `{' '.join(a.command)}`")  # fmt: skip
    if result.alerts:
        lines += ["", "## Alerts", ""]
        for d in result.alerts:
            err = f": {d.error}" if d.error else ""
            lines.append(f"- Slack {d.status}{err} ({', '.join(d.checks)})")
    return "\n".join(lines) + "\n"
