"""`llm-upkeep check`: the daily health checks, straight on the core, for a person at a terminal.

Why apart from the flow: at 3 AM the question is "is it up, and how fast", and the answer must
come in about the time the probes take. So no Prefect (no import, no server, no task runs), no
side effects (no log rotation, restart, alert or history row) and no retries: every endpoint is
probed once, concurrently, on this process's otherwise idle event loop, and the GPU and disk
checks are read. The figures are the same checks, thresholds and JSON shape as `run daily-health`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from llm_upkeep.checks import CheckResult, overall_status
from llm_upkeep.config import Config
from llm_upkeep.disk import check_disk, measure_disk
from llm_upkeep.health import HealthResult, check_probe
from llm_upkeep.measure import measure_probes
from llm_upkeep.noconfig import nothing_checked
from llm_upkeep.servermetrics.daily import judge_servers_readonly


def read_host_checks(cfg: Config) -> list[CheckResult]:
    """GPU (when enabled) and disk checks of this host; read-only, before the probes start so
    nothing shares the interpreter with the streams while they are timed."""
    checks: list[CheckResult] = []
    if cfg.gpu.enabled:
        from llm_upkeep.telemetry import check_gpus, collect_gpus

        h = cfg.health
        checks += check_gpus(
            collect_gpus(), h.gpu_memory_alert_percent, h.gpu_temperature_margin_c, h.gpu_temperature_alert_c
        )
    if cfg.health.disk_paths:
        checks += check_disk(measure_disk(cfg.health.disk_paths), cfg.health.disk_alert_percent)
    return checks


async def run_quick_check(cfg: Config, endpoints: list[str] | None = None) -> HealthResult:
    """Probe the endpoints (all, or those named) once and read GPUs and disks."""
    t0 = time.monotonic()
    started = datetime.now(UTC)
    eps = [cfg.endpoint(n) for n in endpoints] if endpoints else list(cfg.endpoints)
    host = read_host_checks(cfg)
    h = cfg.health
    probes = await measure_probes(eps, prompt=h.probe_prompt, max_tokens=h.probe_max_tokens, path="inline")
    checks = [c for p in probes for c in check_probe(p, h)] + host
    # The servers' own /metrics; a pre-allocating server's full GPU is not a leak (servermetrics/daily.py).
    checks = await judge_servers_readonly(cfg, eps, checks)
    empty = nothing_checked(checks, probed=len(eps), probes_expected=True)
    status = "nothing_checked" if empty else overall_status(checks)
    res = HealthResult(flow="check", status=status, checks=checks, started_at=started, error=empty)
    res.duration_s = round(time.monotonic() - t0, 3)
    return res
