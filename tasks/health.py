"""Thin Prefect tasks for the daily health check: one step each, each with a deliberate
retry policy. Probes and side effects are never cached (NO_CACHE): a health check that
replays yesterday's answer is worse than none.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from llm_upkeep import history
from llm_upkeep.alerts import Delivery, send_alert
from llm_upkeep.checks import CheckResult
from llm_upkeep.config import AlertsConfig, EndpointConfig, LogsConfig, RestartConfig
from llm_upkeep.disk import check_disk, measure_disk
from llm_upkeep.logrotate import RotationReport, rotate_logs
from llm_upkeep.measure import measure_probe, measure_probe_retried
from llm_upkeep.probe import ProbeResult
from llm_upkeep.restart import RestartOutcome, record_recovery, restart_server
from llm_upkeep.telemetry import GpuSnapshot, collect_gpus


@task(name="probe-endpoints", cache_policy=NO_CACHE, task_run_name="probe-{group}")
async def probe_endpoints_task(
    group: str, endpoints: list[EndpointConfig], prompt: str, max_tokens: int, retries: int, retry_delay_s: float
) -> list[ProbeResult]:
    """One host's endpoints, probed at once; each endpoint retries its own transient failures.

    One task run per host, not per endpoint: the streams are timed in the probe process
    (llm_upkeep/measure.py) either way, and at 500 endpoints a task run each cost the Prefect
    server and this flow 42 CPU-s. The report and the history keep one row per endpoint."""
    return list(await asyncio.gather(*[
        measure_probe_retried(e, prompt=prompt, max_tokens=max_tokens, retries=retries, retry_delay_s=retry_delay_s)
        for e in endpoints
    ]))  # fmt: skip


@task(name="collect-gpu-telemetry", cache_policy=NO_CACHE)
def collect_gpus_task() -> GpuSnapshot:
    return collect_gpus()


@task(name="measure-disk", cache_policy=NO_CACHE)
def measure_disk_task(paths: list[str], alert_percent: float) -> list[CheckResult]:
    return check_disk(measure_disk(paths), alert_percent)


@task(name="rotate-logs", cache_policy=NO_CACHE)
def rotate_logs_task(cfg: LogsConfig) -> RotationReport:
    return rotate_logs(cfg)


@task(name="restart-server", cache_policy=NO_CACHE)
def restart_server_task(
    cfg: RestartConfig, state_dir: str, target: str, reason: str, model: str
) -> RestartOutcome:
    return restart_server(cfg, Path(state_dir), target=target, reason=reason, model=model)


@task(name="verify-recovery", cache_policy=NO_CACHE)
async def verify_recovery_task(
    endpoint: EndpointConfig, outcome: RestartOutcome, state_dir: str,
    prompt: str, max_tokens: int, ttft_alert_s: float, recover_timeout_s: float,
) -> RestartOutcome:  # fmt: skip
    """Re-probe until the endpoint answers under its TTFT threshold, or give up."""
    t0 = time.monotonic()
    deadline = t0 + recover_timeout_s
    recovered = False
    while time.monotonic() < deadline:
        p = await measure_probe(endpoint, prompt=prompt, max_tokens=max_tokens)
        if p.ok and p.ttft_s is not None and p.ttft_s <= ttft_alert_s:
            recovered = True
            break
        await asyncio.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    outcome = outcome.model_copy(
        update={"recovered": recovered, "recovery_s": round(time.monotonic() - t0, 3) if recovered else None}
    )
    record_recovery(Path(state_dir), outcome)
    return outcome


@task(name="record-history", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_history_task(
    state_dir: str,
    checks: list[CheckResult],
    snapshot: GpuSnapshot | None,
    run_id: str | None,
    host: str = "local",
) -> int:
    n = history.append_checks(state_dir, checks, flow="daily-health", run_id=run_id, host=host)
    if snapshot is not None:
        history.append_gpu_samples(state_dir, snapshot, host=host)
    return n


@task(name="send-alert", cache_policy=NO_CACHE)
def send_alert_task(
    cfg: AlertsConfig,
    state_dir: str,
    title: str,
    checks: list[CheckResult],
    suppress_minutes: float,
    context: str,
) -> Delivery:
    return send_alert(cfg, Path(state_dir), title, checks, suppress_minutes=suppress_minutes, context=context)


@task(name="publish-health-report", cache_policy=NO_CACHE)
def publish_report_task(markdown: str, checks: list[CheckResult], key_suffix: str = "") -> None:
    create_markdown_artifact(
        key=f"daily-health-report{key_suffix}", markdown=markdown, description="Daily LLM health report"
    )
    create_table_artifact(
        key=f"daily-health-checks{key_suffix}",
        table=[c.public() for c in checks],
        description="Every check of the daily health run",
    )
