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
from llm_upkeep.fleet import (
    central_metrics_endpoints,
    first_parts,
    plan_rechecks,
    plan_scope,
    recheck_parts,
    runs_on_hosts,
)
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
    probe_endpoints_task,
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


async def _probe_all(endpoints: list, cfg: Config) -> list:
    """Every endpoint at once, one task run per host (its name in the UI: probe-<host>), results
    in the config's order. A probe whose retries ran out yields its classified (failed) result."""
    h = cfg.health
    groups: dict[str, list] = {}
    for e in endpoints:
        groups.setdefault(e.host, []).append(e)
    done = await asyncio.gather(*[
        probe_endpoints_task(host, quote(eps), h.probe_prompt, h.probe_max_tokens, h.probe_retries,
                             h.probe_retry_delay_s)
        for host, eps in groups.items()
    ])  # fmt: skip
    by_name = {r.endpoint: r for results in done for r in results}
    return [by_name[e.name] for e in endpoints]


@flow(name="daily-health", log_prints=False)
async def daily_health(
    config_path: str | None = None,
    allow_restart: bool = True,
    chain_runbook: bool = True,
    scope: Literal["all", "central", "host"] = "all",
    host: str | None = None,
    endpoints: list[str] | None = None,
    probe: bool = True,
    host_checks: bool = True,
) -> HealthResult:
    """chain_runbook: when degraded, run the emergency runbook as a subflow (diagnose, fix, verify).
    scope/host: in a fleet, the central run probes over HTTP and each host's run does its
    host-local steps (NVML, disk, logs, restarts) on that host's work queue.
    endpoints/probe/host_checks only narrow a run: these endpoints only; no probes; no GPU, disk
    and log steps. The central run sends each host its part with probe=false at the start, and
    after its probes sends the endpoints it found failing back to their host (endpoints=[...],
    host_checks=false), which re-probes them there before it restarts anything."""
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    started = datetime.now(UTC)
    cfg = load_run_config(config_path)
    state_dir = str(cfg.state_path)
    plan = plan_scope(cfg, scope, host, endpoints, probe, host_checks)
    if plan.endpoints:
        start_probe_worker()  # its imports overlap the steps before the probes; a part sent with probe=false starts none
    logger.info("daily health %s", plan.describe())
    # Fleet: the central run dispatches each host's part (NVML, disk, logs, restarts of its own
    # endpoints) to that host's queue before it probes (created first, so the hosts work while the
    # probes stream instead of queueing behind them), and reports one row per host.
    started_parts, part_base = None, {}
    if scope == "central" and dispatching(cfg) and runs_on_hosts(cfg.fleet, "daily-health"):
        # probe=False: the hosts' parts start at once with their own steps; this run probes.
        part_base = {"scope": "host", "allow_restart": allow_restart, "chain_runbook": chain_runbook,
                     **({"config_path": config_path} if config_path else {})}  # fmt: skip
        started_parts = await start_host_parts(cfg, "daily-health", first_parts(cfg, part_base, endpoints))

    # Host-local steps run in the task runner's threads while the probes stream.
    gpu_f = collect_gpus_task.submit() if plan.gpu else None
    disk_f = (
        measure_disk_task.submit(cfg.health.disk_paths, cfg.health.disk_alert_percent) if plan.disk else None
    )
    rot_f = rotate_logs_task.submit(cfg.logs) if plan.logs else None

    checks: list[CheckResult] = []
    actions = []
    async with make_http_client() as http:
        probes = await _probe_all(plan.endpoints, cfg)
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
        # A host part sent without probes still reads its own servers: their pre-allocation is what
        # relaxes this host's NVML device-total rule.
        served = plan.endpoints or plan.owned
        if started_parts is not None:  # a host part reads its own servers' metrics: never read twice
            served = central_metrics_endpoints(cfg, served, set(started_parts.created))
        readings = await read_server_metrics_task(quote(cfg), quote(served), http)
        checks = judge_server_metrics_task(quote(cfg), state_dir, plan.host or "local", quote(served),
                                           quote(readings), quote(snapshot), quote(checks))  # fmt: skip

    # Fleet: what this run found failing goes back to the endpoint's host, re-probed there first.
    started_rechecks, rechecks = None, {}
    if started_parts is not None and (allow_restart or chain_runbook):
        rechecks = plan_rechecks(cfg, checks, plan.endpoints)
        if rechecks:
            why = {}
            for c in checks:
                if c.failing:
                    why.setdefault(c.target, []).append(c.check)
            logger.info("re-check on their hosts: %s", "; ".join(
                f"{h}: " + ", ".join(f"{n} ({'/'.join(why[n])})" for n in names) for h, names in rechecks.items()))
            started_rechecks = await start_host_parts(cfg, "daily-health", recheck_parts(part_base, rechecks))

    if allow_restart and plan.restart:
        for name, reason in plan_restarts(cfg, checks, plan.owned).items():
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
    rechecked = await wait_parts(started_rechecks) if started_rechecks is not None else []
    for p in rechecked:
        names = ", ".join(rechecks.get(p.host, []))
        p.detail = f"re-check of {names}" + (f": {p.detail}" if p.detail else "")
    # alerted here; a host part alerts its own
    own = checks + part_checks(parts, "daily_health") + part_checks(rechecked, "daily_health_recheck")
    parts = parts + rechecked
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
    if chain_runbook and status not in ("ok", "nothing_checked") and plan.restart and plan.owned:
        from flows.runbook import chain_from_health

        rb = await chain_from_health(result, config_path, endpoints=[e.name for e in plan.owned],
                                     host=plan.host)  # fmt: skip
        if rb is not None:
            result.runbook_status = rb.status
    publish_if_part(plan.host, quote(result))
    return result
