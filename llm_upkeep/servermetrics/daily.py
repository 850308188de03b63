"""What daily health does with the servers' /metrics: read every endpoint, judge the readings
against [server_metrics], apply the pre-allocation leak rule, and keep the history it needs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from llm_upkeep.checks import CheckResult
from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.servermetrics.checks import check_reading
from llm_upkeep.servermetrics.leak import (
    check_memory_trends,
    host_running,
    preallocating_endpoints,
    relax_device_total,
)
from llm_upkeep.servermetrics.scrape import MetricsReading, scrape_metrics


async def read_servers(
    cfg: Config, endpoints: list[EndpointConfig], http: httpx.AsyncClient
) -> list[MetricsReading]:
    """Scrape every endpoint concurrently; an empty list when [server_metrics] is disabled."""
    sm = cfg.server_metrics
    if not sm.enabled:
        return []
    got = await asyncio.gather(
        *[scrape_metrics(e, http, timeout_s=sm.timeout_s, max_bytes=sm.max_bytes) for e in endpoints]
    )
    return list(got)


def judge_servers(
    cfg: Config,
    state_dir: str,
    host: str,
    endpoints: list[EndpointConfig],
    readings: list[MetricsReading],
    snapshot,
    checks: list[CheckResult],
    now: datetime | None = None,
) -> list[CheckResult]:
    """``checks`` with the device-total rule relaxed where servers pre-allocate, plus the metrics
    checks and gpu_memory_trend checks; records this run's readings and process samples."""
    from llm_upkeep.servermetrics import store  # pandas: not at import (`llm-upkeep check` starts in < 1 s)

    sm = cfg.server_metrics
    now = now or datetime.now(UTC)
    extra: list[CheckResult] = []
    for r in readings:
        extra += check_reading(r, sm, store.last_reading(state_dir, r.endpoint, before=r.at))
    prealloc = preallocating_endpoints(endpoints, readings, sm)
    running = host_running(readings)
    out = relax_device_total(checks, prealloc)
    store.append_readings(state_dir, readings, host)
    if snapshot is not None and snapshot.status == "ok":
        store.append_process_samples(
            state_dir, snapshot, host=host, running=running, preallocating=bool(prealloc)
        )
        if prealloc:
            samples = store.read_process_samples(state_dir, host, now - timedelta(days=sm.leak_window_days))
            extra += check_memory_trends(samples, sm, now, running)
    return out + extra


async def judge_servers_readonly(
    cfg: Config, endpoints: list[EndpointConfig], checks: list[CheckResult]
) -> list[CheckResult]:
    """For `llm-upkeep check` (no side effects): the metrics checks and the relaxed device-total
    rule, without history (no preemption increase, no trend; the scheduled daily health has both)."""
    from llm_upkeep.clients import make_http_client

    async with make_http_client() as http:
        readings = await read_servers(cfg, endpoints, http)
    extra = [c for r in readings for c in check_reading(r, cfg.server_metrics)]
    return (
        relax_device_total(checks, preallocating_endpoints(endpoints, readings, cfg.server_metrics)) + extra
    )
