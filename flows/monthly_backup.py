"""The monthly backup flow: scan and hash, upload what the store lacks, write the manifest,
apply retention, report. One backup at a time per state dir (a lock file; see docs/backup.md).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from llm_upkeep.backup.errors import BackupError, NotConfiguredError
from llm_upkeep.backup.leases import LocalLock
from llm_upkeep.backup.models import BackupResult, PruneResult, new_snapshot_id, snapshot_ref, utcnow
from llm_upkeep.backup.report import backup_checks, render_backup_summary
from llm_upkeep.backup.snapshot import lock_path
from llm_upkeep.backup.store import S3Store
from llm_upkeep.fleet import checked_host, current_host
from llm_upkeep.redact import install_log_redaction, redact
from tasks.backup import (
    close_backup_lease_task,
    commit_snapshot_task,
    open_backup_lease_task,
    prune_task,
    publish_markdown_task,
    scan_sources_task,
    send_backup_alert_task,
    upload_objects_task,
)
from tasks.fleet import publish_if_part
from tasks.run_config import load_run_config


@flow(name="monthly-backup", log_prints=False)
def monthly_backup(config_path: str | None = None, host: str | None = None) -> BackupResult:
    """host: the fleet host this copy runs on: its snapshots go into its own namespace with its own
    keep_snapshots (default: the worker's --host; none on a single host)."""
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_run_config(config_path)
    host = checked_host(cfg, host) or current_host()
    bcfg = cfg.backup
    if not bcfg.configured:
        raise NotConfiguredError(cfg.source)
    if not bcfg.sets:
        raise BackupError("not_configured", "no [[backup.sets]] configured: nothing to back up")
    state_dir = str(cfg.state_path)
    where = redact(
        f"s3://{bcfg.bucket}/{bcfg.prefix}" + (f" at {bcfg.endpoint_url}" if bcfg.endpoint_url else "")
    )
    bare_id = new_snapshot_id()
    snapshot_id = snapshot_ref(host, bare_id)
    created = utcnow()
    result: BackupResult | None = None
    pruned: PruneResult | None = None
    try:
        store = S3Store(bcfg)  # inside: missing credentials are alerted like any other failure
        with LocalLock(lock_path(cfg.state_path), "backup"):
            lease = open_backup_lease_task(store, bare_id)
            try:
                scan = scan_sources_task(bcfg, state_dir)
                logger.info(
                    "scanned %d files (%d hashed, %d from cache), %d skipped",
                    len(scan.files), scan.hashed_files, scan.cache_hits, len(scan.skipped),
                )  # fmt: skip
                outcome = upload_objects_task(store, state_dir, quote(scan), lease)
                result = commit_snapshot_task(
                    store, state_dir, quote(scan), quote(outcome), snapshot_id, created, lease
                )
            finally:
                close_backup_lease_task(lease)
            if bcfg.prune_after_backup:
                pruned = prune_task(bcfg, state_dir, host)
    except Exception as exc:
        message = redact(str(exc))
        logger.error("backup failed: %s", message)
        send_backup_alert_task(
            cfg.alerts, state_dir, "Monthly backup FAILED", backup_checks(None, where, message)
        )
        raise
    for s in result.skipped:
        logger.warning("skipped %s: %s", s.path, s.reason)
    publish_markdown_task(
        render_backup_summary(result, where, pruned), "backup-summary", f"Snapshot {result.snapshot}"
    )
    checks = backup_checks(result, where)
    if any(c.status != "ok" for c in checks):
        send_backup_alert_task(cfg.alerts, state_dir, "Monthly backup incomplete", checks)
    logger.info(
        "snapshot %s: %d files, %d new objects (%d bytes), %d skipped, %.1f s",
        result.snapshot, result.files, result.uploaded_objects, result.uploaded_bytes,
        len(result.skipped), result.duration_s,
    )  # fmt: skip
    publish_if_part(host, result)
    return result
