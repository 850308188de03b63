"""The runbook's engine: observe every endpoint and the host, diagnose, ask once for approval of
the risky fixes, fix, verify by re-probing, and escalate what did not recover.

No Prefect here. The flow (flows/runbook.py) runs the same steps as tasks and asks for approval
with pause_flow_run; run_runbook below runs them in-process (tests, scripts), with an approver
callback standing in for the person.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from llm_upkeep.clients import make_http_client
from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.disk import measure_disk
from llm_upkeep.measure import measure_probe
from llm_upkeep.restart import record_recovery
from llm_upkeep.runbook.fixes import FixContext, FixResult, execute_fix, restart_outcome
from llm_upkeep.runbook.gibberish import score_gibberish
from llm_upkeep.runbook.incident import (
    Incident,
    RunbookResult,
    close_thread,
    open_incident,
    open_thread,
    overall_status,
)
from llm_upkeep.runbook.observe import (
    HostObservation,
    Observation,
    ask_canary,
    observe_endpoint,
    observe_host,
)
from llm_upkeep.runbook.rows import ROW_BY_SYMPTOM, FixPlan, diagnose, plan_fixes
from llm_upkeep.telemetry import GpuSnapshot, collect_gpus


@dataclass
class Approval:
    """Which risky plans a person (or policy) approved, and how the decision came about."""

    approved: set[str] = field(default_factory=set)
    note: str = "not approved"


Approver = Callable[[list[FixPlan], list[Incident]], Awaitable[Approval]]


async def deny_all(plans: list[FixPlan], incidents: list[Incident]) -> Approval:
    """The approver of a run nobody can answer (CLI without a server to resume it)."""
    return Approval(set(), "no approval was requested: run the 'runbook' deployment to approve from the UI, "
                           "or set runbook.allow_risky_fixes")  # fmt: skip


def read_gpus(cfg: Config) -> GpuSnapshot:
    return collect_gpus() if cfg.gpu.enabled else GpuSnapshot(status="skipped", reason="gpu.enabled is false")


async def observe_all(
    cfg: Config, http: httpx.AsyncClient, gpus: GpuSnapshot, endpoints: list[str] | None = None
) -> tuple[list[Observation], HostObservation]:
    eps = [e for e in cfg.endpoints if not endpoints or e.name in endpoints]
    observations = await asyncio.gather(*[observe_endpoint(cfg, e, http) for e in eps])
    host = await asyncio.to_thread(observe_host, cfg, gpus)
    return list(observations), host


def build_incidents(
    cfg: Config,
    observations: list[Observation],
    host: HostObservation,
    health_checks: list[dict] | None = None,
) -> list[Incident]:
    """Diagnoses with their fix plans; what daily health saw on the same target becomes evidence too."""
    by_name = {o.endpoint.name: o for o in observations}
    incidents = []
    for d in diagnose(cfg, observations, host):
        obs = by_name.get(d.endpoint or "")
        for c in health_checks or []:
            if c.get("target") == d.target and c.get("status") in ("warn", "alert", "error"):
                val = (
                    ""
                    if c.get("value") is None
                    else f" {c['value']}{(' ' + c['unit']) if c.get('unit') else ''}"
                )
                d.evidence.append(
                    f"daily-health: {c.get('check')} {c.get('status')}{val} {c.get('detail') or ''}".strip()
                )
        incidents.append(open_incident(d, plan_fixes(cfg, d, obs)))
    return incidents


def pending_approvals(cfg: Config, incidents: list[Incident], dry_run: bool) -> list[FixPlan]:
    """Risky plans that need a person: none in a dry run or when config allows risky fixes."""
    if dry_run or cfg.runbook.allow_risky_fixes:
        return []
    seen: dict[str, FixPlan] = {}
    for i in incidents:
        for p in i.plans:
            if p.risky:
                seen.setdefault(p.id, p)
    return list(seen.values())


def approval_request_markdown(plans: list[FixPlan], incidents: list[Incident]) -> str:
    """What the person sees in the Prefect UI's resume form."""
    lines = ["## The runbook asks for approval", "", "Incidents:", ""]
    lines += [f"- `{i.symptom}` on `{i.target}`: {i.diagnosis.cause}" for i in incidents]
    lines += ["", "Risky fixes (put their ids in `approve`, or tick `approve_all`):", ""]
    lines += [f"- `{p.id}`: {p.description}" for p in plans]
    return "\n".join(lines)


