"""The runbook's fixes: each takes a FixPlan and returns a FixResult, never an exception.

Restarts go through the guarded restart (llm_upkeep.restart: budget, ledger, timeout); a restart
beyond the budget, a model re-pull and a settings change run only when approved (or allowed by
config), and a settings change is only a proposal unless runbook.apply_settings is on. Nothing
here writes under /etc: the systemd restart-limit change is rendered as a drop-in for a person.
"""

from __future__ import annotations

import inspect
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.bounded_run import output_tail, run_bounded
from llm_upkeep.childenv import child_env
from llm_upkeep.clients import LLMError, OllamaClient
from llm_upkeep.clients.errors import short_detail
from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.redact import redact
from llm_upkeep.restart import RestartOutcome, restart_server
from llm_upkeep.runbook.observe import HostObservation, Observation
from llm_upkeep.runbook.rows import FixPlan

FixStatus = Literal["done", "failed", "proposed", "dry_run", "not_approved", "escalated", "skipped"]


class FixResult(BaseModel):
    """What one action did."""

    plan_id: str = Field(description="FixPlan.id.")
    action: str = Field(description="FixPlan.action.")
    target: str = Field(description="What it acted on.")
    status: FixStatus = Field(
        description="done, failed, proposed, dry_run, not_approved, escalated, skipped."
    )
    detail: str = Field(default="", description="One line: what happened (redacted).")
    data: dict[str, Any] = Field(default_factory=dict, description="Log lines, drop-in text, restart record.")
    duration_s: float | None = Field(default=None, description="How long it took.")

    @property
    def ok(self) -> bool:
        return self.status == "done"


@dataclass
class FixContext:
    """What every fix needs; `done` makes an action run once per run even when two incidents ask."""

    cfg: Config
    http: httpx.AsyncClient
    dry_run: bool = False
    observations: dict[str, Observation] = field(default_factory=dict)
    host: HostObservation | None = None
    done: dict[str, FixResult] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.cfg.state_path

    def endpoint(self, name: str) -> EndpointConfig:
        return self.cfg.endpoint(name)


def render_restart_limit_dropin(cfg: Config, unit: str) -> tuple[str, str]:
    """(path, content) of a systemd drop-in raising the unit's start limit; for a person to install."""
    rb = cfg.runbook
    path = f"/etc/systemd/system/{unit}.d/50-llm-upkeep-restart-limit.conf"
    content = (
        "# Proposed by llm-upkeep's runbook after the service crashed: let systemd keep restarting it.\n"
        f"# Install: sudo mkdir -p /etc/systemd/system/{unit}.d && sudo tee {path} < this-file\n"
        "#          sudo systemctl daemon-reload && sudo systemctl restart " + unit + "\n"
        "[Unit]\n"
        f"StartLimitIntervalSec={rb.restart_limit_interval_s}\n"
        f"StartLimitBurst={rb.restart_limit_burst}\n"
        "\n[Service]\n"
        "Restart=always\n"
        "RestartSec=5\n"
    )
    return path, content


async def verify_model_checksum(cfg: Config, endpoint: str) -> FixResult:
    """The model lifecycle's offline checksum verification, when that module is installed."""
    base = {"plan_id": f"verify_model:{endpoint}", "action": "verify_model", "target": endpoint}
    try:
        from llm_upkeep.models.verify import verify_models
    except ImportError:
        return FixResult(**base, status="skipped",
                         detail="model verification unavailable (llm_upkeep.models.verify is not installed)")  # fmt: skip
    t0 = time.monotonic()
    try:
        report = verify_models(cfg, endpoint=endpoint)
        if inspect.isawaitable(report):
            report = await report
    except Exception as exc:  # e.g. an endpoint the lifecycle does not manage: the re-probe still verifies
        return FixResult(**base, status="skipped",
                         detail=short_detail(f"verification could not run: {type(exc).__name__}: {exc}"))  # fmt: skip
    problems = [p if isinstance(p, dict) else getattr(p, "model_dump", lambda p=p: {"problem": str(p)})()
                for p in (getattr(report, "problems", None) or [])]  # fmt: skip
    warnings = [str(w) for w in (getattr(report, "warnings", None) or [])]
    ok = bool(getattr(report, "ok", not problems))
    if ok:
        detail = "no checksum problem found" + (f" (warnings: {'; '.join(warnings[:2])})" if warnings else "")
    else:
        detail = f"{len(problems)} problem(s): " + "; ".join(
            f"{p.get('model', '')} {p.get('file', '')} expected {p.get('expected')} got {p.get('actual')}"
            for p in problems[:3]
        )
    return FixResult(**base, status="done" if ok else "failed", detail=short_detail(detail, 600),
                     data={"problems": problems, "warnings": warnings},
                     duration_s=round(time.monotonic() - t0, 3))  # fmt: skip


