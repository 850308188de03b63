"""The weekly review flow: the playbook's four weekly chores as one report a person reads in a minute.

Error logs, GPU temperatures, model updates and driver drift run side by side; a chore that
fails is reported as an error section, never hidden. One markdown artifact (the report), table
artifacts for the counts, the checks into history, and a Slack summary.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.utilities.asyncutils import run_coro_as_sync

from llm_upkeep.configbase import ConfigError
from llm_upkeep.fleet import checked_host, host_slug, runs_on_hosts
from llm_upkeep.fleet_parts import part_checks, render_hosts
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
from tasks.fleet import dispatching, publish_if_part, run_host_parts
from tasks.health import send_alert_task
from tasks.prom import export_metrics_task
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
from tasks.run_config import load_run_config


def _collect(name: str, future) -> SectionResult:
    try:
        return section_from(future.result())
    except Exception as exc:  # one broken chore must not hide the other three
        return failed_section(name, exc)


@flow(name="weekly-review", log_prints=False)
def weekly_review(
    config_path: str | None = None,
    week_end: datetime | None = None,
    send_slack: bool = True,
    scope: Literal["all", "central", "host"] = "all",
    host: str | None = None,
) -> WeeklyReviewResult:
    """scope/host on a fleet: each host's part reads its own server logs, GPU samples and driver
    (scope "host", no Slack); the central run checks the registries for model updates, collects
    every host's part with a deadline and reports the fleet in one report and one Slack summary."""
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    started = datetime.now(UTC)
    cfg = load_run_config(config_path)
    state_dir = str(cfg.state_path)
    window = review_window(week_end, baseline_weeks=cfg.review.baseline_weeks)
    logger.info("weekly review of %s", window.label())
    if scope == "host" and checked_host(cfg, host) is None:
        raise ConfigError("scope 'host' needs a host name", key="host")
    fleet = scope == "central" and dispatching(cfg) and runs_on_hosts(cfg.fleet, "weekly-review")

    futures = {}
    if scope != "central" or not fleet:
        futures["errors"] = review_error_logs_task.submit(cfg.review, window)
        futures["gpu_temperature"] = review_gpu_temperatures_task.submit(state_dir, cfg.review, window)
    if scope != "host":
        futures["model_updates"] = check_model_updates_task.submit(cfg.review, str(lock_path(cfg)))
    if scope != "central" or not fleet:
        futures["driver"] = check_driver_task.submit(cfg.gpu, state_dir, window)
    parts = []
    if fleet:
        per_host = {h.name: {"scope": "host", "host": h.name, "send_slack": False,
                             "week_end": window.end.isoformat(),
                             **({"config_path": config_path} if config_path else {})}
                    for h in cfg.fleet.hosts}  # fmt: skip
        parts = run_coro_as_sync(run_host_parts(cfg, "weekly-review", per_host))
    if cfg.trends.enabled and (scope != "central" or not fleet):
        futures["trends"] = review_trends_task.submit(
            state_dir, cfg.trends, window, cfg.health.gpu_memory_alert_percent
        )
    sections = {name: _collect(name, f) for name, f in futures.items()}
    status = overall(sections)
    if any(p.status != "ok" for p in parts):
        status = "degraded"
    result = WeeklyReviewResult(
        status=status, window_start=window.start, window_end=window.end, sections=sections,
        started_at=started, hosts=parts,
    )  # fmt: skip
    if scope == "host":
        send_slack = False  # the central run sends the fleet's one summary

    try:
        run_id = str(get_run_context().flow_run.id)
    except Exception:  # no flow-run context: history still records
        run_id = None
    record_review_history_task(state_dir, result.checks, run_id)
    if send_slack and cfg.review.slack_summary and cfg.alerts.enabled:
        text, blocks = slack_summary(result)
        if parts:
            line = "Hosts: " + ", ".join(f"{p.host} {p.status}" for p in parts)
            text += f"; {line}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line}})
        delivery = post_weekly_summary_task(cfg.alerts, text, blocks)
        result.alerts.append(delivery)
        if delivery.status == "failed":
            logger.error("Slack summary was not delivered: %s", redact(delivery.error))
    if any(not p.ran for p in parts):
        send_alert_task(cfg.alerts, state_dir, "Weekly review: host part missing",
                        part_checks(parts, "weekly_review"), cfg.health.alert_suppress_minutes, "")  # fmt: skip
    result.duration_s = round(time.monotonic() - t0, 3)
    if cfg.prometheus.enabled:  # trend verdicts and every chore's checks, for alert rules
        export_metrics_task(cfg.prometheus, state_dir, "weekly_review", host or "local", result.checks, None,
                            result.duration_s, result.status == "ok")  # fmt: skip
    report = render_report(result)
    if parts:
        report += "\n" + render_hosts(parts)
        for p in parts:
            sub = p.parse(WeeklyReviewResult)
            if sub is not None:
                report += f"\n# Host {p.host}\n\n" + render_report(sub)
    publish_weekly_report_task(report, count_tables(result), key_suffix=f"-host-{host_slug(host)}" if host else "")
    logger.info(
        "weekly review: %s (%s)", result.status,
        ", ".join(f"{k} {s.verdict}" for k, s in sections.items()),
    )  # fmt: skip
    publish_if_part(host, result)
    return result
