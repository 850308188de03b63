"""Thin Prefect task for the Prometheus export (never cached: it reports this run's figures)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from llm_upkeep.checks import CheckResult
from llm_upkeep.prom.config import PrometheusConfig
from llm_upkeep.prom.export import ExportResult, export_run
from llm_upkeep.telemetry import GpuSnapshot


@task(name="export-prometheus", cache_policy=NO_CACHE)
def export_metrics_task(
    cfg: PrometheusConfig, state_dir: str, flow: str, host: str, checks: list[CheckResult],
    snapshot: GpuSnapshot | None = None, duration_s: float = 0.0, ok: bool = True,
) -> ExportResult:  # fmt: skip
    res = export_run(cfg, state_dir, flow, host, checks, snapshot=snapshot, duration_s=duration_s, ok=ok)
    if res.errors:
        from prefect import get_run_logger

        get_run_logger().warning("Prometheus export: %s", "; ".join(res.errors))
    return res