async def _ollama_load(client: OllamaClient, model: str, keep_alive: str | int) -> None:
    """An empty generate loads the model (keep_alive > 0) or unloads it (keep_alive 0)."""
    await client.request("POST", "/api/generate", {"model": model, "keep_alive": keep_alive})


def _restart(ctx: FixContext, plan: FixPlan, approved: bool) -> FixResult:
    rc = ctx.cfg.restart
    reason = plan.params.get("reason", "runbook")
    model = plan.params.get("model", "")
    dry = True if ctx.dry_run else None
    out = restart_server(rc, ctx.state_dir, target=plan.target, reason=reason, model=model, dry_run=dry)
    if out.decision == "over_budget" and approved and not ctx.dry_run:
        raised = rc.model_copy(update={"max_per_day": out.restarts_in_window + 1})
        out = restart_server(raised, ctx.state_dir, target=plan.target, reason=f"{reason}; approved beyond budget",
                             model=model, dry_run=None)  # fmt: skip
    cmd = " ".join(out.command)
    status: FixStatus
    if out.decision == "executed":
        status, detail = "done", f"ran `{cmd}` (exit 0, {out.duration_s:.2f} s)"
    elif out.decision == "dry_run":
        why = "dry run" if ctx.dry_run else "restart.dry_run is true"
        status, detail = "dry_run", f"{why}: would run `{cmd}`"
    elif out.decision == "over_budget" and ctx.dry_run:
        status = "dry_run"
        detail = f"dry run: over the restart budget ({out.restarts_in_window}/{out.budget} in 24 h); would need approval"
    elif out.decision == "over_budget":
        status = "failed" if approved else "not_approved"
        detail = f"over the restart budget ({out.restarts_in_window}/{out.budget} in 24 h)"
    elif out.decision == "not_configured":
        status, detail = "failed", "restart.command is not configured"
    else:
        status, detail = "failed", f"`{cmd}` failed: exit {out.returncode}: {out.output_tail[-300:]}"
    return FixResult(plan_id=plan.id, action="restart", target=plan.target, status=status, detail=redact(detail),
                     data={"restart": out.model_dump(mode="json")}, duration_s=out.duration_s)  # fmt: skip


def restart_outcome(result: FixResult) -> RestartOutcome | None:
    rec = result.data.get("restart")
    return RestartOutcome.model_validate(rec) if rec else None


def _run_hook(ctx: FixContext, plan: FixPlan) -> FixResult:
    cmd = plan.params["command"]
    base = {"plan_id": plan.id, "action": "set_setting", "target": plan.target}
    t0 = time.monotonic()
    try:
        proc = run_bounded(cmd, timeout_s=ctx.cfg.runbook.hook_timeout_s, env=child_env())
    except subprocess.TimeoutExpired:
        return FixResult(
            **base,
            status="failed",
            detail=f"setting hook timed out after {ctx.cfg.runbook.hook_timeout_s:g} s",
        )
    except OSError as exc:
        return FixResult(**base, status="failed", detail=redact(f"cannot run the setting hook: {exc}"))
    tail = redact(output_tail(proc, 10))
    setting = f"{plan.params['setting']}={plan.params['value']}"
    if proc.returncode != 0:
        return FixResult(**base, status="failed", detail=f"hook for {setting} exited {proc.returncode}: {tail[-300:]}",
                         duration_s=round(time.monotonic() - t0, 3))  # fmt: skip
    return FixResult(**base, status="done", detail=f"set {setting} on {plan.target} through the hook",
                     data={"output": tail}, duration_s=round(time.monotonic() - t0, 3))  # fmt: skip


