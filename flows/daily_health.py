"""The daily health flow: probe every endpoint concurrently, read GPUs and disks, rotate
logs, restart (guarded) when the runbook says so, alert, record history, report.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.utilities.annotations import quote

from llm_upkeep.checks import CheckResult, overall_status
from llm_upkeep.clients import make_http_client
from llm_upkeep.config import Config
from llm_upkeep.fleet import plan_scope, runs_on_hosts
from llm_upkeep.fleet_parts import part_checks, prefix_checks, render_hosts
from llm_upkeep.health import HealthResult, check_probe, plan_restarts, render_report
from llm_upkeep.logrotate import check_rotation
from llm_upkeep.measure import start_probe_worker
from llm_upkeep.noconfig import nothing_checked
from llm_upkeep.notices import cleared_checks, resolved
from llm_upkeep.redact import install_log_redaction
from llm_upkeep.telemetry import check_gpus
from tasks.fleet import dispatching, publish_if_part, start_host_parts, wait_parts
from tasks.health import (
    collect_gpus_task,
    measure_disk_task,
    probe_endpoint_task,
    publish_report_task,
    record_history_task,
    restart_server_task,
    rotate_logs_task,
    send_alert_task,
    verify_recovery_task,
)
from tasks.notify import send_notice_task
from tasks.prom import export_metrics_task
from tasks.run_config import load_run_config
from tasks.servermetrics import judge_server_metrics_task, read_server_metrics_task


async def _probe(endpoint, cfg: Config):
    """A probe whose retries ran out yields its classified (failed) result."""
    h = cfg.health
    backoff = [h.probe_retry_delay_s * 2**i for i in range(h.probe_retries)] or 0
    t = probe_endpoint_task.with_options(retries=h.probe_retries, retry_delay_seconds=backoff)
    return await t(endpoint, h.probe_prompt, h.probe_max_tokens)


@flow(name="daily-health", log_prints=False)
async def daily_health(
    config_path: str | None = None,
    allow_restart: bool = True,
    chain_runbook: bool = True,
    scope: Literal["all", "central", "host"] = "all",
    host: str | None = None,
) -> HealthResult:
    """chain_runbook: when degraded, run the emergency runbook as a subflow (diagnose, fix, verify).
    scope/host: in a fleet, the central run probes over HTTP and each host's run does its
    host-local steps (NVML, disk, logs, restarts) on that host's work queue."""
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    started = datetime.now(UTC)
    cfg = load_run_config(config_path)
    state_dir = str(cfg.state_path)
    plan = plan_scope(cfg, scope, host)
    if plan.endpoints:
        start_probe_worker()  # its imports overlap the steps before the probes; a host part probes nothing
    logger.info("daily health %s", plan.describe())
    # Fleet: the central run dispatches each host's part (NVML, disk, logs, restarts of its own
    # endpoints) to that host's queue before it probes (created first, so the hosts work while the
    # probes stream instead of queueing behind them), and reports one row per host.
    started_parts = None
    if scope == "central" and dispatching(cfg) and runs_on_hosts(cfg.fleet, "daily-health"):
        per_host = {h.name: {"scope": "host", "host": h.name, "allow_restart": allow_restart,
                             "chain_runbook": chain_runbook} for h in cfg.fleet.hosts}  # fmt: skip
        if config_path:
            per_host = {h: dict(p, config_path=config_path) for h, p in per_host.items()}
        started_parts = await start_host_parts(cfg, "daily-health", per_host)

    # Host-local steps run in the task runner's threads while the probes stream.
    gpu_f = collect_gpus_task.submit() if plan.gpu else None
    disk_f = (
        measure_disk_task.submit(cfg.health.disk_paths, cfg.health.disk_alert_percent) if plan.disk else None
    )
    rot_f = rotate_logs_task.submit(cfg.logs) if plan.logs else None

    checks: list[CheckResult] = []
    actions = []
    async with make_http_client() as http:
        probes = await asyncio.gather(*[_probe(e, cfg) for e in plan.endpoints])
        for p in probes:
            checks += check_probe(p, cfg.health)
        snapshot = gpu_f.result() if gpu_f else None
        if snapshot is not None:
            checks += check_gpus(
                snapshot, cfg.health.gpu_memory_alert_percent, cfg.health.gpu_temperature_margin_c,
                cfg.health.gpu_temperature_alert_c,
            )  # fmt: skip
        if disk_f is not None:
            checks += disk_f.result()
        if rot_f is not None:
            checks.append(check_rotation(rot_f.result()))
        # The servers' own view (KV cache, queue); on pre-allocating hosts it replaces the device-total leak rule.
        # quote(): Prefect would walk these (the config, every endpoint, every check) looking for
        # futures on each task call; at 100 endpoints that walk was 40 % of the central run's CPU.
        readings = await read_server_metrics_task(quote(cfg), quote(plan.endpoints), http)
        checks = judge_server_metrics_task(quote(cfg), state_dir, plan.host or "local", quote(plan.endpoints),
                                           quote(readings), quote(snapshot), quote(checks))  # fmt: skip

    if allow_restart and plan.restart:
        for name, reason in plan_restarts(cfg, checks, plan.endpoints).items():
            ep = cfg.endpoint(name)
            outcome = restart_server_task(cfg.restart, state_dir, name, reason, ep.model)
            logger.info("restart %s: %s (%s)", name, outcome.decision, reason)
            if outcome.executed:
                outcome = await verify_recovery_task(
                    ep, outcome, state_dir, cfg.health.probe_prompt, cfg.health.probe_max_tokens,
                    cfg.health.ttft_alert_s, cfg.restart.recover_timeout_s,
                )  # fmt: skip
            actions.append(outcome)

    parts = await wait_parts(started_parts) if started_parts is not None else []
    own = checks + part_checks(parts, "daily_health")  # alerted here; a host part alerts its own
    checks, own_actions = list(own), list(actions)
    for part in parts:
        sub = part.parse(HealthResult)
        if sub is not None:
            checks += prefix_checks(sub.checks, part.host)
            actions += sub.actions
    status = overall_status(checks)
    empty = nothing_checked(checks, probed=len(plan.endpoints), probes_expected=plan.scope != "host")
    status = "nothing_checked" if empty and status == "ok" else status  # measured nothing: not "ok"
    result = HealthResult(status=status, checks=checks, actions=actions, started_at=started, error=empty,
                          hosts=parts)  # fmt: skip
    run_id = str(get_run_context().flow_run.id)
    record_history_task(state_dir, quote(checks), quote(snapshot), run_id, plan.host or "local")
    if any(c.failing for c in own) or any(a.decision == "failed" or a.recovered is False for a in own_actions):
        acts = "; ".join(f"restart {a.target}: {a.decision}" for a in own_actions)
        delivery = send_alert_task(
            cfg.alerts, state_dir, f"LLM health {status}", quote(checks), cfg.health.alert_suppress_minutes, acts
        )
        result.alerts.append(delivery)
        if delivery.status == "failed":
            logger.error("Slack alert was not delivered: %s", delivery.error)
    cleared = cleared_checks(state_dir, f"daily-health{plan.key_suffix}", checks)
    if cleared and cfg.alerts.enabled:  # a failing check cleared: say so once
        result.alerts.append(send_notice_task(cfg.alerts, *resolved(cleared, "daily health"), "success"))
    result.duration_s = round(time.monotonic() - t0, 3)
    if cfg.prometheus.enabled:
        export_metrics_task(cfg.prometheus, state_dir, "daily_health", plan.host or "local", quote(checks), quote(snapshot),
                            result.duration_s, status == "ok")  # fmt: skip
    report = render_report(result) + ("\n" + render_hosts(parts) if parts else "")
    publish_report_task(report, quote(checks), key_suffix=plan.key_suffix)
    logger.info("daily health: %s (%d checks, %.2f s)", status, len(checks), result.duration_s)
    # The runbook runs where the restarts run: each host part chains it for its own endpoints; a
    # central run chains it only when restarts are not host-local (then it decides them itself).
    if chain_runbook and status not in ("ok", "nothing_checked") and plan.restart and plan.endpoints:
        from flows.runbook import chain_from_health

        rb = await chain_from_health(result, config_path, endpoints=[e.name for e in plan.endpoints],
                                     host=plan.host)  # fmt: skip
        if rb is not None:
            result.runbook_status = rb.status
    publish_if_part(plan.host, quote(result))
    return result