# ---------------------------------------------------------------- verification


async def _check_once(
    cfg: Config, ep: EndpointConfig, http: httpx.AsyncClient, kind: str
) -> tuple[bool, str]:
    rb = cfg.runbook
    p = await measure_probe(ep, prompt=cfg.health.probe_prompt, max_tokens=rb.probe_max_tokens)
    if not p.ok:
        return False, f"{ep.name}: probe failed: {p.error_kind}"
    load = (p.server or {}).get("load_duration_s") or 0.0
    if kind == "reprobe_ttft":
        ok = p.ttft_s is not None and p.ttft_s - load <= cfg.health.ttft_alert_s
        return ok, f"{ep.name}: TTFT {p.ttft_s or 0:.2f} s (limit {cfg.health.ttft_alert_s:g} s)"
    if kind == "reprobe_tps":
        tps = p.decode_tokens_per_s
        return tps is not None and tps >= rb.low_tokens_per_s, f"{ep.name}: decode {tps or 0:.1f} tokens/s"
    if kind == "reprobe_load":
        return load <= rb.cold_load_s, f"{ep.name}: load_duration {load:.2f} s"
    if kind == "ps_vram":
        entries = p.ps or []
        ok = bool(entries) and all((m.get("size_vram") or 0) >= (m.get("size") or 0) for m in entries)
        shown = ", ".join(
            f"{(m.get('size_vram') or 0) / max(1, m.get('size') or 1):.0%} in VRAM" for m in entries
        )
        return ok, f"{ep.name}: {shown or 'no /api/ps entry'}"
    if kind == "reprobe_text":
        s = score_gibberish(p.text)
        ok = s.score < rb.gibberish_threshold
        detail = f"{ep.name}: answer gibberish score {s.score:.2f}"
        if rb.canary_prompt and rb.canary_expected:
            text, canary, note = await ask_canary(cfg, ep, http)
            if canary is None and note and note.startswith("canary inconclusive"):
                detail += f", {note}"  # a thinking model's silence does not block recovery
            else:
                ok = ok and bool(canary)
                detail += f", canary {'passed' if canary else 'failed'}: {(text or note or '')[:60]!r}"
        return ok, detail
    return True, f"{ep.name}: answers (TTFT {p.ttft_s or 0:.2f} s)"


async def verify_endpoint(
    cfg: Config, ep: EndpointConfig, http: httpx.AsyncClient, kind: str
) -> tuple[bool, str, float]:
    """Re-probe until the row's check passes or runbook.verify_timeout_s runs out."""
    rb = cfg.runbook
    t0 = time.monotonic()
    detail = "not checked"
    while True:
        ok, detail = await _check_once(cfg, ep, http, kind)
        elapsed = time.monotonic() - t0
        if ok:
            return True, detail, elapsed
        if elapsed + rb.verify_interval_s > rb.verify_timeout_s:
            return False, detail, elapsed
        await asyncio.sleep(rb.verify_interval_s)


async def verify_incident(ctx: FixContext, inc: Incident) -> tuple[bool, str]:
    row = ROW_BY_SYMPTOM[inc.symptom]
    if row.verify == "disk":
        usage = measure_disk([inc.target])[0]
        limit = ctx.cfg.runbook.disk_alert_percent or ctx.cfg.health.disk_alert_percent
        ok = usage.percent is not None and usage.percent <= limit
        return ok, f"{inc.target}: {usage.percent or 0:.1f}% used (limit {limit:g}%)"
    targets = sorted(
        {r.target for r in inc.results if r.ok and _corrective(inc, r)} or {inc.diagnosis.endpoint or ""}
    )
    details, all_ok = [], True
    for name in targets:
        ep = ctx.endpoint(name)
        ok, detail, secs = await verify_endpoint(ctx.cfg, ep, ctx.http, row.verify)
        details.append(f"{detail} ({'passed' if ok else 'still failing'} after {secs:.1f} s)")
        all_ok = all_ok and ok
        for r in inc.results:
            out = restart_outcome(r)
            if out is not None and out.executed and r.target == name:
                record_recovery(
                    ctx.state_dir,
                    out.model_copy(update={"recovered": ok, "recovery_s": round(secs, 3) if ok else None}),
                )
    return all_ok, "; ".join(details)