def _collect_logs(ctx: FixContext, plan: FixPlan) -> FixResult:
    tails = []
    if plan.params.get("kernel"):
        tails = ctx.host.kernel_logs if ctx.host else []
    elif plan.target in ctx.observations:
        tails = ctx.observations[plan.target].server_logs
    logs = {t.source: t.lines for t in tails if not t.error}
    errors = [f"{t.source}: {t.error}" for t in tails if t.error]
    base = {"plan_id": plan.id, "action": "collect_logs", "target": plan.target}
    if not tails:
        return FixResult(**base, status="skipped", detail="no log configured for this target (runbook.logs)")
    n = sum(len(v) for v in logs.values())
    detail = f"attached {n} line(s) from {', '.join(logs) or 'no readable log'}"
    if errors:
        detail += "; unreadable: " + "; ".join(errors)
    return FixResult(**base, status="done" if logs else "failed", detail=detail, data={"logs": logs})


async def _repull(ctx: FixContext, plan: FixPlan) -> FixResult:
    ep = ctx.endpoint(plan.target)
    model = plan.params.get("model") or ep.model
    base = {"plan_id": plan.id, "action": "repull_model", "target": plan.target}
    client = OllamaClient(ep, ctx.http)
    t0 = time.monotonic()
    last: dict = {}
    try:
        async for progress in client.pull(model, timeout_s=ctx.cfg.runbook.pull_timeout_s):
            last = progress
    except LLMError as exc:
        return FixResult(**base, status="failed", detail=f"re-pull of {model} failed: {exc.kind}: {exc.detail}",
                         duration_s=round(time.monotonic() - t0, 3))  # fmt: skip
    notes = [f"pulled {model} ({last.get('status', 'success')})"]
    try:  # the damaged copy may still be loaded: unload so the next request reads the new file
        await _ollama_load(client, model, 0)
        notes.append("unloaded the old copy")
    except LLMError as exc:
        notes.append(f"unload failed ({exc.kind}); the next load may still use the old copy")
    check = await verify_model_checksum(ctx.cfg, ep.name)
    notes.append(f"verification: {check.detail}")
    status: FixStatus = "failed" if check.status == "failed" else "done"
    return FixResult(**base, status=status, detail="; ".join(notes), data={"verify": check.model_dump()},
                     duration_s=round(time.monotonic() - t0, 3))  # fmt: skip


async def _warm(ctx: FixContext, plan: FixPlan, *, unload_first: bool) -> FixResult:
    ep = ctx.endpoint(plan.target)
    base = {"plan_id": plan.id, "action": plan.action, "target": plan.target}
    if ep.api != "ollama":
        return FixResult(
            **base, status="skipped", detail=f"{ep.api} servers keep their model loaded; nothing to load"
        )
    client = OllamaClient(ep, ctx.http)
    model = plan.params.get("model") or ep.model
    t0 = time.monotonic()
    try:
        if unload_first:
            await _ollama_load(client, model, 0)
        await _ollama_load(client, model, plan.params.get("keep_alive", ctx.cfg.runbook.keep_alive))
    except LLMError as exc:
        return FixResult(**base, status="failed", detail=f"{exc.kind}: {exc.detail}")
    what = "unloaded and reloaded" if unload_first else "loaded"
    return FixResult(**base, status="done", detail=f"{what} {model} (keep_alive={plan.params.get('keep_alive')})",
                     duration_s=round(time.monotonic() - t0, 3))  # fmt: skip


