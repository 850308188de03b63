"""The monthly restore drill: restore a random sample of the latest snapshot into a temporary
directory, verify every byte, compare with the sources, report, alert when anything is off.
A backup that was never restored is a hope, not a backup.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from llm_upkeep.backup.errors import BackupError, NotConfiguredError
from llm_upkeep.backup.models import DrillResult
from llm_upkeep.backup.report import drill_checks, render_drill_summary
from llm_upkeep.backup.store import S3Store
from llm_upkeep.fleet import checked_host, current_host
from llm_upkeep.redact import install_log_redaction, redact
from tasks.backup import publish_markdown_task, run_restore_drill_task, send_backup_alert_task
from tasks.fleet import publish_if_part
from tasks.run_config import load_run_config


@flow(name="restore-drill", log_prints=False)
def restore_drill(
    config_path: str | None = None,
    snapshot: str = "latest",
    sample_files: int | None = None,
    host: str | None = None,
) -> DrillResult:
    """host: the fleet host this copy runs on: the drill restores that host's latest snapshot and
    compares it with that host's files (default: the worker's --host; none on a single host)."""
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_run_config(config_path)
    host = checked_host(cfg, host) or current_host()
    if not cfg.backup.configured:
        raise NotConfiguredError(cfg.source)
    state_dir = str(cfg.state_path)
    where = S3Store(cfg.backup).describe()
    try:
        drill = run_restore_drill_task(cfg.backup, snapshot, sample_files, host)
    except Exception as exc:
        message = redact(str(exc))
        send_backup_alert_task(
            cfg.alerts, state_dir, "Restore drill FAILED", drill_checks(None, where, message)
        )
        raise
    publish_markdown_task(
        render_drill_summary(drill, where), "restore-drill-summary", f"Drill of {drill.snapshot}"
    )
    logger.info(
        "restore drill of %s: %d/%d restored, %d identical to source, %d problems",
        drill.snapshot, drill.restored, drill.sampled, drill.matched_source, len(drill.problems),
    )  # fmt: skip
    if not drill.ok:
        send_backup_alert_task(cfg.alerts, state_dir, "Restore drill FAILED", drill_checks(drill, where))
        raise BackupError(
            "drill_failed", f"restore drill of {drill.snapshot}: {len(drill.problems)} problem(s)"
        )
    publish_if_part(host, drill)
    return drill
