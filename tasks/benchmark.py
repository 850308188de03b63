"""Thin Prefect tasks of the weekly benchmark: one step each. Nothing is cached (NO_CACHE) and
nothing is retried: a benchmark that silently re-ran a failed half would measure something else.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from llm_upkeep import history
from llm_upkeep.alerts import Delivery
from llm_upkeep.bench.config import BenchmarkConfig
from llm_upkeep.bench.report import plot_latency, slack_message
from llm_upkeep.bench.result import BenchmarkResult, EndpointBenchmark, judge_run
from llm_upkeep.bench.runner import RunResult, RunSettings, run_suite
from llm_upkeep.bench.suites import Suite, load_suite
from llm_upkeep.checks import CheckResult
from llm_upkeep.config import AlertsConfig, EndpointConfig
from llm_upkeep.notify import deliver


@task(name="load-suite", cache_policy=NO_CACHE)
def load_suite_task(path: str | None, config_source: str | None) -> Suite:
    return load_suite(path, config_source=config_source)


@task(name="run-suite", cache_policy=NO_CACHE, task_run_name="run-suite-{endpoint.name}-{settings.api}")
async def run_suite_task(
    endpoint: EndpointConfig, suite: Suite, settings: RunSettings, http: httpx.AsyncClient
) -> RunResult:
    return await run_suite(endpoint, suite, settings, http)


@task(name="judge-run", cache_policy=NO_CACHE, task_run_name="judge-{run.target}-{run.api}")
async def judge_run_task(
    run: RunResult, suite: Suite, cfg: BenchmarkConfig, state_dir: str, endpoint: EndpointConfig,
    http: httpx.AsyncClient, save_baseline: bool,
) -> EndpointBenchmark:  # fmt: skip
    return await judge_run(
        run, suite, cfg, state_dir, endpoint=endpoint, http=http, save_baseline=save_baseline
    )


@task(name="plot-latency", cache_policy=NO_CACHE)
def plot_latency_task(current: RunResult, baseline: RunResult | None, path: str) -> str:
    return str(plot_latency(current, baseline, path))


@task(name="publish-benchmark-report", cache_policy=NO_CACHE)
def publish_report_task(markdown: str, rows: list[dict]) -> None:
    create_markdown_artifact(
        key="benchmark-comparison", markdown=markdown, description="Weekly benchmark against the baseline"
    )
    create_table_artifact(
        key="benchmark-prompts", table=rows, description="Per-prompt results of the weekly benchmark"
    )


@task(name="send-benchmark-alert", cache_policy=NO_CACHE)
def send_benchmark_alert_task(cfg: AlertsConfig, result: BenchmarkResult) -> Delivery:
    text, blocks = slack_message(result)
    return deliver(cfg, text.split(":", 1)[0], text, blocks, kind="failure")  # Slack and every Apprise URL


@task(name="record-benchmark-history", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_history_task(state_dir: str, checks: list[CheckResult], run_id: str | None) -> int:
    return history.append_checks(Path(state_dir), checks, flow="weekly-benchmark", run_id=run_id)