async def _list_models(ctx: FixContext, plan: FixPlan) -> FixResult:
    models: list[dict] = []
    errors = []
    for name in plan.params.get("endpoints", []):
        try:
            for m in await OllamaClient(ctx.endpoint(name), ctx.http).tags():
                models.append({"endpoint": name, "model": m.get("name"), "size": m.get("size") or 0})
        except LLMError as exc:
            errors.append(f"{name}: {exc.kind}")
    models.sort(key=lambda m: -m["size"])
    listing = ", ".join(f"{m['model']} {m['size'] / 1024**3:.1f} GiB" for m in models[:10])
    detail = f"installed models, largest first: {listing or 'none found'}" + (
        f"; errors: {', '.join(errors)}" if errors else ""
    )
    return FixResult(plan_id=plan.id, action="list_models", target=plan.target, status="done" if models else "failed",
                     detail=detail, data={"models": models})  # fmt: skip


async def execute_fix(
    ctx: FixContext, plan: FixPlan, *, approved: bool = False, approval_note: str = ""
) -> FixResult:
    """Run one planned action (or describe it, in a dry run); approval applies to risky plans only."""
    if plan.id in ctx.done and plan.action not in ("escalate", "propose_restart_limit"):
        prev = ctx.done[plan.id]
        return prev.model_copy(update={"detail": f"(already done in this run) {prev.detail}"})
    result = await _execute(ctx, plan, approved=approved, approval_note=approval_note)
    ctx.done[plan.id] = result
    return result


async def _execute(ctx: FixContext, plan: FixPlan, *, approved: bool, approval_note: str) -> FixResult:
    base = {"plan_id": plan.id, "action": plan.action, "target": plan.target}
    if plan.action == "escalate":
        return FixResult(**base, status="escalated", detail=plan.description)
    if plan.action == "propose_restart_limit":
        path, content = render_restart_limit_dropin(
            ctx.cfg, plan.params.get("unit", ctx.cfg.runbook.systemd_unit)
        )
        return FixResult(**base, status="proposed", detail=f"proposed drop-in {path} (not written)",
                         data={"dropin_path": path, "dropin": content})  # fmt: skip
    if plan.action == "collect_logs":
        return _collect_logs(ctx, plan)  # reading logs is safe even in a dry run
    if plan.action == "set_setting" and not plan.params.get("run"):
        return FixResult(
            **base,
            status="proposed",
            detail=plan.description,
            data={k: plan.params[k] for k in ("setting", "value", "current")},
        )
    if plan.action == "restart":
        # The guarded restart decides (and records) dry runs and the budget itself.
        return _restart(ctx, plan, approved or ctx.cfg.runbook.allow_risky_fixes)
    if ctx.dry_run:
        return FixResult(**base, status="dry_run", detail=f"dry run: would {plan.description}")
    if plan.risky and not (approved or ctx.cfg.runbook.allow_risky_fixes):
        return FixResult(
            **base,
            status="not_approved",
            detail=f"needs approval ({approval_note or 'not approved'}): {plan.description}",
        )
    try:
        if plan.action == "set_setting":
            return _run_hook(ctx, plan)
        if plan.action == "repull_model":
            return await _repull(ctx, plan)
        if plan.action == "verify_model":
            res = await verify_model_checksum(ctx.cfg, plan.target)
            return res.model_copy(update={"plan_id": plan.id})
        if plan.action == "warm_model":
            return await _warm(ctx, plan, unload_first=False)
        if plan.action == "reload_model":
            return await _warm(ctx, plan, unload_first=True)
        if plan.action == "list_models":
            return await _list_models(ctx, plan)
    except Exception as exc:  # one broken fix must not stop the others
        return FixResult(**base, status="failed", detail=short_detail(f"{type(exc).__name__}: {exc}"))
    return FixResult(**base, status="failed", detail=f"unknown action {plan.action}")
