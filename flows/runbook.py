"""The runbook flow: the playbook's emergency table, executed. Observe every endpoint and the host,
diagnose, ask a person once for the risky fixes (pause_flow_run, answered from the Prefect UI),
fix, verify by re-probing, escalate the rest; an incident report artifact and one Slack thread
per incident.

Run it by hand (UI, `llm-upkeep run runbook`), let the automation in prefect.yaml start it when a
daily-health run fails, or chain it from daily health with chain_from_health().
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import get_run_context
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from prefect.utilities.annotations import quote
from pydantic import Field

from llm_upkeep.clients import make_http_client
from llm_upkeep.config import Config
from llm_upkeep.fleet import runs_on_hosts
from llm_upkeep.fleet_parts import render_hosts
from llm_upkeep.health import HealthResult
from llm_upkeep.redact import install_log_redaction
from llm_upkeep.runbook.engine import (
    Approval,
    approval_request_markdown,
    build_incidents,
    deny_all,
    pending_approvals,
)
from llm_upkeep.runbook.fixes import FixContext
from llm_upkeep.runbook.incident import Incident, RunbookResult, overall_status, render_report
from llm_upkeep.runbook.rows import FixPlan
from tasks.fleet import dispatching, publish_if_part, run_host_parts
from tasks.run_config import load_run_config
from tasks.runbook import (
    close_thread_task,
    observe_endpoint_task,
    observe_host_task,
    open_thread_task,
    publish_report_task,
    read_gpus_task,
    remediate_task,
)


class RunbookApproval(RunInput):
    """The form a person fills in the Prefect UI to resume a paused runbook run."""

    approve_all: bool = Field(default=False, description="Approve every risky fix listed.")
    approve: list[str] = Field(default_factory=list, description="Ids of the risky fixes to approve.")
    note: str = Field(default="", description="Who approved and why (kept in the incident timeline).")


async def _resume_self() -> None:
    """After a pause timed out, put the run back to Running so its remaining steps and its final
    state are recorded (Prefect would otherwise fail a run that finishes while paused)."""
    run_id = get_run_context().flow_run.id
    async with get_client() as client:
        await client.set_flow_run_state(run_id, Running(), force=True)


async def request_approval(
    cfg: Config, plans: list[FixPlan], incidents: list[Incident], wait: bool
) -> Approval:
    """One pause for all risky fixes of the run; what was not approved is escalated, never run."""
    if not plans:
        return Approval()
    if not wait:
        return await deny_all(plans, incidents)
    logger = get_run_logger()
    rb = cfg.runbook
    form = RunbookApproval.with_initial_data(
        description=approval_request_markdown(plans, incidents), approve_all=False, approve=[], note=""
    )
    logger.warning(
        "runbook: %d risky fix(es) wait for approval in the UI (%d s)", len(plans), rb.approval_timeout_s
    )
    try:
        answer = await pause_flow_run(
            wait_for_input=form, timeout=rb.approval_timeout_s, poll_interval=rb.approval_poll_s
        )
    except FlowPauseTimeout:
        await _resume_self()
        return Approval(set(), f"approval timed out after {rb.approval_timeout_s} s")
    ids = {p.id for p in plans}
    chosen = ids if answer.approve_all else ids & set(answer.approve)
    unknown = set(answer.approve) - ids
    note = "approved in the Prefect UI" if chosen else "denied in the Prefect UI"
    if answer.note:
        note += f": {answer.note}"
    if unknown:
        note += f" (ignored unknown ids: {', '.join(sorted(unknown))})"
    return Approval(chosen, note)


@flow(name="runbook", log_prints=False)
async def runbook(
    config_path: str | None = None,
    dry_run: bool = False,
    wait_for_approval: bool = True,
    trigger: str = "manual",
    health_checks: list[dict] | None = None,
    endpoints: list[str] | None = None,
    host: str | None = None,
) -> RunbookResult:
    """Diagnose, fix, verify, escalate. health_checks: daily health's checks (CheckResult.public()),
    kept as evidence; endpoints: limit the run to these endpoint names; host: the fleet host this
    part runs on (only its own endpoints). On a fleet, a run without host dispatches one part to
    each host owning an endpoint concerned, so every fix runs on the endpoint's own host."""
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    result = RunbookResult(status="ok", dry_run=dry_run, trigger=trigger, started_at=datetime.now(UTC))
    cfg = load_run_config(config_path)
    chosen = [e for e in cfg.endpoints if not endpoints or e.name in endpoints]
    if host is None and dispatching(cfg) and runs_on_hosts(cfg.fleet, "runbook"):
        return await _dispatch_runbook(cfg, result, chosen, t0, dict(
            config_path=config_path, dry_run=dry_run, wait_for_approval=wait_for_approval, trigger=trigger,
            health_checks=health_checks,
        ))  # fmt: skip
    gpus_f = read_gpus_task.submit(cfg)
    async with make_http_client() as http:
        eps = [e for e in chosen if host is None or e.host == host]
        observations = await asyncio.gather(*[observe_endpoint_task(cfg, e, http) for e in eps])
        host = observe_host_task(cfg, gpus_f.result())
        incidents = build_incidents(cfg, list(observations), host, health_checks)
        for inc in incidents:
            logger.warning("runbook: %s on %s (%s)", inc.symptom, inc.target, inc.diagnosis.cause)
            open_thread_task(cfg.alerts, quote(inc))
        approval = await request_approval(
            cfg, pending_approvals(cfg, incidents, dry_run), incidents, wait_for_approval
        )
        ctx = FixContext(cfg=cfg, http=http, dry_run=dry_run,
                         observations={o.endpoint.name: o for o in observations}, host=host)  # fmt: skip
        done: list[Incident] = []
        for inc in incidents:
            inc = await remediate_task(quote(ctx), quote(inc), approval)
            logger.info("runbook: %s on %s: %s", inc.symptom, inc.target, inc.summary)
            for d in close_thread_task(cfg.alerts, quote(inc)) or []:
                if d.status == "failed":
                    logger.error("Slack delivery failed: %s", d.error)
            done.append(inc)
    result.incidents = done
    result.status = overall_status(done, dry_run)
    result.duration_s = round(time.monotonic() - t0, 3)
    publish_report_task(render_report(result), quote(result))
    logger.info("runbook: %s (%d incident(s), %.2f s)", result.status, len(done), result.duration_s)
    publish_if_part(host, result)
    return result


