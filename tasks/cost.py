"""Thin Prefect tasks of the monthly cost review: one step each, never cached."""

from __future__ import annotations

from datetime import datetime

import httpx
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from llm_upkeep.config import EndpointConfig
from llm_upkeep.cost.config import CostConfig, TokenSource
from llm_upkeep.cost.energy import GpuEnergy, gpu_energy
from llm_upkeep.cost.plot import plot_daily
from llm_upkeep.cost.report import comparison_table, render_report
from llm_upkeep.cost.review import CostReview, price_and_compute
from llm_upkeep.cost.tokens import TokenCount, count_tokens, record_token_counters


@task(name="record-token-counters", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
async def record_token_counters_task(state_dir: str, endpoints: list[EndpointConfig]) -> list[str]:
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as http:
        return await record_token_counters(state_dir, endpoints, http)


@task(name="measure-gpu-energy", cache_policy=NO_CACHE)
def gpu_energy_task(cfg: CostConfig, state_dir: str, start: datetime, end: datetime) -> list[GpuEnergy]:
    return gpu_energy(state_dir, start, end, max_gap_s=cfg.max_sample_gap_s, hosts=cfg.hosts or None)


@task(name="count-tokens", cache_policy=NO_CACHE)
def count_tokens_task(
    sources: list[TokenSource], state_dir: str, start: datetime, end: datetime
) -> list[TokenCount]:
    return count_tokens(sources, state_dir, start, end)


@task(name="compute-cost-review", cache_policy=NO_CACHE)
def compute_review_task(
    cfg: CostConfig, start: datetime, end: datetime, energies: list[GpuEnergy], tokens: list[TokenCount],
    period: str,
) -> CostReview:  # fmt: skip
    return price_and_compute(cfg, start, end, energies, tokens, period=period)


@task(name="plot-daily-cost", cache_policy=NO_CACHE)
def plot_task(review: CostReview, out_dir: str) -> str:
    return str(plot_daily(review, out_dir))


@task(name="publish-cost-report", cache_policy=NO_CACHE)
def publish_cost_report_task(review: CostReview, key_suffix: str = "") -> None:
    create_markdown_artifact(
        key=f"cost-review-report{key_suffix}",
        markdown=render_report(review),
        description="Monthly cost review",
    )
    rows = comparison_table(review) or [{"note": "no cloud comparison (no tokens or no price table)"}]
    create_table_artifact(
        key=f"cost-review-comparison{key_suffix}", table=rows,
        description="Self-hosting vs cloud API prices for this month's tokens",
    )  # fmt: skip
