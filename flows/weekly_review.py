"""The weekly review flow: the playbook's four weekly chores as one report a person reads in a minute.

Error logs, GPU temperatures, model updates and driver drift run side by side; a chore that
fails is reported as an error section, never hidden. One markdown artifact (the report), table
artifacts for the counts, the checks into history, and a Slack summary.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from llm_upkeep.config import load_config
from llm_upkeep.models.endpoints import lock_path
from llm_upkeep.redact import install_log_redaction, redact
from llm_upkeep.review.report import (
    SectionResult,
    WeeklyReviewResult,
    count_tables,
    failed_section,
    overall,
    render_report,
    section_from,
    slack_summary,
)
from llm_upkeep.review.window import review_window
from tasks.review import (
    check_driver_task,
    check_model_updates_task,
    post_weekly_summary_task,
    publish_weekly_report_task,
    record_review_history_task,
    review_error_logs_task,
    review_gpu_temperatures_task,
    review_trends_task,
)


def _collect(name: str, future) -> SectionResult:
    try:
        return section_from(future.result())
    except Exception as exc:  # one broken chore must not hide the other three
        return failed_section(name, exc)


@flow(name="weekly-review", log_prints=False)
def weekly_review(
    config_path: str | None = None, week_end: datetime | None = None, send_slack: bool = True
) -> WeeklyReviewResult:
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    started = datetime.now(UTC)
    cfg = load_config(config_path)
    state_dir = str(cfg.state_path)
    window = review_window(week_end, baseline_weeks=cfg.review.baseline_weeks)
    logger.info("weekly review of %s", window.label())

    futures = {
        "errors": review_error_logs_task.submit(cfg.review, window),
        "gpu_temperature": review_gpu_temperatures_task.submit(state_dir, cfg.review, window),
        "model_updates": check_model_updates_task.submit(cfg.review, str(lock_path(cfg))),
        "driver": check_driver_task.submit(cfg.gpu, state_dir, window),
    }
    if cfg.trends.enabled:
        futures["trends"] = review_trends_task.submit(
            state_dir, cfg.trends, window, cfg.health.gpu_memory_alert_percent
        )
    sections = {name: _collect(name, f) for name, f in futures.items()}
    result = WeeklyReviewResult(
        status=overall(sections), window_start=window.start, window_end=window.end, sections=sections,
        started_at=started,
    )  # fmt: skip

    try:
        run_id = str(get_run_context().flow_run.id)
    except Exception:  # no flow-run context: history still records
        run_id = None
    record_review_history_task(state_dir, result.checks, run_id)
    if send_slack and cfg.review.slack_summary and cfg.alerts.enabled:
        text, blocks = slack_summary(result)
        delivery = post_weekly_summary_task(cfg.alerts, text, blocks)
        result.alerts.append(delivery)
        if delivery.status == "failed":
            logger.error("Slack summary was not delivered: %s", redact(delivery.error))
    result.duration_s = round(time.monotonic() - t0, 3)
    publish_weekly_report_task(render_report(result), count_tables(result))
    logger.info(
        "weekly review: %s (%s)", result.status,
        ", ".join(f"{k} {s.verdict}" for k, s in sections.items()),
    )  # fmt: skip
    return result
