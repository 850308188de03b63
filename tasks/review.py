"""Thin Prefect tasks for the weekly review and the hourly GPU sampling: one chore each.

Nothing here is cached (NO_CACHE): a review that replays last week's answer is worse than none.
Registry and Slack calls carry their own timeouts; the log scan is CPU-bound and local.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from llm_upkeep import history
from llm_upkeep.alerts import Delivery
from llm_upkeep.checks import CheckResult
from llm_upkeep.config import AlertsConfig, GpuConfig
from llm_upkeep.notify import deliver
from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.driver import DriverReview, check_driver
from llm_upkeep.review.errors import ErrorReview, review_error_logs
from llm_upkeep.review.sampling import GpuSamplingResult, record_samples
from llm_upkeep.review.temperature import TemperatureReview, review_temperatures
from llm_upkeep.review.updates import UpdateReview, check_model_updates
from llm_upkeep.review.window import ReviewWindow
from llm_upkeep.telemetry import GpuSnapshot, collect_gpus
from llm_upkeep.trends.config import TrendsConfig
from llm_upkeep.trends.review import TrendsReview, review_trends


@task(name="review-error-logs", cache_policy=NO_CACHE)
def review_error_logs_task(cfg: ReviewConfig, window: ReviewWindow) -> ErrorReview:
    return review_error_logs(cfg, window)


@task(name="review-gpu-temperatures", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def review_gpu_temperatures_task(
    state_dir: str, cfg: ReviewConfig, window: ReviewWindow
) -> TemperatureReview:
    samples = history.read_gpu_samples(state_dir, since=window.start, until=window.end)
    return review_temperatures(samples, cfg)


@task(name="check-model-updates", cache_policy=NO_CACHE)
def check_model_updates_task(cfg: ReviewConfig, lock_file: str | None = None) -> UpdateReview:
    return check_model_updates(cfg.pinned, cfg, lock_file=lock_file)


@task(name="check-driver", cache_policy=NO_CACHE)
def check_driver_task(gpu: GpuConfig, state_dir: str, window: ReviewWindow) -> DriverReview:
    snapshot = collect_gpus() if gpu.enabled else None
    samples = history.read_gpu_samples(state_dir, since=window.start, until=window.end)
    return check_driver(snapshot, gpu.approved_driver, gpu.approved_cuda, samples)


@task(name="review-trends", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def review_trends_task(
    state_dir: str, cfg: TrendsConfig, window: ReviewWindow, gpu_memory_alert_percent: float
) -> TrendsReview:
    since = window.end - timedelta(weeks=cfg.weeks)
    checks = history.read_checks(state_dir, since=since, until=window.end)
    samples = history.read_gpu_samples(state_dir, since=since, until=window.end)
    return review_trends(checks, samples, cfg, gpu_memory_alert_percent=gpu_memory_alert_percent)


@task(name="record-review-history", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_review_history_task(state_dir: str, checks: list[CheckResult], run_id: str | None) -> int:
    return history.append_checks(state_dir, checks, flow="weekly-review", run_id=run_id)


@task(name="publish-weekly-report", cache_policy=NO_CACHE)
def publish_weekly_report_task(markdown: str, tables: dict[str, list[dict]], key_suffix: str = "") -> None:
    """key_suffix: a fleet host's part publishes under its own keys, next to the fleet report."""
    create_markdown_artifact(key=f"weekly-review-report{key_suffix}", markdown=markdown,
                             description="Weekly LLM review")  # fmt: skip
    for key, rows in tables.items():
        create_table_artifact(
            key=f"{key}{key_suffix}", table=rows, description=f"Weekly review: {key.removeprefix('weekly-review-')}"
        )


@task(name="post-weekly-summary", cache_policy=NO_CACHE)
def post_weekly_summary_task(cfg: AlertsConfig, text: str, blocks: list[dict]) -> Delivery:
    return deliver(cfg, text.split(":", 1)[0], text, blocks, kind="info")  # Slack and every Apprise URL


@task(name="collect-gpu-snapshot", cache_policy=NO_CACHE)
def collect_gpu_snapshot_task() -> GpuSnapshot:
    return collect_gpus()


@task(name="record-gpu-samples", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_gpu_samples_task(state_dir: str, snapshot: GpuSnapshot, host: str = "local") -> GpuSamplingResult:
    return record_samples(Path(state_dir), snapshot, host=host)