async def _dispatch_runbook(cfg: Config, result: RunbookResult, chosen, t0: float, common: dict) -> RunbookResult:
    """The central runbook of a fleet: one part per host owning a chosen endpoint, on that host."""
    per_host: dict[str, dict] = {}
    for e in chosen:
        per_host.setdefault(e.host, {**{k: v for k, v in common.items() if v is not None}, "host": e.host,
                                     "endpoints": []})["endpoints"].append(e.name)  # fmt: skip
    parts = await run_host_parts(cfg, "runbook", per_host)
    for part in parts:
        sub = part.parse(RunbookResult)
        if sub is not None:
            result.incidents += sub.incidents
    result.hosts = parts
    result.status = overall_status(result.incidents, result.dry_run)
    if any(not p.ran for p in parts):
        result.status = "escalated"  # a host whose part did not run has unknown problems
    result.duration_s = round(time.monotonic() - t0, 3)
    publish_report_task(render_report(result) + "\n" + render_hosts(parts), quote(result))
    get_run_logger().info("runbook (fleet): %s, %d incident(s); hosts %s", result.status, len(result.incidents),
                          ", ".join(f"{p.host} {p.status}" for p in parts))  # fmt: skip
    return result


async def chain_from_health(
    health: HealthResult,
    config_path: str | None = None,
    *,
    wait_for_approval: bool = False,
    endpoints: list[str] | None = None,
    host: str | None = None,
) -> RunbookResult | None:
    """Run the runbook after a degraded daily health run (a subflow), with its checks as evidence.
    Risky fixes are escalated rather than holding the daily run for an approval by default."""
    if health.status == "ok":
        return None
    return await runbook(
        config_path=config_path, trigger="daily-health", wait_for_approval=wait_for_approval,
        health_checks=[c.public() for c in health.checks], endpoints=endpoints, host=host,
    )  # fmt: skip
