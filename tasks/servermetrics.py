"""Thin Prefect tasks around llm_upkeep.servermetrics: a scrape is a live reading, never cached."""

from __future__ import annotations

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from llm_upkeep.checks import CheckResult
from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.servermetrics.daily import judge_servers, read_servers
from llm_upkeep.servermetrics.scrape import MetricsReading


@task(name="read-server-metrics", cache_policy=NO_CACHE)
async def read_server_metrics_task(
    cfg: Config, endpoints: list[EndpointConfig], http: httpx.AsyncClient
) -> list[MetricsReading]:
    return await read_servers(cfg, endpoints, http)


@task(name="judge-server-metrics", cache_policy=NO_CACHE)
def judge_server_metrics_task(
    cfg: Config, state_dir: str, host: str, endpoints: list[EndpointConfig], readings: list[MetricsReading],
    snapshot, checks: list[CheckResult],
) -> list[CheckResult]:  # fmt: skip
    return judge_servers(cfg, state_dir, host, endpoints, readings, snapshot, checks)


@task(name="sample-servers", cache_policy=NO_CACHE)
def sample_servers_task(cfg: Config, state_dir: str, snapshot=None, host: str = "local") -> list[str]:
    """Sync on purpose: the hourly GPU sampling flow is sync; this runs its own short event loop."""
    import asyncio

    from llm_upkeep.servermetrics.sampling import sample_servers

    return asyncio.run(sample_servers(cfg, state_dir, snapshot, host))