def _corrective(inc: Incident, r: FixResult) -> bool:
    return any(p.id == r.plan_id and p.corrective for p in inc.plans)


# ---------------------------------------------------------------- remediation


async def remediate(ctx: FixContext, inc: Incident, approval: Approval) -> Incident:
    """Run the incident's plans in order, verify if a corrective fix ran, set the outcome."""
    allow = ctx.cfg.runbook.allow_risky_fixes
    for plan in inc.plans:
        approved = allow or plan.id in approval.approved
        if plan.risky and not ctx.dry_run:
            how = "allowed by runbook.allow_risky_fixes" if allow else approval.note
            inc.add("approval", f"{plan.id}: {'approved' if approved else 'NOT approved'} ({how})")
        r = await execute_fix(ctx, plan, approved=approved, approval_note=approval.note)
        inc.results.append(r)
        inc.add("action", f"{plan.action} on {plan.target}: {r.status}: {r.detail}")
    fixed = [r for r in inc.results if r.ok and _corrective(inc, r)]
    if ctx.dry_run:
        inc.outcome = "dry_run"
        would = [p.description for p in inc.plans if p.corrective or p.risky or p.action == "escalate"]
        inc.summary = "dry run: would " + ("; ".join(would) if would else "only collect evidence")
    elif fixed:
        ok, detail = await verify_incident(ctx, inc)
        inc.verification, inc.recovered = detail, ok
        inc.add("verification", detail)
        done = ", ".join(r.action for r in fixed)
        inc.outcome = "recovered" if ok else "escalated"
        inc.summary = (
            f"recovered after {done}: {detail}" if ok else f"escalated: {done} did not help: {detail}"
        )
    else:
        inc.outcome = "escalated"
        inc.summary = "escalated: " + _why_not_fixed(inc)
    inc.add("result", inc.summary)
    return inc


def _why_not_fixed(inc: Incident) -> str:
    for statuses in (("failed",), ("not_approved",), ("dry_run",), ("proposed", "escalated")):
        hits = [r for r in inc.results if r.status in statuses]
        if hits:
            return "; ".join(f"{r.action}: {r.detail}" for r in hits[:4])
    return "no automatic fix for this symptom"


# ---------------------------------------------------------------- one whole run, without Prefect


async def run_runbook(
    cfg: Config,
    *,
    dry_run: bool = False,
    approver: Approver | None = None,
    gpu_reader: Callable[[], GpuSnapshot] | None = None,
    http: httpx.AsyncClient | None = None,
    trigger: str = "manual",
    health_checks: list[dict] | None = None,
    endpoints: list[str] | None = None,
    notify: bool = True,
) -> RunbookResult:
    """Observe, diagnose, approve, fix, verify, notify; the same steps the flow runs as tasks."""
    t0 = time.monotonic()
    result = RunbookResult(status="ok", dry_run=dry_run, trigger=trigger, started_at=datetime.now(UTC))
    own = http is None
    http = http or make_http_client()
    try:
        gpus = await asyncio.to_thread(gpu_reader or (lambda: read_gpus(cfg)))
        observations, host = await observe_all(cfg, http, gpus, endpoints)
        incidents = build_incidents(cfg, observations, host, health_checks)
        if notify:
            for inc in incidents:
                await asyncio.to_thread(open_thread, cfg.alerts, inc)
        pending = pending_approvals(cfg, incidents, dry_run)
        approval = Approval()
        if pending:
            approval = await (approver or deny_all)(pending, incidents)
        ctx = FixContext(cfg=cfg, http=http, dry_run=dry_run,
                         observations={o.endpoint.name: o for o in observations}, host=host)  # fmt: skip
        for inc in incidents:
            await remediate(ctx, inc, approval)
            if notify:
                await asyncio.to_thread(close_thread, cfg.alerts, inc)
        result.incidents = incidents
        result.status = overall_status(incidents, dry_run)
    finally:
        if own:
            await http.aclose()
    result.duration_s = round(time.monotonic() - t0, 3)
    return result
